"""The HTTP front of the real braced binary: strict framing, HEAD with a
body, limits.max_connections against slow clients, the header and idle
deadlines, and descriptor exhaustion, with the admin listener answering
throughout. Every load loop is bounded in count and time; loopback only.
"""

import http.client
import io
import socket
import time
import unittest

from harness import Braced, BracedTestCase, raw_request, request, wait_until


def metric(b, name):
    """The value of an unlabelled metric line, or of NAME{...} given whole."""
    text = request(b.admin_port, "GET", "/metrics", timeout=5).body.decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


class _Kept(io.BytesIO):
    """Bytes an HTTPResponse reads and cannot close: the next answer follows."""

    def close(self):
        pass


def answers(data, methods):
    """The HTTP answers in data, one per method, read one after another
    (each answer's body but the last is read here)."""
    buf = _Kept(data)

    class Shared:
        def makefile(self, *args, **kwargs):
            return buf

    out = []
    for i, method in enumerate(methods):
        resp = http.client.HTTPResponse(Shared(), method=method)
        resp.begin()
        if i + 1 < len(methods):
            resp.read()
        out.append(resp)
    return out


def read_all(sock, deadline_s):
    """Bytes until EOF or deadline_s; (bytes, closed)."""
    buf = b""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return buf, False
        except ConnectionResetError:
            return buf, True
        if not chunk:
            return buf, True
        buf += chunk
    return buf, False


class FramingTest(BracedTestCase):

    def test_differing_content_lengths_are_400_and_nothing_is_sent(self):
        raw = (b"POST /demo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 24\r\nContent-Length: 0\r\n\r\n"
               b"GET /SMUGGLED HTTP/1.1\r\nHost: a\r\n\r\n")
        with Braced(self.config()) as b:
            resp = raw_request(b.port, raw)
            time.sleep(0.2)
            after = b.get("/demo/after")
            seen = [r["path"] for r in self.upstream.received()]
        self.assert_front_problem(resp, 400, "bad_request")
        self.assertEqual(after.status, 200, after)
        self.assertEqual(seen, ["/base/after"])

    def test_head_with_a_body_is_framed_by_its_headers(self):
        raw = (b"HEAD /demo/h HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
               b"GET /demo/next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        with Braced(self.config()) as b:
            sock = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            try:
                sock.sendall(raw)
                # Both answers, read to the close the second one asks for:
                # each HTTPResponse buffers ahead, so one reading the socket
                # itself could swallow the next answer.
                data, closed = read_all(sock, 5)
            finally:
                sock.close()
            self.assertTrue(closed, data)
            first, second = answers(data, ["HEAD", "GET"])
            body = second.read()
            paths = [r["path"] for r in self.upstream.received()]
        self.assertEqual(first.status, 200)
        self.assertEqual(second.status, 200)
        self.assertIn(b'"/base/next"', body)
        self.assertEqual(paths, ["/base/h", "/base/next"])


class SlowClientTest(BracedTestCase):

    def test_slow_clients_hold_no_more_than_max_connections(self):
        limit, clients = 8, 24
        cfg = self.config(admin="127.0.0.1:0",
                          limits={"max_connections": limit, "header_timeout": "5s"})
        with Braced(cfg) as b:
            socks = []
            try:
                for _ in range(clients):
                    s = socket.socket()
                    s.settimeout(2)
                    s.connect(("127.0.0.1", b.port))     # the backlog takes the rest
                    socks.append(s)
                end = time.monotonic() + 1.5
                while time.monotonic() < end:           # trickle one byte each
                    for s in socks:
                        try:
                            s.send(b"G")
                        except OSError:
                            pass
                    time.sleep(0.1)
                    self.assertLessEqual(metric(b, 'braced_connections{kind="app"}'), limit)
                health = request(b.admin_port, "GET", "/healthz", timeout=2)
                paused = metric(b, "braced_accept_pauses_total")
            finally:
                for s in socks:
                    s.close()
            ok = wait_until(lambda: b.get("/demo/after").status == 200, timeout=5)
        self.assertEqual(health.status, 200)
        self.assertGreaterEqual(paused, 1)
        self.assertTrue(ok, "braced did not serve again once the slow clients left")

    def test_header_timeout_is_408_problem(self):
        cfg = self.config(limits={"header_timeout": "300ms"})
        with Braced(cfg) as b:
            sock = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            try:
                sock.sendall(b"GET /demo/x HTTP/1.1\r\nHost: a\r\n")    # never ends
                resp = http.client.HTTPResponse(sock)
                resp.begin()
                body = resp.read()
            finally:
                sock.close()
        self.assertEqual(resp.status, 408)
        self.assertTrue(resp.getheader("Content-Type").startswith("application/problem+json"))
        self.assertEqual(resp.getheader("Brace-Error"), "request_timeout")
        self.assertIn(b'"code":"request_timeout"', body.replace(b" ", b""))
        self.assert_upstream_untouched()

    def test_idle_timeout_closes_quietly(self):
        cfg = self.config(limits={"idle_timeout": "300ms"})
        with Braced(cfg) as b:
            sock = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            try:
                sock.sendall(b"GET /demo/one HTTP/1.1\r\nHost: a\r\n\r\n")
                resp = http.client.HTTPResponse(sock)
                resp.begin()
                resp.read()
                start = time.monotonic()
                rest, closed = read_all(sock, 3)
                waited = time.monotonic() - start
            finally:
                sock.close()
        self.assertEqual(resp.status, 200)
        self.assertTrue(closed, "the idle connection stayed open")
        self.assertEqual(rest, b"", "braced wrote to an idle connection before closing it")
        self.assertLess(waited, 2.5)


class DescriptorTest(BracedTestCase):

    def test_admin_answers_when_descriptors_are_exhausted(self):
        cfg = self.config(admin="127.0.0.1:0")
        with Braced(cfg, wrapper=("prlimit", "--nofile=64:64")) as b:
            held = []
            try:
                for _ in range(100):     # more than the 64 descriptors braced may hold
                    s = socket.socket()
                    s.settimeout(1)
                    try:
                        s.connect(("127.0.0.1", b.port))
                        s.send(b"GET /demo/x HTTP/1.1\r\n")   # busy, not idle
                    except OSError:
                        s.close()
                        break
                    held.append(s)
                short = wait_until(lambda: (metric(b, "braced_accept_fd_shortage_total") or 0) > 0,
                                   timeout=3)
                health = request(b.admin_port, "GET", "/healthz", timeout=2)
                metrics = request(b.admin_port, "GET", "/metrics", timeout=2)
            finally:
                for s in held:
                    s.close()
            ok = wait_until(lambda: b.get("/demo/again").status == 200, timeout=5)
        self.assertTrue(short, b.log()[-2000:])
        self.assertEqual(health.status, 200)
        self.assertEqual(metrics.status, 200)
        self.assertTrue(ok, "braced did not serve again once descriptors were free")


if __name__ == "__main__":
    unittest.main()
