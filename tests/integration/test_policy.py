"""Policy: control headers, routes_only, profile and route overrides, max_inflight,
redirects and upstream keep-alive.

Each test makes one setting decide the outcome: the same slow upstream answer
is a 504 under the tighter policy and a 200 without it, and errors found in
the request itself must not reach the upstream at all.
"""

import unittest

from harness import Background, Braced, BracedTestCase, fault, make_config, wait_until

SLOW = fault(delay_ms=3000)


class ControlHeaderTest(BracedTestCase):

    def test_brace_timeout_ms_lowers_the_total_budget(self):
        config = self.config(defaults={"timeouts": {"total": "8s", "read": "5s"}})
        with Braced(config) as b:
            resp = b.get("/demo/slow", headers=dict(SLOW, **{"Brace-Timeout-Ms": "300"}))
        self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 2.0, "answered by the upstream delay, not the 300 ms budget")

    def test_brace_timeout_ms_cannot_raise_the_configured_total(self):
        config = self.config(defaults={"timeouts": {"total": "500ms", "read": "5s"}})
        with Braced(config) as b:
            resp = b.get("/demo/slow", headers=dict(SLOW, **{"Brace-Timeout-Ms": "60000"}))
        self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 2.0, "the header loosened the 500 ms budget")

    def test_malformed_brace_timeout_ms_is_400(self):
        with Braced(self.config()) as b:
            for value in ("abc", "0", "-5", "1.5", "", "12345678901"):
                with self.subTest(value=value):
                    resp = b.get("/demo/x", headers={"Brace-Timeout-Ms": value})
                    self.assert_problem(resp, 400, "bad_request")
        self.assert_upstream_untouched()

    def test_malformed_brace_max_attempts_is_400(self):
        with Braced(self.config()) as b:
            resp = b.get("/demo/x", headers={"Brace-Max-Attempts": "x"})
        self.assert_problem(resp, 400, "bad_request")
        self.assert_upstream_untouched()

    def test_valid_control_headers_are_not_forwarded(self):
        controls = {"Brace-Timeout-Ms": "5000", "Brace-Max-Attempts": "1"}
        with Braced(self.config()) as b:
            resp = b.get("/demo/x", headers=dict(controls, **{"X-Other": "kept"}))
        self.assertEqual(resp.status, 200, resp)
        echo = resp.json()
        for name in controls:
            self.assertEqual(self.seen_header(echo, name), [], name)
        self.assertEqual(self.seen_header(echo, "X-Other"), ["kept"])


class RouteTest(BracedTestCase):

    def test_routes_only_refuses_an_unmatched_request(self):
        profile = {"routes_only": True, "routes": [{"match": "GET /v1/weather"}]}
        with Braced(self.config(profile)) as b:
            for method, path in (("GET", "/demo/v1/other"), ("POST", "/demo/v1/weather")):
                with self.subTest(method=method, path=path):
                    resp = b.request(method, path)
                    self.assert_problem(resp, 404, "route_not_found", profile="demo")
            self.assert_upstream_untouched()
            resp = b.get("/demo/v1/weather?city=Oslo")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["path"], "/base/v1/weather")

    def test_error_on_a_matched_route_names_the_route(self):
        profile = {"routes_only": True, "routes": [{"match": "GET /v1/weather"}],
                   "upstream_errors": "envelope"}
        with Braced(self.config(profile)) as b:
            resp = b.get("/demo/v1/weather", headers=fault(status=500, body="boom"))
        doc = self.assert_problem(resp, 500, "upstream_status", profile="demo")
        self.assertEqual(doc.get("route"), "GET /v1/weather", doc)

    def test_profile_timeouts_override_the_defaults(self):
        up = self.upstream.url("/base")
        profiles = {"tight": {"upstream": up, "timeouts": {"read": "300ms"}},
                    "plain": {"upstream": up}}
        config = make_config(profiles, defaults={"timeouts": {"read": "5s", "total": "8s"}})
        slow = fault(delay_ms=2000)
        with Braced(config) as b:
            tight = b.get("/tight/x", headers=slow)
            plain = b.get("/plain/x", headers=slow)
        self.assert_problem(tight, 504, "upstream_timeout", profile="tight")
        self.assertLess(tight.elapsed, 1.5, "the profile's 300 ms read timeout was not used")
        self.assertEqual(plain.status, 200, plain)

    def test_route_timeouts_override_the_profile(self):
        profile = {"timeouts": {"read": "5s"},
                   "routes": [{"match": "GET /slow", "timeouts": {"read": "300ms"}}]}
        slow = fault(delay_ms=2000)
        with Braced(self.config(profile, defaults={"timeouts": {"total": "8s"}})) as b:
            on_route = b.get("/demo/slow", headers=slow)
            elsewhere = b.get("/demo/other", headers=slow)
        doc = self.assert_problem(on_route, 504, "upstream_timeout", profile="demo")
        self.assertEqual(doc.get("route"), "GET /slow", doc)
        self.assertLess(on_route.elapsed, 1.5, "the route's 300 ms read timeout was not used")
        self.assertEqual(elsewhere.status, 200, elsewhere)


class OverloadTest(BracedTestCase):

    def test_max_inflight_answers_503_beyond_the_limit(self):
        config = self.config(limits={"max_inflight": 2},
                             defaults={"timeouts": {"read": "5s", "total": "8s"}})
        slow = fault(delay_ms=1500)
        with Braced(config) as b:
            first = Background(b.get, "/demo/one", slow)
            second = Background(b.get, "/demo/two", slow)
            both = wait_until(lambda: self.upstream.stats()["requests"] >= 2, timeout=3)
            self.assertTrue(both, "the first two requests never reached the upstream")
            third = b.get("/demo/three")
            first, second = first.result(timeout=10), second.result(timeout=10)
            after = b.get("/demo/after")
        self.assert_problem(third, 503, "overloaded", profile="demo")
        self.assertEqual(first.status, 200, first)
        self.assertEqual(second.status, 200, second)
        self.assertEqual(after.status, 200, f"finished requests still count as in flight: {after}")
        self.assertNotIn("/base/three", self.upstream.stats()["by_path"])


class UpstreamConnectionTest(BracedTestCase):

    def test_redirect_is_returned_not_followed(self):
        action = {"status": 302, "headers": {"Location": "/elsewhere"}}
        with Braced(self.config()) as b:
            resp = b.get("/demo/moved", headers=fault(**action))
        self.assertEqual(resp.status, 302, resp)
        self.assertEqual(resp.headers.get("Location"), "/elsewhere")
        self.assertIsNone(resp.headers.get("Brace-Error"), resp)
        self.assertEqual(self.upstream.stats()["by_path"], {"/base/moved": 1})

    def test_sequential_requests_reuse_one_upstream_connection(self):
        with Braced(self.config()) as b:
            self.upstream.reset()           # counts from here; its own connection is not counted
            for i in range(20):
                resp = b.get(f"/demo/k/{i}")
                self.assertEqual(resp.status, 200, resp)
            stats = self.upstream.stats()   # this control connection is counted
        self.assertEqual(stats["requests"], 20)
        self.assertEqual(stats["connections"] - 1, 1, "braced did not keep its upstream connection")


if __name__ == "__main__":
    unittest.main()
