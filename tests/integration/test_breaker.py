"""The circuit breaker per profile (SPEC 4.8): it judges requests as the app
saw them, after their retries. An outage opens it, an open breaker answers
503 circuit_open with Retry-After and sends nothing upstream, and after
open_for one probe, a whole request with its retries, decides: a failure
opens it again, a success closes it. An upstream whose first attempts fail
and whose retries succeed is degraded, not down: the breaker stays closed.

The outage is the upstream's persistent default action (503 to every
request); the upstream's request count shows what reached it.
"""

import time
import unittest

from harness import Background, Braced, BracedTestCase, in_threads, request, wait_until

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
        """Waits past open_for and sends one request: the half-open probe, which
        fails after its retries (all of them sent: a probe is a whole request)."""
        time.sleep(OPEN_FOR + 0.2)
        before = self.count()
        probe = b.get("/demo/probe")
        self.assert_upstream_error(probe, 503)
        self.assertEqual(probe.headers.get("Brace-Attempts"), str(RETRY["attempts"]), probe)
        self.assertEqual(self.count(), before + RETRY["attempts"])

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
            failed = codes.count("upstream_status")
            self.assertGreaterEqual(failed, MIN_REQUESTS, "opened before min_requests requests")
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
            for i in range(MIN_REQUESTS + 1):
                resp = b.get(f"/demo/fail/{i}")
                if resp.headers.get("Brace-Error") == "circuit_open":
                    break
            else:
                self.fail(f"still closed after {MIN_REQUESTS} failed requests, "
                          f"{self.count()} attempts")
            self.assertEqual(i, MIN_REQUESTS, "opened before min_requests failed requests")
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
        # Five requests fail once each and wait 500 ms to retry; meanwhile 20
        # requests on a route without retries fail and open the breaker (open
        # for 5 s). Open means nothing is sent upstream (SPEC 4.8), so the
        # waiting retries must not go out. Fails if a retry scheduled before
        # the opening is sent while the breaker is open.
        breaker = dict(BREAKER, open_for="5s")
        slow = {"attempts": 2, "backoff": {"base": "500ms", "max": "500ms", "jitter": "none"}}
        routes = [{"match": "GET /fast/**", "retry": {"attempts": 1}}]
        self.upstream.set_default({"status": 503})
        config = self.config({"routes": routes},
                             defaults={"retry": slow, "circuit_breaker": breaker})
        with Braced(config) as b:
            waiting = Background(lambda: in_threads(lambda i: b.get(f"/demo/slow/{i}"),
                                                    [(i,) for i in range(5)], timeout=15))
            self.assertTrue(wait_until(lambda: self.count() >= 5, 5), "the slow requests never came")
            fast = [b.get(f"/demo/fast/{i}") for i in range(MIN_REQUESTS)]
            opened = time.monotonic()
            results = waiting.result(timeout=15)
            after = b.get("/demo/fast/after")
        self.assertEqual([r.headers.get("Brace-Error") for r in fast],
                         ["upstream_status"] * MIN_REQUESTS, fast)
        log = self.upstream.received()
        first_slow = min(r["t"] for r in log if "/slow/" in r["path"])
        # Precondition: the breaker opened before the slow retries were due.
        self.assertLess(opened - first_slow, 0.45, "the fast requests took too long")
        self.assert_problem(after, 503, "circuit_open", profile="demo")
        errors = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(errors, [], "clients failed")
        for resp in results:
            self.assertEqual(resp.status, 503, resp)
            self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
        slow_paths = [r for r in self.upstream.received() if "/slow/" in r["path"]]
        self.assertEqual(len(slow_paths), 5, f"{len(slow_paths) - 5} retries reached the "
                                             "upstream after the breaker opened")


    def status_breaker(self, b):
        return request(b.admin_port, "GET", "/status", timeout=5).json()["profiles"]["demo"]["breaker"]["state"]

    def test_impatient_apps_still_open_it_for_a_hung_upstream(self):
        # Every attempt to a hung upstream times out (read 300 ms), and the
        # apps give up after 800 ms, before braced's budget ends: no request
        # gets a final answer, but each had an attempt fail, so each is a
        # failure to the breaker, which opens (it stayed closed when only
        # answered requests were judged).
        self.upstream.set_default({"delay_ms": 5000})
        breaker = dict(BREAKER, min_requests=5)
        defaults = {"timeouts": {"read": "300ms", "total": "5s"},
                    "retry": {"attempts": 4, "backoff": {"base": "10ms", "max": "20ms"}},
                    "circuit_breaker": breaker}
        with Braced(self.config(defaults=defaults, admin="127.0.0.1:0")) as b:
            for i in range(breaker["min_requests"]):
                try:
                    resp = request(b.port, "GET", f"/demo/hung/{i}", timeout=0.8)
                except OSError:
                    continue
                self.fail(f"an answer before the app gave up: {resp}")
            self.assertTrue(wait_until(lambda: self.status_breaker(b) == "open", 3),
                            self.status_breaker(b))
            self.assert_circuit_open(b.get("/demo/after"))

    def test_degraded_upstream_keeps_the_breaker_closed(self):
        # The POST benchmark's upstream: every first attempt 503, every retry
        # 200. Every request is served, so the breaker must stay closed (it
        # used to count attempts, open, and then fail its probes, which are
        # first attempts, for ever). Fails if any request gets circuit_open.
        n = 100
        self.upstream.script([{"status": 503}, {}] * n)
        defaults = {"retry": RETRY, "circuit_breaker": BREAKER,
                    "idempotency": {"honored": True}}
        with Braced(self.config(defaults=defaults, admin="127.0.0.1:0")) as b:
            answers = [b.request("POST", f"/demo/orders/{i}", body=b'{"n":1}',
                                 headers={"Content-Type": "application/json",
                                          "Idempotency-Key": f"order-{i}"})
                       for i in range(n)]
            state = self.status_breaker(b)
        self.assertEqual([r.status for r in answers], [200] * n,
                         [r.headers.get("Brace-Error") for r in answers if r.status != 200][:5])
        self.assertEqual({r.headers.get("Brace-Attempts") for r in answers}, {"2"})
        self.assertEqual(state, "closed")
        self.assertEqual(self.count(), 2 * n)

    def test_half_open_probe_is_a_whole_request(self):
        # Open the breaker with requests that fail after their retries; after
        # open_for the probe's first attempt fails and its retry succeeds:
        # the probe succeeded, so the breaker closes. Fails if the probe is
        # judged by its first attempt (it reopens and traffic stays refused).
        self.upstream.set_default({"status": 503})
        with Braced(self.config(defaults={"retry": RETRY, "circuit_breaker": BREAKER},
                                admin="127.0.0.1:0")) as b:
            for i in range(MIN_REQUESTS):
                self.assert_upstream_error(b.get(f"/demo/fail/{i}"), 503)
            self.assert_circuit_open(b.get("/demo/now-open"))
            time.sleep(OPEN_FOR + 0.2)
            self.upstream.set_default({})
            self.upstream.script([{"status": 503}])
            probe = b.get("/demo/probe")
            self.assertEqual(probe.status, 200, probe)
            self.assertEqual(probe.headers.get("Brace-Attempts"), "2", probe)
            self.assertEqual(self.status_breaker(b), "closed")
            self.assertEqual(b.get("/demo/after").status, 200)


if __name__ == "__main__":
    unittest.main()
