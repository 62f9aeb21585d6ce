"""The defaults a new user gets (SPEC 3 and 5): a POST is never sent twice
on the strength of a key braced minted itself, upstream errors reach the
app as the upstream sent them, and braced's own errors are problem+json
ending with a newline, with a Date."""

import email.utils
import json

from harness import Braced, BracedTestCase, fault

HANG = {"delay_ms": 2000}          # longer than the read timeout below
READ = "300ms"


class MintedKeyIsNoLicence(BracedTestCase):
    """retry.unsafe: with_key (the default) with a key braced minted: a retry
    only after answers that show the upstream did not act."""

    def braced(self, profile_extra=None):
        profile = {"timeouts": {"read": READ, "total": "5s"},
                   "retry": {"attempts": 3, "backoff": {"base": "10ms", "max": "10ms"}}}
        profile.update(profile_extra or {})
        return Braced(self.config(profile))

    def posts(self):
        return [r for r in self.upstream.received() if r["method"] == "POST"]

    def keys(self):
        return [[v for n, v in r["headers"] if n.lower() == "idempotency-key"] for r in self.posts()]

    def assert_retried_with_one_key(self, resp):
        """Answered after a second attempt, both sent with the same key."""
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.headers.get("Brace-Attempts"), "2", resp)
        keys = self.keys()
        self.assertEqual(len(keys), 2)
        self.assertEqual(keys[0], keys[1])

    def test_a_post_that_timed_out_is_not_sent_again(self):
        self.upstream.set_default(HANG)
        with self.braced() as b:
            resp = b.request("POST", "/demo/payments", body=b'{"amount": 100}')
        doc = self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertEqual(len(self.posts()), 1, "the upstream received the payment twice")
        self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
        self.assertEqual([h["outcome"] for h in doc["history"]], ["timeout"], doc)
        # The key braced minted is still sent and told to the app.
        self.assertEqual(len(self.keys()[0]), 1)
        self.assertEqual(resp.headers.get("Idempotency-Key"), self.keys()[0][0])

    def test_a_post_that_was_reset_is_not_sent_again(self):
        self.upstream.set_default({"reset": True})
        with self.braced() as b:
            resp = b.request("POST", "/demo/payments", body=b"{}")
        self.assert_problem(resp, 502, "upstream_unavailable", profile="demo")
        self.assertEqual(len(self.posts()), 1)

    def test_a_post_that_got_a_502_is_not_sent_again(self):
        self.upstream.script([{"status": 502, "body": "bad gateway"}, {}])
        with self.braced() as b:
            resp = b.request("POST", "/demo/payments", body=b"{}")
        self.assert_upstream_error(resp, 502)
        self.assertEqual(resp.body, b"bad gateway")
        self.assertEqual(len(self.posts()), 1)

    def test_a_post_that_got_a_503_or_429_is_retried_with_the_same_key(self):
        for status in (503, 429):
            with self.subTest(status=status):
                self.upstream.reset()
                self.upstream.script([{"status": status}, {}])
                with self.braced() as b:
                    resp = b.request("POST", "/demo/payments", body=b"{}")
                self.assert_retried_with_one_key(resp)

    def test_the_apps_own_key_allows_a_retry_after_a_timeout(self):
        self.upstream.script([HANG, {}])
        with self.braced() as b:
            resp = b.request("POST", "/demo/payments", body=b"{}",
                             headers={"Idempotency-Key": "order-77"})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(len(self.posts()), 2)
        self.assertEqual(self.keys(), [["order-77"], ["order-77"]])

    def test_honored_allows_a_retry_with_a_minted_key(self):
        self.upstream.script([HANG, {}])
        with self.braced({"idempotency": {"honored": True}}) as b:
            resp = b.request("POST", "/demo/payments", body=b"{}")
        self.assert_retried_with_one_key(resp)

    def test_a_connect_timeout_is_outcome_connect_and_retried_for_a_post(self):
        config = self.config({"upstream": f"http://127.0.0.1:{self.upstream.blackhole_port}/base",
                              "timeouts": {"connect": "200ms", "total": "5s"},
                              "retry": {"attempts": 2, "unsafe": "never",
                                        "backoff": {"base": "10ms", "max": "10ms"}}})
        with Braced(config) as b:
            resp = b.request("POST", "/demo/payments", body=b"{}")
        doc = self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
        self.assertEqual([h["outcome"] for h in doc["history"]], ["connect", "connect"], doc)
        self.assertEqual(resp.headers.get("Brace-Attempts"), "2", resp)


class TransparentErrors(BracedTestCase):
    def test_an_apis_own_error_reaches_the_app_as_sent(self):
        body = '{"error": "no such payment"}'
        action = {"status": 404, "body": body, "headers": {"Content-Type": "application/json"}}
        with Braced(self.config()) as b:
            resp = b.get("/demo/payments/9", headers=fault(**action))
        self.assert_upstream_error(resp, 404)
        self.assertEqual(resp.headers.get("Content-Type"), "application/json")
        self.assertEqual(resp.json(), {"error": "no such payment"})

    def test_braceds_own_errors_end_with_a_newline_and_carry_a_date(self):
        with Braced(self.config()) as b:
            for path in ("/nosuch/x", "/demo/../x"):
                with self.subTest(path=path):
                    resp = b.get(path)
                    self.assertTrue(resp.headers.get("Content-Type", "")
                                    .startswith("application/problem+json"), resp)
                    self.assertTrue(resp.body.endswith(b"}\n"), resp.body)
                    json.loads(resp.body)
                    date = resp.headers.get("Date")
                    self.assertIsNotNone(date, resp)
                    self.assertIsNotNone(email.utils.parsedate_to_datetime(date), date)
                    self.assertTrue(date.endswith(" GMT"), date)


class Routes(BracedTestCase):
    def test_a_get_route_answers_head(self):
        profile = {"routes_only": True, "routes": [{"match": "GET /v1/weather"}]}
        with Braced(self.config(profile)) as b:
            resp = b.request("HEAD", "/demo/v1/weather")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual([(r["method"], r["path"]) for r in self.upstream.received()],
                         [("HEAD", "/base/v1/weather")])

    def test_a_colon_segment_points_at_the_placeholder(self):
        profile = {"routes": [{"match": "GET /users/:id/orders"}]}
        code, out, err = Braced(self.config(profile)).check_config()
        self.assertEqual(code, 1, out + err)
        self.assertIn("':id' is not a placeholder: write '{id}'", err)


class NothingSentNoMintedKey(BracedTestCase):
    """A request refused before anything was sent names no key braced
    minted for it; a key the app sent is still told back."""

    def braced(self):
        route = {"match": "POST /orders",
                 "request": {"body": {"type": "object", "required": ["amount"]}, "mode": "enforce"}}
        return Braced(self.config({"routes": [route]}))

    def test_request_invalid_carries_no_minted_key(self):
        with self.braced() as b:
            resp = b.request("POST", "/demo/orders", body=b"{}",
                             headers={"Content-Type": "application/json"})
        doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
        self.assertNotIn("idempotency_key", doc)
        self.assertIsNone(resp.headers.get("Idempotency-Key"), resp)
        self.assert_upstream_untouched()

    def test_request_invalid_tells_the_apps_own_key(self):
        with self.braced() as b:
            resp = b.request("POST", "/demo/orders", body=b"{}",
                             headers={"Content-Type": "application/json",
                                      "Idempotency-Key": "order-9"})
        doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
        self.assertEqual(doc.get("idempotency_key"), "order-9", doc)
        self.assertEqual(resp.headers.get("Idempotency-Key"), "order-9", resp)
