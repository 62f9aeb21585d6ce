#!/usr/bin/env python3
"""The benchmark's per-response client: sends requests to one URL and prints
one JSON line with every answer's status, latency and whether a weather body
had drifted from its schema.

Two clients:
  raw     a plain HTTP/1.1 keep-alive client (asyncio streams), the app
          talking to a proxy (direct, braced, HAProxy, nginx);
  recipe  the in-app recipe braced replaces: httpx.AsyncClient (timeouts
          connect 2, read 4, write 2, pool 2; max_connections 100) with
          tenacity (stop_after_attempt(4), wait_random_exponential(
          multiplier=0.2, max=3.0), retrying httpx.TransportError and
          408/425/429/500/502/503/504). Its CPU is this whole process.

Load shapes: closed loop (--concurrency C for --duration S, or --count N
requests), or open loop at --rate R per second for --duration S, latency
counted from each request's scheduled start. Every logical request carries
X-Bench-Id: a unique number, which the upstream's POST mode keys on. The
output groups the latencies of answers that carried a Brace-Error header by
its code (lat_by_error), e.g. circuit_open once braced's breaker is open.
With --times it also prints t0 (its time.monotonic() when the load began,
CLOCK_MONOTONIC, comparable with other processes' on Linux) and done: one
[seconds after t0 when the answer came, 2xx (1/0), drifted (1/0), latency in
ms] per answer,
so a caller can split the figures at a moment of its own clock.

For the cache scenarios: a `{k}` in --path is replaced by the request's
number (from 0, in the order requests start), or by that number modulo
--keys when it is given, so a load can spread over many keys or give each
request its own; --count-header NAME counts the values of that answer header
(header_counts; "" when absent; raw client only); --connect-first opens
--concurrency connections before the clock starts, so a closed-loop burst
sends its requests on connections already open (raw client only).
"""
import argparse
import asyncio
import json
import os
import resource
import sys
import time
import urllib.parse

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class RawConn:
    count_header = None  # a header whose value request() keeps in self.counted

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.r = self.w = None
        self.counted = ""

    async def connect(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port)

    async def request(self, method, path, headers, body):
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        for k, v in headers.items():
            head += f"{k}: {v}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.w.write(head.encode() + b"\r\n" + (body or b""))
        line = await self.r.readline()
        if not line:
            raise ConnectionError("closed")
        status = int(line.split()[1])
        length, chunked, close, err = None, False, False, ""
        self.counted = ""
        while True:
            h = await self.r.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            k, v = k.strip().lower(), v.strip()
            if k == "content-length":
                length = int(v)
            elif k == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
            elif k == "connection" and v.lower() == "close":
                close = True
            elif k == "brace-error":
                err = v
            if k == self.count_header:
                self.counted = v
        data = b""
        if chunked:
            while True:
                size = int((await self.r.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.r.readline()
                    break
                data += await self.r.readexactly(size)
                await self.r.readline()
        elif length is not None:
            data = await self.r.readexactly(length)
        else:
            data = await self.r.read()
            close = True
        if close:
            self.close()
        return status, data, err

    def close(self):
        if self.w is not None:
            self.w.close()
        self.r = self.w = None


class RawClient:
    def __init__(self, url):
        hostport = url.split("//", 1)[1].split("/", 1)[0]
        self.host, _, port = hostport.partition(":")
        self.port = int(port or 80)
        self.idle = []
        self.counted = ""  # the counted header of the answer send() returned last

    async def preconnect(self, n):
        conns = [RawConn(self.host, self.port) for _ in range(n)]
        await asyncio.gather(*(c.connect() for c in conns))
        self.idle += conns

    async def send(self, method, path, headers, body):
        conn = self.idle.pop() if self.idle else RawConn(self.host, self.port)
        self.counted = ""
        try:
            status, data, err = await conn.request(method, path, headers, body)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            conn.close()
            return 0, b"", ""
        self.counted = conn.counted
        self.idle.append(conn)
        return status, data, err

    async def aclose(self):
        for c in self.idle:
            c.close()


class RecipeClient:
    def __init__(self, url):
        import httpx
        from tenacity import (AsyncRetrying, retry_if_exception_type, retry_if_result,
                              stop_after_attempt, wait_random_exponential)
        self.httpx = httpx
        self.base = url.rstrip("/")
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=2.0, read=4.0, write=2.0, pool=2.0),
            limits=httpx.Limits(max_connections=100))
        self.retrying = lambda: AsyncRetrying(
            stop=stop_after_attempt(4),
            wait=wait_random_exponential(multiplier=0.2, max=3.0),
            retry=(retry_if_exception_type(httpx.TransportError)
                   | retry_if_result(lambda r: r.status_code in RETRY_STATUSES)),
            retry_error_callback=lambda state: state.outcome.result(),
            reraise=True)

    async def send(self, method, path, headers, body):
        try:
            async for attempt in self.retrying():
                with attempt:
                    r = await self.client.request(method, self.base + path, headers=headers,
                                                  content=body)
                if not attempt.retry_state.outcome.failed:
                    attempt.retry_state.set_result(r)
            return r.status_code, r.content, r.headers.get("brace-error", "")
        except Exception:  # the app sees a failure: transport error after the last try
            return 0, b"", ""

    async def aclose(self):
        await self.client.aclose()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url", help="base URL, e.g. http://127.0.0.1:8080/bench")
    ap.add_argument("--client", choices=["raw", "recipe"], default="raw")
    ap.add_argument("--path", default="/v1/weather?city=Paris")
    ap.add_argument("--method", default="GET")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--count", type=int, default=0, help="stop after N requests")
    ap.add_argument("--rate", type=float, default=0, help="open loop, requests per second")
    ap.add_argument("--id-base", type=int, default=0)
    ap.add_argument("--times", action="store_true", help="print t0 and each answer's time")
    ap.add_argument("--keys", type=int, default=0,
                    help="{k} in --path: the request's number modulo this (0: the number)")
    ap.add_argument("--count-header", help="count the values of this answer header (raw)")
    ap.add_argument("--connect-first", action="store_true",
                    help="open --concurrency connections before the load starts (raw)")
    a = ap.parse_args()
    if a.count_header:
        RawConn.count_header = a.count_header.lower()

    u = urllib.parse.urlsplit(a.url)
    path = u.path.rstrip("/") + a.path
    origin = f"{u.scheme}://{u.netloc}"
    client = RecipeClient(origin) if a.client == "recipe" else RawClient(origin)
    body = b'{"item":"bench","qty":1}' if a.method == "POST" else None
    results = []  # (status, seconds, drifted, Brace-Error code or "")
    next_id = [a.id_base]
    seq = [0]
    counted = {}

    async def one(scheduled):
        next_id[0] += 1
        headers = {"X-Bench-Id": str(next_id[0])}
        p = path
        if "{k}" in path:
            p = path.replace("{k}", str(seq[0] % a.keys if a.keys > 0 else seq[0]))
            seq[0] += 1
        status, data, err = await client.send(a.method, p, headers, body)
        if a.count_header:
            v = getattr(client, "counted", "")
            counted[v] = counted.get(v, 0) + 1
        drifted = status == 200 and b'"temperature":"' in data
        results.append((status, time.monotonic() - scheduled, drifted, err, time.monotonic()))

    if a.connect_first and isinstance(client, RawClient):
        await client.preconnect(a.concurrency)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    deadline = t0 + a.duration
    if a.rate > 0:
        tasks = []
        n = int(a.rate * a.duration)
        for i in range(n):
            at = t0 + i / a.rate
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(at)))
        await asyncio.gather(*tasks)
    else:
        started = [0]

        async def worker():
            while time.monotonic() < deadline and (a.count == 0 or started[0] < a.count):
                started[0] += 1
                await one(time.monotonic())

        await asyncio.gather(*(worker() for _ in range(a.concurrency)))
    elapsed = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    await client.aclose()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out = {
        "n": len(results),
        "elapsed": elapsed,
        "cpu_s": cpu,
        "statuses": {},
        "lat_ms": sorted(round(r[1] * 1000, 3) for r in results),
        "lat_ok_ms": sorted(round(r[1] * 1000, 3) for r in results if 200 <= r[0] < 300),
        "drifted": sum(1 for r in results if r[2]),
        "lat_by_error": {},
    }
    for code in sorted({r[3] for r in results if r[3]}):
        out["lat_by_error"][code] = sorted(round(r[1] * 1000, 3) for r in results if r[3] == code)
    for r in results:
        out["statuses"][str(r[0])] = out["statuses"].get(str(r[0]), 0) + 1
    if a.count_header:
        out["header_counts"] = counted
    if a.times:
        out["t0"] = t0
        out["done"] = sorted([round(r[4] - t0, 4), int(200 <= r[0] < 300), int(r[2]),
                              round(r[1] * 1000, 3)] for r in results)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    asyncio.run(main())
