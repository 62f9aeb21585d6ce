"""Hostile peers, both directions: what an attacker's app-side request or an
upstream's malformed answer gets from braced. Each case asserts the status,
what the upstream received (nothing, for a refused request) and that braced
still serves an ordinary request afterwards."""

import base64
import socket
import time
import unittest

from harness import Braced, BracedTestCase, fault, raw_request

FOLD_FIRST = b"HTTP/1.1 200 OK\r\n X-Injected: yes\r\nContent-Length: 2\r\n\r\nok"

# (name, raw answer, a word the problem's detail must carry)
BAD_ANSWERS = [
    ("obs-fold as the first header line", FOLD_FIRST, "obs-fold"),
    ("obs-fold after a header",
     b"HTTP/1.1 200 OK\r\nX-A: 1\r\n X-Injected: yes\r\nContent-Length: 2\r\n\r\nok", "obs-fold"),
    ("space before the colon",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\nok", "token"),
    ("space inside a name", b"HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 2\r\n\r\nok", "token"),
    ("control byte in a name", b"HTTP/1.1 200 OK\r\nX\x01Y: 1\r\nContent-Length: 2\r\n\r\nok",
     "token"),
    ("control byte in a value", b"HTTP/1.1 200 OK\r\nX-Y: a\rb\r\nContent-Length: 2\r\n\r\nok",
     "control"),
    ("differing Content-Length values",
     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\nhelloworld", "differing"),
    ("a non-digit Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok", "number"),
    ("Content-Length with Transfer-Encoding",
     b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
     "Transfer-Encoding"),
    ("status 999", b"HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok", "100-599"),
    ("status 099", b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", "response code"),
    ("an unasked-for 101",
     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nRAWBYTES",
     "101"),
    ("a second status line among the headers",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nHTTP/1.1 200 a:b\r\nContent-Length: 5\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", "token"),
    ("a status line among the trailers",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Original: 1\r\n\r\n2\r\n{}\r\n0\r\n"
     b"HTTP/1.1 200 a:b\r\nX-From-Trailer: yes\r\n\r\n", "token"),
    ("a header line without a colon", b"HTTP/1.1 200 OK\r\nnocolon\r\nContent-Length: 2\r\n\r\nok",
     "colon"),
    ("a status line without a code", b"HTTP/1.1 OK\r\nContent-Length: 2\r\n\r\nok", None),
    # Already refused before: libcurl's own chunk parser.
    ("a bad chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
     None),
]


def b64(data):
    return base64.b64encode(data).decode()


class UpstreamAnswers(BracedTestCase):
    """A malformed answer is outcome reset: never relayed, the detail says why."""

    def assert_serves(self, b):
        ok = b.get("/demo/after")
        self.assertEqual(ok.status, 200, ok)
        self.assertEqual(ok.json()["path"], "/base/after")

    def test_each_malformed_answer_is_a_reset(self):
        with Braced(self.config()) as b:
            for name, raw, word in BAD_ANSWERS:
                with self.subTest(name):
                    self.upstream.reset()
                    # An ordinary transfer first, so the next one runs on a used handle.
                    self.assertEqual(b.get("/demo/first").status, 200)
                    resp = b.get("/demo/x", fault(raw_b64=b64(raw)))
                    doc = self.assert_problem(resp, 502, "upstream_unavailable", profile="demo")
                    self.assertEqual(doc["history"][0]["outcome"], "reset", doc)
                    if word:
                        self.assertIn("malformed answer", doc["detail"], doc)
                        self.assertIn(word, doc["detail"], doc)
                    self.assertNotIn(b"helloworld", resp.body)
                    self.assertNotIn(b"RAWBYTES", resp.body)
                    self.assertIsNone(resp.headers.get("X-Injected"))
                    self.assert_serves(b)

    def test_obs_fold_after_an_ordinary_answer_many_times(self):
        # libcurl 7.88 appended the fold to the previous transfer's freed
        # header on a reused easy handle: SIGSEGV, or use-after-free under ASan.
        cfg = self.config(defaults={"retry": {"attempts": 1},
                                    "circuit_breaker": {"enabled": False}})
        with Braced(cfg) as b:
            for _ in range(20):
                self.assertEqual(b.get("/demo/ok").status, 200)
                resp = b.get("/demo/x", fault(raw_b64=b64(FOLD_FIRST)))
                self.assertEqual(resp.status, 502, resp)
            self.assert_serves(b)

    def test_malformed_answer_is_retried_as_a_reset(self):
        # GET is retried after a reset; the retry's ordinary answer is relayed.
        self.upstream.script([{"raw_b64": b64(FOLD_FIRST)}])
        cfg = self.config(defaults={"retry": {"attempts": 2, "backoff": {"jitter": "none"}}})
        with Braced(cfg) as b:
            resp = b.get("/demo/x")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.headers.get("Brace-Attempts"), "2")
        self.assertIsNone(resp.headers.get("X-Injected"))

    def test_equal_content_length_values_are_accepted(self):
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
        with Braced(self.config()) as b:
            resp = b.get("/demo/x", fault(raw_b64=b64(raw)))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"ok")


class RetryAfterToTheApp(BracedTestCase):
    """The Retry-After braced tells the app is never beyond retry_after.max."""

    def check(self, value, passthrough):
        extra = {"defaults": {"retry": {"attempts": 1, "retry_after": {"max": "30s"}}}}
        extra["defaults"]["upstream_errors"] = "passthrough" if passthrough else "envelope"
        with Braced(self.config(**extra)) as b:
            resp = b.get("/demo/x", fault(status=429, headers={"Retry-After": value}))
            self.assertEqual(resp.status, 429, resp)
            self.assertEqual(resp.headers.get_all("Retry-After"), ["30"], resp)
            if not passthrough:
                self.assertEqual(resp.json()["retry_after_ms"], 30000, resp.json())
            # The profile itself cools down for the same 30 s: nothing is sent.
            self.upstream.reset()
            again = b.get("/demo/y")
            self.assertEqual(again.status, 429, again)
            self.assertLessEqual(int(again.headers.get("Retry-After")), 30, again)
        self.assertEqual(self.upstream.stats()["requests"], 0)

    def test_huge_delta(self):
        self.check("99999999999999999999", passthrough=False)

    def test_huge_delta_passthrough(self):
        self.check("99999999999999999999", passthrough=True)

    def test_far_date(self):
        self.check("Fri, 31 Dec 9999 23:59:59 GMT", passthrough=False)

    def test_far_date_passthrough(self):
        self.check("Fri, 31 Dec 9999 23:59:59 GMT", passthrough=True)

    def test_cool_down_from_a_longer_route_is_told_with_this_routes_max(self):
        # A route may honour a longer Retry-After; the profile then cools for
        # that long, but a request on another route is told its own max.
        extra = {"defaults": {"retry": {"attempts": 1, "retry_after": {"max": "30s"}}}}
        profile = {"routes": [{"match": "GET /long",
                               "retry": {"retry_after": {"max": "1h"}}}]}
        with Braced(self.config(profile, **extra)) as b:
            first = b.get("/demo/long", fault(status=429, headers={"Retry-After": "3000"}))
            self.assertEqual(first.headers.get("Retry-After"), "3000", first)
            other = b.get("/demo/other")
        doc = self.assert_problem(other, 429, "rate_limited", profile="demo")
        self.assertEqual(other.headers.get("Retry-After"), "30", other)
        self.assertEqual(doc["retry_after_ms"], 30000, doc)

    def test_short_value_passes_unchanged(self):
        extra = {"defaults": {"retry": {"attempts": 1}, "upstream_errors": "passthrough"}}
        with Braced(self.config(**extra)) as b:
            resp = b.get("/demo/x", fault(status=503, headers={"Retry-After": "7"}))
        self.assertEqual(resp.status, 503, resp)
        self.assertEqual(resp.headers.get_all("Retry-After"), ["7"], resp)


class ReadTimeoutCountsBytes(BracedTestCase):
    def test_header_dripped_a_few_bytes_at_a_time_is_not_a_timeout(self):
        # Each line takes longer than the read timeout to complete, but bytes
        # keep coming every 250 ms: the read timeout (1 s) never fires.
        raw = (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 40 + b"\r\nContent-Length: 2\r\n\r\nok")
        cfg = self.config(defaults={"retry": {"attempts": 1},
                                    "timeouts": {"read": "1s", "attempt": "30s", "total": "40s"}})
        with Braced(cfg) as b:
            resp = b.get("/demo/drip", fault(raw_b64=b64(raw),
                                             trickle={"chunk": 4, "interval_ms": 250}))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"ok")
        self.assertGreater(resp.elapsed, 3.0)

    def test_silence_is_still_a_read_timeout(self):
        raw = b"HTTP/1.1 200 OK\r\nX-Pad: abc\r\nContent-Length: 2\r\n\r\nok"
        cfg = self.config(defaults={"retry": {"attempts": 1},
                                    "timeouts": {"read": "500ms", "total": "10s"}})
        with Braced(cfg) as b:
            resp = b.get("/demo/drip", fault(raw_b64=b64(raw),
                                             trickle={"chunk": 20, "interval_ms": 1500}))
        doc = self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertIn("read timeout", doc["detail"], doc)


def raw_exchange(port, data, timeout=10):
    """Send data on a fresh connection; return (status, Brace-Error) of the first answer,
    or (None, None) when none came."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
    if not buf.startswith(b"HTTP/1."):
        return None, None
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    code = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "brace-error":
            code = value.strip()
    return int(head[0].split(" ", 2)[1]), code


# (name, raw request, expected status or statuses; None: refused without a
# reply or with a plain one). A 400 is braced's own bad_request problem.
BAD_REQUESTS = [
    ("Transfer-Encoding with a space before the colon",
     b"POST /demo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 24\r\nTransfer-Encoding : chunked\r\n\r\n"
     b"0\r\n\r\nGET /SMUGGLED HTTP/1.1\r\n\r\n", 400),
    ("Host with a space before the colon", b"GET /demo/x HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("Content-Length with a space before the colon",
     b"GET /demo/x HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n", 400),
    ("a name with a space", b"GET /demo/x HTTP/1.1\r\nHost: a\r\nX Bad: 1\r\n\r\n", 400),
    ("a name with a control byte", b"GET /demo/x HTTP/1.1\r\nHost: a\r\nX\x01Y: 1\r\n\r\n", 400),
    ("a name with a tab", b"GET /demo/x HTTP/1.1\r\nHost: a\r\nX\tY: 1\r\n\r\n", 400),
    ("a value with a control byte", b"GET /demo/x HTTP/1.1\r\nHost: a\r\nX-Y: a\x01b\r\n\r\n", 400),
    # Already refused before.
    ("a bad chunk size",
     b"POST /demo/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
     (400, 413)),
    ("an encoded slash", b"GET /demo/v1/weather%2f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("an encoded backslash", b"GET /demo/v1%5Cweather HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("a dot segment with a parameter", b"GET /demo/a/..;x/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("a dot segment", b"GET /demo/a/../b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("an encoded dot segment", b"GET /demo/a/%2e%2e/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("absolute-form", b"GET http://127.0.0.1/demo/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    # Not proxied: braced's bad_request problem (docs/configuration.md).
    ("CONNECT", b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n", 400),
    ("TRACE", b"TRACE /demo/x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("an oversize request line", b"GET /demo/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
     431),
    ("an oversize header line",
     b"GET /demo/x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 431),
]


class AppRequests(BracedTestCase):
    """Requests braced cannot read exactly are refused, and nothing is sent."""

    def test_each_bad_request_is_refused_and_nothing_sent(self):
        with Braced(self.config()) as b:
            for name, raw, status in BAD_REQUESTS:
                with self.subTest(name):
                    self.upstream.reset()
                    got, code = raw_exchange(b.port, raw)
                    if status == 400:
                        self.assertEqual(code, "bad_request", name)
                    if status == 431:
                        self.assertEqual(code, "headers_too_large", name)
                    if isinstance(status, tuple):
                        self.assertIn(got, status, name)
                    else:
                        self.assertEqual(got, status, name)
                    self.assert_upstream_untouched()
                    ok = b.get("/demo/after")
                    self.assertEqual(ok.status, 200, ok)

    def test_bad_name_is_a_problem(self):
        # The HTTP front refuses it while reading the head, before routing:
        # the problem names no profile.
        with Braced(self.config()) as b:
            resp = raw_request(b.port, b"GET /demo/x HTTP/1.1\r\nHost: a\r\n"
                                       b"Transfer-Encoding : chunked\r\n\r\n")
        self.assert_front_problem(resp, 400, "bad_request")
        self.assert_upstream_untouched()

    def test_hostile_trace_context_is_dropped_never_forwarded(self):
        # traceparent/tracestate are read by braced (tracing.traceparent:
        # propagate, the default): what it cannot read exactly goes nowhere.
        tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        cases = [
            ("upper-case hex", {"traceparent": tp.upper().replace("00-", "00-", 1)}),
            ("version ff", {"traceparent": "ff" + tp[2:]}),
            ("extra field on version 00", {"traceparent": tp + "-x"}),
            ("all-zero trace-id", {"traceparent": "00-" + "0" * 32 + tp[35:]}),
            ("oversize tracestate", {"traceparent": "garbage", "tracestate": "a=" + "b" * 600}),
        ]
        with Braced(self.config()) as b:
            for name, headers in cases:
                with self.subTest(name):
                    self.upstream.reset()
                    resp = b.get("/demo/x", headers)
                    self.assertEqual(resp.status, 200, resp)
                    sent = self.upstream.received()[0]["headers"]
                    names = [n.lower() for n, _ in sent]
                    self.assertNotIn("traceparent", names, sent)
                    self.assertNotIn("tracestate", names, sent)
            # Two traceparents are not one trace: both dropped.
            self.upstream.reset()
            raw = (b"GET /demo/two HTTP/1.1\r\nHost: a\r\ntraceparent: " + tp.encode() +
                   b"\r\ntraceparent: " + tp.encode() + b"\r\n\r\n")
            self.assertEqual(raw_request(b.port, raw).status, 200)
            sent = self.upstream.received()[0]["headers"]
            self.assertNotIn("traceparent", [n.lower() for n, _ in sent], sent)
            self.assertEqual(b.get("/demo/after").status, 200)

    def test_content_length_and_chunked_sends_one_consistent_request(self):
        # Already held: the chunked body wins, and braced frames the upstream
        # request itself (the app's Content-Length and Transfer-Encoding are
        # not forwarded), so nothing is left over to become a second request.
        raw = (b"POST /demo/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        with Braced(self.config()) as b:
            resp = raw_request(b.port, raw)
            got = self.upstream.received()
        self.assertIn(resp.status, (200, 400), resp)
        self.assertLessEqual(len(got), 1, got)
        for r in got:
            self.assertEqual(r["path"], "/base/x")


if __name__ == "__main__":
    unittest.main()
