"""Path normalization for routing (SPEC 3, docs/security.md "Path normalization"):
every spelling of a route's path meets the route's schema, the bytes sent
upstream stay the app's, encoded slashes are refused, and `match_case:
insensitive` matches without regard to ASCII case.

Each profile has `routes_only: false`, so before normalization a spelling
the route did not match was forwarded unvalidated.
"""

import unittest

from harness import Braced, BracedTestCase, request

WEATHER_QUERY = {
    "type": "object",
    "required": ["city"],
    "properties": {"city": {"type": "string", "minLength": 2, "maxLength": 100}},
}
WEATHER_ROUTE = {"match": "GET /v1/weather", "request": {"query": WEATHER_QUERY, "mode": "enforce"}}

# Other spellings of /v1/weather, as the app sends them.
SPELLINGS = ("/v1/weather/", "/v1//weather", "/v1/%77eather", "/v1/weather;x")


class PathNormalizationTest(BracedTestCase):

    def weather_config(self, **profile_extra):
        return self.config(dict({"routes_only": False, "routes": [WEATHER_ROUTE]},
                                **profile_extra))

    def assert_rejected_unsent(self, b, path):
        """A bad query on path is a 422 from the weather route; nothing reaches the upstream."""
        self.upstream.reset()
        resp = b.get("/demo" + path + "?city=x")
        doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
        self.assertEqual(doc.get("route"), "GET /v1/weather", doc)
        self.assertEqual(self.upstream.received(), [])

    def assert_forwarded_as_sent(self, b, path):
        """A valid query on path is forwarded once, its path bytes unchanged."""
        self.upstream.reset()
        resp = b.get("/demo" + path + "?city=Oslo")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual([r["path"] for r in self.upstream.received()], ["/base" + path])

    def test_other_spellings_meet_the_route_schema(self):
        # Fails if routing compares raw bytes: each spelling would then be
        # forwarded with its bad query, or if the forwarded path is rewritten.
        with Braced(self.weather_config()) as b:
            for path in SPELLINGS:
                with self.subTest(path=path):
                    self.assert_rejected_unsent(b, path)
                    self.assert_forwarded_as_sent(b, path)

    def test_encoded_reserved_characters_meet_the_route_schema(self):
        # Fails if only unreserved escapes are decoded: an upstream that
        # decodes its paths reads items%3Abatch as items:batch.
        route = {"match": "POST /v1/items:batch",
                 "request": {"body": {"type": "object", "required": ["ok"]}, "mode": "enforce"}}
        with Braced(self.config({"routes_only": False, "routes": [route]})) as b:
            for path in ("/v1/items:batch", "/v1/items%3Abatch", "/v1/items%3abatch",
                         "/v1/%69tems%3Abatch/"):
                with self.subTest(path=path):
                    self.upstream.reset()
                    resp = b.request("POST", "/demo" + path, body=b'{"bad": 1}',
                                     headers={"Content-Type": "application/json"})
                    doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
                    self.assertEqual(doc.get("route"), "POST /v1/items:batch", doc)
                    self.assertEqual(self.upstream.received(), [])

    def test_encoded_slash_is_refused(self):
        # Fails if an encoded slash is matched or forwarded: the upstream may
        # decode it into a path separator the route never saw.
        with Braced(self.weather_config()) as b:
            for path in ("/v1/weather%2f", "/v1/weather%2F", "/v1%2fweather",
                         "/v1/weather%5c", "/v1/weather%00", "/v1/weather%zz",
                         "/v1/.;x/weather"):
                with self.subTest(path=path):
                    self.upstream.reset()
                    resp = b.get("/demo" + path + "?city=Oslo")
                    self.assert_problem(resp, 400, "bad_request", profile="demo")
                    self.assertEqual(self.upstream.received(), [])

    def test_match_case_insensitive_validates_other_cases(self):
        # Fails if match_case is ignored: /V1/Weather would be forwarded with
        # its bad query, or with the default it would be validated.
        with Braced(self.config({"routes_only": False, "routes": [WEATHER_ROUTE],
                                 "match_case": "insensitive"}, admin="127.0.0.1:0")) as b:
            shown = request(b.admin_port, "GET", "/config").json()["profiles"]["demo"]
            self.assertEqual(shown["match_case"], "insensitive")
            self.assert_rejected_unsent(b, "/V1/Weather")
            self.assert_rejected_unsent(b, "/v1/WEATHER/")
            self.assert_forwarded_as_sent(b, "/V1/Weather")
        with Braced(self.weather_config()) as b:
            self.upstream.reset()
            resp = b.get("/demo/V1/Weather?city=x")
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual([r["path"] for r in self.upstream.received()], ["/base/V1/Weather"])

    def test_match_case_is_checked_in_the_config(self):
        # Fails if an unknown match_case value or a refused route path loads.
        for extra, word in (({"match_case": "ignore"}, "sensitive, insensitive"),
                            ({"routes": [{"match": "GET /v1/a%2Fb"}]}, "refused")):
            with self.subTest(extra=extra):
                code, _, err = Braced(self.config(extra)).check_config()
                self.assertNotEqual(code, 0)
                self.assertIn(word, err)


if __name__ == "__main__":
    unittest.main()
