"""The adaptive concurrency limit (SPEC 4.10) against the fault-injecting
upstream in its queueing mode (capacity 8, 20 ms per request, the rest wait
their turn): a burst of clients never puts more attempts in flight upstream
than concurrency.max, everything is answered, and /status and /metrics show
the limit. Beyond the limit, requests wait up to timeouts.pool and then get
503 overloaded with Retry-After, and nothing is sent upstream for them.
"""

import json
import unittest

from harness import Braced, BracedTestCase, in_threads, request

CAPACITY = 8
SERVICE_MS = 20
CLIENTS = 200
PER_CLIENT = 2


class ConcurrencyTest(BracedTestCase):

    def limit_config(self, concurrency, **extra):
        defaults = {"concurrency": concurrency, "pool": {"max_connections": 512, "max_idle": 64},
                    "timeouts": {"pool": "20s", "total": "30s"}}
        defaults.update(extra)
        return self.config(defaults=defaults, admin="127.0.0.1:0",
                           limits={"max_connections": 1024, "max_inflight": 4096})

    def burst(self, b, clients, per_client):
        def client(i):
            statuses = []
            for j in range(per_client):
                statuses.append(request(b.port, "GET", f"/demo/q/{i}/{j}", timeout=60).status)
            return statuses
        return in_threads(client, [(i,) for i in range(clients)], timeout=120)

    def test_burst_is_capped(self):
        # Fails if braced lets the 200 clients' burst through to the upstream
        # (peak concurrency above concurrency.max), or drops requests.
        self.upstream.set_default({"capacity": CAPACITY, "delay_ms": SERVICE_MS})
        cfg = self.limit_config({"adaptive": True, "min": 2, "max": 32})
        with Braced(cfg) as b:
            results = self.burst(b, CLIENTS, PER_CLIENT)
            for r in results:
                self.assertIsInstance(r, list, r)
                self.assertEqual(r, [200] * PER_CLIENT)
            stats = self.upstream.stats()
            self.assertEqual(stats["requests"], CLIENTS * PER_CLIENT)
            self.assertLessEqual(stats["peak"], 32, stats)
            status = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)
            conc = status["profiles"]["demo"]["concurrency"]
            self.assertTrue(conc["adaptive"], conc)
            self.assertTrue(2 <= conc["limit"] <= 32, conc)
            self.assertGreater(conc["min_rtt_ms"], 0, conc)
            text = request(b.admin_port, "GET", "/metrics", timeout=5).body.decode()
            line = [l for l in text.splitlines()
                    if l.startswith('braced_concurrency_limit{profile="demo"}')]
            self.assertEqual(len(line), 1, text)
            self.assertEqual(int(line[0].split()[-1]), conc["limit"])

    def test_without_adaptive_the_burst_goes_through(self):
        # The same burst without the limit: the upstream sees far more than
        # its capacity at once (what the limit is for).
        self.upstream.set_default({"capacity": CAPACITY, "delay_ms": SERVICE_MS})
        cfg = self.limit_config({"adaptive": False})
        with Braced(cfg) as b:
            results = self.burst(b, CLIENTS, 1)
            self.assertEqual([r for r in results if r != [200]], [])
            status = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)
            self.assertEqual(status["profiles"]["demo"]["concurrency"]["limit"], 512, status)
            self.assertGreater(self.upstream.stats()["peak"], 32, self.upstream.stats())

    def test_beyond_the_limit_overloaded(self):
        # A limit of 1: while one request runs, the others wait timeouts.pool
        # and get 503 overloaded with Retry-After; none reaches the upstream.
        self.upstream.set_default({"delay_ms": 1500})
        cfg = self.limit_config({"adaptive": True, "min": 1, "max": 1},
                                timeouts={"pool": "200ms", "total": "10s"})
        with Braced(cfg) as b:
            results = in_threads(lambda i: b.get(f"/demo/o/{i}"), [(i,) for i in range(5)],
                                 timeout=30)
            ok = [r for r in results if r.status == 200]
            over = [r for r in results if r.status == 503]
            self.assertEqual((len(ok), len(over)), (1, 4), results)
            for r in over:
                doc = self.assert_problem(r, 503, "overloaded", profile="demo")
                self.assertEqual(r.headers.get("Retry-After"), "1", r)
                self.assertEqual(doc.get("retryable"), True, doc)
            self.assertEqual(self.upstream.stats()["requests"], 1)

    def test_queue_is_bounded_by_max_inflight(self):
        # The wait for the limit is bounded twice: each request waits at most
        # timeouts.pool, and no more requests wait than limits.max_inflight
        # lets in; the rest are refused at once, and only one reaches the
        # upstream.
        self.upstream.set_default({"delay_ms": 1500})
        cfg = self.config(defaults={"concurrency": {"adaptive": True, "min": 1, "max": 1},
                                    "timeouts": {"pool": "1s", "total": "10s"}},
                          limits={"max_inflight": 3})
        with Braced(cfg) as b:
            results = in_threads(lambda i: b.get(f"/demo/w/{i}"), [(i,) for i in range(6)],
                                 timeout=30)
        ok = [r for r in results if r.status == 200]
        docs = [self.assert_problem(r, 503, "overloaded", profile=None)
                for r in results if r.status != 200]
        waited = [d for d in docs if "no upstream connection" in d["detail"]]
        refused = [d for d in docs if d["detail"] == "too many requests in flight"]
        self.assertEqual((len(ok), len(waited), len(refused)), (1, 2, 3), docs)
        self.assertEqual(self.upstream.stats()["requests"], 1)

    def test_config_shows_concurrency(self):
        cfg = self.limit_config({"adaptive": True, "min": 3, "max": 40})
        with Braced(cfg) as b:
            doc = json.loads(request(b.admin_port, "GET", "/config", timeout=5).body)
            self.assertEqual(doc["defaults"]["concurrency"],
                             {"adaptive": True, "min": 3, "max": 40}, doc["defaults"])


if __name__ == "__main__":
    unittest.main()
