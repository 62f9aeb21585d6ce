"""The configurations the container and the pod manifest ship pass
`braced -t`, and the manifest's ConfigMap holds the same configuration as
conf/pod.yaml, so the image's default and the example pod agree."""

import os
import re
import subprocess
import unittest

from harness import REPO, braced_bin

POD = os.path.join(REPO, "conf", "pod.yaml")
MANIFEST = os.path.join(REPO, "deploy", "kubernetes", "braced.yaml")


def configmap_text():
    """The ConfigMap's braced.yaml literal block, dedented."""
    with open(MANIFEST) as f:
        lines = f.read().splitlines()
    start = lines.index("  braced.yaml: |") + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block).strip() + "\n"


def without_comments(text):
    return "\n".join(l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")) + "\n"


class DeployConfigTest(unittest.TestCase):

    def check(self, path, upstream):
        """braced -t on path, with $UPSTREAM_URL set to upstream (None: unset)."""
        env = {k: v for k, v in os.environ.items() if k != "UPSTREAM_URL"}
        if upstream is not None:
            env["UPSTREAM_URL"] = upstream
        out = subprocess.run([braced_bin(), "-t", "-c", path], capture_output=True, text=True,
                             env=env, timeout=10)
        return out.returncode, out.stdout, out.stderr

    def test_pod_config_passes_check(self):
        code, out, err = self.check(POD, "https://api.example.com")
        self.assertEqual(code, 0, out + err)
        with open(POD) as f:
            text = f.read()
        self.assertRegex(text, re.compile(r"^listen: 127\.0\.0\.1:7070$", re.M))
        self.assertRegex(text, re.compile(r"^admin: 0\.0\.0\.0:7071$", re.M))

    def test_pod_config_needs_its_upstream(self):
        code, out, err = self.check(POD, None)
        self.assertNotEqual(code, 0, out + err)
        self.assertIn("UPSTREAM_URL", err)

    def test_manifest_configmap_is_the_pod_config(self):
        with open(POD) as f:
            pod = without_comments(f.read())
        self.assertEqual(without_comments(configmap_text()), pod)
        with open(MANIFEST) as f:
            manifest = f.read()
        self.assertIn("restartPolicy: Always", manifest)
        self.assertIn("path: /healthz", manifest)
        self.assertIn("path: /readyz", manifest)


if __name__ == "__main__":
    unittest.main()
