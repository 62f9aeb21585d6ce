"""The endpoint test kit (endpoints.py) works on its own, without braced:
upstreams on several loopback addresses share one port and answer each for
itself, dnsmasq answers and changes its answer, and the name certificate
verifies for its name and for no address."""

import http.client
import shutil
import socket
import ssl
import tempfile
import unittest

from endpoints import (NAME, Dnsmasq, TLSSet, UpstreamSet, dns_query, hosts_file,
                       name_certificate)


class UpstreamSetTest(unittest.TestCase):

    def test_three_upstreams_answer_on_their_addresses_with_one_port(self):
        ups = UpstreamSet().cleanup_with(self)
        self.assertEqual(ups.addresses(), [f"127.0.0.{i}:{ups.port}" for i in (1, 2, 3)])
        for i, up in enumerate(ups.upstreams):
            up.set_default({"status": 200 + i, "body": f"from {i}"})
        for i, host in enumerate(("127.0.0.1", "127.0.0.2", "127.0.0.3")):
            conn = http.client.HTTPConnection(host, ups.port, timeout=5)
            conn.request("GET", f"/x{i}", headers={"Host": f"{NAME}:{ups.port}"})
            resp = conn.getresponse()
            self.assertEqual((resp.status, resp.read()), (200 + i, f"from {i}".encode()))
            conn.close()
        self.assertEqual(ups.counts(), [1, 1, 1])
        self.assertEqual(ups.connections(), [1, 1, 1])
        for i, up in enumerate(ups.upstreams):
            got = up.received()
            self.assertEqual([r["path"] for r in got], [f"/x{i}"])
            hosts = [v for n, v in got[0]["headers"] if n.lower() == "host"]
            self.assertEqual(hosts, [f"{NAME}:{ups.port}"])
        self.assertEqual([i for _, i, _ in ups.arrivals()], [0, 1, 2])
        self.assertEqual(ups.url("/base"), f"http://{NAME}:{ups.port}/base")
        ups.reset()
        self.assertEqual(ups.counts(), [0, 0, 0])

    def test_a_taken_port_is_not_reused(self):
        # A second set cannot have the first one's port: it picks another.
        with UpstreamSet() as first, UpstreamSet() as second:
            self.assertNotEqual(first.port, second.port)
        with self.assertRaises(RuntimeError), UpstreamSet() as third:
            UpstreamSet(port=third.port)

    def test_stop_ends_every_process(self):
        ups = UpstreamSet()
        procs = [u.proc for u in ups.upstreams]
        ups.stop()
        self.assertTrue(all(p.returncode is not None for p in procs))


class DnsmasqTest(unittest.TestCase):

    def test_answers_and_changes_its_answer(self):
        dns = Dnsmasq({NAME: ["127.0.0.1", "127.0.0.2"]}).cleanup_with(self)
        self.assertTrue(dns.nameserver.startswith("127.0.0.1:"))
        rcode, ips = dns_query(dns.nameserver, NAME)
        self.assertEqual((rcode, sorted(ips)), (0, ["127.0.0.1", "127.0.0.2"]))
        dns.set({NAME: ["127.0.0.3"], "other.braced.test": ["127.0.0.2"]})
        self.assertEqual(dns.query(NAME), (0, ["127.0.0.3"]))
        self.assertEqual(dns.query("other.braced.test"), (0, ["127.0.0.2"]))
        dns.set({NAME: ["127.0.0.2"]})
        self.assertEqual(dns.query("other.braced.test")[1], [])
        # Not a name it knows, and no upstream server: no address.
        self.assertEqual(dns.query("unknown.braced.test")[1], [])
        pid = dns.proc.pid
        dns.stop()
        self.assertIsNone(dns_query(f"127.0.0.1:{dns.port}", NAME), f"pid {pid} still answers")

    def test_hosts_file_format(self):
        tmp = tempfile.mkdtemp(prefix="braced-kit-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = hosts_file(tmp, {NAME: ["127.0.0.1", "127.0.0.2"]})
        with open(path) as f:
            lines = [l.split() for l in f if not l.startswith("#")]
        self.assertEqual(lines, [["127.0.0.1", NAME], ["127.0.0.2", NAME]])


class NameCertificateTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="braced-kit-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.ca, cls.cert, cls.key = name_certificate(cls.dir, NAME)
        cls.servers = TLSSet(cls.cert, cls.key)
        cls.addClassCleanup(cls.servers.stop)

    def connect(self, host, server_hostname):
        ctx = ssl.create_default_context(cafile=self.ca)
        sock = socket.create_connection((host, self.servers.port), timeout=5)
        return ctx.wrap_socket(sock, server_hostname=server_hostname)

    def test_verifies_for_the_name_on_each_address(self):
        for server in self.servers.servers:
            with self.subTest(server.host):
                before = server.connections
                tls = self.connect(server.host, NAME)
                tls.sendall(f"GET /p HTTP/1.1\r\nHost: {NAME}:{self.servers.port}\r\n"
                            "Connection: close\r\n\r\n".encode())
                data = b""
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                tls.close()
                self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
                self.assertIn(f'"sni": "{NAME}"'.encode(), data)
                self.assertIn(f'"server": "{server.host}"'.encode(), data)
                self.assertEqual(server.connections, before + 1)
                self.assertEqual(server.requests[-1]["host"], f"{NAME}:{self.servers.port}")

    def test_does_not_verify_for_an_address(self):
        for host in ("127.0.0.2", "127.0.0.1"):
            with self.subTest(host), self.assertRaises(ssl.SSLCertVerificationError):
                self.connect("127.0.0.2", host)

    def test_does_not_verify_without_the_ca(self):
        ctx = ssl.create_default_context()
        sock = socket.create_connection(("127.0.0.2", self.servers.port), timeout=5)
        with self.assertRaises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(sock, server_hostname=NAME)
        sock.close()


if __name__ == "__main__":
    unittest.main()
