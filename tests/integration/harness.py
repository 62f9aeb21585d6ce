"""Shared fixtures for braced's integration tests.

Starts the fault-injecting upstream (tests/upstream.py) and the real braced
binary ($BRACED_BIN, default daemon/braced) as child processes, always stopped
by PID, and offers small HTTP clients over TCP, raw sockets and unix sockets.
"""

import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UPSTREAM_PY = os.path.join(REPO, "tests", "upstream.py")

START_TIMEOUT = 10.0    # seconds for a child to come up
STOP_TIMEOUT = 10.0     # seconds braced gets after SIGTERM
UPSTREAM_STOP_TIMEOUT = 5.0
HTTP_TIMEOUT = 15.0     # default client timeout per request

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def braced_bin():
    """Path of the braced binary under test: $BRACED_BIN, relative paths from the repo top."""
    path = os.environ.get("BRACED_BIN", "daemon/braced")
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def binary_problem():
    """None if the binary can be run, else a message saying why not."""
    path = braced_bin()
    if not os.path.isfile(path):
        return f"braced binary not found at {path} (build it, or set BRACED_BIN)"
    if not os.access(path, os.X_OK):
        return f"braced binary at {path} is not executable"
    return None


def stop_process(proc, grace, sig=signal.SIGTERM):
    """Send `sig` to proc (by its PID), wait up to `grace` s, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
    return proc.returncode


def closed_port():
    """A local TCP port with nothing listening on it (bound once, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(predicate, timeout, step=0.02):
    """Poll predicate() until it returns a true value or `timeout` s pass; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


# --- HTTP clients -----------------------------------------------------------

class Response:
    """status, reason, headers (case-insensitive .get/.get_all), raw_headers [(name, value)], body bytes."""

    def __init__(self, resp, body, elapsed):
        self.status = resp.status
        self.reason = resp.reason
        self.headers = resp.msg
        self.raw_headers = resp.getheaders()
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {dict(self.raw_headers)!r} {self.body[:300]!r}>"


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix stream socket."""

    def __init__(self, path, timeout=HTTP_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def _exchange(conn, method, path, body, headers):
    """Send one request exactly as given (raw path, no added headers but Host) and read the answer."""
    headers = dict(headers or {})
    names = {k.lower() for k in headers}
    start = time.monotonic()
    try:
        conn.putrequest(method, path, skip_host="host" in names, skip_accept_encoding=True)
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            headers["Content-Length"] = str(len(body))
        elif body is None and method in ("POST", "PUT", "PATCH") and "content-length" not in names:
            headers["Content-Length"] = "0"
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp, data, time.monotonic() - start)
    finally:
        conn.close()


def request(port, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT, host="127.0.0.1"):
    """One request on a fresh TCP connection to host:port; returns a Response."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    return _exchange(conn, method, path, body, headers)


def unix_request(sock_path, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One request over the unix socket at sock_path; returns a Response."""
    return _exchange(UnixHTTPConnection(sock_path, timeout), method, path, body, headers)


def raw_request(port, data, method="GET", timeout=HTTP_TIMEOUT):
    """Send the bytes `data` as they are and parse the answer; returns a Response."""
    start = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        body = resp.read()
        return Response(resp, body, time.monotonic() - start)
    finally:
        sock.close()


# --- the test upstream ------------------------------------------------------

class UpstreamProcess:
    """tests/upstream.py as a child process; .port, .blackhole_port, .url(base), .stats(), .reset().
    host: another IPv4 loopback address to listen on; port: a given port (0: any free one)."""

    def __init__(self, demo=False, host="127.0.0.1", port=0):
        self.dir = tempfile.mkdtemp(prefix="braced-up-")
        self.host = host
        self.stderr = open(os.path.join(self.dir, "upstream.err"), "wb")
        port_file = os.path.join(self.dir, "blackhole.port")
        args = [sys.executable, UPSTREAM_PY, "--blackhole-port-file", port_file,
                "--host", host, "--port", str(port)]
        if demo:
            args.append("--demo")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr, cwd=self.dir)
        try:
            self.port = int(self._first_line())
            with open(port_file) as f:
                self.blackhole_port = int(f.read())
        except Exception:
            self.stop()
            raise

    def _first_line(self):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError("test upstream did not print its port in time")
            chunk = os.read(fd, 64)
            if not chunk:
                raise RuntimeError(f"test upstream exited early:\n{self.log()}")
            line += chunk
        return line.decode().strip()

    def log(self):
        with open(os.path.join(self.dir, "upstream.err"), errors="replace") as f:
            return f.read()

    def url(self, base=""):
        return f"http://{self.host}:{self.port}{base}"

    def stats(self):
        return request(self.port, "GET", "/__stats", timeout=5, host=self.host).json()

    def reset(self):
        request(self.port, "POST", "/__reset", timeout=5, host=self.host)

    def script(self, actions):
        resp = request(self.port, "POST", "/__script", body=json.dumps(actions).encode(), timeout=5,
                       host=self.host)
        if resp.status != 200:
            raise RuntimeError(f"script refused: {resp.body!r}")

    def set_default(self, action):
        """Answer every request that has no scripted action or X-Fault with `action` until reset."""
        resp = request(self.port, "POST", "/__default", body=json.dumps(action).encode(), timeout=5,
                       host=self.host)
        if resp.status != 200:
            raise RuntimeError(f"default action refused: {resp.body!r}")

    def received(self):
        """The requests received since the last reset: [{t, method, path, headers, status}].

        t is time.monotonic() in the upstream process at arrival: the same
        clock (CLOCK_MONOTONIC) as time.monotonic() in the tests.
        """
        return request(self.port, "GET", "/__log", timeout=5, host=self.host).json()["requests"]

    def stop(self):
        stop_process(self.proc, UPSTREAM_STOP_TIMEOUT)
        self.proc.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the test token server --------------------------------------------------

TOKENSERVER_PY = os.path.join(REPO, "tests", "tokenserver.py")


class TokenServerProcess:
    """tests/tokenserver.py as a child process: an OAuth2 token endpoint
    (.token_url) and an upstream that wants its tokens (.url(base)).

    settings: the server's (client_id, client_secret, client_auth, expires_in,
    token_type, token_length; tokenserver.DEFAULTS otherwise), kept in
    .client_id and .client_secret for the configuration of a profile; reset()
    goes back to them."""

    def __init__(self, host="127.0.0.1", port=0, **settings):
        self.dir = tempfile.mkdtemp(prefix="braced-tok-")
        self.host = host
        self.settings = settings
        self.stderr = open(os.path.join(self.dir, "tokenserver.err"), "wb")
        args = [sys.executable, TOKENSERVER_PY, "--host", host, "--port", str(port)]
        for name, value in settings.items():
            if name == "expires_in":
                value = "none" if value is None else json.dumps(value)
            args += ["--" + name.replace("_", "-"), str(value)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr, cwd=self.dir)
        try:
            self.port = int(self._first_line())
            self.client_id, self.client_secret = (self.stats()["settings"][k]
                                                  for k in ("client_id", "client_secret"))
        except Exception:
            self.stop()
            raise

    def _first_line(self):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError("test token server did not print its port in time")
            chunk = os.read(fd, 64)
            if not chunk:
                raise RuntimeError(f"test token server exited early:\n{self.log()}")
            line += chunk
        return line.decode().strip()

    def log(self):
        with open(os.path.join(self.dir, "tokenserver.err"), errors="replace") as f:
            return f.read()

    @property
    def token_url(self):
        return f"http://{self.host}:{self.port}/token"

    def url(self, base=""):
        """The upstream side: any path but /token and /__*."""
        return f"http://{self.host}:{self.port}{base}"

    def _post(self, path, doc):
        resp = request(self.port, "POST", path, body=json.dumps(doc).encode(), timeout=5,
                       host=self.host)
        if resp.status != 200:
            raise RuntimeError(f"{path} refused: {resp.body!r}")
        return resp.json()

    def stats(self):
        return request(self.port, "GET", "/__stats", timeout=5, host=self.host).json()

    def reset(self):
        """Counters, logs, mode, tokens and settings back to the start."""
        self._post("/__reset", None)

    def set_mode(self, **mode):
        """The fault mode of the token endpoint (tokenserver.py's docstring); none clears it."""
        return self._post("/__mode", mode)

    def configure(self, **settings):
        """Change some settings until the next reset()."""
        return self._post("/__config", settings)

    def revoke(self):
        """Revoke every token issued so far: the upstream side answers 401 to them."""
        return self._post("/__revoke", None)

    def tokens(self):
        """Every token issued since the last reset: [{serial, token, age_ms, expires_in_ms,
        revoked}], to look for where no token may be."""
        return request(self.port, "GET", "/__tokens", timeout=5, host=self.host).json()["tokens"]

    def token_requests(self):
        """Every token request since the last reset: [{t, method, path, headers, body, form,
        client_auth, client_id, status, outcome, serial}], as received."""
        return request(self.port, "GET", "/__log", timeout=5, host=self.host).json()["token_requests"]

    def api_requests(self):
        """Every upstream-side request since the last reset: [{t, method, path, query,
        headers, outcome, serial}]; an issued token shows as "Bearer #SERIAL"."""
        return request(self.port, "GET", "/__log", timeout=5, host=self.host).json()["api_requests"]

    def stop(self):
        """Stops the server (SIGTERM, by PID); returns its exit code."""
        code = stop_process(self.proc, UPSTREAM_STOP_TIMEOUT)
        self.proc.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return code


# --- configuration ----------------------------------------------------------

def _yaml_scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value)        # a JSON object is a YAML flow mapping
    return json.dumps(str(value))      # a JSON string is a YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Block-style YAML for nested dicts of scalars and lists; a dict inside a list (a route) is flow style."""
    lines = []
    pad = "  " * indent
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{key}:")
            lines.append(to_yaml(value, indent + 1))
        elif isinstance(value, dict):
            lines.append(f"{pad}{key}: {{}}")
        else:
            lines.append(f"{pad}{key}: {_yaml_scalar(value)}")
    return "\n".join(lines)


def merge(base, extra):
    """Deep merge of dicts: extra's keys override base's, key by key."""
    out = dict(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def make_config(profiles, **top):
    """Configuration text: the common test settings, `profiles` and any top-level overrides.

    Every config makes exactly one upstream attempt per request (retry.attempts 1).
    """
    cfg = {
        "listen": "127.0.0.1:0",
        "admin": "off",
        "log": {"format": "json", "level": "info", "access": True},
        "defaults": {"retry": {"attempts": 1}},
    }
    cfg = merge(cfg, top)
    cfg["profiles"] = profiles
    return to_yaml(cfg) + "\n"


def count_listeners(config_text):
    """How many listeners the top-level `listen:` of config_text declares."""
    lines = config_text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^listen:\s*(.*?)\s*$", line)
        if not m:
            continue
        value = m.group(1)
        if value.startswith("["):
            return len([v for v in value.strip("[]").split(",") if v.strip()])
        if value:
            return 1
        return sum(1 for _ in _takewhile_items(lines[i + 1:]))
    return 1


def _takewhile_items(lines):
    for line in lines:
        if re.match(r"^\s+-\s", line):
            yield line
        elif line.strip() and not line.startswith(" "):
            return


# --- braced -----------------------------------------------------------------

class Braced:
    """The braced binary run on a configuration text, as a context manager.

    Inside the `with`: .port / .base_url (first TCP listener), .ports, .unix_paths,
    .config_path, .log(), .log_lines(); check_config() runs `braced -t` on the same file.
    files: {name: text} written next to the configuration (e.g. a schema a `$ref` names).
    """

    def __init__(self, config_text, listeners=None, env=None, files=None, wrapper=()):
        """wrapper: a command braced runs under, e.g. ("prlimit", "--nofile=40:40")."""
        self.config_text = config_text
        self.wrapper = tuple(wrapper)
        self.listeners = listeners or count_listeners(config_text)
        self.env = env
        self.files = dict(files or {})
        self.dir = self.config_path = self.log_path = None
        self.proc = None
        self.ports = []
        self.unix_paths = []
        self.returncode = None

    def _write_files(self):
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="braced-it-")
            self.config_path = os.path.join(self.dir, "braced.yaml")
            self.log_path = os.path.join(self.dir, "braced.err")
            with open(self.config_path, "w") as f:
                f.write(self.config_text)
            for name, text in self.files.items():
                with open(os.path.join(self.dir, name), "w") as f:
                    f.write(text)

    def check_config(self):
        """Run `braced -t -c FILE` on this configuration; returns (exit code, stdout, stderr)."""
        self._write_files()
        try:
            return run_braced(["-t", "-c", self.config_path])
        finally:
            if self.proc is None:
                self._cleanup()

    def log(self):
        """braced's stderr so far."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (FileNotFoundError, TypeError):
            return ""

    def log_lines(self):
        """The JSON log lines so far, parsed; other lines are skipped."""
        out = []
        for line in self.log().splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def _listening(self):
        return [l["listen"] for l in self.log_lines()
                if l.get("msg") == "listening" and isinstance(l.get("listen"), str)]

    def __enter__(self):
        problem = binary_problem()
        if problem:
            raise AssertionError(problem)
        self._write_files()
        env = dict(os.environ, **(self.env or {}))
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen([*self.wrapper, braced_bin(), "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, cwd=self.dir, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            found = self._listening()
            if len(found) >= self.listeners:
                break
            if self.proc.poll() is not None:
                log = self.log()
                self._cleanup()
                raise AssertionError(f"braced exited with {self.proc.returncode} before listening:\n{log}")
            if time.monotonic() > deadline:
                log = self.log()
                self.__exit__(None, None, None)
                raise AssertionError(f"braced did not log 'listening' {self.listeners}x "
                                     f"within {START_TIMEOUT} s:\n{log}")
            time.sleep(0.02)
        for addr in found:
            if addr.startswith("unix:"):
                self.unix_paths.append(addr[len("unix:"):])
            else:
                self.ports.append(int(addr.rsplit(":", 1)[1]))
        return self

    @property
    def port(self):
        return self.ports[0]

    @property
    def admin_port(self):
        """Port of the admin listener (config `admin: 127.0.0.1:0`), waited for briefly."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for l in self.log_lines():
                if l.get("msg") == "admin listening":
                    return int(l["listen"].rsplit(":", 1)[1])
            time.sleep(0.02)
        raise AssertionError("braced never logged its admin listener:\n" + self.log())

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        problem = None
        if self.proc is not None:
            self.returncode = stop_process(self.proc, STOP_TIMEOUT)
            self.proc = None
            log = self.log()
            # A clean SIGTERM stop is exit 0; sanitizer reports fail the test too.
            if self.returncode != 0:
                problem = f"braced exited with {self.returncode} on SIGTERM"
            elif "Sanitizer" in log or "runtime error:" in log:
                problem = "braced reported a sanitizer error"
            if problem:
                problem += ":\n" + log[-4000:]
        self._cleanup()
        if problem and exc[0] is None:
            raise AssertionError(problem)

    def _cleanup(self):
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def reload(self, text, timeout=5):
        """Write `text` as the configuration, send SIGHUP, and return the log lines about
        the reload that followed (an AssertionError when none came within `timeout` s)."""
        before = len(self.log_lines())
        with open(self.config_path + ".new", "w") as f:
            f.write(text)
        os.replace(self.config_path + ".new", self.config_path)
        os.kill(self.proc.pid, signal.SIGHUP)
        done = wait_until(lambda: [l for l in self.log_lines()[before:]
                                   if "reload" in str(l.get("msg", "")).lower()], timeout=timeout)
        if not done:
            raise AssertionError(f"no log line about the reload:\n{self.log()}")
        return done

    # shortcuts
    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        return request(self.port, method, path, body, headers, timeout)

    def get(self, path, headers=None, timeout=HTTP_TIMEOUT):
        return self.request("GET", path, None, headers, timeout)


def run_braced(args, timeout=10):
    """Run braced with `args`; returns (exit code, stdout, stderr) as text."""
    problem = binary_problem()
    if problem:
        raise AssertionError(problem)
    proc = subprocess.run([braced_bin(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout)
    return (proc.returncode, proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"))


def fault(**action):
    """An X-Fault header for the test upstream."""
    return {"X-Fault": json.dumps(action)}


class Background:
    """fn(*args) running in a daemon thread; .result(timeout) returns its value or raises its error."""

    def __init__(self, fn, *args):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args):
        try:
            self._value = fn(*args)
        except Exception as e:      # re-raised by result()
            self._error = e

    def result(self, timeout):
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value


def in_threads(fn, args_list, timeout):
    """Run fn(*args) for each args in threads; results (or exceptions) in order, all within `timeout` s."""
    results = [None] * len(args_list)

    def run(i, args):
        try:
            results[i] = fn(*args)
        except Exception as e:      # reported to the caller
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, a), daemon=True) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0, deadline - time.monotonic()))
    for i, t in enumerate(threads):
        if t.is_alive():
            results[i] = TimeoutError(f"still running after {timeout} s")
    return results


# --- test base class --------------------------------------------------------

class BracedTestCase(unittest.TestCase):
    """Starts one test upstream per class; each test fails (not skips) without a braced binary."""

    demo_upstream = False

    @classmethod
    def setUpClass(cls):
        cls.upstream = UpstreamProcess(demo=cls.demo_upstream)
        cls.addClassCleanup(cls.upstream.stop)

    def setUp(self):
        problem = binary_problem()
        if problem:
            self.fail(problem)
        self.upstream.reset()

    def config(self, profile_extra=None, base="/base", **top):
        """make_config with one profile `demo` → this class's upstream at `base`."""
        profile = merge({"upstream": self.upstream.url(base)}, profile_extra)
        return make_config({"demo": profile}, **top)

    def assert_problem(self, resp, status, code, profile=None):
        """resp is an application/problem+json error with this status and code; returns the document."""
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(resp.headers.get("Content-Type", "").startswith("application/problem+json"), resp)
        self.assertEqual(resp.headers.get("Brace-Error"), code, resp)
        doc = resp.json()
        self.assertEqual(doc.get("type"), f"urn:braced:problem:{code}", doc)
        self.assertEqual(doc.get("status"), status, doc)
        self.assertEqual(doc.get("code"), code, doc)
        self.assertIsInstance(doc.get("title"), str, doc)
        self.assertIsInstance(doc.get("detail"), str, doc)
        self.assertIsInstance(doc.get("correlation_id"), str, doc)
        self.assertEqual(doc["correlation_id"], resp.headers.get("X-Correlation-ID"), doc)
        if profile is not None:
            self.assertEqual(doc.get("profile"), profile, doc)
        return doc

    def assert_upstream_error(self, resp, status):
        """resp is a final upstream 4xx/5xx relayed as the upstream sent it
        (upstream_errors: passthrough, the default): its status, Brace-Error
        upstream_status and Brace-Attempts, and no problem body of braced's."""
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.headers.get("Brace-Error"), "upstream_status", resp)
        self.assertIsNotNone(resp.headers.get("Brace-Attempts"), resp)
        self.assertFalse(resp.headers.get("Content-Type", "").startswith("application/problem+json"),
                         resp)

    def assert_front_problem(self, resp, status, code):
        """resp is a problem+json answered by braced's HTTP front itself (framing,
        sizes, deadlines): before routing, so with no profile nor correlation id."""
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(resp.headers.get("Content-Type", "").startswith("application/problem+json"), resp)
        self.assertEqual(resp.headers.get("Brace-Error"), code, resp)
        doc = resp.json()
        self.assertEqual(doc.get("type"), f"urn:braced:problem:{code}", doc)
        self.assertEqual((doc.get("status"), doc.get("code")), (status, code), doc)
        return doc

    def assert_upstream_untouched(self):
        self.assertEqual(self.upstream.stats()["requests"], 0, "the upstream received a request")

    def seen_header(self, echo, name):
        """Values of header `name` (case-insensitive) in an upstream echo document."""
        return [v for n, v in echo["headers"] if n.lower() == name.lower()]
