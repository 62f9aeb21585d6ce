"""Streaming HTTP/1.1 clients for the integration tests, and a memory sampler.

The clients speak raw sockets to 127.0.0.1 and never hold a body: a body is
counted and hashed (SHA-256) as it arrives, or as it is generated for an
upload (tests/streamgen.py, the same bodies the test upstream sends).

    stream_get(port, path, ...)     -> StreamResult
    sse_events(port, path, ...)     -> [(seq, sent_T, arrival)]
    stream_put(port, path, nbytes, seed, chunked, ...) -> StreamResult
    Rss(pid)                        a context manager sampling RssAnon
"""

import errno
import hashlib
import json
import os
import re
import select
import socket
import sys
import threading
import time
import unittest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
from streamgen import expected_sha256, generated_bytes    # noqa: E402,F401  (tests/streamgen.py)

HOST = "127.0.0.1"
MAX_HEAD = 1024 * 1024
KEEP_BODY = 1024 * 1024     # stream_put keeps this much of the answer's body (a JSON document)
CLOSE_WAIT = 1.0            # after a complete answer with Connection: close, how long to wait for the close
GONE_ERRNOS = (errno.EPIPE, errno.ECONNRESET, errno.ESHUTDOWN, errno.ECONNABORTED)


class StreamResult:
    """What one exchange brought.

    status, reason        the final status (None when no whole head came) and its phrase
    headers               [(name, value)] of the final head, as received
    framing               "length", "chunked" or "close" (None with no head)
    content_length        the Content-Length given, else None
    nbytes                body bytes received (the payload, framing removed)
    sha256                hex SHA-256 of those bytes
    complete              True only if the framing's end was seen: all Content-Length
                          bytes, or the last chunk (and its trailers); never for "close"
    closed                the peer closed (FIN) or reset the connection
    reset                 the peer reset it (ECONNRESET)
    timed_out             the overall timeout ran out first
    error                 what cut the answer short, as text (None when complete, or
                          when a "close" body ended with a FIN)
    times                 [(time.monotonic(), body bytes)] per read, when record_times
    started, head_at, ended   time.monotonic() at connect, at the head's arrival, at the end
    body                  the first keep_body bytes of the body (b"" unless asked)
    interim               statuses of 1xx heads skipped before the final one
    Upload side (stream_put): sent (body bytes written), upload_complete,
    upload_error (errno name, None), response_at (time.monotonic() the first
    answer byte was seen, None), sent_at_response (body bytes written by then).
    """

    def __init__(self):
        self.status = self.reason = self.framing = self.content_length = None
        self.headers = []
        self.nbytes = 0
        self._hash = hashlib.sha256()
        self.complete = self.closed = self.reset = self.timed_out = False
        self.error = None
        self.times = []
        self.started = time.monotonic()
        self.head_at = self.ended = None
        self.body = b""
        self.interim = []
        self.sent = 0
        self.upload_complete = False
        self.upload_error = None
        self.response_at = None
        self.sent_at_response = None

    @property
    def sha256(self):
        return self._hash.hexdigest()

    def header(self, name):
        """The last value of header `name` (case-insensitive), or None."""
        found = None
        for n, v in self.headers:
            if n.lower() == name.lower():
                found = v
        return found

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return (f"<StreamResult {self.status} {self.framing} nbytes={self.nbytes} "
                f"complete={self.complete} closed={self.closed} reset={self.reset} "
                f"error={self.error!r} sent={self.sent}>")


class _Gone(Exception):
    """The peer closed (reset=False) or reset (reset=True) the connection."""

    def __init__(self, reset):
        super().__init__("reset" if reset else "closed")
        self.reset = reset


class _Timeout(Exception):
    pass


class _Reader:
    """Reads one answer from a socket within a deadline, feeding a StreamResult."""

    def __init__(self, sock, result, deadline, read_size, keep_body=0, on_chunk=None,
                 record_times=False, pause_every=None):
        self.sock = sock
        self.result = result
        self.deadline = deadline
        self.read_size = read_size
        self.keep_body = keep_body
        self.on_chunk = on_chunk
        self.record_times = record_times
        self.buf = bytearray()
        self.buf_at = None          # arrival time of what is in buf
        self.kept = bytearray()
        if pause_every is not None:
            self.pause_bytes, self.pause_seconds = pause_every
            if self.pause_bytes < 1:
                raise ValueError("pause_every needs a byte count >= 1")
            self.next_pause = self.pause_bytes
        else:
            self.next_pause = None

    def recv(self):
        """One read into buf; raises _Gone or _Timeout."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Timeout
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(self.read_size)
        except socket.timeout:
            raise _Timeout
        except ConnectionResetError:
            raise _Gone(True)
        if not data:
            raise _Gone(False)
        self.buf_at = time.monotonic()
        if self.result.response_at is None:
            self.result.response_at = self.buf_at
        self.buf += data

    def take_head(self):
        """Parse heads from buf until a final one; False when buf holds no whole head yet."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    raise ValueError("answer head too large")
                return False
            head = bytes(self.buf[:end]).decode("latin-1")
            del self.buf[:end + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ValueError(f"bad status line {lines[0]!r}")
            status = int(parts[1])
            if 100 <= status < 200 and status != 101:
                self.result.interim.append(status)
                continue
            r = self.result
            r.status, r.reason = status, parts[2] if len(parts) > 2 else ""
            r.headers = [(n.strip(), v.strip()) for n, _, v in
                         (line.partition(":") for line in lines[1:])]
            r.head_at = self.buf_at
            return True

    def read_head(self):
        while not self.take_head():
            self.recv()

    def body(self, data, at):
        r = self.result
        r.nbytes += len(data)
        r._hash.update(data)
        if self.record_times:
            r.times.append((at, len(data)))
        if len(self.kept) < self.keep_body:
            self.kept += data[:self.keep_body - len(self.kept)]
        if self.on_chunk is not None:
            self.on_chunk(data, at)
        if self.next_pause is not None and r.nbytes >= self.next_pause:
            while r.nbytes >= self.next_pause:
                self.next_pause += self.pause_bytes
            left = self.deadline - time.monotonic()
            time.sleep(max(0.0, min(self.pause_seconds, left)))

    def take(self, limit):
        """Up to `limit` bytes from buf, reading when it is empty."""
        if not self.buf:
            self.recv()
        data = bytes(self.buf[:limit])
        del self.buf[:limit]
        return data

    def line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i]).rstrip(b"\r")
                del self.buf[:i + 1]
                return line
            if len(self.buf) > MAX_HEAD:
                raise ValueError("line too long")
            self.recv()

    def read_body(self, method="GET"):
        """Read the body by its framing; sets framing, complete (never raises _Gone/_Timeout
        for the caller to handle: they are recorded)."""
        r = self.result
        te = ",".join(v for n, v in r.headers if n.lower() == "transfer-encoding").lower()
        cl = r.header("content-length")
        if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
            r.framing, left = "length", 0
        elif "chunked" in te:
            r.framing = "chunked"
        elif cl is not None:
            r.framing = "length"
            r.content_length = left = int(cl)
        else:
            r.framing = "close"
        try:
            if r.framing == "length":
                while left:
                    data = self.take(min(left, self.read_size))
                    left -= len(data)
                    self.body(data, self.buf_at)
                r.complete = True
            elif r.framing == "chunked":
                while True:
                    size = int(self.line().split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while self.line():      # trailers
                            pass
                        r.complete = True
                        break
                    while size:
                        data = self.take(min(size, self.read_size))
                        size -= len(data)
                        self.body(data, self.buf_at)
                    if self.line():
                        raise ValueError("no CRLF after a chunk")
            else:
                while True:
                    data = self.take(self.read_size)
                    self.body(data, self.buf_at)
        except _Gone as e:
            r.closed, r.reset = True, e.reset
            if e.reset:
                r.error = "connection reset"
            elif r.framing != "close":
                r.error = "connection closed"
        except _Timeout:
            r.timed_out = True
            r.error = "timeout"
        except ValueError as e:
            r.error = f"bad framing: {e}"
        r.body = bytes(self.kept)
        if r.complete:
            self.see_close()

    def see_close(self):
        """After a complete answer: whether the peer closes (waited for briefly when it said
        Connection: close, else only what has already arrived)."""
        r = self.result
        says_close = "close" in (r.header("connection") or "").lower()
        wait = min(CLOSE_WAIT, max(0.0, self.deadline - time.monotonic())) if says_close else 0
        try:
            if not select.select([self.sock], [], [], wait)[0]:
                return
            data = self.sock.recv(65536, socket.MSG_PEEK)
            if not data:
                r.closed = True
        except ConnectionResetError:
            r.closed = r.reset = True
        except OSError:
            pass


def _header_lines(headers):
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, dict) else headers
    return [f"{n}: {v}\r\n" for n, v in items]


def _connect(port, timeout, rcvbuf):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        sock.connect((HOST, port))
    except BaseException:
        sock.close()
        raise
    return sock


def stream_get(port, path, headers=None, read_size=65536, on_chunk=None, timeout=30, rcvbuf=None,
               pause_every=None, record_times=False, method="GET", keep_body=0):
    """One request (GET by default, no body) on a fresh connection to 127.0.0.1:port; the
    answer's body is counted and hashed as it arrives, never held. Returns a StreamResult.

    headers: dict or [(name, value)], sent after Host. read_size: bytes per recv.
    on_chunk(data, arrival): called with each piece of body (framing removed).
    rcvbuf: SO_RCVBUF set before connecting. pause_every=(nbytes, seconds): sleep that long
    after each nbytes of body (a slow reader). record_times: fill result.times.
    keep_body: keep the first so many body bytes in result.body.
    Everything, the connect included, ends within `timeout` seconds.
    """
    result = StreamResult()
    deadline = result.started + timeout
    sock = _connect(port, timeout, rcvbuf)
    try:
        lines = [f"{method} {path} HTTP/1.1\r\n", f"Host: {HOST}:{port}\r\n"]
        lines += _header_lines(headers)
        sock.sendall("".join(lines + ["\r\n"]).encode("latin-1"))
        reader = _Reader(sock, result, deadline, read_size, keep_body, on_chunk, record_times,
                         pause_every)
        try:
            reader.read_head()
        except _Gone as e:
            result.closed, result.reset = True, e.reset
            result.error = "no answer head: " + ("connection reset" if e.reset else "connection closed")
        except _Timeout:
            result.timed_out, result.error = True, "timeout before the answer head"
        else:
            reader.read_body(method)
    finally:
        result.ended = time.monotonic()
        sock.close()
    return result


def sse_events(port, path, headers=None, timeout=30, read_size=65536, result=None):
    """Read a server-sent events stream of the test upstream's `sse` action: events whose
    data line is "SEQ T". Returns [(seq, sent_T, arrival)], arrival being time.monotonic()
    at the read that completed the event. Pass result=[] to also get the StreamResult
    appended to it."""
    events = []
    pending = bytearray()

    def on_chunk(data, at):
        pending.extend(data)
        while True:
            i = pending.find(b"\n\n")
            if i < 0:
                return
            block = bytes(pending[:i]).decode("utf-8", "replace")
            del pending[:i + 2]
            for line in block.split("\n"):
                if line.startswith("data:"):
                    seq, sent = line[5:].split()
                    events.append((int(seq), float(sent), at))

    got = stream_get(port, path, headers=headers, read_size=read_size, on_chunk=on_chunk,
                     timeout=timeout)
    if result is not None:
        result.append(got)
    return events


def stream_put(port, path, nbytes, seed, chunked, headers=None, piece=65536, timeout=60,
               method="PUT", stop_on_response=False):
    """Upload nbytes of the body of `seed` (tests/streamgen.py) with Content-Length, or chunked
    in `piece`-byte chunks, generated as it is sent; then read the answer. Returns a
    StreamResult whose body holds the answer's first KEEP_BODY bytes (see .json()).

    An answer that comes while the upload is still going is taken in as it arrives
    (result.response_at, result.sent_at_response); the upload goes on until the peer
    refuses it (EPIPE, ECONNRESET: result.upload_error) or, with stop_on_response, stops
    at the first answer byte. Everything ends within `timeout` seconds.
    """
    result = StreamResult()
    deadline = result.started + timeout
    sock = _connect(port, timeout, None)
    reader = _Reader(sock, result, deadline, 65536, KEEP_BODY)
    try:
        lines = [f"{method} {path} HTTP/1.1\r\n", f"Host: {HOST}:{port}\r\n"]
        lines += _header_lines(headers)
        lines.append("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {nbytes}\r\n")
        head = "".join(lines + ["\r\n"]).encode("latin-1")
        gone = None
        try:
            _send(sock, head, deadline, reader)
            for data in generated_bytes(seed, 0, nbytes, piece):
                if result.response_at is not None and stop_on_response:
                    break
                _send(sock, b"%x\r\n%s\r\n" % (len(data), data) if chunked else data,
                      deadline, reader)
                result.sent += len(data)
            else:
                if chunked:
                    _send(sock, b"0\r\n\r\n", deadline, reader)
                result.upload_complete = True
        except OSError as e:
            if e.errno not in GONE_ERRNOS:
                raise
            result.upload_error = errno.errorcode.get(e.errno, str(e.errno))
            gone = e
        except _Timeout:
            result.timed_out, result.error = True, "timeout while uploading"
        if result.response_at is not None and result.sent_at_response is None:
            result.sent_at_response = result.sent
        if result.timed_out:
            return result
        try:
            reader.read_head()
        except _Gone as e:
            result.closed, result.reset = True, e.reset
            result.error = "no answer head: " + ("connection reset" if e.reset else "connection closed")
            if gone is not None and not result.upload_error:
                result.upload_error = str(gone)
        except _Timeout:
            result.timed_out, result.error = True, "timeout before the answer head"
        else:
            reader.read_body(method)
    finally:
        result.ended = time.monotonic()
        sock.close()
    return result


def _send(sock, data, deadline, reader):
    """Write all of data before the deadline, taking in any answer bytes that arrive meanwhile."""
    view = memoryview(data)
    result = reader.result
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Timeout
        readable, writable, _ = select.select([sock], [sock], [], left)
        if readable:
            try:
                got = sock.recv(65536)
            except ConnectionResetError:
                raise OSError(errno.ECONNRESET, "the peer reset while the body was being sent")
            if got:
                if result.response_at is None:
                    result.response_at = time.monotonic()
                    result.sent_at_response = result.sent
                reader.buf += got
                reader.buf_at = time.monotonic()
            else:
                # The peer closed: what it sent is in reader.buf; stop writing.
                raise OSError(errno.EPIPE, "the peer closed while the body was being sent")
        if writable:
            sock.settimeout(0)
            try:
                n = sock.send(view)
            except BlockingIOError:
                n = 0
            finally:
                sock.settimeout(None)
            view = view[n:]


class Rss:
    """Samples the anonymous resident memory of process pid while in the `with`.

    At entry VmHWM is reset (writing 5 to /proc/PID/clear_refs; an error is ignored)
    and start_kib is RssAnon; a thread samples RssAnon every 50 ms. peak_anon_kib is
    the highest sample, hwm_kib VmHWM at exit (None when unreadable), samples the
    [(time.monotonic(), RssAnon KiB)] seen.
    """

    INTERVAL = 0.05

    def __init__(self, pid):
        self.pid = pid
        self.start_kib = self.peak_anon_kib = self.hwm_kib = None
        self.samples = []
        self._stop = threading.Event()
        self._thread = None

    def _status(self, key):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return None

    def sample(self):
        kib = self._status("RssAnon")
        if kib is not None:
            self.samples.append((time.monotonic(), kib))
            if self.peak_anon_kib is None or kib > self.peak_anon_kib:
                self.peak_anon_kib = kib
        return kib

    def _run(self):
        while not self._stop.wait(self.INTERVAL):
            self.sample()

    def __enter__(self):
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        self.start_kib = self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.sample()
        self.hwm_kib = self._status("VmHWM")


def metric(text, name, **labels):
    """The value of metric `name` with exactly these labels in a Prometheus text, or 0."""
    want = sorted(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", line)
        if m and m.group(1) == name and sorted(filter(None, (m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    return 0.0


class StreamingCase(unittest.TestCase):
    """A test upstream for the class, reset before each case, and braced with
    one profile PROFILE on it, its admin listener on, one attempt by default."""

    PROFILE = "s"

    @classmethod
    def setUpClass(cls):
        from harness import UpstreamProcess
        cls.upstream = UpstreamProcess()
        cls.addClassCleanup(cls.upstream.stop)

    def setUp(self):
        self.upstream.reset()

    def braced(self, profile=None, defaults=None, **top):
        from harness import Braced, make_config
        prof = {"upstream": self.upstream.url()}
        prof.update(profile or {})
        top.setdefault("admin", "127.0.0.1:0")
        if defaults:
            top["defaults"] = dict({"retry": {"attempts": 1}}, **defaults)
        return Braced(make_config({self.PROFILE: prof}, **top))


def under_asan(pid):
    """1 when pid runs the AddressSanitizer build: its shadow memory and
    quarantine are not braced's, so memory bounds are checked on the plain
    build only."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()
