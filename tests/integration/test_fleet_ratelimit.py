"""A rate limit shared by a fleet (SPEC 4.12, rate_limit.share: fleet):
instances lease slots of one rate from a real redis-server ahead of need,
so together they send the configured rate, not N times it; with Redis
killed, each keeps the rate ÷ the instances it counted and no request
fails; a hostile Redis cannot make an instance send more than the
configured rate.

Every load loop is bounded in count and time. Rates are checked on the
upstream's arrival log over a window after a warm-up: the upper bounds are
what the feature promises; the lower bounds only say the rate was used."""

import collections
import threading
import time
import unittest

from harness import merge, wait_until, START_TIMEOUT
from test_fleet import FleetTestCase, HostileRedis, RedisProcess, metric

RATE = 10          # per second, shared
DURATION = 5.0     # seconds of load
WARMUP = 1.0       # seconds left out at the start


def shared_limit(queue="500ms", burst=1):
    return {"retry": {"attempts": 1}, "timeouts": {"total": "3s"},
            "rate_limit": {"rate": f"{RATE}/s", "burst": burst, "queue": queue, "share": "fleet"}}


class FleetRateTest(FleetTestCase):

    def load(self, instances, seconds, threads_each=2, max_each=2000):
        """Closed-loop load on every instance; returns [(instance, status)]."""
        results, lock = [], threading.Lock()

        def run(i, b):
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end and n < max_each:
                r = b.get(f"/demo/load/{i}/{n}", timeout=10)
                with lock:
                    results.append((i, r.status))
                n += 1
                if r.status != 200:
                    time.sleep(0.01)

        threads = [threading.Thread(target=run, args=(i, b))
                   for i, b in enumerate(instances, 1) for _ in range(threads_each)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 30)
        return results

    def arrivals(self, start, end, instance=None):
        return [r for r in self.upstream.received()
                if start <= r["t"] < end
                and (instance is None or self.instance_of(r) == instance)]

    def test_two_instances_sharing_ten_per_second_send_about_ten_per_second(self):
        self.redis = RedisProcess().start()
        b1, b2 = self.start_fleet(self.redis.sock, n=2, defaults=shared_limit())
        started = time.monotonic()
        results = self.load([b1, b2], DURATION)
        window = DURATION - WARMUP
        sent = self.arrivals(started + WARMUP, started + DURATION)
        # Unshared, two instances would send 2 × 10/s.
        # About the rate: slices follow demands one sync interval late.
        self.assertLessEqual(len(sent), RATE * window * 1.15 + 2, f"{len(sent)} in {window} s")
        self.assertGreaterEqual(len(sent), RATE * window * 0.6, f"{len(sent)} in {window} s")
        self.assertEqual({s for _, s in results} - {200, 429}, set(), results[:20])
        for i in (1, 2):   # both instances got slots
            self.assertGreater(len(self.arrivals(started + WARMUP, started + DURATION, i)), 0)
        limits = [l for l in metric_status(b1)["rate_limits"] if l["fleet"]]
        self.assertEqual(limits[0]["fleet"]["instances"], 2, limits)

    def test_redis_killed_mid_run_fails_nothing_and_each_keeps_its_share(self):
        self.redis = RedisProcess().start()
        b1, b2 = self.start_fleet(self.redis.sock, n=2, defaults=shared_limit(queue="2s"))
        # Both instances counted before Redis goes.
        for b in (b1, b2):
            b.get("/demo/warm")
        self.assertTrue(wait_until(lambda: all(
            any(l["fleet"] and l["fleet"]["instances"] == 2 for l in metric_status(b)["rate_limits"])
            for b in (b1, b2)), 5), metric_status(b1))
        killed = []

        def kill_later():
            time.sleep(1.0)
            killed.append(time.monotonic())
            self.redis.kill()

        killer = threading.Thread(target=kill_later)
        killer.start()
        started = time.monotonic()
        results = self.load([b1, b2], DURATION, threads_each=1)
        killer.join(10)
        self.assertEqual({s for _, s in results}, {200},
                         f"a request failed while Redis went away: {collections.Counter(results)}")
        for b in (b1, b2):
            self.assertEqual(metric(b, "braced_fleet_up"), 0)
        after = killed[0] + 0.5
        window = started + DURATION - after
        for i in (1, 2):
            mine = self.arrivals(after, started + DURATION, i)
            # rate ÷ 2 instances each, and its burst.
            self.assertLessEqual(len(mine), RATE / 2 * window + 2, f"instance {i}: {len(mine)}")
            self.assertGreater(len(mine), 0)

    def test_a_hostile_redis_cannot_grant_more_than_the_configured_rate(self):
        def grant(args):
            if args[0].upper() != b"EVAL":
                return b"$-1\r\n"
            now_us = int(time.time() * 1e6)
            # A million slots from now, a fleet of 0 instances.
            return b"*4\r\n:1000000\r\n:%d\r\n:0\r\n:%d\r\n" % (now_us, now_us)

        self.redis = HostileRedis(reply=grant)
        (b1,) = self.start_fleet(self.redis.sock, n=1, defaults=shared_limit(queue="0", burst=1))
        started = time.monotonic()
        self.load([b1], DURATION, threads_each=3)
        window = DURATION - WARMUP
        sent = self.arrivals(started + WARMUP, started + DURATION)
        self.assertLessEqual(len(sent), RATE * window + 2, f"{len(sent)} in {window} s")

    def test_a_learned_quota_is_split_among_the_instances(self):
        # The upstream announces 1 left for the next minute. Shared by two
        # instances, each may spend half of it: none; alone, one more.
        self.upstream.set_default({"headers": {"X-RateLimit-Limit": "10",
                                               "X-RateLimit-Remaining": "1",
                                               "X-RateLimit-Reset": "60"}})
        self.redis = RedisProcess().start()
        learned = {"retry": {"attempts": 1},
                   "rate_limit": {"queue": "0", "share": "fleet"}}
        b1, b2 = self.start_fleet(self.redis.sock, n=2, defaults=learned)
        for b in (b1, b2):   # both limiters exist and are counted
            b.get("/demo/warm")
        self.assertTrue(wait_until(lambda: all(
            l["fleet"] and l["fleet"]["instances"] == 2
            for b in (b1, b2) for l in metric_status(b)["rate_limits"]), 5), metric_status(b1))
        self.upstream.reset()
        self.upstream.set_default({"headers": {"X-RateLimit-Limit": "10",
                                               "X-RateLimit-Remaining": "1",
                                               "X-RateLimit-Reset": "60"}})
        self.assertEqual(b1.get("/demo/one").status, 200)
        self.assertEqual(b1.get("/demo/two").status, 429)
        self.assertEqual(len(self.upstream.received()), 1)
        learned_now = [l for l in metric_status(b1)["rate_limits"]][0]["learned"]
        self.assertEqual(learned_now["remaining"], 0, learned_now)

    def test_malformed_slice_replies_are_counted_and_ignored(self):
        rows = [b"$3\r\nabc\r\n", b"*3\r\n:-5\r\n:1\r\n:1\r\n", b"*2\r\n:5\r\n:1\r\n",
                b"*3\r\n$1\r\n5\r\n:1\r\n:1\r\n", b"-ERR no\r\n"]
        for reply in rows:
            with self.subTest(reply=reply):
                self.tearDown()
                self.setUp()
                self.redis = HostileRedis(reply=lambda args, r=reply: r if args[0].upper() == b"EVAL"
                                          else b"$-1\r\n")
                (b1,) = self.start_fleet(self.redis.sock, n=1, defaults=shared_limit(queue="2s"))
                codes = [b1.get(f"/demo/h/{i}").status for i in range(3)]
                self.assertEqual(codes, [200] * 3)
                self.assertTrue(wait_until(
                    lambda: (metric(b1, 'braced_fleet_errors_total{op="rate_limit"}') or 0) > 0, 5))
                limit = metric_status(b1)["rate_limits"][0]
                self.assertEqual(limit["fleet"]["share_per_s"], 0, limit)

    def test_share_fleet_needs_fleet_redis(self):
        from harness import Braced, make_config
        cfg = make_config({"demo": {"upstream": self.upstream.url("/base")}},
                          defaults=shared_limit())
        code, out, err = Braced(cfg).check_config()
        self.assertNotEqual(code, 0)
        self.assertIn("rate_limit.share: fleet needs fleet.redis", out + err)


def metric_status(b):
    from harness import request
    return request(b.admin_port, "GET", "/status", timeout=5).json()["profiles"]["demo"]


if __name__ == "__main__":
    unittest.main()
