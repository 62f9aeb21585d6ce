"""Headers braced adds to every answer: Brace-Attempts, Server-Timing, correlation id.

Covers successes and errors, and how a correlation id from the app is kept,
forwarded to the upstream, or replaced by a generated UUID.
"""

import unittest

import re

from harness import UUID_RE, Braced, BracedTestCase, fault, make_config, wait_until

CORRELATION = "X-Correlation-ID"


class ResponseHeadersTest(BracedTestCase):

    def braced(self):
        return Braced(self.config(defaults={"correlation": {"header": CORRELATION}}))

    def assert_brace_headers(self, resp):
        self.assertRegex(resp.headers.get("Brace-Attempts", ""), r"^\d+$", resp)
        self.assertTrue(resp.headers.get(CORRELATION), resp)
        timing = resp.headers.get("Server-Timing", "")
        self.assertIn("upstream;dur=", timing, resp)
        self.assertIn("total;dur=", timing, resp)

    def test_success_carries_brace_headers(self):
        with self.braced() as b:
            resp = b.get("/demo/ok")
        self.assertEqual(resp.status, 200, resp)
        self.assert_brace_headers(resp)
        self.assertEqual(resp.headers.get("Brace-Attempts"), "1")

    def test_error_carries_brace_headers(self):
        with self.braced() as b:
            resp = b.get("/no-such-profile/x")
        self.assertEqual(resp.status, 404, resp)
        self.assert_brace_headers(resp)

    def test_valid_correlation_id_is_kept_forwarded_and_echoed(self):
        for cid in ("req-42:abc/DEF=+~!", "x" * 128, "7"):
            with self.subTest(length=len(cid)), self.braced() as b:
                resp = b.get("/demo/c", headers={CORRELATION: cid})
                self.assertEqual(resp.headers.get(CORRELATION), cid)
                self.assertEqual(self.seen_header(resp.json(), CORRELATION), [cid])

    def test_too_long_correlation_id_is_replaced_by_a_uuid(self):
        with self.braced() as b:
            resp = b.get("/demo/c", headers={CORRELATION: "y" * 129})
        cid = resp.headers.get(CORRELATION, "")
        self.assertRegex(cid, UUID_RE)
        self.assertEqual(self.seen_header(resp.json(), CORRELATION), [cid])

    def test_missing_correlation_id_is_generated(self):
        with self.braced() as b:
            resp = b.get("/demo/c")
        cid = resp.headers.get(CORRELATION, "")
        self.assertRegex(cid, UUID_RE)
        self.assertEqual(self.seen_header(resp.json(), CORRELATION), [cid])


    def test_server_timing_total_and_the_access_log_tell_the_same_time(self):
        # One reading of the clock per answer: the total in Server-Timing,
        # the access log's elapsed_ms and the problem's elapsed_ms tell the
        # same time (each at its own precision).
        profiles = {"demo": {"upstream": self.upstream.url("/base")},
                    "down": {"upstream": f"http://127.0.0.1:{self.upstream.blackhole_port}/"}}
        defaults = {"correlation": {"header": CORRELATION}, "timeouts": {"connect": "50ms"}}
        with Braced(make_config(profiles, defaults=defaults)) as b:
            ok = b.get("/demo/slow", headers=dict(fault(delay_ms=30), **{CORRELATION: "t-ok"}))
            bad = b.get("/down/x", headers={CORRELATION: "t-bad"})

            def logged_lines():
                found = [l for l in b.log_lines() if l.get("msg") == "request"
                         and l.get("correlation_id") in ("t-ok", "t-bad")]
                return found if len(found) == 2 else None
            lines = wait_until(logged_lines, timeout=5)
        self.assertTrue(lines, "no access log lines")
        logged = {l["correlation_id"]: l["elapsed_ms"] for l in lines}
        for resp, cid in ((ok, "t-ok"), (bad, "t-bad")):
            m = re.search(r"total;dur=([0-9.]+)", resp.headers.get("Server-Timing", ""))
            self.assertTrue(m, resp)
            # Server-Timing rounds to 0.1 ms, the log rounds down to 1 ms.
            total = float(m.group(1))
            self.assertTrue(logged[cid] - 0.05 <= total < logged[cid] + 1.05, (resp, logged))
        self.assertGreaterEqual(logged["t-ok"], 30)
        self.assertGreaterEqual(logged["t-bad"], 50)
        self.assertEqual(bad.json().get("elapsed_ms"), logged["t-bad"], bad)


if __name__ == "__main__":
    unittest.main()
