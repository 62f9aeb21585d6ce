"""Hostile cache fields (SPEC 4.13): the Cache-Control, Expires, Date, Age,
Vary and ETag an upstream controls. Whatever the upstream sends, the answer
reaches the app whole, braced keeps running, and nothing is answered from
memory that must not be: an answer that says no-store (however it is
hidden), has no valid lifetime, is already stale by its own fields, or
varies on a header whose value differs.

The route's ttl is 0, so an answer whose lifetime braced cannot read is
never fresh. Each row runs on a path of its own in one daemon; /healthz is
asked after every row.
"""

import email.utils
import http.client
import time
import unittest
from unittest import mock

from endpoints import status
from harness import Braced, BracedTestCase, request

NO_RETRY = {"attempts": 1}
FAR_DATE = "Fri, 01 Jan 2100 00:00:00 GMT"
MAX_BYTES = 8 * 1024 * 1024


def http_date(offset=0.0):
    return email.utils.formatdate(time.time() + offset, usegmt=True)


def padded_directives(n, width=0):
    """n extension directives, each at least `width` characters."""
    return ", ".join(f"x-ext-{i}={'p' * width}" if width else f"x-ext-{i}" for i in range(n))


# (name, the answer's headers, expectation, request headers, a probe)
#   "stale": the second identical request must reach the upstream
#   "any":   kept or not, but a hit must carry a sane Age
#   probe: headers of a third request that must not be answered from memory
ROWS = [
    ("huge Cache-Control line, no-store last",
     {"Cache-Control": "max-age=60, " + padded_directives(300, 60) + ", no-store"}, "stale", {}, None),
    ("100 directives, no-store last",
     {"Cache-Control": padded_directives(99) + ", no-store, max-age=60"}, "stale", {}, None),
    ("no-store on a second line", {"Cache-Control": ["max-age=60", "no-store"]}, "stale", {}, None),
    ("NO-STORE upper case", {"Cache-Control": "max-age=60, NO-STORE"}, "stale", {}, None),
    ("set-cookie lower case", {"Cache-Control": "max-age=60", "set-cookie": "s=1"}, "stale", {}, None),
    ("Vary naming * among others", {"Cache-Control": "max-age=60", "Vary": "Accept, *"}, "stale", {}, None),
    ("max-age=-1", {"Cache-Control": "max-age=-1"}, "stale", {}, None),
    ("max-age empty", {"Cache-Control": "max-age="}, "stale", {}, None),
    ("max-age=1e3", {"Cache-Control": "max-age=1e3"}, "stale", {}, None),
    ("max-age=99999999999999999999", {"Cache-Control": "max-age=99999999999999999999"}, "any", {}, None),
    ("max-age of 400 digits", {"Cache-Control": "max-age=" + "9" * 400}, "any", {}, None),
    ('quoted max-age="60"', {"Cache-Control": 'max-age="60"'}, "any", {}, None),
    ("max-age=+60", {"Cache-Control": "max-age=+60"}, "any", {}, None),
    ("duplicate max-age, first 0", {"Cache-Control": "max-age=0, max-age=600"}, "stale", {}, None),
    ("duplicate max-age lines, first 0", {"Cache-Control": ["max-age=0", "max-age=600"]}, "stale", {}, None),
    ("max-age=0 with a far Expires", {"Cache-Control": "max-age=0", "Expires": FAR_DATE}, "stale", {}, None),
    ("Expires garbage", {"Expires": "soon"}, "stale", {}, None),
    ("Expires 0", {"Expires": "0"}, "stale", {}, None),
    ("Expires of 4 KiB", {"Expires": "Thu, " + "9" * 4096}, "stale", {}, None),
    ("Expires before its Date", {"Date": FAR_DATE, "Expires": "dynamic:+30d"}, "stale", {}, None),
    ("Date in the far future, max-age", {"Date": FAR_DATE, "Cache-Control": "max-age=60"}, "any", {}, None),
    ("Date in the far future, Expires after it",
     {"Date": FAR_DATE, "Expires": "Fri, 01 Jan 2100 00:01:00 GMT"}, "any", {}, None),
    ("Date garbage, max-age", {"Date": "yesterday-ish", "Cache-Control": "max-age=60"}, "any", {}, None),
    ("Age huge", {"Cache-Control": "max-age=60", "Age": "99999999999999999999"}, "stale", {}, None),
    ("Age beyond max-age", {"Cache-Control": "max-age=60", "Age": "120"}, "stale", {}, None),
    ("Age negative", {"Cache-Control": "max-age=60", "Age": "-5"}, "any", {}, None),
    ("Vary with 40 names", {"Cache-Control": "max-age=60",
                            "Vary": ", ".join(f"X-V{i}" for i in range(40))},
     "any", {"X-V39": "a"}, {"X-V39": "b"}),
    ("Vary with a non-token", {"Cache-Control": "max-age=60", "Vary": "Accept, X(bad)@, \"q\""},
     "any", {"Accept": "text/a"}, {"Accept": "text/b"}),
    ("Vary of 8 KiB", {"Cache-Control": "max-age=60", "Vary": "Accept, " + "X-" + "v" * 8192},
     "any", {"Accept": "text/a"}, {"Accept": "text/b"}),
    ("ETag of 8 KiB", {"Cache-Control": "max-age=0", "ETag": '"' + "e" * 8192 + '"'}, "any", {}, None),
    ("ETag unquoted garbage", {"Cache-Control": "max-age=0", "ETag": 'W/unquoted, "two", "'}, "any", {}, None),
    ("Last-Modified garbage", {"Cache-Control": "max-age=0", "Last-Modified": "not a date at all"},
     "any", {}, None),
    ("200 header lines", dict({f"X-Pad-{i}": f"v{i}" for i in range(200)}, **{"Cache-Control": "max-age=60"}),
     "stale", {}, None),
]


def resolve(headers):
    """Headers with "dynamic:+30d" replaced by an HTTP-date 30 days from now."""
    return {k: (http_date(30 * 86400) if v == "dynamic:+30d" else v) for k, v in headers.items()}


class HostileCacheFieldsTest(BracedTestCase):
    """Cache fields the upstream controls: relayed, never kept against their meaning."""

    @mock.patch.object(http.client, "_MAXHEADERS", 1000)     # the app reads 200 header lines
    def test_hostile_cache_fields(self):
        cache = {"enabled": True, "ttl": "0s", "stale_if_error": "0s"}
        cfg = self.config({"cache": cache}, admin="127.0.0.1:0",
                          cache={"max_bytes": "8MiB", "max_entry": "1MiB"},
                          defaults={"retry": NO_RETRY, "circuit_breaker": {"enabled": False}})
        with Braced(cfg) as b:
            for i, (name, headers, expect, req, probe) in enumerate(ROWS):
                with self.subTest(row=name):
                    self.check_row(b, f"/demo/hostile/{i}", resolve(headers), expect, req, probe)
                    health = request(b.admin_port, "GET", "/healthz", timeout=5)
                    self.assertEqual(health.status, 200, f"after {name}: {health}")
            self.assertLessEqual(status(b)["cache"]["bytes"], MAX_BYTES)
            self.upstream.reset()
            self.assertEqual(b.get("/demo/after").status, 200)

    def check_row(self, b, path, headers, expect, req, probe):
        self.upstream.reset()
        self.upstream.script([{"headers": headers, "body": "first"}])
        self.upstream.set_default({"headers": headers, "body": "second"})
        first = b.get(path, headers=req)
        self.assertEqual((first.status, first.body), (200, b"first"), first)
        self.assertEqual(first.headers.get("Brace-Cache"), "miss", first)
        pads = [n for n, _ in first.raw_headers if n.startswith("X-Pad-")]
        self.assertEqual(len(pads), len([n for n in headers if n.startswith("X-Pad-")]),
                         "header lines were lost on the way to the app")
        second = b.get(path, headers=req)
        self.assertEqual(second.status, 200, second)
        if expect == "stale" or second.headers.get("Brace-Cache") != "hit":
            self.assertNotEqual(second.headers.get("Brace-Cache"), "hit", second)
            self.assertEqual(second.body, b"second", f"answered from memory: {second}")
            self.assertEqual(self.upstream.stats()["requests"], 2)
        else:
            self.assertEqual(second.body, b"first", second)
            age = second.headers.get("Age", "")
            self.assertTrue(age.isdigit() and int(age) <= 60, f"Age {age!r} on a hit: {second}")
        sent = self.upstream.received()
        etag = headers.get("ETag")
        if len(sent) > 1 and etag is not None:
            conditions = [v for n, v in sent[1]["headers"] if n.lower() == "if-none-match"]
            self.assertIn(conditions, ([], [etag]), "If-None-Match is not the ETag as sent")
        if probe is not None:
            before = self.upstream.stats()["requests"]
            third = b.get(path, headers=probe)
            self.assertNotEqual(third.headers.get("Brace-Cache"), "hit", third)
            self.assertEqual(third.body, b"second", third)
            self.assertEqual(self.upstream.stats()["requests"], before + 1)


if __name__ == "__main__":
    unittest.main()
