"""Deterministic pseudo-random bodies, generated on the fly.

The test upstream sends them (the `generate` and `cut_after` actions) and the
test clients upload and check them, so both import this module; neither ever
holds a whole body.

A body of seed S is a sequence of BLOCK-byte blocks: block i is i as an
8-byte big-endian counter, then BLOCK - 8 bytes of a 1 MiB table drawn once
from random.Random(S).randbytes, read from offset i * STRIDE (mod 1 MiB) and
wrapping around. Every byte thus depends on the seed and on its position, and
producing a block is one slice of a cached table: hundreds of MiB/s in
CPython.
"""

import hashlib
import random
import struct
import threading

TABLE_SIZE = 1024 * 1024        # bytes drawn per seed
BLOCK = 64 * 1024               # bytes per block, the counter included
STRIDE = 4099                   # table offset step from one block to the next (a prime)
PIECE = 64 * 1024               # default piece size of generated_bytes
MAX_TABLES = 8                  # seeds whose tables are kept

_tables = {}
_tables_lock = threading.Lock()
_COUNTER = struct.Struct(">Q")


def _table(seed):
    """The table of `seed`, twice over, so a wrapping slice is one slice."""
    with _tables_lock:
        table = _tables.get(seed)
        if table is None:
            drawn = random.Random(seed).randbytes(TABLE_SIZE)
            table = drawn + drawn
            if len(_tables) >= MAX_TABLES:
                _tables.pop(next(iter(_tables)))
            _tables[seed] = table
        return table


def block(seed, i):
    """Block number i (BLOCK bytes) of the body of `seed`."""
    table = _table(seed)
    start = (i * STRIDE) % TABLE_SIZE
    return _COUNTER.pack(i) + table[start:start + BLOCK - 8]


def generated_bytes(seed, offset, n, piece=PIECE):
    """Yield bytes [offset, offset + n) of the body of `seed`, in pieces of `piece`
    bytes (the last one shorter)."""
    if offset < 0 or n < 0 or piece < 1:
        raise ValueError("offset and n must be >= 0, piece >= 1")
    table = _table(seed)
    pack = _COUNTER.pack
    pos, end = offset, offset + n
    if piece == BLOCK and offset % BLOCK == 0:
        # The common case: whole blocks, one slice each.
        i = offset // BLOCK
        while pos < end:
            start = (i * STRIDE) % TABLE_SIZE
            data = pack(i) + table[start:start + BLOCK - 8]
            if end - pos < BLOCK:
                data = data[:end - pos]
            yield data
            pos += len(data)
            i += 1
        return
    buf = bytearray()
    while pos < end:
        i, within = divmod(pos, BLOCK)
        start = (i * STRIDE) % TABLE_SIZE
        data = pack(i) + table[start:start + BLOCK - 8]
        take = min(BLOCK - within, end - pos)
        buf += memoryview(data)[within:within + take]
        pos += take
        while len(buf) >= piece:
            yield bytes(buf[:piece])
            del buf[:piece]
    if buf:
        yield bytes(buf)


_digests = {}


def expected_sha256(seed, n):
    """Hex SHA-256 of the first n bytes of the body of `seed` (remembered per (seed, n))."""
    key = (seed, n)
    found = _digests.get(key)
    if found is None:
        h = hashlib.sha256()
        for data in generated_bytes(seed, 0, n, BLOCK):
            h.update(data)
        found = _digests[key] = h.hexdigest()
    return found
