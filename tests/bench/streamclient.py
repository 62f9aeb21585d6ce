#!/usr/bin/env python3
"""The benchmark's streaming client: one GET on a fresh connection, read at
socket level with recv_into a preallocated 1 MiB buffer, so that it is
never what limits a proxy. Prints one JSON line.

  download URL   counts the body (Content-Length, chunked or up to the
                 close) and discards it: status, bytes, wall seconds from
                 connect to the last byte;
  sse URL        reads the server-sent events of the upstream's /sse, each
                 `data: SEQ T` with T the upstream's CLOCK_MONOTONIC in
                 microseconds when it wrote the event; an event's delay is
                 its arrival (time.monotonic_ns(), CLOCK_MONOTONIC on Linux,
                 taken when the read that completed it returned) minus T.

A failure (not 200, connection closed or reset early, a body shorter than
--expect, events missing, a read idle for --idle seconds) gives "error"
with what happened, and the figures up to then; the exit status stays 0.
"""
import argparse
import json
import socket
import sys
import time
import urllib.parse

BUF = 1 << 20


class Failed(Exception):
    pass


class Dechunk:
    """Chunked framing, fed straight from the receive buffer; hands each
    run of payload bytes to on_data(start, end) as offsets in it."""

    def __init__(self, on_data):
        self.on_data = on_data
        self.state = "size"
        self.left = 0
        self.line = b""
        self.done = False

    def feed(self, buf, i, n):
        while i < n and not self.done:
            if self.state == "data":
                k = min(self.left, n - i)
                self.on_data(i, i + k)
                i += k
                self.left -= k
                if self.left == 0:
                    self.state, self.left = "crlf", 2
            elif self.state == "crlf":
                k = min(self.left, n - i)
                i += k
                self.left -= k
                if self.left == 0:
                    self.state = "size"
            else:  # a chunk-size line, or a trailer line after the last chunk
                j = buf.find(b"\n", i, n)
                if j < 0:
                    self.line += bytes(buf[i:n])
                    if len(self.line) > 4096:
                        raise Failed("chunked framing: a line over 4 KiB")
                    return
                line = (self.line + bytes(buf[i:j])).strip()
                self.line = b""
                i = j + 1
                if self.state == "trailer":
                    if not line:
                        self.done = True
                    continue
                try:
                    size = int(line.split(b";")[0], 16)
                except ValueError:
                    raise Failed(f"chunked framing: bad chunk size {line[:40]!r}") from None
                if size == 0:
                    self.state = "trailer"
                else:
                    self.state, self.left = "data", size


class Stream:
    """A GET on a fresh connection; body() yields (arrival µs, start, end)
    for each run of body bytes in self.buf."""

    def __init__(self, url, idle):
        u = urllib.parse.urlsplit(url)
        self.path = (u.path or "/") + ("?" + u.query if u.query else "")
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=idle)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(f"GET {self.path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                          "Connection: close\r\n\r\n".encode())
        self.buf = bytearray(BUF)
        self.mv = memoryview(self.buf)
        self.status = 0
        self.headers = {}
        self.head()

    def recv(self):
        try:
            n = self.sock.recv_into(self.mv)
        except socket.timeout:
            raise Failed("no byte for the idle timeout") from None
        except ConnectionError as e:
            raise Failed(f"connection error: {e.strerror or e}") from None
        return n, time.monotonic_ns() // 1000

    def head(self):
        have = 0
        while True:
            n, _ = self.recv()
            if n == 0:
                raise Failed("connection closed before the answer's head")
            have += n
            end = self.buf.find(b"\r\n\r\n", 0, have)
            if end >= 0:
                break
            if have > 65536:
                raise Failed("answer head over 64 KiB")
            self.mv = memoryview(self.buf)[have:]
        self.mv = memoryview(self.buf)
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        # the body bytes that came with the head, moved to the front
        rest = have - (end + 4)
        self.buf[:rest] = self.buf[end + 4:have]
        self.pending = rest

    def describe(self):
        s = f"HTTP {self.status}"
        if "brace-error" in self.headers:
            s += f" (Brace-Error: {self.headers['brace-error']})"
        return s

    def body(self):
        te = self.headers.get("transfer-encoding", "").lower()
        cl = self.headers.get("content-length")
        runs = []
        dechunk = Dechunk(lambda i, j: runs.append((i, j))) if "chunked" in te else None
        left = int(cl) if cl is not None and dechunk is None else None
        n, now = self.pending, time.monotonic_ns() // 1000
        while True:
            if n:
                if dechunk:
                    runs.clear()
                    dechunk.feed(self.buf, 0, n)
                    for i, j in runs:
                        yield now, i, j
                    if dechunk.done:
                        return
                else:
                    k = n if left is None else min(n, left)
                    yield now, 0, k
                    if left is not None:
                        left -= k
                        if left == 0:
                            return
            elif left == 0:
                return
            n, now = self.recv()
            if n == 0:
                if dechunk is None and left is None:
                    return  # close-delimited: the close is its end
                raise Failed("connection closed before the body's end")

    def close(self):
        self.sock.close()


def download(url, expect, idle):
    out = {"status": 0, "bytes": 0, "secs": 0.0}
    t0 = time.monotonic()
    s = None
    try:
        s = Stream(url, idle)
        out["status"] = s.status
        if s.status != 200:
            raise Failed(s.describe())
        for _, i, j in s.body():
            out["bytes"] += j - i
        if expect is not None and out["bytes"] != expect:
            raise Failed(f"body of {out['bytes']} bytes, {expect} expected")
    except (Failed, OSError) as e:
        out["error"] = str(e)
    finally:
        out["secs"] = time.monotonic() - t0
        if s:
            s.close()
    if "error" in out:
        out["error"] += f" after {out['bytes']} body bytes and {out['secs']:.2f} s"
    return out


def sse(url, n, idle):
    out = {"status": 0, "events": 0, "delays_us": []}
    t0 = time.monotonic()
    s = None
    pending = b""
    try:
        s = Stream(url, idle)
        out["status"] = s.status
        if s.status != 200:
            raise Failed(s.describe())
        for now, i, j in s.body():
            pending += bytes(s.buf[i:j])
            while True:
                k = pending.find(b"\n\n")
                if k < 0:
                    break
                ev, pending = pending[:k], pending[k + 2:]
                f = ev.decode("latin-1").split()
                if len(f) != 3 or f[0] != "data:":
                    raise Failed(f"not an event of the upstream's: {ev[:60]!r}")
                seq, stamp = int(f[1]), int(f[2])
                if seq != out["events"] + 1:
                    raise Failed(f"event {seq} after event {out['events']}")
                out["events"] = seq
                out["delays_us"].append(now - stamp)
        if out["events"] != n:
            raise Failed(f"{out['events']} events of {n}")
    except (Failed, OSError, ValueError) as e:
        out["error"] = str(e)
    finally:
        out["secs"] = time.monotonic() - t0
        if s:
            s.close()
    if "error" in out:
        out["error"] += f" after {out['events']} events and {out['secs']:.2f} s"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["download", "sse"])
    ap.add_argument("url")
    ap.add_argument("--expect", type=int, help="download: the body's size in bytes")
    ap.add_argument("--events", type=int, default=0, help="sse: the events expected")
    ap.add_argument("--idle", type=float, default=30.0,
                    help="seconds a read may wait for a byte (default 30)")
    ap.add_argument("--start-at", type=int, metavar="US",
                    help="connect when CLOCK_MONOTONIC reaches US microseconds, so that "
                         "clients started one after the other begin together")
    a = ap.parse_args()
    if a.start_at:
        time.sleep(max(0.0, (a.start_at - time.monotonic_ns() // 1000) / 1e6))
    if a.mode == "download":
        r = download(a.url, a.expect, a.idle)
    else:
        r = sse(a.url, a.events, a.idle)
    json.dump(r, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
