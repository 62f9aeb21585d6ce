"""The streaming test tools, checked against the test upstream directly (no braced).

tests/upstream.py's streaming actions (sse, generate, cut_after, digest_body,
early) and the clients of streaming.py must agree before they can judge
braced: a generated body hashes to expected_sha256, events arrive spaced as
sent, a cut answer is never complete, an upload is digested whole, an early
answer comes while the upload is still going, and the upstream holds no body.
"""

import select
import socket
import time
import unittest

from harness import UpstreamProcess, fault
from streaming import (Rss, expected_sha256, generated_bytes, sse_events, stream_get,
                       stream_put)

MIB = 1024 * 1024
SIZE = 32 * MIB
CASE_TIMEOUT = 20


class StreamgenTest(unittest.TestCase):

    def test_pieces_depend_on_position_not_on_cutting(self):
        whole = b"".join(generated_bytes(5, 0, 300000))
        self.assertEqual(len(whole), 300000)
        cut = list(generated_bytes(5, 12345, 200000, piece=777))
        self.assertTrue(all(len(p) == 777 for p in cut[:-1]))
        self.assertEqual(b"".join(cut), whole[12345:212345])
        self.assertNotEqual(whole[:65536], b"".join(generated_bytes(6, 0, 65536)))
        # Blocks differ from one another, not only by their counter.
        self.assertNotEqual(whole[8:1000], whole[65536 + 8:65536 + 1000])

    def test_expected_sha256_is_the_hash_of_the_bytes(self):
        import hashlib
        data = b"".join(generated_bytes(2, 0, 1000001, piece=4096))
        self.assertEqual(expected_sha256(2, 1000001), hashlib.sha256(data).hexdigest())


class UpstreamStreamingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.upstream = UpstreamProcess()
        cls.addClassCleanup(cls.upstream.stop)

    def setUp(self):
        self.upstream.reset()

    def test_generate_with_content_length(self):
        self.upstream.script([{"generate": {"bytes": SIZE, "seed": 7}}])
        with Rss(self.upstream.proc.pid) as rss:
            r = stream_get(self.upstream.port, "/gen", timeout=CASE_TIMEOUT)
        self.assertEqual((r.status, r.framing, r.content_length), (200, "length", SIZE), r)
        self.assertTrue(r.complete, r)
        self.assertEqual(r.nbytes, SIZE)
        self.assertEqual(r.sha256, expected_sha256(7, SIZE))
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        # Made as it is sent: the upstream never holds the body.
        self.assertLess(rss.peak_anon_kib - rss.start_kib, 8 * 1024, rss.samples)
        entry, = self.upstream.received()
        self.assertEqual((entry["status"], entry["body_sent"]), (200, SIZE))

    def test_generate_chunked_in_odd_pieces(self):
        self.upstream.script([{"generate": {"bytes": SIZE + 5, "chunked": True, "seed": 8,
                                            "piece": 10000}}])
        seen = []
        r = stream_get(self.upstream.port, "/gen", timeout=CASE_TIMEOUT,
                       on_chunk=lambda data, at: seen.append(len(data)))
        self.assertEqual((r.status, r.framing, r.content_length), (200, "chunked", None), r)
        self.assertTrue(r.complete, r)
        self.assertEqual((r.nbytes, sum(seen)), (SIZE + 5, SIZE + 5))
        self.assertEqual(r.sha256, expected_sha256(8, SIZE + 5))
        self.assertLessEqual(max(seen), 10000)

    def test_generate_head_and_status(self):
        r = stream_get(self.upstream.port, "/gen", method="HEAD", timeout=CASE_TIMEOUT,
                       headers=fault(generate={"bytes": 5000}, status=203))
        self.assertEqual((r.status, r.header("Content-Length"), r.nbytes), (203, "5000", 0), r)
        self.assertTrue(r.complete, r)

    def test_sse_events_arrive_spaced(self):
        self.upstream.script([{"sse": {"events": 5, "interval_ms": 400, "bytes": 200}}])
        got = []
        events = sse_events(self.upstream.port, "/events", timeout=CASE_TIMEOUT, result=got)
        r, = got
        self.assertEqual(r.header("Content-Type"), "text/event-stream")
        self.assertTrue(r.complete and r.framing == "chunked", r)
        self.assertEqual([seq for seq, _, _ in events], [0, 1, 2, 3, 4])
        self.assertGreaterEqual(r.nbytes, 5 * 200)
        self.assertLess(r.nbytes, 5 * 210)
        for (_, sent0, at0), (_, sent1, at1) in zip(events, events[1:]):
            self.assertAlmostEqual(sent1 - sent0, 0.4, delta=0.1)
            self.assertAlmostEqual(at1 - at0, 0.4, delta=0.1)
        for _, sent, at in events:
            self.assertLessEqual(sent, at)
            self.assertLess(at - sent, 0.1)

    def test_sse_stops_when_the_client_leaves(self):
        r = stream_get(self.upstream.port, "/events", timeout=0.5,
                       headers=fault(sse={"events": 1000, "interval_ms": 100}))
        self.assertTrue(r.timed_out and not r.complete, r)
        deadline = time.monotonic() + 5
        while self.upstream.stats()["aborted"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.upstream.stats()["aborted"], 1)
        self.assertEqual(self.upstream.stats()["active"], 0)

    def test_cut_after_is_never_complete(self):
        n = 3 * MIB + 1
        for how in ("rst", "fin"):
            for chunked in (False, True):
                with self.subTest(how=how, chunked=chunked):
                    self.upstream.script([{"cut_after": {"bytes": n, "how": how,
                                                         "chunked": chunked}}])
                    r = stream_get(self.upstream.port, "/cut", timeout=CASE_TIMEOUT)
                    self.assertEqual(r.status, 200, r)
                    self.assertFalse(r.complete, r)
                    self.assertTrue(r.closed, r)
                    self.assertEqual(r.reset, how == "rst", r)
                    self.assertEqual(r.framing, "chunked" if chunked else "length")
                    if not chunked:
                        self.assertEqual(r.content_length, 2 * n)
                    self.assertEqual(r.nbytes, n)
                    self.assertEqual(r.sha256, expected_sha256(1, n))

    def test_cut_after_with_a_given_length(self):
        self.upstream.script([{"cut_after": {"bytes": 10, "how": "fin", "length": 11}}])
        r = stream_get(self.upstream.port, "/cut", timeout=CASE_TIMEOUT)
        self.assertEqual((r.content_length, r.nbytes, r.complete), (11, 10, False), r)

    def test_digest_body_of_a_chunked_upload(self):
        self.upstream.script([{"digest_body": True}])
        with Rss(self.upstream.proc.pid) as rss:
            r = stream_put(self.upstream.port, "/up", SIZE, 9, chunked=True, timeout=CASE_TIMEOUT)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.upload_complete and r.sent == SIZE, r)
        doc = r.json()
        self.assertEqual((doc["length"], doc["framing"]), (SIZE, "chunked"))
        self.assertEqual(doc["sha256"], expected_sha256(9, SIZE))
        self.assertLessEqual(0, doc["first_ms"])
        self.assertLessEqual(doc["first_ms"], doc["last_ms"])
        self.assertLess(rss.peak_anon_kib - rss.start_kib, 8 * 1024, rss.samples)
        entry, = self.upstream.received()
        self.assertEqual(entry["body_received"], SIZE)
        self.assertNotIn("body", entry)

    def test_digest_body_with_content_length(self):
        n = 5 * MIB + 3
        r = stream_put(self.upstream.port, "/up", n, 4, chunked=False, piece=1000,
                       headers=fault(digest_body=True), timeout=CASE_TIMEOUT)
        doc = r.json()
        self.assertEqual((doc["length"], doc["framing"]), (n, "length"))
        self.assertEqual(doc["sha256"], expected_sha256(4, n))

    def test_digest_body_past_max_body(self):
        # The 256 MiB cap of a held body does not apply; 4 GiB does.
        for length, refused in ((300 * MIB, False), (4 * 1024 * MIB + 1, True)):
            with self.subTest(length=length):
                self.upstream.reset()
                with socket.create_connection(("127.0.0.1", self.upstream.port), timeout=5) as s:
                    s.sendall(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                              b"X-Fault: {\"digest_body\": true}\r\n\r\n" % length)
                    if not refused:
                        s.sendall(b"".join(generated_bytes(1, 0, MIB)))
                    answered = select.select([s], [], [], 0.5)[0]
                    self.assertEqual(bool(answered), refused)
                    if refused:
                        self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 400 "))
                deadline = time.monotonic() + 5
                while self.upstream.stats()["aborted"] < (not refused) and time.monotonic() < deadline:
                    time.sleep(0.05)
                entry, = self.upstream.received()
                if not refused:
                    self.assertEqual(entry["body_received"], MIB)

    def test_early_answer_comes_while_uploading(self):
        self.upstream.script([{"early": {"status": 413}}])
        r = stream_put(self.upstream.port, "/early", SIZE, 3, chunked=False,
                       timeout=CASE_TIMEOUT)
        self.assertEqual(r.status, 413, r)
        self.assertTrue(r.complete, r)
        self.assertEqual(r.header("Connection"), "close")
        self.assertIsNotNone(r.response_at)
        self.assertLess(r.sent_at_response, SIZE)
        entry, = self.upstream.received()
        self.assertEqual(entry["status"], 413)
        # A lingering close: the rest of the body is read and dropped until
        # the client stops (here it sends all of it) or 1 s passes, so the
        # close never resets a connection that still has the answer to read.
        if r.upload_complete:
            self.assertEqual(r.sent, SIZE)
            self.assertEqual(entry["body_received"], SIZE)
        else:
            self.assertIn(r.upload_error, ("EPIPE", "ECONNRESET"), r)
            self.assertGreaterEqual(r.ended - r.response_at, 0.9, r)

    def test_slow_reader(self):
        r = stream_get(self.upstream.port, "/slow", headers=fault(generate={"bytes": 2 * MIB}),
                       rcvbuf=8192, read_size=4096, pause_every=(512 * 1024, 0.2),
                       record_times=True, timeout=CASE_TIMEOUT)
        self.assertTrue(r.complete, r)
        self.assertEqual(r.sha256, expected_sha256(1, 2 * MIB))
        self.assertGreaterEqual(r.ended - r.started, 0.6)
        self.assertEqual(sum(n for _, n in r.times), 2 * MIB)
        self.assertTrue(all(n <= 4096 for _, n in r.times))

    def test_bad_streaming_actions_are_refused(self):
        for action in ({"sse": {"events": -1}}, {"generate": {"bytes": 1, "piece": 0}},
                       {"cut_after": {"bytes": 1, "how": "slam"}},
                       {"early": {"status": 413}, "status": 400},
                       {"digest_body": True, "no_read_body": True},
                       {"generate": {"bytes": 1}, "body": "x"}):
            with self.subTest(action=action):
                with self.assertRaises(RuntimeError):
                    self.upstream.script([action])
        self.assertEqual(self.upstream.stats()["script_left"], 0)


if __name__ == "__main__":
    unittest.main()
