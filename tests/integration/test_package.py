"""The Debian package: scripts/package builds braced_VERSION_ARCH.deb with no
lintian error; `dpkg -i` installs the binary, the man pages, the units
(enabled, not started), docs/deploying.md, and the production template
(conf/production.yaml) as the configuration conffile; `braced -t` passes on
it; `dpkg --purge` removes it all."""

import os
import subprocess
import unittest

from harness import REPO

FILES = ("/usr/sbin/braced", "/etc/braced/braced.yaml", "/lib/systemd/system/braced.service",
         "/lib/systemd/system/braced.socket", "/usr/share/man/man8/braced.8.gz",
         "/usr/share/man/man5/braced.yaml.5.gz")
ENABLED = ("/etc/systemd/system/multi-user.target.wants/braced.service",
           "/etc/systemd/system/sockets.target.wants/braced.socket")


def run(*args, timeout=600):
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    cmd = list(args)
    if cmd[0] in ("dpkg",):
        cmd = sudo + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def installed():
    out = run("dpkg-query", "-W", "-f=${Status}", "braced")
    return out.returncode == 0 and "install ok installed" in out.stdout


class PackageTest(unittest.TestCase):

    def test_build_install_check_and_purge(self):
        if installed():
            self.fail("a braced package is already installed here: purge it first")
        built = run(os.path.join(REPO, "scripts", "package"))
        self.assertEqual(built.returncode, 0, built.stdout[-3000:] + built.stderr[-3000:])
        deb = built.stdout.strip().splitlines()[-1]
        self.assertRegex(os.path.basename(deb), r"^braced_\d+\.\d+\.\d+_[a-z0-9]+\.deb$")

        self.addCleanup(run, "dpkg", "--purge", "braced")
        inst = run("dpkg", "-i", deb)
        self.assertEqual(inst.returncode, 0, inst.stdout + inst.stderr)
        for path in FILES:
            self.assertTrue(os.path.isfile(path), path)
        for link in ENABLED:
            self.assertTrue(os.path.islink(link), f"{link}: the unit is not enabled")
        conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "braced").stdout
        self.assertIn("/etc/braced/braced.yaml", conffiles)
        # Installed, not started.
        self.assertEqual(run("pgrep", "-f", "^/usr/sbin/braced").returncode, 1)
        check = run("/usr/sbin/braced", "-t")
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertEqual(check.stdout.strip(), "/etc/braced/braced.yaml: ok")
        with open("/etc/braced/braced.yaml") as f, \
                open(os.path.join(REPO, "conf", "production.yaml")) as g:
            self.assertEqual(f.read(), g.read(), "the package installs conf/production.yaml")
        # dh_compress gzips documents over 4 KiB.
        self.assertTrue(any(os.path.isfile("/usr/share/doc/braced/deploying.md" + ext)
                            for ext in ("", ".gz")), "docs/deploying.md is not installed")

        purge = run("dpkg", "--purge", "braced")
        self.assertEqual(purge.returncode, 0, purge.stdout + purge.stderr)
        for path in FILES + ENABLED:
            self.assertFalse(os.path.lexists(path), f"{path} left behind")
        self.assertFalse(installed())


if __name__ == "__main__":
    unittest.main()
