"""Forwarding: what the upstream receives for an app request and what the app gets back.

Each test runs braced on a small configuration with one profile `demo`
pointing at the test upstream's base path /base, and compares the upstream's
echo of the request with what the app sent.
"""

import hashlib
import unittest

from harness import Braced, BracedTestCase, fault

MiB = 1024 * 1024


class ForwardingTest(BracedTestCase):

    def braced(self, profile_extra=None, **top):
        return Braced(self.config(profile_extra, **top))

    def test_methods_are_forwarded_to_the_base_path(self):
        with self.braced() as b:
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
                with self.subTest(method=method):
                    resp = b.request(method, "/demo/items/7?x=1")
                    self.assertEqual(resp.status, 200, resp)
                    echo = resp.json()
                    self.assertEqual(echo["method"], method)
                    self.assertEqual(echo["path"], "/base/items/7")
                    self.assertEqual(echo["query"], "x=1")

    def test_head_is_forwarded_and_answered_without_body(self):
        with self.braced() as b:
            resp = b.request("HEAD", "/demo/items/7")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"")
        self.assertEqual(self.upstream.stats()["by_path"], {"/base/items/7": 1})

    def test_percent_encoded_path_bytes_pass_unchanged(self):
        # Routing normalizes its own copy (%7E -> ~, hex upper-cased); the
        # upstream gets the app's bytes. An encoded slash is refused: test_paths.
        with self.braced() as b:
            echo = b.get("/demo/a%3Bb/c%20d/%7Euser/caf%C3%A9/x%2cy").json()
        self.assertEqual(echo["path"], "/base/a%3Bb/c%20d/%7Euser/caf%C3%A9/x%2cy")

    def test_query_bytes_pass_unchanged(self):
        for query in ("a=1&a=2&b=%41", "x=%2F%20+y&&z=&=v", "flag"):
            with self.subTest(query=query), self.braced() as b:
                echo = b.get(f"/demo/q?{query}").json()
                self.assertEqual(echo["query"], query)

    def test_binary_body_passes_byte_for_byte(self):
        body = bytes(range(256)) * 8
        with self.braced() as b:
            echo = b.request("POST", "/demo/upload", body=body,
                             headers={"Content-Type": "application/octet-stream"}).json()
        self.assertEqual(echo["body_len"], len(body))
        self.assertEqual(echo["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_empty_post_body_stays_empty(self):
        with self.braced() as b:
            resp = b.request("POST", "/demo/empty", body=b"")
        self.assertEqual(resp.status, 200, resp)
        echo = resp.json()
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["body_len"], 0)

    def test_app_headers_arrive_upstream(self):
        sent = {"X-App-Name": "shop", "X-App-Trace": "a b  c", "Content-Type": "application/json"}
        with self.braced() as b:
            echo = b.request("POST", "/demo/h", body=b"{}", headers=sent).json()
        for name, value in sent.items():
            self.assertEqual(self.seen_header(echo, name), [value], name)

    def test_hop_by_hop_headers_are_removed(self):
        hop = {
            "Connection": "close, X-Drop-Me",
            "X-Drop-Me": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Trailer": "X-Checksum",
            "Upgrade": "websocket",
            "Proxy-Connection": "keep-alive",
        }
        with self.braced() as b:
            echo = b.get("/demo/hop", headers=dict(hop, **{"X-Keep-Me": "yes"})).json()
        # braced may add a Connection header of its own for its own hop, never the app's.
        self.assertNotIn(hop["Connection"], self.seen_header(echo, "Connection"))
        for name in hop:
            if name != "Connection":
                self.assertEqual(self.seen_header(echo, name), [], name)
        self.assertEqual(self.seen_header(echo, "X-Keep-Me"), ["yes"])

    def test_host_is_the_upstream(self):
        with self.braced() as b:
            echo = b.get("/demo/host", headers={"Host": "app.example"}).json()
        self.assertEqual(self.seen_header(echo, "Host"), [f"127.0.0.1:{self.upstream.port}"])

    def test_no_header_is_added_to_what_the_app_sent(self):
        # libcurl adds Accept to every request, and Expect and Content-Type
        # to some: none may reach the upstream unless the app sent it.
        with self.braced() as b:
            for method, body in (("GET", None), ("DELETE", None), ("OPTIONS", None),
                                 ("POST", b"x=1"), ("PUT", b""), ("PATCH", b"{}")):
                resp = b.request(method, "/demo/plain", body=body, headers={"X-App": "1"})
                self.assertEqual(resp.status, 200, (method, resp))
                echo = resp.json()
                for name in ("Accept", "Expect", "Content-Type", "User-Agent"):
                    self.assertEqual(self.seen_header(echo, name), [], (method, name))
                self.assertEqual(self.seen_header(echo, "X-App"), ["1"], method)

    def test_large_post_is_sent_without_expect(self):
        body = b"0123456789abcdef" * (2 * MiB // 16)
        limits = {"max_request_body": "4MiB"}
        with self.braced(limits=limits) as b:
            resp = b.request("POST", "/demo/big", body=body, headers=fault(echo_body=False), timeout=30)
        self.assertEqual(resp.status, 200, resp)
        echo = resp.json()
        self.assertEqual(self.seen_header(echo, "Expect"), [])
        self.assertEqual(echo["body_len"], len(body))
        self.assertEqual(echo["body_sha256"], hashlib.sha256(body).hexdigest())

    def test_profile_headers_are_set_and_replace_the_apps(self):
        profile = {"headers": {"X-Api-Key": "profile-key", "X-Tenant": "acme"}}
        with self.braced(profile) as b:
            echo = b.get("/demo/auth", headers={"X-Api-Key": "app-key"}).json()
        self.assertEqual(self.seen_header(echo, "X-Api-Key"), ["profile-key"])
        self.assertEqual(self.seen_header(echo, "X-Tenant"), ["acme"])

    def test_upstream_response_comes_back_unchanged(self):
        action = {"status": 201, "body": "created \u2713",
                  "headers": {"X-Up-Custom": "v1; a=b", "Content-Type": "text/x-test"}}
        with self.braced() as b:
            resp = b.get("/demo/new", headers=fault(**action))
        self.assertEqual(resp.status, 201, resp)
        self.assertEqual(resp.headers.get("X-Up-Custom"), "v1; a=b")
        self.assertEqual(resp.headers.get("Content-Type"), "text/x-test")
        self.assertEqual(resp.body, "created \u2713".encode())


if __name__ == "__main__":
    unittest.main()
