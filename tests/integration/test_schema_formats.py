"""Formats and content asserted (schema_formats: assert, the default) or
left as annotations (schema_formats: annotate), and a Pydantic v2
model_json_schema() pasted into a route as it is: the upstream drifting
from `"observed_at": "2024-01-15T08:00:00Z"` to `"yesterday"` is a 502
schema_violation in enforce mode and a counted violation in report mode.
"""

import json
import re
import unittest

from harness import Braced, BracedTestCase, fault, request

# Weather.model_json_schema() of Pydantic v2 for
#   class Weather(BaseModel):
#       city: str
#       temperature: float
#       condition: Literal["sunny", "cloudy", "rain", "snow"]
#       observed_at: datetime
#       station_id: UUID | None = None
PYDANTIC_WEATHER = {
    "properties": {
        "city": {"title": "City", "type": "string"},
        "temperature": {"title": "Temperature", "type": "number"},
        "condition": {"enum": ["sunny", "cloudy", "rain", "snow"], "title": "Condition",
                      "type": "string"},
        "observed_at": {"format": "date-time", "title": "Observed At", "type": "string"},
        "station_id": {"anyOf": [{"format": "uuid", "type": "string"}, {"type": "null"}],
                       "default": None, "title": "Station Id"},
    },
    "required": ["city", "temperature", "condition", "observed_at"],
    "title": "Weather",
    "type": "object",
}
GOOD = {"city": "Oslo", "temperature": 3.5, "condition": "rain",
        "observed_at": "2024-01-15T08:00:00Z", "station_id": None}
DRIFTED = dict(GOOD, observed_at="yesterday")

# The schema pasted as JSON (JSON is YAML) into a route; {policy} is a
# line of route keys, {defaults} and {profile} lines of policy keys.
CONFIG = """\
listen: 127.0.0.1:0
admin: 127.0.0.1:0
log: {{format: json, level: info}}
defaults:
  retry: {{attempts: 1}}
{defaults}
profiles:
  demo:
    upstream: {upstream}
{profile}
    routes:
      - match: GET /v1/weather
{policy}
        response:
          statuses: [200]
          mode: {mode}
          body: {schema}
      - match: POST /v1/orders
{policy}
        request:
          mode: {mode}
          body: {{"type": "object", "required": ["id"], "properties": {{"id": {{"type": "string", "format": "uuid"}}, "payload": {{"type": "string", "contentMediaType": "application/json"}}}}}}
"""


def answer(doc):
    return fault(status=200, body=json.dumps(doc), headers={"Content-Type": "application/json"})


class FormatTestCase(BracedTestCase):

    def braced(self, mode="enforce", policy="", profile="", defaults=""):
        return Braced(CONFIG.format(upstream=self.upstream.url("/base"), mode=mode,
                                    schema=json.dumps(PYDANTIC_WEATHER),
                                    policy=f"        {policy}" if policy else "",
                                    profile=f"    {profile}" if profile else "",
                                    defaults=f"  {defaults}" if defaults else ""))

    def metric_lines(self, b):
        text = request(b.admin_port, "GET", "/metrics").body.decode()
        return [l for l in text.splitlines() if l.startswith("braced_schema_violations_total{")]

    def weather(self, b, doc):
        return b.get("/demo/v1/weather?city=Oslo", headers=answer(doc))


class PydanticDriftTest(FormatTestCase):
    """A model_json_schema() pasted into a route holds the upstream to it."""

    def test_enforce_refuses_a_date_time_that_is_not_one(self):
        # Fails if format is an annotation by default, or the violation does
        # not name the field and the format.
        with self.braced() as b:
            good = self.weather(b, GOOD)
            bad = self.weather(b, DRIFTED)
            lines = self.metric_lines(b)
        self.assertEqual(good.status, 200, good)
        self.assertEqual(good.json(), GOOD)
        doc = self.assert_problem(bad, 502, "schema_violation", profile="demo")
        self.assertEqual(doc.get("upstream_status"), 200, doc)
        self.assertEqual([(v["pointer"], v["keyword"]) for v in doc["violations"]],
                         [("/observed_at", "format")], doc)
        self.assertIn("date-time", doc["violations"][0]["message"], doc)
        self.assertIn("yesterday", doc["violations"][0]["message"], doc)
        self.assertEqual(lines, ['braced_schema_violations_total{profile="demo",'
                                 'route="GET /v1/weather",direction="response",mode="enforce"} 1'])

    def test_report_passes_the_drift_and_counts_it(self):
        # Fails if report mode changes the answer or does not count it.
        text = json.dumps(DRIFTED)
        with self.braced(mode="report") as b:
            resp = b.get("/demo/v1/weather?city=Oslo",
                         headers=fault(status=200, body=text,
                                       headers={"Content-Type": "application/json"}))
            lines = self.metric_lines(b)
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.headers.get("Brace-Error"), resp)
        self.assertEqual(resp.body, text.encode())
        self.assertEqual(lines, ['braced_schema_violations_total{profile="demo",'
                                 'route="GET /v1/weather",direction="response",mode="report"} 1'])

    def test_optional_uuid_is_null_or_a_uuid(self):
        with self.braced() as b:
            some = self.weather(b, dict(GOOD, station_id="2eb8aa08-aa98-11ea-b4aa-73b441d16380"))
            bad = self.weather(b, dict(GOOD, station_id="station-7"))
        self.assertEqual(some.status, 200, some)
        doc = self.assert_problem(bad, 502, "schema_violation", profile="demo")
        self.assertEqual([(v["pointer"], v["keyword"]) for v in doc["violations"]],
                         [("/station_id", "anyOf")], doc)


class SchemaFormatsKeyTest(FormatTestCase):
    """schema_formats: annotate in a route, a profile or the defaults."""

    def test_annotate_lets_the_drift_through_wherever_it_is_set(self):
        # Fails if the key is refused at any level, or formats are still checked.
        for where in ("policy", "profile", "defaults"):
            with self.subTest(where=where):
                with self.braced(**{where: "schema_formats: annotate"}) as b:
                    resp = self.weather(b, DRIFTED)
                    lines = self.metric_lines(b)
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(lines, [])

    def test_a_route_can_assert_under_annotating_defaults(self):
        with self.braced(policy="schema_formats: assert",
                         defaults="schema_formats: annotate") as b:
            resp = self.weather(b, DRIFTED)
        self.assert_problem(resp, 502, "schema_violation", profile="demo")

    def test_an_unknown_value_is_a_configuration_error(self):
        code, out, err = self.braced(profile="schema_formats: strict").check_config()
        self.assertEqual(code, 1, out + err)
        self.assertIn("schema_formats", err)


class RequestFormatTest(FormatTestCase):
    """Formats and content of a request body, checked before anything is sent."""

    def post(self, b, doc):
        return b.request("POST", "/demo/v1/orders", body=json.dumps(doc).encode(),
                         headers={"Content-Type": "application/json"})

    def test_uuid_and_json_content(self):
        with self.braced() as b:
            ok = self.post(b, {"id": "2eb8aa08-aa98-11ea-b4aa-73b441d16380",
                               "payload": '{"a": 1}'})
            bad_id = self.post(b, {"id": "42"})
            bad_payload = self.post(b, {"id": "2eb8aa08-aa98-11ea-b4aa-73b441d16380",
                                        "payload": "{a: 1}"})
        self.assertEqual(ok.status, 200, ok)
        doc = self.assert_problem(bad_id, 422, "request_invalid", profile="demo")
        self.assertEqual([(v["pointer"], v["keyword"]) for v in doc["violations"]],
                         [("/id", "format")], doc)
        doc = self.assert_problem(bad_payload, 422, "request_invalid", profile="demo")
        self.assertEqual([(v["pointer"], v["keyword"]) for v in doc["violations"]],
                         [("/payload", "contentMediaType")], doc)
        self.assertEqual(self.upstream.stats()["requests"], 1)


class EcmaPatternTest(BracedTestCase):
    """A pattern with syntax ECMA-262 lacks is refused when the configuration loads."""

    def test_backslash_z_is_a_schema_error(self):
        config = CONFIG.format(upstream=self.upstream.url("/base"), mode="enforce",
                               schema=json.dumps({"properties": {"city": {
                                   "type": "string", "pattern": "^[A-Z][a-z]+\\Z"}}}),
                               policy="", profile="", defaults="")
        b = Braced(config)
        code, out, err = b.check_config()
        self.assertEqual(code, 1, out + err)
        self.assertRegex(err, rf"^{re.escape(b.config_path)}:\d+:\d+: .*invalid schema: "
                              r"#/properties/city/pattern: .*ECMA-262", )


if __name__ == "__main__":
    unittest.main()
