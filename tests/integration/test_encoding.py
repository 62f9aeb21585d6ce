"""Encoded bodies and the cost of validation on schema routes (SPEC 2,
`limits.max_validated_body`): gzip, x-gzip and deflate answers are decoded
for validation only and relayed exactly as the upstream sent them; any other
content coding, or data that does not decode, is a violation of keyword
`encoding`; a body (or a decoded body, or an encoded one) over
max_validated_body is a violation of keyword `size`, refused in enforce
mode and counted in report mode, and a compression bomb costs braced no
more than the limit.
"""

import base64
import gzip
import json
import os
import zlib

from harness import Braced, fault, request
from test_schema import GOOD_WEATHER, SchemaTestCase, weather_response_route

JSON = {"Content-Type": "application/json"}


def encoded(data, coding, status=200):
    """An X-Fault header: the upstream answers the bytes `data` with this Content-Encoding."""
    return fault(status=status, body_b64=base64.b64encode(data).decode(),
                 headers=dict(JSON, **{"Content-Encoding": coding}))


def raw_deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def peak_kib(pid):
    """VmHWM of process pid: the most resident memory it ever had, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith("VmHWM:")][0].split()[1])


def big_weather(size):
    """A document valid against the weather schema, of at least `size` bytes of JSON."""
    return dict(GOOD_WEATHER, padding="x" * size)


class EncodedResponseTest(SchemaTestCase):
    """Content-Encoding on a route with a response schema in enforce mode."""

    def fetch(self, data, coding):
        with Braced(self.routes_config(weather_response_route())) as b:
            return b.get("/demo/v1/weather?city=Oslo",
                         headers=dict(encoded(data, coding), **{"Accept-Encoding": coding}))

    def assert_violation(self, resp, keyword):
        doc = self.assert_problem(resp, 502, "schema_violation", profile="demo")
        self.assertEqual(doc.get("upstream_status"), 200, doc)
        self.assert_violations(doc, [("", keyword)])
        return doc

    def assert_relayed(self, resp, data, coding):
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.headers.get("Brace-Error"), resp)
        self.assertEqual(resp.headers.get("Content-Encoding"), coding, resp)
        self.assertEqual(resp.body, data)

    def test_unknown_coding_is_an_encoding_violation(self):
        # The hole this closes: an invalid body labelled with a coding braced
        # cannot read passed the schema unvalidated. Fails if any unknown
        # coding still skips validation.
        for coding in ("x-none", "br", "gzip, x-none"):
            with self.subTest(coding=coding):
                resp = self.fetch(b'{"city": 1}', coding)
                doc = self.assert_violation(resp, "encoding")
                self.assertIn(coding.split(", ")[-1], doc["violations"][0]["message"], doc)

    def test_valid_gzip_and_deflate_bodies_are_relayed_as_sent(self):
        # Fails if a valid encoded body is refused, or relayed decoded or
        # without its Content-Encoding.
        text = json.dumps(GOOD_WEATHER).encode()
        cases = [("gzip", gzip.compress(text)), ("x-gzip", gzip.compress(text)),
                 ("deflate", zlib.compress(text)), ("deflate", raw_deflate(text)),
                 ("gzip, gzip", gzip.compress(gzip.compress(text))),
                 ("deflate, gzip", gzip.compress(zlib.compress(text)))]
        route = weather_response_route()
        with Braced(self.routes_config(route)) as b:
            for coding, data in cases:
                with self.subTest(coding=coding, raw=data[:1] != b"\x78"):
                    resp = b.get("/demo/v1/weather?city=Oslo",
                                 headers=dict(encoded(data, coding),
                                              **{"Accept-Encoding": "gzip, deflate"}))
                    self.assert_relayed(resp, data, coding)

    def test_gzip_of_an_invalid_body_fails_its_schema(self):
        # Fails if the decoded body is not validated, or the compressed bytes
        # are parsed as JSON (a `json` violation).
        bad = dict(GOOD_WEATHER, temperature="hot")
        for coding, data in (("gzip", gzip.compress(json.dumps(bad).encode())),
                             ("deflate", zlib.compress(json.dumps(bad).encode()))):
            with self.subTest(coding=coding):
                doc = self.assert_problem(self.fetch(data, coding), 502, "schema_violation")
                self.assert_violations(doc, [("/temperature", "type")])

    def test_body_that_does_not_decode_is_an_encoding_violation(self):
        # Fails if corrupt or truncated data passes, or is parsed as JSON.
        good = gzip.compress(json.dumps(GOOD_WEATHER).encode())
        for name, data, coding in (("text", json.dumps(GOOD_WEATHER).encode(), "gzip"),
                                   ("truncated", good[:-6], "gzip"),
                                   ("trailing", good + b"junk", "gzip"),
                                   ("reserved block", b"\xff\xff\xff\xff", "deflate")):
            with self.subTest(name=name, coding=coding):
                doc = self.assert_violation(self.fetch(data, coding), "encoding")
                self.assertIn(coding, doc["violations"][0]["message"], doc)

    def test_identity_is_validated_as_before(self):
        # Fails if `identity` (no coding at all) skips or breaks validation.
        resp = self.fetch(json.dumps(dict(GOOD_WEATHER, city=None)).encode(), "identity")
        doc = self.assert_problem(resp, 502, "schema_violation")
        self.assert_violations(doc, [("/city", "type")])

    def test_gzip_bomb_is_a_size_violation_and_braced_carries_on(self):
        # 100 MB of zeros in about 100 KB of gzip: braced stops inflating at
        # max_validated_body (2MiB by default). Fails if the bomb passes, is
        # inflated whole (too slow, or the daemon dies), or leaves braced
        # unable to serve the next request.
        bomb = gzip.compress(bytes(100 * 1000 * 1000), 9)
        self.assertLess(len(bomb), 1024 * 1024)
        with Braced(self.routes_config(weather_response_route())) as b:
            before = peak_kib(b.proc.pid)
            # Too large for an X-Fault header: the upstream is scripted.
            self.upstream.script([json.loads(encoded(bomb, "gzip")["X-Fault"])])
            resp = b.get("/demo/v1/weather?city=Oslo")
            doc = self.assert_violation(resp, "size")
            self.assertIn("max_validated_body", doc["violations"][0]["message"], doc)
            grown = peak_kib(b.proc.pid) - before
            after = b.get("/demo/v1/weather?city=Oslo",
                          headers=encoded(gzip.compress(json.dumps(GOOD_WEATHER).encode()),
                                          "gzip"))
        self.assertEqual(after.status, 200, after)
        # The peak grew by a few MiB, far below the 100 MB the bomb decodes to.
        self.assertLess(grown, 32 * 1024, f"peak RSS grew by {grown} KiB")


class ValidatedSizeTest(SchemaTestCase):
    """limits.max_validated_body: checked before json-c parses anything."""

    def limited(self, route, admin=False):
        """One profile `demo` with this route, and max_validated_body 1KiB."""
        top = {"admin": "127.0.0.1:0"} if admin else {}
        return self.config({"routes": [route]}, limits={"max_validated_body": "1KiB"}, **top)

    def test_response_over_the_limit_is_refused_in_enforce_mode(self):
        # A valid document, but too large to validate. Fails if it is parsed
        # anyway and passes, or refused with another keyword.
        text = json.dumps(big_weather(2048))
        cfg = self.limited(weather_response_route())
        with Braced(cfg) as b:
            resp = b.get("/demo/v1/weather?city=Oslo",
                         headers=fault(status=200, body=text, headers=JSON))
            small = b.get("/demo/v1/weather?city=Oslo",
                          headers=fault(status=200, body=json.dumps(GOOD_WEATHER), headers=JSON))
        doc = self.assert_problem(resp, 502, "schema_violation", profile="demo")
        self.assert_violations(doc, [("", "size")])
        self.assertIn(str(len(text)), doc["violations"][0]["message"], doc)
        self.assertEqual(small.status, 200, small)

    def test_response_over_the_limit_passes_in_report_mode_and_is_counted(self):
        # Fails if report mode refuses the body, or does not count it.
        text = json.dumps(big_weather(2048))
        cfg = self.limited(weather_response_route("report"), admin=True)
        with Braced(cfg) as b:
            resp = b.get("/demo/v1/weather?city=Oslo",
                         headers=fault(status=200, body=text, headers=JSON))
            lines = self.metric_lines(b)
            logs = self.violation_logs(b)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, text.encode())
        self.assertEqual([(l.get("keyword"), l.get("mode")) for l in logs], [("size", "report")])
        self.assertEqual(lines, ['braced_schema_violations_total{profile="demo",'
                                 'route="GET /v1/weather",direction="response",mode="report"} 1'])

    def test_decoded_and_encoded_sizes_are_both_held_to_the_limit(self):
        # A small gzip that decodes past the limit, and an incompressible
        # gzip whose own length is past it. Fails if either is validated.
        big = gzip.compress(json.dumps(big_weather(4096)).encode())
        self.assertLess(len(big), 1024)
        noise = base64.b64encode(os.urandom(2048)).decode()
        wide = gzip.compress(json.dumps(dict(GOOD_WEATHER, padding=noise)).encode())
        self.assertGreater(len(wide), 1024)
        cfg = self.limited(weather_response_route())
        with Braced(cfg) as b:
            for name, data in (("decoded", big), ("encoded", wide)):
                with self.subTest(name=name):
                    resp = b.get("/demo/v1/weather?city=Oslo", headers=encoded(data, "gzip"))
                    doc = self.assert_problem(resp, 502, "schema_violation")
                    self.assert_violations(doc, [("", "size")])

    def test_request_body_over_the_limit_is_422_and_not_sent(self):
        # Fails if the body is parsed and forwarded, or refused with another
        # keyword or status.
        schema = {"type": "object", "required": ["item"]}
        body = json.dumps({"item": "tea", "note": "x" * 2048}).encode()
        cfg = self.limited({"match": "POST /v1/orders", "request": {"body": schema}})
        with Braced(cfg) as b:
            resp = b.request("POST", "/demo/v1/orders", body=body, headers=JSON)
        doc = self.assert_problem(resp, 422, "request_invalid", profile="demo")
        self.assert_violations(doc, [("", "size")])
        self.assert_upstream_untouched()

    def test_request_body_over_the_limit_passes_in_report_mode(self):
        # Fails if report mode refuses the body or forgets to count it.
        schema = {"type": "object", "required": ["item"]}
        body = json.dumps({"item": "tea", "note": "x" * 2048}).encode()
        cfg = self.limited({"match": "POST /v1/orders",
                            "request": {"body": schema, "mode": "report"}}, admin=True)
        with Braced(cfg) as b:
            resp = b.request("POST", "/demo/v1/orders", body=body, headers=JSON)
            lines = self.metric_lines(b)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["body"], body.decode())
        self.assertEqual(lines, ['braced_schema_violations_total{profile="demo",'
                                 'route="POST /v1/orders",direction="request",mode="report"} 1'])

    def test_limit_is_a_size_with_units_and_shown_in_config(self):
        # Fails if the key is refused, its units misread, or the default is not 2MiB.
        for value, expected in ((None, 2 * 1024 * 1024), ("64KiB", 64 * 1024)):
            with self.subTest(value=value):
                top = {"admin": "127.0.0.1:0"}
                if value:
                    top["limits"] = {"max_validated_body": value}
                with Braced(self.config(None, **top)) as b:
                    doc = request(b.admin_port, "GET", "/config").json()
                self.assertEqual(doc["limits"]["max_validated_body"], expected, doc)
        rc, _, err = Braced(self.config(None, limits={"max_validated_body": "2MB"})).check_config()
        self.assertNotEqual(rc, 0)
        self.assertIn("max_validated_body", err)
