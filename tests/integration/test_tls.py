"""TLS to the upstream: verify off, verify against the system CAs, a ca_file.

A self-signed certificate for 127.0.0.1/localhost is made with the openssl
command, and a small HTTPS echo server (ssl + http.server) runs in a thread on
127.0.0.1; an unknown CA must fail the handshake, which is a connect failure.
"""

import http.server
import json
import os
import shutil
import socketserver
import ssl
import subprocess
import tempfile
import threading
import unittest

from harness import (Braced, BracedTestCase, closed_port, in_threads, make_config, stop_process,
                     wait_until)


def make_certificate(directory):
    """A self-signed certificate (SAN IP:127.0.0.1, DNS:localhost); returns (cert, key) paths."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise AssertionError("the openssl command is needed to make the test certificate")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.server.paths.append(self.path)
        body = json.dumps({"path": self.path, "tls": self.request.version()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if "close" in self.path:  # one answer per connection
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HTTPSEchoServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Answers GET with {"path", "tls"}; the handshake runs in each connection's thread."""

    daemon_threads = True

    def __init__(self, context):
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.context = context
        self.paths = []
        self.failed_handshakes = 0
        self.resumed = []  # per accepted connection: did it resume a TLS session

    def finish_request(self, request, client_address):
        request.settimeout(5)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.failed_handshakes += 1     # the client refused the certificate
            return
        self.resumed.append(tls.session_reused)
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass


class TLSTest(BracedTestCase):
    """The fault upstream of BracedTestCase is unused; the HTTPS echo server stands in for it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tls_dir = tempfile.mkdtemp(prefix="braced-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.tls_dir, True)
        cls.cert, key = make_certificate(cls.tls_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cls.cert, key)
        cls.https = HTTPSEchoServer(context)
        thread = threading.Thread(target=cls.https.serve_forever, kwargs={"poll_interval": 0.1},
                                  daemon=True)
        thread.start()

        def stop():
            cls.https.shutdown()
            cls.https.server_close()
            thread.join(5)
        cls.addClassCleanup(stop)

    def setUp(self):
        super().setUp()
        self.https.paths.clear()
        self.https.failed_handshakes = 0
        self.https.resumed.clear()

    def profile(self, tls=None):
        profile = {"upstream": f"https://127.0.0.1:{self.https.server_address[1]}/base"}
        if tls is not None:
            profile["tls"] = tls
        return profile

    def braced(self, tls=None):
        return Braced(make_config({"secure": self.profile(tls)}))

    def test_verify_off_accepts_the_self_signed_certificate(self):
        with self.braced({"verify": False}) as b:
            resp = b.get("/secure/x?q=1")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["path"], "/base/x?q=1")
        self.assertEqual(self.https.paths, ["/base/x?q=1"])

    def test_unknown_ca_is_a_connect_failure(self):
        with self.braced() as b:
            resp = b.get("/secure/x")
        self.assert_problem(resp, 502, "upstream_unavailable", profile="secure")
        self.assertEqual(self.https.paths, [], "a request went over an unverified connection")
        self.assertTrue(wait_until(lambda: self.https.failed_handshakes >= 1, timeout=3),
                        "braced never attempted the TLS handshake")

    def test_ca_file_trusts_the_certificate(self):
        with self.braced({"ca_file": self.cert}) as b:
            resp = b.get("/secure/y")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["path"], "/base/y")

    def test_a_new_connection_resumes_the_tls_session(self):
        # The server closes each connection after its answer, so every
        # request makes a handshake; after the first they resume its session.
        with self.braced({"ca_file": self.cert}) as b:
            for i in range(3):
                resp = b.get(f"/secure/close{i}")
                self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.https.resumed, [False, True, True])

    def test_verification_holds_beside_trusted_connections_and_sessions(self):
        # Profiles to the same HTTPS server share braced's connection pool
        # and TLS session cache; one that does not trust the certificate must
        # fail every time, even after the others connected, kept their
        # connection and stored a session, and while the certificate store
        # built from the right file is cached.
        other = os.path.join(self.tls_dir, "other")
        os.makedirs(other, exist_ok=True)
        wrong_ca, _ = make_certificate(other)
        profiles = {"good": self.profile({"ca_file": self.cert}),
                    "wrong": self.profile({"ca_file": wrong_ca}),
                    "system": self.profile(),
                    "off": self.profile({"verify": False})}
        with Braced(make_config(profiles)) as b:
            for name in ["good", "off", "wrong", "system", "good", "wrong", "off", "system"]:
                resp = b.get(f"/{name}/close-{name}" if name != "off" else "/off/keep")
                if name in ("good", "off"):
                    self.assertEqual(resp.status, 200, (name, resp))
                else:
                    self.assert_problem(resp, 502, "upstream_unavailable", profile=name)
        self.assertEqual(sorted(set(self.https.paths)), ["/base/close-good", "/base/keep"])
        self.assertGreaterEqual(self.https.failed_handshakes, 4)


class HTTP2Test(BracedTestCase):
    """An upstream that speaks only HTTP/2 (nghttpd, h2 over TLS with ALPN):
    a 200 through braced proves HTTP/2 was used when the upstream offered it."""

    def test_http2_upstream_is_used_when_offered(self):
        nghttpd = shutil.which("nghttpd")
        self.assertIsNotNone(nghttpd, "nghttpd (Debian nghttp2-server) is needed for this test")
        tmp = tempfile.mkdtemp(prefix="braced-h2-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = make_certificate(tmp)
        root = os.path.join(tmp, "www")
        os.makedirs(os.path.join(root, "base"))
        with open(os.path.join(root, "base", "hello.json"), "w") as f:
            f.write('{"hello": "h2"}')
        port = closed_port()
        log_path = os.path.join(tmp, "nghttpd.log")
        with open(log_path, "wb") as log:
            server = subprocess.Popen([nghttpd, "-v", "-d", root, "--address=127.0.0.1",
                                       str(port), key, cert],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.addCleanup(stop_process, server, 5)
        profile = {"upstream": f"https://127.0.0.1:{port}/base", "tls": {"ca_file": cert}}
        with Braced(make_config({"h2": profile})) as b:
            up = wait_until(lambda: self._connectable(port), timeout=5)
            self.assertTrue(up, "nghttpd did not start")
            answers = in_threads(b.get, [("/h2/hello.json",)] * 5, timeout=20)
        for resp in answers:
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.json(), {"hello": "h2"})
        with open(log_path, errors="replace") as f:
            log = f.read()
        self.assertIn(":path: /base/hello.json", log)
        self.assertIn("HEADERS frame", log)

    @staticmethod
    def _connectable(port):
        import socket
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False


if __name__ == "__main__":
    unittest.main()
