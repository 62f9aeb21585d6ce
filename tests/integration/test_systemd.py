"""Running under systemd (SPEC 6): readiness, reload, stop and watchdog
messages on $NOTIFY_SOCKET, and listeners passed by socket activation
(systemd-socket-activate stands in for systemd)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BracedTestCase, braced_bin, closed_port, request, stop_process


class NotifySocket:
    """A unix datagram socket like systemd's, collecting what braced sends."""

    def __init__(self, abstract=False):
        self.dir = tempfile.mkdtemp(prefix="braced-notify-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "\0braced-test-" + os.path.basename(self.dir)
            self.sock.bind(name)
            self.address = "@" + name[1:]
        else:
            self.address = os.path.join(self.dir, "notify")
            self.sock.bind(self.address)
        self.sock.settimeout(0.1)
        self.messages = []

    def wait_for(self, text, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in m for m in self.messages):
                return True
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return any(text in m for m in self.messages)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SystemdTest(BracedTestCase):
    def start(self, extra_env, argv_prefix=(), config=None):
        self.tmp = tempfile.mkdtemp(prefix="braced-sd-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        path = os.path.join(self.tmp, "braced.yaml")
        with open(path, "w") as f:
            f.write(config or self.config())
        self.log_path = os.path.join(self.tmp, "braced.err")
        env = dict(os.environ, **extra_env)
        with open(self.log_path, "wb") as err:
            proc = subprocess.Popen([*argv_prefix, braced_bin(), "-c", path],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, env=env)
        self.addCleanup(stop_process, proc, 10)
        return proc

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_lines(self):
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def test_ready_reloading_and_stopping_are_notified(self):
        for abstract in (False, True):
            with self.subTest(abstract=abstract):
                ns = NotifySocket(abstract)
                self.addCleanup(ns.close)
                proc = self.start({"NOTIFY_SOCKET": ns.address})
                self.assertTrue(ns.wait_for("READY=1"), ns.messages)
                os.kill(proc.pid, signal.SIGHUP)
                self.assertTrue(ns.wait_for("RELOADING=1"), ns.messages)
                reloading = [m for m in ns.messages if "RELOADING=1" in m][0]
                self.assertIn("MONOTONIC_USEC=", reloading)
                self.assertEqual(sum("READY=1" in m for m in ns.messages[:1]), 1)
                os.kill(proc.pid, signal.SIGTERM)
                self.assertTrue(ns.wait_for("STOPPING=1"), ns.messages)
                self.assertEqual(proc.wait(timeout=10), 0, self.log())

    def test_watchdog_is_pinged(self):
        ns = NotifySocket()
        self.addCleanup(ns.close)
        self.start({"NOTIFY_SOCKET": ns.address, "WATCHDOG_USEC": "200000"})
        self.assertTrue(ns.wait_for("READY=1"), ns.messages)
        self.assertTrue(ns.wait_for("WATCHDOG=1", timeout=3), ns.messages)

    def test_socket_activation_uses_the_passed_listener(self):
        port = closed_port()
        proc = self.start({}, argv_prefix=("systemd-socket-activate", "-l",
                                           f"127.0.0.1:{port}"),
                          config=self.config(admin="127.0.0.1:0"))
        # The socket exists before braced runs: connecting starts it (accept mode off).
        deadline = time.monotonic() + 10
        resp = None
        while time.monotonic() < deadline:
            try:
                resp = request(port, "GET", "/demo/x")
                break
            except OSError:
                time.sleep(0.05)
        self.assertIsNotNone(resp, "no answer on the passed socket:\n" + self.log())
        self.assertEqual(resp.status, 200, resp)
        self.assertIn('"passed_fd":3', self.log())
        # Said once at start: the passed socket stands for `listen`.
        said = [l for l in self.log_lines()
                if l.get("msg", "").startswith("socket-activated listeners replace 'listen'")]
        self.assertEqual(len(said), 1, self.log())
        self.assertEqual(said[0]["listeners"], f"127.0.0.1:{port}")
        self.assertEqual(said[0]["listen_not_used"], "127.0.0.1:0")
        admin = [l for l in self.log_lines() if l.get("msg") == "admin listening"][0]
        doc = request(int(admin["listen"].rsplit(":", 1)[1]), "GET", "/config").json()
        self.assertEqual(doc["listen"], [f"127.0.0.1:{port}"])
        self.assertIs(doc["socket_activated"], True)
        self.assertEqual(self.upstream.stats()["requests"], 1)
        # A second request proves the passed socket was made non-blocking.
        self.assertEqual(request(port, "GET", "/demo/y").status, 200)
        self.assertIsNone(proc.poll())


if __name__ == "__main__":
    unittest.main()
