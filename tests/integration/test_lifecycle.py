"""Lifecycle: SIGHUP reload, SIGTERM drain, -t error listing, secrets from the
environment, and a unix listener path that is not a socket.

Signals go to braced's own PID; tests wait for the log line or the upstream request that
shows a step happened rather than sleeping for it.
"""

import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (STOP_TIMEOUT, Background, Braced, BracedTestCase, braced_bin, fault,
                     make_config, request, run_braced, wait_until)


class ReloadTest(BracedTestCase):

    def test_reload_adds_a_profile_and_keeps_the_old_one(self):
        demo = {"upstream": self.upstream.url("/base")}
        with Braced(make_config({"demo": demo})) as b:
            self.assert_problem(b.get("/extra/x"), 404, "unknown_profile")
            b.reload(make_config({"demo": demo, "extra": {"upstream": self.upstream.url("/other")}}))
            added = b.get("/extra/x")
            old = b.get("/demo/x")
        self.assertEqual(added.status, 200, added)
        self.assertEqual(added.json()["path"], "/other/x")
        self.assertEqual(old.status, 200, old)
        self.assertEqual(old.json()["path"], "/base/x")

    def test_reload_names_a_listener_change_that_waits_for_a_restart(self):
        with Braced(self.config(admin="127.0.0.1:0")) as b:
            admin = b.admin_port
            b.reload(self.config(listen="127.0.0.1:0", admin="off"))
            self.assertEqual(b.get("/demo/x").status, 200)
            b.reload(self.config(listen=["127.0.0.1:0", "127.0.0.1:0"], admin="127.0.0.1:0"))
            warned = wait_until(lambda: [l for l in b.log_lines() if l.get("level") == "warn"
                                         and "takes effect at restart" in l.get("msg", "")], 5)
            self.assertEqual(b.get("/demo/x").status, 200)
            self.assertEqual(request(admin, "GET", "/healthz").status, 200)
        msgs = [l["msg"] for l in warned]
        # The first reload changes only admin (127.0.0.1:0 is the same listen).
        self.assertTrue(any(m.startswith("'admin' changed from '127.0.0.1:0' to 'off'")
                            and f"127.0.0.1:{admin}" in m for m in msgs), msgs)
        self.assertTrue(any(m.startswith("'listen' changed from '127.0.0.1:0' to "
                                         "'127.0.0.1:0, 127.0.0.1:0'")
                            and f"still listening on 127.0.0.1:{b.port}" in m for m in msgs),
                        msgs)
        self.assertFalse(any("'admin'" in m and "to '127.0.0.1:0'" in m for m in msgs), msgs)

    def test_broken_reload_keeps_the_old_configuration(self):
        # A YAML syntax error, and valid YAML with one error whose `demo` must not be half applied.
        broken = {
            "syntax": "listen: 127.0.0.1:0\nprofiles: [\n",
            "unknown key": make_config({"demo": {"upstream": self.upstream.url("/changed"),
                                                 "no_such_key": 1}}),
        }
        with Braced(self.config()) as b:
            for name, text in broken.items():
                with self.subTest(name):
                    lines = b.reload(text)
                    self.assertTrue([l for l in lines if l.get("level") == "error"],
                                    f"the failed reload is not logged as an error: {lines}")
                    resp = b.get("/demo/x")
                    self.assertEqual(resp.status, 200, resp)
                    self.assertEqual(resp.json()["path"], "/base/x")


    def test_failed_reload_logs_each_error_as_a_json_line(self):
        # Every stderr line stays a log line in the configured format: each
        # error its own JSON line with its position, then one saying why.
        bad = make_config({"demo": {"upstream": self.upstream.url("/changed"),
                                    "no_such_key": 1, "rout_only": True}})
        with Braced(self.config()) as b:
            before = len(b.log().splitlines())
            b.reload(bad)
            wait_until(lambda: "keeping the running" in b.log(), timeout=5)
            new = b.log().splitlines()[before:]
        for line in new:
            json.loads(line)    # raises on a raw FILE:LINE:COL line
        errors = [json.loads(l) for l in new if '"configuration error"' in l]
        self.assertEqual(len(errors), 2, new)
        for e in errors:
            self.assertEqual(e["level"], "error")
            self.assertTrue(e["file"].endswith("braced.yaml"), e)
            self.assertIsInstance(e["line"], int)
            self.assertIsInstance(e["col"], int)
            self.assertTrue(e["message"].startswith("unknown key"), e)
        summary = [l for l in new if "keeping the running" in l]
        self.assertIn("with 2 errors", summary[0])


    def test_nothing_is_announced_before_a_bind_that_fails(self):
        # The first address binds, the second is taken: start-up fails, and
        # no "listening" line claims the first.
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        self.addCleanup(taken.close)
        port = taken.getsockname()[1]
        b = Braced(self.config(listen=["127.0.0.1:0", f"127.0.0.1:{port}"]))
        b._write_files()
        try:
            out = subprocess.run([braced_bin(), "-c", b.config_path], capture_output=True,
                                 text=True, timeout=10)
        finally:
            b._cleanup()
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn(f"cannot listen on '127.0.0.1:{port}'", out.stderr)
        self.assertNotIn('"listening"', out.stderr)


class StopTest(BracedTestCase):

    def braced(self):
        return Braced(self.config(shutdown_grace="30s", limits={"max_response_body": "32MiB"},
                                  defaults={"timeouts": {"read": "5s"}}))

    def sigterm_when_upstream_has_it(self, b):
        arrived = wait_until(lambda: self.upstream.stats()["requests"] >= 1, timeout=3)
        self.assertTrue(arrived, "the request never reached the upstream")
        os.kill(b.proc.pid, signal.SIGTERM)

    def wait_exit(self, b):
        """braced's exit code; it must leave well under shutdown_grace once nothing is in flight."""
        try:
            return b.proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            self.fail("braced was still running 8 s after its last request finished")

    def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(self):
        with self.braced() as b:
            inflight = Background(b.get, "/demo/slow", fault(delay_ms=1000))
            self.sigterm_when_upstream_has_it(b)
            resp = inflight.result(timeout=10)
            code = self.wait_exit(b)
            log = b.log()
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["path"], "/base/slow")
        self.assertEqual(code, 0, log)

    def test_grace_over_answers_503_and_exits_0(self):
        # Fails if braced crashes rendering the problem of a request cut by
        # the end of shutdown_grace (its attempt must be in the history).
        cfg = self.config(shutdown_grace="300ms", defaults={"timeouts": {"read": "5s"}})
        with Braced(cfg) as b:
            inflight = Background(b.get, "/demo/slow", fault(delay_ms=3000))
            self.sigterm_when_upstream_has_it(b)
            resp = inflight.result(timeout=10)
            code = self.wait_exit(b)
            log = b.log()
        doc = self.assert_problem(resp, 503, "overloaded", profile="demo")
        self.assertEqual([h.get("outcome") for h in doc["history"]], ["cancelled"], doc)
        self.assertEqual(code, 0, log)

    def test_sigterm_waits_until_the_answer_is_written_out(self):
        # 8 MiB is more than the kernel's socket buffers hold, so braced must keep
        # writing the answer after the request is done upstream, to an app that
        # starts reading only after braced has it all.
        size = 8 * 1024 * 1024
        trickle = {"chunk": size, "interval_ms": 0, "total": size}
        with self.braced() as b:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                sock.settimeout(10)
                sock.connect(("127.0.0.1", b.port))
                action = json.dumps({"delay_ms": 300, "trickle": trickle})
                sock.sendall(b"GET /demo/big HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"X-Fault: " + action.encode() + b"\r\n\r\n")
                self.sigterm_when_upstream_has_it(b)
                # The answer streams: braced holds its transfer paused while
                # the app does not read, and its drain must wait for it.
                time.sleep(0.8)     # what braced's drain does now decides the test
                resp = http.client.HTTPResponse(sock)
                resp.begin()
                body = b""
                while True:
                    chunk = resp.read(65536)
                    if not chunk:
                        break
                    body += chunk
            finally:
                sock.close()
            code = self.wait_exit(b)
            log = b.log()
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(body), size, "braced exited before the answer was written out")
        self.assertEqual(body, b"x" * size)
        self.assertEqual(code, 0, log)
        self.assertIn('"outcome":"ok"', log)


class CheckConfigTest(BracedTestCase):

    def test_check_config_lists_every_error_in_order(self):
        b = Braced('listen: 127.0.0.1:0\n'
                   'admin: "off"\n'
                   'shutdown_grace: 10parsecs\n'            # 3:17 not a duration
                   'limits:\n'
                   '  max_inflight: 0\n'                    # 5:17 out of range
                   'profiles:\n'
                   '  demo:\n'
                   f'    upstream: "{self.upstream.url()}"\n'
                   '    bogus_key: 1\n')                    # 9:5 unknown key
        code, out, err = b.check_config()
        self.assertEqual(code, 1, out + err)
        found = re.findall(rf"^{re.escape(b.config_path)}:(\d+):(\d+): \S", err, re.M)
        positions = [(int(line), int(col)) for line, col in found]
        self.assertEqual(positions, [(3, 17), (5, 17), (9, 5)], err)


class SecretTest(BracedTestCase):

    def test_environment_secret_reaches_the_upstream_and_not_the_log(self):
        secret = "s3cr3t-" + secrets.token_hex(12)
        profile = {"headers": {"Authorization": "Bearer ${BRACED_IT_SECRET}"}}
        config = self.config(profile, log={"level": "debug"})
        with Braced(config, env={"BRACED_IT_SECRET": secret}) as b:
            ok = b.get("/demo/x")
            failed = b.get("/demo/y", headers=fault(status=500, body="no"))
            logged = wait_until(lambda: len([l for l in b.log_lines() if l.get("msg") == "request"]) >= 2,
                                timeout=3)
            self.assertTrue(logged, f"the two requests were not access-logged:\n{b.log()}")
        self.assertEqual(ok.status, 200, ok)
        self.assertEqual(self.seen_header(ok.json(), "Authorization"), [f"Bearer {secret}"])
        self.assertEqual(failed.status, 500, failed)
        self.assertNotIn(secret, b.log())


class UnixListenerTest(BracedTestCase):

    def test_listener_path_that_is_a_regular_file_is_not_replaced(self):
        work = tempfile.mkdtemp(prefix="braced-unix-")
        self.addCleanup(shutil.rmtree, work, True)
        path = os.path.join(work, "braced.sock")
        with open(path, "w") as f:
            f.write("precious\n")
        config_path = os.path.join(work, "braced.yaml")
        with open(config_path, "w") as f:
            f.write(self.config(listen=f"unix:{path}"))
        try:
            code, out, err = run_braced(["-c", config_path], timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail("braced started on a listener path that is a regular file")
        self.assertEqual(code, 1, err)
        self.assertTrue([line for line in err.splitlines() if path in line and "error" in line],
                        f"no error line names the path:\n{err}")
        self.assertTrue(os.path.isfile(path), f"braced removed the regular file {path}")
        with open(path) as f:
            self.assertEqual(f.read(), "precious\n")


if __name__ == "__main__":
    unittest.main()
