"""Hostile name servers (SPEC 4.11): whatever a nameserver answers to
braced's look-ups of an upstream name — a thousand addresses, nothing,
NXDOMAIN, SERVFAIL, silence, garbage, an answer to another query ID, a CNAME
loop, a compression-pointer loop, records of another name — braced never
crashes nor blocks its loop, keeps the last good set of endpoints, never
holds more than 64 endpoints for a name, logs a failing name once, and keeps
serving requests (502 upstream_unavailable when no address was ever known).

Each row runs twice:
- never known: the name's first look-up goes to the hostile server;
- after a good set: the name first resolves (dnsmasq) to the test upstream,
  then the same nameserver address starts relaying to the hostile server.
The nameserver braced is given is a UDP relay in this file (DnsSwitch),
so the good and the hostile server can change places under one address.

NOTE: the hostile server is tests/dnsgen.py, written by another engineer
and not in this tree when these rows were written. The rows assume its
described interface: `dnsgen.serve_in_thread(modes)` with modes
{name: mode}, returning an object with `.port` and `.stop()`; the mode
values below (ROWS) are this file's guess at its spelling. Only
`hostile_server()` needs adapting if dnsgen spells them otherwise. Until
dnsgen lands, a minimal stand-in in this file (_StandIn) serves the same
modes so the rows can run.
"""

import json
import os
import random
import select
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

from endpoints import NAME, Dnsmasq, UpstreamSet, free_udp_port, hosts_file, status_endpoints
from harness import Braced, binary_problem, make_config, request, wait_until

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
try:
    import dnsgen   # tests/dnsgen.py
except ImportError:
    dnsgen = None

PROFILE = "ep"
RESOLVE_EVERY = 1.0         # seconds between look-ups of the name
PERIODS = 3                 # look-up periods a row watches after the hostile answer
MAX_ENDPOINTS = 64
FAILURE_WAIT = 30.0         # a silent server's look-up ends when evdns gives up on it
TOTAL = 3.0                 # timeouts.total of the rows, seconds
QUICK = 1.0                 # an admin or proxied answer slower than this means a blocked loop

# (row, mode for dnsgen, what braced makes of the answer)
#   "fails": no address from this answer: the last good set stays, the
#       failure is logged once
#   "bounded": addresses may come of it, at most 64 endpoints, or the answer
#       fails: either is right. libevent 2.1's evdns keeps at most 32 IPv4
#       addresses of one answer (MAX_V4_ADDRS) and reads a datagram into 1500
#       bytes, so 1000 records cannot arrive whole; it checks the question's
#       name but not the owner names of the answer's records.
ROWS = [
    ("1000 A records", {"a": 1000}, "bounded"),
    ("65 A records", {"a": 65}, "bounded"),
    ("an empty answer", "empty", "fails"),
    ("NXDOMAIN", "nxdomain", "fails"),
    ("SERVFAIL", "servfail", "fails"),
    ("silence", "silence", "fails"),
    ("garbage", "garbage", "fails"),
    ("an answer with another query ID", "wrong_id", "fails"),
    ("a CNAME loop", "cname_loop", "fails"),
    ("a compression pointer loop", "compression_loop", "fails"),
    ("records of another name", "other_name", "bounded"),
]


def hostile_server(name, mode):
    """A hostile DNS server answering `name` in `mode`: .port, .stop()."""
    if dnsgen is not None:
        return dnsgen.serve_in_thread({name: mode})
    return _StandIn({name: mode})


# --- a UDP relay whose backend can change --------------------------------------

class DnsSwitch:
    """A nameserver address (127.0.0.1:.port) relaying each query to .target
    ("IP:PORT") and every datagram answered within a second back."""

    def __init__(self, target):
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def nameserver(self):
        return f"127.0.0.1:{self.port}"

    def _run(self):
        while not self.stopping:
            if not select.select([self.sock], [], [], 0.1)[0]:
                continue
            try:
                query, client = self.sock.recvfrom(65535)
            except OSError:
                continue
            threading.Thread(target=self._relay, args=(query, client, self.target),
                             daemon=True).start()

    def _relay(self, query, client, target):
        host, port = target.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((host, int(port)))
            s.send(query)
            deadline = time.monotonic() + 1.0
            while not self.stopping:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([s], [], [], left)[0]:
                    return
                self.sock.sendto(s.recv(65535), client)
        except OSError:
            return
        finally:
            s.close()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


# --- the stand-in for tests/dnsgen.py (used only while it is missing) ----------

def _name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"


def _question_end(packet):
    pos = 12
    while packet[pos]:
        pos += 1 + packet[pos]
    return pos + 5


class _StandIn:
    """A UDP DNS server on 127.0.0.1 answering each listed name in its mode
    (the modes of ROWS), everything else with NXDOMAIN."""

    def __init__(self, modes):
        self.modes = {k.lower().rstrip("."): v for k, v in modes.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.random = random.Random(7)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            if not select.select([self.sock], [], [], 0.1)[0]:
                continue
            try:
                packet, client = self.sock.recvfrom(4096)
                answer = self.answer(packet)
            except (OSError, IndexError, struct.error):
                continue
            if answer is not None:
                self.sock.sendto(answer, client)

    def answer(self, q):
        qid = struct.unpack(">H", q[:2])[0]
        end = _question_end(q)
        question = q[12:end]
        labels, pos = [], 12
        while q[pos]:
            labels.append(q[pos + 1:pos + 1 + q[pos]].decode(errors="replace"))
            pos += 1 + q[pos]
        qtype = struct.unpack(">H", q[end - 4:end - 2])[0]
        mode = self.modes.get(".".join(labels).lower(), "nxdomain")

        def reply(rcode=0, records=(), ident=qid):
            head = struct.pack(">HHHHHH", ident, 0x8180 | rcode, 1, len(records), 0, 0)
            return head + question + b"".join(records)

        def a(owner, i):
            addr = bytes([127, 1, (i >> 8) & 255, i & 255])
            return owner + struct.pack(">HHIH", 1, 1, 0, 4) + addr

        if mode == "silence":
            return None
        if mode == "garbage":
            return bytes(self.random.randrange(256) for _ in range(48))
        if mode == "nxdomain":
            return reply(3)
        if mode == "servfail":
            return reply(2)
        if mode == "empty" or qtype != 1:
            return reply()
        if isinstance(mode, dict) and "a" in mode:
            return reply(0, [a(b"\xc0\x0c", i + 1) for i in range(mode["a"])])
        if mode == "wrong_id":
            return reply(0, [a(b"\xc0\x0c", 1)], ident=qid ^ 0x5A5A)
        if mode == "other_name":
            return reply(0, [a(_name("other.braced.test"), 1)])
        if mode == "cname_loop":
            loop = _name("loop.braced.test")
            there = b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 0, len(loop)) + loop
            back = loop + struct.pack(">HHIH", 5, 1, 0, 2) + b"\xc0\x0c"
            return reply(0, [there, back])
        if mode == "compression_loop":
            # The answer's owner name is a pointer to itself.
            at = 12 + len(question)
            return reply(0, [struct.pack(">H", 0xC000 | at) + struct.pack(">HHIH", 1, 1, 0, 4)
                             + bytes([127, 0, 0, 1])])
        return reply(3)

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


# --- the rows -------------------------------------------------------------------

class HostileNameServer(unittest.TestCase):

    def setUp(self):
        problem = binary_problem()
        if problem:
            self.fail(problem)

    def start(self, stoppable):
        self.addCleanup(stoppable.stop)
        return stoppable

    def config(self, port, nameserver, hosts):
        profile = {"upstream": f"http://{NAME}:{port}/base",
                   "endpoints": {"resolve_every": f"{int(RESOLVE_EVERY * 1000)}ms"}}
        top = {"admin": "127.0.0.1:0", "dns": {"nameservers": [nameserver], "hosts_file": hosts},
               "defaults": {"timeouts": {"total": f"{int(TOTAL * 1000)}ms", "connect": "500ms"}}}
        return make_config({PROFILE: profile}, **top)

    def hosts(self, records=None):
        return hosts_file(self.tmp(), records or {"localhost": ["127.0.0.1"]})

    def tmp(self):
        path = tempfile.mkdtemp(prefix="braced-hdns-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def endpoints(self, b):
        try:
            return sorted(e["address"] for e in status_endpoints(b, PROFILE))
        except (KeyError, TypeError, ValueError):
            return None

    def failures(self, b, since=0):
        """warn/error lines after line `since` naming the upstream name (not access lines)."""
        return [l for l in b.log_lines()[since:]
                if l.get("level") in ("warn", "error") and l.get("msg") != "request"
                and NAME in json.dumps(l)]

    def assert_responsive(self, b):
        """The admin listener answers at once: the loop is not blocked."""
        resp = request(b.admin_port, "GET", "/status", timeout=5)
        self.assertEqual(resp.status, 200, resp)
        self.assertLess(resp.elapsed, QUICK, "admin answer delayed: the loop blocked")

    def watch(self, b, expect, since, t0):
        """After the server turned hostile at t0: wait for the failure's log
        line, then long enough for more look-ups to fail after it (PERIODS
        periods, or as long again as the first failure took plus two
        periods, when the server's silence made it wait)."""
        wait = PERIODS * RESOLVE_EVERY
        if expect == "fails":
            self.assertTrue(wait_until(lambda: self.failures(b, since), FAILURE_WAIT, step=0.1),
                            "no log line about the failed look-up:\n" + b.log()[-3000:])
            wait = max(wait, time.monotonic() - t0 + 2 * RESOLVE_EVERY)
        time.sleep(wait)
        self.assert_responsive(b)

    def test_never_known(self):
        """The first look-up meets the hostile answer: requests get 502
        upstream_unavailable at once (or the addresses, at most 64, when
        the answer has any); logged once; braced stays responsive."""
        for row, mode, expect in ROWS:
            with self.subTest(row):
                bad = hostile_server(NAME, mode)
                switch = DnsSwitch(f"127.0.0.1:{bad.port}")
                try:
                    self.never_known(switch, expect)
                finally:
                    switch.stop()
                    bad.stop()

    def never_known(self, switch, expect):
        t0 = time.monotonic()
        with Braced(self.config(free_udp_port(), switch.nameserver, self.hosts())) as b:
            self.watch(b, expect, 0, t0)
            resp = b.get("/ep/x", timeout=TOTAL + 5)
            eps = self.endpoints(b)
            failures = self.failures(b)
        if expect == "fails":
            self.assertEqual(resp.status, 502, resp)
            self.assertEqual(resp.headers.get("Brace-Error"), "upstream_unavailable", resp)
            self.assertLess(resp.elapsed, TOTAL + 1, resp)
            self.assertEqual(eps, [], eps)
            self.assertEqual(len(failures), 1, failures)
        else:
            self.assertLessEqual(len(eps), MAX_ENDPOINTS, eps)
            self.assertEqual(len(set(eps)), len(eps), eps)
            self.assertLessEqual(len(failures), 1, failures)
            self.assertIn(resp.status, (200, 502), resp)
            self.assertLess(resp.elapsed, TOTAL + 1, resp)

    def test_after_a_good_set(self):
        """The name resolved to the test upstream, then its nameserver turns
        hostile: the last good set stays and requests keep succeeding
        quickly; a failure is logged once; an answer with many addresses
        replaces the set with at most 64."""
        ups = self.start(UpstreamSet(("127.0.0.1",)))
        good = self.start(Dnsmasq({NAME: ["127.0.0.1"]}))
        for row, mode, expect in ROWS:
            with self.subTest(row):
                bad = hostile_server(NAME, mode)
                switch = DnsSwitch(good.nameserver)
                try:
                    self.after_good(ups, switch, f"127.0.0.1:{bad.port}", expect)
                finally:
                    switch.stop()
                    bad.stop()

    def after_good(self, ups, switch, hostile, expect):
        with Braced(self.config(ups.port, switch.nameserver, self.hosts())) as b:
            known = ups.addresses()
            self.assertTrue(wait_until(lambda: self.endpoints(b) == known, 5, step=0.05),
                            f"never resolved: {self.endpoints(b)}\n{b.log()[-2000:]}")
            since = len(b.log_lines())
            t0 = time.monotonic()
            switch.target = hostile
            self.watch(b, expect, since, t0)
            eps = self.endpoints(b)
            failures = self.failures(b, since)
            answers = [b.get(f"/ep/after/{i}", timeout=TOTAL + 5) for i in range(3)]
        if expect == "fails":
            self.assertEqual(eps, known)
            self.assertEqual(len(failures), 1, failures)
            for resp in answers:
                self.assertEqual(resp.status, 200, resp)
                self.assertLess(resp.elapsed, QUICK, resp)
        else:
            self.assertTrue(1 <= len(eps) <= MAX_ENDPOINTS, eps)
            self.assertEqual(len(set(eps)), len(eps), eps)
            self.assertLessEqual(len(failures), 1, failures)
            for resp in answers:
                self.assertIn(resp.status, (200, 502), resp)
                self.assertLess(resp.elapsed, TOTAL + 1, resp)

    def test_a_hosts_file_with_100_addresses_gives_64_endpoints(self):
        """A name with 100 addresses in the hosts file (no 32-address limit
        there): 64 endpoints, all distinct, all from the file; braced stays
        responsive."""
        ips = [f"127.0.1.{i}" for i in range(1, 101)]
        port = free_udp_port()
        cfg = self.config(port, f"127.0.0.1:{free_udp_port()}", self.hosts({NAME: ips}))
        with Braced(cfg) as b:
            self.assertTrue(wait_until(lambda: self.endpoints(b), 5, step=0.05), b.log()[-2000:])
            time.sleep(PERIODS * RESOLVE_EVERY)
            self.assert_responsive(b)
            eps = self.endpoints(b)
        self.assertEqual(len(eps), MAX_ENDPOINTS, eps)
        self.assertEqual(len(set(eps)), MAX_ENDPOINTS, eps)
        self.assertLessEqual(set(eps), {f"{ip}:{port}" for ip in ips})


if __name__ == "__main__":
    unittest.main()
