"""A test kit for braced's endpoints (SPEC 4.11), Python standard library only.

- UpstreamSet: one tests/upstream.py process per loopback address, all on the
  SAME port, each scriptable on its own (.upstreams[i] has the API of
  harness.UpstreamProcess: script, set_default, reset, stats, received).
- TLSSet: one in-process HTTPS echo server per loopback address, all on the
  same port, serving one certificate; each counts the connections it
  accepted and records the Host header and the TLS SNI of each request.
- Dnsmasq: Debian's dnsmasq on a loopback UDP port, answering A records
  from a hosts-format file that .set() rewrites (SIGHUP, then waits until
  the new answer is served).
- dns_query(): one real DNS query with the socket module.
- hosts_file(), name_certificate(): files for `dns.hosts_file` and for a
  certificate that names a host name and no address.
- status_endpoints(), endpoint_of(), metric_lines(), access_lines().

127.0.0.2, 127.0.0.3 ... reach the loopback interface on Linux without any
setup. Every process the kit starts is stopped by its PID; every socket
stays on 127.0.0.0/8.
"""

import http.client
import http.server
import json
import os
import random
import select
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

from harness import (START_TIMEOUT, UPSTREAM_PY, UPSTREAM_STOP_TIMEOUT, UpstreamProcess,
                     _exchange, request, stop_process)

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
NAME = "api.braced.test"        # the name the tests put in upstream URLs
DNSMASQ = "/usr/sbin/dnsmasq"
PORT_TRIES = 10                 # ports tried before a set of servers gives up
DNS_TIMEOUT = 0.5               # seconds one DNS query waits for its answer


# --- plain HTTP upstreams on several addresses --------------------------------

def host_request(host, port, method, path, body=None, headers=None, timeout=5):
    """One request on a fresh TCP connection to host:port (a loopback address)."""
    return _exchange(http.client.HTTPConnection(host, port, timeout=timeout), method, path,
                     body, headers)


class HostUpstream(UpstreamProcess):
    """harness.UpstreamProcess bound to `host`:`port` (port 0: any free one).

    The same API (.port, .url, .stats, .reset, .script, .set_default,
    .received, .log, .stop), with every control request sent to its own
    address; .host and .address ("HOST:PORT") besides. No blackhole port.
    """

    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self.blackhole_port = None
        self.controls = 0   # control connections of ours since the last reset
        self.dir = tempfile.mkdtemp(prefix="braced-ep-up-")
        self.stderr = open(os.path.join(self.dir, "upstream.err"), "wb")
        args = [sys.executable, UPSTREAM_PY, "--host", host, "--port", str(port)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr, cwd=self.dir)
        try:
            self.port = int(self._first_line())
        except Exception:
            self.stop()
            raise

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def url(self, base=""):
        return f"http://{self.host}:{self.port}{base}"

    def _control(self, method, path, body=None):
        self.controls += 1
        return host_request(self.host, self.port, method, path, body=body, timeout=5)

    def stats(self):
        return self._control("GET", "/__stats").json()

    def reset(self):
        self._control("POST", "/__reset")
        self.controls = 0

    def connections(self):
        """TCP connections accepted since the last reset, less our own control ones."""
        return self.stats()["connections"] - self.controls

    def script(self, actions):
        resp = self._control("POST", "/__script", json.dumps(actions).encode())
        if resp.status != 200:
            raise RuntimeError(f"script refused: {resp.body!r}")

    def set_default(self, action):
        resp = self._control("POST", "/__default", json.dumps(action).encode())
        if resp.status != 200:
            raise RuntimeError(f"default action refused: {resp.body!r}")

    def received(self):
        return self._control("GET", "/__log").json()["requests"]


class UpstreamSet:
    """One tests/upstream.py per address in `hosts`, all on one port.

    port=None picks a port free on every address (the first upstream binds
    port 0, the others its port; on a clash all stop and another port is
    tried). .upstreams[i] is a HostUpstream; .port, .addresses(), .url();
    stops every process by its PID on .stop(), on leaving a `with`, or
    through .cleanup_with(testcase).
    """

    def __init__(self, hosts=HOSTS, port=None):
        self.hosts = tuple(hosts)
        self.upstreams = []
        last = None
        for _ in range(1 if port else PORT_TRIES):
            try:
                first = HostUpstream(self.hosts[0], port or 0)
                self.upstreams = [first]
                for host in self.hosts[1:]:
                    self.upstreams.append(HostUpstream(host, first.port))
                break
            except RuntimeError as e:     # a clash on one address: try another port
                last = e
                self.stop()
        if not self.upstreams:
            raise RuntimeError(f"no port free on all of {self.hosts}: {last}")
        self.port = self.upstreams[0].port

    def __len__(self):
        return len(self.upstreams)

    def __getitem__(self, i):
        return self.upstreams[i]

    def __iter__(self):
        return iter(self.upstreams)

    def addresses(self):
        """["127.0.0.1:P", "127.0.0.2:P", ...] in the order of .upstreams."""
        return [u.address for u in self.upstreams]

    def url(self, base="", name=NAME, scheme="http"):
        """The upstream URL of a profile that names `name` and this set's port."""
        return f"{scheme}://{name}:{self.port}{base}"

    def index_of(self, address):
        """Which upstream an "IP:PORT" endpoint is, or None."""
        return {a: i for i, a in enumerate(self.addresses())}.get(address)

    def reset(self):
        for u in self.upstreams:
            u.reset()

    def counts(self):
        """Requests each upstream received since its reset, in order."""
        return [u.stats()["requests"] for u in self.upstreams]

    def connections(self):
        """TCP connections each upstream accepted since its reset, in order."""
        return [u.connections() for u in self.upstreams]

    def arrivals(self):
        """[(t, index, entry)] of every request any of them received, by time of arrival."""
        out = []
        for i, u in enumerate(self.upstreams):
            out.extend((e["t"], i, e) for e in u.received())
        return sorted(out, key=lambda x: x[0])

    def stop(self):
        ups, self.upstreams = self.upstreams, []
        for u in ups:
            u.stop()

    def cleanup_with(self, testcase):
        testcase.addCleanup(self.stop)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --- HTTPS echo servers on several addresses ----------------------------------

class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """GET/POST: 200 JSON {path, host, sni, server}; records each request on the server."""

    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        srv = self.server
        entry = {"t": time.monotonic(), "method": self.command, "path": self.path,
                 "host": self.headers.get("Host"), "sni": getattr(self.request, "sni", None),
                 "connection": getattr(self.request, "number", None)}
        with srv.lock:
            srv.requests.append(entry)
        body = json.dumps({"path": self.path, "host": entry["host"], "sni": entry["sni"],
                           "server": srv.host}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


class HTTPSEcho(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTPS echo on host:port in a thread: .connections (accepted and
    handshaken), .failed_handshakes, .requests [{t, method, path, host, sni,
    connection}]."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, host, port, cert, key):
        self.host = host
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.failed_handshakes = 0
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.sni_callback = self._sni
        super().__init__((host, port), _EchoHandler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    @staticmethod
    def _sni(tls, name, _context):
        tls.sni = name

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.failed_handshakes += 1
            return
        with self.lock:
            self.connections += 1
            tls.number = self.connections
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        pass

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.connections = 0
            self.failed_handshakes = 0

    def stop(self):
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class TLSSet:
    """One HTTPSEcho per address in `hosts`, all on one port, serving cert/key."""

    def __init__(self, cert, key, hosts=("127.0.0.2", "127.0.0.3")):
        self.servers = []
        last = None
        for _ in range(PORT_TRIES):
            try:
                first = HTTPSEcho(hosts[0], 0, cert, key)
                self.servers = [first]
                for host in hosts[1:]:
                    self.servers.append(HTTPSEcho(host, first.port, cert, key))
                break
            except OSError as e:
                last = e
                self.stop()
        if not self.servers:
            raise RuntimeError(f"no port free on all of {hosts}: {last}")
        self.port = self.servers[0].port

    def addresses(self):
        return [f"{s.host}:{s.port}" for s in self.servers]

    def url(self, base="", name=NAME):
        return f"https://{name}:{self.port}{base}"

    def arrivals(self):
        out = []
        for i, s in enumerate(self.servers):
            with s.lock:
                out.extend((e["t"], i, e) for e in s.requests)
        return sorted(out, key=lambda x: x[0])

    def stop(self):
        servers, self.servers = self.servers, []
        for s in servers:
            s.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --- DNS ----------------------------------------------------------------------

def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def _skip_name(data, pos):
    """Position after the (possibly compressed) name at pos."""
    for _ in range(128):
        n = data[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + n
    raise ValueError("name too long")


def dns_query(server, name, qtype=1, timeout=DNS_TIMEOUT):
    """Ask `server` ("IP:PORT") for `name` (type A by default) over UDP.

    Returns (rcode, [addresses of the A records answered]), or None when no
    answer with the query's ID came within `timeout` s.
    """
    host, port = server.rsplit(":", 1)
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(name) + \
        struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((host, int(port)))
        s.send(packet)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                return None
            try:
                data = s.recv(65535)
            except ConnectionRefusedError:   # nothing listening: ICMP port unreachable
                return None
            if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
                continue
            break
    finally:
        s.close()
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    pos = 12
    for _ in range(qd):
        pos = _skip_name(data, pos) + 4
    ips = []
    for _ in range(an):
        pos = _skip_name(data, pos)
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return flags & 0xF, ips


def hosts_text(records):
    """/etc/hosts lines for {name: [ip, ...]}: one line per address."""
    lines = ["# written by tests/integration/endpoints.py"]
    for name, ips in records.items():
        lines.extend(f"{ip} {name}" for ip in ips)
    return "\n".join(lines) + "\n"


def hosts_file(directory, records, filename="hosts"):
    """Write {name: [ip, ...]} as an /etc/hosts-format file in `directory`; returns its path."""
    path = os.path.join(directory, filename)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(hosts_text(records))
    os.replace(tmp, path)
    return path


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Dnsmasq:
    """Debian's dnsmasq on 127.0.0.1:PORT answering A records for `records`
    ({name: [ip, ...]}) from a hosts-format file; no upstream servers, no
    cache, no pid file, no configuration file, logging to its own file.

    .nameserver "127.0.0.1:PORT"; .set(records) rewrites the file, sends
    SIGHUP and waits until every name answers its new addresses; .query();
    .stop() by PID (also on leaving a `with`, or via cleanup_with(testcase)).
    """

    def __init__(self, records):
        if not os.access(DNSMASQ, os.X_OK):
            raise AssertionError(f"{DNSMASQ} is needed (Debian package dnsmasq-base)")
        self.dir = tempfile.mkdtemp(prefix="braced-dnsmasq-")
        self.records = {}
        self.proc = None
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        self.path = hosts_file(self.dir, records)
        last = None
        try:
            for _ in range(PORT_TRIES):
                self.port = free_udp_port()
                self._start()
                if self._wait(records, START_TIMEOUT):
                    self.records = {k: list(v) for k, v in records.items()}
                    return
                last = self.log()
                stop_process(self.proc, UPSTREAM_STOP_TIMEOUT)
                self.proc = None
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise RuntimeError(f"dnsmasq did not answer:\n{last}")

    def _start(self):
        args = [DNSMASQ, "--no-daemon", f"--port={self.port}", "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-resolv", "--no-hosts", f"--addn-hosts={self.path}",
                "--conf-file=/dev/null", "--pid-file=", "--cache-size=0", "--local-ttl=0",
                "--user=", "--group=", "--no-poll", f"--log-facility={self.log_path}"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.dir)

    @property
    def nameserver(self):
        return f"127.0.0.1:{self.port}"

    def query(self, name, timeout=DNS_TIMEOUT):
        """(rcode, [ips]) as dnsmasq answers `name` now, or None."""
        return dns_query(self.nameserver, name, timeout=timeout)

    def _answers(self, records):
        for name, ips in records.items():
            got = self.query(name)
            if got is None or sorted(got[1]) != sorted(ips):
                return False
        return True

    def _wait(self, records, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._answers(records):
                return True
            time.sleep(0.05)
        return False

    def set(self, records, timeout=5.0):
        """Serve `records` from now on; names no longer listed get no addresses."""
        hosts_file(self.dir, records)
        os.kill(self.proc.pid, signal.SIGHUP)
        gone = {name: [] for name in self.records if name not in records}
        if not self._wait(dict(gone, **records), timeout):
            raise AssertionError(f"dnsmasq did not serve {records} within {timeout} s:\n"
                                 + self.log())
        self.records = {k: list(v) for k, v in records.items()}

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, UPSTREAM_STOP_TIMEOUT)
            self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def cleanup_with(self, testcase):
        testcase.addCleanup(self.stop)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --- certificates -------------------------------------------------------------

def name_certificate(directory, name=NAME):
    """A CA and a leaf certificate for DNS:`name` only (no IP address in it).

    Returns (ca, cert, key) paths; cert holds the leaf, signed by the CA,
    and key its private key. A client that trusts `ca` accepts the leaf for
    `name` and refuses it for 127.0.0.1 or any other name.
    """
    openssl = shutil.which("openssl")
    if not openssl:
        raise AssertionError("the openssl command is needed to make the test certificates")
    p = lambda f: os.path.join(directory, f)    # noqa: E731
    ca, ca_key, csr = p("ca.pem"), p("ca.key"), p("leaf.csr")
    cert, key, ext = p("leaf.pem"), p("leaf.key"), p("leaf.ext")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args):
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=30)

    run("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
        "-subj", "/CN=braced test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=DNS:{name}\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext)
    return ca, cert, key


# --- reading braced -----------------------------------------------------------

def status(b):
    """GET /status on braced's admin listener, parsed."""
    return request(b.admin_port, "GET", "/status", timeout=5).json()


def status_endpoints(b, profile):
    """profiles.<profile>.endpoints of /status: [{address, state, ejected_until_ms,
    cost_ms, inflight, ejections}]."""
    return status(b)["profiles"][profile]["endpoints"]


def endpoint_map(b, profile):
    """{address: endpoint object} of status_endpoints()."""
    return {e["address"]: e for e in status_endpoints(b, profile)}


def endpoint_of(entry):
    """The endpoint ("IP:PORT") a history entry or an access log line names."""
    return entry["endpoint"]


def metrics_text(b):
    return request(b.admin_port, "GET", "/metrics", timeout=5).body.decode()


def metric(b, series):
    """The value of one exact series (name with its labels) in /metrics, or None."""
    for line in metrics_text(b).splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def metric_lines(b, name):
    """The sample lines of metric `name` (with or without labels), comments excluded."""
    return [l for l in metrics_text(b).splitlines()
            if l.startswith(name + "{") or l.startswith(name + " ")]


def access_lines(b):
    """braced's access log lines (JSON, msg "request"), in order."""
    return [l for l in b.log_lines() if l.get("msg") == "request"]
