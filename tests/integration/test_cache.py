"""The response cache (SPEC 4.13): with a store (cache.max_bytes above 0)
and cache.enabled, GET and HEAD answers are kept by key and answer later
requests from memory (Brace-Cache: hit); a stale entry is revalidated with
its validators, answers at once within stale_while_revalidate, and stands in
for a failed exchange within stale_if_error (Brace-Cache: stale-if-error,
Brace-Error-Avoided); identical requests in flight share one exchange; what
must not be kept (no-store, Set-Cookie, Vary: *, other statuses, no
lifetime, a schema failure, an answer above max_entry) is relayed and never
answers another request.

Every answer under test is scripted on the test upstream with a body of its
own, so which exchange a body came from shows; the upstream's request count
and log show what reached it.
"""

import email.utils
import socket
import threading
import time
import unittest

from endpoints import metric, status
from harness import (Background, Braced, BracedTestCase, UpstreamProcess, in_threads, make_config,
                     merge, request, wait_until)

NO_RETRY = {"attempts": 1}
NO_BREAKER = {"enabled": False}
STORE = {"max_bytes": "8MiB", "max_entry": "1MiB"}
CACHE = {"enabled": True, "ttl": "60s"}
FRESH = {"Cache-Control": "max-age=60"}
STALE = {"Cache-Control": "max-age=0"}     # kept, stale at once


def answer(body, headers=None, status=200, **extra):
    """An upstream action: `status`, `headers` and the text `body`."""
    return dict({"status": status, "headers": dict(headers or {}), "body": body}, **extra)


def http_date(offset=0.0):
    """An HTTP-date `offset` seconds from now."""
    return email.utils.formatdate(time.time() + offset, usegmt=True)


def cache_of(resp):
    return resp.headers.get("Brace-Cache")


def sent_header(entry, name):
    """Values of header `name` in one entry of the upstream's request log."""
    return [v for n, v in entry["headers"] if n.lower() == name.lower()]


class CacheTestCase(BracedTestCase):
    """One profile `demo` with a cache, an admin listener and one attempt per request."""

    def cache_config(self, cache=None, store=None, routes=None, defaults=None, profile=None):
        prof = {"cache": merge(CACHE, cache)}
        if routes is not None:
            prof["routes"] = routes
        prof = merge(prof, profile)
        return self.config(prof, admin="127.0.0.1:0", cache=merge(STORE, store),
                           defaults=merge({"retry": NO_RETRY}, defaults))

    def count(self):
        return self.upstream.stats()["requests"]

    def assert_hit(self, resp, body):
        """resp came from a fresh entry: `body`, Brace-Cache: hit, Age, no attempt."""
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(cache_of(resp), "hit", resp)
        self.assertEqual(resp.headers.get("Brace-Attempts"), "0", resp)
        age = resp.headers.get("Age")
        self.assertTrue(age is not None and age.isdigit(), f"no Age on a hit: {resp}")
        self.assertEqual(resp.body, body, resp)

    def assert_stood_in(self, resp, body, code):
        """resp is the kept answer standing in for a failure `code`."""
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(cache_of(resp), "stale-if-error", resp)
        self.assertEqual(resp.headers.get("Brace-Error-Avoided"), code, resp)
        age = resp.headers.get("Age")
        self.assertTrue(age is not None and age.isdigit(), f"no Age on a stand-in: {resp}")
        self.assertEqual(resp.body, body, resp)


class HitAndMissTest(CacheTestCase):
    """What a kept answer gives the app: the same answer, from memory, at once."""

    def test_second_get_is_a_hit_and_the_upstream_is_asked_once(self):
        # Fails if the second GET reaches the upstream, or lacks Brace-Cache: hit,
        # Age or Brace-Attempts: 0, or its body is not the first one's.
        self.upstream.script([answer("first", FRESH), answer("second", FRESH)])
        with Braced(self.cache_config()) as b:
            first = b.get("/demo/item")
            self.assertEqual((first.status, first.body), (200, b"first"), first)
            self.assertEqual(cache_of(first), "miss", first)
            second = b.get("/demo/item")
            self.assert_hit(second, b"first")
            self.assertEqual(second.headers.get("Cache-Control"), "max-age=60", second)
            self.assertEqual(self.count(), 1)

    def test_head_is_kept_apart_from_get(self):
        # A GET's entry must not answer a HEAD (nor the other way round).
        self.upstream.set_default(answer("body", FRESH))
        with Braced(self.cache_config()) as b:
            self.assertEqual(cache_of(b.get("/demo/h")), "miss")
            head = b.request("HEAD", "/demo/h")
            self.assertEqual((head.status, cache_of(head), head.body), (200, "miss", b""), head)
            self.assertEqual([r["method"] for r in self.upstream.received()], ["GET", "HEAD"])
            head = b.request("HEAD", "/demo/h")
            self.assertEqual((head.status, cache_of(head), head.body), (200, "hit", b""), head)
            self.assert_hit(b.get("/demo/h"), b"body")
            self.assertEqual(self.count(), 2)

    def test_path_and_query_are_in_the_key(self):
        self.upstream.set_default({"headers": FRESH})   # the echo: each body names its request
        with Braced(self.cache_config()) as b:
            a = b.get("/demo/q?x=1")
            c = b.get("/demo/q?x=2")
            d = b.get("/demo/r?x=1")
            self.assertEqual([cache_of(r) for r in (a, c, d)], ["miss"] * 3)
            self.assert_hit(b.get("/demo/q?x=1"), a.body)
            self.assert_hit(b.get("/demo/q?x=2"), c.body)
            self.assertEqual(self.count(), 3)

    def test_paths_the_upstream_may_tell_apart_keep_apart(self):
        # Routing reads a normalized path (";parameters" cut, case folded
        # under match_case: insensitive); the key is the path as sent.
        self.upstream.set_default({"headers": FRESH})
        with Braced(self.cache_config(profile={"match_case": "insensitive"})) as b:
            paths = ["/demo/items;v=1", "/demo/items;v=2", "/demo/Items", "/demo/items"]
            first = [b.get(p) for p in paths]
            self.assertEqual([cache_of(r) for r in first], ["miss"] * 4)
            for p, r in zip(paths, first):
                self.assert_hit(b.get(p), r.body)
            self.assertEqual(self.count(), 4)

    def test_a_route_without_the_cache_has_no_brace_cache(self):
        routes = [{"match": "GET /live/**", "cache": {"enabled": False}}]
        self.upstream.set_default(answer("x", FRESH))
        with Braced(self.cache_config(routes=routes)) as b:
            for _ in range(2):
                resp = b.get("/demo/live/1")
                self.assertEqual(resp.status, 200, resp)
                self.assertIsNone(cache_of(resp), resp)
            self.assertEqual(self.count(), 2)


class BypassTest(CacheTestCase):
    """Requests that do not use the cache go to the upstream and are marked bypass."""

    def test_requests_that_bypass_the_cache(self):
        # Each row first finds a kept entry for its path; a bypassing request
        # must neither be answered from it nor replace it.
        rows = [
            ("POST", {}),
            ("GET", {"Authorization": "Bearer user-a"}),
            ("GET", {"Cookie": "session=abc"}),
            ("GET", {"Cache-Control": "no-store"}),
            ("GET", {"If-None-Match": '"v1"'}),
            ("GET", {"If-Modified-Since": http_date(-3600)}),
            ("GET", {"Range": "bytes=0-1"}),
            ("GET", {"If-Match": '"v1"'}),
            ("GET", {"If-Unmodified-Since": http_date(-3600)}),
            ("GET", {"If-Range": '"v1"', "Range": "bytes=0-1"}),
        ]
        with Braced(self.cache_config()) as b:
            for i, (method, headers) in enumerate(rows):
                with self.subTest(method=method, headers=headers):
                    path = f"/demo/bypass/{i}"
                    self.upstream.reset()
                    self.upstream.script([answer("kept", FRESH), answer("fresh-from-upstream", FRESH)])
                    self.assertEqual(cache_of(b.get(path)), "miss")
                    before = self.count()
                    resp = b.request(method, path, headers=headers)
                    self.assertEqual(cache_of(resp), "bypass", resp)
                    self.assertEqual(resp.body, b"fresh-from-upstream", resp)
                    self.assertEqual(self.count(), before + 1)
                    if method == "GET":     # (an unsafe method may invalidate the entry)
                        self.assert_hit(b.get(path), b"kept")

    def test_authorization_in_key_headers_keeps_one_entry_per_credential(self):
        # A user's answer must never be given to another user's request.
        self.upstream.set_default({"headers": FRESH})   # the echo names the Authorization sent
        with Braced(self.cache_config({"key_headers": ["Authorization"]})) as b:
            a = b.get("/demo/me", headers={"Authorization": "Bearer token-a"})
            c = b.get("/demo/me", headers={"Authorization": "Bearer token-b"})
            self.assertEqual((cache_of(a), cache_of(c)), ("miss", "miss"), (a, c))
            self.assertEqual(self.count(), 2)
            self.assertIn(b"token-a", a.body)
            self.assertIn(b"token-b", c.body)
            self.assert_hit(b.get("/demo/me", headers={"Authorization": "Bearer token-a"}), a.body)
            self.assert_hit(b.get("/demo/me", headers={"Authorization": "Bearer token-b"}), c.body)
            anonymous = b.get("/demo/me")
            self.assertEqual(cache_of(anonymous), "miss", anonymous)
            self.assertEqual(self.count(), 3)

    def test_key_headers_keep_one_entry_per_value_without_vary(self):
        self.upstream.set_default({"headers": FRESH})
        with Braced(self.cache_config({"key_headers": ["Accept-Language"]})) as b:
            en = b.get("/demo/lang", headers={"Accept-Language": "en"})
            fr = b.get("/demo/lang", headers={"Accept-Language": "fr"})
            self.assertEqual((cache_of(en), cache_of(fr)), ("miss", "miss"), (en, fr))
            self.assert_hit(b.get("/demo/lang", headers={"Accept-Language": "fr"}), fr.body)
            self.assert_hit(b.get("/demo/lang", headers={"Accept-Language": "en"}), en.body)
            self.assertEqual(self.count(), 2)


class WhatIsKeptTest(CacheTestCase):
    """Only answers a cache may keep are kept; the others are still relayed whole."""

    def check_not_kept(self, b, path, action, status=200, second_body="second"):
        """`action` is relayed as it is, twice: the second GET of `path` is
        not answered from memory (the upstream answers it with `second_body`)."""
        self.upstream.reset()
        self.upstream.script([action])
        self.upstream.set_default(dict(action, body=second_body))
        first = b.get(path)
        self.assertEqual(first.status, status, first)
        self.assertEqual(first.body, action["body"].encode(), first)
        self.assertEqual(cache_of(first), "miss", first)
        second = b.get(path)
        self.assertEqual(second.status, status, second)
        self.assertEqual(second.body, second_body.encode(), f"kept: {action}: {second}")
        self.assertEqual(cache_of(second), "miss", second)
        self.assertEqual(self.count(), 2, f"kept: {action}")

    def test_answers_that_are_not_kept(self):
        rows = [
            (answer("a", {"Cache-Control": "no-store, max-age=60"}), 200),
            (answer("a", {"Cache-Control": "max-age=60", "Set-Cookie": "s=1; Path=/"}), 200),
            (answer("a", {"Cache-Control": "max-age=60", "Vary": "*"}), 200),
            (answer("a", FRESH, status=500), 500),
            (answer("a", FRESH, status=201), 201),
            (answer("a", {"Cache-Control": "max-age=60", "Location": "/elsewhere"}, status=302), 302),
            (answer("a", FRESH, status=206), 206),
        ]
        with Braced(self.cache_config(defaults={"circuit_breaker": NO_BREAKER})) as b:
            for i, (action, code) in enumerate(rows):
                with self.subTest(action=action):
                    self.check_not_kept(b, f"/demo/not-kept/{i}", action, code)

    def test_an_answer_without_a_lifetime_is_not_kept_with_ttl_0(self):
        with Braced(self.cache_config({"ttl": "0s"})) as b:
            self.check_not_kept(b, "/demo/no-lifetime", answer("a"))
            self.check_not_kept(b, "/demo/no-lifetime-date", answer("a", {"Date": http_date()}))

    def test_answers_failing_the_response_schema_are_not_kept(self):
        schema = {"type": "object", "required": ["ok"]}
        routes = [{"match": "GET /enforced", "response": {"body": schema, "mode": "enforce"}},
                  {"match": "GET /reported", "response": {"body": schema, "mode": "report"}}]
        bad = answer('{"drifted": true}', dict(FRESH, **{"Content-Type": "application/json"}))
        with Braced(self.cache_config(routes=routes, defaults={"circuit_breaker": NO_BREAKER})) as b:
            for _ in range(2):
                self.upstream.script([bad])
                resp = b.get("/demo/enforced")
                self.assert_problem(resp, 502, "schema_violation", profile="demo")
                self.assertNotEqual(cache_of(resp), "hit", resp)
            self.assertEqual(self.count(), 2)
            # report mode relays the drifted answer, but never from memory.
            self.check_not_kept(b, "/demo/reported", bad)

    def test_an_answer_larger_than_max_entry_is_relayed_whole_and_not_kept(self):
        big = "".join(f"{i:07d}\n" for i in range(8192))       # 64 KiB, each line distinct
        other = big.replace("\n", "+")
        with Braced(self.cache_config(store={"max_entry": "16KiB"})) as b:
            self.check_not_kept(b, "/demo/big", answer(big, FRESH), second_body=other)
            self.check_not_kept(b, "/demo/big-chunked", answer(big, FRESH, chunked=True),
                                second_body=other)
            self.assertEqual(status(b)["cache"], {"max_bytes": 8 * 1024 * 1024, "bytes": 0, "entries": 0})

    def test_answers_that_are_kept(self):
        rows = [
            answer("max-age", FRESH),
            answer("expires", {"Date": http_date(), "Expires": http_date(120)}),
            answer("ttl"),                                  # the route's ttl (60 s)
            answer("chunked", FRESH, chunked=True),         # streamed, within max_entry
            answer("not-found", FRESH, status=404),
            answer("gone", FRESH, status=410),
            answer("ttl-404", status=404),
            answer("203", FRESH, status=203),
            answer("", FRESH, status=204),
            answer("moved", {"Cache-Control": "max-age=60", "Location": "/x"}, status=301),
        ]
        with Braced(self.cache_config()) as b:
            for i, action in enumerate(rows):
                with self.subTest(action=action):
                    path = f"/demo/kept/{i}"
                    self.upstream.reset()
                    self.upstream.script([action])
                    self.upstream.set_default(dict(action, body="second"))
                    first = b.get(path)
                    self.assertEqual((first.status, cache_of(first)), (action["status"], "miss"), first)
                    second = b.get(path)
                    self.assertEqual(second.status, action["status"], second)
                    self.assertEqual(cache_of(second), "hit", f"not kept: {action}: {second}")
                    self.assertEqual(second.body, action["body"].encode(), second)
                    self.assertEqual(self.count(), 1)

    def test_an_expires_in_the_past_is_not_fresh(self):
        with Braced(self.cache_config()) as b:
            action = answer("a", {"Date": http_date(), "Expires": http_date(-60)})
            self.upstream.script([action, dict(action, body="second")])
            b.get("/demo/expired")
            second = b.get("/demo/expired")
            self.assertNotEqual(cache_of(second), "hit", second)
            self.assertEqual(second.body, b"second", second)
            self.assertEqual(self.count(), 2)


class FreshnessTest(CacheTestCase):

    def test_app_no_cache_skips_a_fresh_entry(self):
        # The app asks for a current answer: the upstream is asked, and what
        # it says replaces the entry.
        self.upstream.script([answer("old", FRESH), answer("new", FRESH)])
        with Braced(self.cache_config()) as b:
            b.get("/demo/nc")
            resp = b.get("/demo/nc", headers={"Cache-Control": "no-cache"})
            self.assertEqual((resp.status, resp.body), (200, b"new"), resp)
            self.assertNotEqual(cache_of(resp), "hit", resp)
            self.assertEqual(self.count(), 2)
            self.assert_hit(b.get("/demo/nc"), b"new")

    def test_vary_keeps_one_entry_per_value(self):
        self.upstream.set_default({"headers": {"Cache-Control": "max-age=60", "Vary": "Accept"}})
        with Braced(self.cache_config()) as b:
            j = b.get("/demo/v", headers={"Accept": "application/json"})
            t = b.get("/demo/v", headers={"Accept": "text/plain"})
            self.assertEqual((cache_of(j), cache_of(t)), ("miss", "miss"), (j, t))
            self.assertIn(b"application/json", j.body)
            self.assertIn(b"text/plain", t.body)
            self.assert_hit(b.get("/demo/v", headers={"Accept": "text/plain"}), t.body)
            self.assert_hit(b.get("/demo/v", headers={"Accept": "application/json"}), j.body)
            self.assertEqual(self.count(), 2)

    def check_revalidated(self, validator, condition):
        """An entry kept with `validator` is asked with `condition`: a 304 refreshes it."""
        name, value = validator
        self.upstream.script([answer("original", {"Cache-Control": "max-age=0", name: value}),
                              {"status": 304, "headers": {name: value, "Cache-Control": "max-age=60"}}])
        with Braced(self.cache_config()) as b:
            self.assertEqual(cache_of(b.get("/demo/rv")), "miss")
            resp = b.get("/demo/rv")
            self.assertEqual((resp.status, resp.body), (200, b"original"), resp)
            self.assertEqual(cache_of(resp), "revalidated", resp)
            sent = self.upstream.received()
            self.assertEqual(len(sent), 2)
            self.assertEqual(sent_header(sent[1], condition), [value], sent[1])
            self.assertEqual(sent_header(sent[0], condition), [], sent[0])
            self.assert_hit(b.get("/demo/rv"), b"original")
            self.assertEqual(self.count(), 2)

    def test_etag_is_revalidated_with_if_none_match(self):
        self.check_revalidated(("ETag", '"v1-abc"'), "If-None-Match")

    def test_last_modified_is_revalidated_with_if_modified_since(self):
        self.check_revalidated(("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT"), "If-Modified-Since")

    def test_a_revalidation_answered_with_a_new_body_replaces_the_entry(self):
        self.upstream.script([answer("v1", {"Cache-Control": "max-age=0", "ETag": '"1"'}),
                              answer("v2", {"Cache-Control": "max-age=60", "ETag": '"2"'})])
        with Braced(self.cache_config()) as b:
            b.get("/demo/nb")
            resp = b.get("/demo/nb")
            self.assertEqual((resp.status, resp.body), (200, b"v2"), resp)
            self.assertNotIn(cache_of(resp), ("hit", "revalidated"), resp)
            self.assert_hit(b.get("/demo/nb"), b"v2")

    def test_stale_while_revalidate_answers_at_once_and_refreshes_once(self):
        # Fails if the stale answer waits for the slow upstream, if no
        # refresh reaches it, if requests during the refresh start more of
        # them, or if the refreshed entry does not answer afterwards.
        self.upstream.script([answer("old", STALE), answer("new", FRESH, delay_ms=1500)])
        with Braced(self.cache_config({"stale_while_revalidate": "30s"})) as b:
            self.assertEqual(cache_of(b.get("/demo/swr")), "miss")
            resp = b.get("/demo/swr")
            self.assertEqual((resp.status, resp.body, cache_of(resp)), (200, b"old", "stale"), resp)
            self.assertIsNotNone(resp.headers.get("Age"), resp)
            self.assertLess(resp.elapsed, 0.5, "a stale answer waited for the refresh")
            self.assertTrue(wait_until(lambda: self.count() == 2, 3), "no refresh reached the upstream")
            again = b.get("/demo/swr")
            self.assertEqual((again.body, cache_of(again)), (b"old", "stale"), again)
            done = wait_until(lambda: cache_of(b.get("/demo/swr")) == "hit", 5, step=0.1)
            self.assertTrue(done, "the refreshed entry never answered")
            self.assert_hit(b.get("/demo/swr"), b"new")
            self.assertEqual(self.count(), 2, "more than one refresh")


class StaleIfErrorTest(CacheTestCase):
    """A kept answer stands in when the exchange fails, within stale_if_error."""

    SIE = {"stale_if_error": "300s"}

    def warm(self, b, path="/demo/sie", body="kept"):
        self.upstream.script([answer(body, STALE)])
        first = b.get(path)
        self.assertEqual((first.status, cache_of(first)), (200, "miss"), first)

    def test_upstream_5xx(self):
        with Braced(self.cache_config(self.SIE)) as b:
            self.warm(b)
            self.upstream.script([answer("down", status=503)])
            self.assert_stood_in(b.get("/demo/sie"), b"kept", "upstream_status")
            self.assertEqual(self.count(), 2)
            self.assertEqual(metric(b, 'braced_cache_requests_total{profile="demo",result="stale_if_error"}'), 1)

    def test_an_entry_that_may_stand_in_answers_at_the_first_failure(self):
        # The route retries up to 4 times; with an entry able to stand in,
        # the first 503 is answered from it and the upstream is asked once.
        with Braced(self.cache_config(self.SIE, defaults={"retry": {"attempts": 4}})) as b:
            self.warm(b)
            self.upstream.set_default(answer("down", status=503))
            resp = b.get("/demo/sie")
            self.assert_stood_in(resp, b"kept", "upstream_status")
            self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
            self.assertEqual(self.count(), 2)
            # with no entry the route's retries apply
            other = b.get("/demo/none")
            self.assertEqual(other.headers.get("Brace-Attempts"), "4", other)

    def test_upstream_unavailable(self):
        own = UpstreamProcess()
        self.addCleanup(own.stop)
        cfg = make_config({"demo": {"upstream": own.url("/base"), "cache": merge(CACHE, self.SIE)}},
                          admin="127.0.0.1:0", cache=STORE,
                          defaults={"retry": NO_RETRY, "circuit_breaker": NO_BREAKER})
        with Braced(cfg) as b:
            own.script([answer("kept", STALE)])
            self.assertEqual(cache_of(b.get("/demo/sie")), "miss")
            own.stop()
            self.assert_stood_in(b.get("/demo/sie"), b"kept", "upstream_unavailable")

    def test_upstream_timeout(self):
        routes = [{"match": "GET /sie", "timeouts": {"total": "300ms"}}]
        with Braced(self.cache_config(self.SIE, routes=routes)) as b:
            self.warm(b)
            self.upstream.script([answer("late", FRESH, delay_ms=3000)])
            resp = b.get("/demo/sie")
            self.assert_stood_in(resp, b"kept", "upstream_timeout")
            self.assertLess(resp.elapsed, 1.5, resp)

    def test_circuit_open(self):
        breaker = {"enabled": True, "window": "10s", "min_requests": 3, "failure_ratio": 0.5,
                   "open_for": "30s", "half_open_probes": 1}
        with Braced(self.cache_config(self.SIE, defaults={"circuit_breaker": breaker})) as b:
            self.warm(b)
            self.upstream.set_default({"status": 503})
            for i in range(2):      # with the success: 3 requests, 2 failed
                self.assert_upstream_error(b.get(f"/demo/failing/{i}"), 503)
            self.assert_problem(b.get("/demo/failing/open"), 503, "circuit_open", profile="demo")
            before = self.count()
            self.assert_stood_in(b.get("/demo/sie"), b"kept", "circuit_open")
            self.assertEqual(self.count(), before, "sent upstream while the breaker was open")

    def test_rate_limited(self):
        routes = [{"match": "GET /sie", "rate_limit": {"rate": "1/m", "queue": "0s"}}]
        with Braced(self.cache_config(self.SIE, routes=routes)) as b:
            self.warm(b)
            self.assert_stood_in(b.get("/demo/sie"), b"kept", "rate_limited")
            self.assertEqual(self.count(), 1)

    def test_schema_violation(self):
        schema = {"type": "object", "required": ["ok"]}
        routes = [{"match": "GET /sie", "response": {"body": schema, "mode": "enforce"}}]
        with Braced(self.cache_config(self.SIE, routes=routes)) as b:
            self.warm(b, body='{"ok": true}')
            self.upstream.script([answer('{"drifted": true}', FRESH)])
            self.assert_stood_in(b.get("/demo/sie"), b'{"ok": true}', "schema_violation")

    def test_the_answers_own_stale_if_error_counts(self):
        # stale_if_error is 0 in the configuration; the answer allows 300 s.
        with Braced(self.cache_config({"stale_if_error": "0s"})) as b:
            self.upstream.script([answer("kept", {"Cache-Control": "max-age=0, stale-if-error=300"}),
                                  answer("down", status=503)])
            self.assertEqual(cache_of(b.get("/demo/own")), "miss")
            self.assert_stood_in(b.get("/demo/own"), b"kept", "upstream_status")

    def test_without_stale_if_error_the_failure_comes_back(self):
        with Braced(self.cache_config({"stale_if_error": "0s"})) as b:
            self.warm(b)
            self.upstream.script([answer("down", status=503)])
            resp = b.get("/demo/sie")
            self.assert_upstream_error(resp, 503)
            self.assertEqual(resp.body, b"down", resp)
            self.assertIsNone(resp.headers.get("Brace-Error-Avoided"), resp)

    def test_beyond_stale_if_error_the_failure_comes_back(self):
        with Braced(self.cache_config({"stale_if_error": "1s"})) as b:
            self.warm(b)
            self.upstream.script([answer("down", status=503)])
            self.assert_stood_in(b.get("/demo/sie"), b"kept", "upstream_status")
            self.upstream.script([answer("fresh", FRESH)])
            b.get("/demo/fresh")
            time.sleep(2.2)                     # stale by more than 1 s, in whole seconds too
            hit = b.get("/demo/fresh")
            self.assert_hit(hit, b"fresh")
            self.assertIn(hit.headers["Age"], ("2", "3"), "Age does not count the time kept")
            self.upstream.script([answer("down", status=503)])
            resp = b.get("/demo/sie")
            self.assert_upstream_error(resp, 503)
            self.assertEqual(resp.body, b"down", resp)
            self.assertNotEqual(cache_of(resp), "stale-if-error", resp)
            self.assertIsNone(resp.headers.get("Brace-Error-Avoided"), resp)


class StoreTest(CacheTestCase):

    def test_least_recently_used_entries_are_evicted_first(self):
        # 8 KiB bodies in a 64 KiB store: six or seven fit. Entry 0 is used
        # again before the store fills, so entry 1 is the least recently used.
        body = [(f"{i:02d}" * 4096).encode() for i in range(10)]
        with Braced(self.cache_config(store={"max_bytes": "64KiB", "max_entry": "16KiB"})) as b:
            def fill(i):
                self.upstream.script([answer(body[i].decode(), FRESH)])
                self.assertEqual(cache_of(b.get(f"/demo/lru/{i}")), "miss")
                cache = status(b)["cache"]
                self.assertLessEqual(cache["bytes"], 64 * 1024, cache)
                self.assertEqual(cache["max_bytes"], 64 * 1024, cache)
            for i in range(5):
                fill(i)
            self.assert_hit(b.get("/demo/lru/0"), body[0])
            for i in range(5, 10):
                fill(i)
            self.assert_hit(b.get("/demo/lru/9"), body[9])
            self.assert_hit(b.get("/demo/lru/8"), body[8])
            self.assert_hit(b.get("/demo/lru/0"), body[0])
            cache = status(b)["cache"]
            self.assertLess(cache["entries"], 10, cache)
            self.upstream.script([answer("again", FRESH)])
            evicted = b.get("/demo/lru/1")
            self.assertEqual((cache_of(evicted), evicted.body), ("miss", b"again"), evicted)
            self.assertLessEqual(status(b)["cache"]["bytes"], 64 * 1024)

    def test_purge_empties_the_store_or_one_profile(self):
        profiles = {name: {"upstream": self.upstream.url(f"/{name}"), "cache": CACHE}
                    for name in ("alpha", "beta")}
        cfg = make_config(profiles, admin="127.0.0.1:0", cache=STORE, defaults={"retry": NO_RETRY})
        self.upstream.set_default({"headers": FRESH})
        with Braced(cfg) as b:
            purge = lambda q="": request(b.admin_port, "POST", "/cache/purge" + q, timeout=5)
            for path in ("/alpha/x", "/alpha/y", "/beta/x"):
                self.assertEqual(cache_of(b.get(path)), "miss")
            self.assertEqual(cache_of(b.get("/beta/x")), "hit")
            cache = status(b)["cache"]
            self.assertEqual(cache["entries"], 3, cache)
            self.assertGreater(cache["bytes"], 0, cache)
            self.assertEqual(metric(b, 'braced_cache_requests_total{profile="beta",result="hit"}'), 1)
            self.assertEqual(metric(b, 'braced_cache_requests_total{profile="alpha",result="miss"}'), 2)
            self.assertEqual(metric(b, "braced_cache_entries"), 3)
            self.assertEqual(metric(b, "braced_cache_bytes"), cache["bytes"])

            resp = purge("?profile=alpha")
            self.assertEqual((resp.status, resp.json()), (200, {"removed": 2}), resp)
            self.assertEqual(status(b)["cache"]["entries"], 1)
            self.assertEqual(cache_of(b.get("/alpha/x")), "miss")
            self.assertEqual(cache_of(b.get("/beta/x")), "hit")

            self.assertEqual(purge("?profile=nosuch").status, 404)
            self.assertEqual(status(b)["cache"]["entries"], 2)

            resp = purge()
            self.assertEqual((resp.status, resp.json()), (200, {"removed": 2}), resp)
            cache = status(b)["cache"]
            self.assertEqual((cache["entries"], cache["bytes"]), (0, 0), cache)
            self.assertEqual(metric(b, "braced_cache_bytes"), 0)
            self.assertEqual(cache_of(b.get("/beta/x")), "miss")

    def test_reload_keeps_the_entries_of_unchanged_profiles_only(self):
        other = UpstreamProcess()
        self.addCleanup(other.stop)
        self.upstream.set_default({"headers": FRESH})
        other.set_default({"headers": FRESH})

        def cfg(beta_upstream, level="info"):
            profiles = {"alpha": {"upstream": self.upstream.url("/alpha"), "cache": CACHE},
                        "beta": {"upstream": beta_upstream, "cache": CACHE}}
            return make_config(profiles, admin="127.0.0.1:0", cache=STORE,
                               defaults={"retry": NO_RETRY}, log={"level": level})
        with Braced(cfg(self.upstream.url("/beta"))) as b:
            alpha = b.get("/alpha/x")
            beta = b.get("/beta/x")
            self.assertEqual((cache_of(alpha), cache_of(beta)), ("miss", "miss"))
            b.reload(cfg(other.url("/beta"), level="debug"))
            self.assert_hit(b.get("/alpha/x"), alpha.body)
            moved = b.get("/beta/x")
            self.assertEqual(cache_of(moved), "miss", moved)
            self.assertEqual(other.stats()["requests"], 1, "the new upstream was not asked")


class CoalescingTest(CacheTestCase):
    """Identical requests in flight share one exchange."""

    N = 50

    def together(self, b, n, path="/demo/co", timeout=20):
        """n GETs of `path` at once, each on its own connection."""
        gate = threading.Barrier(n)

        def one(_):
            gate.wait(5)
            return b.get(path, timeout=timeout)
        results = in_threads(one, [(i,) for i in range(n)], timeout=timeout + 5)
        errors = [r for r in results if isinstance(r, Exception)]
        self.assertEqual(errors, [], errors[:3])
        return results

    def test_identical_requests_share_one_exchange(self):
        self.upstream.set_default(answer("shared", FRESH, delay_ms=500))
        with Braced(self.cache_config()) as b:
            results = self.together(b, self.N)
            self.assertEqual(self.count(), 1)
            self.assertEqual({(r.status, r.body) for r in results}, {(200, b"shared")})
            kinds = sorted(cache_of(r) for r in results)
            self.assertEqual(kinds, ["coalesced"] * (self.N - 1) + ["miss"], kinds)
            self.assert_hit(b.get("/demo/co"), b"shared")
            series = 'braced_cache_requests_total{profile="demo",result="%s"}'
            self.assertEqual([metric(b, series % r) for r in ("miss", "coalesced", "hit")],
                             [1, self.N - 1, 1])

    def test_waiting_requests_get_only_the_variant_of_their_own_headers(self):
        # The answer varies on Accept: a request waiting with another Accept
        # must not be given it.
        self.upstream.set_default({"headers": {"Cache-Control": "max-age=60", "Vary": "Accept"},
                                   "delay_ms": 500})
        with Braced(self.cache_config()) as b:
            gate = threading.Barrier(10)

            def one(i):
                gate.wait(5)
                return b.get("/demo/co", headers={"Accept": f"type/v{i % 2}"})
            results = in_threads(one, [(i,) for i in range(10)], timeout=20)
            for i, r in enumerate(results):
                self.assertEqual(getattr(r, "status", None), 200, r)
                self.assertIn(f"type/v{i % 2}".encode(), r.body, r)
                self.assertNotIn(f"type/v{1 - i % 2}".encode(), r.body, r)

    def check_shared_not_kept(self, action, status):
        self.upstream.set_default(dict(action, delay_ms=500))
        cfg = self.cache_config(defaults={"circuit_breaker": NO_BREAKER})
        with Braced(cfg) as b:
            results = self.together(b, self.N)
            self.assertEqual(self.count(), 1)
            self.assertEqual({(r.status, r.body) for r in results}, {(status, action["body"].encode())})
            kinds = sorted(cache_of(r) for r in results)
            self.assertEqual(kinds, ["coalesced"] * (self.N - 1) + ["miss"], kinds)
            later = b.get("/demo/co")
            self.assertEqual(cache_of(later), "miss", later)
            self.assertEqual(self.count(), 2, "an answer that may not be kept was kept")

    def test_an_answer_not_kept_is_shared_with_those_waiting(self):
        self.check_shared_not_kept(answer("no-store", {"Cache-Control": "no-store"}), 200)

    def test_an_error_passed_through_is_shared_with_those_waiting(self):
        self.check_shared_not_kept(answer("busy", status=503), 503)

    def test_an_answer_setting_a_cookie_is_never_handed_to_another_app(self):
        # A session belongs to one client: those waiting make their own
        # exchanges, each getting its own cookie.
        self.upstream.set_default(answer("mine", {"Set-Cookie": "session=s1"}, delay_ms=300))
        with Braced(self.cache_config()) as b:
            results = self.together(b, 10)
            self.assertEqual(self.count(), 10)
            self.assertEqual({r.status for r in results}, {200})
            self.assertEqual([cache_of(r) for r in results], ["miss"] * 10)

    def test_a_failure_is_shared_with_the_same_code(self):
        # The exchange runs out of its 400 ms budget: every waiting request
        # gets the same problem, and the upstream saw one request.
        routes = [{"match": "GET /co", "timeouts": {"total": "400ms"}}]
        self.upstream.set_default(answer("late", FRESH, delay_ms=2000))
        cfg = self.cache_config(routes=routes, defaults={"circuit_breaker": NO_BREAKER})
        with Braced(cfg) as b:
            results = self.together(b, 10)
            for r in results:
                self.assert_problem(r, 504, "upstream_timeout", profile="demo")
            self.assertEqual(sorted(cache_of(r) for r in results), ["coalesced"] * 9 + ["miss"])
            self.assertEqual(self.count(), 1)

    def test_a_waiting_request_keeps_its_own_budget(self):
        # The exchange takes 1.5 s; a request that joins it with a 300 ms
        # budget gets its answer in time: 504, or the stale entry standing in.
        with Braced(self.cache_config({"stale_if_error": "300s"})) as b:
            self.upstream.script([answer("late", FRESH, delay_ms=1500)])
            leader = Background(b.get, "/demo/co")
            self.assertTrue(wait_until(lambda: self.count() == 1, 3))
            resp = b.get("/demo/co", headers={"Brace-Timeout-Ms": "300"})
            self.assert_problem(resp, 504, "upstream_timeout", profile="demo")
            self.assertLess(resp.elapsed, 1.0, resp)
            self.assertEqual(leader.result(5).body, b"late")

            self.upstream.script([answer("kept", STALE), answer("later", FRESH, delay_ms=1500)])
            self.assertEqual(b.get("/demo/sie").body, b"kept")
            leader = Background(b.get, "/demo/sie")
            self.assertTrue(wait_until(lambda: self.count() == 3, 3))
            resp = b.get("/demo/sie", headers={"Brace-Timeout-Ms": "300"})
            self.assert_stood_in(resp, b"kept", "upstream_timeout")
            self.assertLess(resp.elapsed, 1.0, resp)
            self.assertEqual(leader.result(5).body, b"later")
            self.assertEqual(self.count(), 3)

    def test_coalesce_false_sends_each_request(self):
        self.upstream.set_default(answer("own", FRESH, delay_ms=500))
        with Braced(self.cache_config({"coalesce": False})) as b:
            results = self.together(b, 10)
            self.assertEqual(self.count(), 10)
            self.assertEqual([cache_of(r) for r in results], ["miss"] * 10)
            self.assert_hit(b.get("/demo/co"), b"own")

    def test_the_first_app_leaving_does_not_cancel_the_exchange(self):
        self.upstream.set_default(answer("shared", FRESH, delay_ms=1000))
        with Braced(self.cache_config()) as b:
            leader = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            try:
                leader.sendall(b"GET /demo/co HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(wait_until(lambda: self.count() == 1, 3), "the leader's request never arrived")
                others = [None] * 5
                threads = [threading.Thread(target=lambda i=i: others.__setitem__(i, b.get("/demo/co")),
                                            daemon=True) for i in range(5)]
                for t in threads:
                    t.start()
                time.sleep(0.3)     # the others have joined the exchange
            finally:
                leader.close()
            for t in threads:
                t.join(10)
            self.assertTrue(all(o is not None for o in others), others)
            self.assertEqual({(o.status, o.body) for o in others}, {(200, b"shared")}, others)
            self.assertEqual(sorted(cache_of(o) for o in others), ["coalesced"] * 5, others)
            self.assertEqual(self.count(), 1)
            self.assertEqual(self.upstream.stats()["aborted"], 0, "the exchange was cancelled")
            self.assert_hit(b.get("/demo/co"), b"shared")


class ReviewedEdgesTest(CacheTestCase):
    """Edges where a cache hands one app's answer, session or limits to others."""

    def test_a_revalidation_with_vary_answers_its_waiters(self):
        # A 304 to a stale entry with Vary, while an identical request
        # waits: both get the kept answer (the leader revalidated, the
        # waiter coalesced) and the daemon stays up.
        vary = {"Cache-Control": "max-age=1", "ETag": '"x"', "Vary": "Accept"}
        with Braced(self.cache_config()) as b:
            self.upstream.script([answer("kept", vary)])
            self.assertEqual(b.get("/demo/rv").body, b"kept")
            time.sleep(1.2)
            self.upstream.script([answer("", {"ETag": '"x"', "Cache-Control": "max-age=60"},
                                         status=304, delay_ms=600)])
            leader = Background(b.get, "/demo/rv")
            self.assertTrue(wait_until(lambda: self.count() == 2, 3))
            waiter = b.get("/demo/rv")
            first = leader.result(5)
            self.assertEqual((first.status, first.body, cache_of(first)), (200, b"kept", "revalidated"))
            self.assertEqual((waiter.status, waiter.body, cache_of(waiter)), (200, b"kept", "coalesced"))
            self.assertEqual(self.count(), 2)
            self.assert_hit(b.get("/demo/rv"), b"kept")

    def test_a_304_that_sets_a_cookie_is_not_kept(self):
        with Braced(self.cache_config()) as b:
            self.upstream.script([answer("kept", {"Cache-Control": "max-age=1", "ETag": '"x"'})])
            b.get("/demo/sc")
            time.sleep(1.2)
            self.upstream.script([answer("", {"ETag": '"x"', "Cache-Control": "max-age=60",
                                              "Set-Cookie": "sid=app-a"}, status=304)])
            mine = b.get("/demo/sc")
            self.assertEqual(mine.headers.get("Set-Cookie"), "sid=app-a", mine)
            self.upstream.set_default(answer("fresh", FRESH))
            other = b.get("/demo/sc")
            self.assertIsNone(other.headers.get("Set-Cookie"), other)
            self.assertNotEqual(cache_of(other), "hit", other)

    def test_a_header_sent_on_several_lines_keys_waiters_by_its_whole_value(self):
        self.upstream.set_default({"headers": {"Cache-Control": "max-age=60",
                                               "Vary": "Accept-Language"}, "delay_ms": 600})
        with Braced(self.cache_config()) as b:
            leader = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            try:
                leader.sendall(b"GET /demo/al HTTP/1.1\r\nHost: x\r\nAccept-Language: en\r\n"
                               b"Accept-Language: fr\r\nConnection: close\r\n\r\n")
                self.assertTrue(wait_until(lambda: self.count() == 1, 3))
                results = in_threads(lambda: b.get("/demo/al", headers={"Accept-Language": "en"}),
                                     [() for _ in range(40)], timeout=20)
            finally:
                leader.close()
            for r in results:
                self.assertEqual(getattr(r, "status", None), 200, r)
                self.assertNotIn(b"fr", r.body, r)

    def test_an_answer_past_max_entry_is_not_handed_to_waiters(self):
        # Held whole for its schema or come whole within the window, an
        # answer past max_entry is neither kept nor copied to each waiter:
        # they make their own exchanges.
        body = "x" * 40000
        self.upstream.set_default(answer(body, FRESH, delay_ms=400))
        with Braced(self.cache_config(store={"max_entry": "16KiB"})) as b:
            gate = threading.Barrier(5)

            def one(_):
                gate.wait(5)
                return b.get("/demo/big")
            results = in_threads(one, [(i,) for i in range(5)], timeout=20)
            self.assertEqual({(r.status, len(r.body)) for r in results}, {(200, 40000)})
            self.assertEqual(self.count(), 5)

    def test_a_request_with_its_own_budget_does_not_lead(self):
        # Its Brace-Timeout-Ms is its own: a plain request arriving while it
        # runs makes its own exchange and gets the upstream's answer.
        self.upstream.set_default(answer("slow", FRESH, delay_ms=800))
        with Braced(self.cache_config()) as b:
            short = Background(lambda: b.get("/demo/own", headers={"Brace-Timeout-Ms": "200"}))
            self.assertTrue(wait_until(lambda: self.count() == 1, 3))
            plain = b.get("/demo/own")
            self.assertEqual((plain.status, plain.body), (200, b"slow"), plain)
            self.assertEqual(short.result(5).status, 504)
            self.assertEqual(self.count(), 2)

    def test_a_kept_404_says_it_is_the_upstreams_error(self):
        self.upstream.set_default(answer("gone", FRESH, status=404))
        with Braced(self.cache_config()) as b:
            first = b.get("/demo/nf")
            hit = b.get("/demo/nf")
            for r in (first, hit):
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.headers.get("Brace-Error"), "upstream_status", r)
            self.assertEqual(cache_of(hit), "hit")
            self.assertEqual(metric(b, 'braced_requests_total{profile="demo",code="upstream_status"}'), 2)

    def test_a_request_with_a_body_is_a_bypass(self):
        self.upstream.set_default(answer("posted", FRESH))
        with Braced(self.cache_config()) as b:
            r = b.request("POST", "/demo/p", body=b"{}")
            self.assertEqual(cache_of(r), "bypass", r)

    def test_a_streamed_answer_not_kept_holds_no_memory_for_the_cache(self):
        # A server-sent event stream (no lifetime, ttl 0) is relayed with no
        # copy for the cache: nothing of limits.max_buffered is held for it.
        self.upstream.set_default({"sse": {"events": 20, "interval_ms": 50}})
        with Braced(self.cache_config({"ttl": "0s"})) as b:
            stream = Background(lambda: b.get("/demo/sse", timeout=10))
            time.sleep(0.4)
            held = status(b)["memory"]["held"]
            self.assertEqual(stream.result(10).status, 200)
            self.assertEqual(held, 0)

    def test_a_request_with_its_own_budget_never_leads_a_refresh(self):
        # Stale within stale_while_revalidate: it gets the stale answer and
        # starts no refresh, so a no-cache request right behind it makes its
        # own exchange with its own budget.
        with Braced(self.cache_config({"stale_while_revalidate": "60s"})) as b:
            self.upstream.script([answer("kept", {"Cache-Control": "max-age=1"})])
            b.get("/demo/sw")
            time.sleep(1.2)
            self.upstream.set_default(answer("fresh", FRESH, delay_ms=600))
            short = b.get("/demo/sw", headers={"Brace-Timeout-Ms": "300"})
            self.assertEqual((short.body, cache_of(short)), (b"kept", "stale"), short)
            own = b.get("/demo/sw", headers={"Cache-Control": "no-cache"})
            self.assertEqual((own.status, own.body, cache_of(own)), (200, b"fresh", "miss"), own)
            self.assertEqual(self.count(), 2)

    def test_a_request_never_waits_behind_a_stream(self):
        # An event stream says no length: identical requests arriving while
        # it runs make their own exchanges at once.
        self.upstream.set_default({"sse": {"events": 15, "interval_ms": 200}})
        with Braced(self.cache_config()) as b:
            first = Background(lambda: b.get("/demo/ev", timeout=10))
            self.assertTrue(wait_until(lambda: self.count() == 1, 3))
            time.sleep(0.3)
            second = b.get("/demo/ev", timeout=10)
            self.assertEqual((second.status, cache_of(second)), (200, "miss"), second)
            self.assertEqual(first.result(10).status, 200)
            self.assertEqual(self.count(), 2)

    def test_a_purge_during_a_revalidation_is_not_undone(self):
        with Braced(self.cache_config()) as b:
            self.upstream.script([answer("old", {"Cache-Control": "max-age=1", "ETag": '"x"'})])
            b.get("/demo/pg")
            time.sleep(1.2)
            self.upstream.script([answer("", {"ETag": '"x"', "Cache-Control": "max-age=60"},
                                         status=304, delay_ms=800)])
            reval = Background(lambda: b.get("/demo/pg"))
            self.assertTrue(wait_until(lambda: self.count() == 2, 3))
            purged = request(b.admin_port, "POST", "/cache/purge", timeout=5)
            self.assertEqual(purged.body.strip(), b'{"removed":1}', purged)
            self.assertEqual(cache_of(reval.result(5)), "revalidated")
            self.upstream.set_default(answer("new", FRESH))
            after = b.get("/demo/pg")
            self.assertEqual((after.body, cache_of(after)), (b"new", "miss"), after)

    def test_a_reload_that_moves_the_profile_keeps_nothing_from_the_old_upstream(self):
        other = UpstreamProcess()
        self.addCleanup(other.stop)
        other.set_default(answer("new", FRESH))

        def cfg(url):
            return make_config({"demo": {"upstream": url, "cache": CACHE}}, admin="127.0.0.1:0",
                               cache=STORE, defaults={"retry": NO_RETRY})
        self.upstream.set_default(answer("old", FRESH, delay_ms=1000))
        with Braced(cfg(self.upstream.url("/base"))) as b:
            slow = Background(b.get, "/demo/mv")
            self.assertTrue(wait_until(lambda: self.count() == 1, 3))
            b.reload(cfg(other.url("/base")))
            self.assertEqual(slow.result(5).body, b"old")
            after = b.get("/demo/mv")
            self.assertEqual((after.body, cache_of(after)), (b"new", "miss"), after)


if __name__ == "__main__":
    unittest.main()
