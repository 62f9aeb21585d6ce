"""Fleet mode against a hostile client of its Redis (issue 17): anyone who
can PUBLISH on the fleet's channel or write its keys. With fleet.secret,
forged, unsigned and replayed (stale) messages and values are ignored and
counted in braced_fleet_rejected_total{reason}; instances that share the
secret still share state, also as a Redis ACL user held to the key prefix
and the channel. Without a secret nothing changes, and `braced -t` warns.
Each test starts its own redis-server and braced instances and stops them by
PID; traffic stays on loopback, loops are bounded in count and time."""

import hashlib
import hmac
import re
import socket
import threading
import time
import unittest

from harness import START_TIMEOUT, Braced, BracedTestCase, fault, make_config, request, wait_until
from test_fleet import (EjectionFixture, FleetTestCase, RedisProcess, metric, profile_id,
                        received_chunks, resp_command)

SECRET = "it-fleet-secret-0123456789abcdef"
CHANNEL = "braced:events"
# The fleet's message window with sync_interval 100ms: 5 intervals, at least 2 s.
MAX_AGE_S = 2.0


def now_ms():
    return int(time.time() * 1000)


def sign(secret, ident, ts, content):
    """content signed as braced signs it: " TS MAC" appended."""
    data = f"braced-fleet1\n{ident}\n{ts}\n{content}".encode()
    return f"{content} {ts} {hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()}"


def rejected(b, reason):
    return metric(b, f'braced_fleet_rejected_total{{reason="{reason}"}}') or 0


def fleet_errors(b):
    body = request(b.admin_port, "GET", "/metrics").body.decode()
    return sum(float(l.split()[-1]) for l in body.splitlines()
               if l.startswith("braced_fleet_errors_total{"))


def profile_status(b):
    return request(b.admin_port, "GET", "/status").json()["profiles"]["demo"]


def encode_command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Incomplete(Exception):
    pass


def parse_resp(buf, pos=0):
    """(value, next position) of the RESP value at buf[pos:]; raises Incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete()
    kind, line, pos = buf[pos:pos + 1], buf[pos + 1:end], end + 2
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise Incomplete()
        return buf[pos:pos + n], pos + n + 2
    if kind == b"*":
        items = []
        for _ in range(int(line)):
            item, pos = parse_resp(buf, pos)
            items.append(item)
        return items, pos
    return line, pos


class ChannelTap:
    """A SUBSCRIBE of its own on the fleet's channel: what the fleet publishes."""

    def __init__(self, sock_path, channel=CHANNEL):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(0.2)
        self.s.connect(sock_path)
        self.s.sendall(encode_command("SUBSCRIBE", channel))
        self.messages, self.subscribed, self.stopping = [], False, False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not wait_until(lambda: self.subscribed, 5):
            self.close()
            raise AssertionError("SUBSCRIBE not confirmed")

    def _run(self):
        buf = b""
        for chunk in received_chunks(self.s, lambda: self.stopping):
            buf += chunk
            while True:
                try:
                    item, pos = parse_resp(buf)
                except Incomplete:
                    break
                buf = buf[pos:]
                if isinstance(item, list) and item[0] == b"subscribe":
                    self.subscribed = True
                elif isinstance(item, list) and item[0] == b"message":
                    self.messages.append((time.monotonic(), item[2].decode()))

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.s.close()


class HostileFleetTest(FleetTestCase):

    def signed_fleet(self, sock, n, **kw):
        fleet = dict(kw.pop("fleet", {}))
        fleet["secret"] = SECRET
        return self.start_fleet(sock, n=n, fleet=fleet, **kw)

    def assert_closes_everywhere(self, bs):
        """After open_for, one instance's probe closes the breaker of all."""
        def closed_everywhere():
            for b in bs:
                b.get("/demo/ok")
            return all(profile_status(b)["breaker"]["state"] == "closed" for b in bs)
        self.assertTrue(wait_until(closed_everywhere, 5, step=0.1))

    def attack_while_loading(self, b, pid, seconds=3.0):
        """Publishes a forged "open" for pid every 0.5 s (unsigned and signed
        with another key in turn) while requests flow to b every 20 ms.
        Returns ([(status, Brace-Error)], {"unsigned": n, "bad_signature": n} sent)."""
        stop = threading.Event()
        sent = {"unsigned": 0, "bad_signature": 0}

        def attacker():
            for i in range(int(seconds / 0.5) + 1):
                if stop.is_set():
                    return
                content = f"braced1 open 0123456789abcdef {pid} {now_ms() + 5000}"
                if i % 2 == 0:
                    payload, kind = content, "unsigned"
                else:
                    payload, kind = sign("an attacker's guess at it", pid, now_ms(), content), "bad_signature"
                resp_command(self.redis.sock, "PUBLISH", CHANNEL, payload)
                sent[kind] += 1
                stop.wait(0.5)
        t = threading.Thread(target=attacker)
        t.start()
        answers = []
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end and len(answers) < 300:
                r = b.get("/demo/x", timeout=5)
                answers.append((r.status, r.headers.get("Brace-Error")))
                time.sleep(0.02)
        finally:
            stop.set()
            t.join(10)
        return answers, sent

    def test_forged_open_messages_do_not_hold_the_breaker_open(self):
        self.redis = RedisProcess().start()
        (b,) = self.signed_fleet(self.redis.sock, 1)
        pid = profile_id("demo", self.upstream.url("/base"))
        answers, sent = self.attack_while_loading(b, pid)
        self.assertGreater(len(answers), 20)
        self.assertNotIn(503, [s for s, _ in answers], answers)
        self.assertEqual({e for _, e in answers}, {None}, answers)
        for reason, n in sent.items():
            self.assertTrue(wait_until(lambda: rejected(b, reason) >= n, 5),
                            (reason, n, rejected(b, reason)))
        self.assertEqual(profile_status(b)["breaker"]["state"], "closed")
        self.assertEqual(metric(b, "braced_fleet_up"), 1)

    def test_without_a_secret_the_same_attack_holds_the_breaker_open(self):
        # What the secret is for: today's unsigned protocol obeys the forgery.
        self.redis = RedisProcess().start()
        (b,) = self.start_fleet(self.redis.sock, n=1)
        pid = profile_id("demo", self.upstream.url("/base"))
        answers, _ = self.attack_while_loading(b, pid, seconds=1.5)
        self.assertIn((503, "circuit_open"), answers)
        self.assertEqual(rejected(b, "unsigned"), 0)

    def test_a_replayed_genuine_message_is_ignored_once_stale(self):
        self.redis = RedisProcess().start()
        tap = ChannelTap(self.redis.sock)
        self.addCleanup(tap.close)
        policy = {"retry": {"attempts": 1}, "timeouts": {"total": "1s"}}
        (b1,) = self.signed_fleet(self.redis.sock, 1, defaults=policy)
        self.assertEqual(b1.get("/demo/x", fault(status=429, headers={"Retry-After": "10"})).status, 429)
        self.assertTrue(wait_until(lambda: tap.messages, 5), "nothing published")
        at, captured = tap.messages[0]
        self.assertRegex(captured, r"^braced1 cooldown [0-9a-f]{16} demo:[0-9a-f]{16} \d+ \d+ [0-9a-f]{64}$")
        # A fresh instance that never heard it, and no stored window to read.
        self.assertIn(b"+OK", resp_command(self.redis.sock, "FLUSHALL"))
        b2 = Braced(self.fleet_config(self.redis.sock, 2, fleet={"secret": SECRET}, defaults=policy))
        b2.__enter__()
        self.started.append(b2)
        self.assertTrue(wait_until(lambda: metric(b2, "braced_fleet_up") == 1, START_TIMEOUT), b2.log())
        time.sleep(max(0.0, at + MAX_AGE_S + 0.8 - time.monotonic()))
        # Its window (10 s) still runs; the message itself is stale.
        self.assertIn(b":", resp_command(self.redis.sock, "PUBLISH", CHANNEL, captured))
        self.assertTrue(wait_until(lambda: rejected(b2, "stale") >= 1, 5), b2.log())
        self.assertEqual(profile_status(b2)["cooldown_ms"], 0)
        self.upstream.reset()
        self.assertEqual(b2.get("/demo/y").status, 200)
        self.assertEqual(len(self.upstream.received()), 1)

    def test_unsigned_messages_and_values_are_ignored_and_counted(self):
        self.redis = RedisProcess().start()
        pid = profile_id("demo", self.upstream.url("/base"))
        far = now_ms() + 20000
        # Stored windows as braced wrote them without a secret: read when the
        # instance connects, and refused.
        for key in ("cooldown", "breaker"):
            self.assertIn(b"+OK", resp_command(self.redis.sock, "SET", f"braced:{{{pid}}}:{key}", far))
        (b,) = self.signed_fleet(self.redis.sock, 1)
        self.assertTrue(wait_until(lambda: rejected(b, "unsigned") >= 2, 5), rejected(b, "unsigned"))
        for kind in ("cooldown", "open", "close"):
            until = far if kind != "close" else 0
            resp_command(self.redis.sock, "PUBLISH", CHANNEL, f"braced1 {kind} 0123456789abcdef {pid} {until}")
        self.assertTrue(wait_until(lambda: rejected(b, "unsigned") >= 5, 5), rejected(b, "unsigned"))
        status = profile_status(b)
        self.assertEqual(status["cooldown_ms"], 0)
        self.assertEqual(status["breaker"]["state"], "closed")
        self.assertEqual(b.get("/demo/x").status, 200)
        self.assertEqual(len(self.upstream.received()), 1)
        self.assertEqual(rejected(b, "bad_signature"), 0)
        self.assertEqual(rejected(b, "stale"), 0)
        # The same window signed as docs/fleet-security.md says: obeyed.
        content = f"braced1 cooldown 0123456789abcdef {pid} {now_ms() + 2000}"
        resp_command(self.redis.sock, "PUBLISH", CHANNEL, sign(SECRET, pid, now_ms(), content))
        self.assertTrue(wait_until(lambda: profile_status(b)["cooldown_ms"] > 0, 3))
        self.assertEqual(rejected(b, "unsigned"), 5)

    def test_a_forged_stored_window_is_replaced_and_the_real_one_shared(self):
        self.redis = RedisProcess().start()
        policy = {"retry": {"attempts": 1}, "timeouts": {"total": "1s"}}
        b1, b2 = self.signed_fleet(self.redis.sock, 2, defaults=policy)
        pid = profile_id("demo", self.upstream.url("/base"))
        # A window far ahead that looks signed: the extend script alone would
        # keep it (it cannot check a signature) and share nothing.
        forged = f"cooldown 99999999999999 {now_ms()} " + "0" * 64
        self.assertIn(b"+OK", resp_command(self.redis.sock, "SET", f"braced:{{{pid}}}:cooldown", forged))
        self.assertEqual(b1.get("/demo/x", fault(status=429, headers={"Retry-After": "3"})).status, 429)
        self.assertTrue(wait_until(lambda: profile_status(b2)["cooldown_ms"] > 0, 3), b1.log())
        self.assertLessEqual(profile_status(b2)["cooldown_ms"], 3000)
        self.assertEqual(b2.get("/demo/y").status, 429)
        self.assertEqual(len(self.upstream.received()), 1)
        self.assertGreaterEqual(rejected(b1, "bad_signature"), 1)
        stored = resp_command(self.redis.sock, "GET", f"braced:{{{pid}}}:cooldown")
        self.assertRegex(stored, rb"\r\ncooldown \d{13} \d{13} [0-9a-f]{64}\r\n")

    def test_signed_instances_share_breaker_and_cooldown(self):
        self.redis = RedisProcess().start()
        breaker = {"min_requests": 3, "window": "10s", "failure_ratio": 0.5, "open_for": "1s",
                   "half_open_probes": 1}
        b1, b2 = self.signed_fleet(self.redis.sock, 2, defaults={
            "retry": {"attempts": 1}, "timeouts": {"total": "1s"}, "circuit_breaker": breaker})
        for _ in range(3):
            b1.get("/demo/fail", fault(status=503))
        self.assertTrue(wait_until(lambda: profile_status(b2)["breaker"]["state"] == "open", 2), b2.log())
        self.assert_problem(b2.get("/demo/x"), 503, "circuit_open")
        self.assertEqual(len(self.upstream.received()), 3)
        time.sleep(1.1)
        self.assert_closes_everywhere((b1, b2))
        self.upstream.reset()
        self.assertEqual(b2.get("/demo/c", fault(status=429, headers={"Retry-After": "2"})).status, 429)
        self.assertTrue(wait_until(lambda: profile_status(b1)["cooldown_ms"] > 0, 2))
        self.assertEqual(b1.get("/demo/d").status, 429)
        self.assertEqual(len(self.upstream.received()), 1)
        for b in (b1, b2):
            for reason in ("unsigned", "bad_signature", "stale"):
                self.assertEqual(rejected(b, reason), 0, (reason, b.log()))
            # The secret, written literally, is shown and logged nowhere.
            self.assertEqual(request(b.admin_port, "GET", "/config").json()["fleet"]["secret"], "<redacted>")
            for path in ("/config", "/status", "/metrics"):
                self.assertNotIn(SECRET.encode(), request(b.admin_port, "GET", path).body)
            self.assertNotIn(SECRET, b.log())

    def test_an_acl_user_held_to_the_prefix_and_channel_shares_state(self):
        # The command set docs/fleet-security.md gives, and nothing more.
        acl = ["--user", "braced", "on", ">acl-pw-0123", "resetkeys", "~braced:*", "resetchannels",
               "&braced:events", "-@all", "+ping", "+subscribe", "+publish", "+get", "+set", "+del",
               "+eval", "+hincrby", "+hmget", "+expire"]
        self.redis = RedisProcess(extra=acl).start()
        breaker = {"min_requests": 3, "window": "10s", "failure_ratio": 0.5, "open_for": "1s",
                   "half_open_probes": 1}
        b1, b2 = self.signed_fleet(
            self.redis.sock, 2, fleet={"username": "braced", "password": "acl-pw-0123"},
            defaults={"retry": {"attempts": 2, "backoff": {"base": "1ms", "max": "2ms"}},
                      "timeouts": {"total": "1s"}, "circuit_breaker": breaker})
        # Cool-down (extend script), breaker (extend, probe lock, close), budget (sync script).
        self.assertEqual(b1.get("/demo/x", fault(status=429, headers={"Retry-After": "1"})).status, 429)
        self.assertTrue(wait_until(lambda: profile_status(b2)["cooldown_ms"] > 0, 2), b1.log())
        time.sleep(1.1)
        for _ in range(3):
            b1.get("/demo/fail", fault(status=503))
        self.assertTrue(wait_until(lambda: profile_status(b2)["breaker"]["state"] == "open", 2), b2.log())
        time.sleep(1.1)
        self.assert_closes_everywhere((b1, b2))

        def fleet_requests():
            budget = profile_status(b1)["fleet"]["budget"]
            return budget["requests"] if budget else 0
        for _ in range(5):
            b2.get("/demo/y")
        self.assertTrue(wait_until(lambda: fleet_requests() > 0, 3))
        self.assertEqual(resp_command(self.redis.sock, "ACL", "LOG"), b"*0\r\n")
        for b in (b1, b2):
            self.assertEqual(fleet_errors(b), 0, b.log())
            self.assertEqual(metric(b, "braced_fleet_up"), 1)
            self.assertNotIn("acl-pw-0123", b.log())


class HostileFleetConfigTest(BracedTestCase):

    def check(self, fleet):
        cfg = make_config({"demo": {"upstream": self.upstream.url()}}, fleet=fleet)
        b = Braced(cfg)
        return (b,) + b.check_config()

    def test_check_config_warns_when_fleet_is_on_without_a_secret(self):
        b, rc, out, err = self.check({"redis": "unix:/run/redis/redis.sock"})
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, f"{b.config_path}: ok\n")
        self.assertRegex(err, re.compile(rf"^{re.escape(b.config_path)}:\d+:\d+: warning: fleet.redis is "
                                         r"set without fleet.secret", re.M))
        for fleet in ({"redis": "unix:/run/redis/redis.sock", "secret": SECRET}, {"redis": "off"}):
            b, rc, out, err = self.check(fleet)
            self.assertEqual((rc, out, err), (0, f"{b.config_path}: ok\n", ""), fleet)

    def test_a_short_secret_is_an_error_that_does_not_show_it(self):
        b, rc, out, err = self.check({"redis": "off", "secret": "too-short"})
        self.assertEqual(rc, 1, err)
        self.assertIn("fleet.secret must be from 16", err)
        self.assertNotIn("too-short", err)


class HostileEjectionTest(EjectionFixture, FleetTestCase):

    def test_forged_ejections_are_ignored_and_a_forged_stored_one_replaced(self):
        self.redis = RedisProcess().start()
        pid = profile_id("demo", self.upstream.url("/base"))
        key = f"braced:{{{pid}}}:eject:{self.bad_addr}"
        # An ejection far ahead that looks signed: read at connect and
        # refused; the extend script alone would keep it and share nothing.
        forged = f"eject 99999999999999 {self.bad_addr} {now_ms()} " + "0" * 64
        self.assertIn(b"+OK", resp_command(self.redis.sock, "SET", key, forged))
        a, b = self.start_pair(self.SHARE_ALL, secret=SECRET)
        for inst in (a, b):
            self.assertTrue(wait_until(lambda: rejected(inst, "bad_signature") >= 1, 5), inst.log())
        # Forged messages that would eject the good endpoint: unsigned, and
        # signed with another key.
        content = f"braced1 eject 0123456789abcdef {pid} {now_ms() + 20000} {self.good_addr}"
        resp_command(self.redis.sock, "PUBLISH", CHANNEL, content)
        resp_command(self.redis.sock, "PUBLISH", CHANNEL,
                     sign("an attacker's guess at it", pid, now_ms(), content))
        for inst in (a, b):
            self.assertTrue(wait_until(lambda: rejected(inst, "unsigned") >= 1 and
                                       rejected(inst, "bad_signature") >= 2, 5), inst.log())
            for addr in (self.good_addr, self.bad_addr):
                self.assertEqual(self.endpoint(inst, addr)["state"], "active", addr)
        # A real ejection replaces the forged value and reaches B.
        self.eject_on(a)
        self.assertTrue(wait_until(lambda: self.endpoint(b, self.bad_addr)["state"] == "ejected",
                                   3), b.log())
        self.assertLessEqual(self.endpoint(b, self.bad_addr)["ejected_until_ms"], 5000)
        self.assertEqual(self.endpoint(b, self.good_addr)["state"], "active")
        stored = resp_command(self.redis.sock, "GET", key)
        self.assertRegex(stored, rb"\r\neject \d{13} 127\.0\.0\.2:\d+ \d{13} [0-9a-f]{64}\r\n")


if __name__ == "__main__":
    unittest.main()
