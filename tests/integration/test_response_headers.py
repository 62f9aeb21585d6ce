"""Headers braced adds to every answer: Brace-Attempts, Server-Timing, correlation id.

Covers successes and errors, and how a correlation id from the app is kept,
forwarded to the upstream, or replaced by a generated UUID.
"""

import unittest

from harness import UUID_RE, Braced, BracedTestCase

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


if __name__ == "__main__":
    unittest.main()
