"""`make install` puts the binary, the configuration and the systemd units
where they agree: the binary's default configuration is the one installed,
the units run the installed binary on it, a second install keeps an edited
configuration, and `systemd-analyze verify --root` accepts the units and the
drop-ins docs/deploying.md shows."""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import unittest

from harness import REPO, braced_bin


def build_dir():
    """The build directory of the binary under test (BRACED_BIN is BUILD/daemon/braced)."""
    return os.path.dirname(os.path.dirname(braced_bin()))


class InstallTest(unittest.TestCase):

    def setUp(self):
        if not os.path.isfile(os.path.join(build_dir(), "Makefile")):
            self.fail(f"no Makefile in {build_dir()}: the binary must come from a configured build")
        self.dest = tempfile.mkdtemp(prefix="braced-install-")
        self.addCleanup(shutil.rmtree, self.dest, True)

    def install(self):
        out = subprocess.run(["make", "-s", "-C", build_dir(), "install", f"DESTDIR={self.dest}"],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out.stdout

    def installed(self, pattern):
        found = glob.glob(os.path.join(self.dest, pattern.lstrip("/")), recursive=True)
        self.assertEqual(len(found), 1, f"{pattern}: {found}")
        return found[0]

    def test_paths_agree(self):
        self.install()
        binary = self.installed("**/sbin/braced")
        config = self.installed("**/etc/braced/braced.yaml")
        unit = self.installed("**/systemd/system/braced.service")
        self.installed("**/systemd/system/braced.socket")
        config_path = "/" + os.path.relpath(config, self.dest)
        binary_path = "/" + os.path.relpath(binary, self.dest)
        # The binary's default is the installed configuration ...
        usage = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=10).stdout
        self.assertIn(f"else {config_path})", usage)
        # ... which the units start it with, and which passes -t.
        with open(unit) as f:
            text = f.read()
        self.assertIn(f"ExecStart={binary_path} -c {config_path}\n", text)
        self.assertIn(f"ExecStartPre={binary_path} -t -c {config_path}\n", text)
        self.assertNotIn("@sbindir@", text)
        check = subprocess.run([binary, "-t", "-c", config], capture_output=True, text=True,
                               timeout=10)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        # The production template, not scripts/run's demo.
        with open(config) as f, open(os.path.join(REPO, "conf", "production.yaml")) as g:
            self.assertEqual(f.read(), g.read())

    def test_second_install_keeps_an_edited_configuration(self):
        self.install()
        config = self.installed("**/etc/braced/braced.yaml")
        with open(config, "a") as f:
            f.write("# edited by the operator\n")
        self.assertIn("keeping", self.install())
        with open(config) as f:
            self.assertTrue(f.read().endswith("# edited by the operator\n"))

    def test_systemd_analyze_verify_accepts_the_units(self):
        self.install()
        unitdir = os.path.dirname(self.installed("**/systemd/system/braced.service"))
        # The root stands in for an installed system: the OS's targets and
        # the kill the unit's ExecReload names.
        for target in glob.glob("/lib/systemd/system/*.target"):
            shutil.copy(target, unitdir)
        os.makedirs(os.path.join(self.dest, "bin"), exist_ok=True)
        shutil.copy("/bin/kill", os.path.join(self.dest, "bin", "kill"))
        out = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={self.dest}",
                              "braced.service", "braced.socket"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertNotRegex(out.stdout + out.stderr, re.compile(r"braced\.(service|socket):"))

    def test_the_guides_drop_ins_pass_verify(self):
        """docs/deploying.md's unit drop-ins, on the installed units: verify
        reads drop-ins and names the unit for any key it does not take."""
        self.install()
        binary = self.installed("**/sbin/braced")
        unitdir = os.path.dirname(self.installed("**/systemd/system/braced.service"))
        for target in glob.glob("/lib/systemd/system/*.target"):
            shutil.copy(target, unitdir)
        os.makedirs(os.path.join(self.dest, "bin"), exist_ok=True)
        shutil.copy("/bin/kill", os.path.join(self.dest, "bin", "kill"))
        with open(os.path.join(REPO, "docs", "deploying.md")) as f:
            blocks = re.findall(r"```ini\n(.*?)```", f.read(), re.S)
        written = []
        for i, block in enumerate(textwrap.dedent(b) for b in blocks):
            m = re.match(r"# /etc/systemd/system/(braced\.(?:service|socket)\.d)/\S+\n", block)
            self.assertIsNotNone(m, block)
            dropins = os.path.join(unitdir, m.group(1))
            os.makedirs(dropins, exist_ok=True)
            path = os.path.join(dropins, f"guide-{i}.conf")
            with open(path, "w") as f:
                f.write(block.replace("/usr/sbin/braced", "/" + os.path.relpath(binary, self.dest)))
            written.append(path)
        self.assertGreaterEqual(len(written), 3)
        out = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={self.dest}",
                              "braced.service", "braced.socket"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertNotRegex(out.stdout + out.stderr, re.compile(r"braced\.(service|socket)"))


if __name__ == "__main__":
    unittest.main()
