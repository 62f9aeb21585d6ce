"""Endpoints (SPEC 4.11): a profile's upstream name becomes a set of
addresses (given in `addresses`, or looked up through `dns.hosts_file` and
`dns.nameservers`), each an endpoint; attempts are balanced over them
(round_robin in turn, peak_ewma away from slow ones), failing endpoints are
ejected for doubling durations, retries go to endpoints the request has not
tried, and the circuit breaker judges requests after their retries (4.8).

Upstreams are tests/upstream.py processes on 127.0.0.1, .2, .3 (and .4)
sharing one port (endpoints.UpstreamSet), so an endpoint is told apart only
by its address; the URL names `api.braced.test`, which nothing outside the
test resolves. Name look-ups go to a hosts file or to dnsmasq on a loopback
port; TLS upstreams serve a certificate for the name only. Every loop is
bounded in count and time, every process is stopped by its PID, and all
traffic stays on 127.0.0.0/8.
"""

import json
import shutil
import tempfile
import time
import unittest

from endpoints import (NAME, Dnsmasq, TLSSet, UpstreamSet, access_lines, endpoint_map,
                       endpoint_of, free_udp_port, hosts_file, metric, metric_lines,
                       metrics_text, name_certificate, status, status_endpoints)
from harness import (Background, Braced, BracedTestCase, binary_problem, fault, in_threads,
                     make_config, merge, wait_until)

PROFILE = "ep"
FAST = {"base": "10ms", "max": "20ms", "jitter": "none"}
RESOLVE_EVERY = 1.0     # seconds, endpoints.resolve_every of the look-up tests
SETTLE = RESOLVE_EVERY + 2.0    # a new set shows within one period, plus the look-up itself


def ep_config(profile, defaults=None, **top):
    """make_config with profile `ep`, the admin listener on, `defaults` merged in."""
    top = merge({"admin": "127.0.0.1:0", "defaults": defaults or {}}, top)
    return make_config({PROFILE: profile}, **top)


def ejected(b):
    """Addresses /status shows ejected now."""
    return sorted(e["address"] for e in status_endpoints(b, PROFILE) if e["state"] == "ejected")


def addresses_in_status(b):
    try:
        return sorted(e["address"] for e in status_endpoints(b, PROFILE))
    except (KeyError, TypeError, ValueError):
        return []


class EndpointCase(unittest.TestCase):
    """Fails (not skips) without a braced binary; upstream sets stop after each test."""

    def setUp(self):
        problem = binary_problem()
        if problem:
            self.fail(problem)

    def upstreams(self, hosts=("127.0.0.1", "127.0.0.2", "127.0.0.3")):
        return UpstreamSet(hosts).cleanup_with(self)

    def tmpdir(self):
        path = tempfile.mkdtemp(prefix="braced-ep-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def by_addresses(self, ups, endpoints=None, defaults=None, extra=None, **top):
        """A profile naming NAME and dialling every address of `ups`."""
        profile = {"upstream": ups.url("/base"), "addresses": ups.addresses()}
        if endpoints is not None:
            profile["endpoints"] = endpoints
        return ep_config(merge(profile, extra), defaults, **top)

    def get_all(self, b, n, path="/ep/item", headers=None):
        """n sequential GETs; every answer must be a 200."""
        answers = []
        for i in range(n):
            resp = b.get(f"{path}/{i}", headers=headers)
            self.assertEqual(resp.status, 200, (i, resp))
            answers.append(resp)
        return answers

    def wait_for_set(self, b, expected, timeout):
        """Wait until /status lists exactly `expected` addresses; fails after `timeout` s."""
        expected = sorted(expected)
        got = wait_until(lambda: addresses_in_status(b) == expected, timeout, step=0.05)
        self.assertTrue(got, f"/status shows {addresses_in_status(b)}, not {expected}, "
                             f"after {timeout} s:\n{b.log()[-3000:]}")

    def logged_endpoints(self, b, n):
        """The endpoints the first n access log lines name (waiting briefly for the last ones)."""
        lines = wait_until(lambda: len(access_lines(b)) >= n and access_lines(b), 5)
        self.assertTrue(lines, f"fewer than {n} access log lines")
        return [endpoint_of(l) for l in lines[:n]]

    def assert_host_header(self, ups):
        for i, up in enumerate(ups.upstreams):
            for r in up.received():
                hosts = [v for n, v in r["headers"] if n.lower() == "host"]
                self.assertEqual(hosts, [f"{NAME}:{ups.port}"], (i, r))


# --- balancing over given addresses ------------------------------------------

class Balancing(EndpointCase):

    def test_round_robin_takes_the_endpoints_in_turn(self):
        """balance: round_robin sends 30 sequential requests to the three
        endpoints strictly in turn, 10 each."""
        ups = self.upstreams()
        with Braced(self.by_addresses(ups, {"balance": "round_robin"})) as b:
            self.get_all(b, 30)
        order = [i for _, i, _ in ups.arrivals()]
        self.assertEqual(len(order), 30, order)
        self.assertEqual(sorted(order[:3]), [0, 1, 2], order)
        self.assertEqual(order, (order[:3] * 10), order)

    def test_peak_ewma_tries_every_endpoint_one_request_at_a_time(self):
        """peak_ewma takes an endpoint it has not measured for the fastest,
        so even one request at a time reaches every endpoint of a fresh set
        within a few requests (none is left idle beside the measured ones)."""
        ups = self.upstreams()
        with Braced(self.by_addresses(ups, {"balance": "peak_ewma"})) as b:
            answers = [b.get(f"/ep/seq/{i}") for i in range(30)]
        self.assertEqual([r.status for r in answers], [200] * 30)
        counts = ups.counts()
        self.assertEqual(sum(counts), 30, counts)
        self.assertTrue(all(c > 0 for c in counts), counts)

    def test_peak_ewma_spreads_load_over_every_endpoint(self):
        """balance: peak_ewma (the default) over three equally fast endpoints
        under load (6 clients at once, 50 ms answers): each endpoint gets
        some of the 60 requests, none most of them."""
        ups = self.upstreams()
        slow = fault(delay_ms=50)
        with Braced(self.by_addresses(ups, {"balance": "peak_ewma"})) as b:
            results = in_threads(lambda c: [b.get(f"/ep/c{c}/{i}", headers=slow)
                                            for i in range(10)],
                                 [(c,) for c in range(6)], timeout=30)
        for batch in results:
            self.assertNotIsInstance(batch, Exception)
            self.assertEqual([r.status for r in batch], [200] * 10, batch)
        counts = ups.counts()
        self.assertEqual(sum(counts), 60, counts)
        self.assertTrue(all(c > 0 for c in counts), counts)
        self.assertLess(max(counts), 40, counts)

    def test_host_is_the_urls_name_whatever_address_is_dialled(self):
        """The upstream sees Host: NAME:PORT (the URL's), never the address
        braced dialled."""
        ups = self.upstreams()
        with Braced(self.by_addresses(ups, {"balance": "round_robin"})) as b:
            answers = self.get_all(b, 6)
        self.assertEqual(ups.counts(), [2, 2, 2])
        self.assert_host_header(ups)
        for resp in answers:
            self.assertEqual(resp.json()["path"][:10], "/base/item", resp)

    def test_connections_are_kept_per_endpoint(self):
        """Keep-alive with several endpoints: 60 requests in turn over three
        endpoints reuse a few connections each (not one per request), and
        each request reaches the endpoint its access log line names, so no
        request rode a connection kept for another endpoint."""
        ups = self.upstreams()
        with Braced(self.by_addresses(ups, {"balance": "round_robin"})) as b:
            self.get_all(b, 60)
            logged = self.logged_endpoints(b, 60)
        self.assertEqual(ups.counts(), [20, 20, 20])
        conns = ups.connections()
        self.assertTrue(all(1 <= c <= 3 for c in conns), f"connections per endpoint: {conns}")
        arrived = [ups.addresses()[i] for _, i, _ in ups.arrivals()]
        self.assertEqual(logged, arrived)

    def test_status_lists_each_endpoint(self):
        """/status shows every endpoint with its state, ejected_until_ms,
        cost_ms, inflight and ejections; a request in flight is counted on
        the endpoint that serves it."""
        ups = self.upstreams()
        with Braced(self.by_addresses(ups, {"balance": "round_robin"})) as b:
            self.get_all(b, 3)
            eps = status_endpoints(b, PROFILE)
            self.assertEqual(sorted(e["address"] for e in eps), sorted(ups.addresses()), eps)
            for e in eps:
                self.assertLessEqual({"address", "state", "ejected_until_ms", "cost_ms",
                                      "inflight", "ejections"}, set(e), e)
                self.assertEqual((e["state"], e["ejected_until_ms"], e["inflight"],
                                  e["ejections"]), ("active", 0, 0, 0), e)
                self.assertIsInstance(e["cost_ms"], (int, float), e)
                self.assertGreaterEqual(e["cost_ms"], 0, e)
            slow = Background(b.get, "/ep/slow", fault(delay_ms=1500))
            busy = wait_until(lambda: [i for i, u in enumerate(ups) if u.stats()["active"]], 5)
            self.assertEqual(len(busy), 1, busy)
            inflight = {e["address"]: e["inflight"] for e in status_endpoints(b, PROFILE)}
            self.assertEqual(slow.result(10).status, 200)
        self.assertEqual(inflight, {a: int(i == busy[0]) for i, a in enumerate(ups.addresses())})


# --- looking the name up -----------------------------------------------------

class NameLookup(EndpointCase):

    def by_name(self, port, dns, endpoints=None, defaults=None):
        profile = {"upstream": f"http://{NAME}:{port}/base",
                   "endpoints": merge({"balance": "round_robin",
                                       "resolve_every": f"{int(RESOLVE_EVERY * 1000)}ms"},
                                      endpoints)}
        return ep_config(profile, defaults, dns=dns)

    def quiet_hosts(self):
        """A hosts file that does not know NAME (the name goes to the nameserver)."""
        return hosts_file(self.tmpdir(), {"localhost": ["127.0.0.1"]})

    def test_hosts_file_names_three_endpoints(self):
        """dns.hosts_file maps NAME to three addresses: three endpoints in
        /status, each taking its turn; the nameserver (nothing listens) is
        never needed."""
        ups = self.upstreams()
        path = hosts_file(self.tmpdir(), {NAME: ["127.0.0.1", "127.0.0.2", "127.0.0.3"]})
        dns = {"hosts_file": path, "nameservers": [f"127.0.0.1:{free_udp_port()}"]}
        with Braced(self.by_name(ups.port, dns)) as b:
            self.wait_for_set(b, ups.addresses(), 5)
            self.get_all(b, 9)
        self.assertEqual(ups.counts(), [3, 3, 3])
        self.assert_host_header(ups)

    def test_reload_looks_up_through_the_new_nameserver(self):
        """A reload to a profile with `addresses` (no look-up), then back to
        the name with another nameserver: the look-ups go to the new one (the
        resolver is compared with the settings it was built from, not with
        the configuration just before)."""
        ups = self.upstreams()
        first = Dnsmasq({NAME: ["127.0.0.1"]}).cleanup_with(self)
        second = Dnsmasq({NAME: ["127.0.0.2"]}).cleanup_with(self)
        hosts = self.quiet_hosts()
        by_first = self.by_name(ups.port, {"nameservers": [first.nameserver], "hosts_file": hosts})
        fixed = ep_config({"upstream": ups.url("/base"), "addresses": ups.addresses()[2:]},
                          dns={"nameservers": [second.nameserver], "hosts_file": hosts})
        by_second = self.by_name(ups.port, {"nameservers": [second.nameserver],
                                            "hosts_file": hosts})
        with Braced(by_first) as b:
            self.wait_for_set(b, ups.addresses()[:1], 5)
            b.reload(fixed)
            self.wait_for_set(b, ups.addresses()[2:], 5)
            b.reload(by_second)
            self.wait_for_set(b, ups.addresses()[1:2], SETTLE)

    def test_new_addresses_are_taken_within_resolve_every(self):
        """The name resolves to .1 and .2, then to .2 and .3: within
        resolve_every (1 s) /status shows the new set, the new endpoint
        takes its turn and the departed one gets nothing more."""
        ups = self.upstreams()
        dnsmasq = Dnsmasq({NAME: ["127.0.0.1", "127.0.0.2"]}).cleanup_with(self)
        dns = {"nameservers": [dnsmasq.nameserver], "hosts_file": self.quiet_hosts()}
        with Braced(self.by_name(ups.port, dns)) as b:
            self.wait_for_set(b, ups.addresses()[:2], 5)
            self.get_all(b, 6)
            self.assertEqual(ups.counts(), [3, 3, 0])
            dnsmasq.set({NAME: ["127.0.0.2", "127.0.0.3"]})
            self.wait_for_set(b, ups.addresses()[1:], SETTLE)
            ups.reset()
            self.get_all(b, 6)
        self.assertEqual(ups.counts(), [0, 3, 3])

    def test_departed_endpoint_finishes_its_request(self):
        """A request in flight on an endpoint that leaves the set (a 3 s
        answer; the name moves to .2 meanwhile) still completes with its 200,
        and later requests go to the new endpoint."""
        ups = self.upstreams()
        dnsmasq = Dnsmasq({NAME: ["127.0.0.1"]}).cleanup_with(self)
        dns = {"nameservers": [dnsmasq.nameserver], "hosts_file": self.quiet_hosts()}
        with Braced(self.by_name(ups.port, dns, defaults={"timeouts": {"read": "10s"}})) as b:
            self.wait_for_set(b, ups.addresses()[:1], 5)
            start = time.monotonic()
            slow = Background(b.get, "/ep/slow", fault(delay_ms=3000))
            self.assertTrue(wait_until(lambda: ups[0].stats()["active"] == 1, 5))
            dnsmasq.set({NAME: ["127.0.0.2"]})
            self.wait_for_set(b, ups.addresses()[1:2], SETTLE)
            changed = time.monotonic()
            resp = slow.result(15)
            self.get_all(b, 4)
        self.assertLess(changed, start + resp.elapsed, "the set changed only after the answer")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["path"], "/base/slow")
        self.assertEqual(ups.counts(), [1, 4, 0])

    def test_failed_lookup_keeps_the_last_set_and_is_logged_once(self):
        """The nameserver goes away: the endpoints looked up before stay, the
        requests keep being served, and the failure is logged once however
        many look-ups fail after it (a warn or error line naming the name)."""
        ups = self.upstreams()
        dnsmasq = Dnsmasq({NAME: ["127.0.0.1", "127.0.0.2"]}).cleanup_with(self)
        dns = {"nameservers": [dnsmasq.nameserver], "hosts_file": self.quiet_hosts()}
        with Braced(self.by_name(ups.port, dns)) as b:
            self.wait_for_set(b, ups.addresses()[:2], 5)
            before = len(b.log_lines())

            def failures():
                return [l for l in b.log_lines()[before:]
                        if l.get("level") in ("warn", "error") and l.get("msg") != "request"
                        and NAME in json.dumps(l)]

            stopped = time.monotonic()
            dnsmasq.stop()
            # A look-up to a nameserver that is gone ends when evdns gives up
            # on it (its timeouts and retransmits): bounded at 30 s. Then as
            # long again plus two periods, so that more look-ups fail after it.
            self.assertTrue(wait_until(failures, 30, step=0.1),
                            "no log line about the failed look-up:\n" + b.log()[-3000:])
            time.sleep(max(4 * RESOLVE_EVERY, time.monotonic() - stopped + 2 * RESOLVE_EVERY))
            self.assertEqual(addresses_in_status(b), ups.addresses()[:2])
            self.get_all(b, 4)
            self.assertEqual(len(failures()), 1, failures())
        self.assertEqual(ups.counts(), [2, 2, 0])


# --- TLS: the name is checked whichever address is dialled ------------------

class TLSByAddress(EndpointCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="braced-ep-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.ca, cert, key = name_certificate(cls.dir, NAME)
        cls.servers = TLSSet(cert, key, hosts=("127.0.0.2", "127.0.0.3"))
        cls.addClassCleanup(cls.servers.stop)

    def setUp(self):
        super().setUp()
        for s in self.servers.servers:
            s.reset()

    def tls_config(self, name=NAME):
        profile = {"upstream": self.servers.url("/base", name=name),
                   "addresses": self.servers.addresses(),
                   "tls": {"ca_file": self.ca},
                   "endpoints": {"balance": "round_robin"}}
        return ep_config(profile)

    def test_name_is_verified_and_sent_whichever_address_is_dialled(self):
        """https://api.braced.test:PORT dialled at 127.0.0.2 and 127.0.0.3,
        whose certificate names api.braced.test and no address: 200, with
        SNI and Host carrying the name."""
        with Braced(self.tls_config()) as b:
            answers = self.get_all(b, 4)
        for resp in answers:
            doc = resp.json()
            self.assertEqual((doc["sni"], doc["host"]), (NAME, f"{NAME}:{self.servers.port}"), doc)
        self.assertEqual([len(s.requests) for s in self.servers.servers], [2, 2])
        self.assertEqual([s.failed_handshakes for s in self.servers.servers], [0, 0])

    def test_another_name_is_refused(self):
        """The same addresses under a URL naming another host: the
        certificate does not match the URL's name, so every attempt is a
        connect failure and nothing is sent."""
        with Braced(self.tls_config(name="other.braced.test")) as b:
            resp = b.get("/ep/x")
        self.assertEqual(resp.status, 502, resp)
        self.assertEqual(resp.headers.get("Brace-Error"), "upstream_unavailable", resp)
        history = resp.json()["history"]
        self.assertEqual([h["outcome"] for h in history], ["connect"], history)
        self.assertIn(endpoint_of(history[0]), self.servers.addresses(), history)
        self.assertEqual([len(s.requests) for s in self.servers.servers], [0, 0])
        # The chain verifies, so the handshake may complete before the name
        # is refused (libcurl checks it after): a connection was dialled.
        self.assertGreaterEqual(sum(s.connections + s.failed_handshakes
                                    for s in self.servers.servers), 1)

    def test_tls_connections_are_kept_per_endpoint(self):
        """40 requests in turn over two TLS endpoints: a few connections each,
        and every request reaches the endpoint its access log line names."""
        with Braced(self.tls_config()) as b:
            self.get_all(b, 40)
            logged = self.logged_endpoints(b, 40)
        self.assertEqual([len(s.requests) for s in self.servers.servers], [20, 20])
        conns = [s.connections for s in self.servers.servers]
        self.assertTrue(all(1 <= c <= 3 for c in conns), f"connections per endpoint: {conns}")
        arrived = [self.servers.addresses()[i] for _, i, _ in self.servers.arrivals()]
        self.assertEqual(logged, arrived)


# --- ejection -----------------------------------------------------------------

class Ejection(EndpointCase):

    def test_an_open_stream_does_not_weigh_on_its_endpoint(self):
        """An endpoint is measured by its answer's head: while a stream it
        sent is still flowing (3 s of server-sent events), /status shows it
        with nothing in flight and the cost of its head, not of the stream's
        age, so it keeps drawing short requests."""
        two = self.upstreams(("127.0.0.1", "127.0.0.2"))
        config = self.by_addresses(two, {"balance": "peak_ewma"})
        with Braced(config) as b:
            stream = Background(lambda: b.get(
                "/ep/stream", headers=fault(sse={"events": 15, "interval_ms": 200}), timeout=10))
            time.sleep(1.5)
            during = status_endpoints(b, PROFILE)
            self.assertEqual(stream.result(timeout=10).status, 200)
        streaming = [e for e in during if two.counts()[two.index_of(e["address"])] > 0]
        self.assertEqual(len(streaming), 1, during)
        self.assertEqual(streaming[0]["inflight"], 0, during)
        self.assertLess(streaming[0]["cost_ms"], 100, during)

    def test_hung_endpoint_cut_by_the_budget_is_ejected(self):
        """One endpoint accepts and never answers, and timeouts.total (300 ms)
        is shorter than timeouts.read: braced cuts its attempts itself, before
        libcurl's read timeout. Those cuts are timeouts of the endpoint: with
        round_robin and consecutive_failures 3 it costs exactly three answers
        (504 upstream_timeout), is ejected, and the breaker stays closed."""
        ups = self.upstreams()
        ups[2].set_default({"delay_ms": 5000})
        config = self.by_addresses(
            ups, {"balance": "round_robin", "eject": {"consecutive_failures": 3, "base": "30s"}},
            defaults={"timeouts": {"total": "300ms"}})
        with Braced(config) as b:
            answers = [b.get(f"/ep/hung/{i}") for i in range(30)]
            state = status(b)["profiles"][PROFILE]
        codes = [r.headers.get("Brace-Error") for r in answers]
        self.assertEqual(codes.count("upstream_timeout"), 3, codes)
        self.assertEqual([r.status for r in answers].count(200), 27, codes)
        hung = [e for e in state["endpoints"] if e["address"] == ups.addresses()[2]][0]
        self.assertEqual(hung["state"], "ejected", state["endpoints"])
        self.assertEqual(state["breaker"]["state"], "closed")

    def test_hung_endpoint_is_avoided_by_peak_ewma(self):
        """The same hung endpoint under peak_ewma (no ejection yet: 5 in a
        row): a cut attempt's time counts, so it stops drawing requests after
        its first cut instead of looking like the fastest for ever."""
        ups = self.upstreams()
        ups[2].set_default({"delay_ms": 5000})
        config = self.by_addresses(ups, {"balance": "peak_ewma"},
                                   defaults={"timeouts": {"total": "300ms"}})
        with Braced(config) as b:
            answers = [b.get(f"/ep/hung/{i}") for i in range(40)]
        codes = [r.headers.get("Brace-Error") for r in answers]
        self.assertLessEqual(codes.count("upstream_timeout"), 2, codes)
        self.assertNotIn("circuit_open", codes)

    def test_failing_endpoint_is_ejected_and_retries_go_elsewhere(self):
        """One endpoint answers 503 to everything: every app request still
        succeeds (its retry goes to an endpoint it has not tried), the
        failing one is ejected after 3 failures in a row (status and
        metrics), and after that every request takes one attempt. (The
        endpoints settings here come from `defaults`.)"""
        ups = self.upstreams()
        ups[0].set_default({"status": 503})
        endpoints = {"balance": "round_robin", "retry_elsewhere": True,
                     "eject": {"consecutive_failures": 3, "base": "10s", "max": "5m",
                               "max_percent": 50}}
        cfg = self.by_addresses(ups, None, {"retry": {"attempts": 3, "backoff": FAST},
                                            "endpoints": endpoints})
        with Braced(cfg) as b:
            answers = self.get_all(b, 60)
            eps = endpoint_map(b, PROFILE)
            gauges = (metric(b, f'braced_endpoints{{profile="{PROFILE}",state="active"}}'),
                      metric(b, f'braced_endpoints{{profile="{PROFILE}",state="ejected"}}'),
                      metric(b, f'braced_endpoint_ejections_total{{profile="{PROFILE}"}}'))
            logged = self.logged_endpoints(b, 60)
        bad = ups.addresses()[0]
        self.assertEqual(ups[0].stats()["requests"], 3, "attempts the failing endpoint took")
        self.assertEqual(sum(ups.counts()), 60 + 3, ups.counts())
        self.assertEqual(sum(int(r.headers["Brace-Attempts"]) for r in answers), 63)
        self.assertEqual(eps[bad]["state"], "ejected", eps)
        self.assertTrue(0 < eps[bad]["ejected_until_ms"] <= 10000, eps)
        self.assertEqual(eps[bad]["ejections"], 1, eps)
        for address in ups.addresses()[1:]:
            self.assertEqual(eps[address]["state"], "active", eps)
        self.assertEqual(gauges, (2, 1, 1))
        self.assertEqual(len(logged), 60)
        self.assertNotIn(bad, logged, "an answer came from the failing endpoint")

    def test_slow_endpoint_gets_a_small_share(self):
        """peak_ewma: one endpoint answering in 300 ms gets under 10% of 200
        sequential requests once its cost is known; it is slow, not failing,
        so it stays active."""
        ups = self.upstreams()
        ups[2].set_default({"delay_ms": 300})
        with Braced(self.by_addresses(ups, {"balance": "peak_ewma"})) as b:
            self.get_all(b, 20, "/ep/warm")
            ups.reset()
            ups[2].set_default({"delay_ms": 300})
            self.get_all(b, 200)
            states = [e["state"] for e in status_endpoints(b, PROFILE)]
        counts = ups.counts()
        self.assertEqual(sum(counts), 200, counts)
        self.assertLess(counts[2], 20, f"the slow endpoint's share: {counts}")
        self.assertEqual(states, ["active"] * 3)

    def test_drifting_endpoint_is_ejected_and_never_reaches_the_app(self):
        """One endpoint answers bodies that fail the route's response schema
        (enforce, retry.on_schema_violation): no drifted body reaches the
        app, each is retried on another endpoint, and the drifting endpoint
        is ejected after 3 in a row."""
        ups = self.upstreams()
        ups[1].set_default({"body": json.dumps({"path": 42}),
                            "headers": {"Content-Type": "application/json"}})
        route = {"match": "GET /v1/item/{n}",
                 "response": {"mode": "enforce", "statuses": [200],
                              "body": {"type": "object", "required": ["path"],
                                       "properties": {"path": {"type": "string"}}}}}
        endpoints = {"balance": "round_robin", "retry_elsewhere": True,
                     "eject": {"consecutive_failures": 3, "base": "10s"}}
        retry = {"attempts": 3, "backoff": FAST, "on_schema_violation": True}
        cfg = self.by_addresses(ups, endpoints, {"retry": retry}, {"routes": [route]})
        with Braced(cfg) as b:
            answers = self.get_all(b, 30, "/ep/v1/item")
            eps = endpoint_map(b, PROFILE)
        for i, resp in enumerate(answers):
            self.assertIsNone(resp.headers.get("Brace-Error"), resp)
            self.assertEqual(resp.json()["path"], f"/base/v1/item/{i}", resp)
        self.assertEqual(ups[1].stats()["requests"], 3, "attempts the drifting endpoint took")
        self.assertEqual(eps[ups.addresses()[1]]["state"], "ejected", eps)

    def wait_state(self, b, address, state, timeout):
        got = wait_until(lambda: endpoint_map(b, PROFILE)[address]["state"] == state, timeout,
                         step=0.02)
        self.assertTrue(got, f"{address} not {state} within {timeout} s: "
                             f"{endpoint_map(b, PROFILE)}")
        return time.monotonic()

    def eject_once(self, b, address, limit=10):
        """Requests (each a 200) until /status shows `address` ejected; its endpoint object."""
        for i in range(limit):
            resp = b.get(f"/ep/until-ejected/{i}")
            self.assertEqual(resp.status, 200, resp)
            e = endpoint_map(b, PROFILE)[address]
            if e["state"] == "ejected":
                return e, time.monotonic()
        self.fail(f"{address} not ejected after {limit} requests: {endpoint_map(b, PROFILE)}")

    def test_ejection_doubles_up_to_max_and_a_success_resets_it(self):
        """consecutive_failures 1, base 1s, max 3s: a failing endpoint is
        ejected for 1 s, then 2 s, then 3 s (the cap), taking traffic again
        after each; once it answers well, its next ejection is 1 s again."""
        ups = self.upstreams(("127.0.0.1", "127.0.0.2"))
        bad = ups.addresses()[0]
        ups[0].set_default({"status": 503})
        endpoints = {"balance": "round_robin", "retry_elsewhere": True,
                     "eject": {"consecutive_failures": 1, "base": "1s", "max": "3s",
                               "max_percent": 50}}
        cfg = self.by_addresses(ups, endpoints, {"retry": {"attempts": 2, "backoff": FAST}})
        seen = []
        with Braced(cfg) as b:
            for expected in (1000, 2000, 3000):
                e, t_out = self.eject_once(b, bad)
                t_back = self.wait_state(b, bad, "active", expected / 1000 + 2)
                seen.append((expected, e["ejected_until_ms"], round((t_back - t_out) * 1000),
                             e["ejections"]))
            ups[0].set_default({})
            for i in range(10):
                self.assertEqual(b.get(f"/ep/heal/{i}").status, 200)
                if any(r["status"] == 200 for r in ups[0].received()[-3:]):
                    break
            else:
                self.fail("the healed endpoint never answered")
            ups[0].set_default({"status": 503})
            e, t_out = self.eject_once(b, bad)
            t_back = self.wait_state(b, bad, "active", 3)
            seen.append((1000, e["ejected_until_ms"], round((t_back - t_out) * 1000),
                         e["ejections"]))
        for expected, until, lasted, _ in seen:
            self.assertTrue(expected - 400 <= until <= expected, seen)
            self.assertTrue(expected - 400 <= lasted <= expected + 600, seen)
        counts = [n for *_, n in seen]
        self.assertEqual(counts[:3], [1, 2, 3], seen)
        self.assertGreater(counts[3], 0, seen)

    def test_last_endpoint_is_never_ejected(self):
        """Two endpoints both failing, max_percent 100: one is ejected, the
        other keeps taking every request (the app gets the upstream's 503,
        not a local error)."""
        ups = self.upstreams(("127.0.0.1", "127.0.0.2"))
        for up in ups:
            up.set_default({"status": 503})
        endpoints = {"balance": "round_robin",
                     "eject": {"consecutive_failures": 2, "base": "10s", "max_percent": 100}}
        most = 0
        with Braced(self.by_addresses(ups, endpoints)) as b:
            for i in range(20):
                resp = b.get(f"/ep/down/{i}")
                self.assertEqual((resp.status, resp.headers.get("Brace-Error")),
                                 (503, "upstream_status"), resp)
                most = max(most, len(ejected(b)))
            final = ejected(b)
        self.assertEqual(most, 1)
        self.assertEqual(len(final), 1, final)
        self.assertEqual(sum(ups.counts()), 20, ups.counts())

    def test_max_percent_caps_the_ejected_share(self):
        """Four endpoints all failing, max_percent 50: two are ejected, never
        more."""
        ups = self.upstreams(("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"))
        for up in ups:
            up.set_default({"status": 503})
        endpoints = {"balance": "round_robin",
                     "eject": {"consecutive_failures": 1, "base": "10s", "max_percent": 50}}
        most = 0
        with Braced(self.by_addresses(ups, endpoints)) as b:
            for i in range(20):
                b.get(f"/ep/down/{i}")
                most = max(most, len(ejected(b)))
            final = ejected(b)
            gauge = metric(b, f'braced_endpoints{{profile="{PROFILE}",state="ejected"}}')
        self.assertEqual(most, 2)
        self.assertEqual(len(final), 2, final)
        self.assertEqual(gauge, 2)


# --- retries and hedges go elsewhere, reloads change the set -----------------

class Elsewhere(EndpointCase):

    def test_retry_goes_to_an_endpoint_not_tried(self):
        """peak_ewma with retry_elsewhere: one endpoint fails at once (503),
        the other answers well but slowly (1.5 s), so the failing one can
        look the cheaper; a retry still goes to the endpoint the request has
        not tried, and every request succeeds."""
        ups = self.upstreams(("127.0.0.1", "127.0.0.2"))
        ups[0].set_default({"status": 503})
        ups[1].set_default({"delay_ms": 1500})
        endpoints = {"balance": "peak_ewma", "retry_elsewhere": True}
        defaults = {"retry": {"attempts": 2, "backoff": FAST}}
        with Braced(self.by_addresses(ups, endpoints, defaults)) as b:
            answers = [b.get(f"/ep/r/{i}") for i in range(3)]
            logged = self.logged_endpoints(b, 3)
        for resp in answers:
            self.assertEqual(resp.status, 200, resp)
        self.assertEqual(logged, [ups.addresses()[1]] * 3)
        retried = [r for r in answers if r.headers.get("Brace-Attempts") == "2"]
        self.assertEqual(len(retried), ups[0].stats()["requests"], answers)

    def test_hedge_goes_to_another_endpoint(self):
        """With retry_elsewhere, a hedge leaves the endpoint whose answer is
        late: one endpoint answers in 2 s, the other at once, hedge.delay
        50 ms; every request is answered quickly, also those whose first
        attempt went to the slow one."""
        ups = self.upstreams(("127.0.0.1", "127.0.0.2"))
        ups[0].set_default({"delay_ms": 2000})
        endpoints = {"balance": "round_robin", "retry_elsewhere": True}
        defaults = {"hedge": {"delay": "50ms", "max": 1},
                    "retry": {"attempts": 3, "backoff": FAST}}
        with Braced(self.by_addresses(ups, endpoints, defaults)) as b:
            answers = [b.get(f"/ep/h/{i}") for i in range(4)]
        self.assertGreaterEqual(ups[0].stats()["requests"], 1, "no first attempt on the slow one")
        for resp in answers:
            self.assertEqual(resp.status, 200, resp)
            self.assertLess(resp.elapsed, 1.0, resp)
        hedged = [r for r in answers if r.headers.get("Brace-Attempts") == "2"]
        self.assertEqual(len(hedged), ups[0].stats()["requests"], answers)

    def test_reload_changes_the_addresses(self):
        """A reload that changes `addresses` from .1 and .2 to .2 and .3:
        /status shows the new set and traffic follows it."""
        ups = self.upstreams()
        endpoints = {"balance": "round_robin"}
        profile = {"upstream": ups.url("/base"), "endpoints": endpoints}
        first = ep_config(dict(profile, addresses=ups.addresses()[:2]))
        second = ep_config(dict(profile, addresses=ups.addresses()[1:]))
        with Braced(first) as b:
            self.get_all(b, 4)
            self.assertEqual(ups.counts(), [2, 2, 0])
            b.reload(second)
            self.wait_for_set(b, ups.addresses()[1:], 5)
            ups.reset()
            self.get_all(b, 4)
        self.assertEqual(ups.counts(), [0, 2, 2])


# --- what names the endpoint --------------------------------------------------

class Reporting(EndpointCase):

    def test_history_names_each_attempts_endpoint(self):
        """Three endpoints all 503, three attempts, retry_elsewhere: the
        problem's history names three different endpoints, one attempt each,
        and the access log names the last one."""
        ups = self.upstreams()
        for up in ups:
            up.set_default({"status": 503})
        # One failure per endpoint: fewer than consecutive_failures (5), none is ejected.
        endpoints = {"balance": "round_robin", "retry_elsewhere": True}
        defaults = {"retry": {"attempts": 3, "backoff": FAST}, "upstream_errors": "envelope"}
        with Braced(self.by_addresses(ups, endpoints, defaults)) as b:
            resp = b.get("/ep/x")
            last = self.logged_endpoints(b, 1)[0]
        doc = resp.json()
        self.assertEqual((resp.status, doc.get("code")), (503, "upstream_status"), doc)
        history = doc["history"]
        self.assertEqual(len(history), 3, doc)
        self.assertEqual(sorted(endpoint_of(h) for h in history), sorted(ups.addresses()), doc)
        self.assertEqual(ups.counts(), [1, 1, 1])
        self.assertEqual(last, endpoint_of(history[-1]), doc)

    def test_access_log_names_the_endpoint_that_answered(self):
        """Each access log line names the endpoint that served its request."""
        ups = self.upstreams()
        with Braced(self.by_addresses(ups, {"balance": "round_robin"})) as b:
            for i in range(6):
                before = ups.counts()
                self.assertEqual(b.get(f"/ep/one/{i}").status, 200)
                served = [j for j, (x, y) in enumerate(zip(before, ups.counts())) if y > x]
                self.assertTrue(wait_until(lambda: len(access_lines(b)) == i + 1, 5))
                self.assertEqual(endpoint_of(access_lines(b)[i]), ups.addresses()[served[0]])

    def test_metrics_count_endpoints_without_addresses(self):
        """braced_endpoints{profile,state} and
        braced_endpoint_ejections_total{profile} are exported; no label
        carries an address (their number would grow with every look-up)."""
        ups = self.upstreams()
        with Braced(self.by_addresses(ups)) as b:
            self.get_all(b, 3)
            text = metrics_text(b)
            lines = metric_lines(b, "braced_endpoints") + \
                metric_lines(b, "braced_endpoint_ejections_total")
        self.assertIn(f'braced_endpoints{{profile="{PROFILE}",state="active"}} 3', text)
        self.assertIn(f'braced_endpoints{{profile="{PROFILE}",state="ejected"}} 0', text)
        self.assertIn(f'braced_endpoint_ejections_total{{profile="{PROFILE}"}} 0', text)
        self.assertIn("# TYPE braced_endpoints gauge", text)
        self.assertIn("# TYPE braced_endpoint_ejections_total counter", text)
        for line in lines:
            labels = line[line.index("{") + 1:line.index("}")]
            names = {kv.split("=", 1)[0] for kv in labels.split(",")}
            self.assertLessEqual(names, {"profile", "state"}, line)
        for address in ("127.0.0.2", "127.0.0.3", f":{ups.port}"):
            self.assertNotIn(address, text)


if __name__ == "__main__":
    unittest.main()
