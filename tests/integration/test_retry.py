"""Retries (SPEC 4.2-4.7, 5): which answers are retried, how often, how long
braced waits, the idempotency key every attempt carries, Retry-After and the
profile's rate-limit cool-down, the retry budget, and what the app is told
(Brace-Attempts, problem fields attempts/elapsed_ms/retryable/history).

The upstream counts and logs every request it receives (GET /__log, arrival
times on the host's monotonic clock), so each test checks what actually
reached the upstream, not only what braced says it did.
"""

import time
import unittest

from harness import (UUID_RE, Background, Braced, BracedTestCase, closed_port, fault,
                     in_threads, make_config, request, wait_until)

# Short waits between attempts keep the tests fast; the default backoff
# (200 ms base, full jitter) would only make them slower, not different.
FAST = {"backoff": {"base": "10ms", "max": "50ms", "jitter": "full"}}


def retry(**extra):
    """defaults.retry: FAST backoff plus extra."""
    return dict(FAST, **extra)


class RetryTestCase(BracedTestCase):

    def retry_config(self, profile_extra=None, **retry_extra):
        """One profile `demo`; retry.attempts 3 unless given; breaker off unless profile_extra
        sets it. Upstream errors in envelope mode: these tests read the retries' story from
        the problem (history, attempts, upstream_body)."""
        return self.config(profile_extra,
                           defaults={"retry": retry(**dict({"attempts": 3}, **retry_extra)),
                                     "circuit_breaker": {"enabled": False},
                                     "upstream_errors": "envelope"})

    def attempts_header(self, resp):
        value = resp.headers.get("Brace-Attempts")
        self.assertIsNotNone(value, f"no Brace-Attempts header: {resp}")
        return int(value)

    def upstream_keys(self, name="Idempotency-Key"):
        """The `name` header values of each request the upstream received, in order."""
        return [[v for n, v in r["headers"] if n.lower() == name.lower()]
                for r in self.upstream.received()]


class RetryStatusTest(RetryTestCase):
    """Which upstream answers are retried (SPEC 4.2, 4.3)."""

    def test_503_503_200_succeeds_on_the_third_attempt(self):
        # Fails if 503 is not retried, if attempts stop early, or if
        # Brace-Attempts counts something else than upstream attempts.
        self.upstream.script([{"status": 503}, {"status": 503}, {}])
        with Braced(self.retry_config()) as b:
            resp = b.get("/demo/flaky")
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.headers.get("Brace-Error"), resp)
        self.assertEqual(resp.json()["path"], "/base/flaky")
        self.assertEqual(self.attempts_header(resp), 3, resp)
        self.assertEqual(self.upstream.stats()["requests"], 3)

    def test_400_is_not_retried(self):
        # Fails if a client error is treated as retriable.
        self.upstream.script([{"status": 400, "body": "bad city"}, {}, {}])
        with Braced(self.retry_config()) as b:
            resp = b.get("/demo/x")
        doc = self.assert_problem(resp, 400, "upstream_status", profile="demo")
        self.assertEqual(self.attempts_header(resp), 1, resp)
        self.assertEqual(self.upstream.stats()["requests"], 1)
        self.assertEqual(doc.get("upstream_status"), 400, doc)
        self.assertEqual(doc.get("upstream_body"), "bad city", doc)
        self.assertIs(doc.get("retryable"), False, doc)
        self.assertEqual(doc.get("attempts"), 1, doc)

    def test_problem_after_retries_tells_the_whole_story(self):
        # Fails on a missing field, on history entries out of order or
        # overwritten, on a non-zero wait before the first attempt, or on an
        # upstream_body that is not the last answer's.
        bodies = ["first 503", "second 503", "third 503"]
        self.upstream.script([{"status": 503, "body": text} for text in bodies])
        with Braced(self.retry_config()) as b:
            resp = b.get("/demo/down")
        doc = self.assert_problem(resp, 503, "upstream_status", profile="demo")
        self.assertEqual(doc.get("attempts"), 3, doc)
        self.assertEqual(self.attempts_header(resp), 3, resp)
        self.assertIsInstance(doc.get("elapsed_ms"), int, doc)
        self.assertLessEqual(doc["elapsed_ms"], resp.elapsed * 1000 + 5, doc)
        self.assertIs(doc.get("retryable"), True, doc)
        self.assertEqual(doc.get("upstream_status"), 503, doc)
        self.assertEqual(doc.get("upstream_body"), "third 503", doc)
        history = doc.get("history")
        self.assertIsInstance(history, list, doc)
        self.assertEqual([h.get("attempt") for h in history], [1, 2, 3], doc)
        for h in history:
            self.assertEqual(set(h), {"attempt", "outcome", "status", "ms", "wait_ms", "endpoint"},
                             h)
            # The one endpoint of a numeric upstream URL (SPEC 4.11).
            self.assertEqual(h["endpoint"], f"127.0.0.1:{self.upstream.port}", h)
            self.assertEqual(h["outcome"], "status", h)
            self.assertEqual(h["status"], 503, h)
            self.assertIsInstance(h["ms"], int, h)
            self.assertGreaterEqual(h["ms"], 0, h)
        self.assertEqual(history[0]["wait_ms"], 0, doc)
        for h in history[1:]:
            self.assertTrue(0 <= h["wait_ms"] <= 50, f"wait outside backoff.max 50 ms: {h}")
        self.assertEqual(self.upstream.stats()["requests"], 3)

    def test_passthrough_returns_the_last_upstream_error_as_sent(self):
        # Fails if passthrough relays an earlier attempt's answer, drops
        # Brace-Error, or stops retrying.
        bodies = ["first 503", "second 503", "last 503"]
        self.upstream.script([{"status": 503, "body": text,
                               "headers": {"Content-Type": "text/x-upstream"}}
                              for text in bodies])
        config = self.config(defaults={"retry": retry(attempts=3), "upstream_errors": "passthrough",
                                       "circuit_breaker": {"enabled": False}})
        with Braced(config) as b:
            resp = b.get("/demo/down")
        self.assertEqual(resp.status, 503, resp)
        self.assertEqual(resp.body, b"last 503")
        self.assertEqual(resp.headers.get("Content-Type"), "text/x-upstream", resp)
        self.assertEqual(resp.headers.get("Brace-Error"), "upstream_status", resp)
        self.assertEqual(self.attempts_header(resp), 3, resp)
        self.assertEqual(self.upstream.stats()["requests"], 3)


class IdempotencyTest(RetryTestCase):
    """SPEC 3 and 4.3: unsafe methods are retried with one unchanged key."""

    def test_post_is_retried_with_one_generated_key(self):
        # Fails if no key is generated, if each attempt gets a new one, if the
        # key is not a UUIDv4, or if the app does not get it back.
        self.upstream.script([{"status": 503}, {}])
        with Braced(self.retry_config()) as b:
            resp = b.request("POST", "/demo/orders", body=b'{"n": 1}')
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.attempts_header(resp), 2, resp)
        keys = self.upstream_keys()
        self.assertEqual(len(keys), 2, keys)
        self.assertEqual(len(keys[0]), 1, f"first attempt carried {keys[0]}")
        key = keys[0][0]
        self.assertEqual(keys[1], [key], "the retry carried another key")
        self.assertRegex(key, UUID_RE)
        self.assertEqual(key[14], "4", f"not a version 4 UUID: {key}")
        self.assertIn(key[19].lower(), "89ab", f"not an RFC 4122 variant UUID: {key}")
        self.assertEqual(resp.headers.get("Idempotency-Key"), key, resp)
        self.assertEqual(resp.json()["body"], '{"n": 1}', "the retry lost the body")

    def test_post_is_retried_with_the_apps_own_key(self):
        # Fails if braced replaces the app's key or generates one per attempt.
        self.upstream.script([{"status": 503}, {}])
        with Braced(self.retry_config()) as b:
            resp = b.request("POST", "/demo/orders", body=b"x",
                             headers={"Idempotency-Key": "app-key-42"})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.attempts_header(resp), 2, resp)
        self.assertEqual(self.upstream_keys(), [["app-key-42"], ["app-key-42"]])
        self.assertEqual(resp.headers.get("Idempotency-Key"), "app-key-42", resp)

    def test_unsafe_never_does_not_retry_a_post(self):
        # Fails if `unsafe: never` is ignored (the key alone must not allow it).
        self.upstream.script([{"status": 503, "body": "busy"}, {}])
        with Braced(self.retry_config(unsafe="never")) as b:
            resp = b.request("POST", "/demo/orders", body=b"x")
        doc = self.assert_problem(resp, 503, "upstream_status", profile="demo")
        self.assertEqual(self.attempts_header(resp), 1, resp)
        self.assertEqual(self.upstream.stats()["requests"], 1)
        self.assertEqual(doc.get("attempts"), 1, doc)


class ConnectFailureTest(RetryTestCase):
    """A refused connect sent nothing: it is retried whatever the method (SPEC 4.3)."""

    def connect_failure(self, unsafe):
        config = make_config({"demo": {"upstream": f"http://127.0.0.1:{closed_port()}/base"}},
                             defaults={"retry": retry(attempts=3, unsafe=unsafe),
                                       "circuit_breaker": {"enabled": False}})
        with Braced(config) as b:
            return b.request("POST", "/demo/orders", body=b"x")

    def assert_three_connect_attempts(self, resp):
        doc = self.assert_problem(resp, 502, "upstream_unavailable", profile="demo")
        self.assertEqual(self.attempts_header(resp), 3, resp)
        self.assertEqual(doc.get("attempts"), 3, doc)
        history = doc.get("history") or []
        self.assertEqual([h.get("attempt") for h in history], [1, 2, 3], doc)
        self.assertEqual([h.get("outcome") for h in history], ["connect"] * 3, doc)
        self.assertIs(doc.get("retryable"), True, doc)

    def test_post_connect_failure_is_retried(self):
        # Fails if connect failures are not retried or follow the method rule.
        self.assert_three_connect_attempts(self.connect_failure("with_key"))

    def test_post_connect_failure_is_retried_even_with_unsafe_never(self):
        # Fails if `unsafe: never` also stops retries of attempts that sent nothing.
        self.assert_three_connect_attempts(self.connect_failure("never"))


class ControlHeaderRetryTest(RetryTestCase):
    """Brace-Max-Attempts lowers retry.attempts and never raises it (SPEC 3)."""

    def test_brace_max_attempts_lowers_the_attempts(self):
        # Fails if the header is ignored (3 upstream requests).
        with Braced(self.retry_config()) as b:
            resp = b.get("/demo/x", headers=dict(fault(status=503), **{"Brace-Max-Attempts": "2"}))
        doc = self.assert_problem(resp, 503, "upstream_status", profile="demo")
        self.assertEqual(self.attempts_header(resp), 2, resp)
        self.assertEqual(doc.get("attempts"), 2, doc)
        self.assertEqual(self.upstream.stats()["requests"], 2)

    def test_brace_max_attempts_cannot_raise_the_configured_attempts(self):
        # Fails if the header loosens the policy (up to 99 upstream requests).
        with Braced(self.retry_config()) as b:
            resp = b.get("/demo/x", headers=dict(fault(status=503), **{"Brace-Max-Attempts": "99"}))
        self.assert_problem(resp, 503, "upstream_status", profile="demo")
        self.assertEqual(self.attempts_header(resp), 3, resp)
        self.assertEqual(self.upstream.stats()["requests"], 3)


class SlowUpstreamRetryTest(RetryTestCase):
    """Timeouts are retried inside the total budget, which ends the request (SPEC 4.1)."""

    def test_read_timeouts_retried_until_the_total_budget_ends(self):
        # Fails if the total budget does not cut the attempts (answer after
        # 2 s or later), if timeouts are not retried (1 attempt), or if the
        # history claims more time than passed.
        config = self.config(defaults={
            "retry": retry(attempts=4),
            "timeouts": {"read": "300ms", "total": "1s"},
            "circuit_breaker": {"enabled": False}})
        with Braced(config) as b:
            resp = b.get("/demo/slow", headers=fault(delay_ms=2000))
        doc = self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertLess(resp.elapsed, 2.0, "answered by the upstream delay, not the 1 s budget")
        history = doc.get("history") or []
        self.assertGreaterEqual(len(history), 2, doc)
        self.assertEqual(doc.get("attempts"), len(history), doc)
        self.assertEqual(self.attempts_header(resp), len(history), resp)
        self.assertEqual([h.get("attempt") for h in history], list(range(1, len(history) + 1)), doc)
        self.assertEqual({h.get("outcome") for h in history}, {"timeout"}, doc)
        spent = sum(h["ms"] + h["wait_ms"] for h in history)
        # Slack: each entry is rounded down to whole ms on its own (1 ms each).
        self.assertLessEqual(spent, doc["elapsed_ms"] + len(history), doc)
        self.assertLessEqual(doc["elapsed_ms"], 1000 + 100, doc)
        self.assertEqual(self.upstream.stats()["requests"], len(history))


class RetryAfterTest(RetryTestCase):
    """Retry-After and the rate-limit cool-down (SPEC 4.5, 4.6)."""

    def test_429_retry_after_is_waited_for_and_cools_down_the_profile(self):
        # Fails if the retry comes before Retry-After (backoff alone is
        # <= 50 ms here), or if another request of the profile is sent
        # upstream inside the cool-down window.
        self.upstream.script([{"status": 429, "headers": {"Retry-After": "1"}}, {}, {}])
        with Braced(self.retry_config()) as b:
            first = Background(b.get, "/demo/first")
            got_429 = wait_until(lambda: self.upstream.stats()["requests"] >= 1, timeout=5)
            self.assertTrue(got_429, "the first request never reached the upstream")
            time.sleep(0.2)         # braced has read the 429 by now
            second_sent = time.monotonic()
            second = b.get("/demo/second")
            first = first.result(timeout=10)
        log = self.upstream.received()
        self.assertEqual(first.status, 200, first)
        self.assertEqual(second.status, 200, second)
        self.assertEqual(self.attempts_header(first), 2, first)
        self.assertEqual(self.attempts_header(second), 1, second)
        self.assertEqual([r["status"] for r in log], [429, 200, 200], log)
        t429 = log[0]["t"]
        self.assertLess(second_sent, t429 + 0.9, "the second request was not sent inside the window")
        early = [(r["path"], round(r["t"] - t429, 6)) for r in log[1:] if r["t"] - t429 < 1.0]
        self.assertFalse(early, "requests reached the upstream less than 1 s after the 429 "
                                f"with Retry-After: 1 (path, s after): {early}")
        self.assertEqual({r["path"] for r in log[1:]}, {"/base/first", "/base/second"}, log)

    def test_503_retry_after_is_waited_for(self):
        # Fails if Retry-After is honoured on 429 only (SPEC 4.5: 429 or 503).
        self.upstream.script([{"status": 503, "headers": {"Retry-After": "1"}}, {}])
        with Braced(self.retry_config()) as b:
            resp = b.get("/demo/x")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.attempts_header(resp), 2, resp)
        log = self.upstream.received()
        self.assertEqual(len(log), 2, log)
        gap = log[1]["t"] - log[0]["t"]
        self.assertGreaterEqual(gap, 1.0, f"retried {gap:.6f} s after a 503 with Retry-After: 1")

    def test_retry_after_beyond_the_budget_answers_429_at_once(self):
        # Fails if braced waits (or waits out the 10 s budget), if the code
        # is not rate_limited, if Retry-After is not passed on, or if the
        # cool-down does not keep the next request away from the upstream.
        self.upstream.script([{"status": 429, "headers": {"Retry-After": "60"}, "body": "slow down"}])
        # retry_after.max 2m: only the 10 s budget is too short for the 60 s asked.
        config = self.config(defaults={
            "retry": retry(attempts=3, retry_after={"honor": True, "max": "2m"}),
            "timeouts": {"total": "10s"}, "circuit_breaker": {"enabled": False},
            "upstream_errors": "envelope"})
        with Braced(config) as b:
            resp = b.get("/demo/x")
            again = b.get("/demo/y")
        doc = self.assert_problem(resp, 429, "rate_limited", profile="demo")
        self.assertLess(resp.elapsed, 1.0, "braced waited instead of answering at once")
        self.assertEqual(self.attempts_header(resp), 1, resp)
        self.assertIsNotNone(resp.headers.get("Retry-After"), resp)
        self.assertTrue(58 <= int(resp.headers["Retry-After"]) <= 60, resp)
        self.assertTrue(58000 <= doc.get("retry_after_ms", -1) <= 60000, doc)
        again_doc = self.assert_problem(again, 429, "rate_limited", profile="demo")
        self.assertLess(again.elapsed, 1.0, again)
        self.assertIsNotNone(again.headers.get("Retry-After"), again)
        self.assertTrue(55000 <= again_doc.get("retry_after_ms", -1) <= 60000, again_doc)
        self.assertEqual(self.attempts_header(again), 0, again)
        self.assertEqual(self.upstream.stats()["by_path"], {"/base/x": 1},
                         "a request reached the upstream inside the cool-down window")

    def test_retry_after_beyond_retry_after_max_answers_429_at_once(self):
        # Fails if retry_after.max is ignored (braced would wait 3 s and retry).
        self.upstream.script([{"status": 429, "headers": {"Retry-After": "3"}}, {}])
        config = self.config(defaults={
            "retry": retry(attempts=3, retry_after={"honor": True, "max": "2s"}),
            "timeouts": {"total": "10s"}, "circuit_breaker": {"enabled": False},
            "upstream_errors": "envelope"})
        with Braced(config) as b:
            resp = b.get("/demo/x")
        doc = self.assert_problem(resp, 429, "rate_limited", profile="demo")
        self.assertLess(resp.elapsed, 1.0, "braced waited instead of answering at once")
        # The app is told no more than braced itself holds the profile for.
        self.assertEqual(resp.headers.get("Retry-After"), "2", resp)
        self.assertEqual(doc.get("retry_after_ms"), 2000, doc)
        self.assertEqual(self.upstream.stats()["requests"], 1)


class RetryBudgetTest(RetryTestCase):
    """SPEC 4.7: in an outage retries add at most ratio × requests + min_per_second × window."""

    N = 200
    THREADS = 20

    def test_outage_retries_stay_inside_the_budget(self):
        # Fails if retries ignore the budget (up to 4 × 200 = 800 upstream
        # requests) or if nothing is retried at all (the 10 tokens of
        # min_per_second × window must be usable).
        config = self.config(defaults={
            "retry": retry(attempts=4, budget={"ratio": 0.2, "min_per_second": 1, "window": "10s"}),
            "circuit_breaker": {"enabled": False}})
        self.upstream.set_default({"status": 503})
        with Braced(config) as b:
            per_thread = self.N // self.THREADS

            def client(i):
                return [request(b.port, "GET", f"/demo/t{i}/{j}", timeout=10)
                        for j in range(per_thread)]

            start = time.monotonic()
            results = in_threads(client, [(i,) for i in range(self.THREADS)], timeout=20)
            took = time.monotonic() - start
        errors = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(errors, [], "clients failed")
        answers = [resp for batch in results for resp in batch]
        self.assertEqual(len(answers), self.N)
        # The budget's window is 10 s: the whole run must fit in it for the bound to hold.
        self.assertLess(took, 9.0, "the run outlasted the budget window; the bound would not hold")
        for resp in answers:
            self.assertEqual(resp.headers.get("Brace-Error"), "upstream_status", resp)
        upstream = self.upstream.stats()["requests"]
        told = sum(int(resp.headers["Brace-Attempts"]) for resp in answers)
        self.assertEqual(told, upstream, "Brace-Attempts does not add up to the upstream's count")
        # Slack 0: every retry is withdrawn from the budget when it is decided
        # (one event loop, no attempt in flight escapes the count).
        bound = (1 + 0.2) * self.N + 1 * 10
        self.assertLessEqual(upstream, bound, f"{upstream} upstream requests for {self.N}")
        self.assertGreaterEqual(upstream, self.N + 10, f"only {upstream} upstream requests")


if __name__ == "__main__":
    unittest.main()
