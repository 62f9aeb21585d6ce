"""Answers stream through braced (SPEC 3.1): the head at once, then the body
as it arrives, with backpressure and bounded memory; retries, hedges and the
breaker act before the head only; a body cut after its head reaches the app
as a truncation, never as a short complete body.

Every case runs the real braced against tests/upstream.py's streaming
actions (sse, generate, cut_after) on loopback, each bounded in time.
"""

import re
import socket
import time
import unittest

import json

from harness import Background, request, wait_until
from streaming import (Rss, StreamingCase, expected_sha256, metric, sse_events, stream_get,
                       under_asan)

MIB = 1024 * 1024
CASE_TIMEOUT = 30


class StreamingTest(StreamingCase):
    PROFILE = "s"

    def metrics(self, b):
        return request(b.admin_port, "GET", "/metrics", timeout=5).body.decode()

    def access_lines(self, b, n=1, timeout=5):
        """The first n access log lines, waited for: a streamed answer logs at its end."""
        lines = []

        def enough():
            lines[:] = [l for l in b.log_lines() if l.get("msg") == "request"]
            return len(lines) >= n
        wait_until(enough, timeout)
        return lines

    # ---- the body as it arrives ---------------------------------------------------

    def test_server_sent_events_arrive_as_sent(self):
        """Five events 400 ms apart reach the app 400 ms apart, each well within
        100 ms of being sent (the issue saw all five at once after 2 s)."""
        self.upstream.script([{"sse": {"events": 5, "interval_ms": 400}}])
        with self.braced() as b:
            res = []
            events = sse_events(b.port, "/s/events", timeout=CASE_TIMEOUT, result=res)
            self.assertEqual([e[0] for e in events], [0, 1, 2, 3, 4], res)
            r = res[0]
            self.assertEqual(r.status, 200)
            self.assertEqual(r.framing, "chunked")
            self.assertTrue(r.complete, r)
            for seq, sent, arrived in events:
                self.assertLess(arrived - sent, 0.1, f"event {seq} arrived {arrived - sent:.3f} s late")
            for (_, _, a), (_, _, b2) in zip(events, events[1:]):
                self.assertGreater(b2 - a, 0.35, events)
            line = self.access_lines(b)[0]
            self.assertEqual(line["outcome"], "ok")
            self.assertEqual(line["status"], 200)
            # The budget and the log's elapsed time end at the relayed head.
            self.assertLess(line["elapsed_ms"], 400, line)
            self.assertGreater(line["stream_ms"], 1400, line)

    def test_total_budget_ends_at_the_head(self):
        """timeouts.total bounds the time to the head: a stream lasting three
        times the budget is relayed whole."""
        self.upstream.script([{"sse": {"events": 6, "interval_ms": 250}}])
        with self.braced(defaults={"timeouts": {"total": "500ms"}}) as b:
            res = []
            events = sse_events(b.port, "/s/events", timeout=CASE_TIMEOUT, result=res)
            self.assertEqual(len(events), 6, res)
            self.assertTrue(res[0].complete, res[0])

    def test_large_download_with_content_length_in_bounded_memory(self):
        """200 MiB pass intact with the upstream's Content-Length, the
        default limits unchanged (max_response_body 8MiB bounds only what is
        held whole), and braced's memory does not grow with the body."""
        size = 200 * MIB
        self.upstream.script([{"generate": {"bytes": size, "seed": 3}}])
        with self.braced() as b:
            with Rss(b.proc.pid) as rss:
                r = stream_get(b.port, "/s/big", timeout=CASE_TIMEOUT)
            self.assertEqual((r.status, r.framing, r.content_length), (200, "length", size), r)
            self.assertTrue(r.complete, r)
            self.assertEqual(r.sha256, expected_sha256(3, size))
            self.assertEqual(r.header("Brace-Attempts"), "1")
            if not under_asan(b.proc.pid):
                self.assertLess(rss.peak_anon_kib - rss.start_kib, 32 * 1024,
                                f"RssAnon grew from {rss.start_kib} to {rss.peak_anon_kib} KiB")
                self.assertLess(rss.hwm_kib, 64 * 1024, f"peak RSS {rss.hwm_kib} KiB")
            line = self.access_lines(b)[0]
            self.assertEqual((line["outcome"], line["bytes_out"]), ("ok", size))

    def test_chunked_download_stays_chunked(self):
        size = 50 * MIB
        self.upstream.script([{"generate": {"bytes": size, "seed": 4, "chunked": True}}])
        with self.braced() as b:
            with Rss(b.proc.pid) as rss:
                r = stream_get(b.port, "/s/big", timeout=CASE_TIMEOUT)
            self.assertEqual((r.status, r.framing), (200, "chunked"), r)
            self.assertTrue(r.complete, r)
            self.assertEqual((r.nbytes, r.sha256), (size, expected_sha256(4, size)))
            if not under_asan(b.proc.pid):
                self.assertLess(rss.peak_anon_kib - rss.start_kib, 32 * 1024)
                self.assertLess(rss.hwm_kib, 64 * 1024, f"peak RSS {rss.hwm_kib} KiB")

    def test_http10_app_gets_a_close_delimited_body(self):
        size = 3 * MIB
        self.upstream.script([{"generate": {"bytes": size, "seed": 5, "chunked": True}}])
        with self.braced() as b:
            s = socket.create_connection(("127.0.0.1", b.port), timeout=CASE_TIMEOUT)
            s.sendall(b"GET /s/old HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                data += d
            s.close()
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            self.assertNotIn(b"transfer-encoding", head.lower())
            self.assertEqual(len(body), size)
            import hashlib
            self.assertEqual(hashlib.sha256(body).hexdigest(), expected_sha256(5, size))

    def test_slow_reader_pauses_the_upstream(self):
        """A slow app reading a 100 MiB answer through a small receive buffer,
        resting 50 ms every 4 MiB: braced pauses the upstream instead of
        queueing the body."""
        size = 100 * MIB
        self.upstream.script([{"generate": {"bytes": size, "seed": 6}}])
        with self.braced() as b:
            with Rss(b.proc.pid) as rss:
                r = stream_get(b.port, "/s/slow", timeout=CASE_TIMEOUT, rcvbuf=16384,
                               read_size=65536, pause_every=(4 * MIB, 0.05))
            self.assertTrue(r.complete, r)
            self.assertEqual(r.sha256, expected_sha256(6, size))
            if not under_asan(b.proc.pid):
                self.assertLess(rss.peak_anon_kib - rss.start_kib, 16 * 1024)
            self.assertGreater(metric(self.metrics(b), "braced_backpressure_pauses_total",
                                      profile="s"), 0)

    # ---- decided before the head, never after ---------------------------------------

    def test_upstream_reset_mid_body_is_a_truncation(self):
        """An upstream that fails after the head: the app gets fewer bytes than
        the Content-Length, or no last chunk, and never a complete body; the
        log says reset_mid_body and the metric counts it; nothing is retried."""
        cases = [("rst", False), ("fin", False), ("rst", True), ("fin", True)]
        self.upstream.script([{"cut_after": dict({"bytes": 1 * MIB, "how": how, "chunked": ch},
                                                 **({} if ch else {"length": 4 * MIB}))}
                              for how, ch in cases])
        with self.braced(defaults={"retry": {"attempts": 3, "backoff": {"base": "10ms"}}}) as b:
            for how, chunked in cases:
                r = stream_get(b.port, "/s/cut", timeout=CASE_TIMEOUT)
                self.assertEqual(r.status, 200, (how, chunked, r))
                self.assertEqual(r.framing, "chunked" if chunked else "length", r)
                self.assertFalse(r.complete, (how, chunked, r))
                self.assertLessEqual(r.nbytes, 1 * MIB)
                self.assertEqual(r.header("Brace-Attempts"), "1")
            lines = self.access_lines(b, n=4)
            self.assertEqual([l["outcome"] for l in lines], ["reset_mid_body"] * 4, lines)
            self.assertEqual(len(self.upstream.received()), 4)
            text = self.metrics(b)
            self.assertEqual(metric(text, "braced_stream_ends_total", profile="s",
                                    outcome="reset_mid_body"), 4)

    def test_retry_before_the_head_then_stream(self):
        """A 503 is retried (it never reached the app), the 200 that follows streams."""
        size = 4 * MIB
        self.upstream.script([{"status": 503, "body": "busy"},
                              {"generate": {"bytes": size, "seed": 8}}])
        with self.braced(defaults={"retry": {"attempts": 2, "backoff": {"base": "10ms"}}}) as b:
            r = stream_get(b.port, "/s/retry", timeout=CASE_TIMEOUT)
            self.assertTrue(r.complete, r)
            self.assertEqual(r.sha256, expected_sha256(8, size))
            self.assertEqual(r.header("Brace-Attempts"), "2")

    def test_retriable_head_with_a_large_body_is_discarded_and_retried(self):
        """A 503 whose body is larger than the stream buffer: its head decides
        the retry, its body is dropped, and the app gets the next answer."""
        self.upstream.script([{"status": 503, "generate": {"bytes": 4 * MIB, "seed": 1}},
                              {"generate": {"bytes": MIB, "seed": 9}}])
        with self.braced(defaults={"retry": {"attempts": 2, "backoff": {"base": "10ms"}}}) as b:
            r = stream_get(b.port, "/s/retry", timeout=CASE_TIMEOUT)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.sha256, expected_sha256(9, MIB))
            self.assertEqual(r.header("Brace-Attempts"), "2")

    def test_final_error_with_a_large_body_is_wrapped_with_its_start(self):
        """envelope mode: a final 500 with a 4 MiB body becomes a problem that
        repeats the body's start, without holding the body."""
        self.upstream.script([{"status": 500, "generate": {"bytes": 4 * MIB, "seed": 2}}])
        with self.braced(profile={"upstream_errors": "envelope"}) as b:
            resp = b.get("/s/err", timeout=CASE_TIMEOUT)
            self.assertEqual(resp.header("Content-Type") if hasattr(resp, "header") else
                             resp.headers.get("Content-Type"), "application/problem+json")
            doc = resp.json()
            self.assertEqual(doc["code"], "upstream_status")
            self.assertEqual(doc["upstream_status"], 500)
            self.assertTrue(doc.get("upstream_body"), doc)

    def test_hedge_first_head_wins(self):
        """The first acceptable head wins the hedge; the slower attempt is cut."""
        size = 2 * MIB
        self.upstream.script([{"delay_ms": 1500, "generate": {"bytes": size, "seed": 11}},
                              {"generate": {"bytes": size, "seed": 12}}])
        with self.braced(defaults={"retry": {"attempts": 2}, "hedge": {"delay": "100ms"}}) as b:
            t0 = time.monotonic()
            r = stream_get(b.port, "/s/hedge", timeout=CASE_TIMEOUT)
            self.assertLess(time.monotonic() - t0, 1.4)
            self.assertTrue(r.complete, r)
            self.assertEqual(r.sha256, expected_sha256(12, size))
            self.assertEqual(metric(self.metrics(b), "braced_hedges_total", profile="s",
                                    result="won"), 1)

    def test_schema_route_holds_the_answer_whole(self):
        """An answer a schema checks is never streamed: a 300 KiB JSON answer
        (over the 256 KiB stream buffer) that violates the schema is refused
        as a whole."""
        big = '{"items": [' + ",".join(['"%06d"' % i for i in range(32000)]) + ']}'
        self.assertGreater(len(big), 256 * 1024)
        schema = {"type": "object", "required": ["id"]}
        self.upstream.script([{"body": big, "headers": {"Content-Type": "application/json"}}])
        prof = {"routes": [{"match": "GET /doc", "response": {"mode": "enforce", "body": schema}}]}
        with self.braced(profile=prof) as b:
            resp = b.get("/s/doc", timeout=CASE_TIMEOUT)
            self.assertEqual(resp.status, 502, resp.body[:200])
            self.assertEqual(resp.json()["code"], "schema_violation")

    def test_schema_answers_wait_for_memory(self):
        """Two answers a schema checks, 700 KiB each, under max_buffered 1MiB:
        the second waits in line (paused at its window) until the first is
        done, and both are answered whole and valid."""
        body = '"' + "x" * (700 * 1024) + '"'
        action = {"body": body, "headers": {"Content-Type": "application/json"},
                  "trickle": {"chunk": 64 * 1024, "interval_ms": 60}}
        self.upstream.script([action, action])
        prof = {"routes": [{"match": "GET /doc",
                            "response": {"mode": "enforce", "body": {"type": "string"}}}]}
        limits = {"max_buffered": "1MiB", "max_response_body": "1MiB", "retry_buffer": "256KiB",
                  "max_validated_body": "800KiB"}
        with self.braced(profile=prof, limits=limits) as b:
            first = Background(b.get, "/s/doc", None, CASE_TIMEOUT)
            second = Background(b.get, "/s/doc", None, CASE_TIMEOUT)
            seen = []

            def one_waits():
                mem = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)["memory"]
                seen.append(mem)
                return mem["waiting"] == 1 and mem["held"] <= 1024 * 1024
            self.assertTrue(wait_until(one_waits, 5), seen[-3:])
            for bg in (first, second):
                resp = bg.result(CASE_TIMEOUT)
                self.assertEqual((resp.status, len(resp.body)), (200, len(body)), resp)
            mem = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)["memory"]
            self.assertEqual((mem["held"], mem["waiting"]), (0, 0), mem)
            self.assertLessEqual(mem["peak"], 1024 * 1024, mem)

    def test_an_attempt_that_ends_while_it_waits_for_memory(self):
        """An answer waiting in line to be held whose attempt times out
        leaves the line, and its retries join it again: the one ahead of it
        finishes, and nothing is held for the attempts that are gone."""
        body = '"' + "x" * (700 * 1024) + '"'
        slow = {"body": body, "trickle": {"chunk": 64 * 1024, "interval_ms": 150}}
        # every retry of the second waits in line again, and times out there
        self.upstream.script([slow, slow, slow, slow])
        schema = {"mode": "enforce", "body": {"type": "string"}}
        prof = {"routes": [{"match": "GET /a", "response": schema},
                           {"match": "GET /b", "response": schema,
                            "timeouts": {"attempt": "400ms"},
                            "retry": {"attempts": 3, "backoff": {"base": "10ms"}}}]}
        limits = {"max_buffered": "1MiB", "max_response_body": "1MiB", "retry_buffer": "256KiB",
                  "max_validated_body": "800KiB"}
        with self.braced(profile=prof, limits=limits) as b:
            first = Background(b.get, "/s/a", None, CASE_TIMEOUT)
            wait_until(lambda: json.loads(request(b.admin_port, "GET", "/status",
                                                  timeout=5).body)["memory"]["held"] > 0, 5)
            second = b.get("/s/b", timeout=CASE_TIMEOUT)
            self.assertEqual((second.status, second.headers.get("Brace-Error")),
                             (504, "upstream_timeout"), second)
            self.assertEqual(second.headers.get("Brace-Attempts"), "3")
            self.assertEqual(first.result(CASE_TIMEOUT).status, 200)
            mem = json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)["memory"]
            self.assertEqual((mem["held"], mem["waiting"]), (0, 0), mem)

    # ---- timeouts and the app leaving --------------------------------------------------

    def test_stream_timeout_cuts_the_body(self):
        self.upstream.script([{"sse": {"events": 20, "interval_ms": 100}}])
        with self.braced(defaults={"timeouts": {"stream": "450ms"}}) as b:
            res = []
            events = sse_events(b.port, "/s/events", timeout=CASE_TIMEOUT, result=res)
            self.assertFalse(res[0].complete, res[0])
            self.assertLess(len(events), 10, events)
            self.assertEqual(self.access_lines(b)[0]["outcome"], "stream_timeout")

    def test_read_timeout_bounds_each_silence_in_the_body(self):
        self.upstream.script([{"sse": {"events": 3, "interval_ms": 700}}])
        with self.braced(defaults={"timeouts": {"read": "300ms"}}) as b:
            res = []
            sse_events(b.port, "/s/events", timeout=CASE_TIMEOUT, result=res)
            self.assertFalse(res[0].complete, res[0])
            self.assertEqual(self.access_lines(b)[0]["outcome"], "reset_mid_body")

    def test_app_leaving_mid_stream_cancels_the_transfer(self):
        size = 512 * MIB
        self.upstream.script([{"generate": {"bytes": size, "seed": 13}}])
        with self.braced() as b:
            s = socket.create_connection(("127.0.0.1", b.port), timeout=CASE_TIMEOUT)
            s.sendall(b"GET /s/leave HTTP/1.1\r\nHost: x\r\n\r\n")
            got = 0
            while got < 2 * MIB:
                got += len(s.recv(1 << 20))
            s.close()
            line = self.access_lines(b)[0]
            self.assertEqual(line["outcome"], "client_gone")
            # The upstream stopped being read long before the end of its body.
            wait_until(lambda: self.upstream.received()[0].get("body_sent") is not None, 5)
            sent = self.upstream.received()[0]["body_sent"]
            self.assertLess(sent, 64 * MIB, sent)

    def test_pipelined_request_waits_for_the_stream(self):
        """A request sent while a streamed answer flows is answered after it, in order."""
        self.upstream.script([{"sse": {"events": 3, "interval_ms": 200}},
                              {"body": "second"}])
        with self.braced() as b:
            s = socket.create_connection(("127.0.0.1", b.port), timeout=CASE_TIMEOUT)
            s.sendall(b"GET /s/one HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.1)
            s.sendall(b"GET /s/two HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            deadline = time.monotonic() + 10
            while not data.endswith(b"second") and time.monotonic() < deadline:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            s.close()
            first_end = data.find(b"0\r\n\r\n")
            second = data.find(b"HTTP/1.1 200", 10)
            self.assertGreater(first_end, 0, data)
            self.assertGreater(second, first_end, data)
            self.assertTrue(data.endswith(b"second"), data[-200:])


if __name__ == "__main__":
    unittest.main()
