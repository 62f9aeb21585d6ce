#!/usr/bin/env python3
"""A hostile DNS server for braced's integration tests (standard library only).

UDP on 127.0.0.1, on a given port or one the kernel picks. Each name (matched
without regard to case) has a mode; a name not in the table gets NXDOMAIN.
The question is echoed byte for byte, so a resolver's 0x20 case
randomization (evdns does it) still matches.

    from dnsgen import serve_in_thread
    dns = serve_in_thread({
        "many.test": ("a", 1000),          # more than a datagram holds: TC set
        "v6.test": ("aaaa", 2),
        "mixed.test": ("both", 3, 1),      # 3 A, 1 AAAA
        "gone.test": ("nxdomain",),
    })
    ... nameservers: ["127.0.0.1:%d" % dns.port] ...
    dns.queries    # [(name, qtype), ...] in the order they came
    dns.stop()

By hand: python3 tests/dnsgen.py [PORT] serves DEMO (below) until Ctrl-C;
try `dig @127.0.0.1 -p PORT many.test`.

Modes:
    ("a", N[, FIT])     N A records 10.0.x.y (N up to 1000) to A queries; an
                        empty answer to others. FIT when they exceed 512
                        bytes (no EDNS): "tc" (default) cut at what fits and
                        set TC, "cut" cut without TC (the count fixed up),
                        "big" one oversized datagram with all of them
    ("aaaa", N[, FIT])  the same with AAAA records fd00::x:y
    ("both", NA, N6)    NA A and N6 AAAA, each to its own query
    ("empty",)          NOERROR, no record
    ("nxdomain",)       RCODE 3
    ("servfail",)       RCODE 2
    ("refused",)        RCODE 5
    ("silence",)        no answer at all
    ("silent_aaaa", N)  N A records; AAAA queries get no answer at all
    ("garbage", N)      N bytes of noise (the same for the same name)
    ("wrong_id",)       a good A answer whose ID is not the query's
    ("cname_loop",)     NAME CNAME loop-b.NAME, loop-b.NAME CNAME NAME
    ("pointer_loop",)   an answer whose owner name is a compression
                        pointer to itself
    ("other_name",)     A records owned by another name
    ("delay", MS, N)    N A records after MS milliseconds
"""

import random
import select
import socket
import struct
import sys
import threading

UDP_LIMIT = 512  # what a DNS answer over UDP may carry without EDNS
BIG_LIMIT = 65000  # an oversized datagram, still under UDP's own limit
MAX_RECORDS = 1000

TYPE_A, TYPE_CNAME, TYPE_AAAA = 1, 5, 28
RCODES = {"nxdomain": 3, "servfail": 2, "refused": 5}
TC = 0x0200

DEMO = {
    "one.test": ("a", 1),
    "many.test": ("a", 1000),
    "many-cut.test": ("a", 1000, "cut"),
    "many-big.test": ("a", 1000, "big"),
    "v6.test": ("aaaa", 2),
    "mixed.test": ("both", 3, 1),
    "empty.test": ("empty",),
    "gone.test": ("nxdomain",),
    "fail.test": ("servfail",),
    "refused.test": ("refused",),
    "silent.test": ("silence",),
    "no-aaaa.test": ("silent_aaaa", 2),
    "noise.test": ("garbage", 64),
    "wrong-id.test": ("wrong_id",),
    "cname-loop.test": ("cname_loop",),
    "pointer-loop.test": ("pointer_loop",),
    "other.test": ("other_name",),
    "slow.test": ("delay", 500, 2),
}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_query(packet):
    """(id, flags, question bytes, name, qtype) or None when it is no query."""
    if len(packet) < 12:
        return None
    qid, flags, qdcount = struct.unpack(">HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    i, labels = 12, []
    while i < len(packet) and packet[i] != 0:
        n = packet[i]
        if n > 63 or i + 1 + n > len(packet):
            return None
        labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 5 > len(packet):
        return None
    qtype = struct.unpack(">H", packet[i + 1:i + 3])[0]
    return qid, flags, packet[12:i + 5], ".".join(labels), qtype


def record(owner, rtype, rdata, ttl=60):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def a_rdata(i):
    return bytes([10, 0, (i >> 8) & 0xFF, i & 0xFF])


def aaaa_rdata(i):
    return bytes([0xFD] + [0] * 11 + [0, 0, (i >> 8) & 0xFF, i & 0xFF])


def message(qid, qflags, question, records, rcode=0, flags=0):
    """An answer to the query: QR, RD copied, RA, and what it is given."""
    head = struct.pack(">HHHHHH", qid, 0x8080 | (qflags & 0x0100) | flags | rcode, 1, len(records), 0, 0)
    return head + question + b"".join(records)


def fit(qid, qflags, question, records, how):
    """records in one answer, FIT applied (see the modes)."""
    if how == "big":
        out = message(qid, qflags, question, records)
        while len(out) > BIG_LIMIT:
            records = records[:-1]
            out = message(qid, qflags, question, records)
        return out
    room = UDP_LIMIT - 12 - len(question)
    kept, size = [], 0
    for r in records:
        if size + len(r) > room:
            break
        kept.append(r)
        size += len(r)
    flags = TC if how == "tc" and len(kept) < len(records) else 0
    return message(qid, qflags, question, kept, flags=flags)


def answer(mode, qid, qflags, question, name, qtype):
    """The bytes to send for one query, or None for silence."""
    kind, args = mode[0], mode[1:]
    owner = b"\xc0\x0c"  # the question's name
    if kind in ("a", "aaaa", "both", "delay"):
        if kind == "both":
            n4, n6 = args
        elif kind == "delay":
            n4, n6 = args[1], 0
        else:
            n4, n6 = (args[0], 0) if kind == "a" else (0, args[0])
        how = args[1] if kind in ("a", "aaaa") and len(args) > 1 else "tc"
        n4, n6 = min(n4, MAX_RECORDS), min(n6, MAX_RECORDS)
        if qtype == TYPE_A:
            recs = [record(owner, TYPE_A, a_rdata(i + 1)) for i in range(n4)]
        elif qtype == TYPE_AAAA:
            recs = [record(owner, TYPE_AAAA, aaaa_rdata(i + 1)) for i in range(n6)]
        else:
            recs = []
        return fit(qid, qflags, question, recs, how)
    if kind == "empty":
        return message(qid, qflags, question, [])
    if kind in RCODES:
        return message(qid, qflags, question, [], rcode=RCODES[kind])
    if kind == "silence" or (kind == "silent_aaaa" and qtype == TYPE_AAAA):
        return None
    if kind == "silent_aaaa":
        return fit(qid, qflags, question, [record(owner, TYPE_A, a_rdata(i + 1)) for i in range(args[0])], "tc")
    if kind == "garbage":
        noise = random.Random(name.lower())
        return bytes(noise.randrange(256) for _ in range(args[0]))
    if kind == "wrong_id":
        return message((qid + 1) & 0xFFFF, qflags, question, [record(owner, TYPE_A, a_rdata(1))])
    if kind == "cname_loop":
        other = encode_name("loop-b." + name)
        # loop-b.NAME CNAME NAME: the owner is a full name, the target a
        # pointer to the question's.
        return message(qid, qflags, question, [record(owner, TYPE_CNAME, other),
                                               record(other, TYPE_CNAME, owner)])
    if kind == "pointer_loop":
        # The answer's owner starts at offset 12 + len(question): a pointer
        # to that very offset.
        at = 12 + len(question)
        return message(qid, qflags, question, [record(struct.pack(">H", 0xC000 | at), TYPE_A, a_rdata(1))])
    if kind == "other_name":
        return message(qid, qflags, question, [record(encode_name("elsewhere.invalid"), TYPE_A, a_rdata(i + 1))
                                               for i in range(3)])
    raise ValueError("unknown mode %r for %s" % (mode, name))


class DnsServer:
    """Serves table on 127.0.0.1:port (0: any) in a thread; .port, .queries,
    .stop()."""

    def __init__(self, table, port=0):
        self.table = {k.lower().rstrip("."): v for k, v in table.items()}
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self._stopping = threading.Event()
        self._timers = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="dnsgen", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _send(self, data, peer):
        with self._lock:
            if not self._stopping.is_set():
                self.sock.sendto(data, peer)

    def _serve(self):
        while not self._stopping.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if not ready:
                continue
            try:
                packet, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            q = parse_query(packet)
            if q is None:
                continue
            qid, qflags, question, name, qtype = q
            self.queries.append((name, qtype))
            mode = self.table.get(name.lower(), ("nxdomain",))
            data = answer(mode, qid, qflags, question, name, qtype)
            if data is None:
                continue
            if mode[0] == "delay":
                t = threading.Timer(mode[1] / 1000.0, self._send, (data, peer))
                t.daemon = True
                self._timers.append(t)
                t.start()
            else:
                self._send(data, peer)

    def stop(self):
        self._stopping.set()
        for t in self._timers:
            t.cancel()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            self.sock.close()


def serve_in_thread(table=None, port=0):
    """Starts a DnsServer on table (DEMO when None) and returns it."""
    return DnsServer(DEMO if table is None else table, port).start()


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = serve_in_thread(DEMO, port)
    print("dnsgen on 127.0.0.1:%d (Ctrl-C stops)" % server.port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
