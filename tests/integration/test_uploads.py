"""Request bodies stream through braced (SPEC 3.1): a body up to
limits.retry_buffer is held so a retry can send it again; a larger one goes
upstream as the app sends it, with backpressure, and is retried only while
nothing of it was sent. Held bodies share one memory budget
(limits.max_buffered) and wait in line for it.

Every case runs the real braced against tests/upstream.py (digest_body
reads a body as it arrives and answers its length and sha256) on loopback.
"""

import json
import re
import socket
import time
import unittest

from harness import Background, request, wait_until
from streaming import (Rss, StreamingCase, expected_sha256, generated_bytes, metric, stream_put,
                       under_asan)

MIB = 1024 * 1024
CASE_TIMEOUT = 60


class UploadTest(StreamingCase):
    PROFILE = "u"

    def status(self, b):
        return json.loads(request(b.admin_port, "GET", "/status", timeout=5).body)

    def test_large_uploads_arrive_whole_in_bounded_memory(self):
        """100 MiB, chunked and with a Content-Length, under the default
        limits (max_request_body 0: no limit): the upstream gets every byte
        with the app's framing, and braced's memory does not grow with it."""
        size = 100 * MIB
        self.upstream.set_default({"digest_body": True})
        with self.braced() as b:
            for chunked in (True, False):
                with self.subTest(chunked=chunked):
                    with Rss(b.proc.pid) as rss:
                        r = stream_put(b.port, "/u/up", size, 31, chunked, timeout=CASE_TIMEOUT)
                    self.assertEqual(r.status, 200, r)
                    doc = r.json()
                    self.assertEqual((doc["length"], doc["sha256"]), (size, expected_sha256(31, size)))
                    self.assertEqual(doc["framing"], "chunked" if chunked else "length")
                    if not under_asan(b.proc.pid):
                        self.assertLess(rss.peak_anon_kib - rss.start_kib, 24 * 1024,
                                        f"RssAnon {rss.start_kib} -> {rss.peak_anon_kib} KiB")

    def test_an_upstream_that_does_not_read_stops_the_app(self):
        """A body braced cannot send yet stops being read from the app: the
        app's writes block, and braced does not buffer the body."""
        self.upstream.set_default({"no_read_body": True, "delay_ms": 4000, "body": "late"})
        # The app's close waits behind the body braced does not read (TCP
        # delivers the FIN after the data), so braced sees it only at
        # timeouts.write: shutdown does not wait that long here.
        with self.braced(defaults={"timeouts": {"write": "10s", "read": "10s"}},
                         shutdown_grace="1s") as b:
            s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            s.sendall(b"PUT /u/slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (200 * MIB))
            s.setblocking(False)
            sent, chunk = 0, b"z" * 65536
            with Rss(b.proc.pid) as rss:
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    try:
                        sent += s.send(chunk)
                    except BlockingIOError:
                        time.sleep(0.02)
            s.close()
            self.assertLess(sent, 32 * MIB, f"the app could send {sent} bytes into braced")
            if not under_asan(b.proc.pid):
                self.assertLess(rss.peak_anon_kib - rss.start_kib, 16 * 1024)

    def test_small_body_is_held_and_retried(self):
        """A body within retry_buffer is held: a reset after it was sent is
        retried with the same bytes."""
        self.upstream.script([{"reset": True}, {"digest_body": True}])
        with self.braced(defaults={"retry": {"attempts": 2, "backoff": {"base": "10ms"}}}) as b:
            r = stream_put(b.port, "/u/small", 512 * 1024, 32, True, timeout=CASE_TIMEOUT)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Brace-Attempts"), "2")
            doc = r.json()
            self.assertEqual((doc["length"], doc["sha256"]), (512 * 1024, expected_sha256(32, 512 * 1024)))
            self.assertEqual(doc["framing"], "length", "a held chunked body goes with its length")

    def test_piped_body_is_not_retried_once_sent(self):
        """A body over retry_buffer is piped: a reset after some of it was
        sent is not retried (the upstream may have acted), and says why."""
        self.upstream.script([{"reset": True}, {"digest_body": True}])
        with self.braced(defaults={"retry": {"attempts": 3, "backoff": {"base": "10ms"}}}) as b:
            r = stream_put(b.port, "/u/big", 8 * MIB, 33, False, timeout=CASE_TIMEOUT)
            self.assertEqual(r.status, 502, r)
            self.assertEqual(r.header("Brace-Attempts"), "1")
            self.assertEqual(len(self.upstream.received()), 1)
            text = request(b.admin_port, "GET", "/metrics", timeout=5).body.decode()
            self.assertEqual(metric(text, "braced_retries_suppressed_total", profile="u",
                                    reason="body"), 1)

    def test_early_answer_mid_upload_is_relayed_and_the_connection_closed(self):
        self.upstream.script([{"early": {"status": 413}}])
        with self.braced() as b:
            r = stream_put(b.port, "/u/refused", 64 * MIB, 34, False, timeout=CASE_TIMEOUT)
            self.assertEqual(r.status, 413, r)
            self.assertEqual((r.header("Connection") or "").lower(), "close")
            self.assertLess(r.sent, 64 * MIB)

    def test_early_answer_while_the_app_pauses_its_upload(self):
        """The upstream refuses a piped upload while braced waits for the
        app's next bytes: the refusal reaches the app at once, not a
        timeout (libcurl holds a transfer paused for sending open)."""
        self.upstream.script([{"early": {"status": 413}}])
        with self.braced() as b:
            s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
            s.sendall(b"POST /u/pause HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + b"%x\r\n" % (2 * MIB) + b"p" * (2 * MIB) + b"\r\n")
            started = time.monotonic()
            answer = s.recv(4096)
            took = time.monotonic() - started
            s.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:200])
            self.assertLess(took, 2.0)

    def test_a_small_body_waits_for_memory_then_goes(self):
        """A body that came whole with its head, while max_buffered is taken:
        it waits its turn, then goes, and nothing stays held."""
        self.upstream.script([{"digest_body": True, "delay_ms": 800}, {"digest_body": True}])
        limits = {"max_buffered": "1MiB", "max_response_body": "1MiB",
                  "max_validated_body": "512KiB"}
        with self.braced(limits=limits) as b:
            first = Background(stream_put, b.port, "/u/big", MIB, 60, False, None, 65536,
                               CASE_TIMEOUT)
            wait_until(lambda: self.status(b)["memory"]["held"] > 0, 5)
            second = stream_put(b.port, "/u/small", 10, 61, False, timeout=CASE_TIMEOUT)
            self.assertEqual(second.status, 200, second)
            self.assertEqual(second.json()["length"], 10)
            self.assertEqual(first.result(CASE_TIMEOUT).status, 200)
            mem = self.status(b)["memory"]
            self.assertEqual((mem["held"], mem["waiting"]), (0, 0), mem)

    def test_read_timeout_after_a_paused_upload(self):
        """The app stalls its piped upload longer than timeouts.write; the
        upstream then answers and goes silent mid-body: timeouts.read still
        cuts the body (the idle timer survived the pause)."""
        action = {"ignore_body": True, "delay_ms": 2500, "body": "x" * 100,
                  "trickle": {"chunk": 10, "interval_ms": 20000}}
        self.upstream.script([action])
        with self.braced(defaults={"timeouts": {"write": "1s", "read": "1s", "total": "20s"}}) as b:
            s = socket.create_connection(("127.0.0.1", b.port), timeout=15)
            s.sendall(b"PUT /u/stall HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                      % (8 * MIB) + b"s" * (2 * MIB))
            started = time.monotonic()
            data = b""
            while True:
                try:
                    d = s.recv(65536)
                except OSError:
                    break
                if not d:
                    break
                data += d
            took = time.monotonic() - started
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
            self.assertLess(took, 8.0, "the body's silence was never cut")
            self.assertTrue(wait_until(lambda: '"outcome":"reset_mid_body"' in b.log(), 5),
                            b.log()[-1500:])

    def test_expect_continue_for_a_piped_upload(self):
        """A body over retry_buffer, announced with Expect: 100-continue: the
        100 comes once braced routed it and starts piping, and the body
        reaches the upstream whole."""
        size = 4 * MIB
        self.upstream.set_default({"digest_body": True})
        with self.braced() as b:
            s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
            s.sendall(f"PUT /u/big HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n"
                      "Expect: 100-continue\r\n\r\n".encode())
            first = s.recv(4096)
            self.assertTrue(first.startswith(b"HTTP/1.1 100"), first)
            for piece in generated_bytes(35, 0, size):
                s.sendall(piece)
            answer = first
            while b'"sha256"' not in answer:
                d = s.recv(65536)
                if not d:
                    break
                answer += d
            s.close()
            self.assertIn(b"HTTP/1.1 200", answer)
            self.assertIn(expected_sha256(35, size).encode(), answer)

    def test_expect_continue_only_after_routing(self):
        self.upstream.set_default({"digest_body": True})
        with self.braced() as b:
            for path, want in (("/nope/x", b"HTTP/1.1 404"), ("/u/x", b"HTTP/1.1 100")):
                with self.subTest(path=path):
                    s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
                    s.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                              "Expect: 100-continue\r\n\r\n".encode())
                    first = s.recv(4096)
                    self.assertTrue(first.startswith(want), first)
                    if want.endswith(b"100"):
                        s.sendall(b"hello")
                        rest = first
                        while b'"sha256"' not in rest:
                            d = s.recv(4096)
                            if not d:
                                break
                            rest += d
                        self.assertIn(b"HTTP/1.1 200", rest)
                        self.assertIn(b'"length": 5', rest)
                    s.close()

    def test_held_bodies_wait_for_memory_in_line(self):
        """max_buffered 2MiB and four 1 MiB bodies at once: two wait, reading
        nothing, and all four are answered whole."""
        self.upstream.set_default({"digest_body": True, "delay_ms": 400})
        limits = {"max_buffered": "2MiB", "max_response_body": "2MiB", "max_validated_body": "1MiB"}
        with self.braced(limits=limits) as b:
            jobs = [Background(stream_put, b.port, f"/u/h{i}", MIB, 40 + i, False, None, 65536,
                               CASE_TIMEOUT) for i in range(4)]
            seen = []

            def waiting():
                mem = self.status(b)["memory"]
                seen.append(mem)
                return mem["waiting"] >= 1
            self.assertTrue(wait_until(waiting, 5), seen[-3:])
            for i, job in enumerate(jobs):
                r = job.result(CASE_TIMEOUT)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["sha256"], expected_sha256(40 + i, MIB))
            mem = self.status(b)["memory"]
            self.assertLessEqual(mem["peak"], 2 * MIB, mem)
            self.assertEqual((mem["held"], mem["waiting"]), (0, 0), mem)

    def test_a_wait_for_memory_longer_than_the_budget_is_overloaded(self):
        self.upstream.set_default({"digest_body": True, "delay_ms": 2000})
        limits = {"max_buffered": "1MiB", "max_response_body": "1MiB", "max_validated_body": "512KiB"}
        with self.braced(limits=limits, defaults={"timeouts": {"read": "5s"}}) as b:
            first = Background(stream_put, b.port, "/u/a", MIB, 50, False, None, 65536, CASE_TIMEOUT)
            wait_until(lambda: self.status(b)["memory"]["held"] > 0, 5)
            started = time.monotonic()
            second = stream_put(b.port, "/u/b", MIB, 51, False, headers={"Brace-Timeout-Ms": "500"},
                                timeout=CASE_TIMEOUT)
            self.assertLess(time.monotonic() - started, 1.5)
            self.assertEqual(second.status, 503, second)
            self.assertEqual(second.header("Brace-Error"), "overloaded")
            self.assertEqual(second.header("Retry-After"), "1")
            self.assertEqual(first.result(CASE_TIMEOUT).status, 200)

    def test_budget_of_a_piped_body_starts_at_its_end(self):
        """timeouts.total counts from the moment the request was read whole
        (SPEC 4.1): a 4 MiB upload the app spreads over 2 s passes a 1 s budget."""
        self.upstream.set_default({"digest_body": True})
        with self.braced(defaults={"timeouts": {"total": "1s"}}) as b:
            s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
            size = 4 * MIB
            s.sendall(b"PUT /u/slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            piece = b"q" * (size // 8)
            for _ in range(8):
                s.sendall(piece)
                time.sleep(0.25)
            answer = b""
            while b'"sha256"' not in answer:
                d = s.recv(65536)
                if not d:
                    break
                answer += d
            s.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer[:300])
            self.assertIn(b'"length": %d' % size, answer)



class HostilePipedBodies(StreamingCase):
    """Request bodies an app controls byte for byte, piped upstream (over
    retry_buffer): what an attacker tries is to desync braced's framing from
    the upstream's, or to smuggle a request behind the body. What must hold:
    the upstream gets exactly the de-chunked body or nothing, a request
    glued behind the body is answered after it and on its own, and a body
    that breaks mid-pipe never reaches the upstream as complete."""

    PROFILE = "h"
    SIZE = 2 * MIB

    def send_raw(self, b, pieces, pause=0.0, timeout=15):
        s = socket.create_connection(("127.0.0.1", b.port), timeout=timeout)
        for p in pieces:
            s.sendall(p)
            if pause:
                time.sleep(pause)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except OSError:
                break
            if not d:
                break
            data += d
            if data.count(b'"sha256"') >= 2 or b"Brace-Error" in data:
                break
        s.close()
        return data

    def upstream_got(self):
        """The body bytes the upstream read before its connection ended
        without a complete body (the attempt was cut): it never answered."""
        self.assertTrue(wait_until(lambda: self.upstream.stats().get("aborted", 0) >= 1, 5),
                        "the upstream's attempt was not cut")
        entries = self.upstream.received()
        self.assertEqual(len(entries), 1, entries)
        return entries[0].get("body_received", 0)

    def test_chunk_size_line_split_at_every_byte(self):
        body = b"".join(generated_bytes(70, 0, self.SIZE))
        self.upstream.set_default({"digest_body": True})
        head = b"PUT /h/split HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        line = b"%x;ext=\"a b\"\r\n" % len(body)
        pieces = [head] + [line[i:i + 1] for i in range(len(line))] + [body, b"\r\n0\r\n\r\n"]
        with self.braced() as b:
            data = self.send_raw(b, pieces, pause=0.01)
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:300])
        self.assertIn(expected_sha256(70, self.SIZE).encode(), data)

    def test_request_glued_to_the_last_chunk(self):
        self.upstream.set_default({"digest_body": True})
        body = b"".join(generated_bytes(71, 0, self.SIZE))
        first = (b"PUT /h/one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        second = b"PUT /h/two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        with self.braced() as b:
            data = self.send_raw(b, [first + second])
            paths = [r["path"] for r in self.upstream.received()]
        self.assertEqual(data.count(b"HTTP/1.1 200"), 2, data[:600])
        first_at = data.find(expected_sha256(71, self.SIZE).encode())
        self.assertGreater(first_at, 0, data[:600])
        self.assertGreater(data.find(b'"length": 5'), first_at, "answered out of order")
        self.assertEqual(paths, ["/one", "/two"])

    def test_malformed_chunk_mid_pipe_never_completes_upstream(self):
        self.upstream.set_default({"digest_body": True})
        body = b"".join(generated_bytes(72, 0, self.SIZE))
        raw = (b"PUT /h/bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n" % len(body) + body + b"\r\nzz\r\nEVIL\r\n0\r\n\r\n")
        with self.braced() as b:
            data = self.send_raw(b, [raw])
            got = self.upstream_got()
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:300])
        self.assertIn(b"Brace-Error: bad_request", data)
        self.assertLessEqual(got, self.SIZE, "bytes past the fault reached the upstream")

    def test_body_over_max_request_body_mid_pipe(self):
        self.upstream.set_default({"digest_body": True})
        body = b"".join(generated_bytes(73, 0, self.SIZE))
        # 64 KiB chunks: the limit is crossed mid-pipe, not at a chunk's size
        raw = (b"PUT /h/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n" % len(body[i:i + 65536]) + body[i:i + 65536] + b"\r\n"
                          for i in range(0, len(body), 65536)) + b"0\r\n\r\n")
        with self.braced(limits={"max_request_body": "1536KiB"}) as b:
            data = self.send_raw(b, [raw])
            got = self.upstream_got()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:300])
        self.assertIn(b"Connection: close", data)
        self.assertLessEqual(got, 1536 * 1024, "bytes past the limit reached the upstream")


if __name__ == "__main__":
    unittest.main()
