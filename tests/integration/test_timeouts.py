"""Timeouts: connect, read (first byte and idle gap), attempt, total, write and pool.

Each test makes the upstream slower than one timeout and checks the error and
that braced answered well before the upstream (or the next larger timeout)
would have finished; no tight absolute thresholds.
"""

import time
import unittest

from harness import Background, Braced, BracedTestCase, fault, make_config, wait_until
from streaming import stream_get, stream_put

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

    def test_read_timeout_in_a_gap_inside_the_body_cuts_it(self):
        # The head was relayed at once (SPEC 3.1): a gap in the body longer
        # than the read timeout ends the stream short of its Content-Length.
        trickle = {"chunk": 10, "interval_ms": 3000, "total": 30}
        with self.braced({"read": "300ms", "total": "8s"}) as b:
            started = time.monotonic()
            r = stream_get(b.port, "/demo/gap", headers=fault(trickle=trickle), timeout=10)
            took = time.monotonic() - started
            self.assertTrue(wait_until(lambda: '"outcome":"reset_mid_body"' in b.log(), 5), b.log())
        self.assertEqual((r.status, r.content_length, r.nbytes), (200, 30, 10), r)
        self.assertFalse(r.complete, r)
        self.assertLess(took, 1.5)

    def test_read_timeout_before_the_head_is_504(self):
        with self.braced({"read": "300ms", "total": "8s"}) as b:
            resp = b.get("/demo/late", headers=fault(delay_ms=3000))
        self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 1.5)

    def test_steady_slow_body_is_not_a_read_timeout(self):
        trickle = {"chunk": 10, "interval_ms": 100, "total": 100}
        with self.braced({"read": "1s", "total": "8s"}) as b:
            resp = b.get("/demo/steady", headers=fault(trickle=trickle))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"x" * 100)

    def test_attempt_timeout_bounds_the_time_to_the_head(self):
        # attempt caps an attempt up to the head it brings; a body that then
        # flows steadily is relayed whole (timeouts.stream bounds bodies).
        with self.braced({"attempt": "500ms", "read": "2s", "total": "8s"}) as b:
            late = b.get("/demo/late", headers=fault(delay_ms=2000))
            trickle = {"chunk": 10, "interval_ms": 100, "total": 150}       # about 1.5 s
            steady = b.get("/demo/long", headers=fault(trickle=trickle))
        self.assert_problem(late, 504, "upstream_timeout", profile="demo")
        self.assertLess(late.elapsed, 1.5)
        self.assertEqual((steady.status, steady.body), (200, b"x" * 150))

    def test_total_budget_is_504_and_says_so(self):
        with self.braced({"total": "500ms", "read": "5s"}) as b:
            resp = b.get("/demo/slow", headers=fault(delay_ms=4000))
        doc = self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertIn("budget", doc["detail"].lower())
        self.assertLess(resp.elapsed, 2.0)

    def test_write_timeout_is_504(self):
        # Held (within retry_buffer) and piped bodies alike: an upstream that
        # stops reading is a write timeout, answered long before the budget.
        timeouts = {"write": "300ms", "read": "5s", "total": "8s"}
        # Both larger than the socket buffers, so the upload must stall.
        with self.braced(timeouts, limits={"retry_buffer": "20MiB"}) as b:
            for size in (16 * MiB, 24 * MiB):
                with self.subTest(size=size):
                    started = time.monotonic()
                    r = stream_put(b.port, "/demo/upload", size, 1, False, method="POST",
                                   headers=fault(no_read_body=True, delay_ms=8000), timeout=30)
                    took = time.monotonic() - started
                    self.assertEqual((r.status, r.header("Brace-Error")), (504, "upstream_timeout"), r)
                    self.assertLess(took, 4.0, "answered by the 8 s budget, not the write timeout")

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
