"""Hostile upstreams on the wire: an answer nobody asked for, and a request
read and then dropped on a reused connection.

A raw upstream (a socket server in this file, plain or TLS) answers each
request with a body naming the request's path, and injects what the case
needs. Two profiles share the upstream's host:port, so one libcurl
connection could serve both. Each case asserts what the app received and
what the upstream received (SPEC section 3: an answer belongs to the request
that asked for it; the upstream sees a request exactly as many times as the
policy sent it, and Brace-Attempts says how many)."""

import gzip
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import unittest

from harness import Braced, BracedTestCase, binary_problem, fault, make_config, request
from test_tls import make_certificate

INJECTED = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n"
            b'{"path": "INJECTED!"}')
MAX_HEAD = 64 * 1024
ROUNDS = 6                  # trigger/check pairs per case
IO_TIMEOUT = 10.0           # seconds any upstream socket waits


def answer(path, status=200, head_only=False, keep=True):
    body = json.dumps({"path": path}).encode()
    reason = {200: "OK", 204: "No Content", 304: "Not Modified"}.get(status, "X")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
    if status in (204, 304):
        body = b""
    else:
        head += f"Content-Length: {len(body)}\r\n"
    if not keep:
        head += "Connection: close\r\n"
    head = (head + "\r\n").encode()
    return head if head_only else head + body


class RawUpstream:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose answers a test writes.

    handler(up, conn, req) is called per request with req = {"method", "path",
    "body", "index"} (index: the request's number on its connection, from 0);
    it writes to conn (a socket, TLS-wrapped when context is given) and
    returns False to close the connection. Every request is recorded in
    .requests, with the connection's number."""

    def __init__(self, handler, context=None):
        self.handler = handler
        self.context = context
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.open = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, base="/base"):
        scheme = "https" if self.context else "http"
        return f"{scheme}://127.0.0.1:{self.port}{base}"

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn, number):
        conn.settimeout(IO_TIMEOUT)
        try:
            if self.context:
                conn = self.context.wrap_socket(conn, server_side=True)
            with self.lock:
                self.open.append(conn)
            buf = b""
            index = 0
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data or len(buf) > MAX_HEAD:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                req = {"method": method, "path": path, "body": body, "index": index,
                       "connection": number}
                with self.lock:
                    self.requests.append(req)
                index += 1
                if self.handler(self, conn, req) is False:
                    return
        except (OSError, ValueError, ssl.SSLError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def later(self, conn, delay, data):
        """Write data on conn after delay seconds (errors ignored: braced may have closed it)."""
        def send():
            try:
                conn.sendall(data)
            except (OSError, ssl.SSLError):
                pass
        timer = threading.Timer(delay, send)
        timer.daemon = True
        timer.start()

    def received(self, method=None, suffix=None):
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r["method"] == method)
                    and (suffix is None or r["path"].endswith(suffix))]

    def stop(self):
        self.stopping = True
        self.sock.close()
        with self.lock:
            for conn in self.open:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.thread.join(5)


class WireCase(unittest.TestCase):
    def setUp(self):
        problem = binary_problem()
        if problem:
            self.fail(problem)

    def start(self, handler, context=None):
        up = RawUpstream(handler, context)
        self.addCleanup(up.stop)
        return up

    def braced(self, up, profile_extra=None, tls=None):
        profiles = {}
        for name in ("a", "b"):
            profile = {"upstream": up.url()}
            if tls:
                profile["tls"] = tls
            profile.update(profile_extra or {})
            profiles[name] = profile
        return Braced(make_config(profiles))


class AnswerBelongsToItsRequest(WireCase):
    """An upstream writes a response nobody asked for on a keep-alive
    connection; the next request (from the other profile, on the same
    host:port) still gets its own answer, and so does every later one."""

    def run_case(self, inject, trigger_method="GET", pause=0.0):
        def handler(up, conn, req):
            if "/trigger" in req["path"]:
                inject(up, conn, req)
            else:
                conn.sendall(answer(req["path"]))
            return True

        up = self.start(handler)
        with self.braced(up) as b:
            for i in range(ROUNDS):
                first = b.request(trigger_method, f"/a/trigger-{i}")
                self.assertIn(first.status, (200, 204, 304), first)
                if pause:
                    time.sleep(pause)
                second = b.get(f"/b/check-{i}")
                self.assertEqual(second.status, 200, second)
                self.assertEqual(second.json(), {"path": f"/base/check-{i}"},
                                 f"round {i}: another request's answer was handed over")
            # No lasting shift: every later request gets its own answer.
            for i in range(4):
                resp = b.get(f"/a/after-{i}")
                self.assertEqual(resp.json(), {"path": f"/base/after-{i}"}, resp)
            self.assertNotIn("INJECTED", b.log())
        return up

    def test_response_glued_behind_a_body(self):
        self.run_case(lambda up, conn, req: conn.sendall(answer(req["path"]) + INJECTED))

    def test_response_glued_behind_a_chunked_body(self):
        def inject(up, conn, req):
            body = json.dumps({"path": req["path"]}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                         b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) + INJECTED)
        self.run_case(inject)

    def test_response_sent_150_ms_after_the_answer(self):
        def inject(up, conn, req):
            conn.sendall(answer(req["path"]))
            up.later(conn, 0.15, INJECTED)
        self.run_case(inject, pause=0.35)

    def run_bodyless(self, method="GET", **head):
        """A bodyless answer (head), then a response 20 ms later as its "body"."""
        def inject(up, conn, req):
            conn.sendall(answer(req["path"], **head))
            time.sleep(0.02)
            conn.sendall(INJECTED)
        self.run_case(inject, trigger_method=method, pause=0.05)

    def test_response_as_the_body_of_a_204(self):
        self.run_bodyless(status=204)

    def test_response_as_the_body_of_a_304(self):
        self.run_bodyless(status=304)

    def test_response_as_the_body_of_a_head_answer(self):
        self.run_bodyless("HEAD", head_only=True)

    def test_unasked_bytes_arriving_at_once_are_never_an_answer(self):
        # No pause at all: the next request is sent as soon as the first is
        # answered, while the stray response is already on the wire.
        self.run_case(lambda up, conn, req: conn.sendall(answer(req["path"], status=204) + INJECTED))


class NoLibraryResend(WireCase):
    """The upstream reads a request on a reused connection and closes without
    answering. libcurl would send it again on a new connection; braced lets
    only its policy decide, and Brace-Attempts counts what was sent."""

    @classmethod
    def setUpClass(cls):
        cls.tls_dir = tempfile.mkdtemp(prefix="braced-wire-")
        cls.addClassCleanup(shutil.rmtree, cls.tls_dir, True)
        cls.cert, cls.key = make_certificate(cls.tls_dir)

    def drop_on_reuse(self, tls):
        def handler(up, conn, req):
            if "/drop" in req["path"] and req["index"] > 0:
                return False            # read it, then close without a word
            conn.sendall(answer(req["path"]))
            return True

        context = None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, self.key)
        return self.start(handler, context)

    def check_unsafe(self, tls, body):
        up = self.drop_on_reuse(tls)
        extra = {"retry": {"attempts": 3, "unsafe": "never"}}
        with self.braced(up, extra, tls={"ca_file": self.cert} if tls else None) as b:
            warm = b.get("/a/warm")
            self.assertEqual(warm.status, 200, warm)
            resp = b.request("POST", "/a/drop", body=body,
                             headers={"Content-Type": "application/json"})
            posts = up.received("POST", "/drop")
            self.assertEqual(len(posts), 1, f"the upstream received the POST {len(posts)} times")
            self.assertEqual(posts[0]["body"], body)
            self.assertEqual(resp.status, 502, resp)
            self.assertEqual(resp.headers.get("Brace-Error"), "upstream_unavailable", resp)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
            self.assertEqual(resp.json()["history"][0]["outcome"], "reset", resp)
            # The next request is served as usual.
            self.assertEqual(b.get("/b/after").status, 200)

    def test_post_with_a_body_is_not_resent(self):
        self.check_unsafe(False, b'{"amount": 100}')

    def test_post_without_a_body_is_not_resent(self):
        self.check_unsafe(False, b"")

    def test_post_with_a_body_is_not_resent_over_tls(self):
        self.check_unsafe(True, b'{"amount": 100}')

    def test_post_without_a_body_is_not_resent_over_tls(self):
        self.check_unsafe(True, b"")

    def test_a_retried_get_is_counted(self):
        up = self.drop_on_reuse(False)
        extra = {"retry": {"attempts": 3, "backoff": {"base": "10ms", "max": "10ms"}}}
        with self.braced(up, extra) as b:
            self.assertEqual(b.get("/a/warm").status, 200)
            resp = b.get("/a/drop")
            self.assertEqual(resp.status, 200, resp)
            gets = up.received("GET", "/drop")
            self.assertEqual(resp.headers.get("Brace-Attempts"), str(len(gets)), resp)
            self.assertEqual(len(gets), 2, gets)


def chunked(body, piece=4096):
    out = b""
    for i in range(0, len(body), piece):
        out += b"%x\r\n%s\r\n" % (len(body[i:i + piece]), body[i:i + piece])
    return out + b"0\r\n\r\n"


ZEROS = b"\0" * (4 * 1024 * 1024)
# (name, Transfer-Encoding lines, body as sent)
BAD_CODINGS = [
    ("gzip then chunked, 4 MiB from a few KiB", ["gzip, chunked"], chunked(gzip.compress(ZEROS))),
    ("chunked twice in one line", ["chunked, chunked"], chunked(b'{"a": 1}')),
    ("chunked on two lines", ["chunked", "chunked"], chunked(b'{"a": 1}')),
    ("identity", ["identity"], b'{"a": 1}'),
    ("gzip alone", ["gzip"], gzip.compress(b'{"a": 1}')),
    # More codings than libcurl stacks: it refuses the line before braced sees it.
    ("six codings", ["gzip, gzip, gzip, gzip, gzip, gzip, chunked"], chunked(b'{"a": 1}')),
]


class UpstreamTransferCoding(WireCase):
    """An answer whose Transfer-Encoding is anything but exactly chunked is
    malformed (SPEC 3): outcome reset, never relayed, and never decoded by
    libcurl (a gzip coding would inflate into memory nobody bounded)."""

    def test_each_coding_but_chunked_is_a_malformed_answer(self):
        def handler(up, conn, req):
            name = req["path"].rsplit("/", 1)[-1]
            if not name.startswith("bad-"):
                conn.sendall(answer(req["path"]))
                return True
            _, lines, body = BAD_CODINGS[int(name[4:])]
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += "".join(f"Transfer-Encoding: {v}\r\n" for v in lines)
            conn.sendall(head.encode() + b"\r\n" + body)
            return False

        up = self.start(handler)
        extra = {"retry": {"attempts": 1}, "circuit_breaker": {"enabled": False}}
        with self.braced(up, extra) as b:
            for i, (name, _, _) in enumerate(BAD_CODINGS):
                with self.subTest(name):
                    resp = b.get(f"/a/bad-{i}")
                    self.assertEqual(resp.status, 502, resp)
                    self.assertEqual(resp.headers.get("Brace-Error"), "upstream_unavailable", resp)
                    doc = resp.json()
                    self.assertEqual(doc["history"][0]["outcome"], "reset", doc)
                    self.assertIn("malformed answer", doc["detail"], doc)
                    self.assertNotIn(b'"a": 1', resp.body)
                    ok = b.get(f"/b/after-{i}")
                    self.assertEqual(ok.json(), {"path": f"/base/after-{i}"}, ok)

    def test_chunked_in_any_case_is_relayed(self):
        body = json.dumps({"path": "chunked"}).encode()

        def handler(up, conn, req):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"transfer-encoding:  Chunked \r\n\r\n" + chunked(body, 5))
            return True

        up = self.start(handler)
        with self.braced(up) as b:
            resp = b.get("/a/x")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json(), {"path": "chunked"})


class ServerTimingOfTheUpstream(BracedTestCase):
    """An upstream cannot fake braced's own Server-Timing entries: its
    entries named upstream or total are dropped, the rest relayed."""

    def timing_entries(self, resp):
        entries = []
        for value in resp.headers.get_all("Server-Timing") or []:
            entries += [e.strip() for e in value.split(",") if e.strip()]
        return entries

    def check(self, status, value, kept):
        headers = {"Server-Timing": value}
        with Braced(self.config({"upstream_errors": "passthrough"})) as b:
            resp = b.get("/demo/x", headers=fault(status=status, headers=headers,
                                                   body='{"e": 1}'))
        self.assertEqual(resp.status, status, resp)
        entries = self.timing_entries(resp)
        names = [e.split(";")[0].strip().lower() for e in entries]
        self.assertEqual(names.count("upstream"), 1, entries)
        self.assertEqual(names.count("total"), 1, entries)
        own = [e for e in entries if e.split(";")[0].strip().lower() in ("upstream", "total")]
        self.assertNotIn("upstream;dur=99999", own)
        self.assertNotIn("total;dur=0.001", own)
        for entry in kept:
            self.assertIn(entry, entries)

    def test_faked_entries_are_dropped_and_the_rest_kept(self):
        self.check(200, "upstream;dur=99999, db;dur=53, total;dur=0.001, cache;desc=hit",
                   ["db;dur=53", "cache;desc=hit"])

    def test_only_faked_entries(self):
        self.check(200, "upstream;dur=99999, total;dur=0.001", [])

    def test_on_a_relayed_error(self):
        self.check(404, "Total;dur=0.001, app;dur=2", ["app;dur=2"])


if __name__ == "__main__":
    unittest.main()
