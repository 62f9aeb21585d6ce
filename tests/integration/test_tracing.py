"""W3C Trace Context (tracing.traceparent) and timings that agree.

propagate: the app's valid traceparent continues upstream, each attempt with
the same trace-id and a parent-id of its own, tracestate kept with it; a
malformed traceparent is dropped, not refused. generate: a request without
one starts a trace. off: the headers pass like any other. The access log
and problems carry trace_id. Server-Timing and the access log never say the
upstream took longer than the whole request."""

import re
import unittest

from harness import Braced, BracedTestCase, fault, raw_request, wait_until

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class TracingTest(BracedTestCase):

    def sent(self, name):
        """The values of header `name` each upstream request carried, in order."""
        return [[v for n, v in r["headers"] if n.lower() == name] for r in self.upstream.received()]

    def tracing(self, mode, **extra):
        defaults = {"retry": {"attempts": 3, "backoff": {"base": "10ms"}},
                    "tracing": {"traceparent": mode}}
        defaults.update(extra)
        return self.config(defaults=defaults)

    def test_several_tracestate_lines_are_joined_in_order(self):
        # W3C Trace Context: several tracestate fields are one list, in order.
        raw = (f"GET /demo/x HTTP/1.1\r\nHost: a\r\ntraceparent: {TP}\r\n"
               "tracestate: congo=t61rcWkgMzE\r\ntracestate: rojo=00f067aa0ba902b7\r\n"
               "Connection: close\r\n\r\n").encode()
        with Braced(self.tracing("propagate")) as b:
            resp = raw_request(b.port, raw)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.sent("tracestate"), [["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"]])

    def test_propagate_keeps_the_trace_with_a_parent_id_per_attempt(self):
        self.upstream.script([{"status": 503}, {"status": 503}, {}])
        with Braced(self.tracing("propagate")) as b:
            resp = b.get("/demo/x", {"traceparent": TP, "tracestate": "congo=t61rcWkgMzE"})
            self.assertEqual(resp.status, 200, resp)
            log = [l for l in b.log_lines() if l.get("msg") == "request"]
        sent = self.sent("traceparent")
        self.assertEqual(len(sent), 3)
        parents = set()
        for values in sent:
            self.assertEqual(len(values), 1, values)
            m = TP_RE.match(values[0])
            self.assertIsNotNone(m, values[0])
            self.assertEqual(m.group(1), TRACE_ID)
            self.assertEqual(m.group(3), "01")
            parents.add(m.group(2))
        self.assertEqual(len(parents), 3, "each attempt needs a parent-id of its own")
        self.assertNotIn("00f067aa0ba902b7", parents)
        self.assertEqual(self.sent("tracestate"), [["congo=t61rcWkgMzE"]] * 3)
        self.assertEqual(log[-1]["trace_id"], TRACE_ID)

    def test_malformed_traceparent_is_dropped_not_refused(self):
        with Braced(self.tracing("propagate")) as b:
            resp = b.get("/demo/x", {"traceparent": "00-XYZ-00f067aa0ba902b7-01",
                                     "tracestate": "congo=t61rcWkgMzE"})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.sent("traceparent"), [[]])
        self.assertEqual(self.sent("tracestate"), [[]])

    def test_generate_starts_a_trace_and_problems_carry_it(self):
        with Braced(self.tracing("generate", retry={"attempts": 1},
                                 upstream_errors="envelope")) as b:
            ok = b.get("/demo/x")
            self.assertEqual(ok.status, 200, ok)
            bad = b.get("/demo/y", fault(status=500))
            doc = self.assert_problem(bad, 500, "upstream_status", profile="demo")
            log = [l for l in b.log_lines() if l.get("msg") == "request"]
        sent = self.sent("traceparent")
        self.assertEqual(len(sent), 2)
        ids = [TP_RE.match(v[0]).group(1) for v in sent]
        self.assertNotEqual(ids[0], ids[1], "each request starts its own trace")
        self.assertEqual(doc["trace_id"], ids[1])
        self.assertEqual([l["trace_id"] for l in log[-2:]], ids)

    def test_off_passes_the_headers_like_any_other(self):
        with Braced(self.tracing("off")) as b:
            b.get("/demo/x", {"traceparent": "not-a-traceparent", "tracestate": "a=b"})
        self.assertEqual(self.sent("traceparent"), [["not-a-traceparent"]])
        self.assertEqual(self.sent("tracestate"), [["a=b"]])

    def test_propagate_without_a_traceparent_sends_none(self):
        with Braced(self.tracing("propagate")) as b:
            resp = b.get("/demo/x", {"tracestate": "a=b"})
            log = [l for l in b.log_lines() if l.get("msg") == "request"]
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.sent("traceparent"), [[]])
        self.assertEqual(self.sent("tracestate"), [[]])
        self.assertEqual(log[-1]["trace_id"], "-")


class TimingTest(BracedTestCase):

    def test_server_timing_and_access_log_agree(self):
        cfg = self.config(defaults={"retry": {"attempts": 2, "backoff": {"base": "10ms"}}})
        with Braced(cfg) as b:
            for i in range(30):
                if i % 3 == 0:
                    self.upstream.script([{"status": 503, "delay_ms": 3}, {"delay_ms": 2}])
                resp = b.get(f"/demo/t{i}", fault(delay_ms=i % 4) if i % 3 else None)
                self.assertEqual(resp.status, 200, resp)
                m = re.fullmatch(r"upstream;dur=(\d+\.\d), total;dur=(\d+\.\d)",
                                 resp.headers.get("Server-Timing"))
                self.assertIsNotNone(m, resp.headers.get("Server-Timing"))
                self.assertLessEqual(float(m.group(1)), float(m.group(2)), resp)
            log = [l for l in b.log_lines() if l.get("msg") == "request"]
        self.assertEqual(len(log), 30)
        for l in log:
            self.assertLessEqual(l["upstream_ms"], l["elapsed_ms"], l)


if __name__ == "__main__":
    unittest.main()
