"""Outbound rate limits (SPEC 4.12): a configured rate spaces the attempts
that leave braced, an attempt whose slot is later waits for it within
rate_limit.queue and the budget, else the request is answered 429
rate_limited with Retry-After and nothing is sent; and a quota the upstream
announces in its answers (RateLimit, RateLimit-*, X-RateLimit-*) is followed:
nothing is sent inside an announced zero window.

The test upstream's "quota" action enforces a quota the way a third-party API
does (429 beyond it) and announces it in one header family; its log gives
the arrival time of every request (time.monotonic(), the tests' clock).

The spacing checks are lower bounds only (braced never sends early): a slow
machine can only spread the arrivals further.
"""

import socket
import time
import unittest

from endpoints import access_lines, metric, status
from harness import BracedTestCase, Braced, in_threads, merge, request, wait_until

NO_RETRY = {"attempts": 1}


def arrivals(upstream):
    """Arrival times of the requests the upstream received, sorted."""
    return sorted(r["t"] for r in upstream.received())


def most_in_window(times, width):
    """The most arrivals within any `width` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


class ConfiguredRateTest(BracedTestCase):

    def rl_config(self, rate_limit, **extra):
        defaults = merge({"retry": NO_RETRY, "rate_limit": rate_limit}, extra)
        return self.config(admin="127.0.0.1:0", defaults=defaults)

    def test_thirty_at_once_against_twenty_per_second_are_all_served_spaced(self):
        # Fails if any request is refused or fails, or if more than the rate
        # (plus its burst of 1) reaches the upstream within any half second.
        with Braced(self.rl_config({"rate": "20/s", "burst": 1, "queue": "3s"})) as b:
            results = in_threads(lambda i: b.get(f"/demo/burst/{i}"), [(i,) for i in range(30)],
                                 timeout=20)
            statuses = [r.status if not isinstance(r, Exception) else repr(r) for r in results]
            self.assertEqual(statuses, [200] * 30, statuses)
            times = arrivals(self.upstream)
            self.assertEqual(len(times), 30)
            # 20/s: at most 10 + the burst within any 0.5 s (1 ms of slack
            # for timer rounding at the window's edges, and one more for an
            # arrival the machine delayed into the next window).
            self.assertLessEqual(most_in_window(times, 0.499), 12, times)
            self.assertGreaterEqual(times[-1] - times[0], 29 * 0.05 - 0.06, times)
            waited = [l for l in access_lines(b) if l.get("rate_limit_wait_ms", 0) > 0]
            self.assertGreaterEqual(len(waited), 25, "the access log does not record the waits")
            self.assertTrue(all(l["rate_limit_wait_ms"] <= 1500 + 60 for l in waited), waited)
            # Every attempt's wait is in the histogram (0 for those that went at once).
            self.assertEqual(
                metric(b, 'braced_rate_limit_wait_seconds_count{profile="demo"}'), 30)
            self.assertEqual(metric(b, 'braced_rate_limited_total{profile="demo",reason="configured"}'), 0)

    def test_over_the_queue_is_refused_at_once_with_retry_after_and_nothing_sent(self):
        # 2/s, no queue: the first goes, the next ones within the same
        # half second have no slot now and are refused without being sent.
        with Braced(self.rl_config({"rate": "2/s", "burst": 1, "queue": "0"})) as b:
            first = b.get("/demo/one")
            self.assertEqual(first.status, 200, first)
            started = time.monotonic()
            refused = b.get("/demo/two")
            took = time.monotonic() - started
            doc = self.assert_problem(refused, 429, "rate_limited", profile="demo")
            self.assertEqual(refused.headers.get("Retry-After"), "1", refused)
            self.assertEqual(refused.headers.get("Brace-Attempts"), "0", refused)
            self.assertIn("rate limit", doc["detail"])
            self.assertLess(took, 0.4, "a refused request waited")
            self.assertEqual(self.upstream.stats()["requests"], 1, "a refused request was sent")
            self.assertEqual(
                metric(b, 'braced_rate_limited_total{profile="demo",reason="configured"}'), 1)
            self.assertEqual(metric(b, 'braced_requests_total{profile="demo",code="rate_limited"}'), 1)

    def test_a_wait_longer_than_the_budget_is_refused(self):
        # queue allows 5 s, the budget 300 ms: the slot 1 s away fits only the queue.
        cfg = self.rl_config({"rate": "1/s", "queue": "5s"}, timeouts={"total": "300ms"})
        with Braced(cfg) as b:
            self.assertEqual(b.get("/demo/one").status, 200)
            self.assert_problem(b.get("/demo/two"), 429, "rate_limited", profile="demo")
            self.assertEqual(self.upstream.stats()["requests"], 1)

    def test_retries_take_slots(self):
        # Each retry of a 503 waits for its slot: 5/s spaces them 200 ms apart
        # although the backoff is 1 ms.
        retry = {"attempts": 3, "backoff": {"base": "1ms", "max": "1ms"}}
        cfg = self.rl_config({"rate": "5/s", "queue": "2s"}, retry=retry)
        self.upstream.set_default({"status": 503})
        with Braced(cfg) as b:
            resp = b.get("/demo/retried")
            self.assertEqual(resp.status, 503, resp)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "3", resp)
            times = arrivals(self.upstream)
            self.assertEqual(len(times), 3)
            for a, c in zip(times, times[1:]):
                self.assertGreaterEqual(c - a, 0.2 - 0.01, times)

    def test_a_retry_without_a_slot_is_not_made_and_the_answer_stands(self):
        retry = {"attempts": 3, "backoff": {"base": "1ms", "max": "1ms"}}
        cfg = self.rl_config({"rate": "1/m", "queue": "100ms"}, retry=retry)
        self.upstream.set_default({"status": 503})
        with Braced(cfg) as b:
            resp = b.get("/demo/once")
            self.assert_upstream_error(resp, 503)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
            self.assertEqual(self.upstream.stats()["requests"], 1)
            self.assertEqual(
                metric(b, 'braced_retries_suppressed_total{profile="demo",reason="rate_limit"}'), 1)

    def test_waiting_requests_keep_their_order(self):
        with Braced(self.rl_config({"rate": "10/s", "queue": "3s"})) as b:
            def one(i):
                time.sleep(i * 0.01)   # sent in order, 10 ms apart
                return b.get(f"/demo/order/{i:02d}")

            results = in_threads(one, [(i,) for i in range(12)], timeout=20)
            self.assertTrue(all(getattr(r, "status", None) == 200 for r in results), results)
            paths = [r["path"] for r in sorted(self.upstream.received(), key=lambda r: r["t"])]
            self.assertEqual(paths, [f"/base/order/{i:02d}" for i in range(12)])

    def test_a_waiting_request_whose_app_leaves_gives_its_slot_back(self):
        # 1/s: A goes at once; B is granted the slot 1 s later and leaves;
        # C asks next and gets B's slot, not the one after it (2 s later).
        with Braced(self.rl_config({"rate": "1/s", "queue": "5s"})) as b:
            self.assertEqual(b.get("/demo/a").status, 200)
            s = socket.create_connection(("127.0.0.1", b.port))
            s.sendall(b"GET /demo/b HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until(lambda: status(b)["profiles"]["demo"]["rate_limits"][0]["queue"] == 1, 3)
            s.close()
            wait_until(lambda: status(b)["profiles"]["demo"]["rate_limits"][0]["queue"] == 0, 3)
            resp = b.get("/demo/c")
            self.assertEqual(resp.status, 200, resp)
            received = sorted(self.upstream.received(), key=lambda r: r["t"])
            self.assertEqual([r["path"] for r in received], ["/base/a", "/base/c"])
            self.assertLess(received[1]["t"] - received[0]["t"], 1.8,
                            "the slot of the request that left was not given back")

    def test_a_route_with_its_own_rate_has_its_own_limiter(self):
        routes = [{"match": "GET /slow/**", "rate_limit": {"rate": "1/m", "queue": "0"}}]
        cfg = self.config({"routes": routes}, admin="127.0.0.1:0",
                          defaults={"retry": NO_RETRY, "rate_limit": {"rate": "100/s"}})
        with Braced(cfg) as b:
            self.assertEqual(b.get("/demo/slow/1").status, 200)
            self.assert_problem(b.get("/demo/slow/2"), 429, "rate_limited", profile="demo")
            for i in range(3):    # the profile's own limiter is not spent by the route's
                self.assertEqual(b.get(f"/demo/other/{i}").status, 200)
            limits = {l["route"]: l for l in status(b)["profiles"]["demo"]["rate_limits"]}
            self.assertEqual(set(limits), {None, "GET /slow/**"}, limits)
            self.assertEqual((limits[None]["count"], limits[None]["per_ms"]), (100, 1000))
            self.assertEqual((limits["GET /slow/**"]["count"], limits["GET /slow/**"]["per_ms"]),
                             (1, 60000))
            self.assertEqual(limits["GET /slow/**"]["limited_by"], "configured")
            self.assertGreater(limits["GET /slow/**"]["next_slot_ms"], 50000)


ZERO_LEFT = {   # each family announcing: nothing left, reset in 2 s
    "ietf": {"RateLimit-Policy": '"q";q=10;w=60', "RateLimit": '"q";r=0;t=2'},
    "draft": {"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "2"},
    "x": {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2"},
}


class LearnedQuotaTest(BracedTestCase):
    """Quotas the upstream announces (ratelimit_headers: pace, the default)."""

    def learned_config(self, queue, **extra):
        defaults = merge({"retry": NO_RETRY, "rate_limit": {"queue": queue}}, extra)
        return self.config(admin="127.0.0.1:0", defaults=defaults)

    def check_zero_window(self, headers):
        self.upstream.reset()
        self.upstream.set_default({"headers": headers})
        with Braced(self.learned_config("0")) as b:
            self.assertEqual(b.get("/demo/first").status, 200)
            refused = b.get("/demo/over")
            doc = self.assert_problem(refused, 429, "rate_limited", profile="demo")
            self.assertIn("announced", doc["detail"])
            # Reset in 2 s: Retry-After says 2 (1 when a second turned since).
            self.assertIn(refused.headers.get("Retry-After"), ("1", "2"), refused)
            self.assertEqual(self.upstream.stats()["requests"], 1, f"sent inside a zero window: {headers}")
            self.assertEqual(
                metric(b, 'braced_rate_limited_total{profile="demo",reason="learned"}'), 1)
            learned = status(b)["profiles"]["demo"]["rate_limits"][0]
            self.assertEqual(learned["learned"]["remaining"], 0, learned)
            self.assertEqual(learned["limited_by"], "learned", learned)
            self.assertTrue(0 < learned["learned"]["reset_ms"] <= 2000, learned)

    def test_each_header_family_is_followed(self):
        rows = dict(ZERO_LEFT)
        # X-RateLimit-Reset above 10^9 is an epoch time.
        rows["x-epoch"] = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0",
                           "X-RateLimit-Reset": str(int(time.time()) + 2)}
        for family, headers in rows.items():
            with self.subTest(family=family):
                self.check_zero_window(headers)

    def test_a_request_that_may_wait_is_sent_after_the_reset(self):
        self.upstream.set_default({"headers": ZERO_LEFT["ietf"]})
        with Braced(self.learned_config("4s")) as b:
            self.assertEqual(b.get("/demo/w/0").status, 200)
            sent = time.monotonic()
            self.assertEqual(b.get("/demo/w/1").status, 200)
            times = arrivals(self.upstream)
            self.assertGreaterEqual(times[1] - times[0], 2 - 0.01, "sent before the announced reset")
            self.assertGreaterEqual(time.monotonic() - sent, 1.9)

    def test_requests_that_waited_for_the_reset_go_spaced(self):
        # 0 left for 1 s, of a quota of 10 per 2 s: the requests that waited
        # for the reset start 200 ms apart, not all at once at the reset.
        self.upstream.set_default({"headers": {"RateLimit-Policy": '"q";q=10;w=2',
                                               "RateLimit": '"q";r=0;t=1'}})
        with Braced(self.learned_config("5s")) as b:
            self.assertEqual(b.get("/demo/first").status, 200)
            results = in_threads(lambda i: b.get(f"/demo/after/{i}", timeout=15),
                                 [(i,) for i in range(4)], timeout=20)
            self.assertTrue(all(getattr(r, "status", None) == 200 for r in results), results)
            times = arrivals(self.upstream)[1:]
            self.assertEqual(len(times), 4)
            for a, c in zip(times, times[1:]):
                self.assertGreaterEqual(c - a, 0.2 - 0.01, times)

    def test_an_enforced_quota_is_spent_without_a_429(self):
        # 4 per second, enforced with 429 and announced in RateLimit: 12
        # requests in a row all succeed, none refused by the upstream, so
        # they take at least two more windows.
        self.upstream.set_default({"quota": {"limit": 4, "window_ms": 1000, "family": "ietf"}})
        with Braced(self.learned_config("3s")) as b:
            started = time.monotonic()
            codes = [b.get(f"/demo/q/{i}").status for i in range(12)]
            self.assertEqual(codes, [200] * 12)
            self.assertEqual(self.upstream.stats()["quota_refused"], 0)
            self.assertGreaterEqual(time.monotonic() - started, 1.9)

    def test_ignore_turns_the_learning_off(self):
        self.upstream.set_default({"quota": {"limit": 3, "window_ms": 5000, "family": "x"}})
        with Braced(self.learned_config("0", ratelimit_headers="ignore")) as b:
            codes = [b.get(f"/demo/i/{i}").status for i in range(4)]
            self.assertEqual(codes, [200, 200, 200, 429])
            self.assertEqual(self.upstream.stats()["quota_refused"], 1, "the 429 was the upstream's")

    def test_the_stricter_of_configured_and_learned_applies(self):
        # Announced: 100 left for 60 s (one per 0.6 s); configured: 1 per 5 s.
        # The configured one is stricter, and says so.
        headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "100",
                   "X-RateLimit-Reset": "60"}
        self.upstream.set_default({"headers": headers})
        cfg = self.config(admin="127.0.0.1:0",
                          defaults={"retry": NO_RETRY, "rate_limit": {"rate": "1/5s", "queue": "0"}})
        with Braced(cfg) as b:
            self.assertEqual(b.get("/demo/s/1").status, 200)
            doc = self.assert_problem(b.get("/demo/s/2"), 429, "rate_limited")
            self.assertIn("rate limit", doc["detail"])
            self.assertEqual(
                metric(b, 'braced_rate_limited_total{profile="demo",reason="configured"}'), 1)

    def test_retry_after_and_the_cool_down_come_first(self):
        # A 429 with Retry-After: 1 and a quota announcing plenty: the
        # cool-down holds the next request for a second all the same.
        headers = {"Retry-After": "1", "X-RateLimit-Remaining": "50", "X-RateLimit-Reset": "60"}
        self.upstream.script([{"status": 429, "headers": headers}])
        with Braced(self.learned_config("2s")) as b:
            self.assertEqual(b.get("/demo/c/1").status, 429)
            self.assertEqual(b.get("/demo/c/2").status, 200)
            times = arrivals(self.upstream)
            self.assertGreaterEqual(times[1] - times[0], 1 - 0.01, times)


if __name__ == "__main__":
    unittest.main()
