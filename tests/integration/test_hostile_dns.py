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

The hostile server is tests/dnsgen.py (its modes are listed there).
"""

import json
import os
import select
import shutil
import socket
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
import dnsgen   # noqa: E402  (tests/dnsgen.py)

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
    ("1000 A records (TC set)", ("a", 1000), "bounded"),
    ("1000 A records in one oversized datagram", ("a", 1000, "big"), "bounded"),
    ("65 A records", ("a", 65), "bounded"),
    ("an empty answer", ("empty",), "fails"),
    ("NXDOMAIN", ("nxdomain",), "fails"),
    ("SERVFAIL", ("servfail",), "fails"),
    ("REFUSED", ("refused",), "fails"),
    ("silence", ("silence",), "fails"),
    ("garbage", ("garbage", 300), "fails"),
    ("an answer with another query ID", ("wrong_id",), "fails"),
    ("a CNAME loop", ("cname_loop",), "fails"),
    ("a compression pointer loop", ("pointer_loop",), "fails"),
    ("records of another name", ("other_name",), "bounded"),
]


def hostile_server(name, mode):
    """A hostile DNS server answering `name` in `mode`: .port, .stop()."""
    return dnsgen.serve_in_thread({name: mode})


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
