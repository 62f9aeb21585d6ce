#!/usr/bin/python3
"""braced against the tools people use today, under faults, on loopback.

Targets, each in front of its own copy of the same fault-injecting C upstream
(tests/bench/fixed_upstream.c, so counters never mix): direct; braced with
the default policy; braced with the weather schema in enforce mode;
HAProxy and nginx configured as close to braced's policy as they get; and the
in-app recipe (httpx + tenacity, run in-process by tests/bench/loadgen.py).
Some scenarios take fewer targets, or braced variants: braced with extra
profile YAML (hedging, an adaptive concurrency limit), each run only when
`braced -t` accepts its config (probed once at start; the report says which
were not run and braced's error line). The HTTPS scenario puts the targets in
front of HTTPS upstreams, with a CA and certificate made by `openssl` in the
temporary directory. The streaming scenarios (download, sse) read the
upstream's /bytes and /sse through tests/bench/streamclient.py, with HAProxy
and nginx configured not to buffer.

Every figure is the median of ROUNDS rounds, targets alternating inside each
round, with min and max beside it; every ratio is taken inside one round.
Each process is started from a config in a temporary directory and stopped
by its PID. Prints every command and every round's raw figures; writes
report.md, raw.json and SVG charts to the report directory.

Run through scripts/bench, which installs the packages and builds braced.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import ssl
import tempfile
import threading
import time
import urllib.request

import chart

HZ = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"  # Debian's, which has python3-httpx and python3-tenacity
TARGETS = ["direct", "braced", "braced+schema", "haproxy", "nginx", "in-app"]

WEATHER_SCHEMA = """        response:
          statuses: [200]
          mode: enforce
          body:
            type: object
            required: [city, temperature, condition, source_latency_ms]
            properties:
              city: {type: string}
              temperature: {type: number}
              condition: {type: string}
              source_latency_ms: {type: integer, minimum: 0}
"""

# braced variants: extra YAML for the bench profile. Each runs only when
# `braced -t` accepts its config; the baseline is plain "braced".
VARIANTS = {
    "braced+hedge-20ms": "    hedge: {delay: 20ms, max: 1}\n",
    "braced+hedge-p95": "    hedge: {delay: p95, max: 1}\n",
    "braced+adaptive": "    concurrency: {adaptive: true, min: 4, max: 512}\n",
}
TLS_TARGETS = ["direct", "braced", "haproxy", "nginx"]
TAIL_TARGETS = ["direct", "braced", "braced+hedge-20ms", "braced+hedge-p95"]
QUEUE_TARGETS = ["direct", "braced", "braced+adaptive"]
QUEUE_CAP, QUEUE_WORK_MS = 8, 20  # the queueing upstream: 400 req/s at most
TAIL_RATE = 500  # app requests per second in the slow-tail scenario
RSS_EVERY = 0.02  # seconds between RssAnon samples
STREAM_TARGETS = ["direct", "braced", "haproxy", "nginx"]
DOWNLOAD_BYTES = 1 << 30  # the download scenario's body (--download-bytes)
SSE_EVENTS, SSE_MS = 1000, 10  # the sse scenario's events and gap (--sse-events, --sse-ms)

# Endpoint scenarios (SPEC 4.11): three upstream instances on the same port
# of 127.0.0.1, .2 and .3 (all loopback on Linux), one of them faulty.
EP_HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
EP_BAD = 2  # the faulty one: 127.0.0.3
EP_TARGETS = ["braced", "haproxy", "nginx"]
EP_SLOW_TARGETS = ["direct"] + EP_TARGETS  # direct: the healthy 127.0.0.1 alone, the floor
EP_MIN_SECS = 3  # an endpoint round lasts max(--secs, this): 2 s follow the first
EP_MARK = 1.0  # "after the first second": from this long after the load began
EP_SLOW_MS, EP_SLOW_CUT, EP_RATE = 300, 150, 300  # ep-slow: added delay, cut, open-loop rate
EP_CONC = 32  # ep-503 and ep-drift: closed loop, requests in flight
EP_EJECT = "{consecutive_failures: 5, base: 10s, max: 5m, max_percent: 50}"  # the default
EP_CHECK = "inter 1s fall 3 rise 2"  # HAProxy's active health checks (GET /health)

# Quota scenarios (SPEC 4.12): one upstream (tests/upstream.py's quota action)
# allowing QUOTA_LIMIT requests per fixed window of QUOTA_WINDOW_MS for every
# caller together (key "": no key header), 429 with Retry-After beyond;
# three instances of each target in front of it, an open-loop load of
# QUOTA_LOAD x the quota spread evenly over the three, for --quota-secs.
QUOTA_LIMIT, QUOTA_WINDOW_MS, QUOTA_FAMILY = 100, 10000, "ietf"
QUOTA_RATE = QUOTA_LIMIT * 1000 / QUOTA_WINDOW_MS  # the quota per second: 10
QUOTA_INSTANCES, QUOTA_LOAD = 3, 3
QUOTA_SECS = 60  # the load's duration (--quota-secs; --secs shortens it)
QUOTA_BURST, QUOTA_QUEUE = 1, "1s"  # braced's rate_limit besides rate and share
QUOTA_TARGETS = ["braced", "braced-announced", "braced-announced+fleet", "haproxy", "nginx",
                 "in-app"]
QUOTA_ANNOUNCED_TARGETS = ["braced-announced", "braced-announced+fleet"]
QUOTA_GOODPUT, QUOTA_MAX_429_PCT, QUOTA_MAX_429_WINDOW = 0.95, 1.0, 1  # the targets
REDIS_SERVER = "/usr/bin/redis-server"

# Cache scenarios (SPEC 4.13): braced's cache beside HAProxy's cache and
# nginx's proxy_cache. Where the upstream sends no lifetime, each cache gets
# the scenario's (braced: the route's ttl; nginx: proxy_cache_valid 200;
# HAProxy: `Cache-Control: max-age` set on the answer before cache-store,
# since HAProxy keeps no answer without a lifetime or a validator).
CACHE_TARGETS = ["braced+cache", "haproxy+cache", "nginx+cache"]
CACHE_HIT_TARGETS = ["braced+cache", "braced", "haproxy", "haproxy+cache", "nginx+cache"]
CACHE_MAX_BYTES = "64MiB"  # braced's store but in cache-memory (HAProxy's, nginx's: 64 MB)
CACHE_SIE = "5m"  # braced's stale_if_error
CACHE_BODY = ('{"city":"Paris","temperature":14.2,"condition":"cloudy",'
              '"source_latency_ms":3}')  # fixed_upstream's weather body
# cache-outage: tests/upstream.py answers 200 with `Cache-Control: max-age=TTL`
# on CACHE_OUTAGE_KEYS paths, open loop at CACHE_OUTAGE_RATE for --cache-secs
# (default 60); from 1/4 to 3/4 of the load it answers every request 503.
CACHE_OUTAGE_RATE, CACHE_OUTAGE_KEYS, CACHE_OUTAGE_TTL = 200, 20, 2
CACHE_SECS, CACHE_QUICK_SECS, CACHE_MIN_SECS = 60, 12, 8
CACHE_OUTAGE_TARGET = 99.9  # braced: % of the app's requests answered 200
# cache-burst: CACHE_BURST_N requests for one key at once (connections opened
# first), the upstream answering each after CACHE_BURST_MS.
CACHE_BURST_N, CACHE_BURST_MS, CACHE_BURST_TTL = 500, 200, 60
CACHE_HIT_TTL = 600  # cache-hit: every answer but the first a hit for the whole run
# cache-memory: braced with a 16 MiB store filled with distinct keys: first
# large answers (GET /bytes/N?k=I), then small ones (the weather body).
CACHE_MEM_MAX = 16 << 20
CACHE_MEM_SLACK = 8 << 20  # the bound looked at: VmHWM within max_bytes + this
CACHE_MEM_BIG, CACHE_MEM_BIG_BYTES = 4096, 16384  # 64 MiB of bodies
CACHE_MEM_SMALL = 100000
CACHE_ONLY_NAMED = ("cache-outage", "cache-memory")  # long: only with --only
CACHE_PROBE_YAML = (f"cache: {{max_bytes: {CACHE_MAX_BYTES}}}; profile cache: {{enabled: true, "
                    f"ttl: 60s, stale_if_error: {CACHE_SIE}, coalesce: true}}")
CACHE_MARK = {"braced+cache": "Brace-Cache", "haproxy+cache": "X-Cache-Status",
              "nginx+cache": "X-Cache-Status"}  # the header telling how each answered

# name: (title, upstream mode query, load, what the extra columns report,
#        targets)
SCENARIOS = {
    "clean": ("clean upstream (wrk -t2 -c64 keep-alive; in-app: 64 coroutines)", "", "wrk", "mem",
              TARGETS),
    "https": ("HTTPS upstream, TLS paid by every proxy (wrk -t2 -c64 keep-alive; direct: wrk "
              "over HTTPS to the upstream)", "", "wrk", "tls", TLS_TARGETS),
    "503-20": ("20% random 503", "s503=20", "closed", None, TARGETS),
    "503-100": ("100% 503 for the whole run", "s503=100", "closed", "breaker", TARGETS),
    "reset-5": ("5% connection resets", "reset=5", "closed", None, TARGETS),
    "slow": ("upstream slower than the per-try timeout (5 s delay, 4 requests per target)",
             "delay=5000", "slow", None, TARGETS),
    "429-30": ("429 with Retry-After: 1 on 30%", "s429=30", "closed", "window", TARGETS),
    "drift-10": ("10% of 200 answers drifted from the weather schema", "drift=10", "closed",
                 "drifted", TARGETS),
    "post": ("POST: 20% of logical requests answered 503, then 200 to a retry", "post=20", "post",
             "keys", TARGETS),
    "latency": ("added latency at a fixed 200 req/s", "", "rate", "added", TARGETS),
    "tail-2": (f"slow tail: 2% of answers take 300 ms, the rest 2 ms (open loop, {TAIL_RATE} "
               "req/s, latency from each request's scheduled time)",
               "delay=2&tail=2&tail_ms=300", "tail", "tail", TAIL_TARGETS),
    "queue": (f"queueing upstream: {QUEUE_CAP} in parallel at {QUEUE_WORK_MS} ms each, the rest "
              "queue in arrival order; 200 concurrent clients (closed loop)",
              f"cap={QUEUE_CAP}&work={QUEUE_WORK_MS}", "queue", "queue", QUEUE_TARGETS),
    "download": ("a large download streamed through (GET /bytes/N with Content-Length, one "
                 "at a time, the body counted and discarded)", "", "download", "stream",
                 STREAM_TARGETS),
    "sse": ("server-sent events streamed through (GET /sse: events a fixed gap apart, every "
            "target read at the same time)", "", "sse", "stream", STREAM_TARGETS),
    "ep-503": (f"three endpoints, {EP_HOSTS[EP_BAD]} answers every request 503 (closed loop, "
               f"{EP_CONC} in flight)", "s503=100", "ep", "ep-503", EP_TARGETS),
    "ep-slow": (f"three endpoints, {EP_HOSTS[EP_BAD]} {EP_SLOW_MS} ms slower than the others "
                f"(open loop, {EP_RATE} req/s, latency from each request's scheduled time; "
                "each round also runs every target with all three healthy)",
                f"delay={EP_SLOW_MS}", "ep", "ep-slow", EP_SLOW_TARGETS),
    "ep-drift": (f"three endpoints, {EP_HOSTS[EP_BAD]} serves every 200 with a body drifted "
                 f"from the weather schema (closed loop, {EP_CONC} in flight)", "drift=100",
                 "ep", "ep-drift", EP_TARGETS),
    "quota": (f"an upstream quota of {QUOTA_LIMIT} requests per {QUOTA_WINDOW_MS // 1000} s "
              f"(429 with Retry-After beyond it, announced in {QUOTA_FAMILY} RateLimit headers); "
              f"{QUOTA_INSTANCES} instances of each target, open loop at {QUOTA_LOAD}x the quota "
              f"({QUOTA_LOAD * QUOTA_RATE:g} req/s spread over the instances)", QUOTA_FAMILY,
              "quota", "quota", QUOTA_TARGETS),
    "quota-announced": ("the quota scenario with braced's quota only announced in headers, "
                        "not configured (braced alone; the peers are in quota)", QUOTA_FAMILY,
                        "quota", "quota-announced", QUOTA_ANNOUNCED_TARGETS),
    "cache-outage": (f"a read API ({CACHE_OUTAGE_KEYS} keys, max-age={CACHE_OUTAGE_TTL}) at "
                     f"{CACHE_OUTAGE_RATE} req/s (open loop) whose upstream answers every "
                     "request 503 for the middle half of the load", "", "cache", "outage",
                     CACHE_TARGETS),
    "cache-burst": (f"{CACHE_BURST_N} identical requests at once to a cold cache, the upstream "
                    f"answering after {CACHE_BURST_MS} ms", "", "cache", "burst",
                    CACHE_TARGETS),
    "cache-hit": ("CPU per cache hit (wrk -t2 -c64 keep-alive, one key; braced and haproxy: "
                  "proxied, no cache)", "", "wrk", "cache-hit", CACHE_HIT_TARGETS),
    "cache-memory": (f"braced's store of {CACHE_MEM_MAX >> 20} MiB filled past its size with "
                     f"distinct keys ({CACHE_MEM_BIG} of {CACHE_MEM_BIG_BYTES // 1024} KiB, then "
                     f"{CACHE_MEM_SMALL} small ones)", "", "cache", "memory", ["braced+cache"]),
}
STREAM_KINDS = ("download", "sse")
QUICK = ["clean", "503-20"]
# Not a proxy: libcurl's multi interface alone (tests/bench/curl_floor.c) as
# a client of the clean upstream, run in each round of the wrk scenario.
FLOOR = "curl-multi floor"


BRACED = None  # the braced binary (--braced); None: BUILD/daemon/braced


def braced_bin(build):
    return BRACED or f"{build}/daemon/braced"


def say(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, secs=10, host="127.0.0.1"):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode}")
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except OSError:
        return 0


def tree_pids(pid):
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for c in f.read().split():
                    pids += tree_pids(int(c))
    except OSError:
        pass
    return pids


def cpu_ticks(pid):
    return sum(proc_ticks(p) for p in tree_pids(pid)) if pid else 0


class Procs:
    """Processes this run started; each is stopped by its own PID."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.running = []

    def start(self, label, argv, stdout=None):
        say(f"$ {' '.join(argv)}    # {label}")
        err = open(os.path.join(self.tmp, label + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=stdout or err, stderr=err, stdin=subprocess.DEVNULL)
        self.running.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.running:
            self.running.remove(p)

    def stop_all(self):
        for p in list(self.running):
            self.stop(p)


def start_upstream(procs, build, name, tls=None):
    argv = [f"{build}/tests/bench/fixed_upstream", "0"]
    if tls:
        argv += ["--tls", tls["cert"], tls["key"]]
    p = procs.start(f"upstream-{name}", argv, stdout=subprocess.PIPE)
    port = int(p.stdout.readline())
    wait_port(port, p)
    return p, port


def make_tls(tmp):
    """A throwaway CA and a server certificate for localhost and 127.0.0.1."""
    d = os.path.join(tmp, "tls")
    os.makedirs(d, exist_ok=True)
    f = {k: os.path.join(d, v) for k, v in
         {"ca": "ca.pem", "ca_key": "ca.key", "cert": "cert.pem", "key": "key.pem",
          "csr": "cert.csr", "ext": "ext.cnf"}.items()}
    with open(f["ext"], "w") as fh:
        fh.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    for argv in (["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                  f["ca_key"], "-out", f["ca"], "-days", "2", "-subj", "/CN=braced bench CA"],
                 ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f["key"], "-out",
                  f["csr"], "-subj", "/CN=localhost"],
                 ["openssl", "x509", "-req", "-in", f["csr"], "-CA", f["ca"], "-CAkey",
                  f["ca_key"], "-CAcreateserial", "-out", f["cert"], "-days", "2", "-extfile",
                  f["ext"]]):
        say("$ " + " ".join(argv))
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return f


def braced_conf(up_url, schema, extra="", ca=None):
    route = ""
    if schema:
        route = "    routes:\n      - match: GET /v1/weather\n" + WEATHER_SCHEMA
    tls = f"    tls: {{verify: true, ca_file: {ca}}}\n" if ca else ""
    # The default policy (pool.max_idle never closes busy connections).
    return f"""listen: 127.0.0.1:0
admin: off
log: {{format: json, level: warn, access: false}}
profiles:
  bench:
    upstream: {up_url}
{tls}{extra}{route}"""


def probe_variants(build, tmp):
    """Runs `braced -t` on each variant's config once; returns {variant:
    braced's error line} for those it rejects."""
    rejected = {}
    for v, extra in VARIANTS.items():
        conf = os.path.join(tmp, f"probe-{v.replace('+', '-')}.yaml")
        with open(conf, "w") as f:
            f.write(braced_conf("http://127.0.0.1:9", False, extra))
        argv = [braced_bin(build), "-t", "-c", conf]
        say("$ " + " ".join(argv))
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        line = ((r.stderr or r.stdout).strip().splitlines() or ["(no output)"])[-1]
        say(f"    exit {r.returncode}: {line}")
        if r.returncode != 0:
            rejected[v] = line.replace(conf, os.path.basename(conf))
    return rejected


def start_braced(procs, build, tmp, name, up_url, schema, extra="", ca=None, text=None):
    """text: the whole config, instead of braced_conf's."""
    conf = os.path.join(tmp, f"{name}.yaml")
    with open(conf, "w") as f:
        f.write(text or braced_conf(up_url, schema, extra, ca))
    log = os.path.join(tmp, f"{name}.log")
    open(log, "w").close()
    p = procs.start(name, [braced_bin(build), "-c", conf])
    # level warn hides the "listening" line, so find the port from /proc.
    end = time.monotonic() + 10
    while time.monotonic() < end:
        ports = listening_ports(p.pid)
        if ports:
            return p, ports[0]
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start; see {log}")


def listening_ports(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return []
    ports = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:
                ports.append(int(parts[1].split(":")[1], 16))
    return ports


def start_haproxy(procs, tmp, up_port, ca=None, stream=False):
    """stream: the streaming scenarios' variant, without `option
    http-buffer-request` (answers are relayed as they come either way) and
    with `option http-no-delay`: without it HAProxy sends with MSG_MORE while
    it expects more of a body, and the kernel holds a small write (an event)
    up to 200 ms."""
    port = free_port()
    conf = os.path.join(tmp, "haproxy.cfg")
    # HTTPS upstream: verify the chain and the name, reuse TLS sessions and
    # (http-reuse always) the connections themselves.
    tls = f" ssl verify required ca-file {ca} verifyhost localhost sni str(localhost)" if ca else ""
    buffer_request = ("    option http-no-delay\n" if stream else
                      "    option http-buffer-request\n")
    with open(conf, "w") as f:
        # 429 is not a retry-on keyword in HAProxy 2.6.
        f.write(f"""global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout server 4s
    timeout client 30s
    timeout http-keep-alive 30s
    retries 3
    retry-on conn-failure empty-response response-timeout 500 502 503 504
{buffer_request}    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{up_port} maxconn 100{tls}
""")
    p = procs.start("haproxy", ["haproxy", "-db", "-f", conf])
    wait_port(port, p)
    return p, port


def start_nginx(procs, tmp, up_port, ca=None, stream=False):
    """stream: the streaming scenarios' variant, relaying the answer and the
    request as they come instead of buffering them."""
    port = free_port()
    d = os.path.join(tmp, "nginx")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    # One server listed four times: nginx tries each peer at most once, so
    # four entries give four attempts; max_fails=0 never marks it down.
    servers = f"        server 127.0.0.1:{up_port} max_fails=0;\n" * 4
    buffering = ""
    if stream:  # proxy_http_version 1.1 is set for every scenario
        buffering = """
            proxy_buffering off;
            proxy_request_buffering off;"""
    tls = ""
    if ca:  # verify the chain and the name; keep sessions and connections
        tls = f"""
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {ca};
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;"""
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream up {{
{servers}        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{
            proxy_pass {"https" if ca else "http"}://up;{tls}
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 2s;
            proxy_read_timeout 4s;
            proxy_send_timeout 2s;
            proxy_next_upstream error timeout http_429 http_500 http_502 http_503 http_504;
            proxy_next_upstream_tries 4;{buffering}
        }}
    }}
}}
""")
    p = procs.start("nginx", ["nginx", "-p", d, "-e", f"{d}/error.log", "-c", conf])
    wait_port(port, p)
    return p, port


def start_ep_upstreams(procs, build, name):
    """Three upstreams on the same port of EP_HOSTS: the first takes a free
    port on 127.0.0.1, the others bind it on theirs (tried again from the
    start if one of them cannot). Returns (port, [procs])."""
    for _ in range(5):
        ps, port = [], 0
        try:
            for i, host in enumerate(EP_HOSTS):
                argv = [f"{build}/tests/bench/fixed_upstream", str(port), "--host", host]
                p = procs.start(f"upstream-{name}-{i + 1}", argv, stdout=subprocess.PIPE)
                ps.append(p)
                line = p.stdout.readline()
                if not line:
                    raise RuntimeError(f"upstream on {host} did not start")
                port = int(line)
                wait_port(port, p, host=host)
            return port, ps
        except (RuntimeError, ValueError) as e:
            say(f"   {e}; trying again")
            for p in ps:
                procs.stop(p)
    raise RuntimeError("could not start three upstreams on one port")


def braced_ep_conf(port, drift):
    """braced in front of the three endpoints: peak_ewma, retry_elsewhere,
    the default ejection; for ep-drift the weather schema enforced on the
    route, with retry.on_schema_violation."""
    addrs = ", ".join(f'"{h}:{port}"' for h in EP_HOSTS)
    route = ""
    if drift:
        route = ("    routes:\n      - match: GET /v1/weather\n"
                 "        retry: {on_schema_violation: true}\n" + WEATHER_SCHEMA)
    return f"""listen: 127.0.0.1:0
admin: off
log: {{format: json, level: warn, access: false}}
profiles:
  bench:
    upstream: http://127.0.0.1:{port}
    addresses: [{addrs}]
    endpoints:
      balance: peak_ewma
      eject: {EP_EJECT}
      retry_elsewhere: true
{route}"""


def start_haproxy_ep(procs, tmp, up_port):
    """HAProxy in front of the three endpoints: passive ejection from the
    answers (observe layer7, error-limit 5 as braced's consecutive_failures,
    on-error mark-down), active checks GET /health every second (fall 3,
    rise 2) that bring a marked-down server back, L7 retries on every
    retryable error, redispatched to another server on every retry, and
    leastconn, HAProxy's closest to a load-aware balance."""
    port = free_port()
    conf = os.path.join(tmp, "haproxy-ep.cfg")
    servers = "".join(f"    server s{i + 1} {h}:{up_port}\n" for i, h in enumerate(EP_HOSTS))
    with open(conf, "w") as f:
        f.write(f"""global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout server 4s
    timeout client 30s
    timeout check 1s
    timeout http-keep-alive 30s
    retries 3
    retry-on all-retryable-errors
    option redispatch 1
    option http-buffer-request
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
    default-server maxconn 100 check {EP_CHECK} observe layer7 error-limit 5 on-error mark-down
{servers}""")
    p = procs.start("haproxy-ep", ["haproxy", "-db", "-f", conf])
    wait_port(port, p)
    return p, port


def start_nginx_conf(procs, tmp, name, upstream, location, http=""):
    """nginx in the foreground as `name`, its config in tmp/name: one
    upstream block `up` (its lines: `upstream`, keepalive 64 added) and one
    server proxying every path to it with keep-alive (the location's extra
    lines: `location`; lines of the http block: `http`, which may name the
    directory `{dir}`, tmp/name). Returns (process, port)."""
    port = free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    http = http.replace("{dir}", d)
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{http}    upstream up {{
{upstream}        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 2s;
{location}        }}
    }}
}}
""")
    p = procs.start(name, ["nginx", "-p", d, "-e", f"{d}/error.log", "-c", conf])
    wait_port(port, p)
    return p, port


def start_nginx_ep(procs, tmp, up_port):
    """nginx in front of the three endpoints: least_conn, max_fails=5 within
    fail_timeout=10s (a failure: error, timeout or a status listed in
    proxy_next_upstream), the next server on error, timeout and 5xx, each
    server at most once (3 tries), keep-alive to the upstreams."""
    servers = "".join(f"        server {h}:{up_port} max_fails=5 fail_timeout=10s;\n"
                      for h in EP_HOSTS)
    return start_nginx_conf(procs, tmp, "nginx-ep", "        least_conn;\n" + servers,
                            "            proxy_read_timeout 4s;\n"
                            "            proxy_send_timeout 2s;\n"
                            "            proxy_next_upstream error timeout http_500 http_502 "
                            "http_503 http_504;\n"
                            "            proxy_next_upstream_tries 3;\n")


def braced_cache_conf(up_url, ttl, max_bytes=CACHE_MAX_BYTES, admin=None):
    """braced with a store of max_bytes and the cache on the bench profile:
    the route's ttl (used when the answer has no lifetime of its own),
    stale_if_error CACHE_SIE, coalesce (the default); the default policy
    otherwise."""
    return f"""listen: 127.0.0.1:0
admin: {f"127.0.0.1:{admin}" if admin else "off"}
log: {{format: json, level: warn, access: false}}
cache: {{max_bytes: {max_bytes}}}
profiles:
  bench:
    upstream: {up_url}
    cache: {{enabled: true, ttl: {ttl}s, stale_if_error: {CACHE_SIE}, coalesce: true}}
"""


def probe_cache(build, tmp):
    """`braced -t` on the cache config once; braced's error line, or None."""
    conf = os.path.join(tmp, "probe-cache.yaml")
    with open(conf, "w") as f:
        f.write(braced_cache_conf("http://127.0.0.1:9", 60))
    argv = [braced_bin(build), "-t", "-c", conf]
    say("$ " + " ".join(argv))
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    line = ((r.stderr or r.stdout).strip().splitlines() or ["(no output)"])[-1]
    say(f"    exit {r.returncode}: {line}")
    return line.replace(conf, os.path.basename(conf)) if r.returncode != 0 else None


def start_braced_cache(procs, build, tmp, name, up_url, ttl, max_bytes=CACHE_MAX_BYTES,
                       admin=False):
    """braced with braced_cache_conf; admin: also an admin listener on a
    free port. Returns (process, port, admin port or None)."""
    aport = free_port() if admin else None
    p, port = start_braced(procs, build, tmp, name, None, False,
                           text=braced_cache_conf(up_url, ttl, max_bytes, aport))
    if aport:
        wait_port(aport, p)
        end = time.monotonic() + 10
        while port == aport and time.monotonic() < end:
            port = next((x for x in listening_ports(p.pid) if x != aport), aport)
            time.sleep(0.05)
    return p, port, aport


def start_haproxy_cache(procs, tmp, up_port, name, ttl, mark=False):
    """HAProxy as start_haproxy (retries on 503 and the rest) with its cache
    on the backend: 64 MB, objects up to 1 MiB, max-age ttl; an answer
    without Cache-Control gets `max-age=ttl` before cache-store (HAProxy
    keeps no answer without a lifetime or a validator). HAProxy's cache has
    no stale-if-error, no stale-while-revalidate and no request coalescing.
    mark: X-Cache-Status: 1 on answers from the cache, 0 on others."""
    port = free_port()
    conf = os.path.join(tmp, f"{name}.cfg")
    marker = ("    http-response set-header X-Cache-Status %[res.cache_hit]\n" if mark else "")
    with open(conf, "w") as f:
        f.write(f"""global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout server 4s
    timeout client 30s
    timeout http-keep-alive 30s
    retries 3
    retry-on conn-failure empty-response response-timeout 500 502 503 504
    option http-buffer-request
    http-reuse always
cache bench
    total-max-size 64
    max-object-size 1048576
    max-age {ttl}
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
{marker}backend be
    http-request cache-use bench
    http-response set-header Cache-Control "max-age={ttl}" if !{{ res.hdr(cache-control) -m found }}
    http-response cache-store bench
    server s1 127.0.0.1:{up_port} maxconn 100
""")
    p = procs.start(name, ["haproxy", "-db", "-f", conf])
    wait_port(port, p)
    return p, port


def start_nginx_cache(procs, tmp, up_port, name, ttl, mark=False):
    """nginx as start_nginx (four tries, the next one on error, timeout,
    429 and 5xx) with proxy_cache: 64 MB on disk in its directory,
    proxy_cache_valid 200 ttl (for answers without a lifetime of their
    own), proxy_cache_use_stale error timeout updating http_500 http_502
    http_503 http_504, proxy_cache_background_update on (which serves the
    stale answer only with `updating` listed), proxy_cache_lock on. mark:
    X-Cache-Status: $upstream_cache_status."""
    servers = f"        server 127.0.0.1:{up_port} max_fails=0;\n" * 4
    http = ("    proxy_cache_path {dir}/cache levels=1:2 keys_zone=bench:16m max_size=64m "
            "inactive=10m use_temp_path=off;\n")
    location = f"""            proxy_read_timeout 4s;
            proxy_send_timeout 2s;
            proxy_next_upstream error timeout http_429 http_500 http_502 http_503 http_504;
            proxy_next_upstream_tries 4;
            proxy_cache bench;
            proxy_cache_valid 200 {ttl}s;
            proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
            proxy_cache_background_update on;
            proxy_cache_lock on;
"""
    if mark:
        location += "            add_header X-Cache-Status $upstream_cache_status always;\n"
    # a cold cache at every start: the files of an earlier run of `name` go
    shutil.rmtree(os.path.join(tmp, name, "cache"), ignore_errors=True)
    if os.geteuid() == 0:
        # nginx's worker (user nobody under a root master) writes the cache
        # files: it must be able to pass through the temporary directory
        os.chmod(tmp, 0o711)
    return start_nginx_conf(procs, tmp, name, servers, location, http)


def start_cache_upstream(procs, name, action):
    """tests/upstream.py with `action` as its default action."""
    p = procs.start(f"upstream-{name}", [PY, os.path.join(HERE, "..", "upstream.py")],
                    stdout=subprocess.PIPE)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError(f"upstream-{name} did not start")
    port = int(line)
    wait_port(port, p)
    http_post(port, "/__default", action)
    return p, port


def cache_action(status=200, ttl=None, delay_ms=0):
    """An upstream.py action: the weather body (200) or a short error body,
    with `Cache-Control: max-age=ttl` when ttl is given."""
    headers = {"Content-Type": "application/json"}
    if ttl is not None:
        headers["Cache-Control"] = f"max-age={ttl}"
    a = {"status": status, "headers": headers,
         "body": CACHE_BODY if status == 200 else '{"error":"down"}'}
    if delay_ms:
        a["delay_ms"] = delay_ms
    return a


def http_post(port, path, obj, host="127.0.0.1"):
    req = urllib.request.Request(f"http://{host}:{port}{path}", data=json.dumps(obj).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def start_quota_upstream(procs, name):
    """tests/upstream.py with the quota action as its default action; its
    windows start at its first request."""
    p = procs.start(f"upstream-{name}", [PY, os.path.join(HERE, "..", "upstream.py")],
                    stdout=subprocess.PIPE)
    line = p.stdout.readline()
    if not line:
        raise RuntimeError(f"upstream-{name} did not start")
    port = int(line)
    wait_port(port, p)
    http_post(port, "/__default", {"quota": {"limit": QUOTA_LIMIT, "window_ms": QUOTA_WINDOW_MS,
                                             "family": QUOTA_FAMILY}})
    return p, port


def redis_ping(sock_path):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(sock_path)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(procs, tmp, name):
    """redis-server on a unix socket in its own directory, no persistence;
    returns (proc, socket path)."""
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    sock = os.path.join(d, "redis.sock")
    p = procs.start(name, [REDIS_SERVER, "--port", "0", "--unixsocket", sock, "--unixsocketperm",
                           "700", "--save", "", "--appendonly", "no", "--dir", d])
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if p.poll() is not None:
            break
        if redis_ping(sock):
            return p, sock
        time.sleep(0.05)
    procs.stop(p)
    raise RuntimeError(f"{name} did not answer PING")


def braced_quota_conf(up_port, target, redis_sock):
    """braced for the quota scenarios. braced: rate_limit of the quota,
    shared by the fleet through Redis; braced-announced: nothing configured,
    the announced quota learned (ratelimit_headers: pace, the default) by
    each instance from its own answers; braced-announced+fleet: the same,
    the learned quota shared by the fleet (rate_limit: {share: fleet} with
    no rate: each instance spends its part of what the answers announce),
    beside the fleet's default sharing (cool-down, breaker, retry budget)."""
    fleet = (f'fleet: {{redis: "unix:{redis_sock}", secret: "braced-bench-quota-secret"}}\n'
             if redis_sock else "")
    rate = ""
    if target == "braced-announced+fleet":
        rate = f'    rate_limit: {{queue: {QUOTA_QUEUE}, share: fleet}}\n'
    if target == "braced":
        rate = (f'    rate_limit: {{rate: "{QUOTA_LIMIT}/{QUOTA_WINDOW_MS // 1000}s", burst: '
                f'{QUOTA_BURST}, queue: {QUOTA_QUEUE}, share: fleet}}\n')
    return f"""listen: 127.0.0.1:0
admin: off
log: {{format: json, level: warn, access: false}}
{fleet}profiles:
  bench:
    upstream: http://127.0.0.1:{up_port}
    ratelimit_headers: pace
{rate}"""


def start_haproxy_plain(procs, tmp, up_port, name):
    """A plain HAProxy reverse proxy: its default retries (3, on connection
    failures only; a 429 is passed on), keep-alive to the upstream."""
    port = free_port()
    conf = os.path.join(tmp, f"{name}.cfg")
    with open(conf, "w") as f:
        f.write(f"""global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout server 10s
    timeout client 30s
    timeout http-keep-alive 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{up_port} maxconn 100
""")
    p = procs.start(name, ["haproxy", "-db", "-f", conf])
    wait_port(port, p)
    return p, port


def start_nginx_plain(procs, tmp, up_port, name):
    """A plain nginx reverse proxy: one server, proxy_next_upstream at its
    default (error timeout: a 429 is passed on), keep-alive to the upstream."""
    return start_nginx_conf(procs, tmp, name, f"        server 127.0.0.1:{up_port};\n",
                            "            proxy_read_timeout 10s;\n"
                            "            proxy_send_timeout 2s;\n")


def quota_windows(log):
    """The upstream's quota windows (fixed, from its first request), each
    [requests, 429s, 429s in the window's first second]; a request is put
    in a window by its arrival time."""
    ts = sorted(log, key=lambda e: e["t"])
    if not ts:
        return []
    t0, w = ts[0]["t"], QUOTA_WINDOW_MS / 1000
    out = []
    for e in ts:
        i = int((e["t"] - t0) // w)
        while len(out) <= i:
            out.append([0, 0, 0])
        out[i][0] += 1
        out[i][1] += e.get("status") == 429
        out[i][2] += e.get("status") == 429 and e["t"] - t0 - i * w < 1.0
    return out


class StatsPoller:
    """Polls the upstream requests of some upstreams every 50 ms while a load
    runs: [(time.monotonic(), summed requests)], to split a run's upstream
    requests at a moment."""

    def __init__(self, hostports):
        self.hostports = hostports
        self.samples = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.done.is_set():
            try:
                n = sum(http_get(p, "/__stats", host=h)["requests"] for h, p in self.hostports)
                self.samples.append((time.monotonic(), n))
            except OSError:
                pass
            self.done.wait(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def http_get(port, path, ca=None, host="127.0.0.1"):
    if ca:
        ctx = ssl.create_default_context(cafile=ca)
        with urllib.request.urlopen(f"https://localhost:{port}{path}", timeout=5,
                                    context=ctx) as r:
            return json.loads(r.read())
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def vm_hwm_kib(pids):
    """VmHWM (peak resident set since the process started), summed."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def rss_anon_kib(pids, field="RssAnon:"):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


class RssSampler:
    """Samples RssAnon of a process and its children every RSS_EVERY
    seconds while the load runs; peak and p99 of the samples, in MiB."""

    def __init__(self, pid):
        self.pids = tree_pids(pid) if pid else []
        self.samples = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.done.is_set():
            self.samples.append(rss_anon_kib(self.pids))
            self.done.wait(RSS_EVERY)

    def __enter__(self):
        if self.pids:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        if self.pids:
            self.thread.join()

    def figures(self):
        if not self.samples:
            return {"rss_peak": None, "rss_p99": None, "rss_samples": 0}
        v = sorted(self.samples)
        return {"rss_peak": v[-1] / 1024, "rss_p99": pct(v, 99) / 1024, "rss_samples": len(v)}


class Bench:
    def __init__(self, args, tmp):
        self.a = args
        self.tmp = tmp
        self.procs = Procs(tmp)
        self.up = {}  # target -> upstream port
        self.proxy = {}  # target -> (proc, port)
        self.raw = {}
        self.tls = None  # the CA and certificate files, once made
        self.cur_tls = False  # the running scenario's upstreams speak HTTPS
        self.rejected = {}  # braced variant -> braced's error line
        self.ep_up = {}  # target -> the port of its three endpoint upstreams

    def upkey(self, t):
        return ("tls:" if self.cur_tls else "") + t

    def ca(self):
        return self.tls["ca"] if self.cur_tls else None

    def start_upstreams(self, targets):
        """Each target gets its own upstream (HTTPS ones apart), kept for
        the rest of the run."""
        if self.cur_tls and not self.tls:
            self.tls = make_tls(self.tmp)
        for t in targets:
            k = self.upkey(t)
            if k not in self.up:
                _, self.up[k] = start_upstream(self.procs, self.a.build, k.replace(":", "-"),
                                               self.tls if self.cur_tls else None)

    def start_proxies(self, targets, stream=False):
        b, tmp, ca = self.a.build, self.tmp, self.ca()
        scheme = "https" if ca else "http"
        for t in targets:
            up = self.up[self.upkey(t)]
            url = f"{scheme}://127.0.0.1:{up}"
            if t == "braced" or t == "braced+schema" or t in VARIANTS:
                name = t.replace("+", "-")
                self.proxy[t] = start_braced(self.procs, b, tmp, name, url, t == "braced+schema",
                                             VARIANTS.get(t, ""), ca)
            elif t == "haproxy":
                self.proxy[t] = start_haproxy(self.procs, tmp, up, ca, stream)
            elif t == "nginx":
                self.proxy[t] = start_nginx(self.procs, tmp, up, ca, stream)
            elif t in CACHE_TARGETS:  # cache-hit: every answer after the first a hit
                self.proxy[t] = self.start_cache_proxy(t, up, CACHE_HIT_TTL)

    def start_cache_proxy(self, t, up_port, ttl, mark=False):
        """One of CACHE_TARGETS in front of the upstream on up_port, with
        ttl for answers without a lifetime of their own; (process, port)."""
        name = t.replace("+", "-")
        if t == "braced+cache":
            return start_braced_cache(self.procs, self.a.build, self.tmp, name,
                                      f"http://127.0.0.1:{up_port}", ttl)[:2]
        if t == "haproxy+cache":
            return start_haproxy_cache(self.procs, self.tmp, up_port, name, ttl, mark)
        return start_nginx_cache(self.procs, self.tmp, up_port, name, ttl, mark)

    def stop_proxies(self):
        for p, _ in self.proxy.values():
            self.procs.stop(p)
        self.proxy = {}

    def base_url(self, t):
        if t in ("direct", "in-app"):
            if self.cur_tls:
                return f"https://localhost:{self.up[self.upkey(t)]}"
            return f"http://127.0.0.1:{self.up[t]}"
        port = self.proxy[t][1]
        return f"http://127.0.0.1:{port}/bench" if t.startswith("braced") else \
            f"http://127.0.0.1:{port}"

    def pid(self, t):
        return self.proxy[t][0].pid if t in self.proxy else 0

    def set_mode(self, t, q):
        http_get(self.up[self.upkey(t)], "/__mode?" + q, self.ca())

    def loadgen_argv(self, t, kind):
        a = self.a
        argv = [PY, os.path.join(HERE, "loadgen.py"), self.base_url(t),
                "--client", "recipe" if t == "in-app" else "raw"]
        if kind == "closed":
            argv += ["--concurrency", "32", "--duration", str(a.secs)]
        elif kind == "wrk":
            argv += ["--concurrency", "64", "--duration", str(a.secs)]
        elif kind == "post":
            argv += ["--method", "POST", "--path", "/v1/orders", "--concurrency", "32",
                     "--duration", str(a.secs)]
        elif kind == "rate":
            argv += ["--rate", "200", "--duration", str(a.secs)]
        elif kind == "slow":
            argv += ["--concurrency", "4", "--count", "4", "--duration", "1"]
        elif kind == "tail":
            argv += ["--rate", str(TAIL_RATE), "--duration", str(a.secs)]
        elif kind == "queue":
            argv += ["--concurrency", "200", "--duration", str(a.secs)]
        return argv

    def run_loadgen(self, t, kind):
        argv = self.loadgen_argv(t, kind)
        say("$ " + " ".join(argv))
        before = cpu_ticks(self.pid(t))
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        after = cpu_ticks(self.pid(t))
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed for {t}: {out.stderr[-2000:]}")
        r = json.loads(out.stdout)
        return self.figures(t, r, after - before)

    def figures(self, t, r, ticks):
        n = max(r["n"], 1)
        lat = r["lat_ms"] or [0]
        ok = sum(v for k, v in r["statuses"].items() if k.startswith("2"))
        if t == "in-app":
            cpu = r["cpu_s"] * 1e6 / n
        elif t == "direct":
            cpu = None
        else:
            cpu = ticks * 1e6 / HZ / n
        # answers braced gave with Brace-Error: circuit_open (the breaker open)
        opened = r.get("lat_by_error", {}).get("circuit_open") or []
        return {"n": r["n"], "success": 100.0 * ok / n, "p50": pct(lat, 50), "p99": pct(lat, 99),
                "p999": pct(lat, 99.9), "max": lat[-1], "rps": r["n"] / r["elapsed"],
                "goodput": ok / r["elapsed"] if r["elapsed"] else 0, "cpu_us": cpu,
                "statuses": r["statuses"], "drifted": r["drifted"],
                "errors": {k: len(v) for k, v in r.get("lat_by_error", {}).items()},
                "open_n": len(opened), "open_p50": pct(opened, 50) if opened else None,
                "open_p99": pct(opened, 99) if opened else None}

    def run_wrk(self, t):
        url = self.base_url(t) + "/v1/weather?city=Paris"
        argv = ["wrk", "-t2", "-c64", f"-d{self.a.secs:g}s", "--latency", url]
        say("$ " + " ".join(argv))
        before = cpu_ticks(self.pid(t))
        with RssSampler(self.pid(t)) as rss:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
        after = cpu_ticks(self.pid(t))
        for line in out.splitlines():
            say("    " + line)
        w = parse_wrk(out)
        n = max(w["requests"], 1)
        return {"n": w["requests"], "success": 100.0 * (n - w["errors"]) / n, "p50": w["p50"],
                "p99": w["p99"], "max": w["max"], "rps": w["rps"],
                "cpu_us": None if t == "direct" else (after - before) * 1e6 / HZ / n,
                "statuses": {"non2xx_or_error": w["errors"]}, "drifted": 0, **rss.figures()}

    def ep_scenario(self, name):
        """An endpoint scenario: each target in front of its own three
        upstreams, started afresh in every round (so every round includes
        what a proxy learns in its first second), the targets alternating."""
        title, mode, kind, extra, targets = SCENARIOS[name]
        secs = max(self.a.secs, EP_MIN_SECS)
        say(f"\n== scenario {name}: {title}; {secs:g} s per run")
        for t in targets:
            if t not in self.ep_up:
                self.ep_up[t] = start_ep_upstreams(self.procs, self.a.build, f"ep-{t}")[0]
        rounds = []
        for i in range(self.a.rounds):
            order = targets[i % len(targets):] + targets[:i % len(targets)]
            say(f"-- round {i + 1}/{self.a.rounds}, order: {', '.join(order)}")
            res = {t: self.ep_target(t, mode, extra, secs) for t in order}
            for t in targets:
                say(f"   {t}: {json.dumps(res[t])}")
            rounds.append({t: res[t] for t in targets})
        self.raw[name] = rounds

    def ep_target(self, t, mode, extra, secs):
        """t's runs of one round, through a proxy started for them."""
        port = self.ep_up[t]
        if t == "braced":
            self.proxy[t] = start_braced(self.procs, self.a.build, self.tmp, "braced-ep", None,
                                         False, text=braced_ep_conf(port, extra == "ep-drift"))
        elif t == "haproxy":
            self.proxy[t] = start_haproxy_ep(self.procs, self.tmp, port)
        elif t == "nginx":
            self.proxy[t] = start_nginx_ep(self.procs, self.tmp, port)
        try:
            if extra != "ep-slow":
                return self.ep_load(t, port, mode, "closed", secs)
            healthy = self.ep_load(t, port, "", "rate", secs)
            f = self.ep_load(t, port, mode, "rate", secs)
            f["healthy"] = {k: healthy[k] for k in ("n", "success", "p50", "p99", "max",
                                                    "slow_pct", "amp", "per_endpoint")}
            f["p99_x"] = f["p99"] / healthy["p99"] if healthy["p99"] else None
            f["p99_x_after"] = (f["p99_after"] / healthy["p99"]
                                if healthy["p99"] and f.get("p99_after") is not None else None)
            return f
        finally:
            self.stop_proxies()

    def ep_load(self, t, port, mode, load, secs):
        """Sets the faulty endpoint's mode (the others healthy), runs the
        load through t and returns its figures; `after` = the answers that
        came, and the upstream requests that arrived, after the upstreams'
        counters were sampled EP_MARK s into the load."""
        for i, h in enumerate(EP_HOSTS):
            http_get(port, "/__mode?" + (mode if i == EP_BAD else ""), host=h)
        url = f"http://127.0.0.1:{port}" if t == "direct" else self.base_url(t)
        argv = [PY, os.path.join(HERE, "loadgen.py"), url, "--client", "raw", "--times",
                "--duration", f"{secs:g}"]
        argv += ["--rate", str(EP_RATE)] if load == "rate" else ["--concurrency", str(EP_CONC)]
        say("$ " + " ".join(argv))
        before = cpu_ticks(self.pid(t))
        with StatsPoller([(h, port) for h in EP_HOSTS]) as poll:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=120 + secs)
        after = cpu_ticks(self.pid(t))
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed for {t}: {out.stderr[-2000:]}")
        r = json.loads(out.stdout)
        stats = [http_get(port, "/__stats", host=h) for h in EP_HOSTS]
        f = self.figures(t, r, after - before)
        for k in ("open_n", "open_p50", "open_p99", "goodput", "errors"):
            f.pop(k, None)
        up = sum(s["requests"] for s in stats)
        n = max(r["n"], 1)
        lat = r["lat_ms"]
        f.update({"secs": secs, "upstream": up, "amp": up / n,
                  "per_endpoint": [s["requests"] for s in stats],
                  "bad_pct": 100.0 * stats[EP_BAD]["requests"] / up if up else 0,
                  "checks": sum(s["checks"] for s in stats),
                  "drift_pct": 100.0 * r["drifted"] / n,
                  "slow_pct": 100.0 * sum(1 for v in lat if v > EP_SLOW_CUT) / n})
        mark = next(((ts, c) for ts, c in poll.samples if ts >= r["t0"] + EP_MARK), None)
        late = [d for d in r["done"] if mark and d[0] > mark[0] - r["t0"]]
        if late:
            late_lat = sorted(d[3] for d in late)
            f.update({"after_s": round(mark[0] - r["t0"], 3), "after_n": len(late),
                      "p99_after": pct(late_lat, 99),
                      "slow_pct_after": 100.0 * sum(1 for v in late_lat if v > EP_SLOW_CUT) /
                      len(late),
                      "after_upstream": up - mark[1], "amp_after": (up - mark[1]) / len(late),
                      "success_after": 100.0 * sum(d[1] for d in late) / len(late),
                      "drifted_after": sum(d[2] for d in late)})
        else:
            f.update({"after_s": None, "after_n": 0, "amp_after": None, "success_after": None})
        return f

    def quota_scenario(self, name):
        """A quota scenario: for each target a fresh quota upstream and three
        fresh instances (and a fresh redis-server where the target shares
        through one), the targets one after the other."""
        title, _, _, extra, targets = SCENARIOS[name]
        secs = self.a.quota_secs
        say(f"\n== scenario {name}: {title}; {secs:g} s per target")
        rounds = []
        for i in range(self.a.rounds):
            order = targets[i % len(targets):] + targets[:i % len(targets)]
            say(f"-- round {i + 1}/{self.a.rounds}, order: {', '.join(order)}")
            res = {t: self.quota_target(t, secs) for t in order}
            for t in targets:
                say(f"   {t}: {json.dumps(res[t])}")
            rounds.append({t: res[t] for t in targets})
        self.raw[name] = rounds

    def quota_target(self, t, secs):
        """One target's run: three instances in front of one fresh quota
        upstream, the load, the figures; everything it started stopped."""
        b, tmp = self.a.build, self.tmp
        name = t.replace("+", "-")
        started = []
        try:
            up, up_port = start_quota_upstream(self.procs, f"quota-{name}")
            started.append(up)
            sock = None
            if t in ("braced", "braced-announced+fleet"):
                rp, sock = start_redis(self.procs, tmp, f"redis-{name}")
                started.append(rp)
            ports = []
            for i in range(1, QUOTA_INSTANCES + 1):
                label = f"{name}-{i}"
                if t.startswith("braced"):
                    p, port = start_braced(self.procs, b, tmp, label, None, False,
                                           text=braced_quota_conf(up_port, t, sock))
                elif t == "haproxy":
                    p, port = start_haproxy_plain(self.procs, tmp, up_port, label)
                elif t == "nginx":
                    p, port = start_nginx_plain(self.procs, tmp, up_port, label)
                else:  # in-app: each "instance" is its own recipe process
                    p, port = None, up_port
                if p is not None:
                    started.append(p)
                ports.append(port)
            if sock:  # the fleet's first sync (sync_interval 100 ms) before the load
                time.sleep(1.0)
            return self.quota_load(t, secs, ports, up_port, [p.pid for p in started[1:]
                                                             if p.args[0] != REDIS_SERVER])
        finally:
            for p in reversed(started):
                self.procs.stop(p)

    def quota_load(self, t, secs, ports, up_port, pids):
        """Three open-loop loadgens at once, one per instance, each at
        QUOTA_LOAD x the quota / QUOTA_INSTANCES; the app's and the upstream's
        figures summed."""
        rate = QUOTA_LOAD * QUOTA_RATE / QUOTA_INSTANCES
        running = []
        before = sum(cpu_ticks(p) for p in pids)
        for i, port in enumerate(ports):
            url = (f"http://127.0.0.1:{port}/bench" if t.startswith("braced") else
                   f"http://127.0.0.1:{port}")
            argv = [PY, os.path.join(HERE, "loadgen.py"), url, "--client",
                    "recipe" if t == "in-app" else "raw", "--rate", f"{rate:g}", "--duration",
                    f"{secs:g}", "--id-base", str((i + 1) * 1000000)]
            say("$ " + " ".join(argv) + " &")
            running.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True))
        outs = []
        end = time.monotonic() + secs + 120
        for p in running:
            try:
                o, e = p.communicate(timeout=max(1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                raise RuntimeError(f"loadgen for {t} not done {secs + 120:g} s after it began")
            if p.returncode != 0:
                raise RuntimeError(f"loadgen failed for {t}: {e[-2000:]}")
            outs.append(json.loads(o))
        # CPU: the three instances' (nginx: masters and workers); in-app: the
        # three recipe processes, each its load generator included
        cpu = ((sum(cpu_ticks(p) for p in pids) - before) / HZ if pids else
               sum(r["cpu_s"] for r in outs))
        stats = http_get(up_port, "/__stats")
        log = http_get(up_port, "/__log")["requests"]
        n = sum(r["n"] for r in outs)
        statuses, errors = {}, {}
        for r in outs:
            for k, v in r["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
            for k, v in r.get("lat_by_error", {}).items():
                errors[k] = errors.get(k, 0) + len(v)
        ok = statuses.get("200", 0)
        elapsed = max(r["elapsed"] for r in outs)
        lat = sorted(v for r in outs for v in r["lat_ms"]) or [0]
        up, refused = stats["requests"], stats["quota_refused"]
        win = quota_windows(log)
        full = int(secs * 1000 // QUOTA_WINDOW_MS)  # windows wholly inside the load
        f = {"secs": secs, "instances": len(ports), "n": n, "ok": ok, "statuses": statuses,
             "errors": errors, "elapsed": elapsed, "goodput": ok / elapsed if elapsed else 0,
             "goodput_load": ok / secs, "success": 100.0 * ok / n if n else 0,
             "p50": pct(lat, 50), "p99": pct(lat, 99), "max": lat[-1],
             "upstream": up, "upstream_429": refused,
             "upstream_ok": up - refused,
             "upstream_429_pct": 100.0 * refused / up if up else 0,
             "amp": up / n if n else 0, "windows": win,
             "max_429_window": max((w[1] for w in win), default=0),
             "max_429_window_full": max((w[1] for w in win[:full]), default=0),
             "cpu_s": cpu}
        f["goodput_pct"] = 100.0 * f["goodput"] / QUOTA_RATE
        return f

    def scenario(self, name):
        title, mode, kind, extra, targets = SCENARIOS[name]
        if kind == "ep":
            return self.ep_scenario(name)
        if kind == "quota":
            return self.quota_scenario(name)
        if kind == "cache":
            return self.cache_scenario(name)
        say(f"\n== scenario {name}: {title}")
        for v in targets:
            if v in self.rejected:
                say(f"   {v}: not run: braced rejected its config: {self.rejected[v]}")
        targets = [t for t in targets if t not in self.rejected]
        self.cur_tls = extra == "tls"
        self.start_upstreams(targets)
        self.start_proxies(targets, stream=kind in STREAM_KINDS)
        rounds = []
        try:
            for i in range(self.a.rounds):
                order = targets[i % len(targets):] + targets[:i % len(targets)]
                say(f"-- round {i + 1}/{self.a.rounds}, order: {', '.join(order)}")
                res = {}
                if kind == "slow":
                    res = self.slow_round(mode, targets)
                elif kind == "sse":
                    res = self.sse_round(targets)
                elif kind == "download":
                    for t in order:
                        res[t] = self.run_download(t)
                else:
                    for t in order:
                        self.set_mode(t, mode)
                        if kind == "wrk" and t != "in-app":
                            res[t] = self.run_wrk(t)
                        else:
                            res[t] = self.run_loadgen(t, kind)
                        self.add_upstream(t, res[t])
                        if extra == "breaker" and (t == "direct" or t.startswith("braced")):
                            res[t].update(self.breaker_probe(t))
                    if kind == "wrk" and "direct" in targets:
                        self.floor_round(res)
                for t in targets:
                    say(f"   {t}: {json.dumps(res[t])}")
                    if res[t].get("error"):
                        say(f"   {t}: error: {res[t]['error']}")
                rounds.append({t: res[t] for t in targets + ([FLOOR] if FLOOR in res else [])})
        finally:
            self.stop_proxies()
            self.cur_tls = False
        self.raw[name] = rounds

    def cache_scenario(self, name):
        """cache-outage, cache-burst, cache-memory: each target's run starts
        its own upstream and proxy and stops them, the targets alternating."""
        title, _, _, extra, targets = SCENARIOS[name]
        say(f"\n== scenario {name}: {title}")
        for v in targets:
            if v in self.rejected:
                say(f"   {v}: not run: braced rejected its config: {self.rejected[v]}")
        targets = [t for t in targets if t not in self.rejected]
        run = {"outage": self.cache_outage, "burst": self.cache_burst,
               "memory": self.cache_memory}[extra]
        rounds = []
        for i in range(self.a.rounds):
            order = targets[i % len(targets):] + targets[:i % len(targets)]
            say(f"-- round {i + 1}/{self.a.rounds}, order: {', '.join(order)}")
            res = {}
            for t in order:
                started = len(self.procs.running)
                try:
                    res[t] = run(t)
                finally:
                    for p in self.procs.running[started:]:
                        self.procs.stop(p)
            for t in targets:
                say(f"   {t}: {json.dumps(res[t])}")
            rounds.append({t: res[t] for t in targets})
        self.raw[name] = rounds

    def cache_loadgen(self, url, args):
        argv = [PY, os.path.join(HERE, "loadgen.py"), url, "--client", "raw"] + args
        say("$ " + " ".join(argv))
        return argv, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)

    @staticmethod
    def cache_result(t, argv, p, timeout):
        try:
            o, e = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise RuntimeError(f"loadgen for {t} not done after {timeout:g} s")
        if p.returncode != 0:
            raise RuntimeError(f"loadgen failed for {t}: {e[-2000:]}")
        return json.loads(o)

    def cache_url(self, t, port):
        return f"http://127.0.0.1:{port}" + ("/bench" if t.startswith("braced") else "")

    def cache_outage(self, t):
        """The read API under an open-loop load; the upstream answers 503
        from 1/4 to 3/4 of the load's seconds."""
        secs = self.a.cache_secs
        name = t.replace("+", "-")
        up, up_port = start_cache_upstream(self.procs, f"outage-{name}",
                                           cache_action(200, CACHE_OUTAGE_TTL))
        _, port = self.start_cache_proxy(t, up_port, CACHE_OUTAGE_TTL, mark=True)
        argv, p = self.cache_loadgen(self.cache_url(t, port), [
            "--rate", str(CACHE_OUTAGE_RATE), "--duration", f"{secs:g}", "--path",
            "/v1/weather?city=c{k}", "--keys", str(CACHE_OUTAGE_KEYS), "--times",
            "--count-header", CACHE_MARK[t]])
        begun = time.monotonic()
        marks = {}
        for key, at, action in (("down", 0.25, cache_action(503)),
                                ("up", 0.75, cache_action(200, CACHE_OUTAGE_TTL))):
            delay = begun + at * secs - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            before = http_get(up_port, "/__stats")["requests"]
            say(f"   upstream {'down (every answer 503)' if key == 'down' else 'up again'}")
            http_post(up_port, "/__default", action)
            marks[key] = (time.monotonic(), before)
        r = self.cache_result(t, argv, p, secs + 120)
        up_n = http_get(up_port, "/__stats")["requests"]
        n = max(r["n"], 1)
        ok = r["statuses"].get("200", 0)
        down = marks["down"][0] - r["t0"]
        back = marks["up"][0] - r["t0"]
        # an app request counts in the outage when it was scheduled in it
        during = [d for d in r["done"] if down <= d[0] - d[3] / 1000 < back]
        lat = r["lat_ms"] or [0]
        return {"secs": secs, "n": r["n"], "ok": ok, "success": 100.0 * ok / n,
                "statuses": r["statuses"], "marks": r.get("header_counts", {}),
                "outage_s": round(back - down, 3), "outage_n": len(during),
                "outage_ok": sum(d[1] for d in during),
                "outage_success": (100.0 * sum(d[1] for d in during) / len(during)
                                   if during else None),
                "p50": pct(lat, 50), "p99": pct(lat, 99), "max": lat[-1],
                "upstream": up_n, "upstream_outage": marks["up"][1] - marks["down"][1],
                "errors": {k: len(v) for k, v in r.get("lat_by_error", {}).items()}}

    def cache_burst(self, t):
        """CACHE_BURST_N identical requests at once to a fresh proxy (a cold
        cache); the upstream's requests counted."""
        name = t.replace("+", "-")
        up, up_port = start_cache_upstream(
            self.procs, f"burst-{name}", cache_action(200, CACHE_BURST_TTL, CACHE_BURST_MS))
        _, port = self.start_cache_proxy(t, up_port, CACHE_BURST_TTL, mark=True)
        argv, p = self.cache_loadgen(self.cache_url(t, port), [
            "--concurrency", str(CACHE_BURST_N), "--count", str(CACHE_BURST_N),
            "--duration", "60", "--connect-first", "--count-header", CACHE_MARK[t]])
        r = self.cache_result(t, argv, p, 120)
        st = http_get(up_port, "/__stats")
        lat = r["lat_ms"] or [0]
        n = max(r["n"], 1)
        ok = r["statuses"].get("200", 0)
        return {"n": r["n"], "ok": ok, "success": 100.0 * ok / n, "statuses": r["statuses"],
                "marks": r.get("header_counts", {}), "upstream": st["requests"],
                "upstream_peak": st["peak"], "p50": pct(lat, 50), "p99": pct(lat, 99),
                "max": lat[-1], "elapsed": r["elapsed"],
                "errors": {k: len(v) for k, v in r.get("lat_by_error", {}).items()}}

    def cache_memory(self, t):
        """braced with a CACHE_MEM_MAX store in front of fixed_upstream,
        filled with distinct keys: large answers, then small ones; VmHWM and
        the store's own figures (/status) after each phase."""
        big, small = CACHE_MEM_BIG, CACHE_MEM_SMALL
        if self.a.quick:
            big, small = big // 4, small // 4
        up, up_port = start_upstream(self.procs, self.a.build, "memory")
        p, port, admin = start_braced_cache(self.procs, self.a.build, self.tmp, "braced-memory",
                                            f"http://127.0.0.1:{up_port}", CACHE_HIT_TTL,
                                            f"{CACHE_MEM_MAX >> 20}MiB", admin=True)
        pids = tree_pids(p.pid)
        url = self.cache_url(t, port)

        def status():
            return http_get(admin, "/status").get("cache", {})

        f = {"max_bytes": CACHE_MEM_MAX, "hwm_start_kib": vm_hwm_kib(pids),
             "rss_start_kib": rss_anon_kib(pids),
             "rss_file_start_kib": rss_anon_kib(pids, "RssFile:"), "phases": []}
        n = ok = 0
        statuses, marks = {}, {}
        for label, count, path in (
                ("large", big, f"/bytes/{CACHE_MEM_BIG_BYTES}?k={{k}}"),
                ("small", small, "/v1/weather?city=Paris&k={k}")):
            argv, lp = self.cache_loadgen(url, [
                "--concurrency", "32", "--count", str(count), "--duration", "3600",
                "--path", path, "--count-header", CACHE_MARK[t]])
            r = self.cache_result(t, argv, lp, 1800)
            c = status()
            ph = {"phase": label, "requests": r["n"], "secs": round(r["elapsed"], 2),
                  "statuses": r["statuses"], "marks": r.get("header_counts", {}),
                  "hwm_kib": vm_hwm_kib(pids), "rss_anon_kib": rss_anon_kib(pids),
                  "rss_file_kib": rss_anon_kib(pids, "RssFile:"),
                  "cache_bytes": c.get("bytes"), "cache_entries": c.get("entries")}
            say(f"   after the {label} keys: {json.dumps(ph)}")
            f["phases"].append(ph)
            n += r["n"]
            ok += r["statuses"].get("200", 0)
            for k, v in r["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
            for k, v in r.get("header_counts", {}).items():
                marks[k] = marks.get(k, 0) + v
        hwm = max(ph["hwm_kib"] for ph in f["phases"]) * 1024
        f.update({"n": n, "ok": ok, "success": 100.0 * ok / max(n, 1), "statuses": statuses,
                  "marks": marks, "hwm_mib": hwm / (1 << 20),
                  "hwm_growth_mib": (hwm - f["hwm_start_kib"] * 1024) / (1 << 20),
                  "hwm_over_max_mib": (hwm - CACHE_MEM_MAX) / (1 << 20),
                  "within": hwm <= CACHE_MEM_MAX + CACHE_MEM_SLACK,
                  "upstream": http_get(up_port, "/__stats")["requests"]})
        return f

    def floor_round(self, res):
        """res[FLOOR]: curl multi alone, 64 transfers in flight to direct's
        upstream (idle by now), its own CPU per request after a warm-up.
        Against an HTTPS upstream it verifies the certificate with the run's
        CA file and shares TLS sessions between its easy handles, as braced
        does, and reaches the upstream by the address braced uses."""
        self.set_mode("direct", "")
        scheme = "https" if self.cur_tls else "http"
        url = f"{scheme}://127.0.0.1:{self.up[self.upkey('direct')]}/v1/weather?city=Paris"
        secs = max(1, round(self.a.secs))
        argv = [f"{self.a.build}/tests/bench/curl_floor", url, "--concurrency", "64",
                "--secs", str(secs)]
        if self.cur_tls:
            argv += ["--cafile", self.ca(), "--share"]
        accepts0 = http_get(self.up[self.upkey("direct")], "/__stats", self.ca())["accepts"]
        say("$ " + " ".join(argv))
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60 + secs)
        say("    " + out.stdout.strip())
        f = dict(kv.split("=", 1) for kv in out.stdout.split())
        n = int(f["requests"])
        accepts = http_get(self.up[self.upkey("direct")], "/__stats", self.ca())["accepts"]
        res[FLOOR] = {"n": n, "rps": n / secs, "cpu_us": float(f["cpu_us_per_request"]),
                      "failed": int(f["failed"]),
                      # its connections (TLS handshakes), the /__stats one apart
                      "accepts": max(0, accepts - accepts0 - 1), "tls": self.cur_tls}

    def add_upstream(self, t, f):
        s = http_get(self.up[self.upkey(t)], "/__stats", self.ca())
        f["upstream"] = s
        f["amp"] = s["requests"] / f["n"] if f["n"] else 0
        f["keys"] = s["pairs"] / s["ids"] if s["ids"] else 0
        # connections the upstream accepted in the round, the /__stats one
        # apart: TLS handshakes against an HTTPS upstream
        f["accepts"] = max(0, s["accepts"] - 1)
        f["peak"] = s["peak"]
        f["in_window"] = s["in_window"]
        f["in_window_head"] = s["in_window_head"]
        f["in_window_end"] = s["in_window_end"]
        f["in_window_mid"] = s["in_window"] - s["in_window_head"] - s["in_window_end"]
        f["in_conn_window"] = s["in_conn_window"]
        f["in_window_pct"] = 100.0 * s["in_window"] / s["requests"] if s["requests"] else 0

    def breaker_probe(self, t):
        """Right after the outage load (the breaker open): one connection,
        one request at a time, for 1 s (wrk -t1 -c1), so the latency is the
        answer's own, with neither the load's queue nor a Python client's
        jitter in it. Upstream requests during the probe bound the answers
        that did not come from the open breaker."""
        before = http_get(self.up[self.upkey(t)], "/__stats", self.ca())["requests"]
        url = self.base_url(t) + "/v1/weather?city=Paris"
        argv = ["wrk", "-t1", "-c1", "-d1s", "--latency", url]
        say("$ " + " ".join(argv))
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
        after = http_get(self.up[self.upkey(t)], "/__stats", self.ca())["requests"]
        w = parse_wrk(out)
        say(f"    {w['requests']} answers, p50 {w['p50']} ms, p99 {w['p99']} ms, "
            f"{after - before} upstream requests")
        return {"probe_n": w["requests"], "probe_p50": w["p50"], "probe_p99": w["p99"],
                "probe_upstream": after - before}

    def stream_argv(self, t, mode):
        a = self.a
        if mode == "download":
            url = self.base_url(t) + f"/bytes/{a.download_bytes}"
            return [PY, os.path.join(HERE, "streamclient.py"), "download", url, "--expect",
                    str(a.download_bytes)]
        url = self.base_url(t) + f"/sse?n={a.sse_events}&ms={a.sse_ms}"
        return [PY, os.path.join(HERE, "streamclient.py"), "sse", url, "--events",
                str(a.sse_events)]

    def stream_figures(self, t, r, ticks, rss):
        """The figures every streaming round keeps: the proxy's CPU seconds,
        peak RssAnon sampled meanwhile and VmHWM (its peak resident memory
        since it started, at the end of the round), the upstream's requests,
        and the client's error, if any."""
        f = {"status": r.get("status", 0), "error": r.get("error"),
             "cpu_s": None if t == "direct" else ticks / HZ,
             "rss_peak": rss.figures()["rss_peak"] if t != "direct" else None,
             "hwm_mib": vm_hwm_kib(tree_pids(self.pid(t))) / 1024 if t != "direct" else None,
             "upstream_requests": http_get(self.up[self.upkey(t)], "/__stats")["requests"]}
        return f

    def run_download(self, t):
        """One download of --download-bytes through t; a failure is t's
        figure (an error line), not the run's."""
        argv = self.stream_argv(t, "download")
        self.set_mode(t, "")
        say("$ " + " ".join(argv))
        before = cpu_ticks(self.pid(t))
        limit = 120 + self.a.download_bytes / (10 << 20)  # 10 MiB/s at least
        with RssSampler(self.pid(t)) as rss:
            try:
                out = subprocess.run(argv, capture_output=True, text=True, timeout=limit)
                r = json.loads(out.stdout) if out.returncode == 0 else \
                    {"error": f"client exited with {out.returncode}: {out.stderr.strip()[-300:]}"}
            except subprocess.TimeoutExpired:
                r = {"error": f"not done after {limit:.0f} s (client stopped)"}
        after = cpu_ticks(self.pid(t))
        f = self.stream_figures(t, r, after - before, rss)
        ok = not f["error"]
        secs = r.get("secs") or 0
        f.update({"n": 1 if ok else 0, "bytes": r.get("bytes", 0), "secs": secs,
                  "mibs": r.get("bytes", 0) / (1 << 20) / secs if ok and secs else None})
        if not ok:
            f["secs"] = None
        f["cpu_s_gib"] = (f["cpu_s"] / (f["bytes"] / (1 << 30))
                          if ok and f["cpu_s"] is not None and f["bytes"] else None)
        return f

    def sse_round(self, targets):
        """Every target's stream read at the same time, one client process
        each, so a proxy's delays and direct's come from the same seconds;
        the clients start one after the other and connect together 1 s
        later, so none reads while the others start up."""
        a = self.a
        for t in targets:
            self.set_mode(t, "")
        before = {t: cpu_ticks(self.pid(t)) for t in targets}
        samplers = {t: RssSampler(self.pid(t)).__enter__() for t in targets}
        running = {}
        # every client connects at the same moment, once all have started
        start_at = time.monotonic_ns() // 1000 + 1_000_000
        for t in targets:
            argv = self.stream_argv(t, "sse") + ["--start-at", str(start_at)]
            say("$ " + " ".join(argv) + " &")
            running[t] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True)
        outs = {}
        end = time.monotonic() + 60 + a.sse_events * a.sse_ms / 1000
        for t, p in running.items():
            try:
                o, e = p.communicate(timeout=max(1, end - time.monotonic()))
                outs[t] = json.loads(o) if p.returncode == 0 else \
                    {"error": f"client exited with {p.returncode}: {e.strip()[-300:]}"}
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                outs[t] = {"error": "stream not done 60 s after its last event was due "
                                    "(client stopped)"}
        res = {}
        for t in targets:
            samplers[t].__exit__(None, None, None)
            r = outs[t]
            f = self.stream_figures(t, r, cpu_ticks(self.pid(t)) - before[t], samplers[t])
            d = sorted(r.get("delays_us") or [])
            f["n"] = r.get("events", 0) if not f["error"] else 0
            f["events"] = r.get("events", 0)
            for key, p in (("p50", 50), ("p99", 99)):
                f[key] = pct(d, p) / 1000 if d and not f["error"] else None
            f["max"] = d[-1] / 1000 if d and not f["error"] else None
            res[t] = f
        for t in targets:  # the delay a proxy adds: its figure minus direct's
            for key in ("p50", "p99", "max"):
                mine, base = res[t][key], res.get("direct", {}).get(key)
                res[t]["add_" + key] = (mine - base if t != "direct" and mine is not None
                                        and base is not None else None)
        return res

    def slow_round(self, mode, targets):
        for t in targets:
            self.set_mode(t, mode)
        running = {}
        for t in targets:
            argv = self.loadgen_argv(t, "slow")
            say("$ " + " ".join(argv) + " &")
            running[t] = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        res = {}
        for t, p in running.items():
            r = json.loads(p.communicate(timeout=120)[0])
            res[t] = self.figures(t, r, 0)
            res[t]["cpu_us"] = None
            self.add_upstream(t, res[t])
        return res


def pct(sorted_vals, p):
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        return 0.0
    x = float(m.group(1))
    return {"us": x / 1000, "ms": x, "s": x * 1000, "m": x * 60000}[m.group(2)]


def parse_wrk(out):
    w = {"requests": 0, "errors": 0, "rps": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    for line in out.splitlines():
        s = line.split()
        if line.strip().startswith("Latency") and len(s) >= 4 and "%" not in s[1]:
            w["max"] = to_ms(s[3])
        elif len(s) == 2 and s[0] == "50%":
            w["p50"] = to_ms(s[1])
        elif len(s) == 2 and s[0] == "99%":
            w["p99"] = to_ms(s[1])
        elif "requests in" in line:
            w["requests"] = int(s[0])
        elif line.startswith("Requests/sec"):
            w["rps"] = float(s[1])
        elif "Non-2xx" in line:
            w["errors"] += int(s[-1])
        elif line.strip().startswith("Socket errors"):
            w["errors"] += sum(int(x) for x in re.findall(r"\w+ (\d+)", line))
    return w


# ---- report -------------------------------------------------------------

def agg(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return (statistics.median(vals), min(vals), max(vals))


def fmt(a, digits=1):
    if a is None:
        return "—"
    med, lo, hi = a
    f = f"{{:.{digits}f}}"
    return f"{f.format(med)} ({f.format(lo)}–{f.format(hi)})"


def summarize(rounds, t, key):
    return agg([r[t].get(key) for r in rounds])


def ratio(rounds, t, base, key):
    vals = []
    for r in rounds:
        if base not in r:
            continue
        a, b = r[t].get(key), r[base].get(key)
        if a is not None and b:
            vals.append(a / b)
    return agg(vals)


def diff(rounds, t, base, key):
    return agg([r[t][key] - r[base][key] for r in rounds])


def targets_of(rounds):
    return list(rounds[0]) if rounds else []


# What the extra columns measure, printed under each scenario's title.
DEFINITIONS = {
    "mem": "Memory: RssAnon (anonymous resident memory) of the proxy process (nginx: master "
           f"plus worker) from /proc/PID/status, sampled every {RSS_EVERY * 1000:.0f} ms "
           "while wrk runs; per round the peak and the p99 of the samples, then the median "
           "over rounds. direct and in-app have no proxy process.",
    "tls": "Each target in front of its own HTTPS upstream (the same C upstream with "
           "`--tls`, a certificate from a throwaway CA made with `openssl` at start); every "
           "proxy verifies the certificate and keeps its upstream connections alive (braced: "
           "`tls.ca_file`; HAProxy: `ssl verify required ca-file`, `http-reuse always`; "
           "nginx: `proxy_ssl_verify on`, `keepalive 64`). The upstream's CPU is not counted. "
           "Upstream connections = connections the upstream accepted during the round, each "
           "one TLS handshake (connections kept from an earlier round are not counted again).",
    "breaker": "Open breaker: the answers braced gave with `Brace-Error: circuit_open` (503, "
               "the breaker open, nothing sent upstream), and the latency of those answers "
               "alone, under the closed-loop load (32 in flight, so the Python client's "
               "own queue is in it). Then a probe right after that load: `wrk -t1 -c1 -d1s` "
               "(one request at a time), whose latency is the answer's own; its upstream "
               "requests bound the answers that did not come from the open breaker (0 = "
               "every answer did). direct's probe (the upstream's own 503s) is the floor of "
               "client and loopback. Peers have no breaker.",
    "window": "Announced window: every 429 the upstream sends carries `Retry-After: 1`, "
              "which announces a window from the moment it is sent to 1 s later. Each target "
              "has its own upstream, so a window is announced to the whole target (braced's "
              "cool-down is per profile, and the bench has one profile). *in window* counts "
              "upstream requests that arrived before the end of the latest window that "
              "upstream announced. Of those, *head* arrived at most 10 ms after the oldest "
              "announcement whose window was still open (every open window was that young: "
              "the request may already have been on its way when the 429 went out, which no "
              "proxy can recall), *end* in the last 10 ms of the latest window (a timer "
              "firing a little early), and *inside* the rest: requests that arrived well "
              "inside a window the target had been told of. *same connection* counts upstream requests that arrived "
              "inside a window announced on their own connection.",
    "tail": f"Slow tail: open loop at {TAIL_RATE} req/s, latency counted from each request's "
            "scheduled time; upstream load = upstream requests per app request. braced "
            "variants add hedging to the profile.",
    "cache-hit": "Each target in front of its own tests/bench/fixed_upstream (no "
                 "Cache-Control: each cache's own lifetime applies, " + str(CACHE_HIT_TTL) +
                 " s), one URL, so after the first request every answer of braced+cache, "
                 "haproxy+cache and nginx+cache is a hit (amplification shows what reached "
                 "the upstream); braced and haproxy are the clean scenario's, proxying "
                 "every request. CPU µs/req as in clean: utime+stime of the proxy (nginx: "
                 "master and worker) over the round ÷ the requests wrk counted. "
                 "braced+cache: the profile's `cache: {enabled: true, ttl: " +
                 str(CACHE_HIT_TTL) + "s, stale_if_error: " + CACHE_SIE + "}` with `cache: "
                 "{max_bytes: " + CACHE_MAX_BYTES + "}`; haproxy+cache and nginx+cache as in "
                 "cache-outage, without the X-Cache-Status header.",
    "queue": f"Queueing: the upstream serves {QUEUE_CAP} requests at a time, {QUEUE_WORK_MS} "
             f"ms each ({QUEUE_CAP * 1000 // QUEUE_WORK_MS} req/s at most) and queues the "
             "rest; peak upstream concurrency = most requests it held at once (in service "
             "plus queued). Goodput = 2xx answers per second as the app sees them.",
}


def not_run_lines(meta, name):
    out = []
    for v in SCENARIOS[name][4]:
        line = (meta.get("not_run") or {}).get(v)
        if line:
            out.append(f"- **{v}** was not run: braced rejected its config "
                       f"(`{VARIANTS.get(v, CACHE_PROBE_YAML).strip()}`): `{line}`")
    return out + [""] if out else []


def report(bench, outdir, meta):
    lines = ["# braced benchmark under faults", "",
             f"{meta['when']}; {meta['cores']} cores; {meta['rounds']} rounds per scenario, "
             f"{meta['secs']} s per target per round; loopback only. Each cell is the median "
             "of the rounds with (min–max); ratios are taken inside each round, then the "
             "median. CPU is utime+stime of the proxy process (nginx: master and worker) "
             "over the round divided by the app's requests; for in-app it is the whole Python "
             "client process (recipe and load generator); direct has no proxy. Amplification "
             "is upstream requests per app request.", "",
             "Versions: " + meta["versions"], ""]
    lines += summary(bench.raw, meta)
    charts = []
    for name, rounds in bench.raw.items():
        title, _, kind, extra, _ = SCENARIOS[name]
        targets = targets_of(rounds)
        lines += [f"## {name}: {title}", ""]
        if kind == "ep":
            lines += ep_section(name, extra, rounds, outdir)
            continue
        if kind == "quota":
            lines += quota_section(name, rounds, outdir)
            continue
        if kind == "cache":
            lines += not_run_lines(meta, name)
            lines += cache_section(name, extra, rounds, meta, outdir)
            continue
        if kind in STREAM_KINDS:
            section, names = stream_section(name, kind, rounds, meta, outdir)
            lines += section
            charts += names
            continue
        if extra in DEFINITIONS:
            lines += [DEFINITIONS[extra], ""]
        lines += not_run_lines(meta, name)
        head = ["target", "success %", "p50 ms", "p99 ms", "max ms", "req/s", "CPU µs/req",
                "amplification"]
        if kind == "wrk":
            head += (["req/s ÷ direct"] if "direct" in targets else []) + [
                "CPU ÷ haproxy", "upstream connections"]
        if extra in ("mem", "tls"):
            head += ["peak RssAnon MiB", "p99 RssAnon MiB"]
        if extra == "drifted":
            head += ["drifted answers reaching the app", "in % of answers"]
        if extra == "keys":
            head += ["distinct Idempotency-Keys per logical request answered 503 first"]
        if extra == "added":
            head += ["added p50 ms vs direct", "added p99 ms vs direct"]
        if extra == "breaker":
            head += ["answers 503 circuit_open", "their p50 ms", "their p99 ms",
                     "probe (wrk -c1): answers", "probe p50 ms", "probe p99 ms",
                     "probe upstream requests"]
        if extra == "window":
            head += ["upstream requests in window", "head ≤10 ms", "end ≤10 ms", "inside",
                     "same connection", "in window, % of upstream requests"]
        if extra == "tail":
            head += ["p99.9 ms"]
        if extra == "queue":
            head += ["goodput req/s", "goodput ÷ capacity", "peak upstream concurrency"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in targets:
            def m(key, digits=1):
                return fmt(summarize(rounds, t, key), digits)
            row = [t, m("success"), m("p50", 2), m("p99", 2), m("max"), m("rps", 0), m("cpu_us"),
                   m("amp", 3)]
            if kind == "wrk":
                # in-app's CPU includes its load generator: no ratio to a proxy
                row += ([fmt(ratio(rounds, t, "direct", "rps"), 2)] if "direct" in targets
                        else [])
                row += ["—" if t == "in-app" or "haproxy" not in targets else
                        fmt(ratio(rounds, t, "haproxy", "cpu_us"), 2),
                        "—" if t == "in-app" else m("accepts", 0)]
            if extra in ("mem", "tls"):
                row += [m("rss_peak", 2), m("rss_p99", 2)]
            if extra == "drifted":
                row += [m("drifted", 0), fmt(drift_share(rounds, t), 2)]
            if extra == "keys":
                row += [m("keys", 2)]
            if extra == "added":
                row += [fmt(diff(rounds, t, "direct", "p50"), 2),
                        fmt(diff(rounds, t, "direct", "p99"), 2)]
            if extra == "breaker":
                row += [m("open_n", 0), m("open_p50", 2), m("open_p99", 2), m("probe_n", 0),
                        m("probe_p50", 3), m("probe_p99", 3), m("probe_upstream", 0)]
            if extra == "window":
                row += [m("in_window", 0), m("in_window_head", 0), m("in_window_end", 0),
                        m("in_window_mid", 0), m("in_conn_window", 0), m("in_window_pct", 1)]
            if extra == "tail":
                row += [m("p999", 2)]
            if extra == "queue":
                row += [m("goodput", 0),
                        fmt(agg([r[t].get("goodput", 0) * QUEUE_WORK_MS / 1000 / QUEUE_CAP
                                 for r in rounds]), 2), m("peak", 0)]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        if extra == "cache-hit" and "braced+cache" in targets and "haproxy" in targets:
            x = ratio(rounds, "braced+cache", "haproxy", "cpu_us")
            lines += [f"braced+cache's CPU per hit ÷ haproxy's per proxied request, inside "
                      f"each round: {fmt(x, 2)} (the target: below 1).", ""]
        if kind == "wrk":
            lines += floor_lines(rounds)
        for key, label, unit, better in chart_keys(kind, extra):
            fname = f"{name}-{key}.svg"
            vals = [(t, summarize(rounds, t, key) if key not in ("add50", "add99") else
                     diff(rounds, t, "direct", "p50" if key == "add50" else "p99"))
                    for t in targets]
            if key == "drift_pct":
                vals = [(t, drift_share(rounds, t)) for t in targets]
            if key == "cpu_us":  # in-app's figure is the whole client process
                vals = [(t, None if t == "in-app" else v) for t, v in vals]
            with open(os.path.join(outdir, fname), "w") as f:
                f.write(chart.svg_bars(f"{name}: {label}", vals, unit, better))
            charts.append(fname)
            lines.append(f"![{name} {label}]({fname})")
        lines.append("")
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(outdir, "raw.json"), "w") as f:
        json.dump({"meta": meta, "scenarios": bench.raw}, f, indent=1)
    return "\n".join(lines)


def stream_errors(rounds, t):
    """t's failures over the rounds, each distinct message once."""
    errs = []
    for r in rounds:
        e = r[t].get("error")
        if e and e not in errs:
            errs.append(e)
    return errs


def stream_section(name, kind, rounds, meta, outdir):
    """The download or sse scenario's table, error lines and charts."""
    targets = targets_of(rounds)
    if kind == "download":
        size = meta.get("download_bytes", DOWNLOAD_BYTES)
        lines = [f"GET /bytes/{size} ({size / (1 << 20):.0f} MiB, Content-Length) through "
                 "each target, one target at a time, once per round, read by "
                 "tests/bench/streamclient.py (recv_into a 1 MiB buffer, the body counted and "
                 "discarded). HAProxy without `option http-buffer-request` and with `option "
                 "http-no-delay` (without it, a small write waits up to 200 ms), nginx with "
                 "`proxy_buffering off; proxy_request_buffering off; proxy_http_version 1.1;`; "
                 "braced with its defaults. Wall time from connect to the last byte; CPU = "
                 "utime+stime of the proxy (nginx: master and worker) over the download, per "
                 "GiB delivered; peak RssAnon sampled every "
                 f"{RSS_EVERY * 1000:.0f} ms during the download; VmHWM = the proxy's peak "
                 "resident set since it started (for the scenario), at the end of each round.",
                 "", "| target | downloads ok | wall s | MiB/s | CPU s per GiB | "
                 "peak RssAnon MiB | VmHWM MiB | upstream requests |", "|---" * 8 + "|"]
        keys = [("secs", 2), ("mibs", 0), ("cpu_s_gib", 2), ("rss_peak", 1), ("hwm_mib", 1),
                ("upstream_requests", 0)]
        charts = [("mibs", "download throughput", "MiB/s", "higher"),
                  ("cpu_s_gib", "proxy CPU per GiB downloaded", "s", "lower"),
                  ("hwm_mib", "proxy peak resident memory (VmHWM)", "MiB", "lower")]
    else:
        n, ms = meta.get("sse_events", SSE_EVENTS), meta.get("sse_ms", SSE_MS)
        lines = [f"GET /sse?n={n}&ms={ms}: {n} events {ms} ms apart, each stamped by the "
                 "upstream with CLOCK_MONOTONIC when written; every target's stream read at "
                 "the same time in each round (one tests/bench/streamclient.py process per "
                 "target, all connecting at the same moment; each target with its own "
                 "upstream). Delay = arrival "
                 "(CLOCK_MONOTONIC when the read that completed the event returned) minus "
                 "the stamp; added = the proxy's figure minus direct's in the same round. "
                 "HAProxy and nginx as in download (no buffering); braced with its defaults.",
                 "", "| target | events ok | delay p50 ms | p99 ms | max ms | added p50 ms | "
                 "added p99 ms | added max ms | proxy CPU s | VmHWM MiB |",
                 "|---" * 10 + "|"]
        keys = [("p50", 2), ("p99", 2), ("max", 2), ("add_p50", 2), ("add_p99", 2),
                ("add_max", 2), ("cpu_s", 2), ("hwm_mib", 1)]
        charts = [("add_p50", "p50 delay added per event to direct's", "ms", "lower"),
                  ("add_p99", "p99 delay added per event to direct's", "ms", "lower")]
    for t in targets:
        ok = sum(1 for r in rounds if not r[t].get("error"))
        if kind == "sse":
            ok = f"{ok}/{len(rounds)} rounds"
        else:
            ok = f"{ok}/{len(rounds)}"
        lines.append(f"| {t} | {ok} | " +
                     " | ".join(fmt(summarize(rounds, t, k), d) for k, d in keys) + " |")
    lines.append("")
    for t in targets:
        for e in stream_errors(rounds, t):
            lines.append(f"- **{t}** failed: `{e}`")
    lines.append("")
    names = []
    for key, label, unit, better in charts:
        fname = f"{name}-{key}.svg"
        vals = [(t, summarize(rounds, t, key)) for t in targets]
        with open(os.path.join(outdir, fname), "w") as f:
            f.write(chart.svg_bars(f"{name}: {label}", vals, unit, better))
        names.append(fname)
        lines.append(f"![{name} {label}]({fname})")
    lines.append("")
    return lines, names


EP_PEERS = (
    "Each target has its own three upstreams (`tests/bench/fixed_upstream --host` on "
    f"{', '.join(EP_HOSTS)}, one port), and every proxy is started afresh for each run, so "
    "each run includes what the proxy learns in its first second. **braced**: `addresses` "
    "of the three, `endpoints: {balance: peak_ewma, eject: " + EP_EJECT + ", retry_elsewhere: "
    "true}`, the default retry policy (4 attempts, 503 retried, backoff 200 ms full jitter); "
    "in ep-drift also the weather schema in enforce mode on `GET /v1/weather` with `retry: "
    "{on_schema_violation: true}`. **HAProxy**: one backend with the three servers, `balance "
    "leastconn`, `retries 3`, `retry-on all-retryable-errors`, `option redispatch 1` (every "
    "retry to another server), `observe layer7 error-limit 5 on-error mark-down` (5 as "
    "braced's consecutive_failures) and active checks `option httpchk GET /health`, `http-check "
    f"expect status 200`, `check {EP_CHECK}`, which bring a marked-down server back (the "
    "upstream answers /health at once, with 503 when it is in 503 mode, and counts checks "
    "apart from requests), `http-reuse always`. **nginx**: an upstream block with the three "
    "servers, `least_conn`, `max_fails=5 fail_timeout=10s`, `keepalive 64`, `proxy_next_upstream "
    "error timeout http_500 http_502 http_503 http_504` (a listed status also counts toward "
    "max_fails), `proxy_next_upstream_tries 3` (each server at most once), HTTP/1.1 with "
    "keep-alive to the upstreams; nginx has no active checks (they are in NGINX Plus). "
    "leastconn / least_conn are the peers' closest to a load-aware balance (neither has a "
    "latency-aware one); with round robin they would do worse in ep-slow. Neither peer reads "
    "bodies: in ep-drift they pass drifted answers through, by design. Upstream requests "
    "count the three upstreams' proxied requests (HAProxy's health checks not included); "
    f"*after 1 s*: the upstreams' counters were sampled {EP_MARK:g} s into the load (every 50 "
    "ms by the harness), and the answers that came after that sample are set against the "
    "upstream requests that arrived after it (the requests in flight at the sample, at most "
    f"{EP_CONC}, blur the split a little).")


def per_endpoint(rounds, t, healthy=False):
    """The median over rounds of each endpoint's upstream requests, a / b / c."""
    rows = [(r[t]["healthy"] if healthy else r[t])["per_endpoint"] for r in rounds]
    return " / ".join(f"{statistics.median(c):.0f}" for c in zip(*rows))


def ep_section(name, extra, rounds, outdir):
    """An endpoint scenario's table, braced's targets and charts."""
    targets = targets_of(rounds)
    bad = EP_HOSTS[EP_BAD]
    secs = rounds[0][targets[0]].get("secs") if rounds and targets else None
    lines = [EP_PEERS + (f" Each run lasted {secs:g} s (max(--secs, {EP_MIN_SECS}))."
                         if secs else ""), ""]

    def m(t, key, digits=1):
        return fmt(summarize(rounds, t, key), digits)

    def med(t, key):
        a = summarize(rounds, t, key)
        return a[0] if a else None

    if extra == "ep-slow":
        lines += [f"Open loop at {EP_RATE} req/s; latency from each request's scheduled time. "
                  f"In each round every target runs twice: all three endpoints healthy, then "
                  f"{bad} holding every answer {EP_SLOW_MS} ms; p99 ÷ healthy p99 is taken "
                  f"inside the round. direct = the loadgen against the healthy {EP_HOSTS[0]} "
                  "alone (no balancing): the floor of client and loopback.", ""]
        head = ["target", f"answers > {EP_SLOW_CUT} ms %", "after 1 s", "p50 ms", "p99 ms",
                "p99 after 1 s", "max ms", "healthy p50 ms", "healthy p99 ms",
                "p99 ÷ healthy p99", "after 1 s", "success %",
                "upstream requests per app request", f"share of upstream requests to {bad} %",
                "upstream requests per endpoint (healthy run)", "proxy CPU µs/req"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in targets:
            hp = [agg([r[t]["healthy"][k] for r in rounds]) for k in ("p50", "p99")]
            lines.append("| " + " | ".join([
                t, m(t, "slow_pct", 2), m(t, "slow_pct_after", 2), m(t, "p50", 2),
                m(t, "p99", 2), m(t, "p99_after", 2), m(t, "max"), fmt(hp[0], 2),
                fmt(hp[1], 2), m(t, "p99_x", 2), m(t, "p99_x_after", 2), m(t, "success", 2),
                m(t, "amp", 3), m(t, "bad_pct", 2),
                per_endpoint(rounds, t) + f" ({per_endpoint(rounds, t, True)})",
                m(t, "cpu_us")]) + " |")
        charts = [("slow_pct", f"answers slower than {EP_SLOW_CUT} ms", "%", "lower"),
                  ("p99_x", "p99 ÷ p99 with all endpoints healthy", "", "lower")]
        b = "braced" in targets
        if b:
            sp, x = med("braced", "slow_pct"), med("braced", "p99_x")
            spa, xa = med("braced", "slow_pct_after"), med("braced", "p99_x_after")
            after = ("" if spa is None or xa is None else
                     f" After the first second: {spa:.2f}% slower, p99 {xa:.2f}× healthy.")
            lines += ["", f"braced's targets: at most 3% of answers slower than {EP_SLOW_CUT} ms "
                      f"(median {sp:.2f}%: {'met' if sp <= 3 else 'not met'}); p99 within 2× "
                      f"of its all-healthy p99 (median {x:.2f}×: "
                      f"{'met' if x <= 2 else 'not met'})." + after]
    else:
        head = ["target", "success %", "success % after 1 s",
                "upstream requests per app request", "after 1 s", "p50 ms", "p99 ms",
                "req/s", "proxy CPU µs/req", f"share of upstream requests to {bad} %",
                "upstream requests per endpoint"]
        if extra == "ep-drift":
            head += ["drifted answers reaching the app", "in % of answers",
                     "drifted after 1 s"]
        else:
            head += ["health checks (all three upstreams)"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in targets:
            row = [t, m(t, "success", 2), m(t, "success_after", 2), m(t, "amp", 3),
                   m(t, "amp_after", 3), m(t, "p50", 2), m(t, "p99", 2), m(t, "rps", 0),
                   m(t, "cpu_us"), m(t, "bad_pct", 2), per_endpoint(rounds, t)]
            if extra == "ep-drift":
                row += [m(t, "drifted", 0), m(t, "drift_pct", 2), m(t, "drifted_after", 0)]
            else:
                row += [m(t, "checks", 0)]
            lines.append("| " + " | ".join(row) + " |")
        charts = [("success", "success as the app sees it", "%", "higher"),
                  ("amp_after", "upstream requests per app request after the first second",
                   "", "lower")]
        if extra == "ep-drift":
            charts.append(("drift_pct", "answers reaching the app with a drifted body", "%",
                           "lower"))
        if "braced" in targets:
            sc, a = med("braced", "success"), med("braced", "amp_after")
            tl = [f"success ≥ 99.9% (median {sc:.2f}%: {'met' if sc >= 99.9 else 'not met'})"]
            if extra == "ep-503" and a is not None:
                tl.append(f"at most 1.05 upstream requests per app request after the first "
                          f"second (median {a:.3f}: {'met' if a <= 1.05 else 'not met'})")
            if extra == "ep-drift":
                d = med("braced", "drifted")
                tl.append(f"no drifted answer reaches the app (median {d:.0f}: "
                          f"{'met' if d == 0 else 'not met'})")
            lines += ["", "braced's targets: " + "; ".join(tl) + "."]
    lines.append("")
    for key, label, unit, better in charts:
        fname = f"{name}-{key}.svg"
        with open(os.path.join(outdir, fname), "w") as f:
            f.write(chart.svg_bars(f"{name}: {label}", [(t, summarize(rounds, t, key))
                                                        for t in targets], unit, better))
        lines.append(f"![{name} {label}]({fname})")
    lines.append("")
    return lines


QUOTA_PEERS = (
    f"One upstream (tests/upstream.py, default action `{{\"quota\": {{\"limit\": {QUOTA_LIMIT}, "
    f"\"window_ms\": {QUOTA_WINDOW_MS}, \"family\": \"{QUOTA_FAMILY}\"}}}}`) per target, "
    "started afresh for it: every caller shares one key (no key header), windows are fixed and "
    "counted from the first request; within the quota it answers 200, beyond it 429 with "
    "`Retry-After` (whole seconds to the window's end), and every answer announces the quota "
    "(`RateLimit-Policy`, `RateLimit: \"q\";r=R;t=T`). Three instances of each target in front "
    "of it; the app is three open-loop load generators (tests/bench/loadgen.py, one per "
    f"instance, {QUOTA_LOAD * QUOTA_RATE / QUOTA_INSTANCES:g} req/s each: {QUOTA_LOAD}x the "
    f"quota of {QUOTA_RATE:g} req/s in all). **braced**: `rate_limit: {{rate: "
    f"\"{QUOTA_LIMIT}/{QUOTA_WINDOW_MS // 1000}s\", burst: {QUOTA_BURST}, queue: {QUOTA_QUEUE}, "
    "share: fleet}` shared by the three through one redis-server on a unix socket (`fleet: "
    "{redis: unix:...}`, sync_interval 100 ms), `ratelimit_headers: pace` (the default), the "
    "default retry policy (4 attempts, 429 retried after its Retry-After when the 10 s budget "
    "allows, cool-down per profile). **braced-announced**: nothing configured, each instance "
    "learns the announced quota from its own answers (`ratelimit_headers: pace`), unshared: "
    "each spends what the answers announce as if alone. **braced-announced+fleet**: no rate "
    f"either, `rate_limit: {{queue: {QUOTA_QUEUE}, share: fleet}}`: each instance spends its "
    "part (÷ the instances counted through Redis) of what the answers announce, with "
    "`fleet.redis` set, so the fleet's default sharing (cool-down, breaker, retry budget) "
    "applies: a 429 on one instance cools all three down. **HAProxy** and **nginx**: plain "
    "reverse proxies, keep-alive to the upstream, their default retries (connection failures "
    "only; a 429 goes back to the app). **in-app**: the recipe (httpx + tenacity, 4 attempts, "
    "429 retried after a random exponential wait, Retry-After not read), three processes "
    "calling the upstream directly; it has nothing to share a quota with. App requests = "
    "requests the load generators sent; goodput = the app's 200 answers per second from the "
    "load's start to its last answer (and over the load's seconds alone); upstream 429s = "
    "the upstream's `quota_refused`; 429s per window: the upstream's log cut into its own "
    "windows by arrival time, in parentheses those that arrived in the window's first second "
    "(the last window is usually partial: requests that waited or were retried past the "
    "load's last second). CPU = utime+stime of the three instances "
    "(nginx: masters and workers; in-app: the three client processes, load generator "
    "included).")


def quota_section(name, rounds, outdir):
    """A quota scenario's table, braced's targets and charts."""
    targets = targets_of(rounds)
    secs = rounds[0][targets[0]].get("secs") if rounds and targets else None
    lines = [QUOTA_PEERS + (f" The load lasted {secs:g} s per target." if secs else ""), ""]

    def m(t, key, digits=1):
        return fmt(summarize(rounds, t, key), digits)

    def med(t, key):
        a = summarize(rounds, t, key)
        return a[0] if a else None

    head = ["target", "app requests", "app 200", "app answers by status",
            "braced's own 429 rate_limited", "goodput req/s", "÷ quota %",
            "goodput over the load's seconds", "upstream requests", "upstream 429s",
            "429s in % of upstream requests", "upstream requests per app request",
            "429s per window", "p50 ms", "p99 ms", "CPU s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in targets:
        st = "; ".join(", ".join(f"{k}: {v}" for k, v in sorted(r[t]["statuses"].items()))
                       for r in rounds)
        win = "; ".join(" / ".join(str(w[1]) + (f" ({w[2]})" if len(w) > 2 and w[2] else "")
                                   for w in r[t]["windows"]) for r in rounds)
        own = agg([r[t]["errors"].get("rate_limited", 0) for r in rounds]) \
            if t.startswith("braced") else None
        lines.append("| " + " | ".join([
            t, m(t, "n", 0), m(t, "ok", 0), st, fmt(own, 0), m(t, "goodput", 2),
            m(t, "goodput_pct", 1), m(t, "goodput_load", 2), m(t, "upstream", 0),
            m(t, "upstream_429", 0), m(t, "upstream_429_pct", 2), m(t, "amp", 3), win,
            m(t, "p50", 1), m(t, "p99", 1), m(t, "cpu_s", 2)]) + " |")
    lines.append("")
    tl = []
    if "braced" in targets:
        p429, g = med("braced", "upstream_429_pct"), med("braced", "goodput")
        tl.append(f"braced (configured, shared): upstream 429s at most {QUOTA_MAX_429_PCT:g}% "
                  f"of the requests it sends (median {p429:.2f}%: "
                  f"{'met' if p429 <= QUOTA_MAX_429_PCT else 'not met'}); app goodput at least "
                  f"{QUOTA_GOODPUT * 100:.0f}% of the quota, {QUOTA_GOODPUT * QUOTA_RATE:g} req/s "
                  f"(median {g:.2f} req/s, {100 * g / QUOTA_RATE:.1f}%: "
                  f"{'met' if g >= QUOTA_GOODPUT * QUOTA_RATE else 'not met'})")
    for t in targets:
        if t.startswith("braced-announced"):
            w, g = med(t, "max_429_window"), med(t, "goodput")
            first = agg([sum(x[2] for x in r[t]["windows"] if len(x) > 2) for r in rounds])
            tl.append(f"{t} (quota only announced): at most {QUOTA_MAX_429_WINDOW} upstream 429 "
                      f"per window (most in one window, median over rounds: {w:.0f}: "
                      f"{'met' if w <= QUOTA_MAX_429_WINDOW else 'not met'}; "
                      f"{med(t, 'upstream_429'):.0f} in all, {first[0]:.0f} of them in a "
                      f"window's first second); goodput {g:.2f} req/s, "
                      f"{100 * g / QUOTA_RATE:.1f}% of the quota")
    peers = [t for t in targets if not t.startswith("braced")]
    if peers:
        tl.append("the peers' upstream 429s in % of their upstream requests: " + ", ".join(
            f"{t} {med(t, 'upstream_429_pct'):.1f}%" for t in peers))
    lines += [f"- {x}" for x in tl] + [""]
    for key, label, unit, better in (
            ("goodput", "app goodput (200 answers per second)", "req/s", "higher"),
            ("upstream_429_pct", "upstream 429s in % of upstream requests", "%", "lower")):
        fname = f"{name}-{key}.svg"
        with open(os.path.join(outdir, fname), "w") as f:
            f.write(chart.svg_bars(f"{name}: {label}", [(t, summarize(rounds, t, key))
                                                        for t in targets], unit, better))
        lines.append(f"![{name} {label}]({fname})")
    lines.append("")
    return lines


CACHE_PEERS = (
    "**braced+cache**: `cache: {max_bytes: " + CACHE_MAX_BYTES + "}` and on the profile "
    "`cache: {enabled: true, ttl: TTL, stale_if_error: " + CACHE_SIE + ", coalesce: true}`, "
    "the default policy otherwise (4 attempts, 503 retried, the breaker). **haproxy+cache**: "
    "the bench's HAProxy (retries 3, retry-on conn-failure empty-response response-timeout "
    "500 502 503 504) with `cache bench` (total-max-size 64 MB, max-object-size 1 MiB, max-age "
    "TTL), `http-request cache-use` and `http-response cache-store` on the backend, and "
    "`Cache-Control: max-age=TTL` set on an answer that has none before cache-store (HAProxy "
    "keeps no answer without a lifetime or a validator); HAProxy's cache has no "
    "stale-if-error, no stale-while-revalidate and no request coalescing. **nginx+cache**: the "
    "bench's nginx (four tries, the next on error, timeout, 429 and 5xx) with `proxy_cache` "
    "(`proxy_cache_path ... max_size=64m`), `proxy_cache_valid 200 TTL`, "
    "`proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504`, "
    "`proxy_cache_background_update on` (it serves the stale answer only with `updating` "
    "listed) and `proxy_cache_lock on`. TTL applies where the upstream sends no lifetime. "
    "How answered: braced's `Brace-Cache`, nginx's `$upstream_cache_status` and HAProxy's "
    "`res.cache_hit` (1 from the cache, 0 not), each sent back as a header and counted by "
    "the load generator.")


def mib_or_dash(kib):
    return "—" if kib is None else f"{kib / 1024:.1f}"


def cache_marks(rounds, t):
    """Each round's count of the header telling how t answered."""
    return "; ".join(", ".join(f"{k or '(none)'}: {v}" for k, v in
                               sorted(r[t].get("marks", {}).items())) for r in rounds)


def cache_statuses(rounds, t):
    return "; ".join(", ".join(f"{k}: {v}" for k, v in sorted(r[t]["statuses"].items()))
                     for r in rounds)


def cache_section(name, extra, rounds, meta, outdir):
    """A cache scenario's text, table, braced's target and chart."""
    targets = targets_of(rounds)

    def m(t, key, digits=1):
        return fmt(summarize(rounds, t, key), digits)

    def med(t, key):
        a = summarize(rounds, t, key)
        return a[0] if a else None

    lines = []
    charts = []
    if extra == "outage":
        secs = meta.get("cache_secs", CACHE_SECS)
        lines += [f"tests/upstream.py per target, started afresh for it, answering GET on "
                  f"{CACHE_OUTAGE_KEYS} paths (`/v1/weather?city=cN`) with the weather body "
                  f"and `Cache-Control: max-age={CACHE_OUTAGE_TTL}`; the app: "
                  f"tests/bench/loadgen.py, open loop at {CACHE_OUTAGE_RATE} req/s for "
                  f"{secs:g} s, the keys in turn. From {secs / 4:g} s to {3 * secs / 4:g} s "
                  "into the load the upstream answers every request 503 (its default action "
                  "set through POST /__default); an app request is *in the outage* when it "
                  "was scheduled in that span. Success = the app's requests answered 200. "
                  "TTL = " + f"{CACHE_OUTAGE_TTL} s. " + CACHE_PEERS, ""]
        head = ["target", "app requests", "answered 200", "success %", "in the outage: requests",
                "answered 200", "success %", "app answers by status", "how answered",
                "upstream requests", "in the outage", "p50 ms", "p99 ms", "max ms"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in targets:
            lines.append("| " + " | ".join([
                t, m(t, "n", 0), m(t, "ok", 0), m(t, "success", 2), m(t, "outage_n", 0),
                m(t, "outage_ok", 0), m(t, "outage_success", 2), cache_statuses(rounds, t),
                cache_marks(rounds, t), m(t, "upstream", 0), m(t, "upstream_outage", 0),
                m(t, "p50", 2), m(t, "p99", 1), m(t, "max", 0)]) + " |")
        if "braced+cache" in targets:
            sc = med("braced+cache", "success")
            lines += ["", f"braced's target: at least {CACHE_OUTAGE_TARGET}% of the app's "
                      f"requests answered 200 (median {sc:.2f}%: "
                      f"{'met' if sc >= CACHE_OUTAGE_TARGET else 'not met'})."]
        charts = [("success", "app requests answered 200 over the whole load", "%", "higher"),
                  ("outage_success", "app requests answered 200 in the outage", "%", "higher")]
    elif extra == "burst":
        lines += [f"tests/upstream.py per target answering after {CACHE_BURST_MS} ms with the "
                  f"weather body and `Cache-Control: max-age={CACHE_BURST_TTL}`; every round "
                  "starts each proxy afresh (a cold cache). The app: tests/bench/loadgen.py "
                  f"with {CACHE_BURST_N} connections opened first, then one GET of the same "
                  "URL on each at once (`--concurrency " + str(CACHE_BURST_N) + " --count " +
                  str(CACHE_BURST_N) + " --connect-first`). Upstream requests = the upstream's "
                  "/__stats requests; peak = the most it held at once. TTL = "
                  f"{CACHE_BURST_TTL} s. " + CACHE_PEERS, ""]
        head = ["target", "app requests", "answered 200", "upstream requests",
                "upstream peak concurrency", "how answered", "p50 ms", "p99 ms", "max ms"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in targets:
            lines.append("| " + " | ".join([
                t, m(t, "n", 0), m(t, "ok", 0), m(t, "upstream", 0), m(t, "upstream_peak", 0),
                cache_marks(rounds, t), m(t, "p50", 1), m(t, "p99", 1), m(t, "max", 1)]) + " |")
        if "braced+cache" in targets:
            u = [r["braced+cache"]["upstream"] for r in rounds]
            lines += ["", f"braced's target: exactly 1 upstream request (each round: "
                      f"{', '.join(str(x) for x in u)}: "
                      f"{'met' if all(x == 1 for x in u) else 'not met'})."]
        charts = [("upstream", "upstream requests for one burst", "", "lower")]
    else:  # memory
        lines += [f"braced with `cache: {{max_bytes: {CACHE_MEM_MAX >> 20}MiB}}` (the profile's "
                  f"cache as above, ttl {CACHE_HIT_TTL} s, so nothing expires) in front of "
                  "tests/bench/fixed_upstream, with an admin listener for /status. The app: "
                  "tests/bench/loadgen.py, 32 in flight, first GET "
                  f"`/bytes/{CACHE_MEM_BIG_BYTES}?k=I` for {CACHE_MEM_BIG} distinct I "
                  f"({CACHE_MEM_BIG * CACHE_MEM_BIG_BYTES >> 20} MiB of bodies), then GET "
                  f"`/v1/weather?city=Paris&k=I` for {CACHE_MEM_SMALL} distinct I (the weather "
                  f"body, {len(CACHE_BODY)} bytes); --quick takes a quarter of each. VmHWM = "
                  "braced's peak resident set since it started (/proc/PID/status), read after "
                  "each phase, beside RssAnon and RssFile (file-backed: the binary and its "
                  "libraries) at that moment; store bytes and entries from braced's /status. The bound "
                  f"looked at: VmHWM within max_bytes + {CACHE_MEM_SLACK >> 20} MiB.", ""]
        head = ["round", "phase", "requests", "s", "answers by status", "how answered",
                "store bytes", "store entries", "VmHWM MiB", "RssAnon MiB", "RssFile MiB"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, r in enumerate(rounds):
            f = r.get("braced+cache")
            if not f:
                continue
            lines.append(f"| {i + 1} | start | | | | | | | {f['hwm_start_kib'] / 1024:.1f} | "
                         f"{f['rss_start_kib'] / 1024:.1f} | "
                         f"{mib_or_dash(f.get('rss_file_start_kib'))} |")
            for ph in f["phases"]:
                lines.append("| " + " | ".join([
                    str(i + 1), ph["phase"], str(ph["requests"]), f"{ph['secs']:.1f}",
                    ", ".join(f"{k}: {v}" for k, v in sorted(ph["statuses"].items())),
                    ", ".join(f"{k or '(none)'}: {v}" for k, v in sorted(ph["marks"].items())),
                    str(ph["cache_bytes"]), str(ph["cache_entries"]),
                    f"{ph['hwm_kib'] / 1024:.1f}", f"{ph['rss_anon_kib'] / 1024:.1f}",
                    mib_or_dash(ph.get("rss_file_kib"))]) + " |")
        if "braced+cache" in targets:
            w = [r["braced+cache"]["within"] for r in rounds]
            hw = med("braced+cache", "hwm_mib")
            gr = med("braced+cache", "hwm_growth_mib")
            lines += ["", f"Peak VmHWM (median over rounds) {hw:.1f} MiB against max_bytes "
                      f"{CACHE_MEM_MAX >> 20} MiB + {CACHE_MEM_SLACK >> 20} MiB = "
                      f"{(CACHE_MEM_MAX + CACHE_MEM_SLACK) >> 20} MiB: within in "
                      f"{sum(w)} of {len(w)} rounds. VmHWM at the end minus VmHWM right after "
                      f"start (the binary and its libraries mapped, nothing stored): "
                      f"{gr:.1f} MiB."]
    lines.append("")
    for key, label, unit, better in charts:
        fname = f"{name}-{key}.svg"
        with open(os.path.join(outdir, fname), "w") as f:
            f.write(chart.svg_bars(f"{name}: {label}", [(t, summarize(rounds, t, key))
                                                        for t in targets], unit, better))
        lines.append(f"![{name} {label}]({fname})")
    lines.append("")
    return lines


def floor_lines(rounds):
    """The curl-multi floor beside the proxies of the same rounds."""
    rounds = [r for r in rounds if FLOOR in r]
    if not rounds:
        return []
    tls = any(r[FLOOR].get("tls") for r in rounds)
    head = ["libcurl's multi interface alone (`tests/bench/curl_floor`, 64 keep-alive "
            "transfers in flight, a fresh easy handle per transfer as braced uses on "
            "libcurl < 8.1.0) against the same upstream, in the same rounds: a client "
            "only, so braced's CPU minus it is what braced adds on top of libcurl." +
            (" Over HTTPS it verifies the certificate with the run's CA file and shares "
             "TLS sessions between its handles, as braced does; its upstream connections "
             "are its TLS handshakes." if tls else ""), ""]
    cols = "| target | req/s | CPU µs/req | CPU ÷ haproxy | braced CPU µs/req − floor |"
    row = (f"| {FLOOR} | {fmt(summarize(rounds, FLOOR, 'rps'), 0)} | "
           f"{fmt(summarize(rounds, FLOOR, 'cpu_us'))} | "
           f"{fmt(ratio(rounds, FLOOR, 'haproxy', 'cpu_us'), 2)} | "
           f"{fmt(agg([r['braced']['cpu_us'] - r[FLOOR]['cpu_us'] for r in rounds]))} |")
    if any("accepts" in r[FLOOR] for r in rounds):
        cols += " upstream connections |"
        row += f" {fmt(summarize(rounds, FLOOR, 'accepts'), 0)} |"
    return head + [cols, "|---" * cols.count(" | ") + "|---|", row, ""]


def drift_share(rounds, t):
    """Drifted answers that reached the app, in % of the app's answers."""
    return agg([100.0 * r[t]["drifted"] / r[t]["n"] for r in rounds if r[t]["n"]])


def summary(raw, meta):
    """One row per scenario, one column per target, medians only."""
    def med(rounds, t, key):
        a = summarize(rounds, t, key)
        return a[0] if a else None

    def num(rounds, t, key, spec):
        v = med(rounds, t, key)
        return "—" if v is None else format(v, spec)

    variants = [v for v in VARIANTS if any(v in targets_of(r) for r in raw.values())]
    variants += [v for v in QUOTA_ANNOUNCED_TARGETS
                 if any(v in targets_of(r) for r in raw.values())]
    variants += [v for v in CACHE_TARGETS if any(v in targets_of(r) for r in raw.values())]
    cols = TARGETS + variants
    lines = ["## Summary (medians; the sections below have min–max and more)", "",
             "| scenario | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for name, rounds in raw.items():
        _, _, kind, extra, _ = SCENARIOS[name]
        cells = []
        for t in cols:
            if t not in targets_of(rounds):
                cells.append("not run" if t in (meta.get("not_run") or {}) and
                             t in SCENARIOS[name][4] else "—")
                continue
            if kind in STREAM_KINDS and all(r[t].get("error") for r in rounds):
                c = "failed"
            elif extra == "outage":
                c = (f"{num(rounds, t, 'success', '.2f')}% 200 "
                     f"({num(rounds, t, 'outage_success', '.2f')}% in the outage)")
            elif extra == "burst":
                c = f"{num(rounds, t, 'upstream', '.0f')} upstream requests"
            elif extra == "memory":
                c = (f"VmHWM {num(rounds, t, 'hwm_mib', '.1f')} MiB ("
                     f"+{num(rounds, t, 'hwm_growth_mib', '.1f')} MiB over its start)")
            elif extra == "ep-slow":
                c = (f"{num(rounds, t, 'slow_pct', '.1f')}% > {EP_SLOW_CUT} ms "
                     f"({num(rounds, t, 'slow_pct_after', '.1f')}% after 1 s), p99 "
                     f"{num(rounds, t, 'p99', '.0f')} ms ({num(rounds, t, 'p99_x', '.1f')}× "
                     "healthy)")
            elif kind == "quota":
                c = (f"{num(rounds, t, 'goodput', '.2f')} req/s ok, "
                     f"{num(rounds, t, 'upstream_429_pct', '.1f')}% of "
                     f"{num(rounds, t, 'upstream', '.0f')} upstream requests 429, at most "
                     f"{num(rounds, t, 'max_429_window', '.0f')} in a window")
            elif kind == "ep":
                c = (f"{num(rounds, t, 'success', '.2f')}% ok, ×{num(rounds, t, 'amp', '.3f')} "
                     f"(×{num(rounds, t, 'amp_after', '.3f')} after 1 s)")
                if extra == "ep-drift":
                    c += f", {num(rounds, t, 'drift_pct', '.1f')}% drifted"
            elif kind == "download":
                c = (f"{num(rounds, t, 'mibs', '.0f')} MiB/s, {num(rounds, t, 'cpu_s_gib', '.2f')}"
                     f" s CPU/GiB, {num(rounds, t, 'hwm_mib', '.1f')} MiB VmHWM")
                c = c if t != "direct" else f"{num(rounds, t, 'mibs', '.0f')} MiB/s"
            elif kind == "sse":
                c = (f"p50 {num(rounds, t, 'p50', '.2f')} / p99 {num(rounds, t, 'p99', '.2f')} ms"
                     if t == "direct" else f"{num(rounds, t, 'add_p50', '+.2f')} / "
                     f"{num(rounds, t, 'add_p99', '+.2f')} ms")
            elif kind == "wrk":
                cpu = med(rounds, t, "cpu_us")
                c = f"{med(rounds, t, 'rps'):.0f} req/s"
                if cpu is not None and t != "in-app":
                    c += f", {cpu:.0f} µs CPU"
                if med(rounds, t, "rss_peak") is not None:
                    c += f", {med(rounds, t, 'rss_peak'):.1f} MiB peak"
            elif kind == "slow":
                c = f"{med(rounds, t, 'success'):.0f}% ok after {med(rounds, t, 'p50') / 1000:.1f} s"
            elif extra == "added":
                d50, d99 = diff(rounds, t, "direct", "p50"), diff(rounds, t, "direct", "p99")
                c = f"{d50[0]:+.2f} / {d99[0]:+.2f} ms"
            elif extra == "tail":
                c = (f"p99 {num(rounds, t, 'p99', '.1f')} / p99.9 {num(rounds, t, 'p999', '.0f')} "
                     f"ms, ×{num(rounds, t, 'amp', '.3f')}")
            elif extra == "queue":
                c = (f"{num(rounds, t, 'goodput', '.0f')} req/s ok, p99 "
                     f"{num(rounds, t, 'p99', '.0f')} ms, peak {num(rounds, t, 'peak', '.0f')}")
            else:
                amp = med(rounds, t, "amp")
                c = f"{med(rounds, t, 'success'):.1f}% ok, ×{amp:.{3 if amp < 0.05 else 2}f}"
                if extra == "drifted":
                    c += f", {drift_share(rounds, t)[0]:.1f}% drifted"
                if extra == "keys":
                    c += f", {med(rounds, t, 'keys'):.2f} keys"
                if extra == "breaker" and med(rounds, t, "open_p99") is not None:
                    c += f", open p99 {med(rounds, t, 'open_p99'):.1f} ms under load"
                if extra == "breaker" and med(rounds, t, "probe_p99") is not None:
                    c += f", probe p99 {med(rounds, t, 'probe_p99'):.2f} ms"
                if extra == "window" and med(rounds, t, "in_window_mid") is not None:
                    c += (f", {med(rounds, t, 'in_window'):.0f} in window "
                          f"({med(rounds, t, 'in_window_mid'):.0f} inside)")
            cells.append(c)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    not_run = [f"- {v} was not run: braced rejected its config: `{line}`"
               for v, line in (meta.get("not_run") or {}).items()
               if any(v in SCENARIOS[n][4] for n in raw)]
    lines += [""] + not_run if not_run else []
    lines += ["", "Cells: clean and https = req/s, proxy CPU per request and peak anonymous "
              "RSS; slow = share answered successfully and the time to answer; latency = added "
              "p50 / p99 over direct; tail-2 = p99 / p99.9 and upstream requests per app "
              "request; queue = 2xx answers per second, p99 and the peak concurrency the "
              "upstream saw; others = success as the app sees it and upstream requests per app "
              "request (×), with the share of answers that reached the app with a drifted body, "
              "the Idempotency-Keys a logical request answered 503 first was sent with, the p99 "
              "of braced's answers once its breaker was open (under load, and one at a time), or the upstream requests that "
              "arrived inside an announced 429 window (definitions under each scenario); "
              "download = MiB/s, proxy CPU seconds per GiB and VmHWM; sse = direct's delay "
              "p50 / p99 per event, and the delay each proxy adds to it; ep-503 and ep-drift "
              "= success, upstream requests per app request overall and after the first "
              f"second, and drifted answers; ep-slow = share of answers over {EP_SLOW_CUT} ms, "
              "p99 and p99 over the same target's all-healthy p99; quota = the app's 200 "
              "answers per second, the upstream's 429s in % of its requests, and the most "
              "429s in one quota window; cache-outage = the app's requests answered 200 over "
              "the load and in the outage; cache-burst = upstream requests for one burst; "
              "cache-hit as clean; cache-memory = braced's peak resident set.", ""]
    return lines


def chart_keys(kind, extra):
    """(key, what is measured, unit, which way is better) for each chart."""
    if kind == "wrk":
        keys = [("rps", "requests per second", "", "higher"),
                ("cpu_us", "CPU per request, a hit or proxied" if extra == "cache-hit" else
                 "CPU per proxied request", "µs", "lower")]
        if extra in ("mem", "tls"):
            keys += [("rss_peak", "peak anonymous resident memory (RssAnon)", "MiB", "lower"),
                     ("rss_p99", "p99 of anonymous resident memory (RssAnon)", "MiB", "lower")]
        if extra == "tls":
            keys += [("accepts", "upstream connections (TLS handshakes) per round", "",
                      "lower")]
        return keys
    keys = [("success", "success as the app sees it", "%", "higher"),
            ("amp", "upstream requests per app request", "", "lower")]
    if kind == "slow":
        keys = [("p50", "time to answer (median)", "ms", "lower"),
                ("amp", "upstream requests per app request", "", "lower")]
    if extra == "drifted":
        keys.append(("drift_pct", "answers reaching the app with a drifted body", "%",
                     "lower"))
    if extra == "keys":
        keys.append(("keys", "Idempotency-Keys per logical request answered 503 first", "",
                     "1 is one key per request"))
    if extra == "added":
        keys = [("add50", "p50 latency added to direct's", "ms", "lower"),
                ("add99", "p99 latency added to direct's", "ms", "lower")]
    if extra == "breaker":
        keys += [("open_p99", "p99 latency of open-breaker answers under load", "ms", "lower"),
                 ("probe_p99", "p99 latency, one request at a time after the load", "ms",
                  "lower")]
    if extra == "window":
        keys += [("in_window", "upstream requests inside an announced 429 window", "",
                  "lower"),
                 ("in_window_mid", "upstream requests 10 ms or more inside a 429 window", "",
                  "lower")]
    if extra == "tail":
        keys = [("p50", "p50 latency", "ms", "lower"), ("p99", "p99 latency", "ms", "lower"),
                ("p999", "p99.9 latency", "ms", "lower"),
                ("amp", "upstream requests per app request", "", "lower")]
    if extra == "queue":
        keys = [("goodput", "goodput, 2xx answers per second", "", "higher"),
                ("p99", "p99 latency", "ms", "lower"),
                ("peak", "peak upstream concurrency", "", "lower")]
    return keys


def versions():
    def first(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=5)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    pyv = subprocess.run([PY, "-c", "import httpx, tenacity, importlib.metadata as m; "
                          "print('httpx', httpx.__version__, 'tenacity', m.version('tenacity'))"],
                         capture_output=True, text=True).stdout.strip()
    return "; ".join([first(["haproxy", "-v"]), first(["nginx", "-v"]),
                      first(["wrk", "-v"]), pyv])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True, help="the build tree (build/)")
    ap.add_argument("--out", required=True, help="the report directory to create")
    ap.add_argument("--quick", action="store_true",
                    help="scenarios " + " and ".join(QUICK) + ", 1 s rounds")
    ap.add_argument("--only", help="comma-separated scenarios: " + ", ".join(SCENARIOS) +
                    " (the ep-* and quota* ones, " + " and ".join(CACHE_ONLY_NAMED) +
                    " run only when named here)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=None, help="seconds per target per round")
    ap.add_argument("--download-bytes", type=int, default=DOWNLOAD_BYTES,
                    help=f"download: the body's size (default {DOWNLOAD_BYTES}, 1 GiB)")
    ap.add_argument("--sse-events", type=int, default=SSE_EVENTS,
                    help=f"sse: events per stream (default {SSE_EVENTS})")
    ap.add_argument("--sse-ms", type=int, default=SSE_MS,
                    help=f"sse: milliseconds between events (default {SSE_MS})")
    ap.add_argument("--quota-secs", type=float, default=QUOTA_SECS,
                    help=f"quota scenarios: seconds of load per target (default {QUOTA_SECS}; "
                    "--secs, when given, shortens it)")
    ap.add_argument("--cache-secs", type=float, default=None,
                    help=f"cache-outage: seconds of load per target (default {CACHE_SECS}, "
                    f"{CACHE_QUICK_SECS} with --quick; --secs, when given, shortens it; at least "
                    f"{CACHE_MIN_SECS})")
    ap.add_argument("--braced", metavar="PATH",
                    help="the braced binary to run (default BUILD/daemon/braced)")
    ap.add_argument("--from-raw", metavar="RAW_JSON",
                    help="write the report again from a run's raw.json; runs nothing")
    a = ap.parse_args()
    global BRACED
    BRACED = a.braced
    if a.from_raw:
        with open(a.from_raw) as f:
            saved = json.load(f)
        b = Bench(a, None)
        b.raw = saved["scenarios"]
        os.makedirs(a.out, exist_ok=True)
        say(report(b, a.out, saved["meta"]))
        return 0
    # the endpoint, quota and long cache scenarios run only when named
    default = [n for n in SCENARIOS if SCENARIOS[n][2] not in ("ep", "quota") and
               n not in CACHE_ONLY_NAMED]
    names = a.only.split(",") if a.only else (QUICK if a.quick else default)
    for n in names:
        if n not in SCENARIOS:
            ap.error(f"unknown scenario '{n}'")
    if a.cache_secs is None:
        a.cache_secs = CACHE_QUICK_SECS if a.quick else CACHE_SECS
    if a.secs is not None:
        a.quota_secs = min(a.quota_secs, a.secs)
        a.cache_secs = min(a.cache_secs, a.secs)
    a.cache_secs = max(a.cache_secs, CACHE_MIN_SECS)
    if a.secs is None:
        a.secs = 1 if a.quick else 2
    if a.rounds < 3:
        say("note: fewer than 3 rounds; medians are weak")
    os.makedirs(a.out, exist_ok=True)
    t0 = time.monotonic()
    meta = {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "cores": os.cpu_count(), "rounds": a.rounds, "secs": a.secs,
            "versions": versions(), "scenarios": names}
    if "download" in names:
        meta["download_bytes"] = a.download_bytes
    if "sse" in names:
        meta["sse_events"], meta["sse_ms"] = a.sse_events, a.sse_ms
    if any(SCENARIOS[n][2] == "quota" for n in names):
        meta["quota_secs"] = a.quota_secs
    if "cache-outage" in names:
        meta["cache_secs"] = a.cache_secs
    if any(n.startswith("cache-") for n in names):
        meta["braced"] = braced_bin(a.build)
    say(f"versions: {meta['versions']}")
    with tempfile.TemporaryDirectory(prefix="braced-bench-") as tmp:
        b = Bench(a, tmp)
        try:
            if any(v in SCENARIOS[n][4] for n in names for v in VARIANTS):
                b.rejected = meta["not_run"] = probe_variants(a.build, tmp)
            if any("braced+cache" in SCENARIOS[n][4] for n in names):
                line = probe_cache(a.build, tmp)
                if line:
                    b.rejected["braced+cache"] = line
                    meta["not_run"] = b.rejected
            for n in names:
                b.scenario(n)
        except Exception:
            b.procs.stop_all()
            for f in sorted(os.listdir(tmp)):
                if f.endswith(".log"):
                    say(f"--- {f}")
                    with open(os.path.join(tmp, f), errors="replace") as fh:
                        say(fh.read()[-1500:])
            raise
        finally:
            b.procs.stop_all()
        meta["seconds"] = round(time.monotonic() - t0, 1)
        text = report(b, a.out, meta)
    say("\n" + text)
    say(f"\nreport: {a.out}/report.md ({meta['seconds']} s)")
    # A target that answered nothing means the harness, not the target, broke;
    # a streaming scenario's target that failed with an error line is its
    # figure (braced holds answers whole), unless it is direct.
    empty = [f"{n}/{t}" for n, rounds in b.raw.items() for r in rounds for t in r
             if r[t]["n"] == 0 and (not r[t].get("error") or t == "direct")]
    if empty:
        say("no answers at all from: " + ", ".join(sorted(set(empty))))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
