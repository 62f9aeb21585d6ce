"""The shipped pod at its memory limit: braced run on conf/pod.yaml holds
K large exchanges at once (answers just under max_response_body, request
bodies near max_request_body, apps that do not read yet), and stays within
the limit deploy/kubernetes/braced.yaml derives from those settings:

    limit >= baseline + K x (max_response_body + max_request_body)

An answer is held once: the relayed body is the received buffer, never a
copy of it (35aca03 held about twice the answer while relaying it)."""

import os
import re
import socket
import unittest

from harness import REPO, Braced, UpstreamProcess, binary_problem, wait_until

POD = os.path.join(REPO, "conf", "pod.yaml")
MANIFEST = os.path.join(REPO, "deploy", "kubernetes", "braced.yaml")
MIB = 1024 * 1024
IO_TIMEOUT = 30


def size_of(text, key):
    m = re.search(rf"^\s*{key}:\s*(\d+)MiB\s*$", text, re.M)
    if not m:
        raise AssertionError(f"conf/pod.yaml sets no {key} in MiB")
    return int(m.group(1)) * MIB


def manifest_formula():
    """(limit bytes, baseline bytes, K) from the manifest's resources and formula comment."""
    with open(MANIFEST) as f:
        text = f.read()
    limit = re.search(r"limits:\s*\{memory:\s*(\d+)Mi\}", text)
    baseline = re.search(r"baseline\s*=\s*(\d+)\s*MiB", text)
    k = re.search(r"\bK\s*=\s*(\d+)\b", text)
    if not (limit and baseline and k):
        raise AssertionError("the manifest must give its memory limit with the formula "
                             "(baseline = N MiB, K = N) beside it")
    return int(limit.group(1)) * MIB, int(baseline.group(1)) * MIB, int(k.group(1))


def memory(pid):
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    return {k: int(re.search(rf"^{k}:\s+(\d+) kB", text, re.M).group(1)) * 1024
            for k in ("VmHWM", "VmRSS")}


class PodAtItsLimit(unittest.TestCase):
    def setUp(self):
        problem = binary_problem()
        if problem:
            self.fail(problem)
        self.upstream = UpstreamProcess()
        self.addCleanup(self.upstream.stop)

    def test_formula_holds_for_the_shipped_limits(self):
        with open(POD) as f:
            pod = f.read()
        limit, baseline, k = manifest_formula()
        answer_max, request_max = size_of(pod, "max_response_body"), size_of(pod, "max_request_body")
        self.assertGreaterEqual(limit, baseline + k * (answer_max + request_max),
                                "the manifest's limit is below its own formula")

    def test_k_large_exchanges_fit_in_the_pods_limit(self):
        with open(POD) as f:
            pod = f.read()
        limit, baseline, k = manifest_formula()
        answer_max, request_max = size_of(pod, "max_response_body"), size_of(pod, "max_request_body")
        config = (pod.replace("listen: 127.0.0.1:7070", "listen: 127.0.0.1:0")
                  .replace("admin: 0.0.0.0:7071", 'admin: "off"'))
        answer = answer_max - 100 * 1024
        body = b"y" * (request_max - 100 * 1024)
        self.upstream.script([{"status": 200, "body": "x" * answer}] * k)
        with Braced(config, env={"UPSTREAM_URL": self.upstream.url("/base")}) as b:
            with open(f"/proc/{b.proc.pid}/maps") as f:
                if "libasan" in f.read():
                    self.skipTest("AddressSanitizer's shadow memory and quarantine are not "
                                  "braced's: the plain build runs this case")
            before = memory(b.proc.pid)
            socks = []
            try:
                for i in range(k):
                    s = socket.create_connection(("127.0.0.1", b.port), timeout=IO_TIMEOUT)
                    socks.append(s)
                    # An app that does not read yet: braced holds the answer.
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.sendall(f"POST /api/big{i} HTTP/1.1\r\nHost: braced\r\n"
                              f"Content-Type: application/octet-stream\r\n"
                              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                # Every answer's head is relayed; the bodies wait for their apps.
                for s in socks:
                    self.assertTrue(s.recv(64).startswith(b"HTTP/1.1 200 "), b.log()[-2000:])
                held = memory(b.proc.pid)
            finally:
                for s in socks:
                    s.close()
        growth = held["VmHWM"] - before["VmHWM"]
        self.assertLessEqual(held["VmHWM"], limit,
                             f"peak {held['VmHWM'] / MIB:.1f} MiB over the pod's {limit / MIB:.0f} MiB")
        self.assertLessEqual(growth, k * (answer_max + request_max),
                             f"{k} exchanges grew the peak by {growth / MIB:.1f} MiB")
        self.assertLessEqual(before["VmHWM"], baseline)


if __name__ == "__main__":
    unittest.main()
