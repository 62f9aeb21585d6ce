"""Timeouts: connect, read (first byte and idle gap), attempt, total, write and pool.

Each test makes the upstream slower than one timeout and checks the error and
that braced answered well before the upstream (or the next larger timeout)
would have finished; no tight absolute thresholds.
"""

import unittest

from harness import Background, Braced, BracedTestCase, fault, make_config, wait_until

MiB = 1024 * 1024


class TimeoutTest(BracedTestCase):

    def braced(self, timeouts, upstream=None, **top):
        defaults = {"timeouts": timeouts}
        defaults.update(top.pop("defaults", {}))
        if upstream is None:
            return Braced(self.config(defaults=defaults, **top))
        return Braced(make_config({"demo": {"upstream": upstream}}, defaults=defaults, **top))

    def test_connect_timeout_is_504(self):
        blackhole = f"http://127.0.0.1:{self.upstream.blackhole_port}/base"
        with self.braced({"connect": "300ms", "total": "8s"}, upstream=blackhole) as b:
            resp = b.get("/demo/x")
        self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 4.0, "answered by the 8 s budget, not the connect timeout")

    def test_read_timeout_waiting_for_the_answer_is_504(self):
        with self.braced({"read": "300ms", "total": "8s"}) as b:
            resp = b.get("/demo/slow", headers=fault(delay_ms=3000))
        self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 1.5)

    def test_read_timeout_after_an_upload_is_the_read_limit_not_the_write_limit(self):
        # The body is sent whole at once; from then on the read limit (300
        # ms) bounds the wait for the answer, not the longer write limit.
        with self.braced({"read": "300ms", "write": "6s", "total": "8s"}) as b:
            resp = b.request("POST", "/demo/slow", body=b"p" * 4096,
                             headers=fault(delay_ms=5000))
        self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 3.0, "waited for the 6 s write limit")

    def test_read_timeout_in_a_gap_inside_the_body_is_504(self):
        trickle = {"chunk": 10, "interval_ms": 3000, "total": 30}
        with self.braced({"read": "300ms", "total": "8s"}) as b:
            resp = b.get("/demo/gap", headers=fault(trickle=trickle))
        self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 1.5)

    def test_steady_slow_body_is_not_a_read_timeout(self):
        trickle = {"chunk": 10, "interval_ms": 100, "total": 100}
        with self.braced({"read": "1s", "total": "8s"}) as b:
            resp = b.get("/demo/steady", headers=fault(trickle=trickle))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"x" * 100)

    def test_attempt_timeout_cuts_a_steady_slow_body_with_504(self):
        trickle = {"chunk": 10, "interval_ms": 100, "total": 500}       # about 5 s
        with self.braced({"attempt": "500ms", "read": "2s", "total": "8s"}) as b:
            resp = b.get("/demo/long", headers=fault(trickle=trickle))
        self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 2.5)

    def test_total_budget_is_504_and_says_so(self):
        with self.braced({"total": "500ms", "read": "5s"}) as b:
            resp = b.get("/demo/slow", headers=fault(delay_ms=4000))
        doc = self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertIn("budget", doc["detail"].lower())
        self.assertLess(resp.elapsed, 2.0)

    def test_write_timeout_is_504(self):
        body = b"w" * (16 * MiB)
        timeouts = {"write": "300ms", "read": "5s", "total": "8s"}
        with self.braced(timeouts, limits={"max_request_body": "32MiB"}) as b:
            resp = b.request("POST", "/demo/upload", body=body, timeout=30,
                             headers=fault(no_read_body=True, delay_ms=8000))
        self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 4.0, "answered by the 8 s budget, not the write timeout")

    def test_no_free_pooled_connection_is_503(self):
        timeouts = {"pool": "200ms", "read": "5s", "total": "8s"}
        defaults = {"pool": {"max_connections": 1}}
        with self.braced(timeouts, defaults=defaults) as b:
            first = Background(b.get, "/demo/slow", fault(delay_ms=2000))
            arrived = wait_until(lambda: self.upstream.stats()["requests"] >= 1, timeout=3)
            self.assertTrue(arrived, "the first request never reached the upstream")
            second = b.get("/demo/fast")
            first = first.result(timeout=10)
        self.assert_problem(second, 503, "overloaded")
        self.assertLess(second.elapsed, 1.0)
        self.assertEqual(first.status, 200, first)


if __name__ == "__main__":
    unittest.main()
