"""Hedged requests (SPEC 4.10) against the fault-injecting upstream: a slow
first attempt is overtaken by a hedge after hedge.delay, the app gets the
fast answer, the upstream sees both attempts with the same correlation id
and Idempotency-Key, and the slow one's connection is closed. A POST without
an idempotency key is never hedged; history, the access log, /status and
/metrics show the hedges.

The slow attempt is the first scripted action (a long delay); the hedge
gets the echo. Times asserted are generous: the slow attempt takes 3 s,
the hedged answer is asserted under 2 s.
"""

import json
import os
import signal
import socket
import subprocess
import unittest

from harness import Background, Braced, BracedTestCase, fault, request, wait_until

SLOW_MS = 3000
HEDGE = {"delay": "50ms", "max": 1}
ONE = {"Brace-Max-Attempts": "1"}
RETRY = {"attempts": 3, "backoff": {"base": "10ms", "max": "20ms", "jitter": "none"}}


class HedgeTest(BracedTestCase):

    def hedge_config(self, hedge=None, **extra):
        # Envelope mode: the problem's history shows which attempts were hedges.
        defaults = {"retry": RETRY, "hedge": hedge or HEDGE, "upstream_errors": "envelope"}
        defaults.update(extra)
        return self.config(defaults=defaults, admin="127.0.0.1:0")

    def metric(self, b, name):
        text = request(b.admin_port, "GET", "/metrics", timeout=5).body.decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def test_slow_first_attempt_is_overtaken(self):
        # Fails if braced waits for the slow attempt (no hedge), answers with
        # the slow one, sends the hedge without the app's ids, or keeps the
        # cancelled attempt's connection open.
        self.upstream.script([{"delay_ms": SLOW_MS}])
        with Braced(self.hedge_config()) as b:
            resp = b.get("/demo/item", headers={"X-Correlation-ID": "corr-hedge-1",
                                                "Idempotency-Key": "key-hedge-1"})
            self.assertEqual(resp.status, 200, resp)
            self.assertLess(resp.elapsed, 2.0, resp)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "2", resp)
            got = self.upstream.received()
            self.assertEqual(len(got), 2, got)
            for r in got:
                headers = {n.lower(): v for n, v in r["headers"]}
                self.assertEqual(headers.get("x-correlation-id"), "corr-hedge-1", r)
                self.assertEqual(headers.get("idempotency-key"), "key-hedge-1", r)
            # The hedge started after hedge.delay, not at once.
            self.assertGreaterEqual(got[1]["t"] - got[0]["t"], 0.04, got)
            # The slow attempt was cancelled: its connection closed under it.
            self.assertTrue(wait_until(lambda: self.upstream.stats()["aborted"] >= 1, 5),
                            self.upstream.stats())
            self.assertTrue(wait_until(
                lambda: self.metric(b, 'braced_hedges_total{profile="demo",result="won"}') == 1,
                5))
            self.assertEqual(
                self.metric(b, 'braced_hedges_total{profile="demo",result="cancelled"}'), 0)
            line = [l for l in b.log_lines() if l.get("msg") == "request"][-1]
            self.assertEqual(line.get("hedges"), 1, line)
            self.assertEqual(line.get("attempts"), 2, line)
            status = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)
            self.assertEqual(status["profiles"]["demo"]["hedge"]["delay_ms"], 50, status)
            self.assertEqual(status["profiles"]["demo"]["hedge"]["won"], 1, status)

    def test_slower_hedge_is_cancelled(self):
        # The first attempt answers while the hedge still runs: the app gets
        # the first answer, the hedge's connection is closed under it, and
        # the hedge counts as cancelled.
        self.upstream.script([{"delay_ms": 300}, {"delay_ms": SLOW_MS}])
        with Braced(self.hedge_config()) as b:
            resp = b.get("/demo/item")
            self.assertEqual(resp.status, 200, resp)
            self.assertLess(resp.elapsed, 2.0, resp)
            self.assertEqual(self.upstream.stats()["requests"], 2)
            self.assertTrue(wait_until(lambda: self.upstream.stats()["aborted"] >= 1, 5),
                            self.upstream.stats())
            self.assertTrue(wait_until(
                lambda: self.metric(b, 'braced_hedges_total{profile="demo",result="cancelled"}')
                == 1, 5))
            self.assertEqual(
                self.metric(b, 'braced_hedges_total{profile="demo",result="won"}'), 0)
            # The next request gets a connection of its own, not the cut one.
            self.assertEqual(b.get("/demo/after").status, 200)

    def test_hedge_has_its_own_traceparent(self):
        # Same trace, each attempt its own parent-id (W3C Trace Context).
        self.upstream.script([{"delay_ms": SLOW_MS}])
        trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        with Braced(self.hedge_config()) as b:
            resp = b.get("/demo/traced", headers={"traceparent": trace})
            self.assertEqual(resp.status, 200, resp)
            got = self.upstream.received()
            self.assertEqual(len(got), 2, got)
            parents = [dict((n.lower(), v) for n, v in r["headers"])["traceparent"] for r in got]
            self.assertEqual({p.split("-")[1] for p in parents},
                             {"4bf92f3577b34da6a3ce929d0e0e4736"}, parents)
            self.assertEqual(len({p.split("-")[2] for p in parents}), 2, parents)

    def test_fast_first_attempt_is_not_hedged(self):
        with Braced(self.hedge_config()) as b:
            for i in range(5):
                resp = b.get(f"/demo/fast/{i}")
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
            self.assertEqual(self.upstream.stats()["requests"], 5)

    def test_post_without_key_is_never_hedged(self):
        # Fails if a POST without an Idempotency-Key is sent twice. braced
        # gives every POST a key by default (idempotency.methods): not here.
        self.upstream.script([{"delay_ms": 400}])
        with Braced(self.hedge_config(idempotency={"methods": ["PATCH"]})) as b:
            resp = b.request("POST", "/demo/orders", body=b"{}",
                             headers={"Content-Type": "application/json"})
            self.assertEqual(resp.status, 200, resp)
            self.assertGreaterEqual(resp.elapsed, 0.35, resp)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
            self.assertEqual(self.upstream.stats()["requests"], 1)
            got = self.upstream.received()
            self.assertEqual([n for n, _ in got[0]["headers"] if n.lower() == "idempotency-key"],
                             [], got)

    def test_post_with_key_is_hedged(self):
        self.upstream.script([{"delay_ms": SLOW_MS}])
        with Braced(self.hedge_config()) as b:
            resp = b.request("POST", "/demo/orders", body=b"{}",
                             headers={"Content-Type": "application/json",
                                      "Idempotency-Key": "order-7"})
            self.assertEqual(resp.status, 200, resp)
            self.assertLess(resp.elapsed, 2.0, resp)
            got = self.upstream.received()
            self.assertEqual(len(got), 2, got)
            keys = [dict((n.lower(), v) for n, v in r["headers"]).get("idempotency-key")
                    for r in got]
            self.assertEqual(keys, ["order-7", "order-7"])

    def test_history_marks_hedges(self):
        # Both attempts fail: the problem's history lists the hedge as such.
        self.upstream.script([{"delay_ms": 300, "status": 503}, {"status": 500},
                              {"status": 503}])
        with Braced(self.hedge_config()) as b:
            resp = b.get("/demo/failing", headers={"Brace-Max-Attempts": "2"})
            doc = self.assert_problem(resp, 503, "upstream_status", profile="demo")
            history = doc.get("history")
            self.assertEqual(len(history), 2, doc)
            self.assertEqual([h.get("hedge", False) for h in history], [True, False], doc)
            self.assertEqual(self.upstream.stats()["requests"], 2)
            self.assertTrue(wait_until(
                lambda: self.metric(b, 'braced_hedges_total{profile="demo",result="lost"}') == 1,
                5))

    def test_hedge_without_a_connection_leaves_the_first_answer(self):
        # Fails if a hedge that never got a pool connection turns the first
        # attempt's 503 into a 503 overloaded. Pool of 2: B holds one
        # connection; A's first attempt the other; C queues for a connection
        # before A's hedge does, so when A's first attempt answers 503, C
        # takes that connection and the hedge times out in the pool. The 503
        # asks for more time than retry_after.max: no retry, the app gets
        # the upstream's 503.
        cfg = self.hedge_config(
            hedge={"delay": "400ms", "max": 1},
            retry={"attempts": 3, "retry_after": {"honor": True, "max": "5s"}},
            pool={"max_connections": 2},
            timeouts={"pool": "1500ms", "total": "10s"},
            circuit_breaker={"enabled": False})
        with Braced(cfg) as b:
            # Brace-Max-Attempts: 1 keeps B and C from hedging themselves.
            holder = Background(b.get, "/demo/b", dict(fault(delay_ms=3000), **ONE))
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 1, 5))
            first = Background(b.get, "/demo/a", fault(delay_ms=1000, status=503,
                                                       headers={"Retry-After": "60"}))
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 2, 5))
            queued = Background(b.get, "/demo/c", dict(fault(delay_ms=2500), **ONE))
            resp = first.result(timeout=15)
            doc = self.assert_problem(resp, 503, "upstream_status", profile="demo")
            self.assertEqual(doc.get("upstream_status"), 503, doc)
            self.assertEqual(len(doc.get("history")), 1, doc)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
            self.assertEqual(holder.result(timeout=15).status, 200)
            self.assertEqual(queued.result(timeout=15).status, 200)
            # The hedge never reached the upstream: B, A and C only.
            paths = sorted(r["path"].rsplit("/", 1)[-1] for r in self.upstream.received())
            self.assertEqual(paths, ["a", "b", "c"], paths)
            self.assertTrue(wait_until(
                lambda: self.metric(b, 'braced_hedges_total{profile="demo",result="lost"}') == 1,
                5))

    def test_quantile_delay_waits_for_samples(self):
        # pNN: no hedge before the profile has enough samples; /status says so.
        with Braced(self.hedge_config(hedge={"delay": "p95", "max": 1})) as b:
            status = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)
            self.assertEqual(status["profiles"]["demo"]["hedge"]["delay_ms"], "pending", status)
            for i in range(25):
                self.assertEqual(b.get(f"/demo/warm/{i}").status, 200)
            status = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)
            delay = status["profiles"]["demo"]["hedge"]["delay_ms"]
            self.assertIsInstance(delay, int, status)
            self.assertGreaterEqual(delay, 1, status)
            self.upstream.reset()
            self.upstream.script([{"delay_ms": SLOW_MS}])
            resp = b.get("/demo/slow")
            self.assertEqual(resp.status, 200, resp)
            self.assertLess(resp.elapsed, 2.0, resp)
            self.assertEqual(self.upstream.stats()["requests"], 2)

    def test_queued_hedge_cut_by_the_answer_is_no_attempt(self):
        # As above, but A's first attempt answers 200 while its hedge still
        # waits behind C: the hedge is cut without being an attempt.
        cfg = self.hedge_config(hedge={"delay": "400ms", "max": 1},
                                pool={"max_connections": 2},
                                timeouts={"pool": "1500ms", "total": "10s"})
        with Braced(cfg) as b:
            holder = Background(b.get, "/demo/b", dict(fault(delay_ms=3000), **ONE))
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 1, 5))
            first = Background(b.get, "/demo/a", fault(delay_ms=1000))
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 2, 5))
            queued = Background(b.get, "/demo/c", dict(fault(delay_ms=2500), **ONE))
            resp = first.result(timeout=15)
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
            self.assertEqual(holder.result(timeout=15).status, 200)
            self.assertEqual(queued.result(timeout=15).status, 200)
            paths = sorted(r["path"].rsplit("/", 1)[-1] for r in self.upstream.received())
            self.assertEqual(paths, ["a", "b", "c"], paths)
            self.assertTrue(wait_until(
                lambda: self.metric(b, 'braced_hedges_total{profile="demo",result="cancelled"}')
                == 1, 5))

    def test_status_shows_route_hedges(self):
        # Routes that override hedge are listed with the delay in effect for
        # them; a route that keeps the profile's is not.
        routes = [{"match": "GET /fixed", "hedge": {"delay": "30ms", "max": 2}},
                  {"match": "GET /quantile", "hedge": {"delay": "p90", "max": 1}},
                  {"match": "GET /same"}]
        cfg = self.config({"routes": routes}, admin="127.0.0.1:0",
                          defaults={"retry": RETRY, "hedge": HEDGE})
        with Braced(cfg) as b:
            status = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)
            hedge = status["profiles"]["demo"]["hedge"]
            self.assertEqual(hedge["delay_ms"], 50, hedge)
            self.assertEqual(hedge["routes"], {"GET /fixed": {"delay_ms": 30, "max": 2},
                                               "GET /quantile": {"delay_ms": "pending",
                                                                 "max": 1}}, hedge)
            for i in range(25):
                self.assertEqual(b.get(f"/demo/warm/{i}").status, 200)
            status = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)
            delay = status["profiles"]["demo"]["hedge"]["routes"]["GET /quantile"]["delay_ms"]
            self.assertIsInstance(delay, int, status)
            self.assertGreaterEqual(delay, 1, status)

    # ---- the edges an app or an operator can reach ----

    def test_max_attempts_one_disables_hedging(self):
        # Fails if Brace-Max-Attempts: 1 still lets a hedge out.
        self.upstream.script([{"delay_ms": 400}])
        with Braced(self.hedge_config()) as b:
            resp = b.get("/demo/once", headers=ONE)
            self.assertEqual(resp.status, 200, resp)
            self.assertGreaterEqual(resp.elapsed, 0.35, resp)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
            self.assertEqual(self.upstream.stats()["requests"], 1)
            self.assertEqual(
                self.metric(b, 'braced_hedges_total{profile="demo",result="lost"}'), 0)

    def test_small_budget_cuts_both_attempts(self):
        # Brace-Timeout-Ms 300: the hedge fits (250 ms left at 50 ms), then
        # the budget ends both; their connections close and the app gets 504.
        self.upstream.script([{"delay_ms": SLOW_MS}, {"delay_ms": SLOW_MS}])
        with Braced(self.hedge_config()) as b:
            resp = b.get("/demo/short", headers={"Brace-Timeout-Ms": "300"})
            doc = self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
            self.assertLess(resp.elapsed, 2.0, resp)
            self.assertEqual([h.get("hedge", False) for h in doc["history"]], [False, True], doc)
            self.assertEqual(self.upstream.stats()["requests"], 2)
            self.assertTrue(wait_until(lambda: self.upstream.stats()["aborted"] >= 2, 5),
                            self.upstream.stats())
            self.assertEqual(
                self.metric(b, 'braced_hedges_total{profile="demo",result="cancelled"}'), 1)

    def test_budget_without_room_starts_no_hedge(self):
        # Brace-Timeout-Ms 60: when the 50 ms delay passes, under the 50 ms
        # an attempt needs is left: no hedge.
        self.upstream.script([{"delay_ms": SLOW_MS}])
        with Braced(self.hedge_config()) as b:
            resp = b.get("/demo/tiny", headers={"Brace-Timeout-Ms": "60"})
            self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
            self.assertEqual(self.upstream.stats()["requests"], 1)

    def test_client_gone_mid_hedge_cancels_both(self):
        # The app leaves while the first attempt and its hedge both run:
        # both upstream connections close, nothing stays in flight.
        self.upstream.script([{"delay_ms": SLOW_MS}, {"delay_ms": SLOW_MS}])
        with Braced(self.hedge_config()) as b:
            s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            try:
                s.sendall(b"GET /demo/gone HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 2, 5))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
            finally:
                s.close()
            self.assertTrue(wait_until(lambda: self.upstream.stats()["aborted"] >= 2, 5),
                            self.upstream.stats())
            self.assertTrue(wait_until(
                lambda: self.metric(b, 'braced_hedges_total{profile="demo",result="cancelled"}')
                == 1, 5))
            status = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)
            self.assertEqual(status["inflight"], 0, status)
            self.assertEqual(status["profiles"]["demo"]["inflight"], 0, status)
            self.assertEqual(b.get("/demo/after").status, 200)

    def test_reload_mid_hedge(self):
        # A reload while both attempts run: the request ends under the
        # policy it started with; the next one follows the new (hedge off).
        self.upstream.script([{"delay_ms": SLOW_MS}, {"delay_ms": 800}])
        with Braced(self.hedge_config()) as b:
            inflight = Background(b.get, "/demo/reloaded")
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 2, 5))
            b.reload(self.hedge_config(hedge={"delay": "0ms", "max": 1}))
            resp = inflight.result(timeout=10)
            self.assertEqual(resp.status, 200, resp)
            self.assertLess(resp.elapsed, 2.5, resp)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "2", resp)
            self.assertTrue(wait_until(
                lambda: self.metric(b, 'braced_hedges_total{profile="demo",result="won"}') == 1,
                5))
            self.upstream.reset()
            self.upstream.script([{"delay_ms": 400}])
            self.assertEqual(b.get("/demo/after").status, 200)
            self.assertEqual(self.upstream.stats()["requests"], 1)

    def test_sigterm_drains_a_hedged_request(self):
        # SIGTERM while both attempts run: the drain waits for the hedge's
        # answer, cancels the slow one, and braced exits 0.
        self.upstream.script([{"delay_ms": SLOW_MS}, {"delay_ms": 700}])
        with Braced(self.hedge_config()) as b:
            inflight = Background(b.get, "/demo/draining")
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 2, 5))
            os.kill(b.proc.pid, signal.SIGTERM)
            resp = inflight.result(timeout=10)
            try:
                code = b.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.fail("braced was still running 8 s after its last request finished")
        self.assertEqual(resp.status, 200, resp)
        self.assertLess(resp.elapsed, 2.5, resp)
        self.assertEqual(code, 0)
        self.assertTrue(wait_until(lambda: self.upstream.stats()["aborted"] >= 1, 5),
                        self.upstream.stats())

    def test_sigterm_grace_over_cuts_both_attempts(self):
        # shutdown_grace ends before either attempt answers: both are cut
        # (their connections close), the app gets 503 overloaded with both in
        # its history, and braced exits 0 without waiting them out.
        self.upstream.script([{"delay_ms": SLOW_MS}, {"delay_ms": SLOW_MS}])
        cfg = self.config(defaults={"retry": RETRY, "hedge": HEDGE}, shutdown_grace="300ms")
        with Braced(cfg) as b:
            inflight = Background(b.get, "/demo/cut")
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 2, 5))
            os.kill(b.proc.pid, signal.SIGTERM)
            try:
                code = b.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.fail("braced waited out the attempts instead of its grace")
            resp = inflight.result(timeout=10)
        doc = self.assert_problem(resp, 503, "overloaded", profile="demo")
        self.assertEqual([(h.get("outcome"), h.get("hedge", False)) for h in doc["history"]],
                         [("cancelled", False), ("cancelled", True)], doc)
        self.assertEqual(code, 0)
        self.assertTrue(wait_until(lambda: self.upstream.stats()["aborted"] >= 2, 5),
                        self.upstream.stats())

    def test_config_shows_hedge(self):
        with Braced(self.hedge_config()) as b:
            doc = json.loads(request(b.admin_port, "GET", "/config", timeout=5).body)
            self.assertEqual(doc["defaults"]["hedge"], {"delay_ms": 50, "max": 1}, doc["defaults"])
            self.assertEqual(doc["defaults"]["concurrency"],
                             {"adaptive": False, "min": 4, "max": 512}, doc["defaults"])


if __name__ == "__main__":
    unittest.main()
