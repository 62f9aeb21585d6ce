"""The upstream connection pool: pool.max_idle is how many idle connections
stay once the load goes away, never a cap on busy ones. Under steady load no
upstream connection is opened twice."""

import http.client
import os
import socket
import threading
import time
import unittest

from harness import Braced, BracedTestCase, in_threads, make_config, wait_until

CLIENTS = 32        # app connections, each with one request in flight at a time
REQUESTS = 25       # sequential keep-alive requests per app connection
PEAK_WINDOW_S = 5   # UPSTREAM_PEAK_WINDOW_S: how long a peak keeps its connections


def established_to(port):
    """TCP connections in ESTABLISHED state whose remote port is `port` (IPv4, this host)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            rem_port = int(fields[2].split(":")[1], 16)
            if rem_port == port and fields[3] == "01":
                n += 1
    return n


def keep_alive_client(port, path, n):
    """n requests on one keep-alive connection; returns the statuses."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    statuses = []
    try:
        for _ in range(n):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
    finally:
        conn.close()
    return statuses


class PoolTest(BracedTestCase):

    def setUp(self):
        super().setUp()
        self.controls = 1   # the upstream counts the connection of setUp's reset

    def accepts(self):
        """Connections the upstream accepted from braced (its own control requests aside)."""
        stats = self.upstream.stats()
        self.controls += 1
        return stats["connections"] - self.controls

    def load(self, b):
        results = in_threads(keep_alive_client,
                             [(b.port, "/demo/x", REQUESTS)] * CLIENTS, timeout=120)
        for r in results:
            self.assertIsInstance(r, list, r)
            self.assertEqual(r, [200] * REQUESTS)

    def test_steady_load_opens_each_upstream_connection_once(self):
        # Defaults: max_connections 100, max_idle 20. With 32 requests in
        # flight, a cache capped at 20 closed a connection after most answers.
        with Braced(self.config()) as b:
            self.load(b)
        accepts = self.accepts()
        self.assertEqual(self.upstream.stats()["requests"], CLIENTS * REQUESTS)
        self.assertLessEqual(accepts, CLIENTS)

    def test_idle_connections_kept_once_the_load_goes_away(self):
        cfg = self.config(defaults={"retry": {"attempts": 1},
                                    "pool": {"max_connections": 100, "max_idle": 5}})
        with Braced(cfg) as b:
            self.load(b)
            busy = self.accepts()
            self.assertGreater(busy, 5, "the load never needed more than max_idle connections")
            self.assertLessEqual(busy, CLIENTS)
            # The peak of the last 5 s keeps its connections; after it, a
            # light load closes the idle ones beyond max_idle as it goes.
            time.sleep(PEAK_WINDOW_S + 0.5)
            self.assertEqual(keep_alive_client(b.port, "/demo/y", 2 * CLIENTS),
                             [200] * (2 * CLIENTS))
            left = established_to(self.upstream.port)
            self.assertLessEqual(left, 5)
            self.assertGreaterEqual(left, 1)
            # ... and reuses them: no connection was opened for the light load.
            self.assertEqual(self.accepts(), busy)


class ClosingUpstream:
    """Answers each request 200 with keep-alive, then closes the idle
    connection after close_after seconds, as servers with a short
    keep-alive timeout do. Counts the connections it accepted."""

    def __init__(self, close_after=0.1):
        self.close_after = close_after
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.accepted += 1
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                time.sleep(self.close_after)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class IdleCloseTest(unittest.TestCase):
    """Connections between transfers stay watched by the event loop; one the
    upstream closes while idle must neither spin the loop nor fail the next
    request."""

    def test_upstream_closing_an_idle_connection(self):
        up = ClosingUpstream()
        self.addCleanup(up.close)
        cfg = make_config({"demo": {"upstream": f"http://127.0.0.1:{up.port}"}})
        with Braced(cfg) as b:
            for i in range(3):
                resp = b.get("/demo/x")
                self.assertEqual((resp.status, resp.body), (200, b"ok"), resp)
                time.sleep(up.close_after + 0.3)   # the upstream has closed it
                before = cpu_seconds(b.proc.pid)
                time.sleep(1)
                # Generous: a loop woken by the closed socket over and over
                # burns the whole second.
                self.assertLess(cpu_seconds(b.proc.pid) - before, 0.5)
        self.assertEqual(up.accepted, 3)


if __name__ == "__main__":
    unittest.main()
