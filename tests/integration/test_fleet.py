"""Fleet mode (SPEC 4.9): three braced instances share cool-downs, breaker
state and the retry budget through a real redis-server (Debian's), each test
with its own server on a unix socket, started and stopped by PID. Redis away,
killed or silent never fails a request nor delays one beyond fleet.timeout."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (START_TIMEOUT, Braced, BracedTestCase, UpstreamProcess, fault, make_config,
                     merge, request, stop_process, wait_until)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def resp_command(sock_path, *args, timeout=5):
    """One RESP command on a fresh unix connection; the raw reply bytes (first line and any bulk)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(out)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def received_chunks(sock, stopped):
    """What sock (with a timeout) receives, chunk by chunk, until it closes,
    fails, or stopped() says so between reads."""
    while not stopped():
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        if not chunk:
            return
        yield chunk


class RedisProcess:
    """redis-server on a unix socket in a private directory, no persistence;
    `extra`: more command-line configuration (e.g. an ACL user)."""

    def __init__(self, password=None, extra=()):
        self.dir = tempfile.mkdtemp(prefix="braced-redis-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.password = password
        self.extra = list(extra)
        self.proc = None

    def start(self):
        args = [REDIS_SERVER, "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no", "--dir", self.dir]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra
        self.err = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.err,
                                     stderr=self.err, cwd=self.dir)

        def ready():
            try:
                reply = resp_command(self.sock, "PING", timeout=1)
            except OSError:
                return False
            return reply.startswith((b"+PONG", b"-NOAUTH"))
        if not wait_until(ready, START_TIMEOUT):
            self.stop()
            raise AssertionError("redis-server did not answer PING in time")
        return self

    def kill(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None
            self.err.close()

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, 5)
            self.proc = None
            self.err.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class SilentRedis:
    """A unix socket server that accepts and reads, and never answers."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="braced-silent-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.sock)
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            c.setblocking(False)
            self.conns.append(c)
            for c in list(self.conns):
                try:
                    c.recv(65536)
                except OSError:
                    pass

    def cleanup(self):
        self.stopping = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.srv.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class HostileRedis:
    """A unix socket server that speaks just enough RESP: SUBSCRIBE is
    confirmed, PING answered +PONG, and every other command gets `reply`
    (bytes, possibly hostile, or a function of the command's arguments
    returning them); `extra` follows the PONG unasked, `push` the
    SUBSCRIBE's confirmation. Counts the connections it accepted."""

    def __init__(self, reply=b"$-1\r\n", extra=b"", push=b""):
        self.dir = tempfile.mkdtemp(prefix="braced-hostile-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.reply, self.extra, self.push = reply, extra, push
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.sock)
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.stopping = False
        self.accepted = 0
        self.threads = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            self.accepted += 1
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _command(buf):
        """(args, rest) of the first complete RESP command in buf, or (None, buf)."""
        if b"\r\n" not in buf:
            return None, buf
        head, rest = buf.split(b"\r\n", 1)
        args = []
        for _ in range(int(head[1:])):
            if b"\r\n" not in rest:
                return None, buf
            line, after = rest.split(b"\r\n", 1)
            n = int(line[1:])
            if len(after) < n + 2:
                return None, buf
            args.append(after[:n])
            rest = after[n + 2:]
        return args, rest

    def _serve(self, c):
        c.settimeout(0.2)
        buf = b""
        with c:
            for chunk in received_chunks(c, lambda: self.stopping):
                buf += chunk
                while True:
                    args, buf = self._command(buf)
                    if args is None:
                        break
                    name = args[0].upper()
                    try:
                        if name == b"SUBSCRIBE":
                            ch = args[1]
                            c.sendall(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(ch), ch)
                                      + self.push)
                        elif name == b"PING":
                            c.sendall(b"+PONG\r\n" + self.extra)
                        else:
                            c.sendall(self.reply(args) if callable(self.reply) else self.reply)
                    except OSError:
                        return

    def cleanup(self):
        self.stopping = True
        self.thread.join(5)
        for t in self.threads:
            t.join(5)
        self.srv.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def fnv1a64(text):
    h = 0xcbf29ce484222325
    for c in text.encode():
        h = ((h ^ c) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def profile_id(name, url):
    return f"{name}:{fnv1a64(url):016x}"


def metric(b, name):
    """The value of an unlabelled (or exactly labelled) metric line of b's /metrics."""
    body = request(b.admin_port, "GET", "/metrics", timeout=5).body.decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


class FleetTestCase(BracedTestCase):

    def setUp(self):
        super().setUp()
        self.redis = None
        self.started = []

    def tearDown(self):
        for b in reversed(self.started):
            b.__exit__(None, None, None)
        if self.redis is not None:
            self.redis.cleanup()

    def fleet_config(self, sock, instance, fleet=None, profile=None, **top):
        # 250 ms: a loaded test machine can stall a call past the default
        # 50 ms, and a flap would drop what a test shares at that moment.
        fl = merge({"redis": f"unix:{sock}", "timeout": "250ms", "sync_interval": "100ms"}, fleet)
        prof = merge({"upstream": self.upstream.url("/base"),
                      "headers": {"X-Instance": str(instance)}}, profile)
        return make_config({"demo": prof}, admin="127.0.0.1:0", fleet=fl, **top)

    def start_fleet(self, sock, n=3, wait_up=True, **kw):
        out = []
        for i in range(1, n + 1):
            b = Braced(self.fleet_config(sock, i, **kw))
            b.__enter__()
            self.started.append(b)
            out.append(b)
        if wait_up:
            for b in out:
                self.assertTrue(wait_until(lambda: metric(b, "braced_fleet_up") == 1, START_TIMEOUT),
                                "fleet never up:\n" + b.log())
        return out

    def instance_of(self, entry):
        for n, v in entry["headers"]:
            if n.lower() == "x-instance":
                return int(v)
        return None


class FleetTest(FleetTestCase):

    def test_a_429_on_one_instance_silences_the_others_for_the_window(self):
        self.redis = RedisProcess().start()
        b1, b2, b3 = self.start_fleet(self.redis.sock, defaults={
            "retry": {"attempts": 1}, "timeouts": {"total": "1s"}})
        r = b1.get("/demo/x", fault(status=429, headers={"Retry-After": "2"}))
        self.assertEqual(r.status, 429, r)
        t429 = time.monotonic()
        # The window travels through Redis (a script, then a message): allow
        # it a moment, far less than the window, before asking the others.
        time.sleep(0.05)
        answers = []
        while time.monotonic() < t429 + 1.5:
            for b in (b2, b3):
                answers.append(b.get("/demo/y").status)
            time.sleep(0.05)
        got = self.upstream.received()
        t0 = got[0]["t"]
        self.assertEqual(self.instance_of(got[0]), 1)
        # Inside the window (ms rounding aside) nothing from instances 2 and 3;
        # requests that could wait for its end were sent when it ended.
        inside = [(round(e["t"] - t0, 3), self.instance_of(e)) for e in got[1:]
                  if e["t"] < t0 + 2.0 - 0.01]
        self.assertEqual(inside, [])
        self.assertIn(429, answers)
        # The window ends: sending resumes on every instance.
        time.sleep(max(0, t429 + 2.2 - time.monotonic()))
        for b in (b1, b2, b3):
            self.assertEqual(b.get("/demo/z").status, 200)

    def test_an_instance_that_starts_later_reads_the_window(self):
        self.redis = RedisProcess().start()
        (b1,) = self.start_fleet(self.redis.sock, n=1, defaults={
            "retry": {"attempts": 1}, "timeouts": {"total": "1s"}})
        self.assertEqual(b1.get("/demo/x", fault(status=429, headers={"Retry-After": "3"})).status, 429)
        b2 = Braced(self.fleet_config(self.redis.sock, 2, defaults={
            "retry": {"attempts": 1}, "timeouts": {"total": "1s"}}))
        b2.__enter__()
        self.started.append(b2)
        self.assertTrue(wait_until(lambda: metric(b2, "braced_fleet_up") == 1, START_TIMEOUT))
        time.sleep(0.2)
        self.assertEqual(b2.get("/demo/y").status, 429)
        self.assertEqual(len(self.upstream.received()), 1)

    def test_outage_probes_fleet_wide_at_most_half_open_probes_per_open_for(self):
        self.redis = RedisProcess().start()
        breaker = {"min_requests": 5, "window": "10s", "failure_ratio": 0.5, "open_for": "1s",
                   "half_open_probes": 1}
        bs = self.start_fleet(self.redis.sock, defaults={
            "retry": {"attempts": 1}, "circuit_breaker": breaker})
        self.upstream.set_default({"status": 503})

        def load(b, until):
            n = 0
            while time.monotonic() < until and n < 2000:
                b.get("/demo/o", timeout=5)
                n += 1
                time.sleep(0.01)
        # Phase 1: the breakers open.
        for t in [threading.Thread(target=load, args=(b, time.monotonic() + 0.8)) for b in bs]:
            t.start()
            t.join(30)
        start = time.monotonic()
        duration = 4.0
        threads = [threading.Thread(target=load, args=(b, start + duration)) for b in bs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        probes = [e for e in self.upstream.received() if start <= e["t"] < start + duration]
        # One probe per open_for for the whole fleet, plus one period of slack at the edges.
        self.assertLessEqual(len(probes), duration / 1.0 + 1,
                             [(round(e["t"] - start, 3), self.instance_of(e)) for e in probes])
        self.assertGreater(len(probes), 0)

    def test_breaker_close_is_shared(self):
        self.redis = RedisProcess().start()
        breaker = {"min_requests": 3, "window": "10s", "failure_ratio": 0.5, "open_for": "1s",
                   "half_open_probes": 1}
        b1, b2 = self.start_fleet(self.redis.sock, n=2, defaults={
            "retry": {"attempts": 1}, "circuit_breaker": breaker})
        for _ in range(3):
            b1.get("/demo/fail", fault(status=503))
        # b2 opened too without sending anything.
        self.assertTrue(wait_until(lambda: request(b2.admin_port, "GET", "/status").json()
                                   ["profiles"]["demo"]["breaker"]["state"] == "open", 2))
        self.assertEqual(b2.get("/demo/x").status, 503)
        self.assertEqual(len(self.upstream.received()), 3)
        # After open_for one instance probes; its success closes both.
        time.sleep(1.1)

        def closed_everywhere():
            for b in (b1, b2):
                b.get("/demo/ok")
            return all(request(b.admin_port, "GET", "/status").json()
                       ["profiles"]["demo"]["breaker"]["state"] == "closed" for b in (b1, b2))
        self.assertTrue(wait_until(closed_everywhere, 5, step=0.1))

    def test_fleet_retries_stay_within_the_budget_formula(self):
        self.redis = RedisProcess().start()
        budget = {"ratio": 0.2, "min_per_second": 1, "window": "10s"}
        retry = {"attempts": 5, "backoff": {"base": "1ms", "max": "2ms"}, "budget": budget}
        bs = self.start_fleet(self.redis.sock, defaults={
            "retry": retry, "circuit_breaker": {"enabled": False}})
        self.upstream.set_default({"status": 503})
        per_instance = 30

        def load(b):
            for _ in range(per_instance):
                b.get("/demo/r", timeout=10)
                time.sleep(0.03)
        threads = [threading.Thread(target=load, args=(b,)) for b in bs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        requests = per_instance * len(bs)
        retries = len(self.upstream.received()) - requests
        fleet_allowance = 0.2 * requests + 1 * 10
        per_instance_allowance = len(bs) * (0.2 * per_instance + 1 * 10)
        # At most one sync interval of slack: a few retries per instance.
        self.assertLessEqual(retries, fleet_allowance + 2 * len(bs),
                             f"{retries} retries for {requests} requests")
        self.assertLess(retries, per_instance_allowance)

    def test_killing_redis_fails_nothing_and_sharing_resumes(self):
        self.redis = RedisProcess().start()
        b1, b2, b3 = self.start_fleet(self.redis.sock, defaults={
            "retry": {"attempts": 1}, "timeouts": {"total": "1s"}})
        baseline = []
        for _ in range(20):
            t = time.monotonic()
            self.assertEqual(b1.get("/demo/base").status, 200)
            baseline.append(time.monotonic() - t)
        results = []

        def load(b):
            end = time.monotonic() + 3
            n = 0
            while time.monotonic() < end and n < 1000:
                t = time.monotonic()
                r = b.get("/demo/k", timeout=10)
                results.append((r.status, time.monotonic() - t))
                n += 1
                time.sleep(0.01)
        threads = [threading.Thread(target=load, args=(b,)) for b in (b1, b2, b3)]
        for t in threads:
            t.start()
        time.sleep(1)
        self.redis.kill()
        time.sleep(1)
        self.redis.start()
        for t in threads:
            t.join(60)
        self.assertTrue(results)
        self.assertEqual({s for s, _ in results}, {200})
        # No latency step: the slowest request within fleet.timeout and a generous margin.
        self.assertLess(max(d for _, d in results), max(baseline) + 0.25 + 0.5)
        for b in (b1, b2, b3):
            self.assertTrue(wait_until(lambda: metric(b, "braced_fleet_up") == 1, 15),
                            "fleet not back:\n" + b.log())
            # Logged once per change of state, never per request.
            lines = [l.get("msg", "") for l in b.log_lines()]
            downs = lines.count("fleet: Redis unavailable, local state decides")
            ups = lines.count("fleet: sharing state through Redis")
            self.assertGreaterEqual(downs, 1, b.log())
            self.assertEqual(ups, downs + 1, b.log())
            self.assertLess(downs, 5, b.log())
        # Sharing resumed.
        self.upstream.reset()
        self.assertEqual(b1.get("/demo/x", fault(status=429, headers={"Retry-After": "2"})).status, 429)
        time.sleep(0.1)
        self.assertEqual(b2.get("/demo/y").status, 429)
        self.assertEqual(len(self.upstream.received()), 1)

    def test_an_idle_instance_does_not_wake_up(self):
        self.redis = RedisProcess().start()
        # 50 ms: a timer checking calls every timeout/4 would wake 80 times a second.
        b1, b2 = self.start_fleet(self.redis.sock, n=2, fleet={"timeout": "50ms"})
        self.assertEqual(b1.get("/demo/x").status, 200)
        time.sleep(0.5)

        def switches():
            with open(f"/proc/{b1.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        return int(line.split()[1])
        before, t = switches(), time.monotonic()
        time.sleep(3)
        woke, took = switches() - before, time.monotonic() - t
        # Generous: an idle instance has no timer to serve (0 here); the bound
        # only catches a periodic one.
        self.assertLess(woke / took, 30, f"{woke} wake-ups in {took:.1f} s")
        self.assertEqual(metric(b1, "braced_fleet_up"), 1)
        # Waking up, it reads the fleet's budget totals at once: b2's requests
        # while b1 slept are in them.
        for _ in range(20):
            self.assertEqual(b2.get("/demo/y").status, 200)
        time.sleep(0.3)  # b2's last counts: pushed one sync interval later
        self.assertEqual(b1.get("/demo/z").status, 200)

        def fleet_requests():
            budget = request(b1.admin_port, "GET", "/status").json()["profiles"]["demo"]["fleet"]["budget"]
            return budget["requests"] if budget else 0
        self.assertTrue(wait_until(lambda: fleet_requests() >= 21, 5), fleet_requests())

    def test_a_silent_redis_adds_at_most_the_timeout(self):
        silent = SilentRedis()
        self.addCleanup(silent.cleanup)
        (b,) = self.start_fleet(silent.sock, n=1, wait_up=False, fleet={"timeout": "50ms"})
        durations = []
        end = time.monotonic() + 2
        while time.monotonic() < end:
            t = time.monotonic()
            self.assertEqual(b.get("/demo/s").status, 200)
            durations.append(time.monotonic() - t)
            time.sleep(0.01)
        self.assertLess(max(durations), 0.05 + 0.5, max(durations))
        self.assertEqual(metric(b, "braced_fleet_up"), 0)
        body = request(b.admin_port, "GET", "/metrics").body.decode()
        self.assertIn('braced_fleet_errors_total{op="timeout"}', body)
        timeouts = [l for l in body.splitlines() if l.startswith('braced_fleet_errors_total{op="timeout"}')]
        self.assertGreater(float(timeouts[0].split()[-1]), 0, body)
        downs = [l for l in b.log_lines() if l.get("msg", "").startswith("fleet: Redis unavailable")]
        self.assertEqual(len(downs), 1, b.log())

    def test_hostile_messages_are_dropped_and_windows_capped(self):
        self.redis = RedisProcess().start()
        (b,) = self.start_fleet(self.redis.sock, n=1, defaults={
            "retry": {"attempts": 1, "retry_after": {"max": "3s"}}, "timeouts": {"total": "1s"}})
        pid = profile_id("demo", self.upstream.url("/base"))
        for junk in (b"", b"\x00" * 300, b"braced1 cooldown zz " + pid.encode() + b" 1",
                     b"braced1 open 0123456789abcdef " + pid.encode() + b" -1"):
            resp_command(self.redis.sock, "PUBLISH", "braced:events", junk)

        def bad_messages():
            body = request(b.admin_port, "GET", "/metrics").body.decode()
            return [float(l.split()[-1]) for l in body.splitlines()
                    if l.startswith('braced_fleet_errors_total{op="message"}')][0]
        self.assertTrue(wait_until(lambda: bad_messages() == 4, 5), bad_messages())
        # A well-formed window a year away is held to retry_after.max.
        far = int(time.time() * 1000) + 365 * 86400 * 1000
        resp_command(self.redis.sock, "PUBLISH", "braced:events",
                     f"braced1 cooldown 0123456789abcdef {pid} {far}")
        self.assertTrue(wait_until(lambda: request(b.admin_port, "GET", "/status").json()
                                   ["profiles"]["demo"]["cooldown_ms"] > 0, 5))
        self.assertLessEqual(request(b.admin_port, "GET", "/status").json()
                             ["profiles"]["demo"]["cooldown_ms"], 3000)
        self.assertEqual(b.get("/demo/x").status, 429)
        self.assertEqual(self.upstream.received(), [])
        self.assertEqual(metric(b, "braced_fleet_up"), 1)

    def test_hostile_replies_drop_the_connection_never_braced(self):
        # (what, server, the reason logged when the connection is dropped)
        cases = [
            ("a reply nobody asked for", {"extra": b"+OK\r\n"}, "a reply no call waits for"),
            ("an array of a billion elements", {"reply": b"*1000000000\r\n"},
             "a nested or long array reply"),
            ("nested arrays", {"reply": b"*1\r\n*1\r\n*1\r\n:1\r\n"}, "a nested or long array reply"),
            ("a string over the limit", {"reply": b"$4096\r\n" + b"x" * 4096 + b"\r\n"},
             "a reply string over its limit"),
            # A gigabyte announced on the subscriber, where no call is timed:
            # dropped once 64 KiB are held, not buffered to the end.
            ("a huge message", {"push": b"*3\r\n$7\r\nmessage\r\n$13\r\nbraced:events\r\n"
                                        b"$1000000000\r\n" + b"x" * 300000},
             "a reply over its limit"),
            ("an error", {"reply": b"-ERR nope\r\n"}, None),
            ("a wrong type", {"reply": b":12\r\n"}, None),
        ]
        for what, kw, reason in cases:
            with self.subTest(what):
                hostile = HostileRedis(**kw)
                try:
                    with Braced(self.fleet_config(hostile.sock, 1)) as b:
                        # Requests are served whatever Redis says.
                        for _ in range(5):
                            self.assertEqual(b.get("/demo/x").status, 200)
                            time.sleep(0.1)

                        def errors():
                            body = request(b.admin_port, "GET", "/metrics").body.decode()
                            return sum(float(l.split()[-1]) for l in body.splitlines()
                                       if l.startswith("braced_fleet_errors_total{"))
                        self.assertTrue(wait_until(lambda: errors() > 0, 5), b.log())
                        self.assertEqual(b.get("/demo/x").status, 200)
                        self.assertIsNone(b.proc.poll())
                        if reason:
                            self.assertTrue(wait_until(lambda: any(
                                l.get("reason") == reason for l in b.log_lines()), 5), b.log())
                finally:
                    hostile.cleanup()

    def test_flushall_loses_only_what_redis_held(self):
        self.redis = RedisProcess().start()
        b1, b2 = self.start_fleet(self.redis.sock, n=2, defaults={
            "retry": {"attempts": 1}, "timeouts": {"total": "1s"}})
        self.assertEqual(b1.get("/demo/x", fault(status=429, headers={"Retry-After": "1"})).status, 429)
        self.assertTrue(wait_until(lambda: request(b2.admin_port, "GET", "/status").json()
                                   ["profiles"]["demo"]["cooldown_ms"] > 0, 2))
        self.assertIn(b"+OK", resp_command(self.redis.sock, "FLUSHALL"))
        # What the instances applied stays; the connections stay up.
        self.assertEqual(b2.get("/demo/y").status, 429)
        self.assertEqual(len(self.upstream.received()), 1)
        time.sleep(1.1)
        for b in (b1, b2):
            self.assertEqual(metric(b, "braced_fleet_up"), 1)
            self.assertEqual(b.get("/demo/z").status, 200)
        # A window after the flush is shared as before (the script only ever
        # extends, and an empty key is no window).
        self.upstream.reset()
        self.assertEqual(b2.get("/demo/x", fault(status=429, headers={"Retry-After": "2"})).status, 429)
        self.assertTrue(wait_until(lambda: request(b1.admin_port, "GET", "/status").json()
                                   ["profiles"]["demo"]["cooldown_ms"] > 0, 2))
        self.assertEqual(b1.get("/demo/y").status, 429)
        self.assertEqual(len(self.upstream.received()), 1)

    def test_reload_off_and_stop_while_calls_wait(self):
        # A Redis that never answers keeps the calls waiting (timeout 2 s).
        silent = SilentRedis()
        self.addCleanup(silent.cleanup)
        self.redis = RedisProcess().start()
        (b,) = self.start_fleet(silent.sock, n=1, wait_up=False, fleet={"timeout": "2s"})
        self.assertEqual(b.get("/demo/x").status, 200)
        # Off: the hooks go, the waiting calls are dropped with their
        # connections (no callback left behind; the sanitizer build checks).
        b.reload(self.fleet_config(silent.sock, 1, fleet={"redis": "off"}))
        self.assertEqual(b.get("/demo/x").status, 200)
        status = request(b.admin_port, "GET", "/status").json()
        self.assertEqual(status["fleet"], {"enabled": False, "up": False})
        self.assertNotIn("fleet", status["profiles"]["demo"])
        # On again, with a real Redis: up and sharing.
        b.reload(self.fleet_config(self.redis.sock, 1))
        self.assertTrue(wait_until(lambda: metric(b, "braced_fleet_up") == 1, START_TIMEOUT), b.log())
        # Back to the silent one, and SIGTERM while its calls wait: a clean
        # exit (the harness asserts exit 0 and no sanitizer report).
        b.reload(self.fleet_config(silent.sock, 1, fleet={"timeout": "2s"}))
        self.assertEqual(b.get("/demo/x").status, 200)
        t = time.monotonic()
        b.__exit__(None, None, None)
        self.started.remove(b)
        self.assertEqual(b.returncode, 0)
        self.assertLess(time.monotonic() - t, 5)

    def test_password_is_used_and_never_shown(self):
        secret = "s3cret-fleet-pw"
        self.redis = RedisProcess(password=secret).start()
        d = tempfile.mkdtemp(prefix="braced-pw-")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "pw"), "w") as f:
            f.write(secret + "\n")
        (b,) = self.start_fleet(self.redis.sock, n=1,
                                fleet={"password": "${file:" + os.path.join(d, "pw") + "}"})
        cfg = request(b.admin_port, "GET", "/config").json()
        self.assertEqual(cfg["fleet"]["password"], "<redacted>")
        status = request(b.admin_port, "GET", "/status").json()
        self.assertEqual(status["fleet"], {"enabled": True, "up": True})
        self.assertIn("fleet", status["profiles"]["demo"])
        for body in (request(b.admin_port, "GET", "/config").body,
                     request(b.admin_port, "GET", "/status").body,
                     request(b.admin_port, "GET", "/metrics").body):
            self.assertNotIn(secret.encode(), body)
        self.assertNotIn(secret, b.log())

    def test_a_wrong_password_leaves_the_fleet_down_and_requests_served(self):
        self.redis = RedisProcess(password="right").start()
        (b,) = self.start_fleet(self.redis.sock, n=1, wait_up=False, fleet={"password": "wrong"})
        self.assertEqual(b.get("/demo/x").status, 200)
        def errors():
            body = request(b.admin_port, "GET", "/metrics").body.decode()
            return sum(float(l.split()[-1]) for l in body.splitlines()
                       if l.startswith("braced_fleet_errors_total{"))
        self.assertTrue(wait_until(lambda: errors() > 0, 5))
        self.assertEqual(metric(b, "braced_fleet_up"), 0)
        self.assertNotIn("wrong", b.log())

    def test_reload_that_changes_fleet_reconnects(self):
        self.redis = RedisProcess().start()
        (b,) = self.start_fleet(self.redis.sock, n=1, wait_up=False, fleet={"redis": "off"})
        self.assertEqual(metric(b, "braced_fleet_up"), 0)
        b.reload(self.fleet_config(self.redis.sock, 1))
        self.assertTrue(wait_until(lambda: metric(b, "braced_fleet_up") == 1, START_TIMEOUT), b.log())
        b.reload(self.fleet_config(self.redis.sock, 1, fleet={"redis": "off"}))
        self.assertTrue(wait_until(lambda: metric(b, "braced_fleet_up") == 0, START_TIMEOUT), b.log())
        self.assertEqual(b.get("/demo/x").status, 200)


class EjectionFixture:
    """A profile with two endpoints on one port: the class's upstream on
    127.0.0.1 and a second one on 127.0.0.2 that answers every request 503.
    Mixed into a FleetTestCase."""

    EJECT = {"balance": "round_robin",
             "eject": {"consecutive_failures": 3, "base": "5s", "max_percent": 50}}
    SHARE_ALL = ["cooldown", "breaker", "budget", "ejections"]

    def setUp(self):
        super().setUp()
        self.bad = UpstreamProcess(host="127.0.0.2", port=self.upstream.port)
        self.addCleanup(self.bad.stop)
        self.bad.set_default({"status": 503})
        self.good_addr = f"127.0.0.1:{self.upstream.port}"
        self.bad_addr = f"127.0.0.2:{self.upstream.port}"

    def start_pair(self, share, n=2, **fleet):
        if self.redis is None:
            self.redis = RedisProcess().start()
        return self.start_fleet(
            self.redis.sock, n=n, fleet=merge({"share": share}, fleet),
            profile={"addresses": [self.good_addr, self.bad_addr], "endpoints": self.EJECT})

    def endpoint(self, b, addr):
        doc = request(b.admin_port, "GET", "/status", timeout=5).json()
        for e in doc["profiles"]["demo"]["endpoints"]:
            if e["address"] == addr:
                return e
        raise AssertionError(f"{addr} not in /status: {doc['profiles']['demo']['endpoints']}")

    def eject_on(self, b):
        """Sends through b until it ejects the 503 endpoint; returns its /status entry."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            b.get("/demo/x", timeout=5)
            e = self.endpoint(b, self.bad_addr)
            if e["state"] == "ejected":
                return e
        self.fail(f"{self.bad_addr} never ejected:\n" + b.log())


class FleetEjectionTest(EjectionFixture, FleetTestCase):
    """fleet.share `ejections` (SPEC 4.11): an endpoint one instance ejects
    is ejected by every instance until the same instant."""

    def test_an_ejection_reaches_an_instance_that_sent_nothing(self):
        a, b = self.start_pair(self.SHARE_ALL)
        ea = self.eject_on(a)
        self.assertEqual(self.endpoint(b, self.good_addr)["state"], "active")
        self.assertTrue(wait_until(lambda: self.endpoint(b, self.bad_addr)["state"] == "ejected",
                                   1.0), "B never ejected " + self.bad_addr + ":\n" + b.log())
        ea, eb = self.endpoint(a, self.bad_addr), self.endpoint(b, self.bad_addr)
        self.assertGreater(ea["ejected_until_ms"], 4000)
        self.assertLess(abs(ea["ejected_until_ms"] - eb["ejected_until_ms"]), 500, (ea, eb))
        # B applied what it was told: it ejected nothing itself.
        self.assertEqual(eb["ejections"], 0)
        self.assertEqual(self.endpoint(b, self.good_addr)["state"], "active")
        self.upstream.reset()
        self.bad.reset()
        self.bad.set_default({"status": 503})
        for _ in range(6):
            self.assertEqual(b.get("/demo/y", timeout=5).status, 200)
        self.assertEqual([self.instance_of(e) for e in self.bad.received()], [])
        self.assertEqual([self.instance_of(e) for e in self.upstream.received()], [2] * 6)

    def test_signed_ejections_are_shared_and_read_back_by_a_later_instance(self):
        share = self.SHARE_ALL
        secret = "0123456789abcdef-fleet-secret"
        a, b = self.start_pair(share, secret=secret)
        self.eject_on(a)
        self.assertTrue(wait_until(lambda: self.endpoint(b, self.bad_addr)["state"] == "ejected",
                                   1.0), "B never ejected " + self.bad_addr + ":\n" + b.log())
        # An instance that starts now reads the ejection from Redis.
        (c,) = self.start_pair(share, n=1, secret=secret)
        self.assertTrue(wait_until(lambda: self.endpoint(c, self.bad_addr)["state"] == "ejected",
                                   2.0), "C never read the ejection:\n" + c.log())
        ea, ec = self.endpoint(a, self.bad_addr), self.endpoint(c, self.bad_addr)
        self.assertLess(abs(ea["ejected_until_ms"] - ec["ejected_until_ms"]), 500, (ea, ec))
        key = "braced:{%s}:eject:%s" % (profile_id("demo", self.upstream.url("/base")),
                                        self.bad_addr)
        self.assertIn(b"\r\neject ", resp_command(self.redis.sock, "GET", key))
        for inst in (a, b, c):
            for reason in ("unsigned", "bad_signature", "stale"):
                self.assertEqual(
                    metric(inst, 'braced_fleet_rejected_total{reason="%s"}' % reason), 0)
            self.assertEqual(metric(inst, 'braced_fleet_errors_total{op="eject"}'), 0)

    def test_without_ejections_in_share_each_instance_ejects_alone(self):
        a, b = self.start_pair(["cooldown", "breaker", "budget"])
        self.eject_on(a)
        # Long enough for a message that should not come.
        time.sleep(1.0)
        self.assertEqual(self.endpoint(b, self.bad_addr)["state"], "active")
        self.bad.reset()
        self.bad.set_default({"status": 503})
        for _ in range(2):
            b.get("/demo/y", timeout=5)
        self.assertIn(2, [self.instance_of(e) for e in self.bad.received()])


class FleetConfigTest(BracedTestCase):

    def check(self, fleet):
        cfg = make_config({"demo": {"upstream": self.upstream.url()}}, fleet=fleet)
        return Braced(cfg).check_config()

    def test_off_by_default_and_valid_forms(self):
        for redis in ("off", "redis://127.0.0.1:6379/0", "redis://localhost", "redis://[::1]:7000/2",
                      "unix:/run/redis/redis.sock"):
            rc, out, err = self.check({"redis": redis})
            self.assertEqual(rc, 0, (redis, err))

    def test_errors_with_positions(self):
        cases = [
            ({"redis": "redis://redis.example:6379"}, "numeric address or localhost"),
            ({"redis": "redis://u:p@127.0.0.1"}, "fleet.password"),
            ({"redis": "http://127.0.0.1"}, "must be off"),
            ({"redis": "redis://127.0.0.1:0"}, "port"),
            ({"redis": "off", "timout": "50ms"}, "did you mean 'timeout'"),
            ({"redis": "off", "share": ["cooldown", "breakers"]}, "fleet.share"),
            ({"redis": "off", "key_prefix": "a{b"}, "fleet.key_prefix"),
            ({"redis": "off", "sync_interval": "1ms"}, "at least 10ms"),
            ({"redis": "off", "timeout": "0s"}, "greater than 0"),
        ]
        for fleet, want in cases:
            rc, out, err = self.check(fleet)
            self.assertNotEqual(rc, 0, fleet)
            self.assertIn(want, err, (fleet, err))
            self.assertRegex(err, r"braced\.yaml:\d+:\d+: ", err)


if __name__ == "__main__":
    unittest.main()
