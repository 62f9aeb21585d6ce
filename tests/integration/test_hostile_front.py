"""Hostile clients of braced's own HTTP front (issue 17, items 3 and 7).

The admin listener, flooded with idle connections under a small descriptor
limit or with request bodies, must neither starve the app listener nor grow
braced's memory; on a non-loopback address it serves probes and metrics
only. Framing RFC 9112 says to refuse is refused before routing, on both
listeners, and nothing reaches the upstream. Every load loop is bounded in
count and time; traffic stays on 127.0.0.0/8; every socket is closed and
every process stopped by PID.
"""

import http.client
import os
import socket
import tempfile
import time
import unittest

from harness import Braced, BracedTestCase, raw_request, request, unix_request, wait_until

FD_LIMIT = 256          # braced's RLIMIT_NOFILE in the connection flood
FLOOD = 300             # idle admin connections opened
FLOOD_SECONDS = 20      # at most, for opening them
BODY_CONNECTIONS = 100  # admin connections that send a body
BODY_BATCH = 25         # of them open at once (under the admin cap of 64)
BODY_LEN = 1024 * 1024  # the Content-Length each announces
BODY_SECONDS = 10       # at most, per batch
RSS_GROWTH_MAX = 20 * 1024 * 1024


def metric(port, name):
    """The value of metric line NAME (labels included when given) from /metrics at port."""
    text = request(port, "GET", "/metrics", timeout=5).body.decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def rss_anon(pid):
    """RssAnon of pid in bytes (/proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/PID/status")


def get_on(sock, path):
    """GET path on an open connection; returns (status, body). The connection stays open."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    resp = http.client.HTTPResponse(sock, method="GET")
    resp.begin()
    return resp.status, resp.read()


class AdminFloodTest(BracedTestCase):

    def test_idle_admin_connections_do_not_starve_the_app(self):
        cfg = self.config(admin="127.0.0.1:0")
        with Braced(cfg, wrapper=("prlimit", f"--nofile={FD_LIMIT}:{FD_LIMIT}")) as b:
            admin = b.admin_port
            keep = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            flood = []
            try:
                self.assertEqual(get_on(keep, "/demo/before")[0], 200)
                end = time.monotonic() + FLOOD_SECONDS
                while len(flood) < FLOOD and time.monotonic() < end:
                    s = socket.socket()
                    s.settimeout(2)
                    try:
                        s.connect(("127.0.0.1", admin))
                    except OSError:
                        s.close()
                        break
                    flood.append(s)
                self.assertEqual(len(flood), FLOOD)
                # During the flood: the app over fresh connections and over
                # the keep-alive one opened before it, and /metrics.
                for i in range(5):
                    resp = b.get(f"/demo/fresh{i}", timeout=5)
                    self.assertEqual(resp.status, 200, resp)
                status, body = get_on(keep, "/demo/kept")
                self.assertEqual(status, 200, body)
                self.assertIn(b'"/base/kept"', body)
                self.assertEqual(metric(admin, "braced_admin_connections_limit"), FD_LIMIT // 8)
                self.assertLessEqual(metric(admin, 'braced_connections{kind="admin"}'),
                                     FD_LIMIT // 8)
                self.assertGreater(metric(admin, 'braced_admin_connections_shed_total'
                                                 '{reason="evicted"}'), 0)
            finally:
                for s in flood:
                    s.close()
            health = request(admin, "GET", "/healthz", timeout=5)
            status, _ = get_on(keep, "/demo/after")
            keep.close()
        self.assertEqual(health.status, 200)
        self.assertEqual(status, 200)

    def test_admin_bodies_get_413_at_the_head_and_memory_stays_bounded(self):
        cfg = self.config(admin="127.0.0.1:0")
        head = (b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % BODY_LEN)
        chunk = b"x" * 65536
        statuses = []
        with Braced(cfg, wrapper=("prlimit", "--nofile=1024:1024")) as b:
            admin = b.admin_port
            self.assertEqual(request(admin, "GET", "/metrics", timeout=5).status, 200)
            before = rss_anon(b.proc.pid)
            peak = before
            for first in range(0, BODY_CONNECTIONS, BODY_BATCH):
                socks = []
                try:
                    for _ in range(BODY_BATCH):
                        s = socket.create_connection(("127.0.0.1", admin), timeout=5)
                        socks.append(s)
                        s.sendall(head + chunk)
                        s.setblocking(False)
                    got, batch_peak = self.pump_bodies(socks, chunk, b.proc.pid)
                    peak = max(peak, batch_peak)
                finally:
                    for s in socks:
                        s.close()
                statuses.extend(got)
            app = b.get("/demo/after", timeout=5)
        self.assertLess(peak - before, RSS_GROWTH_MAX,
                        f"RssAnon grew from {before} to {peak} bytes")
        self.assertEqual(statuses, [413] * BODY_CONNECTIONS)
        self.assertEqual(app.status, 200)

    def pump_bodies(self, socks, chunk, pid):
        """Keep sending each socket's body while reading its answer; returns the
        status each got before its body was sent whole (None: no answer), and
        the highest RssAnon of pid seen meanwhile."""
        sent = [len(chunk)] * len(socks)
        got = [None] * len(socks)
        done = [False] * len(socks)
        buf = [b""] * len(socks)
        peak = rss_anon(pid)
        end = time.monotonic() + BODY_SECONDS
        while not all(done) and time.monotonic() < end:
            for i, s in enumerate(socks):
                if done[i]:
                    continue
                try:
                    data = s.recv(65536)
                    if not data:
                        done[i] = True
                    buf[i] += data
                except BlockingIOError:
                    pass
                except OSError:
                    done[i] = True
                if got[i] is None and b"\r\n" in buf[i] and sent[i] < BODY_LEN:
                    got[i] = int(buf[i].split(b" ", 2)[1])
                    done[i] = True
                if done[i] or sent[i] >= BODY_LEN:
                    continue
                try:
                    sent[i] += s.send(chunk[:BODY_LEN - sent[i]])
                except BlockingIOError:
                    pass
                except OSError:
                    done[i] = True
            peak = max(peak, rss_anon(pid))
            time.sleep(0.01)
        return got, peak


class AdminScopeTest(BracedTestCase):

    def statuses(self, host, port):
        out = {}
        for path in ("/healthz", "/readyz", "/metrics", "/status", "/config"):
            conn = http.client.HTTPConnection(host, port, timeout=5)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                out[path] = resp.status
            finally:
                conn.close()
        return out

    def test_non_loopback_admin_serves_probes_and_metrics_only(self):
        # 0.0.0.0 is the pod case; reached here over 127.0.0.1, the bound
        # address decides, not the peer's.
        with Braced(self.config(admin="0.0.0.0:0")) as b:
            got = self.statuses("127.0.0.1", b.admin_port)
            post = request(b.admin_port, "POST", "/config", body=b"", timeout=5)
            missing = request(b.admin_port, "GET", "/nope", timeout=5)
            log = b.log()
        self.assertEqual(got, {"/healthz": 200, "/readyz": 200, "/metrics": 200,
                               "/status": 404, "/config": 404})
        self.assertEqual(post.status, 404)
        self.assertEqual(missing.status, 404)
        self.assertEqual(missing.json()["endpoints"], ["/healthz", "/readyz", "/metrics"])
        self.assertIn("serves only /healthz, /readyz and /metrics", log)

    def test_loopback_admin_serves_everything(self):
        for host in ("127.0.0.1", "127.0.0.2"):
            with self.subTest(host), Braced(self.config(admin=f"{host}:0")) as b:
                got = self.statuses(host, b.admin_port)
            self.assertEqual(set(got.values()), {200}, got)

    def test_unix_socket_admin_serves_everything(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "admin.sock")
            with Braced(self.config(admin=f"unix:{path}")) as b:
                self.assertTrue(wait_until(lambda: os.path.exists(path), timeout=5))
                status = unix_request(path, "GET", "/status", timeout=5)
                config = unix_request(path, "GET", "/config", timeout=5)
        self.assertEqual((status.status, config.status), (200, 200))

    def test_admin_head_deadline_is_its_own(self):
        # The app's header_timeout is a minute; an admin head gets seconds.
        cfg = self.config(admin="127.0.0.1:0", limits={"header_timeout": "60s"})
        with Braced(cfg) as b:
            with socket.create_connection(("127.0.0.1", b.admin_port), timeout=10) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\n")
                start = time.monotonic()
                resp = http.client.HTTPResponse(s)
                resp.begin()
                waited = time.monotonic() - start
                resp.read()
        self.assertEqual(resp.status, 408)
        self.assertLess(waited, 9)


# (name, raw request, status, code): refused by the HTTP front before routing.
FRONT_REFUSALS = [
    ("gzip before chunked",
     b"POST /demo/x HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
     b"Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, "not_implemented"),
    ("gzip and chunked in two fields",
     b"POST /demo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 501, "not_implemented"),
    ("a coding not ending in chunked",
     b"POST /demo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
     "bad_request"),
    ("Transfer-Encoding on HTTP/1.0",
     b"POST /demo/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400,
     "bad_request"),
    ("HTTP/1.1 without Host", b"GET /demo/x HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, "bad_request"),
    ("two Host fields", b"GET /demo/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_request"),
    ("a chunk size of 2^64-1",
     b"POST /demo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffffffffffffffff\r\nabc", 400, "bad_request"),
    ("two spaces after the method", b"GET  /demo/x HTTP/1.1\r\nHost: a\r\n\r\n", 400,
     "bad_request"),
    ("two spaces before the version", b"GET /demo/x  HTTP/1.1\r\nHost: a\r\n\r\n", 400,
     "bad_request"),
]

# The same parser on the admin listener.
ADMIN_REFUSALS = [
    ("two spaces", b"GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request"),
    ("no Host", b"GET /metrics HTTP/1.1\r\n\r\n", 400, "bad_request"),
    ("gzip before chunked",
     b"GET /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
     "not_implemented"),
    ("a body", b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}", 413,
     "payload_too_large"),
    ("a chunked body",
     b"GET /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413,
     "payload_too_large"),
]


class FrontRefusalTest(BracedTestCase):

    def test_each_refusal_comes_before_routing_and_nothing_is_sent(self):
        with Braced(self.config(admin="127.0.0.1:0")) as b:
            for name, raw, status, code in FRONT_REFUSALS:
                with self.subTest(name):
                    self.upstream.reset()
                    resp = raw_request(b.port, raw, timeout=5)
                    doc = self.assert_front_problem(resp, status, code)
                    self.assertNotIn("profile", doc)
                    self.assert_upstream_untouched()
                    self.assertEqual(b.get("/demo/after").status, 200)
            for name, raw, status, code in ADMIN_REFUSALS:
                with self.subTest("admin: " + name):
                    resp = raw_request(b.admin_port, raw, timeout=5)
                    self.assert_front_problem(resp, status, code)
            self.upstream.reset()
            rejected = metric(b.admin_port, 'braced_front_rejected_total{status="501"}')
        self.assertEqual(rejected, 3)
        self.assert_upstream_untouched()

    def test_http10_without_host_is_still_served(self):
        with Braced(self.config()) as b:
            resp = raw_request(b.port, b"GET /demo/old HTTP/1.0\r\n\r\n", timeout=5)
            seen = [r["path"] for r in self.upstream.received()]
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(seen, ["/base/old"])


if __name__ == "__main__":
    unittest.main()
