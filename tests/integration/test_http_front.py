"""braced's own HTTP/1.1 server (daemon/http/) through tests/http_echo.

The echo program serves the module on loopback the way the daemon will:
these tests hold it to its connection limit under a slowloris flood, check
the deadlines end to end, that the admin listener answers while the app
listener is full, and (with strace) the system calls of a keep-alive request.
Every load is bounded in count and time; every process is stopped by PID.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import braced_bin, stop_process, wait_until

STOP_GRACE = 5.0


def echo_bin():
    """tests/http_echo beside the braced binary under test ($HTTP_ECHO_BIN overrides)."""
    path = os.environ.get("HTTP_ECHO_BIN")
    if path:
        return path
    return os.path.join(os.path.dirname(os.path.dirname(braced_bin())), "tests", "http_echo")


class Echo:
    """http_echo with limits: max_connections, header/body/idle timeouts in ms."""

    def __init__(self, max_connections=4096, header_ms=10000, body_ms=30000, idle_ms=60000):
        self.args = [echo_bin(), str(max_connections), str(header_ms), str(body_ms), str(idle_ms)]

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("port "):
            stop_process(self.proc, STOP_GRACE)
            raise RuntimeError(f"http_echo did not start: {line!r}")
        words = line.split()
        self.port, self.admin_port = int(words[1]), int(words[3])
        return self

    def __exit__(self, *exc):
        stop_process(self.proc, STOP_GRACE)
        self.proc.stdout.close()
        self.proc.stderr.close()

    @property
    def pid(self):
        return self.proc.pid


def connect(port, timeout=5.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_response(sock):
    """One response from sock: (status, headers dict lower-cased, body bytes); None on EOF."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def get(port, target="/x"):
    with connect(port) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        return read_response(s)


def counters(echo):
    """The server's counters, read through the admin listener."""
    status, _, body = get(echo.admin_port, "/counters")
    assert status == 200
    return json.loads(body)


def at_eof(sock, timeout):
    """True when the peer closes within timeout; False when bytes or nothing arrive."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


class HttpFrontTest(unittest.TestCase):

    def setUp(self):
        if not os.access(echo_bin(), os.X_OK):
            self.fail(f"{echo_bin()} not built (make check builds it)")

    def test_echo_and_problem_answers(self):
        with Echo() as e:
            status, headers, body = get(e.port, "/a?b=c")
            self.assertEqual(status, 200)
            doc = json.loads(body)
            self.assertEqual((doc["method"], doc["target"]), ("GET", "/a?b=c"))
            with connect(e.port) as s:
                s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
                status, headers, body = read_response(s)
                self.assertEqual(status, 400)
                self.assertEqual(headers["content-type"], "application/problem+json")
                self.assertEqual(json.loads(body)["code"], "bad_request")
                self.assertTrue(at_eof(s, 3))

    def test_slowloris_is_held_to_max_connections(self):
        limit, clients = 16, 48
        with Echo(max_connections=limit, header_ms=800, idle_ms=2000) as e:
            socks = []
            try:
                for _ in range(clients):
                    socks.append(connect(e.port))
                request = b"GET /slow HTTP/1.1\r\nX-Trickle: " + b"a" * 64 + b"\r\n\r\n"
                peak = 0
                # trickle a byte per connection every 100 ms for 1.5 s
                for i in range(15):
                    for s in socks:
                        try:
                            s.send(request[i:i + 1])
                        except OSError:
                            pass
                    peak = max(peak, counters(e)["connections"])
                    time.sleep(0.1)
                self.assertLessEqual(peak, limit)
                self.assertGreater(counters(e)["accept_paused"], 0)
                # the first accepted ones got 408 after header_timeout
                answered = 0
                for s in socks[:limit]:
                    s.settimeout(2)
                    try:
                        resp = read_response(s)
                    except OSError:
                        resp = None
                    if resp and resp[0] == 408:
                        answered += 1
                self.assertGreater(answered, 0)
                self.assertGreater(counters(e)["timeouts"], 0)
            finally:
                for s in socks:
                    s.close()
            self.assertTrue(wait_until(lambda: counters(e)["connections"] == 0, timeout=5))

    def test_admin_answers_while_app_listener_is_full(self):
        with Echo(max_connections=4) as e:
            socks = [connect(e.port) for _ in range(10)]
            try:
                self.assertTrue(wait_until(lambda: counters(e)["connections"] == 4, timeout=3))
                status, _, body = get(e.admin_port, "/healthz")
                self.assertEqual(status, 200)
            finally:
                for s in socks:
                    s.close()

    def test_header_timeout_counts_from_first_byte(self):
        with Echo(header_ms=300, idle_ms=5000) as e:
            with connect(e.port) as s:
                time.sleep(0.5)  # idle, not yet a request: no 408
                s.sendall(b"GET / HTTP/1.1\r\n")
                started = time.monotonic()
                for _ in range(5):
                    s.sendall(b"X-A: 1\r\n")  # a trickle extends nothing
                    time.sleep(0.1)
                status, headers, body = read_response(s)
                self.assertEqual(status, 408)
                self.assertEqual(json.loads(body)["code"], "request_timeout")
                self.assertLess(time.monotonic() - started, 3.0)

    def test_body_timeout(self):
        with Echo(body_ms=300) as e:
            with connect(e.port) as s:
                s.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
                status, _, body = read_response(s)
                self.assertEqual(status, 408)

    def test_idle_keep_alive_is_closed_quietly(self):
        with Echo(idle_ms=300) as e:
            with connect(e.port) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                self.assertEqual(read_response(s)[0], 200)
                self.assertTrue(at_eof(s, 3))

    def test_client_gone_is_reported(self):
        with Echo() as e:
            s = connect(e.port)
            s.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(0.1)
            s.close()
            self.assertTrue(wait_until(lambda: counters(e)["gone"] >= 1, timeout=3))

    @unittest.skipUnless(shutil.which("strace"), "strace not installed")
    def test_keep_alive_request_costs_one_read_one_write(self):
        n = 300
        with Echo() as e, tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "strace.out")
            with connect(e.port) as s:
                s.sendall(b"GET /warm HTTP/1.1\r\nHost: t\r\n\r\n")
                read_response(s)
                tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(e.pid)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                try:
                    if not wait_until(lambda: b"attached" in peek(tracer), timeout=3):
                        self.skipTest("strace cannot attach here")
                    for _ in range(n):
                        s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
                        read_response(s)
                finally:
                    stop_process(tracer, STOP_GRACE, sig=2)
                    tracer.stderr.close()
            calls = parse_strace(out)
        self.assertLessEqual(calls.get("read", 0) + calls.get("readv", 0), n + 2, calls)
        self.assertLessEqual(calls.get("writev", 0) + calls.get("write", 0), n + 2, calls)
        self.assertLessEqual(calls.get("epoll_ctl", 0), 2, calls)


def peek(proc):
    """Whatever strace printed on stderr so far (non-blocking)."""
    os.set_blocking(proc.stderr.fileno(), False)
    try:
        data = proc.stderr.read()
    except (BlockingIOError, TypeError):
        data = None
    peek.seen = getattr(peek, "seen", b"") + (data or b"")
    return peek.seen


def parse_strace(path):
    calls = {}
    with open(path) as f:
        for line in f:
            words = line.split()
            if len(words) >= 5 and words[0][0].isdigit() and words[-1] != "total":
                calls[words[-1]] = int(words[3])
    return calls


if __name__ == "__main__":
    unittest.main()
