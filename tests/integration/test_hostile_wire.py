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
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import unittest

from harness import (Braced, BracedTestCase, binary_problem, fault, make_config, request,
                     wait_until)
from streaming import Rss, expected_sha256, generated_bytes, stream_get, under_asan
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


# --- streamed answers (SPEC 3.1) ---------------------------------------------
#
# Every body below is larger than braced's stream window (limits.stream_buffer,
# 64 KiB here), so the head has gone to the app before the body is complete and
# braced can no longer turn a fault into a clean 502: what must hold is what
# reaches the app after the head, and what is left on the upstream connection
# for later requests. The app's side is read raw (wire_get) so that any byte
# braced writes, framing included, is seen.

KIB = 1024
WINDOW = "64KiB"
BIG = 300 * KIB             # a body well beyond the window
GOOD_UNIT = b"good body bytes\n"
EVIL = b"EVIL-BYTES-BEYOND-THE-FRAMING\r\n"
STREAM_CASE = 20.0          # seconds a streamed case may take, all in all
APP_TIMEOUT = 8.0           # seconds the app waits for one answer


def good(n):
    """n bytes of a body with no marker in it (neither EVIL, JUNK nor HTTP)."""
    return (GOOD_UNIT * (n // len(GOOD_UNIT) + 1))[:n]


def chunks(body, piece=4096):
    """body as chunks of `piece` bytes, without the last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + piece]), body[i:i + piece])
                    for i in range(0, len(body), piece))


def head(status=200, reason="OK", lines=()):
    text = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/octet-stream\r\n"
    return (text + "".join(line + "\r\n" for line in lines) + "\r\n").encode("latin-1")


def junk(n):
    """n bytes that a desynchronized reader would take for an answer: a
    complete response first, then filler."""
    return (INJECTED + b"JUNK" * (n // 4 + 1))[:n]


def hold(conn, seconds):
    """Keep conn open for up to `seconds`, or until the peer closes it; whatever
    the peer sends meanwhile is read and dropped."""
    deadline = time.monotonic() + seconds
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            conn.settimeout(left)
            if not conn.recv(65536):
                return
    except (OSError, ssl.SSLError):
        return


class WireAnswer:
    """One answer as the app received it, parsed strictly from the raw bytes.

    raw (every byte braced wrote), interim (1xx statuses before the final
    head), status, headers [(lower-case name, value)], framing ("length",
    "chunked", "none" for a bodyless answer, "close"), body (the payload,
    framing removed, as far as it came), trailers (raw trailer lines),
    complete (the framing's end was seen), extra (bytes after the answer's
    end), closed (braced closed the connection), timed_out, error (a framing
    fault in what braced wrote), last_data_at / ended (time.monotonic())."""

    def __init__(self):
        self.raw = b""
        self.interim = []
        self.status = None
        self.headers = []
        self.framing = None
        self.body = b""
        self.trailers = []
        self.complete = self.closed = self.timed_out = False
        self.extra = b""
        self.error = None
        self.started = time.monotonic()
        self.head_at = self.last_data_at = self.ended = None

    def header(self, name):
        found = None
        for n, v in self.headers:
            if n == name.lower():
                found = v
        return found

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<WireAnswer {self.status} interim={self.interim} {self.framing} "
                f"body={len(self.body)} complete={self.complete} closed={self.closed} "
                f"timed_out={self.timed_out} error={self.error!r} extra={self.extra[:60]!r} "
                f"trailers={self.trailers!r} head={self.headers!r}>")


CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")


def parse_answer(buf, method, a):
    """Parse buf (all received so far) into a; returns the offset of the
    answer's end when it is complete, else None."""
    a.interim, a.trailers, a.body, a.error = [], [], b"", None
    pos = 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return None
        lines = buf[pos:end].decode("latin-1").split("\r\n")
        pos = end + 4
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            a.error = f"bad status line {lines[0]!r}"
            return None
        status = int(parts[1])
        if 100 <= status < 200:
            a.interim.append(status)
            continue
        break
    a.status = status
    a.headers = [(n.strip().lower(), v.strip()) for n, _, v in
                 (line.partition(":") for line in lines[1:])]
    te = a.header("transfer-encoding")
    cl = a.header("content-length")
    if method == "HEAD" or status in (204, 304):
        a.framing = "none"
        return pos
    if te is not None:
        a.framing = "chunked"
        body = bytearray()
        try:
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                size_text = buf[pos:eol].split(b";", 1)[0]
                if not CHUNK_SIZE.fullmatch(size_text):
                    a.error = f"bad chunk size line {buf[pos:eol][:40]!r}"
                    return None
                size = int(size_text, 16)
                pos = eol + 2
                if size == 0:
                    while True:
                        eol = buf.find(b"\r\n", pos)
                        if eol < 0:
                            return None
                        if eol == pos:
                            return pos + 2
                        a.trailers.append(buf[pos:eol])
                        pos = eol + 2
                body += buf[pos:pos + size]
                if len(buf) < pos + size + 2:
                    return None
                if buf[pos + size:pos + size + 2] != b"\r\n":
                    a.error = "no CRLF after a chunk"
                    return None
                pos += size + 2
        finally:
            a.body = bytes(body)
    if cl is not None:
        a.framing = "length"
        a.body = buf[pos:pos + int(cl)]
        return pos + int(cl) if len(a.body) == int(cl) else None
    a.framing = "close"
    a.body = buf[pos:]
    return None


def wire_get(port, path, method="GET", timeout=APP_TIMEOUT, settle=0.3, lines=(), slow=None):
    """One request on a fresh keep-alive connection to braced; reads until the
    answer is complete (then `settle` seconds more, to catch bytes braced
    writes after it), until braced closes, or until `timeout`.
    slow=(nbytes, seconds): a slow reader with a 16 KiB receive buffer that
    reads nbytes at a time and sleeps that long after each read."""
    a = WireAnswer()
    deadline = a.started + timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if slow:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    buf = bytearray()
    try:
        text = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        sock.sendall((text + "".join(l + "\r\n" for l in lines) + "\r\n").encode("latin-1"))
        end = None
        while True:
            now = time.monotonic()
            if end is not None:
                left = min(deadline, settle_until) - now
            else:
                left = deadline - now
            if left <= 0:
                a.timed_out = end is None
                break
            sock.settimeout(left)
            try:
                data = sock.recv(slow[0] if slow else 65536)
                if slow:
                    time.sleep(slow[1])
            except socket.timeout:
                a.timed_out = end is None
                break
            except ConnectionResetError:
                a.closed = True
                break
            if not data:
                a.closed = True
                break
            buf += data
            a.last_data_at = time.monotonic()
            if a.head_at is None and b"\r\n\r\n" in buf:
                a.head_at = a.last_data_at
            if end is None:
                end = parse_answer(bytes(buf), method, a)
                if end is not None:
                    settle_until = time.monotonic() + settle
    finally:
        a.ended = time.monotonic()
        sock.close()
    a.raw = bytes(buf)
    end = parse_answer(a.raw, method, a)
    a.complete = end is not None
    a.extra = a.raw[end:] if end is not None else b""
    return a


class StreamedAnswerCase(WireCase):
    """A RawUpstream whose answers the case writes, behind braced with a
    64 KiB stream window; paths ending in check-N, after-N or warm-N get
    the small answer naming their path."""

    def start_streaming(self, answer_for, **braced_extra):
        """answer_for(up, conn, req) answers the requests the case is about
        (and returns what the handler returns); the rest are plain answers."""
        def handler(up, conn, req):
            name = req["path"].rsplit("/", 1)[-1]
            if name.startswith(("check-", "after-", "warm-")):
                conn.sendall(answer(req["path"]))
                return True
            return answer_for(up, conn, req)
        up = self.start(handler)
        return up, self.streaming_braced(up, **braced_extra)

    def streaming_braced(self, up, timeouts=None, profile_extra=None):
        profile = {"upstream": up.url(), "circuit_breaker": {"enabled": False}}
        if timeouts:
            profile["timeouts"] = timeouts
        profile.update(profile_extra or {})
        return Braced(make_config({"a": dict(profile), "b": dict(profile)},
                                  limits={"stream_buffer": WINDOW}))

    def access(self, b, path, timeout=5.0):
        """braced's access log line for the request whose path ends with `path`
        (a streamed answer logs at its end, so it is waited for)."""
        found = []

        def seen():
            found[:] = [l for l in b.log_lines()
                        if l.get("msg") == "request" and str(l.get("path", "")).endswith(path)]
            return found
        wait_until(seen, timeout)
        self.assertTrue(found, f"no access log line for {path}:\n{b.log()[-3000:]}")
        return found[-1]

    def assert_own_answers(self, b, tag):
        """Later requests, from both profiles on the upstream's host:port, get
        their own answers: nothing a hostile answer left behind."""
        for profile in ("a", "b"):
            resp = b.get(f"/{profile}/check-{tag}", timeout=APP_TIMEOUT)
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.json(), {"path": f"/base/check-{tag}"},
                             f"/{profile}: another answer's bytes were handed over: {resp}")

    def assert_clean(self, a, *markers):
        """None of the markers reached the app, anywhere in what braced wrote."""
        for marker in markers:
            self.assertNotIn(marker, a.raw, f"{marker!r} reached the app: {a!r}")


CHUNKED_HEAD = head(lines=["Transfer-Encoding: chunked"])


class MalformedChunkMidStream(StreamedAnswerCase):
    """An upstream sends the head and 300 KiB of well-formed chunks, which
    braced relays, then a chunk-size line that is not one. The attacker
    tries to get bytes past braced's framing: the text after the bad size
    as body, or the app tricked into a clean end. What must hold: the app has
    the head and a prefix of the good body, never a last chunk; its
    connection is closed; the access log says reset_mid_body; none of the
    bytes beyond the fault reaches the app; later requests are served as
    usual. The upstream keeps its connection open for 3 s after the fault,
    so a row that needs the close to notice shows as a slow end."""

    def run_bad(self, tail, prompt=True, extra_good=0, delay=0.0, slow=None, size=BIG):
        """tail: the bytes after 300 KiB of good chunks, sent `delay` seconds
        after them. extra_good: how many bytes of the good body tail
        legitimately carries (a chunk's own data) that may reach the app.
        prompt: braced can see the fault from the bytes alone, without the
        upstream closing. slow: wire_get's slow reader. size: the good
        chunks' total (tail's extra good bytes follow them)."""
        prefix = good(size)

        def bad(up, conn, req):
            if delay:
                conn.sendall(CHUNKED_HEAD + chunks(prefix))
                time.sleep(delay)
                conn.sendall(tail)
            else:
                conn.sendall(CHUNKED_HEAD + chunks(prefix) + tail)
            hold(conn, 3.0)
            return False

        up, braced = self.start_streaming(bad, timeouts={"read": "8s"})
        expected = good(size + extra_good)
        with braced as b:
            for i in range(2):
                a = wire_get(b.port, f"/a/bad-{i}", slow=slow)
                self.assertEqual(a.status, 200, a)
                self.assertEqual(a.framing, "chunked", a)
                self.assertFalse(a.complete, f"the app saw a clean end: {a!r}")
                self.assertIsNone(a.error, a)
                self.assertTrue(a.closed, f"the app's connection stayed open: {a!r}")
                self.assertGreater(len(a.body), 0, a)
                self.assertTrue(expected.startswith(a.body),
                                f"the body is not a prefix of the good body: {a!r}")
                self.assert_clean(a, b"EVIL", b"0\r\n\r\n")
                if prompt and not slow:
                    self.assertLess(a.ended - a.started, 2.5 + delay,
                                    f"the fault was noticed only when the upstream closed: {a!r}")
                self.assertEqual(self.access(b, f"/bad-{i}")["outcome"], "reset_mid_body")
                self.assert_own_answers(b, i)
            self.assertNotIn("EVIL", b.log())
        self.assertLessEqual(len(up.received("GET", "/bad-0")), 1)

    def test_size_that_is_not_hex(self):
        self.run_bad(b"zz\r\n" + EVIL * 4 + b"\r\n")

    def test_size_that_overflows_64_bits(self):
        # 18 hex digits: 72 bits; a parser that wraps would read a small size.
        self.run_bad(b"ffffffffffffffffff\r\n" + EVIL * 4 + b"\r\n")

    def test_size_that_wraps_to_a_small_one(self):
        # 2^64 + 0x20: a 64-bit accumulator that wraps reads 0x20, the size of EVIL.
        self.run_bad(b"10000000000000020\r\n" + EVIL + b"\r\n" + b"0\r\n\r\n")

    def test_size_beyond_a_signed_64_bit_length(self):
        self.run_bad(b"8000000000000000\r\n" + EVIL * 4 + b"\r\n")

    def test_negative_size(self):
        self.run_bad(b"-20\r\n" + EVIL + b"\r\n")

    def test_size_with_a_0x_prefix(self):
        self.run_bad(b"0x20\r\n" + EVIL + b"\r\n")

    def test_size_without_a_line_end(self):
        # The size line never ends: 64 KiB with neither CR nor LF, then the
        # upstream holds the connection. braced must not relay any of it.
        self.run_bad(b"1000" + (b"EVIL-no-line-end " * 4096)[:64 * KIB], prompt=False)

    # libcurl's own chunk parser takes these; braced decodes chunked
    # answers itself, strictly (proto/chunked.c), as its front reads bodies.
    def test_bare_cr_in_a_chunk_extension(self):
        self.run_bad(b"20;a=\rEVIL\r\n" + EVIL + b"\r\n0\r\n\r\n")

    def test_size_line_ending_in_a_bare_lf(self):
        self.run_bad(b"20\n" + EVIL + b"\r\n0\r\n\r\n")

    def test_space_after_the_size(self):
        self.run_bad(b"20 \r\n" + EVIL + b"\r\n0\r\n\r\n")

    def test_trailers_beyond_their_cap(self):
        # 70 KiB of trailers: past CHUNKED_TRAILERS_MAX the answer is malformed.
        self.run_bad(b"0\r\n" + b"X-Trailer: evil\r\n" * 4500 + b"\r\n")

    def test_bad_size_150_ms_after_the_good_chunks(self):
        # braced has relayed everything and waits for more when the fault comes.
        self.run_bad(b"zz\r\n" + EVIL * 4 + b"\r\n", delay=0.15)

    def test_bad_size_while_the_app_reads_slowly(self):
        # 4 MiB of good chunks and an app reading 16 KiB every 5 ms: braced
        # pauses the upstream with the fault waiting in its socket.
        self.run_bad(b"zz\r\n" + EVIL * 4 + b"\r\n", slow=(16 * KIB, 0.005), size=4096 * KIB)

    def test_chunk_longer_than_its_size(self):
        # A 16-byte chunk carries 16 good bytes, then EVIL where its CRLF should be.
        self.run_bad(b"10\r\n" + good(BIG + 16)[BIG:] + EVIL * 4 + b"\r\n0\r\n\r\n",
                     extra_good=16)


class BytesBeyondContentLength(StreamedAnswerCase):
    """A 300 KiB Content-Length answer followed, on the same upstream
    connection, by bytes nobody asked for: a fake response glued to the end
    of the body, the same 150 ms later (when braced may have pooled the
    connection), or 300 KiB of junk that starts with one. The attacker tries
    to make braced relay them, or hand them to the next request as its
    answer. What must hold: the app gets exactly Content-Length bytes, then
    nothing more on its connection; later requests from the same profile
    and from the other profile on the same host:port get their own answers."""

    BODY = good(BIG)

    def run_case(self, after, delay=0.0, chunked=False):
        def answer_big(up, conn, req):
            if chunked:
                data = CHUNKED_HEAD + chunks(self.BODY) + b"0\r\n\r\n"
            else:
                data = head(lines=[f"Content-Length: {len(self.BODY)}"]) + self.BODY
            if delay:
                conn.sendall(data)
                up.later(conn, delay, after)
            else:
                conn.sendall(data + after)
            return True

        up, braced = self.start_streaming(answer_big)
        with braced as b:
            for i in range(3):
                a = wire_get(b.port, f"/a/big-{i}", settle=max(0.3, delay + 0.2))
                if chunked:
                    self.assertEqual((a.status, a.framing), (200, "chunked"), a)
                else:
                    self.assertEqual((a.status, a.framing), (200, "length"), a)
                    self.assertEqual(a.header("content-length"), str(len(self.BODY)), a)
                self.assertTrue(a.complete, a)
                self.assertEqual(a.body, self.BODY)
                self.assertEqual(a.extra, b"", f"bytes after the body reached the app: {a!r}")
                self.assert_clean(a, b"INJECTED", b"JUNK")
                self.assertEqual(self.access(b, f"/big-{i}").get("outcome"), "ok")
                time.sleep(delay + 0.1)
                self.assert_own_answers(b, i)
            self.assertNotIn("INJECTED", b.log())

    def test_response_glued_to_the_end_of_the_body(self):
        self.run_case(INJECTED)

    def test_response_150_ms_after_the_body(self):
        self.run_case(INJECTED, delay=0.15)

    def test_300_kib_of_junk_glued_to_the_body(self):
        self.run_case(junk(BIG))

    def test_300_kib_of_junk_150_ms_after_the_body(self):
        self.run_case(junk(BIG), delay=0.15)

    def test_300_kib_of_junk_glued_to_a_chunked_body(self):
        self.run_case(junk(BIG), chunked=True)

    def test_300_kib_of_junk_150_ms_after_a_chunked_body(self):
        self.run_case(junk(BIG), delay=0.15, chunked=True)


class TrailersNeverReachTheApp(StreamedAnswerCase):
    """A chunked 300 KiB answer ending in trailers. The attacker tries to
    set fields after the head, where braced's header rules were already
    applied (a Set-Cookie, a Content-Length, a fake Brace-Error). What must
    hold: the body ends cleanly with a last chunk and no trailer, the
    Trailer header announcing them is dropped like any hop-by-hop field, and
    the next answers are the requests' own."""

    BODY = good(BIG)

    def run_case(self, trailers, announce=False, delay=0.0):
        lines = ["Transfer-Encoding: chunked"] + (["Trailer: X-Trailer"] if announce else [])

        def with_trailers(up, conn, req):
            ending = b"0\r\n" + b"".join(t + b"\r\n" for t in trailers) + b"\r\n"
            if delay:
                conn.sendall(head(lines=lines) + chunks(self.BODY) + b"0\r\n")
                time.sleep(delay)
                conn.sendall(ending[3:])
            else:
                conn.sendall(head(lines=lines) + chunks(self.BODY) + ending)
            return True

        up, braced = self.start_streaming(with_trailers)
        with braced as b:
            for i in range(2):
                a = wire_get(b.port, f"/a/trailers-{i}")
                self.assertEqual((a.status, a.framing), (200, "chunked"), a)
                self.assertTrue(a.complete, a)
                self.assertEqual(a.body, self.BODY)
                self.assertEqual(a.trailers, [], a)
                self.assertIsNone(a.header("trailer"), a)
                self.assertEqual(a.extra, b"", a)
                self.assert_clean(a, b"evil", b"X-Trailer")
                self.assertEqual(self.access(b, f"/trailers-{i}").get("outcome"), "ok")
                self.assert_own_answers(b, i)

    def test_one_trailer(self):
        self.run_case([b"X-Trailer: evil"])

    def test_announced_trailer(self):
        self.run_case([b"X-Trailer: evil"], announce=True)

    def test_trailers_that_would_be_braced_fields(self):
        self.run_case([b"X-Trailer: evil", b"Set-Cookie: evil=1", b"Content-Length: 5",
                       b"Brace-Error: evil"])

    def test_64_kib_of_trailers(self):
        # Up to proto/chunked.h's CHUNKED_TRAILERS_MAX, trailers are dropped.
        self.run_case([b"X-Trailer: evil"] * 3500)

    def test_trailer_150_ms_after_the_last_chunk(self):
        self.run_case([b"X-Trailer: evil"], delay=0.15)


class InterimHeadsBeforeAStream(StreamedAnswerCase):
    """1xx heads (103 Early Hints, 100 Continue) before the final 200 of a
    300 KiB body. The attacker tries to have an interim head taken for the
    answer (its fields relayed, the final head read as body) or relayed
    as is. What must hold: the app sees only the final head, then the whole
    body, and the next answers are the requests' own."""

    BODY = good(BIG)
    EARLY = b"HTTP/1.1 103 Early Hints\r\nLink: </evil.css>; rel=preload\r\n\r\n"
    CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

    def run_case(self, interim, chunked=False, pause=0.0):
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BIG}"
        final = head(lines=[framing]) + (chunks(self.BODY) + b"0\r\n\r\n" if chunked else self.BODY)

        def early(up, conn, req):
            conn.sendall(interim)
            if pause:
                time.sleep(pause)
            conn.sendall(final)
            return True

        up, braced = self.start_streaming(early)
        with braced as b:
            for i in range(2):
                a = wire_get(b.port, f"/a/early-{i}")
                self.assertTrue(a.raw.startswith(b"HTTP/1.1 200 "), a.raw[:200])
                self.assertEqual(a.interim, [], a)
                self.assertEqual((a.status, a.framing), (200, "chunked" if chunked else "length"), a)
                self.assertTrue(a.complete, a)
                self.assertEqual(a.body, self.BODY)
                self.assertEqual(a.extra, b"", a)
                self.assert_clean(a, b"evil.css", b"Early Hints", b"Continue")
                self.assert_own_answers(b, i)

    def test_early_hints(self):
        self.run_case(self.EARLY)

    def test_early_hints_then_a_chunked_body(self):
        self.run_case(self.EARLY, chunked=True)

    def test_continue(self):
        self.run_case(self.CONTINUE)

    def test_several_interim_heads(self):
        self.run_case(self.CONTINUE + self.EARLY + self.EARLY + self.CONTINUE, chunked=True)

    def test_early_hints_150_ms_before_the_answer(self):
        self.run_case(self.EARLY, pause=0.15)


class BodyOnABodylessAnswer(StreamedAnswerCase):
    """A 204, a 304 or the answer to a HEAD, which carry no body whatever
    their fields say, followed by 300 KiB that start with a complete fake
    response. The attacker tries to stream the junk to the app as a body, or
    leave it on the connection as the next request's answer. What must
    hold: the app gets a bodiless answer and nothing after it; later
    requests from both profiles get their own answers."""

    def run_case(self, status, lines, method="GET", chunked_junk=False, delay=0.0):
        reason = {200: "OK", 204: "No Content", 304: "Not Modified"}[status]
        extra = chunks(junk(BIG)) + b"0\r\n\r\n" if chunked_junk else junk(BIG)

        def bodyless(up, conn, req):
            if delay:
                conn.sendall(head(status, reason, lines))
                up.later(conn, delay, extra)
            else:
                conn.sendall(head(status, reason, lines) + extra)
            return True

        up, braced = self.start_streaming(bodyless)
        with braced as b:
            for i in range(3):
                a = wire_get(b.port, f"/a/bodyless-{i}", method=method, settle=0.3 + delay)
                self.assertEqual((a.status, a.framing), (status, "none"), a)
                self.assertTrue(a.complete, a)
                self.assertEqual(a.extra, b"", f"the junk reached the app: {a!r}")
                self.assert_clean(a, b"INJECTED", b"JUNK")
                self.assert_own_answers(b, i)
            self.assertNotIn("INJECTED", b.log())

    def test_204_followed_by_junk(self):
        self.run_case(204, [])

    def test_204_with_a_content_length(self):
        self.run_case(204, [f"Content-Length: {BIG}"])

    def test_204_with_a_chunked_body(self):
        self.run_case(204, ["Transfer-Encoding: chunked"], chunked_junk=True)

    def test_304_with_a_content_length(self):
        self.run_case(304, [f"Content-Length: {BIG}"])

    def test_304_with_a_chunked_body(self):
        self.run_case(304, ["Transfer-Encoding: chunked"], chunked_junk=True)

    def test_head_answer_with_a_content_length(self):
        self.run_case(200, [f"Content-Length: {BIG}"], method="HEAD")

    def test_head_answer_with_a_chunked_body(self):
        self.run_case(200, ["Transfer-Encoding: chunked"], method="HEAD", chunked_junk=True)

    def test_204_then_junk_150_ms_later(self):
        # By then braced may have pooled the connection as idle.
        self.run_case(204, [], delay=0.15)

    def test_head_answer_then_its_body_150_ms_later(self):
        self.run_case(200, [f"Content-Length: {BIG}"], method="HEAD", delay=0.15)


class AmbiguousFramingOfAStream(StreamedAnswerCase):
    """A 300 KiB answer whose framing two parsers could read differently
    (RFC 9112 6.3): Transfer-Encoding with Content-Length, a coding other
    than chunked, differing or malformed Content-Lengths, a status outside
    100-599. The attacker tries request smuggling through braced's pool, or
    a body whose end braced and the app disagree on. What must hold (SPEC
    3): malformed, outcome reset, never relayed: the app gets braced's 502
    upstream_unavailable and nothing of the body; later requests get their
    own answers."""

    BODY = EVIL * (BIG // len(EVIL))

    def run_case(self, status_line, lines, body):
        def ambiguous(up, conn, req):
            conn.sendall(status_line + b"".join(l + b"\r\n" for l in lines) + b"\r\n" + body)
            return False

        up, braced = self.start_streaming(ambiguous)
        with braced as b:
            for i in range(2):
                a = wire_get(b.port, f"/a/ambiguous-{i}")
                self.assertEqual(a.status, 502, a)
                self.assertTrue(a.complete, a)
                self.assertEqual(a.header("brace-error"), "upstream_unavailable", a)
                doc = a.json()
                self.assertEqual(doc["history"][0]["outcome"], "reset", doc)
                self.assert_clean(a, b"EVIL", b"\x1f\x8b")
                self.assert_own_answers(b, i)

    OK = b"HTTP/1.1 200 OK\r\n"

    def test_chunked_and_content_length(self):
        self.run_case(self.OK, [b"Transfer-Encoding: chunked", b"Content-Length: %d" % BIG],
                      chunks(self.BODY) + b"0\r\n\r\n")

    def test_content_length_and_chunked(self):
        self.run_case(self.OK, [b"Content-Length: 10", b"Transfer-Encoding: chunked"],
                      chunks(self.BODY) + b"0\r\n\r\n")

    def test_gzip_then_chunked(self):
        self.run_case(self.OK, [b"Transfer-Encoding: gzip, chunked"],
                      chunks(gzip.compress(self.BODY)) + b"0\r\n\r\n")

    def test_gzip_then_chunked_that_is_not_gzip(self):
        self.run_case(self.OK, [b"Transfer-Encoding: gzip, chunked"],
                      chunks(self.BODY) + b"0\r\n\r\n")

    def test_gzip_then_chunked_with_a_content_length(self):
        self.run_case(self.OK, [b"Transfer-Encoding: gzip, chunked", b"Content-Length: %d" % BIG],
                      chunks(self.BODY) + b"0\r\n\r\n")

    def test_two_differing_content_lengths(self):
        self.run_case(self.OK, [b"Content-Length: %d" % BIG, b"Content-Length: 10"], self.BODY)

    def test_content_length_with_a_sign(self):
        self.run_case(self.OK, [b"Content-Length: +%d" % BIG], self.BODY)

    def test_unasked_switching_protocols(self):
        self.run_case(b"HTTP/1.1 101 Switching Protocols\r\n",
                      [b"Upgrade: evil", b"Connection: Upgrade"], self.BODY)

    def test_status_outside_100_to_599(self):
        self.run_case(b"HTTP/1.1 600 OK\r\n", [b"Content-Length: %d" % BIG], self.BODY)


class StallAfterTheHead(StreamedAnswerCase):
    """An upstream sends the head (and maybe part of the body) and then
    stalls, holding the connection open for 6 s. The attacker tries to pin
    the app (and braced's slot) for as long as it likes. What must hold
    (SPEC 3.1: after the head, read bounds each silence): the app sees a
    truncation within about timeouts.read (1 s) + 1 s of the last byte, the
    log says reset_mid_body, and later requests are served."""

    READ = 1.0

    def run_case(self, lines, sent, chunked):
        def stall(up, conn, req):
            conn.sendall(head(lines=lines) + sent)
            hold(conn, 6.0)
            return False

        up, braced = self.start_streaming(stall, timeouts={"read": "1s"})
        with braced as b:
            a = wire_get(b.port, "/a/stall-0")
            self.assertEqual(a.status, 200, a)
            self.assertFalse(a.complete, a)
            self.assertIsNone(a.error, a)
            self.assertTrue(a.closed, f"still open after {a.ended - a.started:.1f} s: {a!r}")
            silence = a.ended - a.last_data_at if a.last_data_at else None
            self.assertLess(a.ended - a.started, self.READ + 1.5, a)
            self.assertGreater(a.ended - a.started, self.READ * 0.8, a)
            if silence is not None and a.body:
                self.assertLess(silence, self.READ + 1.0, a)
            self.assertEqual(a.framing, "chunked" if chunked else "length", a)
            self.assertEqual(self.access(b, "/stall-0")["outcome"], "reset_mid_body")
            self.assert_own_answers(b, 0)

    def test_head_alone_then_silence(self):
        self.run_case([f"Content-Length: {BIG}"], b"", False)

    def test_part_of_a_content_length_body_then_silence(self):
        self.run_case([f"Content-Length: {BIG}"], good(100 * KIB), False)

    def test_chunked_body_stalled_inside_a_chunk(self):
        self.run_case(["Transfer-Encoding: chunked"],
                      chunks(good(100 * KIB)) + b"1000\r\n" + good(100), True)

    def test_chunked_body_stalled_between_chunks(self):
        self.run_case(["Transfer-Encoding: chunked"], chunks(good(100 * KIB)), True)

    def test_chunked_body_stalled_inside_a_size_line(self):
        self.run_case(["Transfer-Encoding: chunked"], chunks(good(100 * KIB)) + b"10", True)


class FloodBeyondContentLength(StreamedAnswerCase):
    """An upstream declares an 8 MiB Content-Length, sends it, and goes on
    sending junk as fast as the socket takes it (up to 1 GiB or 12 s), while
    the app reads slowly through a small receive buffer. The attacker tries
    to make braced buffer what it reads, or read it on and on. What must
    hold: braced's anonymous memory grows by less than 16 MiB, the app gets
    exactly the 8 MiB, and later requests get their own answers."""

    SIZE = 8 * 1024 * KIB
    SEED = 21

    def test_flood_after_the_body_with_a_slow_reader(self):
        flood = junk(1024 * KIB)
        sent = {"junk": 0}

        def flooding(up, conn, req):
            conn.sendall(head(lines=[f"Content-Length: {self.SIZE}"]))
            for data in generated_bytes(self.SEED, 0, self.SIZE):
                conn.sendall(data)
            stop = time.monotonic() + 12
            try:
                while time.monotonic() < stop and sent["junk"] < 1024 * 1024 * KIB:
                    conn.sendall(flood)
                    sent["junk"] += len(flood)
            except (OSError, ssl.SSLError):
                pass
            return False

        up, braced = self.start_streaming(flooding)
        with braced as b:
            with Rss(b.proc.pid) as rss:
                r = stream_get(b.port, "/a/flood-0", timeout=STREAM_CASE - 5, rcvbuf=16384,
                               pause_every=(512 * KIB, 0.1))
            self.assertEqual((r.status, r.framing, r.content_length), (200, "length", self.SIZE), r)
            self.assertTrue(r.complete, r)
            self.assertEqual(r.sha256, expected_sha256(self.SEED, self.SIZE))
            growth = rss.peak_anon_kib - rss.start_kib
            if not under_asan(b.proc.pid):
                self.assertLess(growth, 16 * 1024,
                                f"RssAnon grew from {rss.start_kib} to {rss.peak_anon_kib} KiB "
                                f"while the upstream sent {sent['junk'] >> 20} MiB of junk")
            self.assert_own_answers(b, 0)
            self.assertNotIn("INJECTED", b.log())


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
