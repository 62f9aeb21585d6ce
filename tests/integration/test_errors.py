"""Errors braced answers itself or makes from upstream failures.

Each is application/problem+json with a Brace-Error header; errors found in
the request itself must not reach the upstream at all.
"""

import json
import unittest

from harness import (Braced, BracedTestCase, closed_port, fault, make_config, raw_request, request,
                     wait_until)
from streaming import metric, stream_get


class RequestErrorTest(BracedTestCase):
    """Requests braced refuses before anything goes upstream."""

    def test_unknown_profile_is_404(self):
        with Braced(self.config()) as b:
            resp = b.get("/nope/x")
        self.assert_problem(resp, 404, "unknown_profile")
        self.assert_upstream_untouched()

    def test_dot_segments_are_400(self):
        with Braced(self.config()) as b:
            for path in ("/demo/a/../b", "/demo/./x", "/demo/%2e%2e/x", "/demo/%2E/x"):
                with self.subTest(path=path):
                    self.assert_problem(b.get(path), 400, "bad_request")
        self.assert_upstream_untouched()

    def test_header_value_with_nul_is_400(self):
        # braced's HTTP front reads the whole value: a NUL in it is refused
        # (SPEC 3), and nothing reaches the upstream.
        with Braced(self.config()) as b:
            resp = raw_request(b.port, b"GET /demo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                       b"X-Bad: a\x00X-Injected: 1\r\nConnection: close\r\n\r\n")
        self.assert_front_problem(resp, 400, "bad_request")
        self.assert_upstream_untouched()

    def test_obs_fold_from_the_app_is_400(self):
        with Braced(self.config()) as b:
            resp = raw_request(b.port, b"GET /demo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                       b"X-A: 1\r\n X-Injected: yes\r\nConnection: close\r\n\r\n")
        self.assert_front_problem(resp, 400, "bad_request")
        self.assert_upstream_untouched()

    def test_legal_chunk_extension_is_accepted(self):
        with Braced(self.config()) as b:
            resp = raw_request(b.port, b"POST /demo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                       b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                       b"3;name=value\r\nabc\r\n0\r\n\r\n")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(json.loads(resp.body)["path"], "/base/x")

    def test_header_value_with_bare_cr_is_400(self):
        with Braced(self.config()) as b:
            resp = raw_request(b.port, b"GET /demo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                       b"X-Bad: a\rb\r\nConnection: close\r\n\r\n")
        self.assertEqual(resp.status, 400, resp)
        self.assert_upstream_untouched()

    def test_body_over_the_limit_is_413(self):
        with Braced(self.config(limits={"max_request_body": "1KiB"})) as b:
            resp = b.request("POST", "/demo/upload", body=b"z" * 2000)
        # Refused by the HTTP front from the Content-Length, before routing.
        self.assert_front_problem(resp, 413, "payload_too_large")
        self.assert_upstream_untouched()

    def test_headers_over_the_limit_is_431(self):
        padding = {f"X-Pad-{i}": "p" * 480 for i in range(12)}      # about 6000 bytes
        with Braced(self.config(limits={"max_header_size": "4KiB"})) as b:
            resp = b.get("/demo/x", headers=padding)
        self.assert_front_problem(resp, 431, "headers_too_large")
        self.assert_upstream_untouched()


class UpstreamErrorTest(BracedTestCase):
    """Upstream answers and failures turned into errors."""

    def test_upstream_error_status_is_enveloped(self):
        with Braced(self.config({"upstream_errors": "envelope"})) as b:
            for status in (404, 500):
                with self.subTest(status=status):
                    resp = b.get("/demo/x", headers=fault(status=status, body="not here"))
                    doc = self.assert_problem(resp, status, "upstream_status", profile="demo")
                    self.assertEqual(doc.get("upstream_status"), status)
                    self.assertEqual(doc.get("upstream_body"), "not here")

    def test_passthrough_returns_the_upstream_error_as_sent(self):
        # passthrough is the default (SPEC 5): nothing configured.
        config = self.config()
        action = {"body": "raw upstream words", "headers": {"Content-Type": "text/x-upstream"}}
        with Braced(config) as b:
            for status in (404, 500):
                with self.subTest(status=status):
                    resp = b.get("/demo/x", headers=fault(status=status, **action))
                    self.assertEqual(resp.status, status, resp)
                    self.assertEqual(resp.body, b"raw upstream words")
                    self.assertEqual(resp.headers.get("Content-Type"), "text/x-upstream")
                    self.assertEqual(resp.headers.get("Brace-Error"), "upstream_status")
                    self.assertEqual(resp.headers.get("Brace-Attempts"), "1")

    def test_response_over_the_limit_is_502(self):
        # max_response_body bounds the answers braced holds whole: those a
        # schema checks. Any other answer is relayed as it comes (SPEC 3.1).
        held = {"routes": [{"match": "GET /checked", "response": {
            "mode": "enforce", "body": {"type": "string"}}}]}
        with Braced(self.config(held, limits={"max_response_body": "1KiB"})) as b:
            for chunked in (False, True):
                with self.subTest(chunked=chunked):
                    resp = b.get("/demo/checked", headers=fault(body="x" * 4000, chunked=chunked))
                    self.assert_problem(resp, 502, "response_too_large", profile="demo")
                    relayed = b.get("/demo/big", headers=fault(body="x" * 4000, chunked=chunked))
                    self.assertEqual((relayed.status, relayed.body), (200, b"x" * 4000))

    def test_connection_refused_is_502(self):
        config = make_config({"demo": {"upstream": f"http://127.0.0.1:{closed_port()}/base"}})
        with Braced(config) as b:
            resp = b.get("/demo/x")
        self.assert_problem(resp, 502, "upstream_unavailable", profile="demo")

    def assert_unavailable_after(self, action):
        with Braced(self.config()) as b:
            resp = b.get("/demo/x", headers=fault(**action))
        self.assert_problem(resp, 502, "upstream_unavailable", profile="demo")

    def test_upstream_reset_is_502(self):
        self.assert_unavailable_after({"reset": True})

    def test_upstream_close_without_answer_is_502(self):
        self.assert_unavailable_after({"close": True})

    def test_upstream_short_body_never_reaches_the_app_whole(self):
        """The upstream sends its head, half its Content-Length, then closes.
        Whether braced has already relayed the head depends on whether the
        close came in the same read as the data (SPEC 3.1: decided at the
        head, never after). Either way the app cannot take the answer for a
        whole one: a 502 upstream_unavailable before the head, else a 200
        cut short of its Content-Length with the access line saying
        reset_mid_body. Both count as upstream_unavailable."""
        with Braced(self.config(admin="127.0.0.1:0")) as b:
            for i in range(6):
                with self.subTest(round=i):
                    r = stream_get(b.port, f"/demo/short-{i}", headers=fault(partial=True),
                                   keep_body=4096, timeout=10)
                    self.assertFalse(r.timed_out, r)
                    if r.status == 502:
                        self.assertTrue(r.complete, r)
                        self.assertEqual(r.header("Brace-Error"), "upstream_unavailable", r)
                        self.assertEqual(json.loads(r.body).get("type"),
                                         "urn:braced:problem:upstream_unavailable", r)
                        continue
                    self.assertEqual((r.status, r.framing), (200, "length"), r)
                    self.assertFalse(r.complete, r)
                    self.assertLess(r.nbytes, r.content_length, r)
                    self.assertTrue(wait_until(lambda: any(
                        l.get("path", "").endswith(f"/short-{i}") and
                        l.get("outcome") == "reset_mid_body" for l in b.log_lines()), 5), b.log())
            text = request(b.admin_port, "GET", "/metrics", timeout=5).body.decode()
            self.assertEqual(metric(text, "braced_requests_total", profile="demo",
                                    code="upstream_unavailable"), 6, text)


if __name__ == "__main__":
    unittest.main()
