"""The router's split of block-ingress pieces among a pool's workers by key (runtime/key_routes.py):
when it splits, every line goes to exactly one worker, the owner of its key by the workers' own
hash, and the lines nobody reads to the checker; when it cannot be exact, the piece goes whole."""

from __future__ import annotations

import re

from varpulis_mp.io.readers import EventParser
from varpulis_mp.lang.key_hash import worker_for_key
from varpulis_mp.runtime.key_routes import REST, KeyRoutes

STREAMS = ["Stats", "Sizes"]
FIELDS = {"Level": "k", "Temp": "k"}


def routes(types: list[list[str]] | None = None, pools: list[list[int]] | None = None,
           fields: dict[int, dict[str, str]] | None = None) -> KeyRoutes | None:
    types = types if types is not None else [["Level", "Temp"]] * 3
    pools = pools if pools is not None else [[0, 1, 2]]
    fields = fields if fields is not None else {w: dict(FIELDS) for w in range(3)}
    return KeyRoutes.plan(types, pools, fields, EventParser("events.evt", STREAMS))


def piece() -> list[str]:
    lines = []
    for i in range(60):
        lines.append(f'@{i} Temp {{ k: "k{i % 7}", v: {i}.5 }}')
        if i % 3 == 0:
            lines.append(f'@{i} Level {{ k: {i % 5}, w: {i} }}')  # an integer key
        if i % 4 == 0:
            lines.append(f'@{i} Zone {{ k: "k1", note: "z" }}')  # read by nobody
        if i % 10 == 0:
            lines.append("")
            lines.append("# a comment")
    return lines


def test_every_line_goes_to_the_owner_of_its_key_and_the_rest_to_the_checker() -> None:
    router = routes()
    assert router is not None
    lines = piece()
    split = router.split("\n".join(lines), checker=1)
    assert split is not None and set(split) == {0, 1, 2}
    seen: dict[int, str] = {}
    for worker, groups in split.items():
        assert [g[0] for g in groups] == sorted(g[0] for g in groups if g[0] != REST) + \
            ([REST] if worker == 1 else [])  # the types in name order, the rest last
        for t, at, text in groups:
            assert text.split("\n") == [lines[i] for i in at]
            assert at == sorted(at)
            for i in at:
                assert i not in seen
                seen[i] = t
                key = re.search(r'k: "?([^",]+)', lines[i])
                if t == "Temp":
                    assert key is not None and worker_for_key(key.group(1), 3) == worker
                elif t == "Level":
                    assert key is not None and worker_for_key(int(key.group(1)), 3) == worker
                else:
                    assert worker == 1 and lines[i] and "Temp" not in lines[i] and "Level" not in lines[i]
    # Every line but the empty ones went somewhere, once.
    assert sorted(seen) == [i for i, line in enumerate(lines) if line]


def test_a_key_the_layout_does_not_read_sends_the_piece_whole_and_three_such_pieces_stop_the_split() -> None:
    router = routes()
    assert router is not None
    lines = piece()
    assert router.split("\n".join(lines), 0) is not None
    odd = [*lines, '@99 Temp {k: "k1", v: 1.0}']  # spaced another way than the learned layout
    for _ in range(3):
        assert router.split("\n".join(odd), 0) is None
    assert router.split("\n".join(lines), 0) is None  # it stopped trying


def test_a_bad_first_line_is_left_to_the_workers() -> None:
    router = routes()
    assert router is not None
    assert router.split('@1 Temp { k: "k1", v: }\n@2 Temp { k: "k2", v: 2.0 }', 0) is None


def test_only_pools_whose_workers_read_every_type_by_one_key_alone_are_split() -> None:
    assert routes() is not None
    # A worker that reads a type whole (no key field for it).
    assert routes(fields={0: dict(FIELDS), 1: {"Temp": "k"}, 2: dict(FIELDS)}) is None
    assert routes(fields={w: {"Temp": "k"} for w in range(3)}) is None
    # Workers that disagree, or one that said nothing.
    assert routes(fields={0: dict(FIELDS), 1: {"Temp": "k", "Level": "w"}, 2: dict(FIELDS)}) is None
    assert routes(fields={0: dict(FIELDS), 1: dict(FIELDS)}) is None
    # A process outside the pool reads one of its types.
    assert routes(types=[["Level", "Temp"]] * 3 + [["Temp"]], fields={w: dict(FIELDS) for w in range(3)}) is None
    # Outside readers of other types do not matter; the pool's processes need not come first.
    split = routes(types=[["Zone"], ["Level", "Temp"], ["Level", "Temp"]], pools=[[1, 2]],
                   fields={1: dict(FIELDS), 2: dict(FIELDS)})
    assert split is not None
    groups = split.split("\n".join(piece()), checker=0)
    assert groups is not None and set(groups) == {1, 2}
    assert all(g[0] != REST for gs in groups.values() for g in gs)  # the checker is outside: it has the piece
