"""A partition key's worker in a pool (RUN.md §7 `consistent_hash`): stable across runs and machines.

Owns the mapping from a key (the value `key_of` reads where VPL.md §6.5 reads it) to one of a
pool's N workers. Python's `hash()` is randomised per process for strings and merges `True` with
`1`, so it can serve neither a pool's workers (each its own process) nor a rerun: the key is
written in a canonical byte form that follows VPL's equality (Int `1` and Float `1.0` one key,
`-0.0` the same as `0`, Bools apart from numbers, a String apart from the number it spells, null
one key), digested with BLAKE2b, and the digest placed with jump consistent hashing (Lamping and
Veach, 2014), so that growing a pool from N to N+1 workers moves only about 1/(N+1) of the keys.
"""

from __future__ import annotations

import hashlib
import math
import struct

__all__ = ["key_digest", "worker_for_key"]

_INT = b"i"
_FLOAT = b"f"
_STRING = b"s"
_TRUE = b"T"
_FALSE = b"F"
_NULL = b"n"


def _canonical(value: object) -> bytes:
    """The key's bytes: equal exactly when the keys are one key (VPL.md §6.5)."""
    t = type(value)
    if t is bool:
        return _TRUE if value else _FALSE
    if value is None:
        return _NULL
    if t is int:
        assert isinstance(value, int)
        return _INT + str(value).encode()
    if t is float:
        assert isinstance(value, float)
        if math.isfinite(value) and value == int(value):
            return _INT + str(int(value)).encode()  # 1.0 is the key 1, -0.0 the key 0
        return _FLOAT + struct.pack(">d", value)
    if t is str:
        assert isinstance(value, str)
        return _STRING + value.encode("utf-8", "surrogatepass")
    raise TypeError(f"{t.__name__} is not a partition key")


def key_digest(value: object) -> int:
    """A 64-bit digest of the key, the same on every run, process and machine."""
    return int.from_bytes(hashlib.blake2b(_canonical(value), digest_size=8).digest(), "big")


def worker_for_key(value: object, workers: int) -> int:
    """The worker (0..workers-1) that holds the key's windows."""
    if workers < 1:
        raise ValueError("a pool has at least one worker")
    return _jump(key_digest(value), workers)


def _jump(key: int, buckets: int) -> int:
    """Jump consistent hash: a bucket in 0..buckets-1, moving few keys when `buckets` grows."""
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        j = int((b + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return b
