"""The wire format without sockets: encode/decode round trips and shapes."""

from __future__ import annotations

from typing import Any

import pytest

from varpulis_mp.engine.output import NO_KEY, Output
from varpulis_mp.errors import Diagnostic, SourcePos
from varpulis_mp.runtime import wire

VALUES: list[Any] = [
    None, True, False, 0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**64) - 5, 10**40, 1.5, -0.0,
    1e16, 5e-324, "", "north", "z\u00e9ro \u4e2d\U0001f600", "a\nb\"c\\", [], [1, [2, [3.5, None]], "x"],
    [[[]]], [True, 1, 1.0, "1"],
]


def roundtrip(frames: list[wire.Frame]) -> list[list[Any]]:
    return wire.decode(wire.encode(frames))


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_value_type_round_trips(value: Any) -> None:
    (frame,) = roundtrip([(wire.RECORDS, "S", 0, [5], [1], [[value]])])
    got = frame[5][0][0]
    assert got == value
    assert type(got) is type(value)
    if isinstance(value, float):
        assert repr(got) == repr(value)  # -0.0 and subnormals survive bit for bit


def test_frames_keep_their_order_and_kinds() -> None:
    frames: list[wire.Frame] = [
        (wire.START,),
        (wire.LINES, "Reading", 1, 3, 100, [0, 2], "@5 Reading { v: 1 }\nReading {}"),
        (wire.SHAPE, 0, ["a", "b"]),
        (wire.PROGRESS, ["Reading", "Other"], 2),
        (wire.EOS, "Reading", 3),
        (wire.STATS, 1, 2, 3),
        (wire.STOP,),
    ]
    assert roundtrip(frames) == [list(f) for f in frames]


def test_version_byte_is_checked() -> None:
    data = wire.encode([(wire.START,)])
    assert data[0] == wire.VERSION
    with pytest.raises(wire.WireError):
        wire.decode(bytes([wire.VERSION + 1]) + data[1:])
    with pytest.raises(wire.WireError):
        wire.decode(b"")
    with pytest.raises(wire.WireError):
        wire.decode(bytes([wire.VERSION]) + b"\xc1\xc1")


def test_shapes_are_sent_once_per_channel() -> None:
    enc = wire.ShapeEncoder()
    frames: list[wire.Frame] = []
    assert enc.shape_id(("a", "b"), frames) == 0
    assert enc.shape_id(("a", "b"), frames) == 0
    assert enc.shape_id(("b", "a"), frames) == 1
    assert [f[0] for f in frames] == [wire.SHAPE, wire.SHAPE]
    dec = wire.ShapeDecoder()
    for f in roundtrip(frames):
        dec.learn(f)
    assert dec.fields(1, [1, 2]) == {"b": 1, "a": 2}
    assert list(dec.fields(1, [1, 2])) == ["b", "a"]  # field order is kept


def test_outputs_round_trip_with_keys_and_kinds() -> None:
    outputs = [
        Output(3, 0, 0, "A", "record", 10, {"x": 1, "y": [1, "a"]}),
        Output(3, 1, 0, "W", "window", 59999, {"zone": "north", "n": 2}, "north"),
        Output(3, 1, 1, "W", "record", 59999, {"zone": "north", "n": 2}),
        Output(4, 2, 0, "S", "session", 7, {}, None),  # a null partition key is not "no key"
        Output(4, 3, 0, "T", "window", 8, {"n": 10**30}),
        Output(5, 3, 1, "T", "session", 9, {"n": 1}, 1.0),
    ]
    enc = wire.ShapeEncoder()
    frames: list[wire.Frame] = []
    wire.encode_outputs(outputs, enc, frames)
    dec = wire.ShapeDecoder()
    got: list[Output] = []
    for f in roundtrip(frames):
        if f[0] == wire.SHAPE:
            dec.learn(f)
        else:
            got.extend(wire.decode_outputs(f, dec, ["A", "W", "S", "T"]))
    assert got == outputs
    assert got[0].key is NO_KEY and got[3].key is None and got[4].key is NO_KEY
    assert type(got[5].key) is float


def test_diagnostic_round_trip() -> None:
    d = Diagnostic(path="ev.evt", pos=SourcePos(12, 7), severity="error", message="invalid value",
                   source_line="Reading { v: ? }", width=1, hint="a hint \u00e9")
    (frame,) = roundtrip([(wire.ERROR, 9, wire.encode_diagnostic(d))])
    assert frame[1] == 9
    assert wire.decode_diagnostic(frame[2]) == d


def test_unsupported_value_is_refused() -> None:
    with pytest.raises(TypeError):
        wire.encode([(wire.RECORDS, "S", 0, [1], [1], [[object()]])])


def test_records_travel_column_wise_per_stream_and_shape() -> None:
    from varpulis_mp.runtime.transport import Outbox

    records = [("A", 1, 1, {"x": 1, "y": "a"}), ("A", 2, 2, {"x": 2, "y": "b"}),
               ("A", 3, 2, {"y": "c", "x": 3}), ("B", 3, 3, {"x": 4, "y": "d"}),
               ("A", 4, 4, {"x": 5, "y": "e"}), ("A", 5, 5, {"x": 6, "y": "f"})]
    box = Outbox(None, batch=5)
    for stream, ts, origin, fields in records:
        box.add_record(stream, ts, origin, fields)
    box.seal()
    assert len(box.outbox) == 2  # sealed at 5 records, then the last one
    dec = wire.ShapeDecoder()
    got: list[tuple[str, int, int, dict[str, Any]]] = []
    kinds: list[int] = []
    for data in box.outbox:
        for f in wire.decode(data):
            kinds.append(f[0])
            if f[0] == wire.SHAPE:
                dec.learn(f)
            else:
                _, stream, sid, times, origins, rows = f
                got.extend((stream, t, o, dec.fields(sid, row))
                           for t, o, row in zip(times, origins, rows, strict=True))
    assert got == records
    assert [list(r[3]) for r in got] == [list(r[3]) for r in records]  # field order is kept
    assert kinds == [wire.SHAPE, wire.RECORDS, wire.SHAPE, wire.RECORDS, wire.RECORDS, wire.RECORDS,
                     wire.RECORDS]
