"""The configurations the container and the pod manifest ship pass
`braced -t`, and the manifest's ConfigMap holds the same configuration as
conf/pod.yaml, so the image's default and the example pod agree. The
production template the package installs (conf/production.yaml) passes
`braced -t`, serves nothing until a profile is added, and its commented
example profile is valid once uncommented."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import REPO, Braced, braced_bin

POD = os.path.join(REPO, "conf", "pod.yaml")
MANIFEST = os.path.join(REPO, "deploy", "kubernetes", "braced.yaml")
PRODUCTION = os.path.join(REPO, "conf", "production.yaml")


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


def production_text():
    with open(PRODUCTION) as f:
        return f.read()


class ProductionConfigTest(unittest.TestCase):

    def test_template_passes_check(self):
        out = subprocess.run([braced_bin(), "-t", "-c", PRODUCTION], capture_output=True,
                             text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stdout.strip(), f"{PRODUCTION}: ok")
        text = production_text()
        self.assertRegex(text, re.compile(r"^profiles: \{\}$", re.M))
        self.assertNotIn("7080", text)
        self.assertNotIn("scripts/run", text)

    def test_template_answers_unknown_profile_until_one_is_added(self):
        text = production_text()
        text = re.sub(r"^listen: .*$", "listen: 127.0.0.1:0", text, flags=re.M)
        text = re.sub(r"^admin: .*$", "admin: 127.0.0.1:0", text, flags=re.M)
        with Braced(text) as b:
            resp = b.get("/payments/charges/1")
            self.assertEqual(resp.status, 404, resp)
            self.assertEqual(resp.headers.get("Brace-Error"), "unknown_profile", resp)
            self.assertIn("no profiles are configured", b.log())
            self.assertEqual(b.get("/").status, 404)

    def test_example_profile_is_valid_uncommented(self):
        lines = production_text().splitlines()
        start = lines.index("# profiles:")
        end = lines.index("profiles: {}")
        example = [re.sub(r"^# ?", "", l) for l in lines[start:end]]
        tmp = tempfile.mkdtemp(prefix="braced-prod-")
        self.addCleanup(shutil.rmtree, tmp, True)
        token = os.path.join(tmp, "payments-token")
        with open(token, "w") as f:
            f.write("t0ken\n")
        text = "\n".join(lines[:start] + example) + "\n"
        self.assertIn("/run/credentials/braced.service/payments-token", text)
        path = os.path.join(tmp, "braced.yaml")
        with open(path, "w") as f:
            f.write(text.replace("/run/credentials/braced.service/payments-token", token))
        out = subprocess.run([braced_bin(), "-t", "-c", path], capture_output=True, text=True,
                             timeout=10)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
