#!/usr/bin/python3
"""braced against the tools people use today, under faults, on loopback.

Targets, each in front of its own copy of the same fault-injecting C upstream
(tests/bench/fixed_upstream.c, so counters never mix): direct; braced with
the default policy; braced with the weather response schema in enforce mode;
HAProxy and nginx configured as close to braced's policy as they get; and the
in-app recipe (httpx + tenacity, run in-process by tests/bench/loadgen.py).

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
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

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

# name: (title, upstream mode query, load, what the extra column reports)
SCENARIOS = {
    "clean": ("clean upstream (wrk -t2 -c64 keep-alive; in-app: 64 coroutines)", "", "wrk", None),
    "503-20": ("20% random 503", "s503=20", "closed", None),
    "503-100": ("100% 503 for the whole run", "s503=100", "closed", None),
    "reset-5": ("5% connection resets", "reset=5", "closed", None),
    "slow": ("upstream slower than the per-try timeout (5 s delay, 4 requests per target)",
             "delay=5000", "slow", None),
    "429-30": ("429 with Retry-After: 1 on 30%", "s429=30", "closed", None),
    "drift-10": ("10% of 200 answers drifted from the weather schema", "drift=10", "closed",
                 "drifted"),
    "post": ("POST: 20% of logical requests answered 503, then 200 to a retry", "post=20", "post",
             "keys"),
    "latency": ("added latency at a fixed 200 req/s", "", "rate", "added"),
}
QUICK = ["clean", "503-20"]
# Not a proxy: libcurl's multi interface alone (tests/bench/curl_floor.c) as
# a client of the clean upstream, run in each round of the wrk scenario.
FLOOR = "curl-multi floor"


def say(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, secs=10):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


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


def start_upstream(procs, build, name):
    p = procs.start(f"upstream-{name}", [f"{build}/tests/bench/fixed_upstream", "0"],
                    stdout=subprocess.PIPE)
    port = int(p.stdout.readline())
    wait_port(port, p)
    return p, port


def start_braced(procs, build, tmp, name, up_port, schema):
    conf = os.path.join(tmp, f"{name}.yaml")
    route = ""
    if schema:
        route = "    routes:\n      - match: GET /v1/weather\n" + WEATHER_SCHEMA
    with open(conf, "w") as f:
        # The default policy (pool.max_idle never closes busy connections).
        f.write(f"""listen: 127.0.0.1:0
admin: off
log: {{format: json, level: warn, access: false}}
profiles:
  bench:
    upstream: http://127.0.0.1:{up_port}
{route}""")
    log = os.path.join(tmp, f"{name}.log")
    open(log, "w").close()
    p = procs.start(name, [f"{build}/daemon/braced", "-c", conf])
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


def start_haproxy(procs, tmp, up_port):
    port = free_port()
    conf = os.path.join(tmp, "haproxy.cfg")
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
    option http-buffer-request
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{up_port} maxconn 100
""")
    p = procs.start("haproxy", ["haproxy", "-db", "-f", conf])
    wait_port(port, p)
    return p, port


def start_nginx(procs, tmp, up_port):
    port = free_port()
    d = os.path.join(tmp, "nginx")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    # One server listed four times: nginx tries each peer at most once, so
    # four entries give four attempts; max_fails=0 never marks it down.
    servers = f"        server 127.0.0.1:{up_port} max_fails=0;\n" * 4
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
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 2s;
            proxy_read_timeout 4s;
            proxy_send_timeout 2s;
            proxy_next_upstream error timeout http_429 http_500 http_502 http_503 http_504;
            proxy_next_upstream_tries 4;
        }}
    }}
}}
""")
    p = procs.start("nginx", ["nginx", "-p", d, "-e", f"{d}/error.log", "-c", conf])
    wait_port(port, p)
    return p, port


def http_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


class Bench:
    def __init__(self, args, tmp):
        self.a = args
        self.tmp = tmp
        self.procs = Procs(tmp)
        self.up = {}  # target -> upstream port
        self.proxy = {}  # target -> (proc, port)
        self.raw = {}

    def start_upstreams(self):
        for t in TARGETS:
            _, self.up[t] = start_upstream(self.procs, self.a.build, t)

    def start_proxies(self):
        b, tmp = self.a.build, self.tmp
        self.proxy["braced"] = start_braced(self.procs, b, tmp, "braced", self.up["braced"], False)
        self.proxy["braced+schema"] = start_braced(self.procs, b, tmp, "braced-schema",
                                                   self.up["braced+schema"], True)
        self.proxy["haproxy"] = start_haproxy(self.procs, tmp, self.up["haproxy"])
        self.proxy["nginx"] = start_nginx(self.procs, tmp, self.up["nginx"])

    def stop_proxies(self):
        for p, _ in self.proxy.values():
            self.procs.stop(p)
        self.proxy = {}

    def base_url(self, t):
        if t in ("direct", "in-app"):
            return f"http://127.0.0.1:{self.up[t]}"
        port = self.proxy[t][1]
        return f"http://127.0.0.1:{port}/bench" if t.startswith("braced") else \
            f"http://127.0.0.1:{port}"

    def pid(self, t):
        return self.proxy[t][0].pid if t in self.proxy else 0

    def set_mode(self, t, q):
        http_get(self.up[t], "/__mode?" + q)

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
        return {"n": r["n"], "success": 100.0 * ok / n, "p50": pct(lat, 50), "p99": pct(lat, 99),
                "max": lat[-1], "rps": r["n"] / r["elapsed"], "cpu_us": cpu,
                "statuses": r["statuses"], "drifted": r["drifted"]}

    def run_wrk(self, t):
        url = self.base_url(t) + "/v1/weather?city=Paris"
        argv = ["wrk", "-t2", "-c64", f"-d{self.a.secs}s", "--latency", url]
        say("$ " + " ".join(argv))
        before = cpu_ticks(self.pid(t))
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout
        after = cpu_ticks(self.pid(t))
        for line in out.splitlines():
            say("    " + line)
        w = parse_wrk(out)
        n = max(w["requests"], 1)
        return {"n": w["requests"], "success": 100.0 * (n - w["errors"]) / n, "p50": w["p50"],
                "p99": w["p99"], "max": w["max"], "rps": w["rps"],
                "cpu_us": None if t == "direct" else (after - before) * 1e6 / HZ / n,
                "statuses": {"non2xx_or_error": w["errors"]}, "drifted": 0}

    def scenario(self, name):
        title, mode, kind, _ = SCENARIOS[name]
        say(f"\n== scenario {name}: {title}")
        self.start_proxies()
        rounds = []
        try:
            for i in range(self.a.rounds):
                order = TARGETS[i % len(TARGETS):] + TARGETS[:i % len(TARGETS)]
                say(f"-- round {i + 1}/{self.a.rounds}, order: {', '.join(order)}")
                res = {}
                if kind == "slow":
                    res = self.slow_round(mode)
                else:
                    for t in order:
                        self.set_mode(t, mode)
                        if kind == "wrk" and t != "in-app":
                            res[t] = self.run_wrk(t)
                        else:
                            res[t] = self.run_loadgen(t, kind)
                        self.add_upstream(t, res[t])
                    if kind == "wrk":
                        self.floor_round(res)
                for t in TARGETS:
                    say(f"   {t}: {json.dumps(res[t])}")
                rounds.append(res)
        finally:
            self.stop_proxies()
        self.raw[name] = rounds

    def floor_round(self, res):
        """res[FLOOR]: curl multi alone, 64 transfers in flight to direct's
        upstream (idle by now), its own CPU per request after a warm-up."""
        self.set_mode("direct", "")
        url = self.base_url("direct") + "/v1/weather?city=Paris"
        secs = max(1, round(self.a.secs))
        argv = [f"{self.a.build}/tests/bench/curl_floor", url, "--concurrency", "64",
                "--secs", str(secs)]
        say("$ " + " ".join(argv))
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60 + secs)
        say("    " + out.stdout.strip())
        f = dict(kv.split("=", 1) for kv in out.stdout.split())
        n = int(f["requests"])
        res[FLOOR] = {"n": n, "rps": n / secs, "cpu_us": float(f["cpu_us_per_request"]),
                      "failed": int(f["failed"])}

    def add_upstream(self, t, f):
        s = http_get(self.up[t], "/__stats")
        f["upstream"] = s
        f["amp"] = s["requests"] / f["n"] if f["n"] else 0
        f["keys"] = s["pairs"] / s["ids"] if s["ids"] else 0

    def slow_round(self, mode):
        for t in TARGETS:
            self.set_mode(t, mode)
        running = {}
        for t in TARGETS:
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
        a, b = r[t].get(key), r[base].get(key)
        if a is not None and b:
            vals.append(a / b)
    return agg(vals)


def diff(rounds, t, base, key):
    return agg([r[t][key] - r[base][key] for r in rounds])


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
    lines += summary(bench.raw)
    charts = []
    for name, rounds in bench.raw.items():
        title, _, kind, extra = SCENARIOS[name]
        lines += [f"## {name}: {title}", ""]
        head = ["target", "success %", "p50 ms", "p99 ms", "max ms", "req/s", "CPU µs/req",
                "amplification"]
        if kind == "wrk":
            head += ["req/s ÷ direct", "CPU ÷ haproxy"]
        if extra == "drifted":
            head += ["drifted answers reaching the app", "in % of answers"]
        if extra == "keys":
            head += ["distinct Idempotency-Keys per logical request answered 503 first"]
        if extra == "added":
            head += ["added p50 ms vs direct", "added p99 ms vs direct"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in TARGETS:
            row = [t, fmt(summarize(rounds, t, "success")), fmt(summarize(rounds, t, "p50"), 2),
                   fmt(summarize(rounds, t, "p99"), 2), fmt(summarize(rounds, t, "max"), 1),
                   fmt(summarize(rounds, t, "rps"), 0), fmt(summarize(rounds, t, "cpu_us")),
                   fmt(summarize(rounds, t, "amp"), 3)]
            if kind == "wrk":
                # in-app's CPU includes its load generator: no ratio to a proxy
                row += [fmt(ratio(rounds, t, "direct", "rps"), 2),
                        "—" if t == "in-app" else fmt(ratio(rounds, t, "haproxy", "cpu_us"), 2)]
            if extra == "drifted":
                row += [fmt(summarize(rounds, t, "drifted"), 0), fmt(drift_share(rounds, t), 2)]
            if extra == "keys":
                row += [fmt(summarize(rounds, t, "keys"), 2)]
            if extra == "added":
                row += [fmt(diff(rounds, t, "direct", "p50"), 2),
                        fmt(diff(rounds, t, "direct", "p99"), 2)]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        if kind == "wrk":
            lines += floor_lines(rounds)
        for key, label in chart_keys(kind, extra):
            fname = f"{name}-{key}.svg"
            vals = [(t, summarize(rounds, t, key) if key not in ("add50", "add99") else
                     diff(rounds, t, "direct", "p50" if key == "add50" else "p99"))
                    for t in TARGETS]
            if key == "drift_pct":
                vals = [(t, drift_share(rounds, t)) for t in TARGETS]
            if key == "cpu_us":  # in-app's figure is the whole client process
                vals = [(t, None if t == "in-app" else v) for t, v in vals]
            with open(os.path.join(outdir, fname), "w") as f:
                f.write(svg_bars(f"{name}: {label}", vals))
            charts.append(fname)
            lines.append(f"![{name} {label}]({fname})")
        lines.append("")
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(outdir, "raw.json"), "w") as f:
        json.dump({"meta": meta, "scenarios": bench.raw}, f, indent=1)
    return "\n".join(lines)


def floor_lines(rounds):
    """The curl-multi floor beside the proxies of the same rounds."""
    rounds = [r for r in rounds if FLOOR in r]
    if not rounds:
        return []
    return ["libcurl's multi interface alone (`tests/bench/curl_floor`, 64 keep-alive "
            "transfers in flight, a fresh easy handle per transfer as braced uses on "
            "libcurl < 8.1.0) against the same upstream, in the same rounds: a client "
            "only, so braced's CPU minus it is what braced adds on top of libcurl.", "",
            "| target | req/s | CPU µs/req | CPU ÷ haproxy | braced CPU µs/req − floor |",
            "|---|---|---|---|---|",
            f"| {FLOOR} | {fmt(summarize(rounds, FLOOR, 'rps'), 0)} | "
            f"{fmt(summarize(rounds, FLOOR, 'cpu_us'))} | "
            f"{fmt(ratio(rounds, FLOOR, 'haproxy', 'cpu_us'), 2)} | "
            f"{fmt(agg([r['braced']['cpu_us'] - r[FLOOR]['cpu_us'] for r in rounds]))} |", ""]


def drift_share(rounds, t):
    """Drifted answers that reached the app, in % of the app's answers."""
    return agg([100.0 * r[t]["drifted"] / r[t]["n"] for r in rounds if r[t]["n"]])


def summary(raw):
    """One row per scenario, one column per target, medians only."""
    def med(rounds, t, key):
        a = summarize(rounds, t, key)
        return a[0] if a else None

    lines = ["## Summary (medians; the sections below have min–max and more)", "",
             "| scenario | " + " | ".join(TARGETS) + " |", "|" + "---|" * (len(TARGETS) + 1)]
    for name, rounds in raw.items():
        _, _, kind, extra = SCENARIOS[name]
        cells = []
        for t in TARGETS:
            if kind == "wrk":
                cpu = med(rounds, t, "cpu_us")
                c = f"{med(rounds, t, 'rps'):.0f} req/s"
                if cpu is not None and t != "in-app":
                    c += f", {cpu:.0f} µs CPU"
            elif kind == "slow":
                c = f"{med(rounds, t, 'success'):.0f}% ok after {med(rounds, t, 'p50') / 1000:.1f} s"
            elif extra == "added":
                d50, d99 = diff(rounds, t, "direct", "p50"), diff(rounds, t, "direct", "p99")
                c = f"{d50[0]:+.2f} / {d99[0]:+.2f} ms"
            else:
                amp = med(rounds, t, "amp")
                c = f"{med(rounds, t, 'success'):.1f}% ok, ×{amp:.{3 if amp < 0.05 else 2}f}"
                if extra == "drifted":
                    c += f", {drift_share(rounds, t)[0]:.1f}% drifted"
                if extra == "keys":
                    c += f", {med(rounds, t, 'keys'):.2f} keys"
            cells.append(c)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Cells: clean = req/s and proxy CPU per request; slow = share answered "
              "successfully and the time to answer; latency = added p50 / p99 over direct; "
              "others = success as the app sees it and upstream requests per app request "
              "(×), with the share of answers that reached the app with a drifted body, or "
              "the Idempotency-Keys a logical request answered 503 first was sent with.", ""]
    return lines


def chart_keys(kind, extra):
    if kind == "wrk":
        return [("rps", "req/s"), ("cpu_us", "CPU µs per request")]
    keys = [("success", "success % as the app sees it"), ("amp", "upstream requests per app request")]
    if kind == "slow":
        keys = [("p50", "time to answer, ms (median)"), ("amp", "upstream requests per app request")]
    if extra == "drifted":
        keys.append(("drift_pct", "% of answers reaching the app with a drifted body"))
    if extra == "keys":
        keys.append(("keys", "Idempotency-Keys per logical request answered 503 first"))
    if extra == "added":
        keys = [("add50", "added p50 latency vs direct, ms"),
                ("add99", "added p99 latency vs direct, ms")]
    return keys


def svg_bars(title, vals):
    """A horizontal bar per target: the median, with a min–max whisker."""
    w, left, bar, gap, top = 640, 120, 22, 8, 36
    h = top + len(vals) * (bar + gap) + 10
    vmax = max([a[2] for _, a in vals if a] + [1e-9])
    scale = (w - left - 90) / vmax if vmax > 0 else 0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="8" y="20" font-size="14" font-weight="bold">{esc(title)}</text>']
    for i, (t, a) in enumerate(vals):
        y = top + i * (bar + gap)
        out.append(f'<text x="{left - 6}" y="{y + bar * 0.7}" text-anchor="end">{esc(t)}</text>')
        if not a:
            out.append(f'<text x="{left + 4}" y="{y + bar * 0.7}" fill="#777">n/a</text>')
            continue
        med, lo, hi = (max(0.0, v) for v in a)
        color = "#2b7bb9" if t.startswith("braced") else "#999999"
        out.append(f'<rect x="{left}" y="{y}" width="{med * scale:.1f}" height="{bar}" '
                   f'fill="{color}"/>')
        cy = y + bar / 2
        out.append(f'<line x1="{left + lo * scale:.1f}" x2="{left + hi * scale:.1f}" y1="{cy}" '
                   f'y2="{cy}" stroke="black"/>')
        out.append(f'<text x="{left + max(med, hi) * scale + 6:.1f}" y="{y + bar * 0.7}">'
                   f'{label(a[0])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def label(v):
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
    ap.add_argument("--only", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=None, help="seconds per target per round")
    ap.add_argument("--from-raw", metavar="RAW_JSON",
                    help="write the report again from a run's raw.json; runs nothing")
    a = ap.parse_args()
    if a.from_raw:
        with open(a.from_raw) as f:
            saved = json.load(f)
        b = Bench(a, None)
        b.raw = saved["scenarios"]
        os.makedirs(a.out, exist_ok=True)
        say(report(b, a.out, saved["meta"]))
        return 0
    names = a.only.split(",") if a.only else (QUICK if a.quick else list(SCENARIOS))
    for n in names:
        if n not in SCENARIOS:
            ap.error(f"unknown scenario '{n}'")
    if a.secs is None:
        a.secs = 1 if a.quick else 2
    if a.rounds < 3:
        say("note: fewer than 3 rounds; medians are weak")
    os.makedirs(a.out, exist_ok=True)
    t0 = time.monotonic()
    meta = {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "cores": os.cpu_count(), "rounds": a.rounds, "secs": a.secs,
            "versions": versions(), "scenarios": names}
    say(f"versions: {meta['versions']}")
    with tempfile.TemporaryDirectory(prefix="braced-bench-") as tmp:
        b = Bench(a, tmp)
        try:
            b.start_upstreams()
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
    # A target that answered nothing means the harness, not the target, broke.
    empty = [f"{n}/{t}" for n, rounds in b.raw.items() for r in rounds for t in TARGETS
             if r[t]["n"] == 0]
    if empty:
        say("no answers at all from: " + ", ".join(sorted(set(empty))))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
