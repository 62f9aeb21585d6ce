#!/usr/bin/env python3
"""Fault-injecting HTTP/1.1 test upstream for braced.

By default every request is answered with a JSON echo of exactly what arrived;
a FIFO script (POST /__script) or a per-request `X-Fault` header can make it
delay, trickle, reset, close, cut the body short or refuse to read the body,
or queue behind a limited capacity ({"capacity": N, "delay_ms": T}: at most
N such requests are served at once, T ms each; the rest wait their turn).

Streaming actions, whose bodies are made as they are sent (never held whole):
  {"sse": {"events": N, "interval_ms": M, "bytes": B}}
        200 text/event-stream, chunked, one chunk per event, N events M ms
        apart: "data: SEQ T" (SEQ from 0, T time.monotonic() at send), padded
        with a ": " comment line to at least B bytes when B is given
  {"generate": {"bytes": N, "chunked": false, "seed": 1, "piece": 65536}}
        200 with N bytes of the body of `seed` (tests/streamgen.py), framed by
        Content-Length or chunked, written `piece` bytes at a time
  {"cut_after": {"bytes": N, "how": "rst", "chunked": false, "length": L}}
        a head promising L bytes (default 2 N, at least 1) or a chunked body,
        then N bytes of the body of seed 1 and a close: "rst" (a reset) or
        "fin"; no last chunk
  {"digest_body": true}
        the request body (Content-Length or chunked, up to 4 GiB) read 64 KiB at
        a time as it arrives and answered with 200 JSON {length, sha256,
        framing, first_ms, last_ms} (ms from the head's arrival to the first and
        to the last body byte)
  {"early": {"status": S}}
        S with a small body and Connection: close right after the head, before
        the body is read; then the body is read and dropped (a lingering
        close, as nginx's lingering_close: closing with unread bytes would
        reset the connection, and the reset can destroy the answer before
        the client reads it) until the client stops sending, for at most 1 s
        and 256 MiB, and the connection closes
  {"ignore_body": true}  (with any answer, e.g. generate)
        the request body is never read: the answer goes out while the
        client's writes stall, and the connection closes after it

A quota, as a third-party API enforces and announces one:
  {"quota": {"limit": N, "window_ms": W, "family": "ietf", "key": "authorization"}}
        at most N requests per fixed window of W ms (windows counted from the
        first request of the quota's key: the value of the request header
        `key`, "" without it); within it the rest of the action answers;
        beyond it 429 with Retry-After (whole seconds to the window's end,
        at least 1). Every answer announces the quota in `family`: "ietf"
        (RateLimit-Policy "q";q=N;w=W/1000 and RateLimit "q";r=R;t=T),
        "draft" (RateLimit-Limit/-Remaining/-Reset), "x" (X-RateLimit-*,
        reset in seconds), "x-epoch" (X-RateLimit-Reset an epoch time) or
        "none". Refusals are counted in /__stats "quota_refused".

Runs as a program (prints its port on stdout) or is imported (Upstream class).

Which action answers a request: the next scripted one, else the request's
X-Fault header, else the persistent default action (POST /__default), else
the echo. An action may be {"random": {"p": P, "seed": S, "then": ACTION}}:
with probability P the `then` action applies, else the echo; the draws of
one installed action come from one random.Random(S), so a seeded default
gives the same sequence of draws in every run.

Control endpoints (not counted as requests):
  GET  /__stats    counters; "active" requests being answered now and their
                   "peak" since the last reset
  GET  /__log      every request received: t (time.monotonic() at arrival,
                   CLOCK_MONOTONIC, the clock of every process on the host),
                   method, path, headers, status (the action's, null for
                   reset/close); body_sent (body bytes written, for sse,
                   generate and cut_after) and body_received (request body
                   bytes read, for digest_body and early) once known
  POST /__script   append a JSON list of actions to the script
  POST /__default  set the default action (a JSON object; {} or null clears it)
  POST /__reset    counters, log, script and default action cleared
"""

import argparse
import base64
import collections
import fcntl
import hashlib
import http
import ipaddress
import json
import os
import random
import re
import select
import signal
import socket
import socketserver
import struct
import sys
import termios
import threading
import time
from urllib.parse import parse_qs

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import streamgen   # noqa: E402  (tests/streamgen.py, beside this file)

MAX_HEAD = 1024 * 1024          # request line + headers
MAX_BODY = 256 * 1024 * 1024    # request body
MAX_DIGEST_BODY = 4 * 1024 ** 3 # request body of digest_body, read and dropped as it arrives
DIGEST_PIECE = 64 * 1024        # digest_body reads at most this much at a time
MAX_GENERATE = 64 * 1024 ** 3   # body of generate
MAX_PIECE = 16 * 1024 * 1024    # generate.piece
MAX_SSE_EVENTS = 1000000
MAX_SSE_BYTES = 1024 * 1024     # sse.bytes, per event
EARLY_DRAIN_BYTES = 256 * 1024 * 1024  # early: body bytes read and dropped after the answer ...
EARLY_DRAIN_SECONDS = 1.0       # ... for at most this long
CUT_DRAIN_SECONDS = 5.0         # cut_after rst: how long the sent bytes may take to be acknowledged
IDLE_TIMEOUT = 300.0            # seconds a connection may sit idle between requests
POLL_STEP = 0.02                # how often a delay checks for a departed client
FAULT_HEADER = "x-fault"
CONTROL_PREFIX = "/__"

POLLRDHUP = getattr(select, "POLLRDHUP", 0x2000)
GONE_MASK = POLLRDHUP | select.POLLHUP | select.POLLERR

# Action fields and the JSON types they accept.
ACTION_FIELDS = {
    "status": (int,),
    "headers": (dict,),
    "body": (str,),
    "body_b64": (str,),
    "delay_ms": (int, float),
    "trickle": (dict,),
    "reset": (bool,),
    "close": (bool,),
    "no_read_body": (bool,),
    "ignore_body": (bool,),
    "partial": (bool,),
    "chunked": (bool,),
    "echo_body": (bool,),
    "random": (dict,),
    "raw_b64": (str,),
    "capacity": (int,),
    "sse": (dict,),
    "generate": (dict,),
    "cut_after": (dict,),
    "digest_body": (bool,),
    "early": (dict,),
    "quota": (dict,),
}
RANDOM_FIELDS = {"p", "seed", "then"}
MAX_LOG = 100000                # requests kept for GET /__log
TRICKLE_FIELDS = {"chunk", "interval_ms", "total"}
SSE_FIELDS = {"events", "interval_ms", "bytes"}
GENERATE_FIELDS = {"bytes", "chunked", "seed", "piece"}
CUT_FIELDS = {"bytes", "how", "chunked", "length"}
EARLY_FIELDS = {"status"}
QUOTA_FIELDS = {"limit", "window_ms", "family", "key"}
QUOTA_FAMILIES = ("ietf", "draft", "x", "x-epoch", "none")
# Actions that make the whole answer: one at most, and none of the fields of a plain answer.
STREAM_ACTIONS = ("sse", "generate", "cut_after", "early", "digest_body")
PLAIN_FIELDS = ("body", "body_b64", "trickle", "partial", "chunked", "echo_body", "raw_b64",
                "reset", "close", "no_read_body")

HEAD_END = re.compile(rb"\r?\n\r?\n")
CONDITIONS = ("sunny", "cloudy", "rain", "snow", "fog", "windy")


class BadRequest(Exception):
    """The request cannot be parsed; answered with 400 and a closed connection."""


class ClientGone(Exception):
    """The client closed or reset its connection while we were delaying or trickling."""


def validate_action(obj):
    """Return obj if it is a well-formed action object, else raise ValueError."""
    if not isinstance(obj, dict):
        raise ValueError("an action must be a JSON object")
    for key, value in obj.items():
        if key not in ACTION_FIELDS:
            raise ValueError(f"unknown action field {key!r}")
        types = ACTION_FIELDS[key]
        if isinstance(value, bool) and bool not in types:
            raise ValueError(f"action field {key!r} has the wrong type")
        if not isinstance(value, types):
            raise ValueError(f"action field {key!r} has the wrong type")
    status = obj.get("status", 200)
    if not 100 <= status <= 999:
        raise ValueError("status must be 100..999")
    if obj.get("delay_ms", 0) < 0:
        raise ValueError("delay_ms must be >= 0")
    if obj.get("capacity", 1) < 1:
        raise ValueError("capacity must be >= 1")
    for name, value in obj.get("headers", {}).items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, (str, int)):
                raise ValueError(f"header {name!r} must be a string or a list of strings")
    trickle = obj.get("trickle")
    if trickle is not None:
        unknown = set(trickle) - TRICKLE_FIELDS
        if unknown:
            raise ValueError(f"unknown trickle field(s) {sorted(unknown)}")
        for key in TRICKLE_FIELDS & set(trickle):
            v = trickle[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"trickle.{key} must be a number >= 0")
        if trickle.get("chunk", 1) < 1:
            raise ValueError("trickle.chunk must be >= 1")
    rnd = obj.get("random")
    if rnd is not None:
        unknown = set(rnd) - RANDOM_FIELDS
        if unknown:
            raise ValueError(f"unknown random field(s) {sorted(unknown)}")
        p = rnd.get("p")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError("random.p must be a number from 0 to 1")
        seed = rnd.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("random.seed must be an integer")
        if "then" not in rnd:
            raise ValueError("random.then (an action) is required")
        validate_action(rnd["then"])
        if set(obj) - {"random"}:
            raise ValueError("an action with `random` has no other fields")
    validate_streaming(obj)
    return obj


def check_fields(spec, name, allowed):
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"unknown {name} field(s) {sorted(unknown)}")


def check_int(spec, key, name, low, high, required=False):
    """spec[key], if there, is an integer (not a bool) in low..high."""
    if key not in spec:
        if required:
            raise ValueError(f"{name}.{key} is required")
        return
    v = spec[key]
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise ValueError(f"{name}.{key} must be an integer from {low} to {high}")


def check_bool(spec, key, name):
    if key in spec and not isinstance(spec[key], bool):
        raise ValueError(f"{name}.{key} must be true or false")


def validate_streaming(obj):
    """The streaming actions' fields (sse, generate, cut_after, digest_body, early)."""
    used = [k for k in STREAM_ACTIONS if k in obj and obj[k] is not False]
    if not used:
        return
    if len(used) > 1:
        raise ValueError(f"an action has at most one of {', '.join(STREAM_ACTIONS)}")
    clash = [k for k in PLAIN_FIELDS if k in obj]
    if clash:
        raise ValueError(f"{used[0]} goes with none of {clash}")
    sse = obj.get("sse")
    if sse is not None:
        check_fields(sse, "sse", SSE_FIELDS)
        check_int(sse, "events", "sse", 0, MAX_SSE_EVENTS, required=True)
        check_int(sse, "bytes", "sse", 0, MAX_SSE_BYTES)
        v = sse.get("interval_ms", 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 3600000:
            raise ValueError("sse.interval_ms must be a number from 0 to 3600000")
    gen = obj.get("generate")
    if gen is not None:
        check_fields(gen, "generate", GENERATE_FIELDS)
        check_int(gen, "bytes", "generate", 0, MAX_GENERATE, required=True)
        check_bool(gen, "chunked", "generate")
        check_int(gen, "seed", "generate", 0, 2 ** 63 - 1)
        check_int(gen, "piece", "generate", 1, MAX_PIECE)
    cut = obj.get("cut_after")
    if cut is not None:
        check_fields(cut, "cut_after", CUT_FIELDS)
        check_int(cut, "bytes", "cut_after", 0, MAX_GENERATE, required=True)
        check_bool(cut, "chunked", "cut_after")
        if cut.get("how", "rst") not in ("rst", "fin"):
            raise ValueError('cut_after.how must be "rst" or "fin"')
        if "length" in cut:
            if cut.get("chunked"):
                raise ValueError("cut_after.length goes with a Content-Length, not chunked")
            check_int(cut, "length", "cut_after", cut["bytes"] + 1, 2 * MAX_GENERATE)
    check_quota(obj)
    early = obj.get("early")
    if early is not None:
        check_fields(early, "early", EARLY_FIELDS)
        check_int(early, "status", "early", 200, 999, required=True)
        if "status" in obj:
            raise ValueError("early carries its own status")


def check_quota(obj):
    quota = obj.get("quota")
    if quota is None:
        return
    check_fields(quota, "quota", QUOTA_FIELDS)
    check_int(quota, "limit", "quota", 0, 10**9, required=True)
    check_int(quota, "window_ms", "quota", 1, 86400000, required=True)
    if quota.get("family", "ietf") not in QUOTA_FAMILIES:
        raise ValueError(f"quota.family must be one of {QUOTA_FAMILIES}")
    if not isinstance(quota.get("key", ""), str):
        raise ValueError("quota.key must be a header name")


def quota_headers(family, limit, remaining, reset_s, window_s):
    """The fields announcing a quota in one family."""
    if family == "ietf":
        return {"RateLimit-Policy": f'"q";q={limit};w={window_s}',
                "RateLimit": f'"q";r={remaining};t={reset_s}'}
    if family == "draft":
        return {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(reset_s)}
    if family == "x":
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(reset_s)}
    if family == "x-epoch":
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(int(time.time()) + reset_s)}
    return {}


class Installed:
    """An action as installed (scripted or default), with the random source of its draws."""

    def __init__(self, action):
        self.action = action
        rnd = action.get("random")
        self.rng = random.Random(rnd.get("seed")) if rnd is not None else None
        self.then = Installed(rnd["then"]) if rnd is not None else None

    def resolve(self):
        """The plain action one request gets; call it holding the Stats lock (or unshared)."""
        if self.rng is None:
            return self.action
        if self.rng.random() < self.action["random"]["p"]:
            return self.then.resolve()
        return {}


class Request:
    """One parsed request head; the body is filled in later."""

    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers          # [(name, value)] as received, latin-1 text
        self.body = b""
        self.digest = None              # digest_body: what the body was, not the body
        self.entry = None               # its /__log entry, once counted
        path, sep, query = target.partition("?")
        if path.startswith(("http://", "https://")):    # absolute-form
            rest = path.split("//", 1)[1]
            path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        self.path = path
        self.query = query

    def header(self, name):
        """Last value of header `name` (case-insensitive), or None."""
        name = name.lower()
        found = None
        for n, v in self.headers:
            if n.lower() == name:
                found = v
        return found

    def tokens(self, name):
        """Comma-separated tokens of every `name` header, lower-cased."""
        name = name.lower()
        out = []
        for n, v in self.headers:
            if n.lower() == name:
                out.extend(t.strip().lower() for t in v.split(",") if t.strip())
        return out

    def keep_alive(self):
        conn = self.tokens("connection")
        if self.version == "HTTP/1.1":
            return "close" not in conn
        return "keep-alive" in conn


class Connection:
    """Buffered reader over one accepted socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def read_head(self):
        """Parse the next request head; None on a clean EOF between requests."""
        while True:
            while self.buf[:2] == b"\r\n" or self.buf[:1] == b"\n":     # RFC 9112 2.2
                del self.buf[: 2 if self.buf[:1] == b"\r" else 1]
            m = HEAD_END.search(self.buf)
            if m:
                head = bytes(self.buf[: m.start()])
                del self.buf[: m.end()]
                return parse_head(head)
            if len(self.buf) > MAX_HEAD:
                raise BadRequest("request head too large")
            try:
                self._fill()
            except EOFError:
                if self.buf:
                    raise BadRequest("connection closed inside the request head")
                return None

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i]).rstrip(b"\r")
                del self.buf[: i + 1]
                return line
            if len(self.buf) > MAX_HEAD:
                raise BadRequest("line too long")
            self._fill()

    def read_some(self, limit):
        """Up to `limit` bytes: buffered ones first, else what one recv brings; EOFError at the end."""
        if self.buf:
            data = bytes(self.buf[:limit])
            del self.buf[:limit]
            return data
        data = self.sock.recv(limit)
        if not data:
            raise EOFError
        return data

    def body_pieces(self, req, cap):
        """Yield the request body, framed by Transfer-Encoding or Content-Length, in pieces
        of at most DIGEST_PIECE bytes as they arrive; BadRequest past `cap` bytes."""
        if "chunked" in req.tokens("transfer-encoding"):
            size = 0
            while True:
                line = self.read_line()
                try:
                    n = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequest("bad chunk size")
                if n == 0:
                    while self.read_line():     # trailers
                        pass
                    return
                size += n
                if size > cap:
                    raise BadRequest("body too large")
                while n:
                    data = self.read_some(min(n, DIGEST_PIECE))
                    n -= len(data)
                    yield data
                if self.read_line():
                    raise BadRequest("no CRLF after a chunk")
        length = req.header("content-length")
        if length is None:
            return
        if not length.isdigit() or int(length) > cap:
            raise BadRequest("bad Content-Length")
        left = int(length)
        while left:
            data = self.read_some(min(left, DIGEST_PIECE))
            left -= len(data)
            yield data

    def read_body(self, req):
        """Read the request body as framed by Transfer-Encoding or Content-Length."""
        if "chunked" in req.tokens("transfer-encoding"):
            parts, size = [], 0
            while True:
                line = self.read_line()
                try:
                    n = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequest("bad chunk size")
                if n == 0:
                    while self.read_line():     # trailers
                        pass
                    return b"".join(parts)
                size += n
                if size > MAX_BODY:
                    raise BadRequest("body too large")
                parts.append(self.read_exact(n))
                self.read_line()
        length = req.header("content-length")
        if length is None:
            return b""
        if not length.isdigit() or int(length) > MAX_BODY:
            raise BadRequest("bad Content-Length")
        return self.read_exact(int(length))


def parse_head(head):
    lines = [line.rstrip(b"\r") for line in head.split(b"\n")]
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise BadRequest("bad request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise BadRequest("unsupported HTTP version")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise BadRequest("bad header line")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return Request(method, target, version, headers)


def wait_watching(sock, seconds):
    """Sleep `seconds` while watching `sock`; raise ClientGone if the peer closes it."""
    deadline = time.monotonic() + seconds
    poller = select.poll()
    poller.register(sock, select.POLLIN | GONE_MASK)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        step = min(left, POLL_STEP)
        events = poller.poll(step * 1000)
        if not events:
            continue
        mask = events[0][1]
        if mask & GONE_MASK:
            raise ClientGone
        try:
            peek = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            peek = b"?"
        except OSError:
            raise ClientGone
        if peek == b"":
            raise ClientGone
        # Unread bytes (a pipelined request or an unread body): not a close.
        time.sleep(step)


def send_watching(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        raise ClientGone


def weather(query):
    """The --demo endpoint GET /v1/weather: (status, JSON document)."""
    params = parse_qs(query, keep_blank_values=True)
    city = (params.get("city") or [""])[0]
    unit = (params.get("unit") or ["metric"])[0]
    if not city:
        return 400, {"error": "city is required"}
    if unit not in ("metric", "imperial"):
        return 400, {"error": "unit must be metric or imperial"}
    digest = hashlib.sha256(city.lower().encode("utf-8")).digest()
    celsius = round(-10 + (int.from_bytes(digest[:4], "big") % 4500) / 100, 1)
    temperature = celsius if unit == "metric" else round(celsius * 9 / 5 + 32, 1)
    return 200, {
        "city": city,
        "temperature": float(temperature),
        "condition": CONDITIONS[digest[4] % len(CONDITIONS)],
        "source_latency_ms": 5 + digest[5] % 40,
    }


def echo_document(req, with_body=True):
    doc = {
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "headers": [[n, v] for n, v in req.headers],
        "body_len": len(req.body),
        "body_sha256": hashlib.sha256(req.body).hexdigest(),
    }
    if with_body:
        doc["body_b64"] = base64.b64encode(req.body).decode("ascii")
        doc["body"] = req.body.decode("utf-8", errors="replace")
    return doc


def status_line(status):
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"HTTP/1.1 {status} {reason}\r\n"


def bodyless(status, method):
    return method == "HEAD" or status < 200 or status in (204, 304)


class Stats:
    """Counters and the script, shared by all connection threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = 0
            self.aborted = 0
            self.connections = 0
            self.by_path = collections.Counter()
            self.script = collections.deque()
            self.default = None         # Installed, or None for the echo
            self.log = []
            self.active = 0             # requests arrived and not yet answered
            self.peak = 0
            self.queues = {}            # capacity -> threading.Semaphore
            self.quotas = {}            # quota key -> [window start, used]
            self.quota_refused = 0

    def arrived(self, req):
        """Counts and logs a request; returns its log entry (its status is filled in later)."""
        entry = {"t": time.monotonic(), "method": req.method, "path": req.path,
                 "headers": [[n, v] for n, v in req.headers], "status": None}
        with self.lock:
            self.requests += 1
            self.by_path[req.path] += 1
            if len(self.log) < MAX_LOG:
                self.log.append(entry)
        return entry

    def snapshot(self):
        with self.lock:
            return {
                "requests": self.requests,
                "aborted": self.aborted,
                "connections": self.connections,
                "by_path": dict(self.by_path),
                "script_left": len(self.script),
                "default": self.default.action if self.default is not None else None,
                "active": self.active,
                "peak": self.peak,
                "quota_refused": self.quota_refused,
            }

    def spend_quota(self, action, req):
        """The action a request under action["quota"] gets: the rest of it with
        the quota's fields, or a 429 beyond the quota."""
        q = action["quota"]
        now = time.monotonic()
        window = q["window_ms"] / 1000
        key = req.header(q["key"]) if q.get("key") else ""
        with self.lock:
            state = self.quotas.setdefault(key or "", [now, 0])
            if now >= state[0] + window:
                state[0] += (now - state[0]) // window * window
                state[1] = 0
            allowed = state[1] < q["limit"]
            if allowed:
                state[1] += 1
            else:
                self.quota_refused += 1
            remaining = q["limit"] - state[1]
            left = state[0] + window - now
        reset_s = max(1, int(-(-left // 1)))
        fields = quota_headers(q.get("family", "ietf"), q["limit"], remaining, reset_s,
                               max(1, int(-(-window // 1))))
        if allowed:
            out = {k: v for k, v in action.items() if k != "quota"}
        else:
            out = {"status": 429, "body": '{"error":"quota exceeded"}'}
            fields["Retry-After"] = str(reset_s)
        out["headers"] = {**action.get("headers", {}), **fields}
        return out

    def enter(self):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def leave(self):
        with self.lock:
            self.active -= 1

    def queue(self, capacity):
        """The semaphore shared by every request of one capacity."""
        with self.lock:
            return self.queues.setdefault(capacity, threading.Semaphore(capacity))

    def bump(self, name, path=None):
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)
            if path is not None:
                self.by_path[path] += 1

    def next_scripted(self):
        """The next scripted action, resolved; None when the script is empty."""
        with self.lock:
            return self.script.popleft().resolve() if self.script else None

    def default_action(self):
        """The default action, resolved; {} (the echo) when none is set."""
        with self.lock:
            return self.default.resolve() if self.default is not None else {}


class Handler(socketserver.BaseRequestHandler):
    """Serves one TCP connection: requests one after another while keep-alive holds."""

    def handle(self):
        sock = self.request
        self.server.stats.bump("connections")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(IDLE_TIMEOUT)
        conn = Connection(sock)
        try:
            while True:
                req = conn.read_head()
                if req is None or not self.serve(conn, req):
                    break
        except BadRequest as e:
            self.log(f"bad request: {e}")
            self.send_simple(400, {"error": str(e)}, keep=False)
        except ClientGone:
            self.server.stats.bump("aborted")
        except (EOFError, OSError):
            pass

    def log(self, msg):
        if self.server.verbose:
            print(f"upstream: {msg}", file=sys.stderr, flush=True)

    # --- answering ---------------------------------------------------------

    def head_bytes(self, status, headers, keep):
        lines = [status_line(status)]
        for name, value in headers:
            lines.append(f"{name}: {value}\r\n")
        if not keep:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def send_simple(self, status, doc, keep, method="GET"):
        body = json.dumps(doc).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        data = self.head_bytes(status, headers, keep)
        if not bodyless(status, method):
            data += body
        try:
            self.request.sendall(data)
        except OSError:
            return False
        return keep

    def serve(self, conn, req):
        """Answer one request; return True to keep the connection open."""
        keep = req.keep_alive()
        stats = self.server.stats
        self.log(f"{req.method} {req.target}")
        if req.path.startswith(CONTROL_PREFIX):
            req.body = conn.read_body(req)
            return self.control(req, keep)
        stats.enter()
        try:
            return self.serve_counted(conn, req, keep)
        finally:
            stats.leave()

    def serve_counted(self, conn, req, keep):
        stats = self.server.stats
        entry = req.entry = stats.arrived(req)
        action = stats.next_scripted()
        if action is None:
            fault = req.header(FAULT_HEADER)
            if fault is not None:
                try:
                    action = Installed(validate_action(json.loads(fault))).resolve()
                except ValueError as e:     # json.JSONDecodeError is a ValueError
                    req.body = conn.read_body(req)
                    entry["status"] = 400
                    return self.send_simple(400, {"error": f"bad X-Fault: {e}"}, keep, req.method)
            else:
                action = stats.default_action()
        if "quota" in action:
            action = stats.spend_quota(action, req)
        if "early" in action:
            entry["status"] = action["early"]["status"]
        elif not (action.get("reset") or action.get("close")):
            entry["status"] = action.get("status", 200)

        sock = self.request
        try:
            delay = action.get("delay_ms", 0) / 1000
            if "early" in action:
                wait_watching(sock, delay)
                return self.early(conn, req, action, entry)
            if action.get("ignore_body"):
                # Answered without reading the body at all: the client's
                # writes stall for good, and the connection ends after.
                keep = False
            elif action.get("no_read_body"):
                self.hold_body(conn, req, delay)
                delay = 0
            elif action.get("digest_body"):
                if "100-continue" in req.tokens("expect"):
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                req.digest = self.digest_body(conn, req, entry)
            else:
                if "100-continue" in req.tokens("expect"):
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                req.body = conn.read_body(req)
            if action.get("capacity"):
                # Served one capacity slot at a time, the wait included.
                slots = stats.queue(action["capacity"])
                while not slots.acquire(timeout=POLL_STEP):
                    wait_watching(sock, 0)
                try:
                    wait_watching(sock, delay)
                finally:
                    slots.release()
            else:
                wait_watching(sock, delay)
        except ClientGone:
            stats.bump("aborted")
            return False

        if action.get("reset"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            return False
        if action.get("close"):
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            return False
        if "raw_b64" in action:
            # Bytes sent exactly as given (a malformed answer), then the
            # connection closes; with "trickle", in pieces apart in time.
            raw = base64.b64decode(action["raw_b64"])
            spec = action.get("trickle")
            try:
                if spec is None:
                    sock.sendall(raw)
                else:
                    step = int(spec.get("chunk", 1))
                    for i in range(0, len(raw), step):
                        if i:
                            wait_watching(sock, spec.get("interval_ms", 100) / 1000)
                        send_watching(sock, raw[i:i + step])
                sock.shutdown(socket.SHUT_RDWR)
            except (ClientGone, OSError):
                stats.bump("aborted")
            sock.close()
            return False
        return self.respond(req, action, keep)

    def hold_body(self, conn, req, seconds):
        """Leave the body unread for `seconds` so the client's writes stall, then read it.

        A client that gives up closes its end behind the unread body, where
        its FIN cannot be seen yet; it shows as an EOF inside the body later,
        and counts as aborted then.
        """
        sock = self.request
        normal = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wait_watching(sock, seconds)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, max(normal, 4 * 1024 * 1024))
        try:
            req.body = conn.read_body(req)
        except (EOFError, ConnectionError):
            raise ClientGone

    def digest_body(self, conn, req, entry):
        """Read the request body as it arrives, keeping only its length and SHA-256."""
        framing = "chunked" if "chunked" in req.tokens("transfer-encoding") else "length"
        h = hashlib.sha256()
        n = 0
        first = last = None
        try:
            for data in conn.body_pieces(req, MAX_DIGEST_BODY):
                last = time.monotonic()
                if first is None:
                    first = last
                h.update(data)
                n += len(data)
        except (EOFError, ConnectionError, socket.timeout):
            entry["body_received"] = n
            raise ClientGone
        entry["body_received"] = n

        def ms(t):
            return None if t is None else round((t - entry["t"]) * 1000, 3)
        return {"length": n, "sha256": h.hexdigest(), "framing": framing,
                "first_ms": ms(first), "last_ms": ms(last)}

    def early(self, conn, req, action, entry):
        """Answer before reading the body; then drop what comes for a while and close."""
        status = action["early"]["status"]
        body = json.dumps({"early": True, "status": status}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers += action_headers(action)
        data = self.head_bytes(status, headers, False)
        if not bodyless(status, req.method):
            data += body
        sock = self.request
        try:
            send_watching(sock, data)
        except ClientGone:
            self.server.stats.bump("aborted")
            sock.close()
            return False
        dropped = len(conn.buf)
        conn.buf.clear()
        deadline = time.monotonic() + EARLY_DRAIN_SECONDS
        try:
            while dropped < EARLY_DRAIN_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                got = sock.recv(min(65536, EARLY_DRAIN_BYTES - dropped))
                if not got:
                    break
                dropped += len(got)
        except OSError:         # socket.timeout is an OSError
            pass
        entry["body_received"] = dropped
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        return False

    def stream_head(self, req, action, keep, ctype, length=None):
        """(head bytes, keep, chunked) for a streamed answer: Content-Length `length`, or chunked."""
        status = action.get("status", 200)
        given = {n.lower() for n in action.get("headers", {})}
        headers = [] if "content-type" in given else [("Content-Type", ctype)]
        headers += action_headers(action)
        if any("close" in v.lower() for n, v in headers if n.lower() == "connection"):
            keep = False
        chunked = length is None
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif "content-length" not in given:
            headers.append(("Content-Length", str(length)))
        return self.head_bytes(status, headers, keep), keep, chunked

    def sse(self, req, action, keep, entry):
        """Server-sent events, one chunk each, spec['interval_ms'] apart."""
        spec = action["sse"]
        head, keep, _ = self.stream_head(req, action, keep, "text/event-stream")
        sock = self.request
        if bodyless(action.get("status", 200), req.method):
            sock.sendall(head)
            return keep
        interval = spec.get("interval_ms", 0) / 1000
        want = spec.get("bytes", 0)
        sent = 0
        try:
            send_watching(sock, head)
            for seq in range(spec["events"]):
                if seq:
                    wait_watching(sock, interval)
                event = b"data: %d %.6f\n" % (seq, time.monotonic())
                short = want - len(event) - 1
                if short > 0:
                    event += b": " + b"." * max(0, short - 3) + b"\n"
                event += b"\n"
                send_watching(sock, frame(event, True))
                sent += len(event)
                entry["body_sent"] = sent
            send_watching(sock, b"0\r\n\r\n")
        except ClientGone:
            self.server.stats.bump("aborted")
            return False
        return keep

    def generate(self, req, action, keep, entry):
        """spec['bytes'] bytes of the body of spec['seed'], sent spec['piece'] bytes at a time."""
        spec = action["generate"]
        total = spec["bytes"]
        head, keep, chunked = self.stream_head(req, action, keep, "application/octet-stream",
                                               None if spec.get("chunked") else total)
        sock = self.request
        if bodyless(action.get("status", 200), req.method):
            sock.sendall(head)
            return keep
        sent = 0
        try:
            send_watching(sock, head)
            for data in streamgen.generated_bytes(spec.get("seed", 1), 0, total,
                                                  spec.get("piece", streamgen.PIECE)):
                send_watching(sock, frame(data, chunked))
                sent += len(data)
            if chunked:
                send_watching(sock, b"0\r\n\r\n")
        except ClientGone:
            self.server.stats.bump("aborted")
            return False
        finally:
            entry["body_sent"] = sent
        return keep

    def cut_after(self, req, action, entry):
        """A head promising more than is sent, spec['bytes'] body bytes, then a reset or a FIN."""
        spec = action["cut_after"]
        n = spec["bytes"]
        length = None if spec.get("chunked") else spec.get("length", max(2 * n, 1))
        head, _, chunked = self.stream_head(req, action, True, "application/octet-stream", length)
        sock = self.request
        sent = 0
        try:
            send_watching(sock, head)
            for data in streamgen.generated_bytes(1, 0, n):
                send_watching(sock, frame(data, chunked))
                sent += len(data)
            if spec.get("how", "rst") == "rst":
                # A reset drops what is still queued: let the peer acknowledge it first.
                deadline = time.monotonic() + CUT_DRAIN_SECONDS
                while unacknowledged(sock) and time.monotonic() < deadline:
                    wait_watching(sock, POLL_STEP)
        except ClientGone:
            self.server.stats.bump("aborted")
        finally:
            entry["body_sent"] = sent
        try:
            if spec.get("how", "rst") == "rst":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        return False

    def respond(self, req, action, keep):
        if "sse" in action:
            return self.sse(req, action, keep, req.entry)
        if "generate" in action:
            return self.generate(req, action, keep, req.entry)
        if "cut_after" in action:
            return self.cut_after(req, action, req.entry)
        status = action.get("status", 200)
        given = {n.lower(): v for n, v in action.get("headers", {}).items()}
        ctype = "text/plain; charset=utf-8"
        has_body = "body" in action or "body_b64" in action
        if "body_b64" in action:
            body = base64.b64decode(action["body_b64"])
        elif "body" in action:
            body = action["body"].encode("utf-8")
        elif action.get("digest_body"):
            ctype = "application/json"
            body = json.dumps(req.digest).encode("utf-8")
        elif status == 200 and "trickle" not in action:
            ctype = "application/json"
            if self.server.demo and req.path == "/v1/weather" and req.method in ("GET", "HEAD"):
                code, doc = weather(req.query)
                if "status" not in action:
                    status = code
            else:
                doc = echo_document(req, action.get("echo_body", True))
            body = json.dumps(doc).encode("utf-8")
        else:
            body = b""

        trickle = action.get("trickle")
        if trickle is not None:
            # The given body repeated (or cut) to `total` bytes, else 'x' filler.
            total = int(trickle.get("total", len(body) if has_body else 100))
            pattern = body or b"x"
            body = (pattern * (total // len(pattern) + 1))[:total]
        if action.get("partial") and len(body) < 2:
            body = b"x" * 64

        headers = [] if "content-type" in given or not body else [("Content-Type", ctype)]
        headers += action_headers(action)
        if "close" in str(given.get("connection", "")).lower() or action.get("partial"):
            keep = False
        no_body = bodyless(status, req.method)
        chunked = action.get("chunked", False) and not no_body
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif "content-length" not in given and not (status < 200 or status in (204, 304)):
            headers.append(("Content-Length", str(len(body))))
        head = self.head_bytes(status, headers, keep)

        sock = self.request
        if no_body:
            sock.sendall(head)
            return keep
        if action.get("partial"):
            sock.sendall(head + frame(body[: len(body) // 2], chunked))
            sock.shutdown(socket.SHUT_WR)
            return False
        if trickle is not None:
            return self.trickle(head, body, trickle, chunked, keep)
        if chunked:
            pieces = [body[i:i + 16384] for i in range(0, len(body), 16384)]
            sock.sendall(head + b"".join(frame(p, True) for p in pieces) + b"0\r\n\r\n")
        else:
            sock.sendall(head + body)
        return keep

    def trickle(self, head, body, spec, chunked, keep):
        """Send the head, then the body in spec['chunk']-byte pieces spec['interval_ms'] apart."""
        step = int(spec.get("chunk", 1))
        interval = spec.get("interval_ms", 100) / 1000
        sock = self.request
        try:
            send_watching(sock, head)
            for i in range(0, len(body), step):
                if i:
                    wait_watching(sock, interval)
                send_watching(sock, frame(body[i:i + step], chunked))
            if chunked:
                send_watching(sock, b"0\r\n\r\n")
        except ClientGone:
            self.server.stats.bump("aborted")
            return False
        return keep

    # --- control endpoints -------------------------------------------------

    def control(self, req, keep):
        stats = self.server.stats
        if req.path == "/__stats" and req.method in ("GET", "HEAD"):
            return self.send_simple(200, stats.snapshot(), keep, req.method)
        if req.path == "/__log" and req.method == "GET":
            with stats.lock:
                # Copies: a streaming answer may still be adding to its entry.
                log = [dict(e) for e in stats.log]
            return self.send_simple(200, {"requests": log}, keep, req.method)
        if req.path == "/__default" and req.method == "POST":
            try:
                action = json.loads(req.body or b"null")
                if action is not None:
                    validate_action(action)
            except ValueError as e:
                return self.send_simple(400, {"error": str(e)}, keep)
            with stats.lock:
                stats.default = Installed(action) if action else None
            return self.send_simple(200, {"ok": True}, keep)
        if req.path == "/__reset" and req.method == "POST":
            stats.reset()
            return self.send_simple(200, {"ok": True}, keep)
        if req.path == "/__script" and req.method == "POST":
            try:
                script = json.loads(req.body or b"null")
                if not isinstance(script, list):
                    raise ValueError("the script must be a JSON list of action objects")
                for action in script:
                    validate_action(action)
            except ValueError as e:
                return self.send_simple(400, {"error": str(e)}, keep)
            with stats.lock:
                stats.script.extend(Installed(a) for a in script)
                left = len(stats.script)
            return self.send_simple(200, {"ok": True, "script_left": left}, keep)
        return self.send_simple(404, {"error": f"no control endpoint {req.method} {req.path}"}, keep)


def action_headers(action):
    """The action's `headers` as [(name, value)], a list value giving one header per item."""
    out = []
    for name, value in action.get("headers", {}).items():
        for v in value if isinstance(value, list) else [value]:
            out.append((name, str(v)))
    return out


def unacknowledged(sock):
    """Bytes sent on sock that the peer has not acknowledged yet (SIOCOUTQ)."""
    try:
        buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return struct.unpack("i", buf)[0]


def frame(data, chunked):
    """`data` as one chunk of a chunked body, or as is."""
    if not chunked or not data:
        return data
    return b"%x\r\n%s\r\n" % (len(data), data)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class Upstream:
    """The test upstream, bound at construction; start() serves from a background thread."""

    def __init__(self, host="127.0.0.1", port=0, demo=False, verbose=False):
        if ipaddress.ip_address(host).version != 4 or not ipaddress.ip_address(host).is_loopback:
            raise ValueError("the test upstream binds only to an IPv4 loopback address")
        self.server = _Server((host, port), Handler)
        self.server.stats = Stats()
        self.server.demo = demo
        self.server.verbose = verbose
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = None

    @property
    def stats(self):
        return self.server.stats

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(5)
            self.thread = None
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def make_blackhole(host="127.0.0.1", fill=3):
    """A listening port whose accept queue is full, so a further connect() hangs.

    Returns (port, sockets); keep the sockets open as long as the port is needed.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    keep = [listener]
    for _ in range(fill):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        keep.append(s)
    time.sleep(0.2)     # let the handshakes that can complete complete
    return port, keep


def write_atomically(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fault-injecting HTTP/1.1 test upstream.")
    ap.add_argument("--host", default="127.0.0.1", help="IPv4 loopback address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="port, 0 for any free one (default)")
    ap.add_argument("--demo", action="store_true", help="serve GET /v1/weather?city=NAME")
    ap.add_argument("--blackhole-port-file", metavar="F",
                    help="also open a port whose connects hang, and write it to F")
    ap.add_argument("--verbose", action="store_true", help="log requests on stderr")
    args = ap.parse_args(argv)

    try:
        upstream = Upstream(args.host, args.port, args.demo, args.verbose)
    except ValueError as e:
        ap.error(str(e))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    upstream.start()
    blackhole = []
    if args.blackhole_port_file:
        port, blackhole = make_blackhole(args.host)
        write_atomically(args.blackhole_port_file, f"{port}\n")
    sys.stdout.write(f"{upstream.port}\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    upstream.stop()
    for s in blackhole:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
