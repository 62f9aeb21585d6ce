"""scripts/run, as the README's first command: it serves the demo, and
stopping the script (Ctrl-C or kill PID) stops braced and the demo upstream."""

import os
import signal
import socket
import subprocess
import time
import unittest

from harness import REPO, request, wait_until

PORTS = (7070, 7080)   # braced and the demo upstream, as conf/braced.yaml has them


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RunScriptTest(unittest.TestCase):

    def start(self):
        busy = [p for p in PORTS if listening(p)]
        if busy:
            self.fail(f"ports {busy} are already in use: stop the other scripts/run first")
        proc = subprocess.Popen([os.path.join(REPO, "scripts", "run")], cwd=REPO,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(self.kill_group, proc)
        up = wait_until(lambda: all(listening(p) for p in PORTS), timeout=120, step=0.1)
        self.assertTrue(up, "scripts/run did not start braced and the demo upstream")
        return proc

    def kill_group(self, proc):
        # Only if the test failed half-way: the script's whole session, by its PID.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)

    def check_stops_on(self, sig):
        proc = self.start()
        resp = request(7070, "GET", "/demo/v1/weather?city=Paris", timeout=10)
        self.assertEqual(resp.status, 200, resp)
        os.kill(proc.pid, sig)
        proc.wait(20)
        gone = wait_until(lambda: not any(listening(p) for p in PORTS), timeout=15, step=0.1)
        self.assertTrue(gone, f"still listening after {sig.name} to the script: "
                              f"{[p for p in PORTS if listening(p)]}")

    def test_kill_stops_braced_and_the_upstream(self):
        self.check_stops_on(signal.SIGTERM)

    def test_ctrl_c_stops_braced_and_the_upstream(self):
        # A terminal's Ctrl-C reaches the script's foreground group; the
        # script's own SIGINT is what matters here.
        self.check_stops_on(signal.SIGINT)


if __name__ == "__main__":
    unittest.main()
