"""Hostile quota headers (SPEC 4.12): the RateLimit, RateLimit-* and
X-RateLimit-* fields an upstream controls. A malformed family is ignored
whole, as the draft requires; an extreme reset counts as one day; nothing an
upstream sends can stop traffic for longer, take memory beyond the fixed
limits, or make braced send more than the quota it announced. Each row
failed on a build that read quota fields loosely and passes now."""

import unittest

from endpoints import metric, status
from harness import BracedTestCase, Braced

NO_RETRY = {"attempts": 1}


class HostileQuotaHeadersTest(BracedTestCase):
    """Quota fields the upstream controls: malformed ones are ignored, extreme
    resets clamped to one day; none can stop traffic for longer."""

    def run_with(self, headers):
        self.upstream.reset()
        self.upstream.set_default({"headers": headers})
        cfg = self.config(admin="127.0.0.1:0", defaults={"retry": NO_RETRY, "rate_limit": {"queue": "0"}})
        with Braced(cfg) as b:
            first = b.get("/demo/h/1")
            second = b.get("/demo/h/2")
            return b, first, second, status(b)["profiles"]["demo"]["rate_limits"]

    def test_malformed_fields_are_ignored(self):
        rows = [
            {"X-RateLimit-Remaining": "+1", "X-RateLimit-Reset": "30"},
            {"X-RateLimit-Remaining": "0x10", "X-RateLimit-Reset": "30"},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "-5"},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1e9"},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30 s"},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3" * 2000},
            {"RateLimit": '"q";r=-1;t=30'},
            {"RateLimit": '"q";r=0;t=30.5'},
            {"RateLimit": ", ".join(f'"p{i}";r=0;t=30' for i in range(17))},
            {"RateLimit-Remaining": "0", "RateLimit-Reset": "30", "RateLimit-Limit": "ten"},
            {"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "30"},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "soon"},
            {"X-RateLimit-Remaining": "0.5", "X-RateLimit-Reset": "30"},
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1" * 40},
            {"RateLimit-Remaining": "0", "RateLimit-Reset": "30, 31"},
            {"RateLimit": '"q";r=0;t=', "RateLimit-Policy": '"q";q=10;w=60'},
            {"RateLimit": '"q";r=zero;t=30'},
            {"RateLimit": '"q;r=0;t=30'},
            {"RateLimit": "r=0, t=30" + "," * 2000},
            {"X-RateLimit-Remaining": "0" * 16, "X-RateLimit-Reset": "30"},
        ]
        for headers in rows:
            with self.subTest(headers=headers):
                _, first, second, limits = self.run_with(headers)
                self.assertEqual((first.status, second.status), (200, 200), headers)
                self.assertEqual(self.upstream.stats()["requests"], 2, headers)
                self.assertTrue(all(l["learned"] is None for l in limits), limits)

    def test_an_extreme_reset_counts_as_one_day(self):
        rows = [
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "99999999999"},   # epoch, far
            {"RateLimit-Remaining": "0", "RateLimit-Reset": "999999999"},
            {"RateLimit": '"q";r=0;t=999999999999999'},
        ]
        for headers in rows:
            with self.subTest(headers=headers):
                _, first, second, limits = self.run_with(headers)
                self.assertEqual(first.status, 200)
                self.assert_problem(second, 429, "rate_limited")
                self.assertLessEqual(int(second.headers["Retry-After"]), 86400, second)
                self.assertGreater(int(second.headers["Retry-After"]), 86000, second)
                self.assertLessEqual(limits[0]["learned"]["reset_ms"], 86400 * 1000, limits)

    def test_a_reload_that_removes_the_rate_keeps_nothing_configured(self):
        cfg = self.config(admin="127.0.0.1:0",
                          defaults={"retry": NO_RETRY, "rate_limit": {"rate": "1/m", "queue": "0"}})
        with Braced(cfg) as b:
            self.assertEqual(b.get("/demo/r/1").status, 200)
            self.assert_problem(b.get("/demo/r/2"), 429, "rate_limited")
            b.reload(self.config(admin="127.0.0.1:0", defaults={"retry": NO_RETRY}))
            self.assertEqual(b.get("/demo/r/3").status, 200)


    def test_repeated_fields_that_disagree_are_ignored(self):
        # Two X-RateLimit-Remaining lines with different values: which one
        # the upstream meant is unknown.
        self.upstream.reset()
        self.upstream.set_default({"headers": {"X-RateLimit-Remaining": ["0", "50"],
                                               "X-RateLimit-Reset": "30"}})
        cfg = self.config(admin="127.0.0.1:0", defaults={"retry": NO_RETRY, "rate_limit": {"queue": "0"}})
        with Braced(cfg) as b:
            self.assertEqual([b.get(f"/demo/d/{i}").status for i in range(3)], [200] * 3)
            self.assertIsNone(status(b)["profiles"]["demo"]["rate_limits"][0]["learned"])

    def test_many_quota_fields_take_no_more_than_the_limit(self):
        # 90 X-RateLimit-* lines: the answer is relayed,
        # the fields beyond the first 16 are not read.
        self.upstream.reset()
        many = {f"X-RateLimit-Extra-{i}": "0" for i in range(90)}
        many.update({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "30"})
        self.upstream.set_default({"headers": many})
        cfg = self.config(admin="127.0.0.1:0", defaults={"retry": NO_RETRY})
        with Braced(cfg) as b:
            self.assertEqual(b.get("/demo/m").status, 200)
            self.assertEqual(b.get("/demo/m2").status, 200)


if __name__ == "__main__":
    unittest.main()
