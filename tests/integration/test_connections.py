"""Client connections: an app that hangs up, the unix socket listener, many at once.

A client that leaves must make braced drop its upstream request; the unix
listener must behave like the TCP one; 200 concurrent requests must all succeed.
"""

import os
import shutil
import socket
import tempfile
import time
import unittest

from harness import (Braced, BracedTestCase, fault, in_threads, request, unix_request,
                     wait_until)


class ConnectionTest(BracedTestCase):

    def test_client_disconnect_cancels_the_upstream_request(self):
        with Braced(self.config()) as b:
            sock = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            try:
                sock.sendall(b"GET /demo/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b'X-Fault: {"delay_ms": 5000}\r\n\r\n')
                arrived = wait_until(lambda: self.upstream.stats()["requests"] >= 1, timeout=3)
                self.assertTrue(arrived, "the request never reached the upstream")
                time.sleep(0.3)
            finally:
                sock.close()
            aborted = wait_until(lambda: self.upstream.stats()["aborted"] >= 1, timeout=3)
            self.assertTrue(aborted, "braced kept the upstream request after the client left")
            resp = b.get("/demo/after")
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.json()["path"], "/base/after")

    def test_client_leaving_at_once_still_cancels_the_upstream_request(self):
        # The app hangs up right after sending: the departure must still be
        # seen and the transfer cancelled, at the upstream or before it.
        with Braced(self.config()) as b:
            sock = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            sock.sendall(b"GET /demo/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b'X-Fault: {"delay_ms": 5000}\r\n\r\n')
            sock.close()
            gone = wait_until(lambda: '"code":"client_gone"' in b.log(), timeout=3)
            self.assertTrue(gone, b.log())
            stats = self.upstream.stats()
            if stats["requests"]:
                aborted = wait_until(lambda: self.upstream.stats()["aborted"] >= 1, timeout=3)
                self.assertTrue(aborted, "braced kept the upstream request after the client left")

    def test_unix_socket_listener_forwards(self):
        sock_dir = tempfile.mkdtemp(prefix="braced-sock-")
        self.addCleanup(shutil.rmtree, sock_dir, True)
        sock_path = os.path.join(sock_dir, "braced.sock")
        config = self.config(listen=["127.0.0.1:0", f"unix:{sock_path}"])
        with Braced(config) as b:
            self.assertEqual(b.unix_paths, [sock_path])
            resp = unix_request(sock_path, "GET", "/demo/via/unix?u=1")
        self.assertEqual(resp.status, 200, resp)
        echo = resp.json()
        self.assertEqual((echo["path"], echo["query"]), ("/base/via/unix", "u=1"))

    def test_200_concurrent_requests_are_all_answered(self):
        config = self.config(defaults={"timeouts": {"pool": "10s", "total": "20s"}})
        with Braced(config) as b:
            slow = fault(delay_ms=200)      # keeps them in flight together
            results = in_threads(lambda i: b.get(f"/demo/c/{i}", slow, timeout=25),
                                 [(i,) for i in range(200)], timeout=30)
        for i, resp in enumerate(results):
            with self.subTest(i=i):
                self.assertNotIsInstance(resp, Exception)
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(resp.json()["path"], f"/base/c/{i}")


class DescriptorExhaustionTest(BracedTestCase):
    """Out of file descriptors, braced pauses accepting instead of spinning
    on the pending connection, and serves again once descriptors are free."""

    def test_accept_pauses_when_out_of_descriptors_and_recovers(self):
        cfg = self.config(admin="127.0.0.1:0")
        with Braced(cfg, wrapper=("prlimit", "--nofile=40:40")) as b:
            held = []
            try:
                for _ in range(60):      # more than the 40 descriptors braced may hold
                    s = socket.socket()
                    s.settimeout(1)
                    try:
                        s.connect(("127.0.0.1", b.port))
                    except OSError:
                        s.close()
                        break
                    held.append(s)
                short = wait_until(lambda: fd_shortage(b) > 0, timeout=3)
                before = fd_shortage(b)
                time.sleep(1.0)
                in_a_second = fd_shortage(b) - before
            finally:
                for s in held:
                    s.close()
            self.assertTrue(short, b.log())
            # Failed accepts pause listening for 100 ms (or close an idle
            # connection): a few per second, not one per loop turn.
            self.assertLessEqual(in_a_second, 400, b.log()[-2000:])
            ok = wait_until(lambda: b.get("/demo/again").status == 200, timeout=5)
        self.assertTrue(ok, "braced did not serve again once descriptors were free")


def fd_shortage(b):
    """braced_accept_fd_shortage_total from the admin listener."""
    text = request(b.admin_port, "GET", "/metrics", timeout=5).body.decode()
    for line in text.splitlines():
        if line.startswith("braced_accept_fd_shortage_total "):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":
    unittest.main()
