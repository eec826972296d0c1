"""A partition key's worker (RUN.md §7): VPL's key equality, stability across processes, balance,
and few moves when a pool grows."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from varpulis_mp.lang.key_hash import key_digest, worker_for_key


@pytest.mark.parametrize(("a", "b"), [(1, 1.0), (0, -0.0), (0, 0.0), (-3, -3.0), (2**60, float(2**60)), (None, None)])
def test_equal_keys_have_one_worker(a: object, b: object) -> None:
    assert key_digest(a) == key_digest(b)
    assert all(worker_for_key(a, n) == worker_for_key(b, n) for n in range(1, 17))


@pytest.mark.parametrize(("a", "b"), [(True, 1), (False, 0), (True, 1.0), ("1", 1), ("true", True), (None, "null"),
                                      (None, 0), (1.5, "1.5"), (2**53 + 1, float(2**53))])
def test_different_keys_have_different_digests(a: object, b: object) -> None:
    assert key_digest(a) != key_digest(b)


def test_the_same_worker_in_another_process() -> None:
    keys = ["sensor-1", "Zürich", 42, 4.5, True, None, -7]
    here = [worker_for_key(k, 8) for k in keys]
    code = ("from varpulis_mp.lang.key_hash import worker_for_key; "
            f"print([worker_for_key(k, 8) for k in {keys!r}])")
    # A new interpreter with its own string-hash seed: Python's hash() would differ, this must not.
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345"}).stdout.strip()
    assert there == str(here)


def test_known_placements_do_not_change() -> None:
    # Golden values: a pool's placement must not move between releases or machines.
    keys = ("a", "b", "c", 1, 2.5, None, True, "sensor-7")
    assert [worker_for_key(k, 4) for k in keys] == [1, 0, 0, 2, 0, 1, 2, 3]
    assert key_digest("sensor-7") == 0x58E515BFC7E2F89D


def test_keys_spread_evenly_over_the_workers() -> None:
    counts = Counter(worker_for_key(f"sensor-{i}", 4) for i in range(20_000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(abs(c - 5_000) < 400 for c in counts.values()), counts


def test_growing_a_pool_moves_few_keys() -> None:
    keys = range(10_000)
    moved = sum(worker_for_key(k, 4) != worker_for_key(k, 5) for k in keys)
    assert moved < 0.25 * len(keys)  # about a fifth move, not four fifths
    assert all(worker_for_key(k, 5) in (worker_for_key(k, 4), 4) for k in keys)


def test_a_list_is_no_key_and_a_pool_has_a_worker() -> None:
    with pytest.raises(TypeError):
        key_digest([1])
    with pytest.raises(ValueError):
        worker_for_key(1, 0)
