"""The circuit breaker per profile (SPEC 4.8): an outage opens it, an open
breaker answers 503 circuit_open with Retry-After and sends nothing
upstream, and after open_for one probe decides: a failure opens it again,
a success closes it.

The outage is the upstream's persistent default action (503 to every
request); the upstream's request count shows what reached it.
"""

import time
import unittest

from harness import Braced, BracedTestCase, in_threads, request

OPEN_FOR = 1.0      # seconds, circuit_breaker.open_for below
MIN_REQUESTS = 20

BREAKER = {"enabled": True, "window": "10s", "min_requests": MIN_REQUESTS,
           "failure_ratio": 0.5, "open_for": "1s", "half_open_probes": 1}
RETRY = {"attempts": 4, "backoff": {"base": "10ms", "max": "50ms", "jitter": "full"}}


class BreakerTest(BracedTestCase):

    def breaker_config(self):
        return self.config(defaults={"retry": RETRY, "circuit_breaker": BREAKER})

    def count(self):
        return self.upstream.stats()["requests"]

    def assert_circuit_open(self, resp):
        doc = self.assert_problem(resp, 503, "circuit_open", profile="demo")
        retry_after = resp.headers.get("Retry-After")
        self.assertIsNotNone(retry_after, f"circuit_open without Retry-After: {resp}")
        self.assertTrue(retry_after.isdigit() and 1 <= int(retry_after) <= OPEN_FOR, resp)
        self.assertTrue(0 < doc.get("retry_after_ms", -1) <= OPEN_FOR * 1000, doc)
        self.assertEqual(resp.headers.get("Brace-Attempts"), "0", resp)
        return doc

    def assert_open_answers_stay_local(self, b, n=10):
        """n requests in a row are circuit_open and none reaches the upstream."""
        before = self.count()
        for i in range(n):
            self.assert_circuit_open(b.get(f"/demo/while-open/{i}"))
        self.assertEqual(self.count(), before, "a request reached the upstream while open")

    def failed_probe(self, b):
        """Waits past open_for and sends one request: the half-open probe, which fails."""
        time.sleep(OPEN_FOR + 0.2)
        before = self.count()
        probe = b.get("/demo/probe")
        self.assert_upstream_error(probe, 503)
        # The probe's failure reopens the breaker, which stops its own retries.
        self.assertEqual(probe.headers.get("Brace-Attempts"), "1", probe)
        self.assertEqual(self.count(), before + 1)

    def test_outage_under_load_opens_the_breaker(self):
        # Fails if the breaker never opens (all 100 requests reach the
        # upstream with retries), opens before min_requests attempts, or
        # lets requests through while open.
        self.upstream.set_default({"status": 503})
        with Braced(self.breaker_config()) as b:

            def client(i):
                return [request(b.port, "GET", f"/demo/t{i}/{j}", timeout=10) for j in range(5)]

            results = in_threads(client, [(i,) for i in range(20)], timeout=20)
            errors = [r for r in results if isinstance(r, Exception)]
            self.assertEqual(errors, [], "clients failed")
            answers = [resp for batch in results for resp in batch]
            codes = [resp.headers.get("Brace-Error") for resp in answers]
            upstream = self.count()
            self.assertGreaterEqual(upstream, MIN_REQUESTS, "opened before min_requests attempts")
            self.assertIn("circuit_open", codes, f"the breaker never opened; {upstream} upstream requests")
            self.assertEqual(set(codes), {"upstream_status", "circuit_open"}, codes)
            self.assertEqual(sum(int(resp.headers["Brace-Attempts"]) for resp in answers), upstream,
                             "Brace-Attempts does not add up to the upstream's count")
            # Open, whatever time passed above: a failed probe opens it for open_for again.
            self.failed_probe(b)
            self.assert_open_answers_stay_local(b)

    def test_recovered_upstream_closes_the_breaker_after_open_for(self):
        # Fails if the breaker stays open after open_for with a healthy
        # upstream, or if a failed probe does not open it again.
        self.upstream.set_default({"status": 503})
        with Braced(self.breaker_config()) as b:
            for i in range(MIN_REQUESTS):
                resp = b.get(f"/demo/fail/{i}")
                if resp.headers.get("Brace-Error") == "circuit_open":
                    break
            else:
                self.fail(f"still closed after {MIN_REQUESTS} requests, {self.count()} attempts")
            self.failed_probe(b)
            self.assert_open_answers_stay_local(b)
            self.upstream.set_default({})          # healthy: the echo
            time.sleep(OPEN_FOR + 0.2)
            before = self.count()
            answers = [b.get(f"/demo/ok/{i}") for i in range(5)]
        for resp in answers:
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
        self.assertEqual(self.count(), before + 5)

    def test_client_errors_do_not_open_the_breaker(self):
        # Fails if 4xx answers count as breaker failures (SPEC 4.8 counts
        # connect, reset, timeout and 5xx only).
        self.upstream.set_default({"status": 404})
        with Braced(self.breaker_config()) as b:
            answers = [b.get(f"/demo/missing/{i}") for i in range(MIN_REQUESTS + 10)]
        for resp in answers:
            self.assert_upstream_error(resp, 404)
        self.assertEqual(self.count(), MIN_REQUESTS + 10)

    def test_retries_waiting_when_the_breaker_opens_are_not_sent(self):
        # 20 concurrent requests fail once each; the 20th failure opens the
        # breaker (open for 5 s) while the other 19 wait 500 ms to retry.
        # Open means nothing is sent upstream (SPEC 4.8), so those retries
        # must not go out. Fails if a retry scheduled before the opening is
        # sent while the breaker is open.
        breaker = dict(BREAKER, open_for="5s")
        retry = {"attempts": 2, "backoff": {"base": "500ms", "max": "500ms", "jitter": "none"}}
        self.upstream.set_default({"status": 503})
        with Braced(self.config(defaults={"retry": retry, "circuit_breaker": breaker})) as b:
            results = in_threads(lambda i: b.get(f"/demo/c/{i}"), [(i,) for i in range(MIN_REQUESTS)],
                                 timeout=15)
        errors = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(errors, [], "clients failed")
        log = self.upstream.received()
        first = sorted(r["t"] for r in log)[:MIN_REQUESTS]
        # Precondition: all first attempts came before any retry was due.
        self.assertLess(first[-1] - first[0], 0.4, "the 20 requests did not arrive together")
        for resp in results:
            self.assertEqual(resp.status, 503, resp)
            self.assertIn(resp.headers.get("Brace-Error"), ("upstream_status", "circuit_open"), resp)
        late = [round(r["t"] - first[-1], 3) for r in log if r["t"] > first[-1]]
        self.assertFalse(late, f"{len(late)} retries reached the upstream after the breaker "
                                   f"opened (s after the 20th failure: {late[:5]}...)")



if __name__ == "__main__":
    unittest.main()
