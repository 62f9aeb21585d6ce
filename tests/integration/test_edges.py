"""Edge cases at the seams of the engine: the wait for an answer after an
upload, malformed status lines, answers too large for braced, HEAD of big
resources, pool waits cut by the budget, replies abandoned mid-write,
headers an upstream must not set, and secrets in /config."""

import base64
import json
import os
import signal
import socket
import time
import unittest

from harness import Background, Braced, BracedTestCase, fault, request, wait_until


class EdgeTest(BracedTestCase):
    def test_wait_after_an_upload_is_bounded_by_read_not_write(self):
        # write 300ms < upstream think time 1000ms < read 3s: the answer arrives.
        cfg = self.config(defaults={"retry": {"attempts": 1},
                                    "timeouts": {"write": "300ms", "read": "3s", "total": "8s"}})
        with Braced(cfg) as b:
            resp = b.request("POST", "/demo/pay", body=b"{\"amount\": 1}",
                             headers=fault(delay_ms=1000))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.upstream.stats()["requests"], 1)

    def test_malformed_status_line_after_sending_is_not_a_connect_failure(self):
        # The request was sent: a POST under unsafe: never must not be sent again.
        raw = base64.b64encode(b"HTTP/1.1 099 Weird\r\nContent-Length: 0\r\n\r\n").decode()
        cfg = self.config(defaults={"retry": {"attempts": 4, "unsafe": "never"}})
        with Braced(cfg) as b:
            resp = b.request("POST", "/demo/pay", body=b"x", headers=fault(raw_b64=raw))
        doc = self.assert_problem(resp, 502, "upstream_unavailable", profile="demo")
        self.assertEqual(self.upstream.stats()["requests"], 1, doc)
        self.assertEqual(doc["history"][0]["outcome"], "reset", doc)

    def test_answers_too_large_do_not_open_the_breaker(self):
        # Held whole (a schema checks them), so max_response_body applies.
        held = {"routes": [{"match": "GET /big", "response": {
            "mode": "enforce", "body": {"type": "string"}}}]}
        cfg = self.config(held, limits={"max_response_body": "1KiB"},
                          defaults={"retry": {"attempts": 1},
                                    "circuit_breaker": {"min_requests": 3, "failure_ratio": 0.5}})
        with Braced(cfg) as b:
            for _ in range(4):
                big = b.get("/demo/big", fault(body="z" * 2000))
                self.assert_problem(big, 502, "response_too_large", profile="demo")
            after = b.get("/demo/small")
        self.assertEqual(big.json()["history"][0]["outcome"], "too_large")
        self.assertEqual(after.status, 200, after)

    def test_head_of_a_resource_larger_than_the_limit_is_answered(self):
        cfg = self.config(limits={"max_response_body": "1KiB"})
        with Braced(cfg) as b:
            resp = b.request("HEAD", "/demo/file",
                             headers=fault(headers={"Content-Length": "5000"}, body="z" * 5000))
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.headers.get("Content-Length"), "5000")

    def test_pool_wait_cut_by_the_budget_is_a_timeout(self):
        cfg = self.config(defaults={"retry": {"attempts": 1}, "pool": {"max_connections": 1},
                                    "timeouts": {"pool": "2s", "read": "5s", "total": "8s"}})
        with Braced(cfg) as b:
            first = Background(b.get, "/demo/slow", fault(delay_ms=1500))
            self.assertTrue(wait_until(lambda: self.upstream.stats()["requests"] >= 1, timeout=3))
            second = b.get("/demo/fast", {"Brace-Timeout-Ms": "300"})
            self.assertEqual(first.result(timeout=10).status, 200)
        doc = self.assert_problem(second, 504, "upstream_timeout", profile="demo")
        self.assertEqual(doc["attempts"], 0, doc)
        self.assertEqual(self.upstream.stats()["requests"], 1)

    def test_a_reply_abandoned_mid_write_does_not_hold_up_shutdown(self):
        cfg = self.config(shutdown_grace="30s", limits={"max_response_body": "16MiB"})
        with Braced(cfg) as b:
            self.upstream.script([{"body": "z" * (8 * 1024 * 1024)}])
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(5)
            s.connect(("127.0.0.1", b.port))
            s.sendall(b"GET /demo/huge HTTP/1.1\r\nHost: x\r\n\r\n")
            # The head comes at once; the body streams while the app reads.
            self.assertTrue(s.recv(16).startswith(b"HTTP/1.1 200"), "braced never answered")
            # Leave without reading: RST.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            time.sleep(0.3)
            started = time.monotonic()
            os.kill(b.proc.pid, signal.SIGTERM)
            b.proc.wait(timeout=30)
            took = time.monotonic() - started
        # Nothing is in flight: the 30 s grace must not be waited out.
        self.assertLess(took, 15, "SIGTERM waited for a reply whose connection was gone")

    def test_replies_an_app_does_not_read_count_as_in_flight(self):
        # Apps that stop reading must not pile up answers in braced's memory
        # without bound: a reply being written counts against max_inflight.
        cfg = self.config(limits={"max_inflight": 2, "max_response_body": "16MiB"})
        with Braced(cfg) as b:
            self.upstream.script([{"body": "z" * (8 * 1024 * 1024)}] * 2)
            stalled = []
            try:
                for i in range(2):
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.settimeout(5)
                    s.connect(("127.0.0.1", b.port))
                    s.sendall(f"GET /demo/big{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    stalled.append(s)
                    # The head is relayed; the rest of the body waits for the app.
                    self.assertTrue(s.recv(16).startswith(b"HTTP/1.1 200"), b.log())
                third = b.get("/demo/third")
            finally:
                for s in stalled:
                    s.close()
            self.assert_problem(third, 503, "overloaded", profile="demo")
            self.assertTrue(wait_until(lambda: b.get("/demo/later").status == 200, timeout=5))

    def test_upstream_cannot_set_braced_headers(self):
        with Braced(self.config()) as b:
            resp = b.get("/demo/x", fault(headers={"Brace-Error": "circuit_open",
                                                   "Brace-Attempts": "9"}))
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.headers.get("Brace-Error"), resp)
        self.assertEqual([v for n, v in resp.raw_headers if n.lower() == "brace-attempts"], ["1"])

    def test_config_redacts_a_ca_file_from_the_environment(self):
        cfg = self.config({"tls": {"ca_file": "${BRACED_EDGE_CA}"}}, admin="127.0.0.1:0")
        b = Braced(cfg, env={"BRACED_EDGE_CA": "/etc/ssl/certs/ca-certificates.crt"})
        with b:
            body = request(b.admin_port, "GET", "/config").body
        self.assertNotIn(b"ca-certificates.crt", body)
        self.assertEqual(json.loads(body)["profiles"]["demo"]["tls"]["ca_file"], "<redacted>")


if __name__ == "__main__":
    unittest.main()
