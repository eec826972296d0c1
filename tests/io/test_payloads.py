"""Broker payloads (RUN.md §1.3) both ways, and the topic patterns that route them."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from varpulis_mp.engine.output import Output
from varpulis_mp.io.payloads import (
    MAX_PAYLOAD,
    PayloadError,
    decode_payload,
    encode_record,
    format_timestamp,
    parse_timestamp,
)
from varpulis_mp.io.topics import MQTT_TOPICS, NATS_SUBJECTS, TopicSyntax, wire_patterns


def reason_of(payload: bytes) -> str:
    with pytest.raises(PayloadError) as info:
        decode_payload(payload)
    return info.value.reason


# --- in: what is accepted -------------------------------------------------------------------------

def test_flat_object_fields_are_every_member_but_type_and_time() -> None:
    d = decode_payload(b'{"event_type": "Reading", "ts": 1500, "sensor": "S1", "t": 21.5, "ok": true,'
                       b' "n": null, "tags": [1, "a", [false]]}')
    assert d.named_type == "Reading"
    assert d.ts == 1500
    assert d.fields == {"sensor": "S1", "t": 21.5, "ok": True, "n": None, "tags": [1, "a", [False]]}
    assert list(d.fields) == ["sensor", "t", "ok", "n", "tags"]


def test_ints_and_floats_keep_their_kind() -> None:
    d = decode_payload(b'{"a": 1, "b": 1.0, "c": 1e2, "d": -7}')
    assert [type(v) for v in d.fields.values()] == [int, float, float, int]


def test_data_object_holds_the_fields_and_other_members_are_ignored() -> None:
    d = decode_payload(b'{"type": "Reading", "timestamp": 7, "source": "gw-1", "data": {"x": 1, "y": "z"}}')
    assert (d.named_type, d.ts, d.fields) == ("Reading", 7, {"x": 1, "y": "z"})


def test_a_data_member_that_is_not_an_object_is_an_ordinary_field() -> None:
    assert decode_payload(b'{"data": [1, 2], "x": 3}').fields == {"data": [1, 2], "x": 3}
    assert decode_payload(b'{"data": 5}').fields == {"data": 5}


def test_no_type_and_no_time() -> None:
    d = decode_payload(b'{"temperature": 91.5}')
    assert (d.named_type, d.ts) == (None, None)


def test_event_type_wins_over_type() -> None:
    d = decode_payload(b'{"event_type": "A", "type": "B", "x": 1}')
    assert d.named_type == "A"
    assert d.fields == {"x": 1}


def test_ts_wins_over_timestamp() -> None:
    assert decode_payload(b'{"ts": 5, "timestamp": "2024-01-01T00:00:00Z"}').ts == 5


@pytest.mark.parametrize("stamp, ms", [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:00.590Z", 590),
    ("1970-01-01T00:00:00.5Z", 500),
    ("1970-01-01T00:00:01.123456789Z", 1123),  # finer digits are cut
    ("1970-01-01t00:00:01z", 1000),
    ("1970-01-01 00:00:01Z", 1000),
    ("1970-01-01T02:00:00+02:00", 0),
    ("1969-12-31T23:00:00-01:00", 0),
    ("2024-02-29T12:34:56.789Z", 1709210096789),
])
def test_rfc3339_timestamps(stamp: str, ms: int) -> None:
    assert parse_timestamp(stamp) == ms
    assert decode_payload(json.dumps({"timestamp": stamp}).encode()).ts == ms


def test_timestamp_may_be_int_milliseconds() -> None:
    assert decode_payload(b'{"timestamp": 1700000000000}').ts == 1700000000000


def test_a_byte_order_mark_and_surrounding_whitespace_are_allowed() -> None:
    assert decode_payload(b'\xef\xbb\xbf {"x": 1}\r\n').fields == {"x": 1}


def test_exactly_one_mebibyte_is_allowed() -> None:
    head = b'{"s": "'
    payload = head + b"a" * (MAX_PAYLOAD - len(head) - 2) + b'"}'
    assert len(payload) == MAX_PAYLOAD
    assert len(decode_payload(payload).fields["s"]) == MAX_PAYLOAD - len(head) - 2


# --- in: every rejection reason -------------------------------------------------------------------

@pytest.mark.parametrize("payload, reason", [
    (b"x" * (MAX_PAYLOAD + 1), "too large"),
    (b'{"s": "\xff"}', "invalid utf-8"),
    (b'{"x": 1', "invalid json"),
    (b"", "invalid json"),
    (b'{"x": 1} {"y": 2}', "invalid json"),
    (b'{"x": 1, "x": 2}', "invalid json"),
    (b'{"x": NaN}', "invalid json"),
    (b'{"x": "\\ud800"}', "invalid json"),
    (b'{"x": 99999999999999999999}', "unsupported value"),
    (b'{"x": 1e999}', "unsupported value"),
    (b"[1, 2]", "not an object"),
    (b'"text"', "not an object"),
    (b'{"x": {"y": 1}}', "unsupported value"),
    (b'{"x": [1, [{"y": 1}]]}', "unsupported value"),
    (b'{"data": {"x": {"y": 1}}}', "unsupported value"),
    (b'{"event_type": 5}', "bad event type"),
    (b'{"type": ""}', "bad event type"),
    (b'{"ts": -1}', "bad timestamp"),
    (b'{"ts": 1.5}', "bad timestamp"),
    (b'{"ts": "5"}', "bad timestamp"),
    (b'{"ts": true}', "bad timestamp"),
    (b'{"timestamp": "yesterday"}', "bad timestamp"),
    (b'{"timestamp": "2024-02-30T00:00:00Z"}', "bad timestamp"),
    (b'{"timestamp": "2024-01-01T24:00:00Z"}', "bad timestamp"),
    (b'{"timestamp": "2024-01-01T23:59:60Z"}', "bad timestamp"),
    (b'{"timestamp": "2024-01-01T00:00:00"}', "bad timestamp"),
    (b'{"timestamp": "2024-01-01T00:00:00+24:00"}', "bad timestamp"),
    (b'{"timestamp": "1969-12-31T23:59:59Z"}', "bad timestamp"),
    (b'{"timestamp": [1]}', "bad timestamp"),
])
def test_rejections(payload: bytes, reason: str) -> None:
    assert reason_of(payload) == reason


def test_rejection_detail_says_more_than_the_label() -> None:
    with pytest.raises(PayloadError) as info:
        decode_payload(b'{"x": 1, "x": 2}')
    assert info.value.detail == "duplicate member 'x'"


# --- out ------------------------------------------------------------------------------------------

def record(stream: str, ts: int, fields: dict[str, object]) -> Output:
    return Output(1, 0, 0, stream, "record", ts, fields)


def test_record_payload_is_the_reference_shape() -> None:
    payload = encode_record(record("Hot", 590, {"sensor_id": "S1", "temperature": 91.5}))
    assert payload == (b'{"event_type": "Hot", "timestamp": "1970-01-01T00:00:00.590Z", '
                       b'"sensor_id": "S1", "temperature": 91.5}')


def test_values_as_output_md() -> None:
    payload = encode_record(record("S", 0, {"f": 200.0, "i": 8000000000000000000, "s": "é\"\n",
                                            "b": False, "n": None, "l": [1, 1e16, "x"]}))
    assert payload.decode() == ('{"event_type": "S", "timestamp": "1970-01-01T00:00:00.000Z", "f": 200.0, '
                                '"i": 8000000000000000000, "s": "é\\"\\n", "b": false, "n": null, '
                                '"l": [1, 1e+16, "x"]}')


def test_fields_named_like_the_envelope_get_an_underscore() -> None:
    payload = encode_record(record("S", 1, {"event_type": "x", "timestamp": 2, "_timestamp": 3}))
    assert json.loads(payload) == {"event_type": "S", "timestamp": "1970-01-01T00:00:00.001Z",
                                   "_event_type": "x", "__timestamp": 2, "_timestamp": 3}
    assert list(json.loads(payload)) == ["event_type", "timestamp", "_event_type", "__timestamp", "_timestamp"]


def test_times_rfc3339_cannot_write_go_out_as_milliseconds() -> None:
    huge = 300_000_000_000_000
    assert json.loads(encode_record(record("S", huge, {})))["timestamp"] == huge
    assert decode_payload(encode_record(record("S", huge, {}))).ts == huge
    assert format_timestamp(253402300799999) == "9999-12-31T23:59:59.999Z"


# --- round trip -----------------------------------------------------------------------------------

# Every name but the four the envelope reads (`data` is a field when it is not an object).
_names = st.text(min_size=1, max_size=8) | st.sampled_from(["data", "_timestamp", "_event_type"])
_names = _names.filter(lambda n: n not in ("event_type", "type", "ts", "timestamp"))
_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(stream=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
       ts=st.integers(0, 253402300799999),
       fields=st.dictionaries(_names, _values, max_size=6))
def test_what_goes_out_reads_back_the_same(stream: str, ts: int, fields: dict[str, object]) -> None:
    decoded = decode_payload(encode_record(record(stream, ts, fields)))
    assert decoded.named_type == stream
    assert decoded.ts == ts
    assert decoded.fields == fields
    assert list(decoded.fields) == list(fields)
    # Floats keep their kind (and -0.0 its sign) both ways.
    assert repr(decoded.fields) == repr(fields)


# --- topic patterns -------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, topic, expected", [
    ("s/+/reading", "s/1/reading", True),
    ("s/+/reading", "s/1/2/reading", False),
    ("s/#", "s", True),
    ("s/#", "s/a/b", True),
    ("#", "a/b", True),
    ("#", "$SYS/x", False),
    ("+/x", "$SYS/x", False),
    ("$SYS/#", "$SYS/x", True),
    ("a//b", "a//b", True),
    ("a/+/b", "a//b", True),
    ("a/b", "a/b/c", False),
    ("a/b/c", "a/b", False),
])
def test_mqtt_matching(pattern: str, topic: str, expected: bool) -> None:
    assert MQTT_TOPICS.matches(pattern, topic) is expected


@pytest.mark.parametrize("pattern, subject, expected", [
    ("s.*.reading", "s.1.reading", True),
    ("s.>", "s", False),
    ("s.>", "s.a.b", True),
    (">", "a", True),
    ("s.*", "s.a.b", False),
    ("a.b", "a.b", True),
])
def test_nats_matching(pattern: str, subject: str, expected: bool) -> None:
    assert NATS_SUBJECTS.matches(pattern, subject) is expected


@pytest.mark.parametrize("pattern", ["", "a/#/b", "a/b#", "a+/b", "a\0"])
def test_bad_mqtt_filters(pattern: str) -> None:
    assert MQTT_TOPICS.problem(pattern) is not None


@pytest.mark.parametrize("pattern", ["", "a..b", "a.>.b", "a*.b", "a b"])
def test_bad_nats_subjects(pattern: str) -> None:
    assert NATS_SUBJECTS.problem(pattern) is not None


def test_publish_topics_cannot_hold_wildcards() -> None:
    assert MQTT_TOPICS.problem("a/+", wildcards=False) is not None
    assert NATS_SUBJECTS.problem("a.*", wildcards=False) is not None
    assert MQTT_TOPICS.problem("alerts/hot", wildcards=False) is None


def test_overlapping_patterns_are_subscribed_once_under_a_cover() -> None:
    wires = wire_patterns(MQTT_TOPICS, ["s/#", "s/+/x", "t/a", "s/#", "u/+/x", "u/a/#"])
    assert [(w.pattern, w.members) for w in wires] == [
        ("s/#", [0, 1, 3]), ("t/a", [2]), ("u/+/#", [4, 5])]
    nats = wire_patterns(NATS_SUBJECTS, ["a.b", "a.>", "c.*.d", "c.e.>"])
    assert [(w.pattern, w.members) for w in nats] == [("a.>", [0, 1]), ("c.*.>", [2, 3])]


_levels = st.lists(st.sampled_from(["a", "b", "*", ""]), min_size=1, max_size=4)


@pytest.mark.parametrize("syntax", [MQTT_TOPICS, NATS_SUBJECTS], ids=["mqtt", "nats"])
@settings(max_examples=300, deadline=None)
@given(a=_levels, b=_levels, a_many=st.booleans(), b_many=st.booleans(),
       topic=st.lists(st.sampled_from(["a", "b", "c", "", "$x"]), min_size=1, max_size=6))
def test_a_cover_matches_whatever_either_pattern_matches(syntax: TopicSyntax, a: list[str], b: list[str],
                                                        a_many: bool, b_many: bool, topic: list[str]) -> None:
    def pattern(levels: list[str], many: bool) -> str:
        return syntax.separator.join([syntax.one if x == "*" else x for x in levels] + ([syntax.many] if many else []))

    pa, pb = pattern(a, a_many), pattern(b, b_many)
    t = syntax.separator.join(topic)
    assume(syntax.problem(pa) is None and syntax.problem(pb) is None and syntax.problem(t, wildcards=False) is None)
    if syntax.matches(pa, t) and syntax.matches(pb, t):
        assert syntax.overlaps(pa, pb)
    if syntax.overlaps(pa, pb):
        cover = syntax.cover(pa, pb)
        assert syntax.problem(cover) is None
        if syntax.matches(pa, t) or syntax.matches(pb, t):
            assert syntax.matches(cover, t)
