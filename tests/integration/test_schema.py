"""Schemas at the boundary (SPEC 2, 5, 6): routes and how they match, the
JSON Schema of a route's query, request body and response body, the modes
enforce / report / off, the request_invalid and schema_violation problems
with their `violations`, braced_schema_violations_total, retries of a
drifted response, and schema errors in the configuration.

Every rejected request is also checked at the upstream: a request that
fails its schema in enforce mode must not reach it at all.
"""

import json
import os
import re
import unittest

from harness import (REPO, Background, Braced, BracedTestCase, fault, request, run_braced,
                     wait_until)

# The weather example of SPEC 2.
WEATHER_QUERY = {
    "type": "object",
    "required": ["city"],
    "properties": {
        "city": {"type": "string", "minLength": 2, "maxLength": 100},
        "unit": {"enum": ["metric", "imperial"]},
    },
}
WEATHER_BODY = {
    "type": "object",
    "required": ["city", "temperature", "condition", "source_latency_ms"],
    "properties": {
        "city": {"type": "string"},
        "temperature": {"type": "number"},
        "condition": {"type": "string"},
        "source_latency_ms": {"type": "integer", "minimum": 0},
    },
}
GOOD_WEATHER = {"city": "Oslo", "temperature": 3.5, "condition": "rain", "source_latency_ms": 12}

# Short waits between attempts keep the retry tests fast.
FAST = {"base": "10ms", "max": "50ms", "jitter": "full"}


def weather_request_route(mode="enforce", **extra):
    """GET /v1/weather with the query schema of SPEC 2 and no response schema."""
    return dict({"match": "GET /v1/weather", "request": {"query": WEATHER_QUERY, "mode": mode}},
                **extra)


def weather_response_route(mode="enforce", statuses=(200,), **extra):
    """GET /v1/weather with the response schema of SPEC 2; statuses None leaves the default."""
    response = {"body": WEATHER_BODY, "mode": mode}
    if statuses is not None:
        response["statuses"] = list(statuses)
    return dict({"match": "GET /v1/weather", "response": response}, **extra)


def answer(body, status=200, **extra):
    """An X-Fault header: the upstream answers `body` (a document or raw text) as JSON."""
    text = body if isinstance(body, str) else json.dumps(body)
    headers = dict({"Content-Type": "application/json"}, **extra.pop("headers", {}))
    return fault(status=status, body=text, headers=headers, **extra)


def without(doc, key):
    return {k: v for k, v in doc.items() if k != key}


class SchemaTestCase(BracedTestCase):

    def routes_config(self, *routes, admin=False, **profile_extra):
        """One profile `demo` with these routes; admin on 127.0.0.1:0 when asked."""
        top = {"admin": "127.0.0.1:0"} if admin else {}
        return self.config(dict({"routes": list(routes)}, **profile_extra), **top)

    def assert_violations(self, doc, expected):
        """doc's violations are exactly `expected` [(pointer, keyword)], each with a message."""
        violations = doc.get("violations")
        self.assertIsInstance(violations, list, doc)
        self.assertEqual([(v.get("pointer"), v.get("keyword")) for v in violations], expected, doc)
        for v in violations:
            self.assertEqual(set(v), {"pointer", "keyword", "message"}, v)
            self.assertIsInstance(v["message"], str, v)
            self.assertTrue(v["message"], f"empty message: {v}")

    def metric_lines(self, b, name="braced_schema_violations_total"):
        text = request(b.admin_port, "GET", "/metrics").body.decode()
        return [l for l in text.splitlines() if l.startswith(name + "{")]

    def violation_logs(self, b):
        return [l for l in b.log_lines() if l.get("msg") == "schema violation"]


class RouteMatchTest(SchemaTestCase):
    """SPEC 2: `match: METHOD PATH`, `*` method, `{name}` segments, a final `/**`.

    Every route requires a query parameter the requests leave out, so a
    matched request is a 422 naming its route and an unmatched one reaches
    the upstream.
    """

    @staticmethod
    def needs(match, param="must"):
        return {"match": match, "request": {"query": {"required": [param]}}}

    def matched_route(self, b, method, path):
        """The route label that rejected the request, or None if it was forwarded."""
        resp = b.request(method, "/demo" + path)
        if resp.status == 200:
            self.assertEqual(resp.json()["path"], "/base" + path.split("?")[0], resp)
            return None
        doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
        return doc.get("route")

    def check(self, routes, cases):
        with Braced(self.routes_config(*routes)) as b:
            for method, path, label in cases:
                with self.subTest(method=method, path=path):
                    self.assertEqual(self.matched_route(b, method, path), label)

    def test_placeholder_matches_exactly_one_nonempty_segment(self):
        # Fails if {id} matches across '/', matches an empty or missing
        # segment, or if the query string takes part in matching.
        label = "GET /v1/users/{id}/posts"
        self.check([self.needs(label)], [
            ("GET", "/v1/users/42/posts", label),
            ("GET", "/v1/users/a-b_c.d/posts?x=1", label),
            ("GET", "/v1/users/42/posts/7", None),
            ("GET", "/v1/users/1/2/posts", None),
            ("GET", "/v1/users//posts", None),
            ("GET", "/v1/users/posts", None),
            ("GET", "/v1/users/42", None),
        ])

    def test_star_method_matches_every_method(self):
        # Fails if '*' is taken as a literal method or matches only GET.
        label = "* /v1/any"
        self.check([self.needs(label)],
                   [(m, "/v1/any", label) for m in ("GET", "POST", "PUT", "DELETE", "PATCH")]
                   + [("GET", "/v1/other", None)])

    def test_final_double_star_matches_the_rest_of_the_path(self):
        # Fails if /** matches only one segment, or matches by string prefix
        # (/filesystem is not under /files).
        label = "GET /files/**"
        self.check([self.needs(label)], [
            ("GET", "/files/a", label),
            ("GET", "/files/a/b/c.txt", label),
            ("GET", "/files/a/b?x=1", label),
            ("GET", "/filesystem/a", None),
            ("GET", "/v1/files/a", None),
            ("POST", "/files/a", None),
        ])

    def test_first_matching_route_wins(self):
        # Two overlapping routes with different schemas: the one written first
        # decides, not the most specific. Fails if a later route is used or
        # the schemas of both are applied.
        special = self.needs("GET /v1/items/special", "a")
        generic = self.needs("GET /v1/items/{id}", "b")
        with Braced(self.routes_config(special, generic)) as b:
            # `b` would satisfy the generic route: the special one still applies.
            self.assertEqual(self.matched_route(b, "GET", "/v1/items/special?b=1"),
                             "GET /v1/items/special")
            self.assertIsNone(self.matched_route(b, "GET", "/v1/items/special?a=1"))
            self.assertEqual(self.matched_route(b, "GET", "/v1/items/7?a=1"), "GET /v1/items/{id}")
        with Braced(self.routes_config(generic, special)) as b:
            # Written first, the generic route shadows the special one.
            self.assertEqual(self.matched_route(b, "GET", "/v1/items/special?a=1"),
                             "GET /v1/items/{id}")
            self.assertIsNone(self.matched_route(b, "GET", "/v1/items/special?b=1"))

    def test_routes_only_uses_the_same_matching(self):
        # Fails if routes_only matches differently from schema routes
        # ({id} across '/', /** by prefix); nothing may reach the upstream.
        profile = {"routes_only": True,
                   "routes": [{"match": "GET /v1/users/{id}"}, {"match": "* /files/**"}]}
        with Braced(self.config(profile)) as b:
            for method, path in (("GET", "/v1/users/1/2"), ("GET", "/v1/users"),
                                 ("DELETE", "/filesystem"), ("GET", "/v1/files/x")):
                with self.subTest(method=method, path=path):
                    resp = b.request(method, "/demo" + path)
                    self.assert_problem(resp, 404, "route_not_found", profile="demo")
            self.assert_upstream_untouched()
            ok = [b.get("/demo/v1/users/1"), b.request("DELETE", "/demo/files/x/y")]
        for resp in ok:
            self.assertEqual(resp.status, 200, resp)


class RequestQuerySchemaTest(SchemaTestCase):
    """SPEC 2 `request.query`: the query parameters as an object of strings."""

    def rejected(self, b, query):
        resp = b.get("/demo/v1/weather" + query)
        doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
        self.assertEqual(doc.get("route"), "GET /v1/weather", doc)
        return doc

    def test_too_short_city_is_422_and_nothing_is_sent(self):
        # Fails if the query is not validated, if the request is forwarded
        # anyway, or if the pointer does not name the parameter.
        with Braced(self.routes_config(weather_request_route())) as b:
            doc = self.rejected(b, "?city=X")
        self.assert_violations(doc, [("/city", "minLength")])
        self.assertIn("1 violation", doc["detail"], doc)
        self.assert_upstream_untouched()

    def test_missing_city_is_a_required_violation_at_the_root(self):
        # Fails if a missing required parameter is not reported, or reported
        # at the parameter instead of at the object that requires it.
        with Braced(self.routes_config(weather_request_route())) as b:
            for query in ("", "?unit=metric", "?City=Oslo"):
                with self.subTest(query=query):
                    self.assert_violations(self.rejected(b, query), [("", "required")])
        self.assert_upstream_untouched()

    def test_max_length_and_enum(self):
        # Fails if maxLength is off by one, or if the enum is not applied.
        with Braced(self.routes_config(weather_request_route())) as b:
            self.assert_violations(self.rejected(b, "?city=" + "a" * 101),
                                   [("/city", "maxLength")])
            self.assert_violations(self.rejected(b, "?city=Oslo&unit=kelvin"),
                                   [("/unit", "enum")])
            self.assert_upstream_untouched()
            ok = [b.get("/demo/v1/weather?city=" + "a" * 100),
                  b.get("/demo/v1/weather?city=Oslo&unit=imperial")]
        for resp in ok:
            self.assertEqual(resp.status, 200, resp)

    def test_a_valid_query_is_forwarded_unchanged(self):
        # Fails if validation rewrites the query it decoded.
        query = "city=S%C3%A3o+Paulo&unit=metric&other=%2Fx"
        with Braced(self.routes_config(weather_request_route())) as b:
            resp = b.get("/demo/v1/weather?" + query)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["query"], query)

    def test_values_are_form_decoded_before_validation(self):
        # Fails if percent-escapes or '+' are counted as written, or if
        # lengths count bytes instead of characters.
        passing = ["city=S%C3%A3o+Paulo",       # "São Paulo"
                   "city=a+",                   # "a ": two characters
                   "c%69ty=Oslo",               # the name is decoded too
                   "city=" + "%C3%A3" * 100]    # 100 characters in 200 bytes
        failing = ["city=%41",                  # "A": one character
                   "city=%C3%A3",               # "ã": one character in two bytes
                   "city=+"]                    # " ": one character
        # The decoded value itself: '+' is a space, %2B a plus sign.
        exact = {"match": "GET /v1/exact",
                 "request": {"query": {"properties": {"q": {"const": "S\u00e3o Paulo"}}}}}
        with Braced(self.routes_config(weather_request_route(), exact)) as b:
            for query in failing:
                with self.subTest(query=query):
                    self.assert_violations(self.rejected(b, "?" + query), [("/city", "minLength")])
            for query in ("q=S%C3%A3o%2BPaulo", "q=S%C3%A3o%20Paulo%20", "q=Sao+Paulo"):
                with self.subTest(query=query):
                    resp = b.get("/demo/v1/exact?" + query)
                    doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
                    self.assert_violations(doc, [("/q", "const")])
            self.assert_upstream_untouched()
            for query in passing:
                with self.subTest(query=query):
                    resp = b.get("/demo/v1/weather?" + query)
                    self.assertEqual(resp.status, 200, resp)
            for query in ("q=S%C3%A3o+Paulo", "q=S%c3%a3o%20Paulo"):
                with self.subTest(query=query):
                    resp = b.get("/demo/v1/exact?" + query)
                    self.assertEqual(resp.status, 200, resp)

    def test_pointer_escapes_the_parameter_name(self):
        # RFC 6901: '/' is "~1" and '~' is "~0" in a pointer. Fails if the
        # parameter name is pasted into the pointer as it is.
        schema = {"properties": {"a/b": {"minLength": 2}, "t~x": {"minLength": 2}}}
        route = {"match": "GET /v1/odd", "request": {"query": schema}}
        with Braced(self.routes_config(route)) as b:
            for query, pointer in (("a%2Fb=x", "/a~1b"), ("t~x=x", "/t~0x")):
                with self.subTest(query=query):
                    resp = b.get("/demo/v1/odd?" + query)
                    doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
                    self.assert_violations(doc, [(pointer, "minLength")])
        self.assert_upstream_untouched()

    def test_no_parameter_escapes_validation_in_a_long_query(self):
        # An invalid parameter after hundreds of others must still be
        # refused: enforce mode never forwards what it did not check.
        padding = "&".join(f"p{i}=1" for i in range(300))
        with Braced(self.routes_config(weather_request_route())) as b:
            resp = b.get(f"/demo/v1/weather?city=Oslo&{padding}&unit=kelvin")
        self.assertTrue(400 <= resp.status < 500, resp)
        self.assertIsNotNone(resp.headers.get("Brace-Error"), resp)
        self.assert_upstream_untouched()

    def test_every_value_of_a_repeated_parameter_is_validated(self):
        # Fails if only the first value of a repeated name is checked while
        # every copy is forwarded: an upstream reading the last would see kelvin.
        with Braced(self.routes_config(weather_request_route())) as b:
            bad = b.get("/demo/v1/weather?city=Oslo&unit=metric&unit=kelvin")
            good = b.get("/demo/v1/weather?city=Oslo&unit=metric&unit=imperial")
        doc = self.assert_problem(bad, 422, "request_invalid", profile="demo")
        self.assertEqual([(v["pointer"], v["keyword"]) for v in doc["violations"]],
                         [("/unit", "enum")], doc)
        self.assertEqual(good.status, 200, good)
        self.assertEqual(self.upstream.stats()["requests"], 1)

    def test_too_many_query_parameters_is_a_violation(self):
        padding = "&".join(f"p{i}=1" for i in range(1001))
        with Braced(self.routes_config(weather_request_route())) as b:
            resp = b.get(f"/demo/v1/weather?city=Oslo&{padding}")
        doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
        self.assertEqual(doc["violations"][0]["keyword"], "limit", doc)
        self.assert_upstream_untouched()

    def test_enforce_mode_is_logged_and_counted(self):
        # Fails if an enforced violation is not counted with mode "enforce".
        with Braced(self.routes_config(weather_request_route(), admin=True)) as b:
            self.rejected(b, "?city=X")
            self.rejected(b, "")
            lines = self.metric_lines(b)
        self.assertIn('braced_schema_violations_total{profile="demo",route="GET /v1/weather",'
                      'direction="request",mode="enforce"} 2', lines)

    def test_report_mode_forwards_logs_and_counts(self):
        # Fails if report mode rejects, if the request reaches the upstream
        # changed, or if the violation is not logged or counted as "report".
        with Braced(self.routes_config(weather_request_route("report"), admin=True)) as b:
            resp = b.get("/demo/v1/weather?city=X")
            lines = self.metric_lines(b)
            logs = self.violation_logs(b)
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.headers.get("Brace-Error"), resp)
        self.assertEqual(resp.json()["query"], "city=X")
        self.assertEqual([r["path"] for r in self.upstream.received()], ["/base/v1/weather"])
        self.assertEqual(len(logs), 1, logs)
        log = logs[0]
        self.assertEqual(log.get("level"), "warn", log)
        self.assertEqual(log.get("direction"), "request", log)
        self.assertEqual(log.get("mode"), "report", log)
        self.assertEqual(log.get("profile"), "demo", log)
        self.assertEqual(log.get("route"), "GET /v1/weather", log)
        self.assertEqual(lines, ['braced_schema_violations_total{profile="demo",'
                                 'route="GET /v1/weather",direction="request",mode="report"} 1'])

    def test_off_mode_validates_nothing(self):
        # Fails if mode off still rejects, logs or counts.
        with Braced(self.routes_config(weather_request_route("off"), admin=True)) as b:
            resp = b.get("/demo/v1/weather?city=X")
            missing = b.get("/demo/v1/weather")
            lines = self.metric_lines(b)
            logs = self.violation_logs(b)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(missing.status, 200, missing)
        self.assertEqual(self.upstream.stats()["requests"], 2)
        self.assertEqual(logs, [])
        self.assertEqual(lines, [])


class RequestBodySchemaTest(SchemaTestCase):
    """SPEC 2 `request.body`: the JSON request body of a route."""

    ORDER = {"type": "object", "required": ["item", "qty"],
             "properties": {"item": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}

    def order_config(self, schema=None):
        return self.routes_config({"match": "POST /v1/orders",
                                   "request": {"body": schema or self.ORDER}})

    def rejected(self, b, body):
        resp = b.request("POST", "/demo/v1/orders", body=body,
                         headers={"Content-Type": "application/json"})
        doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
        self.assertEqual(doc.get("route"), "POST /v1/orders", doc)
        return doc

    def test_valid_body_is_forwarded_unchanged(self):
        # Fails if a valid body is refused or re-serialized on the way.
        body = b'{ "qty": 2,\n  "item": "tea", "note": "extra is fine" }'
        with Braced(self.order_config()) as b:
            resp = b.request("POST", "/demo/v1/orders", body=body,
                             headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["body"], body.decode())

    def test_wrong_type_is_422_with_the_pointer_of_the_field(self):
        # Fails if nested types are not checked or the request is sent anyway.
        with Braced(self.order_config()) as b:
            doc = self.rejected(b, b'{"item": "tea", "qty": "two"}')
        self.assert_violations(doc, [("/qty", "type")])
        self.assert_upstream_untouched()

    def test_body_that_is_not_json_is_a_json_violation(self):
        # Fails if an unparsable body is forwarded or reported as another keyword.
        with Braced(self.order_config()) as b:
            for body in (b"item=tea&qty=2", b'{"item": "tea", "qty": 2', b'{"item": "tea"} x',
                         b"\xff\xfe"):
                with self.subTest(body=body):
                    self.assert_violations(self.rejected(b, body), [("", "json")])
        self.assert_upstream_untouched()

    def test_empty_body_is_a_violation(self):
        # Fails if a missing body skips the schema.
        with Braced(self.order_config()) as b:
            doc = self.rejected(b, b"")
        violations = doc.get("violations")
        self.assertTrue(violations, doc)
        self.assertEqual(violations[0].get("pointer"), "", doc)
        self.assert_upstream_untouched()

    def test_violations_are_capped_at_ten_and_the_detail_has_the_total(self):
        # Fails if the list grows without bound, or the detail counts only
        # the kept entries.
        schema = {"type": "object",
                  "properties": {f"p{i:02d}": {"type": "integer"} for i in range(15)}}
        body = json.dumps({f"p{i:02d}": "x" for i in range(15)}).encode()
        with Braced(self.order_config(schema)) as b:
            doc = self.rejected(b, body)
        violations = doc.get("violations")
        self.assertEqual(len(violations), 10, doc)
        self.assertEqual({v["keyword"] for v in violations}, {"type"}, doc)
        self.assertEqual(len({v["pointer"] for v in violations}), 10, doc)
        for v in violations:
            self.assertRegex(v["pointer"], r"^/p\d\d$", doc)
        self.assertRegex(doc["detail"], r"\b15\b", doc)
        self.assert_upstream_untouched()


class ResponseSchemaTest(SchemaTestCase):
    """SPEC 2 `response`: the upstream's body checked before the app sees it."""

    def drifted(self, route, body, status=200, **extra):
        with Braced(self.routes_config(route)) as b:
            return b.get("/demo/v1/weather?city=Oslo", headers=answer(body, status, **extra))

    def assert_schema_violation(self, resp, expected, upstream_status=200):
        doc = self.assert_problem(resp, 502, "schema_violation", profile="demo")
        self.assertEqual(doc.get("route"), "GET /v1/weather", doc)
        self.assertEqual(doc.get("upstream_status"), upstream_status, doc)
        self.assert_violations(doc, expected)
        return doc

    def test_conforming_body_passes_byte_for_byte(self):
        # An extra field is allowed (SPEC 2). Fails if extra properties are
        # refused or the body is re-serialized.
        text = ('{"city":"Oslo",  "temperature": 3.5, "condition": "rain",\n'
                '"source_latency_ms": 12, "extra": {"nested": [1, 2.50]}}')
        resp = self.drifted(weather_response_route(), text)
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.headers.get("Brace-Error"), resp)
        self.assertEqual(resp.body, text.encode())

    def test_missing_required_field_is_502(self):
        # Fails if `required` is not checked in responses, or the problem
        # lacks upstream_status or the violation.
        resp = self.drifted(weather_response_route(), without(GOOD_WEATHER, "temperature"))
        self.assert_schema_violation(resp, [("", "required")])

    def test_wrong_type_names_the_field(self):
        resp = self.drifted(weather_response_route(), dict(GOOD_WEATHER, temperature="hot"))
        self.assert_schema_violation(resp, [("/temperature", "type")])

    def test_chunked_body_is_validated_too(self):
        # Fails if only bodies with a Content-Length are checked.
        resp = self.drifted(weather_response_route(), dict(GOOD_WEATHER, temperature="hot"),
                            chunked=True)
        self.assert_schema_violation(resp, [("/temperature", "type")])

    def test_body_that_is_not_json_is_a_json_violation(self):
        for text in ("<html>oops</html>", "", '{"city": "Oslo"'):
            with self.subTest(text=text):
                resp = self.drifted(weather_response_route(), text)
                self.assert_schema_violation(resp, [("", "json")])

    def test_status_outside_statuses_is_not_validated(self):
        # statuses [200]: a drifted 201 passes as sent. Fails if `statuses`
        # is ignored.
        text = json.dumps({"city": 1})
        resp = self.drifted(weather_response_route(statuses=[200]), text, status=201)
        self.assertEqual(resp.status, 201, resp)
        self.assertEqual(resp.body, text.encode())

    def test_default_statuses_are_every_2xx(self):
        # Without `statuses` a 201 and a 203 are validated, a redirect is
        # not. Fails if the default is [200] only, or covers 3xx.
        route = weather_response_route(statuses=None)
        for status in (200, 201, 203):
            with self.subTest(status=status):
                resp = self.drifted(route, without(GOOD_WEATHER, "city"), status=status)
                self.assert_schema_violation(resp, [("", "required")], upstream_status=status)
        resp = self.drifted(route, {"city": 1}, status=302, headers={"Location": "/x"})
        self.assertEqual(resp.status, 302, resp)

    def test_enforce_mode_is_logged_and_counted(self):
        # Fails if an enforced response violation is not logged or counted.
        with Braced(self.routes_config(weather_response_route(), admin=True)) as b:
            resp = b.get("/demo/v1/weather?city=Oslo", headers=answer({"city": "Oslo"}))
            lines = self.metric_lines(b)
            logs = self.violation_logs(b)
        self.assert_problem(resp, 502, "schema_violation")
        self.assertEqual([(l.get("level"), l.get("direction"), l.get("mode")) for l in logs],
                         [("warn", "response", "enforce")], logs)
        self.assertEqual(lines, ['braced_schema_violations_total{profile="demo",'
                                 'route="GET /v1/weather",direction="response",mode="enforce"} 1'])

    def test_no_content_answers_are_not_validated(self):
        # 204 and 205 have no content (RFC 9110 15.3.5, 15.3.6): there is no
        # body to hold to a schema, like the answer to HEAD. Fails if the
        # default "all 2xx" turns every 204 into a 502 "json" violation.
        route = dict(weather_response_route(statuses=None), match="* /v1/weather")
        with Braced(self.routes_config(route)) as b:
            for status in (204, 205):
                with self.subTest(status=status):
                    resp = b.request("DELETE", "/demo/v1/weather", headers=fault(status=status))
                    self.assertEqual(resp.status, status, resp)
                    self.assertIsNone(resp.headers.get("Brace-Error"), resp)

    def test_report_mode_passes_the_drifted_body_and_counts_it(self):
        # Fails if report mode changes the answer, or does not log and count.
        text = json.dumps(dict(GOOD_WEATHER, temperature="hot"))
        with Braced(self.routes_config(weather_response_route("report"), admin=True)) as b:
            resp = b.get("/demo/v1/weather?city=Oslo", headers=answer(text))
            lines = self.metric_lines(b)
            logs = self.violation_logs(b)
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.headers.get("Brace-Error"), resp)
        self.assertEqual(resp.body, text.encode())
        self.assertEqual(len(logs), 1, logs)
        self.assertEqual(logs[0].get("level"), "warn", logs)
        self.assertEqual(logs[0].get("direction"), "response", logs)
        self.assertEqual(logs[0].get("mode"), "report", logs)
        self.assertEqual(lines, ['braced_schema_violations_total{profile="demo",'
                                 'route="GET /v1/weather",direction="response",mode="report"} 1'])

    def test_off_mode_validates_nothing(self):
        text = json.dumps({"city": 1})
        resp = self.drifted(weather_response_route("off"), text)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, text.encode())

    def test_identity_encoding_is_validated(self):
        # "identity" is no encoding at all. Fails if any Content-Encoding
        # header turns validation off.
        resp = self.drifted(weather_response_route(), {"city": "Oslo"},
                            headers={"Content-Encoding": "identity"})
        self.assert_problem(resp, 502, "schema_violation")


class ResponseSchemaRetryTest(SchemaTestCase):
    """SPEC 4.2-4.3: `schema` outcomes and retry.on_schema_violation, set on the route."""

    BAD = {"status": 200, "body": json.dumps(without(GOOD_WEATHER, "temperature")),
           "headers": {"Content-Type": "application/json"}}
    GOOD = {"status": 200, "body": json.dumps(GOOD_WEATHER),
            "headers": {"Content-Type": "application/json"}}

    def retry_route(self, on_schema_violation):
        retry = {"attempts": 3, "backoff": FAST}
        if on_schema_violation is not None:
            retry["on_schema_violation"] = on_schema_violation
        return weather_response_route(retry=retry)

    def test_bad_bad_good_succeeds_on_the_third_attempt(self):
        # Fails if a schema outcome is not retried, or the good answer is lost.
        self.upstream.script([self.BAD, self.BAD, self.GOOD])
        with Braced(self.routes_config(self.retry_route(True))) as b:
            resp = b.get("/demo/v1/weather?city=Oslo")
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.headers.get("Brace-Error"), resp)
        self.assertEqual(resp.json(), GOOD_WEATHER)
        self.assertEqual(resp.headers.get("Brace-Attempts"), "3", resp)
        self.assertEqual(self.upstream.stats()["requests"], 3)

    def test_always_bad_ends_in_502_with_a_schema_history(self):
        # Fails if the history does not name the schema outcome, or the last
        # violations are not reported.
        self.upstream.script([self.BAD] * 3)
        with Braced(self.routes_config(self.retry_route(True))) as b:
            resp = b.get("/demo/v1/weather?city=Oslo")
        doc = self.assert_problem(resp, 502, "schema_violation", profile="demo")
        self.assert_violations(doc, [("", "required")])
        self.assertEqual(doc.get("attempts"), 3, doc)
        self.assertEqual(doc.get("upstream_status"), 200, doc)
        history = doc.get("history")
        self.assertEqual([(h.get("attempt"), h.get("outcome"), h.get("status")) for h in history],
                         [(1, "schema", 200), (2, "schema", 200), (3, "schema", 200)], doc)
        self.assertEqual(self.upstream.stats()["requests"], 3)

    def test_route_retry_override_stays_on_its_route(self):
        # The route's `retry` overrides the defaults (1 attempt) on that route
        # only. Fails if the override leaks to the profile or is not applied.
        self.upstream.script([{"status": 503}, {"status": 503}, self.GOOD, {"status": 503}, {}])
        with Braced(self.routes_config(self.retry_route(True))) as b:
            on_route = b.get("/demo/v1/weather?city=Oslo")
            elsewhere = b.get("/demo/v1/other")
        self.assertEqual(on_route.status, 200, on_route)
        self.assertEqual(on_route.headers.get("Brace-Attempts"), "3", on_route)
        self.assert_upstream_error(elsewhere, 503)
        self.assertEqual(elsewhere.headers.get("Brace-Attempts"), "1", elsewhere)
        self.assertEqual(self.upstream.stats()["requests"], 4)

    def test_without_on_schema_violation_there_is_no_retry(self):
        # Fails if schema outcomes are retried by default (SPEC 2: false).
        for setting in (None, False):
            with self.subTest(on_schema_violation=setting):
                self.upstream.reset()
                self.upstream.script([self.BAD, self.GOOD, self.GOOD])
                with Braced(self.routes_config(self.retry_route(setting))) as b:
                    resp = b.get("/demo/v1/weather?city=Oslo")
                doc = self.assert_problem(resp, 502, "schema_violation", profile="demo")
                self.assertEqual(doc.get("attempts"), 1, doc)
                self.assertEqual(resp.headers.get("Brace-Attempts"), "1", resp)
                self.assertEqual(self.upstream.stats()["requests"], 1)


CHECK_SCHEMA = """\
listen: 127.0.0.1:0
admin: "off"
profiles:
  demo:
    upstream: {upstream}
    routes:
      - match: GET /v1/weather
        request:
          query:
            type: object
            required: [city]
            properties:
              city:
                {bad}
"""
SCHEMA_LINE = 10        # the line where the query schema starts ("type: object")
BAD_LINE = 14           # the line of {bad}


class SchemaConfigTest(SchemaTestCase):
    """Schemas in the configuration: compiled at load time, errors with a position."""

    def assert_schema_error(self, bad, pointer, files=None):
        b = Braced(CHECK_SCHEMA.format(upstream=self.upstream.url(), bad=bad), files=files)
        code, out, err = b.check_config()
        self.assertEqual(code, 1, out + err)
        m = re.search(rf"^{re.escape(b.config_path)}:(\d+):(\d+): .*invalid schema.*$", err, re.M)
        self.assertIsNotNone(m, err)
        # The position of the schema, or of the offending keyword in it.
        self.assertIn(int(m.group(1)), (SCHEMA_LINE, BAD_LINE), err)
        self.assertIn(pointer, m.group(0), err)

    def test_negative_max_length(self):
        self.assert_schema_error("maxLength: -1", "#/properties/city/maxLength")

    def test_invalid_regular_expression(self):
        self.assert_schema_error('pattern: "(?<bad"', "#/properties/city/pattern")

    def test_ref_to_a_missing_file(self):
        self.assert_schema_error('$ref: "missing.json#/definitions/city"', "#/properties/city")

    def test_ref_to_a_missing_definition_in_an_existing_file(self):
        common = json.dumps({"definitions": {"town": {"type": "string"}}})
        self.assert_schema_error('$ref: "common.json#/definitions/city"', "#/properties/city",
                                 files={"common.json": common})

    def test_ref_to_a_file_next_to_the_configuration(self):
        # Fails if the file is looked for elsewhere (the working directory
        # of braced is the same directory, so -t runs from another one), or
        # if the referenced schema is not applied.
        common = json.dumps({"definitions": {
            "city": {"type": "string", "minLength": 2, "maxLength": 100}}})
        config = CHECK_SCHEMA.format(upstream=self.upstream.url("/base"),
                                     bad='$ref: "common.json#/definitions/city"')
        files = {"common.json": common}
        code, out, err = Braced(config, files=files).check_config()
        self.assertEqual(code, 0, out + err)
        self.assertRegex(out, r": ok\n?$")
        with Braced(config, files=files) as b:
            short = b.get("/demo/v1/weather?city=X")
            ok = b.get("/demo/v1/weather?city=Oslo")
        doc = self.assert_problem(short, 422, "request_invalid", profile="demo")
        self.assert_violations(doc, [("/city", "minLength")])
        self.assertEqual(ok.status, 200, ok)
        self.assertEqual(self.upstream.stats()["requests"], 1)


YAML_TYPES = """\
listen: 127.0.0.1:0
admin: "off"
defaults:
  retry: {{attempts: 1}}
profiles:
  demo:
    upstream: {upstream}
    routes:
      - match: GET /v1/typed
        request:
          query:
            properties:
              answer: {{enum: [yes, no, on, off]}}
              n: {{enum: [1, "2"]}}
"""


class YamlTypingTest(SchemaTestCase):
    """SPEC 2: schema scalars are typed as in YAML 1.2's core schema."""

    def test_yaml_1_2_scalars_in_a_schema(self):
        # yes/no/on/off are strings in YAML 1.2 (booleans only in 1.1); a
        # plain 1 is an integer, a quoted "2" a string, and query values are
        # strings. Fails on YAML 1.1 typing or if every scalar is a string.
        with Braced(YAML_TYPES.format(upstream=self.upstream.url("/base"))) as b:
            for query in ("answer=yes", "answer=off", "n=2"):
                with self.subTest(query=query):
                    self.assertEqual(b.get("/demo/v1/typed?" + query).status, 200)
            for query, pointer in (("answer=true", "/answer"), ("n=1", "/n")):
                with self.subTest(query=query):
                    resp = b.get("/demo/v1/typed?" + query)
                    doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
                    self.assert_violations(doc, [(pointer, "enum")])
        self.assertEqual(self.upstream.stats()["requests"], 3)


class SchemaReloadTest(SchemaTestCase):
    """SPEC 6: SIGHUP swaps schemas; requests in flight keep the ones they started with."""

    def test_in_flight_answer_is_judged_by_the_old_schema(self):
        # Fails if an answer is validated against a schema loaded after its
        # request started (or against a freed one).
        renamed = dict(without(GOOD_WEATHER, "temperature"), temp=3.5)
        new_body = dict(WEATHER_BODY, required=["city", "temp"])
        new_route = {"match": "GET /v1/weather", "response": {"body": new_body}}
        with Braced(self.routes_config(weather_response_route())) as b:
            slow = Background(b.get, "/demo/v1/weather?city=Oslo",
                              answer(renamed, delay_ms=1000))
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 1, timeout=3))
            b.reload(self.routes_config(new_route))
            in_flight = slow.result(timeout=10)
            after = b.get("/demo/v1/weather?city=Oslo", headers=answer(renamed))
        self.assert_problem(in_flight, 502, "schema_violation")
        self.assertEqual(after.status, 200, after)
        self.assertEqual(after.json(), renamed)

    def test_reload_with_an_invalid_schema_keeps_the_old_one(self):
        broken = dict(WEATHER_QUERY, properties={"city": {"type": "string", "maxLength": -1}})
        bad_route = {"match": "GET /v1/weather", "request": {"query": broken}}
        with Braced(self.routes_config(weather_request_route())) as b:
            lines = b.reload(self.routes_config(bad_route))
            resp = b.get("/demo/v1/weather?city=X")
        self.assertTrue([l for l in lines if l.get("level") == "error"], lines)
        doc = self.assert_problem(resp, 422, "request_invalid")
        self.assert_violations(doc, [("/city", "minLength")])
        self.assert_upstream_untouched()


class DemoConfigTest(SchemaTestCase):
    """conf/braced.yaml, the configuration scripts/run starts, with its weather schemas."""

    demo_upstream = True
    CONF = os.path.join(REPO, "conf", "braced.yaml")

    def test_check_config_accepts_the_demo(self):
        code, out, err = run_braced(["-t", "-c", self.CONF])
        self.assertEqual(code, 0, out + err)
        self.assertEqual(out.strip(), f"{self.CONF}: ok")

    def test_demo_upstream_conforms_to_the_demo_schemas(self):
        # The demo's schemas and the demo upstream agree: a valid question
        # gets the upstream's answer through the enforced response schema,
        # a bad one is refused by the request schema.
        with open(self.CONF) as f:
            text = f.read()
        for old, new in (("listen: 127.0.0.1:7070", "listen: 127.0.0.1:0"),
                         ("admin: 127.0.0.1:7071", 'admin: "off"'),
                         ("upstream: http://127.0.0.1:7080", f"upstream: {self.upstream.url()}")):
            self.assertIn(old, text, "conf/braced.yaml changed; update this test")
            text = text.replace(old, new)
        with Braced(text) as b:
            good = [b.get("/demo/v1/weather?city=Paris"),
                    b.get("/demo/v1/weather?city=S%C3%A3o+Paulo&unit=imperial")]
            bad = b.get("/demo/v1/weather?city=P")
        for resp in good:
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(set(resp.json()), set(WEATHER_BODY["required"]), resp)
        doc = self.assert_problem(bad, 422, "request_invalid", profile="demo")
        self.assert_violations(doc, [("/city", "minLength")])
        self.assertEqual(self.upstream.stats()["requests"], 2)


if __name__ == "__main__":
    unittest.main()
