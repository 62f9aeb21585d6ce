"""The shipped pod at its memory limit. braced run on conf/pod.yaml under
the worst load its limits allow stays within the limit the manifest
(deploy/kubernetes/braced.yaml) derives from those limits:

    limit >= baseline + max_buffered + max_inflight x (2 x stream_buffer + S)
                      + max_connections x C

The load: request bodies held for retries filling max_buffered (their
upstream answers late), every other request slot streaming both ways (an
upload piped to an upstream that never reads it, while that upstream's
1 GiB answer streams to an app that does not read either), and every other
app connection open. Bodies stream, so no size of body enters the formula.
"""

import os
import re
import socket
import time
import unittest

from harness import REPO, Braced, UpstreamProcess, binary_problem, wait_until

POD = os.path.join(REPO, "conf", "pod.yaml")
MANIFEST = os.path.join(REPO, "deploy", "kubernetes", "braced.yaml")
KIB = 1024
MIB = 1024 * KIB
IO_TIMEOUT = 30
HELD = 8    # bodies held for retries, 2 MiB each: 16 MiB, max_buffered


def pod_limits():
    with open(POD) as f:
        text = f.read()

    def value(key, unit=None):
        m = re.search(rf"^\s*{key}:\s*(\d+)(KiB|MiB)?\b", text, re.M)
        if not m:
            raise AssertionError(f"conf/pod.yaml sets no {key}")
        return int(m.group(1)) * {None: 1, "KiB": KIB, "MiB": MIB}[m.group(2)]
    return text, {k: value(k) for k in ("stream_buffer", "retry_buffer", "max_buffered",
                                        "max_inflight", "max_connections")}


def manifest_formula():
    """(limit, baseline, S, C) in bytes from the manifest's resources and comment."""
    with open(MANIFEST) as f:
        text = f.read()
    limit = re.search(r"limits:\s*\{memory:\s*(\d+)Mi\}", text)
    baseline = re.search(r"baseline\s*=\s*(\d+)\s*MiB", text)
    s = re.search(r"\bS\s*=\s*(\d+)\s*KiB", text)
    c = re.search(r"\bC\s*=\s*(\d+)\s*KiB", text)
    if not (limit and baseline and s and c):
        raise AssertionError("the manifest must give its memory limit with the formula "
                             "(baseline = N MiB, S = N KiB, C = N KiB) beside it")
    return (int(limit.group(1)) * MIB, int(baseline.group(1)) * MIB, int(s.group(1)) * KIB,
            int(c.group(1)) * KIB)


def formula(lim, baseline, s, c):
    return (baseline + lim["max_buffered"] + lim["max_inflight"] * (2 * lim["stream_buffer"] + s)
            + lim["max_connections"] * c)


def memory(pid):
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    return {k: int(re.search(rf"^{k}:\s+(\d+) kB", text, re.M).group(1)) * KIB
            for k in ("VmHWM", "VmRSS", "RssAnon")}


class PodAtItsLimit(unittest.TestCase):
    def setUp(self):
        problem = binary_problem()
        if problem:
            self.fail(problem)
        self.upstream = UpstreamProcess()
        self.addCleanup(self.upstream.stop)

    def test_formula_holds_for_the_shipped_limits(self):
        _, lim = pod_limits()
        limit, baseline, s, c = manifest_formula()
        self.assertGreaterEqual(limit, formula(lim, baseline, s, c),
                                "the manifest's limit is below its own formula")
        self.assertGreaterEqual(lim["max_buffered"], HELD * 2 * MIB)

    def test_worst_load_fits_in_the_pods_limit(self):
        text, lim = pod_limits()
        limit, baseline, s, c = manifest_formula()
        config = (text.replace("listen: 127.0.0.1:7070", "listen: 127.0.0.1:0")
                  .replace("admin: 0.0.0.0:7071", 'admin: "off"')
                  # held bodies of 2 MiB: retry_buffer raised within max_buffered
                  .replace("retry_buffer: 1MiB", "retry_buffer: 2MiB"))
        streams = lim["max_inflight"] - HELD
        idle = lim["max_connections"] - lim["max_inflight"] - 8
        self.upstream.script([{"delay_ms": 20000, "body": "late"}] * HELD)
        self.upstream.set_default({"ignore_body": True, "generate": {"bytes": 1 << 30, "seed": 1}})
        socks = []
        with Braced(config, env={"UPSTREAM_URL": self.upstream.url("/base")}) as b:
            with open(f"/proc/{b.proc.pid}/maps") as f:
                if "libasan" in f.read():
                    self.skipTest("AddressSanitizer's shadow memory and quarantine are not "
                                  "braced's: the plain build runs this case")
            before = memory(b.proc.pid)
            try:
                held = b"h" * (2 * MIB)
                for i in range(HELD):
                    s_ = socket.create_connection(("127.0.0.1", b.port), timeout=IO_TIMEOUT)
                    socks.append(s_)
                    s_.sendall(f"PUT /api/held{i} HTTP/1.1\r\nHost: braced\r\n"
                               f"Content-Length: {len(held)}\r\n\r\n".encode() + held)
                self.assertTrue(wait_until(lambda: len(self.upstream.received()) >= HELD,
                                           IO_TIMEOUT), b.log()[-2000:])
                writers = []
                for i in range(streams):
                    s_ = socket.socket()
                    s_.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s_.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                    s_.settimeout(IO_TIMEOUT)
                    s_.connect(("127.0.0.1", b.port))
                    s_.sendall(f"PUT /api/both{i} HTTP/1.1\r\nHost: braced\r\n"
                               f"Content-Length: {1 << 30}\r\n\r\n".encode())
                    s_.setblocking(False)
                    socks.append(s_)
                    writers.append(s_)
                for i in range(idle):
                    socks.append(socket.create_connection(("127.0.0.1", b.port),
                                                          timeout=IO_TIMEOUT))
                # The apps write their uploads until braced stops taking them.
                chunk = b"u" * 65536
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    for w in writers:
                        try:
                            w.send(chunk)
                        except (BlockingIOError, ConnectionError):
                            pass
                    time.sleep(0.02)
                time.sleep(1)
                loaded = memory(b.proc.pid)
                streaming = sum(1 for w in writers if self._has_head(w))
            finally:
                for s_ in socks:
                    s_.close()
        self.assertGreaterEqual(streaming, streams * 9 // 10,
                                "the load did not happen: few answers streamed")
        self.assertLessEqual(loaded["VmHWM"], limit,
                             f"peak {loaded['VmHWM'] / MIB:.1f} MiB over the pod's "
                             f"{limit / MIB:.0f} MiB")
        self.assertLessEqual(loaded["VmHWM"], formula(lim, baseline, s, c),
                             f"peak {loaded['VmHWM'] / MIB:.1f} MiB over the formula")
        self.assertLessEqual(before["VmHWM"], baseline)

    @staticmethod
    def _has_head(sock):
        try:
            return sock.recv(16).startswith(b"HTTP/1.1 200")
        except (BlockingIOError, ConnectionError):
            return False


if __name__ == "__main__":
    unittest.main()
