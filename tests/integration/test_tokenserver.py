"""The test token server (tests/tokenserver.py), checked directly with urllib (no braced).

Before it can judge braced's OAuth2 client, it must itself follow RFC 6749:
the client credentials grant with either client authentication and the
form-urlencoding of 2.3.1, 5.1 answers with unique b64token tokens, 5.2
refusals; its upstream side must honour exactly the tokens it issued and
still lives; and every fault mode must answer as documented, bounded, and
end when the client leaves or the server stops.
"""

import base64
import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
from urllib.parse import quote, quote_plus, urlencode

from harness import REPO, TokenServerProcess, Background, raw_request, wait_until

sys.path.insert(0, os.path.join(REPO, "tests"))
import tokenserver  # noqa: E402  (tests/tokenserver.py, imported for the in-process server)

# An id and a secret that form-urlencoding changes: a raw "id:secret" in Basic
# splits at the wrong colon and reads "+" as a space.
CLIENT_ID = "app:one"
CLIENT_SECRET = "s3c+r/t: &=%é"
B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
TIMEOUT = 10


def call(url, data=None, headers=None, method=None, timeout=TIMEOUT):
    """One urllib request; returns (status, headers, body bytes), 4xx and 5xx included."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def basic(client_id, secret):
    """An RFC 6749 2.3.1 Authorization value."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


class TokenServerCase(unittest.TestCase):
    """One token server per class, reset before each test."""

    @classmethod
    def setUpClass(cls):
        cls.ts = TokenServerProcess(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        cls.addClassCleanup(cls.ts.stop)

    def setUp(self):
        self.ts.reset()

    def fetch(self, auth="basic", form=None, headers=None, **kw):
        """POST /token with grant_type=client_credentials, the form's extra fields
        and the client authenticated by `auth` (basic, post, both or none)."""
        fields = {"grant_type": "client_credentials", **(form or {})}
        headers = dict(headers or {})
        if auth in ("basic", "both"):
            headers["Authorization"] = basic(CLIENT_ID, CLIENT_SECRET)
        if auth in ("post", "both"):
            fields.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        return call(self.ts.token_url, urlencode(fields).encode(), headers, **kw)

    def token(self, **kw):
        status, _, body = self.fetch(**kw)
        self.assertEqual(status, 200, body)
        return json.loads(body)["access_token"]

    def api(self, token, path="/api/v1/things?x=1", headers=None):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        status, head, body = call(self.ts.url(path), headers=headers)
        return status, head, json.loads(body)

    def send_token_request(self):
        """A socket that has sent a token request (Basic) and not read the answer."""
        form = b"grant_type=client_credentials"
        sock = socket.create_connection(("127.0.0.1", self.ts.port), timeout=TIMEOUT)
        sock.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: %d\r\n\r\n%s"
                     % (basic(CLIENT_ID, CLIENT_SECRET).encode(), len(form), form))
        return sock

    def assert_refused(self, answer, status, error):
        got, head, body = answer
        self.assertEqual(got, status, body)
        self.assertEqual(head["Content-Type"], "application/json")
        self.assertEqual(json.loads(body)["error"], error)
        if status == 401:
            self.assertTrue(head["WWW-Authenticate"].startswith("Basic "), head)


class TokenEndpointTest(TokenServerCase):

    def test_basic_issues_a_bearer_token(self):
        status, head, body = self.fetch(form={"scope": "read write"})
        self.assertEqual(status, 200, body)
        self.assertEqual(head["Content-Type"], "application/json")
        self.assertEqual(head["Cache-Control"], "no-store")
        doc = json.loads(body)
        self.assertEqual((doc["token_type"], doc["expires_in"], doc["scope"]),
                         ("Bearer", 3600, "read write"))
        self.assertRegex(doc["access_token"], B64TOKEN)
        self.assertEqual(len(doc["access_token"]), 43)
        stats = self.ts.stats()
        self.assertEqual((stats["token_requests"], stats["tokens_issued"]), (1, 1))
        self.assertEqual(stats["client_auth"], {"basic": 1})

    def test_basic_credentials_must_be_form_urlencoded(self):
        raw = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        self.assert_refused(call(self.ts.token_url, b"grant_type=client_credentials",
                                 {"Authorization": raw}), 401, "invalid_client")
        # Percent-encoding a space as %20 rather than "+" is the same form encoding.
        pair = f"{quote(CLIENT_ID, safe='')}:{quote(CLIENT_SECRET, safe='')}"
        encoded = "Basic " + base64.b64encode(pair.encode()).decode()
        status, _, body = call(self.ts.token_url, b"grant_type=client_credentials",
                               {"Authorization": encoded})
        self.assertEqual(status, 200, body)

    def test_post_puts_the_credentials_in_the_form(self):
        self.token(auth="post")
        [entry] = self.ts.token_requests()
        self.assertEqual(entry["client_auth"], "post")
        self.assertEqual((entry["form"]["client_id"], entry["form"]["client_secret"]),
                         (CLIENT_ID, CLIENT_SECRET))
        self.assertNotIn("authorization", [n.lower() for n, _ in entry["headers"]])

    def test_client_auth_setting_refuses_the_other_method(self):
        for mode, good, bad in (("basic", "basic", "post"), ("post", "post", "basic")):
            with self.subTest(client_auth=mode):
                self.ts.configure(client_auth=mode)
                self.token(auth=good)
                self.assert_refused(self.fetch(auth=bad), 401, "invalid_client")
        self.ts.reset()     # back to "any"
        self.token(auth="basic")
        self.token(auth="post")
        self.assertEqual(self.ts.stats()["client_auth"], {"basic": 1, "post": 1})

    def test_client_authentication_is_checked(self):
        self.assert_refused(self.fetch(auth="both"), 400, "invalid_request")
        self.assert_refused(self.fetch(auth="none"), 401, "invalid_client")
        wrong = {"Authorization": basic(CLIENT_ID, CLIENT_SECRET + "x")}
        self.assert_refused(self.fetch(auth="none", headers=wrong), 401, "invalid_client")
        self.assert_refused(self.fetch(auth="none", form={"client_id": CLIENT_ID}), 401,
                            "invalid_client")
        self.assertEqual(self.ts.stats()["token_refused"], 4)
        self.assertEqual(self.ts.stats()["tokens_issued"], 0)

    def test_grant_type_and_form_are_checked(self):
        auth = {"Authorization": basic(CLIENT_ID, CLIENT_SECRET)}
        url = self.ts.token_url
        self.assert_refused(call(url, b"scope=read", auth), 400, "invalid_request")
        self.assert_refused(call(url, b"grant_type=password", auth), 400, "unsupported_grant_type")
        self.assert_refused(call(url, b"grant_type=client_credentials&scope=a&scope=b", auth),
                            400, "invalid_request")
        self.assert_refused(call(url, b'{"grant_type": "client_credentials"}',
                                 {**auth, "Content-Type": "application/json"}),
                            400, "invalid_request")
        self.assert_refused(call(url, "grant_type=client_credentials&scope=é".encode(), auth),
                            400, "invalid_request")
        status, head, body = call(url, headers=auth)
        self.assertEqual((status, head["Allow"]), (405, "POST"), body)

    def test_tokens_are_unique_b64tokens(self):
        tokens = [self.token() for _ in range(40)]
        self.assertEqual(len(set(tokens)), 40)
        for t in tokens:
            self.assertRegex(t, B64TOKEN)
        self.ts.configure(token_length=8192)
        self.assertEqual(len(self.token()), 8192)
        self.assertEqual(self.ts.stats()["tokens_issued"], 41)

    def test_expires_in_as_set(self):
        for value in (None, "120", 1, 10 ** 9):
            with self.subTest(expires_in=value):
                self.ts.configure(expires_in=value, token_type="bearer")
                status, _, body = self.fetch()
                doc = json.loads(body)
                self.assertEqual(doc["token_type"], "bearer")
                if value is None:
                    self.assertNotIn("expires_in", doc)
                else:
                    self.assertEqual(doc["expires_in"], value)
                self.assertEqual(self.api(doc["access_token"])[0], 200)

    def test_log_shows_what_was_sent(self):
        self.token(form={"scope": "read", "audience": "https://api.example/"})
        [entry] = self.ts.token_requests()
        self.assertEqual(entry["form"], {"grant_type": "client_credentials", "scope": "read",
                                         "audience": "https://api.example/"})
        self.assertEqual((entry["method"], entry["path"], entry["client_auth"], entry["client_id"],
                          entry["status"], entry["outcome"], entry["serial"]),
                         ("POST", "/token", "basic", CLIENT_ID, 200, "issued", entry["serial"]))
        self.assertIsInstance(entry["serial"], int)
        # With Basic, the secret travels in the Authorization field alone.
        self.assertNotIn(quote_plus(CLIENT_SECRET), entry["body"])
        self.assertIn(["Authorization", basic(CLIENT_ID, CLIENT_SECRET)], entry["headers"])

    def test_one_connection_serves_many_requests(self):
        before = self.ts.stats()["connections"]
        conn = http.client.HTTPConnection("127.0.0.1", self.ts.port, timeout=TIMEOUT)
        try:
            for _ in range(3):
                conn.request("POST", "/token", "grant_type=client_credentials",
                             {"Authorization": basic(CLIENT_ID, CLIENT_SECRET),
                              "Content-Type": "application/x-www-form-urlencoded"})
                resp = conn.getresponse()
                token = json.loads(resp.read())["access_token"]
                conn.request("GET", "/api", headers={"Authorization": f"Bearer {token}"})
                resp = conn.getresponse()
                self.assertEqual((resp.status, json.loads(resp.read())["method"]), (200, "GET"))
        finally:
            conn.close()
        # This connection and the one asking for the stats.
        self.assertEqual(self.ts.stats()["connections"] - before, 2)
        self.assertEqual(self.ts.stats()["api"], {"ok": 3})

    def test_settings_are_checked(self):
        for bad in ({"client_auth": "jwt"}, {"token_length": 7}, {"expires_in": 1.5},
                    {"no_such": 1}):
            with self.subTest(settings=bad):
                with self.assertRaises(RuntimeError):
                    self.ts.configure(**bad)


class UpstreamSideTest(TokenServerCase):

    def test_a_valid_token_is_answered_with_its_serial(self):
        token = self.token()
        status, _, doc = self.api(token)
        self.assertEqual(status, 200)
        serial = self.ts.token_requests()[0]["serial"]
        self.assertEqual((doc["serial"], doc["method"], doc["path"], doc["query"]),
                         (serial, "GET", "/api/v1/things", "x=1"))
        self.assertNotIn(token, json.dumps(doc))
        [entry] = self.ts.api_requests()
        self.assertEqual((entry["outcome"], entry["serial"]), ("ok", serial))
        self.assertIn(["Authorization", f"Bearer #{serial}"], entry["headers"])
        self.assertNotIn(token, json.dumps(self.ts.api_requests()))
        # Serial numbers follow issue order.
        self.assertEqual(self.api(self.token())[2]["serial"], serial + 1)

    def test_other_requests_get_401(self):
        status, head, doc = self.api(None)
        self.assertEqual((status, head["WWW-Authenticate"], doc["outcome"]),
                         (401, 'Bearer realm="tokenserver"', "missing"))
        for token, outcome in (("NotIssued", "unknown"), ("a b", "malformed"),
                               ("x" + self.token(), "unknown")):
            with self.subTest(token=token):
                status, head, doc = self.api(token)
                self.assertEqual((status, doc["outcome"]), (401, outcome))
                self.assertTrue(head["WWW-Authenticate"].startswith('Bearer error="invalid_token"'))
        # Two Authorization fields (the app's kept beside braced's): refused.
        token = self.token()
        resp = raw_request(self.ts.port, (
            f"GET /api HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n").encode())
        self.assertEqual((resp.status, resp.json()["outcome"]), (401, "repeated"))
        self.assertEqual(self.ts.stats()["api"],
                         {"missing": 1, "unknown": 2, "malformed": 1, "repeated": 1})

    def test_tokens_expire(self):
        self.ts.configure(expires_in=1)
        token = self.token()
        self.assertEqual(self.api(token)[0], 200)
        [issued] = self.ts.tokens()
        self.assertEqual(issued["token"], token)
        self.assertLessEqual(issued["expires_in_ms"], 1000)
        time.sleep(1.1)
        status, head, doc = self.api(token)
        self.assertEqual((status, doc["outcome"]), (401, "expired"))
        self.assertIn('error="invalid_token"', head["WWW-Authenticate"])

    def test_revoke_refuses_every_token_issued_so_far(self):
        old = [self.token(), self.token()]
        serials = [e["serial"] for e in self.ts.token_requests()]
        self.assertEqual(self.ts.revoke()["revoked_through"], serials[1])
        new = self.token()
        self.assertEqual([(t["token"], t["revoked"]) for t in self.ts.tokens()],
                         [(old[0], True), (old[1], True), (new, False)])
        for token, serial in zip(old, serials):
            status, head, doc = self.api(token)
            self.assertEqual((status, doc["outcome"], doc["serial"]), (401, "revoked", serial))
            self.assertIn('error="invalid_token"', head["WWW-Authenticate"])
        self.assertEqual(self.api(new)[0], 200)

    def test_reset_forgets_tokens_but_not_serials(self):
        self.ts.configure(expires_in=5)
        token = self.token()
        serial = self.api(token)[2]["serial"]
        self.ts.reset()
        self.assertEqual(self.api(token)[2]["outcome"], "unknown")
        stats = self.ts.stats()
        self.assertEqual((stats["token_requests"], stats["settings"]["expires_in"]), (0, 3600))
        self.assertEqual(self.api(self.token())[2]["serial"], serial + 1)


class FaultModeTest(TokenServerCase):

    def test_status(self):
        self.ts.set_mode(status=503)
        status, head, body = self.fetch()
        self.assertEqual((status, head["Content-Type"]), (503, "text/plain"))
        self.ts.set_mode(status=400, error="invalid_scope")
        self.assert_refused(self.fetch(), 400, "invalid_scope")
        stats = self.ts.stats()
        self.assertEqual((stats["token_faulted"], stats["tokens_issued"]), (2, 0))
        # The form is still read and logged.
        self.assertEqual([e["form"]["grant_type"] for e in self.ts.token_requests()],
                         ["client_credentials"] * 2)

    def test_times_bounds_a_mode(self):
        self.ts.set_mode(status=500, times=2)
        self.assertEqual([self.fetch()[0] for _ in range(3)], [500, 500, 200])
        self.assertIsNone(self.ts.stats()["mode"])

    def test_malformed_answers(self):
        checks = {
            "not_json": lambda b: self.assertRaises(ValueError, json.loads, b),
            "html": lambda b: self.assertIn(b"<html>", b),
            "empty": lambda b: self.assertEqual(b, b""),
            "array": lambda b: self.assertIsInstance(json.loads(b), list),
            "no_access_token": lambda b: self.assertNotIn("access_token", json.loads(b)),
            "expires_zero": lambda b: self.assertEqual(json.loads(b)["expires_in"], 0),
            "expires_negative": lambda b: self.assertLess(json.loads(b)["expires_in"], 0),
            "expires_abc": lambda b: self.assertEqual(json.loads(b)["expires_in"], "abc"),
            "expires_fraction": lambda b: self.assertEqual(json.loads(b)["expires_in"], 1.5),
            "token_type_mac": lambda b: self.assertEqual(json.loads(b)["token_type"], "mac"),
            "token_crlf": lambda b: self.assertIn("\r\n", json.loads(b)["access_token"]),
            "token_space": lambda b: self.assertIn(" ", json.loads(b)["access_token"]),
            "error_beside_token": lambda b: self.assertEqual(
                json.loads(b)["error"], "invalid_scope"),
        }
        self.assertEqual(set(checks), set(tokenserver.MALFORMED))
        for name, check in checks.items():
            with self.subTest(malformed=name):
                self.ts.set_mode(malformed=name)
                status, _, body = self.fetch()
                self.assertEqual(status, 200)
                check(body)
        self.ts.set_mode(malformed="expires_zero")
        token = json.loads(self.fetch()[2])["access_token"]
        self.assertEqual(self.api(token)[2]["outcome"], "unknown")
        self.assertEqual(self.ts.stats()["tokens_issued"], 0)

    def test_oversized(self):
        for size, chunked in ((16 * 1024 * 1024, False), (300000, True)):
            with self.subTest(bytes=size, chunked=chunked):
                self.ts.set_mode(oversized={"bytes": size, "chunked": chunked})
                req = urllib.request.Request(self.ts.token_url, b"grant_type=client_credentials",
                                             {"Authorization": basic(CLIENT_ID, CLIENT_SECRET)})
                with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                    self.assertEqual(resp.headers["Transfer-Encoding"],
                                     "chunked" if chunked else None)
                    first = resp.read(64)
                    total = len(first) + sum(len(p) for p in iter(lambda: resp.read(65536), b""))
                self.assertEqual(total, size)
                self.assertTrue(first.startswith(b'{"access_token": '), first)
        self.ts.set_mode(oversized={"bytes": 300, "chunked": True})
        doc = json.loads(self.fetch()[2])
        self.assertEqual(len(json.dumps(doc)), 300)
        # A client that reads the first 64 KiB and leaves ends the answer.
        self.ts.set_mode(oversized={"bytes": 16 * 1024 * 1024})
        sock = self.send_token_request()
        got = 0
        while got < 65536:
            got += len(sock.recv(65536))
        sock.close()
        self.assertTrue(wait_until(lambda: self.ts.stats()["token_active"] == 0, 5))
        self.assertEqual(self.ts.stats()["token_aborted"], 1)

    def test_delay_and_trickle_keep_the_answer(self):
        self.ts.set_mode(delay_ms=200)
        start = time.monotonic()
        self.token()
        self.assertGreaterEqual(time.monotonic() - start, 0.2)
        self.ts.set_mode(trickle={"chunk": 64, "interval_ms": 20})
        start = time.monotonic()
        status, _, body = self.fetch()
        self.assertEqual(status, 200)
        gaps = -(-(len(body) + 100) // 64) - 1      # the head is more than 100 bytes
        self.assertGreaterEqual(time.monotonic() - start, gaps * 0.02)
        self.assertEqual(self.api(json.loads(body)["access_token"])[0], 200)

    def test_close_without_answer(self):
        for how, error in (("fin", http.client.RemoteDisconnected),
                           ("rst", ConnectionResetError)):
            with self.subTest(close=how):
                self.ts.set_mode(close=how)
                with self.assertRaises((error, urllib.error.URLError)):
                    self.fetch()
        self.assertEqual([e["outcome"] for e in self.ts.token_requests()],
                         ["close_fin", "close_rst"])

    def test_a_client_leaving_ends_a_delay(self):
        self.ts.set_mode(delay_ms=60000)
        sock = self.send_token_request()
        self.assertTrue(wait_until(lambda: self.ts.stats()["token_active"] == 1, 5))
        sock.close()
        self.assertTrue(wait_until(lambda: self.ts.stats()["token_active"] == 0, 5))
        self.assertEqual(self.ts.stats()["token_aborted"], 1)

    def test_concurrent_requests_are_counted(self):
        self.ts.set_mode(delay_ms=300)
        jobs = [Background(self.token) for _ in range(5)]
        tokens = [j.result(TIMEOUT) for j in jobs]
        self.assertEqual(len(set(tokens)), 5)
        stats = self.ts.stats()
        self.assertEqual((stats["token_peak"], stats["tokens_issued"]), (5, 5))

    def test_modes_are_checked(self):
        for bad in ({"nope": 1}, {"delay_ms": 60001}, {"delay_ms": True}, {"status": 199},
                    {"status": 500, "close": "fin"}, {"error": "x"},
                    {"status": 400, "error": "a\"b"}, {"malformed": "nope"},
                    {"oversized": {"bytes": 16 * 1024 * 1024 + 1}},
                    {"oversized": {"bytes": 127}}, {"close": "yes"},
                    {"trickle": {"chunk": 0}}, {"trickle": {"interval_ms": 10001}},
                    {"trickle": {}, "close": "fin"}, {"times": 0}, [1]):
            with self.subTest(mode=bad):
                resp = call(self.ts.url("/__mode"), json.dumps(bad).encode())
                self.assertEqual(resp[0], 400, resp)
        self.assertIsNone(self.ts.stats()["mode"])


class LifecycleTest(unittest.TestCase):

    def test_stop_ends_answers_in_progress(self):
        server = tokenserver.TokenServer(client_id="a", client_secret="b").start()
        try:
            call(f"http://127.0.0.1:{server.port}/__mode", b'{"delay_ms": 60000}')
            auth = {"Authorization": basic("a", "b")}
            job = Background(call, f"http://127.0.0.1:{server.port}/token",
                             b"grant_type=client_credentials", auth)
            self.assertTrue(wait_until(lambda: server.state.snapshot()["token_active"], 5))
            idle = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
            self.assertTrue(wait_until(lambda: server.state.snapshot()["connections"] == 3, 5))
        finally:
            start = time.monotonic()
            server.stop()
        self.assertLess(time.monotonic() - start, 5)
        with self.assertRaises((OSError, http.client.HTTPException, urllib.error.URLError)):
            job.result(5)
        self.assertEqual(idle.recv(1), b"")
        idle.close()
        self.assertTrue(wait_until(lambda: not [t for t in threading.enumerate()
                                                if "process_request" in t.name], 5))

    def test_only_loopback(self):
        with self.assertRaises(ValueError):
            tokenserver.TokenServer(host="0.0.0.0")

    def test_process_stops_cleanly(self):
        ts = TokenServerProcess(expires_in="60", client_auth="post")
        try:
            self.assertEqual(ts.stats()["settings"]["expires_in"], "60")
            self.assertEqual(ts.stats()["settings"]["client_auth"], "post")
        finally:
            self.assertEqual(ts.stop(), 0)


if __name__ == "__main__":
    unittest.main()
