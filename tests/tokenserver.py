#!/usr/bin/env python3
"""OAuth2 token endpoint and token-checking upstream for braced's tests.

One HTTP/1.1 server on an IPv4 loopback address plays both sides of a
profile's `auth.oauth2` (SPEC 4.14): the token endpoint braced asks for
tokens, and the upstream that wants them.

POST /token   the client credentials grant (RFC 6749 4.4). The body must be
      application/x-www-form-urlencoded (ASCII, UTF-8 once decoded, each
      parameter at most once) with grant_type=client_credentials. The client
      authenticates with HTTP Basic (RFC 6749 2.3.1: base64 of the
      form-urlencoded id, ":", the form-urlencoded secret) or with client_id
      and client_secret in the form, as the setting client_auth says: "any"
      takes either, "basic" and "post" only their own (the other gets 401
      invalid_client); both at once is 400 invalid_request. Refusals are
      RFC 6749 5.2 JSON bodies: 400 invalid_request or unsupported_grant_type,
      401 invalid_client (with WWW-Authenticate: Basic), 405 for another
      method. A success (5.1, Cache-Control: no-store) issues a new opaque
      token: unique, token_length RFC 6750 b64token characters (letters,
      digits, "-._~+/", then one "=" at the end), with token_type, the scope
      asked for, and expires_in as set: an integer, a string (sent quoted),
      or null (left out). A token is honoured for expires_in seconds (a
      string of digits counts; 3600 without a number; 0 or less: never).
Any other path (not /__*): the upstream. A request with one Authorization
      "Bearer TOKEN" of an issued, unexpired, unrevoked TOKEN gets 200 JSON
      {serial, method, path, query, token_age_ms}: which token it got by its
      serial number (1 for the first ever issued), never the token. Others get
      401 with WWW-Authenticate: Bearer realm="tokenserver" when no Bearer
      token came, else Bearer error="invalid_token", and JSON {error,
      outcome, serial} (the serial of an expired or revoked token, else
      null). The request's body is read and dropped. The outcome is counted:
      ok, missing (no Bearer token), repeated (more than one Authorization
      field), malformed (not a b64token), unknown, expired, revoked.

Faults of POST /token, set by POST /__mode (a JSON object; {} or null clears):
  "delay_ms": T       wait T ms (at most 60000) before answering; a client
                      that leaves ends the wait
  "trickle": {"chunk": B, "interval_ms": M}
                      the whole answer, head included, B bytes at a time M ms
                      apart (M at most 10000; the answer at most 600 s)
  and at most one of these in place of the answer:
  "status": S         S (200..599) with an RFC 6749 5.2 body {"error": E,
                      "error_description"} when "error": E is given, else a
                      text/plain one
  "malformed": NAME   a 200 answer broken as MALFORMED[NAME] says: not_json
                      (a form-encoded body), html (a proxy's error page),
                      empty, array, no_access_token, expires_zero,
                      expires_negative, expires_abc, expires_fraction,
                      token_type_mac, token_crlf (a CR LF and a header in the
                      token), token_space, error_beside_token; its token is
                      never honoured
  "oversized": {"bytes": N, "chunked": false}
                      200 JSON of exactly N bytes (128 up to 16 MiB): a token
                      answer with a long "padding" member, made as it is sent
                      (Content-Length, or chunked); its token is never honoured
  "close": "fin"|"rst"
                      the request is read, then the connection is closed or
                      reset unanswered
  "times": N          the mode serves the next N token requests, then clears
                      itself; without it, until changed
The form is read and judged first, so a faulted request is logged like any.

Settings (command line, or POST /__config with some of them as JSON; /__reset
restores the command line's): client_id, client_secret, client_auth
(any|basic|post), expires_in (integer, string or null), token_type, and
token_length (8..16384).

Control endpoints (not counted as requests):
  GET  /__stats    counters: token_requests (all of them), tokens_issued,
                   token_refused (by the endpoint's own checks), token_faulted
                   (served by a mode), token_aborted (the client left, or
                   stop(), before the answer was sent), client_auth {basic,
                   post, both, none}, token_active and token_peak (token
                   requests being answered at once), api_requests, api
                   {outcome: count}, connections (every one accepted, control
                   ones too); and the mode, mode_left and settings
  GET  /__log      {"token_requests": [{t, method, path, headers, body, form,
                   client_auth, client_id, status, outcome, serial}], and
                   "api_requests": [{t, method, path, query, headers,
                   outcome, serial}]}; t is time.monotonic() at arrival
                   (CLOCK_MONOTONIC, the clock of every process on the host). A
                   token request is logged as received, secret included; an
                   API request's Authorization with an issued token reads
                   "Bearer #SERIAL", so that log holds no token
  GET  /__tokens   {"tokens": [{serial, token, age_ms, expires_in_ms, revoked}]}:
                   every token remembered, so that a test can look for them
                   where they must not be (a log, a status page)
  POST /__mode     set the fault mode (above)
  POST /__config   change settings
  POST /__revoke   every token issued so far is revoked
  POST /__reset    counters, logs, mode, tokens and settings back to the start
                   (serial numbers go on: they are never reused)

Runs as a program (prints its port on stdout) or is imported (TokenServer).
Every size and wait is bounded; connection threads are daemon threads, and
stop() ends the ones still answering.
"""

import argparse
import base64
import collections
import ipaddress
import itertools
import json
import os
import random
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from urllib.parse import parse_qsl, unquote_plus

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# tests/upstream.py, beside this file: its HTTP/1.1 reading and its watched waits.
from upstream import (BadRequest, ClientGone, Connection, send_watching,  # noqa: E402
                      status_line, wait_watching)

TOKEN_PATH = "/token"
FORM = "application/x-www-form-urlencoded"
MAX_FORM = 64 * 1024            # token request body
MAX_FIELDS = 100                # form parameters
MAX_API_BODY = 1024 * 1024      # an upstream request's body, read and dropped
MAX_CONTROL = 64 * 1024         # a control request's body
MAX_LOG = 10000                 # entries kept of each log
MAX_TOKENS = 10000              # tokens remembered; the oldest are forgotten first
MAX_DELAY_MS = 60000
MAX_INTERVAL_MS = 10000
MAX_TRICKLE_S = 600.0
MAX_OVERSIZED = 16 * 1024 * 1024
MIN_OVERSIZED = 128
MAX_TIMES = 1000000
PIECE = 64 * 1024               # oversized answers are written this much at a time
IDLE_TIMEOUT = 60.0             # seconds a connection may sit idle or stall
STEP = 0.1                      # how often a wait looks at stop()
DEFAULT_LIFETIME_S = 3600
B64TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
NQSCHARS = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")     # an error code (RFC 6749 A.7)
NOT_ISSUED = "NotIssued.0-_~+/"  # the token of malformed and oversized answers

DEFAULTS = {"client_id": "braced-test-client", "client_secret": "TS-SECRET-4f9c1d7e",
            "client_auth": "any", "expires_in": 3600, "token_type": "Bearer",
            "token_length": 43}
CLIENT_AUTHS = ("any", "basic", "post")

# Broken 200 answers: name -> (Content-Type, body).
_GOOD = {"access_token": NOT_ISSUED, "token_type": "Bearer", "expires_in": 3600}
MALFORMED = {name: ("application/json", json.dumps(doc).encode()) for name, doc in {
    "array": [_GOOD],
    "no_access_token": {"token_type": "Bearer", "expires_in": 3600},
    "expires_zero": {**_GOOD, "expires_in": 0},
    "expires_negative": {**_GOOD, "expires_in": -60},
    "expires_abc": {**_GOOD, "expires_in": "abc"},
    "expires_fraction": {**_GOOD, "expires_in": 1.5},
    "token_type_mac": {**_GOOD, "token_type": "mac", "mac_key": "adijq39jdlaska9asud",
                       "mac_algorithm": "hmac-sha-256"},
    "token_crlf": {**_GOOD, "access_token": NOT_ISSUED + "\r\nX-Injected: 1"},
    "token_space": {**_GOOD, "access_token": "Not Issued"},
    "error_beside_token": {**_GOOD, "error": "invalid_scope"},
}.items()}
MALFORMED.update({
    "not_json": ("application/json", b"access_token=NotIssued&token_type=bearer&expires_in=3600"),
    "html": ("text/html", b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
             b"<body><h1>Bad Gateway</h1></body></html>\n"),
    "empty": ("application/json", b""),
})
MODE_FIELDS = {"delay_ms": int, "trickle": dict, "status": int, "error": str, "malformed": str,
               "oversized": dict, "close": str, "times": int}
ANSWERS = ("status", "malformed", "oversized", "close")


def _check_int(value, name, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}")


def check_mode(mode):
    """Return mode if it is a well-formed fault mode, else raise ValueError."""
    if not isinstance(mode, dict):
        raise ValueError("a mode must be a JSON object")
    for key, value in mode.items():
        if key not in MODE_FIELDS:
            raise ValueError(f"unknown mode field {key!r}")
        if isinstance(value, bool) or not isinstance(value, MODE_FIELDS[key]):
            raise ValueError(f"mode field {key!r} has the wrong type")
    if sum(k in mode for k in ANSWERS) > 1:
        raise ValueError(f"at most one of {', '.join(ANSWERS)}")
    if "delay_ms" in mode:
        _check_int(mode["delay_ms"], "delay_ms", 0, MAX_DELAY_MS)
    if "times" in mode:
        _check_int(mode["times"], "times", 1, MAX_TIMES)
    if "status" in mode:
        _check_int(mode["status"], "status", 200, 599)
    if "error" in mode and ("status" not in mode or not NQSCHARS.fullmatch(mode["error"])):
        raise ValueError("error goes with status and is 1-64 of RFC 6749's NQSCHAR")
    if "malformed" in mode and mode["malformed"] not in MALFORMED:
        raise ValueError(f"malformed must be one of {sorted(MALFORMED)}")
    if "close" in mode and mode["close"] not in ("fin", "rst"):
        raise ValueError('close must be "fin" or "rst"')
    spec = mode.get("oversized")
    if spec is not None:
        if set(spec) - {"bytes", "chunked"}:
            raise ValueError("oversized takes bytes and chunked")
        _check_int(spec.get("bytes"), "oversized.bytes", MIN_OVERSIZED, MAX_OVERSIZED)
        if not isinstance(spec.get("chunked", False), bool):
            raise ValueError("oversized.chunked must be true or false")
    spec = mode.get("trickle")
    if spec is not None:
        if set(spec) - {"chunk", "interval_ms"}:
            raise ValueError("trickle takes chunk and interval_ms")
        _check_int(spec.get("chunk", 1), "trickle.chunk", 1, MAX_OVERSIZED)
        _check_int(spec.get("interval_ms", 100), "trickle.interval_ms", 0, MAX_INTERVAL_MS)
        if "close" in mode or "oversized" in mode:
            raise ValueError("trickle goes with neither close nor oversized")
    return mode


def check_settings(settings):
    """Return settings if every one given is well-formed, else raise ValueError."""
    if not isinstance(settings, dict):
        raise ValueError("settings must be a JSON object")
    for key, value in settings.items():
        if key not in DEFAULTS:
            raise ValueError(f"unknown setting {key!r}")
        if key in ("client_id", "client_secret", "token_type"):
            if not isinstance(value, str) or len(value) > 256:
                raise ValueError(f"{key} must be a string of at most 256 characters")
        elif key == "client_auth" and value not in CLIENT_AUTHS:
            raise ValueError(f"client_auth must be one of {CLIENT_AUTHS}")
        elif key == "expires_in" and not (value is None or type(value) is int
                                          or isinstance(value, str) and len(value) <= 64):
            raise ValueError("expires_in must be an integer, a string or null")
        elif key == "token_length":
            _check_int(value, "token_length", 8, 16384)
    return settings


def lifetime(expires_in):
    """Seconds a token answered with `expires_in` is honoured."""
    if isinstance(expires_in, str) and expires_in.isascii() and expires_in.isdigit():
        return int(expires_in)
    if isinstance(expires_in, int):
        return max(expires_in, 0)
    return DEFAULT_LIFETIME_S


def judge(req, body, cfg):
    """What the token endpoint makes of a request under settings cfg: a dict of
    form, client_auth, client_id and, for a refusal, status, error, description."""
    out = {"form": None, "client_auth": "none", "client_id": None, "status": 200, "error": None}

    def refuse(status, error, description):
        out.update(status=status, error=error, description=description)
        return out

    if req.method != "POST":
        return refuse(405, "invalid_request", "the token endpoint takes POST")
    scheme, _, cred = (req.header("authorization") or "").partition(" ")
    basic = scheme.lower() == "basic"
    if basic:
        out["client_auth"] = "basic"
    ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
    if ctype != FORM:
        return refuse(400, "invalid_request", f"the request must be {FORM}")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                          errors="strict", max_num_fields=MAX_FIELDS)
    except ValueError as e:          # UnicodeDecodeError is a ValueError
        return refuse(400, "invalid_request", f"bad form: {e}")
    form = out["form"] = dict(pairs)
    if len(form) != len(pairs):
        return refuse(400, "invalid_request", "a parameter is repeated")
    post = "client_id" in form or "client_secret" in form
    out["client_auth"] = {(True, True): "both", (True, False): "basic",
                          (False, True): "post", (False, False): "none"}[basic, post]
    if out["client_auth"] == "both":
        return refuse(400, "invalid_request", "more than one client authentication method")
    if out["client_auth"] == "none":
        return refuse(401, "invalid_client", "no client authentication")
    if cfg["client_auth"] != "any" and out["client_auth"] != cfg["client_auth"]:
        return refuse(401, "invalid_client", f"this client authenticates by {cfg['client_auth']}")
    if basic:
        try:
            pair = base64.b64decode(cred.strip(), validate=True).decode()
            user, sep, password = pair.partition(":")
            if not sep:
                raise ValueError("no ':'")
            client_id = unquote_plus(user, errors="strict")
            secret = unquote_plus(password, errors="strict")
        except ValueError:
            return refuse(401, "invalid_client", "bad Basic credentials")
    else:
        client_id, secret = form.get("client_id"), form.get("client_secret")
    out["client_id"] = client_id
    if client_id != cfg["client_id"] or secret != cfg["client_secret"]:
        return refuse(401, "invalid_client", "unknown client or wrong secret")
    if "grant_type" not in form:
        return refuse(400, "invalid_request", "no grant_type")
    if form["grant_type"] != "client_credentials":
        return refuse(400, "unsupported_grant_type", "only client_credentials")
    return out


class State:
    """Settings, mode, tokens, counters and logs, shared by all connection threads."""

    def __init__(self, settings):
        self.lock = threading.Lock()
        self.initial = dict(settings)
        self.serial = 0                 # the last token's; never reset
        self.rng = random.SystemRandom()
        self.reset()

    def reset(self):
        with self.lock:
            self.settings = dict(self.initial)
            self.mode, self.mode_left = None, None
            self.tokens = collections.OrderedDict()     # token -> (serial, issued, expires)
            self.revoked_through = 0
            self.counts = collections.Counter()
            self.client_auth = collections.Counter()
            self.api = collections.Counter()
            self.active = self.peak = 0
            self.token_log, self.api_log = [], []

    def snapshot(self):
        with self.lock:
            return {**{k: self.counts[k] for k in ("token_requests", "tokens_issued",
                                                   "token_refused", "token_faulted",
                                                   "token_aborted", "api_requests",
                                                   "connections")},
                    "client_auth": dict(self.client_auth), "api": dict(self.api),
                    "token_active": self.active, "token_peak": self.peak,
                    "mode": self.mode, "mode_left": self.mode_left,
                    "settings": dict(self.settings)}

    def bump(self, name):
        with self.lock:
            self.counts[name] += 1

    def current_settings(self):
        with self.lock:
            return dict(self.settings)

    def token_arrived(self, req, body, verdict):
        """Counts and logs a token request; returns (log entry, the mode that serves it)."""
        entry = {"t": time.monotonic(), "method": req.method, "path": req.path,
                 "headers": [[n, v] for n, v in req.headers], "body": body.decode("latin-1"),
                 "form": verdict["form"], "client_auth": verdict["client_auth"],
                 "client_id": verdict["client_id"], "status": None, "outcome": None,
                 "serial": None}
        with self.lock:
            self.counts["token_requests"] += 1
            self.client_auth[verdict["client_auth"]] += 1
            if len(self.token_log) < MAX_LOG:
                self.token_log.append(entry)
            mode = self.mode or {}
            if self.mode_left is not None:
                self.mode_left -= 1
                if self.mode_left == 0:
                    self.mode, self.mode_left = None, None
            if mode:
                self.counts["token_faulted"] += 1
            elif verdict["error"]:
                self.counts["token_refused"] += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            return entry, mode

    def token_done(self):
        with self.lock:
            self.active -= 1

    def issue(self, cfg):
        """A new token for settings cfg: (token, serial)."""
        with self.lock:
            while True:     # a repeat is as likely as guessing 7 characters or more
                token = "".join(self.rng.choices(B64TOKEN_CHARS, k=cfg["token_length"] - 1)) + "="
                if token not in self.tokens:
                    break
            self.serial += 1
            now = time.monotonic()
            self.tokens[token] = (self.serial, now, now + lifetime(cfg["expires_in"]))
            if len(self.tokens) > MAX_TOKENS:
                self.tokens.popitem(last=False)
            self.counts["tokens_issued"] += 1
            return token, self.serial

    def issued(self):
        """Every token remembered, with its serial, age, time left and revocation."""
        now = time.monotonic()
        with self.lock:
            return [{"serial": serial, "token": token, "age_ms": int((now - issued) * 1000),
                     "expires_in_ms": int((expires - now) * 1000),
                     "revoked": serial <= self.revoked_through}
                    for token, (serial, issued, expires) in self.tokens.items()]

    def api_arrived(self, req):
        """Judges, counts and logs an upstream request: (outcome, serial, age in ms)."""
        values = [v for n, v in req.headers if n.lower() == "authorization"]
        serial = age = None
        scheme, _, token = (values[-1] if values else "").partition(" ")
        token = token.lstrip(" ")
        now = time.monotonic()
        with self.lock:
            found = self.tokens.get(token)
            if len(values) > 1:
                outcome = "repeated"
            elif scheme.lower() != "bearer":
                outcome = "missing"
            elif not B64TOKEN.fullmatch(token):
                outcome = "malformed"
            elif found is None:
                outcome = "unknown"
            else:
                serial, age = found[0], int((now - found[1]) * 1000)
                outcome = ("revoked" if serial <= self.revoked_through else
                           "expired" if now >= found[2] else "ok")
            self.counts["api_requests"] += 1
            self.api[outcome] += 1
            if len(self.api_log) < MAX_LOG:
                self.api_log.append({
                    "t": now, "method": req.method, "path": req.path, "query": req.query,
                    "outcome": outcome, "serial": serial,
                    "headers": [[n, self._redacted(v) if n.lower() == "authorization" else v]
                                for n, v in req.headers]})
        return outcome, serial, age

    def _redacted(self, value):
        scheme, _, token = value.partition(" ")
        found = self.tokens.get(token.lstrip(" "))
        return f"{scheme} #{found[0]}" if found else value


class Handler(socketserver.BaseRequestHandler):
    """Serves one TCP connection: requests one after another while keep-alive holds."""

    def handle(self):
        sock, srv = self.request, self.server
        srv.state.bump("connections")
        with srv.open_lock:
            srv.open.add(sock)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(IDLE_TIMEOUT)
        conn = Connection(sock)
        self.head_only = False
        try:
            while not srv.stopping.is_set():
                req = conn.read_head()
                if req is None or not self.serve(conn, req):
                    break
        except BadRequest as e:
            self.send(400, [("Content-Type", "application/json")],
                      json.dumps({"error": "invalid_request",
                                  "error_description": str(e)}).encode(), False)
        except (ClientGone, EOFError, OSError):
            pass
        finally:
            with srv.open_lock:
                srv.open.discard(sock)

    def answer(self, status, headers, body, keep):
        """The bytes of an answer with a Content-Length (and no body to HEAD)."""
        head = [status_line(status)] + [f"{n}: {v}\r\n" for n, v in headers]
        head.append(f"Content-Length: {len(body)}\r\n")
        if not keep:
            head.append("Connection: close\r\n")
        return "".join(head).encode("latin-1") + b"\r\n" + (b"" if self.head_only else body)

    def send(self, status, headers, body, keep):
        self.request.sendall(self.answer(status, headers, body, keep))
        return keep

    def send_json(self, status, doc, keep, headers=()):
        return self.send(status, [("Content-Type", "application/json"), *headers],
                         json.dumps(doc).encode(), keep)

    def read_body(self, conn, req, cap):
        if "100-continue" in req.tokens("expect"):
            self.request.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        return b"".join(conn.body_pieces(req, cap))

    def serve(self, conn, req):
        """Answer one request; return True to keep the connection open."""
        keep = req.keep_alive()
        self.head_only = req.method == "HEAD"
        if self.server.verbose:
            print(f"tokenserver: {req.method} {req.target}", file=sys.stderr, flush=True)
        if req.path.startswith("/__"):
            return self.control(req, self.read_body(conn, req, MAX_CONTROL), keep)
        if req.path == TOKEN_PATH:
            body = self.read_body(conn, req, MAX_FORM)
            state = self.server.state
            cfg = state.current_settings()
            verdict = judge(req, body, cfg)
            entry, mode = state.token_arrived(req, body, verdict)
            try:
                return self.token(req, verdict, entry, cfg, mode, keep)
            except (ClientGone, OSError):
                state.bump("token_aborted")
                return False
            finally:
                state.token_done()
        self.read_body(conn, req, MAX_API_BODY)
        outcome, serial, age = self.server.state.api_arrived(req)
        if outcome == "ok":
            return self.send_json(200, {"serial": serial, "method": req.method, "path": req.path,
                                        "query": req.query, "token_age_ms": age}, keep)
        challenge = ('Bearer realm="tokenserver"' if outcome == "missing" else
                     f'Bearer error="invalid_token", error_description="token {outcome}"')
        doc = {"error": "invalid_token", "outcome": outcome, "serial": serial}
        return self.send_json(401, doc, keep, [("WWW-Authenticate", challenge)])

    # --- the token endpoint ------------------------------------------------

    def token(self, req, verdict, entry, cfg, mode, keep):
        if "delay_ms" in mode:
            self.pause(mode["delay_ms"] / 1000)
        sock = self.request
        if "close" in mode:
            entry["outcome"] = "close_" + mode["close"]
            if mode["close"] == "rst":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            return False
        if "oversized" in mode:
            entry["status"], entry["outcome"] = 200, "oversized"
            return self.oversized(mode["oversized"], keep)
        headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if "status" in mode:
            status, outcome = mode["status"], "status"
            if "error" in mode:
                ctype, body = "application/json", json.dumps(
                    {"error": mode["error"], "error_description": "set by /__mode"}).encode()
            else:
                ctype, body = "text/plain", f"status {status} set by /__mode\n".encode()
        elif "malformed" in mode:
            status, outcome = 200, "malformed_" + mode["malformed"]
            ctype, body = MALFORMED[mode["malformed"]]
        elif verdict["error"]:
            status, outcome, ctype = verdict["status"], verdict["error"], "application/json"
            body = json.dumps({"error": verdict["error"],
                               "error_description": verdict["description"]}).encode()
            if status == 401:
                headers.append(("WWW-Authenticate", 'Basic realm="tokenserver"'))
            elif status == 405:
                headers.append(("Allow", "POST"))
        else:
            token, entry["serial"] = self.server.state.issue(cfg)
            status, outcome, ctype = 200, "issued", "application/json"
            doc = {"access_token": token, "token_type": cfg["token_type"]}
            if cfg["expires_in"] is not None:
                doc["expires_in"] = cfg["expires_in"]
            if "scope" in verdict["form"]:
                doc["scope"] = verdict["form"]["scope"]
            body = json.dumps(doc).encode()
        entry["status"], entry["outcome"] = status, outcome
        headers.insert(0, ("Content-Type", ctype))
        if "trickle" not in mode:
            return self.send(status, headers, body, keep)
        data = self.answer(status, headers, body, keep)
        step = mode["trickle"].get("chunk", 1)
        interval = mode["trickle"].get("interval_ms", 100) / 1000
        deadline = time.monotonic() + MAX_TRICKLE_S
        for i in range(0, len(data), step):
            if i:
                self.pause(interval)
                if time.monotonic() > deadline:
                    return False
            send_watching(sock, data[i:i + step])
        return keep

    def oversized(self, spec, keep):
        """A token answer padded to spec["bytes"], written PIECE bytes at a time."""
        size, chunked = spec["bytes"], spec.get("chunked", False)
        start = json.dumps({**_GOOD, "padding": ""})[:-2].encode()
        end = b'"}'
        pad = size - len(start) - len(end)
        head = [status_line(200), "Content-Type: application/json\r\n",
                "Cache-Control: no-store\r\n",
                "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n",
                "" if keep else "Connection: close\r\n", "\r\n"]
        sock = self.request
        send_watching(sock, "".join(head).encode("latin-1"))
        filler = b"x" * PIECE
        pieces = (filler[:min(PIECE, pad - i)] for i in range(0, pad, PIECE))
        for piece in itertools.chain([start], pieces, [end]):
            if self.server.stopping.is_set():
                raise ClientGone
            send_watching(sock, b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            send_watching(sock, b"0\r\n\r\n")
        return keep

    def pause(self, seconds):
        """Wait `seconds`; ClientGone when the client leaves or the server stops."""
        deadline = time.monotonic() + seconds
        while True:
            if self.server.stopping.is_set():
                raise ClientGone
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wait_watching(self.request, min(left, STEP))

    # --- control endpoints -------------------------------------------------

    def control(self, req, body, keep):
        state = self.server.state
        if req.path == "/__stats" and req.method == "GET":
            return self.send_json(200, state.snapshot(), keep)
        if req.path == "/__log" and req.method == "GET":
            with state.lock:
                # Copies: a token request still being answered adds to its entry.
                doc = {"token_requests": [dict(e) for e in state.token_log],
                       "api_requests": list(state.api_log)}
            return self.send_json(200, doc, keep)
        if req.path == "/__tokens" and req.method == "GET":
            return self.send_json(200, {"tokens": state.issued()}, keep)
        if req.method != "POST" or req.path not in ("/__mode", "/__config", "/__revoke",
                                                    "/__reset"):
            return self.send_json(404, {"error": f"no control endpoint {req.method} {req.path}"},
                                  keep)
        try:
            doc = json.loads(body or b"null")
            if req.path == "/__mode" and doc:
                check_mode(doc)
            elif req.path == "/__config":
                check_settings(doc)
        except ValueError as e:      # json.JSONDecodeError is a ValueError
            return self.send_json(400, {"error": str(e)}, keep)
        if req.path == "/__reset":
            state.reset()
            return self.send_json(200, {"ok": True}, keep)
        with state.lock:
            if req.path == "/__mode":
                state.mode = doc or None
                state.mode_left = doc.get("times") if doc else None
            elif req.path == "/__config":
                state.settings.update(doc)
            else:
                state.revoked_through = state.serial
            out = {"ok": True, "mode": state.mode, "settings": dict(state.settings),
                   "revoked_through": state.revoked_through}
        return self.send_json(200, out, keep)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class TokenServer:
    """The token server, bound at construction; start() serves from a background thread.
    settings: any of DEFAULTS' keys."""

    def __init__(self, host="127.0.0.1", port=0, verbose=False, **settings):
        address = ipaddress.ip_address(host)
        if address.version != 4 or not address.is_loopback:
            raise ValueError("the token server binds only to an IPv4 loopback address")
        self.server = _Server((host, port), Handler)
        self.server.state = State({**DEFAULTS, **check_settings(settings)})
        self.server.verbose = verbose
        self.server.stopping = threading.Event()
        self.server.open, self.server.open_lock = set(), threading.Lock()
        self.host, self.port = host, self.server.server_address[1]
        self.thread = None

    @property
    def state(self):
        return self.server.state

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": STEP}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Stops accepting, ends every answer being made and closes every connection."""
        self.server.stopping.set()
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(5)
            self.thread = None
        with self.server.open_lock:
            for sock in self.server.open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def expires_in_arg(text):
    """--expires-in: "null" or "none" (left out), an integer, else a string."""
    if text.lower() in ("null", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def main(argv=None):
    ap = argparse.ArgumentParser(description="OAuth2 token endpoint and token-checking upstream.")
    ap.add_argument("--host", default="127.0.0.1", help="IPv4 loopback address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="port, 0 for any free one (default)")
    ap.add_argument("--client-id", default=DEFAULTS["client_id"])
    ap.add_argument("--client-secret", default=DEFAULTS["client_secret"])
    ap.add_argument("--client-auth", choices=CLIENT_AUTHS, default=DEFAULTS["client_auth"])
    ap.add_argument("--expires-in", type=expires_in_arg, default=DEFAULTS["expires_in"],
                    help='an integer, "none" (left out), or anything else: a string ("3600" in '
                         'quotes: the string 3600)')
    ap.add_argument("--token-type", default=DEFAULTS["token_type"])
    ap.add_argument("--token-length", type=int, default=DEFAULTS["token_length"])
    ap.add_argument("--verbose", action="store_true", help="log requests on stderr")
    args = ap.parse_args(argv)
    try:
        server = TokenServer(args.host, args.port, args.verbose, client_id=args.client_id,
                             client_secret=args.client_secret, client_auth=args.client_auth,
                             expires_in=args.expires_in, token_type=args.token_type,
                             token_length=args.token_length)
    except ValueError as e:
        ap.error(str(e))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    sys.stdout.write(f"{server.port}\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
