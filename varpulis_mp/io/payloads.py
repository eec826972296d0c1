"""Broker payloads (RUN.md §1.3), both directions: a pure codec, no I/O.

In: one JSON object, UTF-8, at most 1 MiB. Its fields are the members of an object-valued `data`
member when there is one, else every member but `event_type`, `type`, `ts` and `timestamp`.
Values follow VPL.md §11.3 (the project's JSON event rules in `evt_json`); the event time is `ts`
(Int ms) or `timestamp` (Int ms, or an RFC 3339 string, to the millisecond), else None (the
arrival time). The type the message names, if any, is returned as is: whether it fits a
subscription is the router's business (`topics`). A payload that cannot be read raises
`PayloadError` with a short reason label for metrics and a detail for logs.

Out: one flat JSON object per output record, `{"event_type": S, "timestamp": RFC 3339 UTC with
milliseconds and Z, fields...}`, values as OUTPUT.md §1 (`jsonl`'s encoder); a field named
`event_type` or `timestamp` is written with a leading underscore.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any, Final

from varpulis_mp.engine.output import Output
from varpulis_mp.io.evt_json import JsonObject, JsonValueError, decode_json_value, holds_object
from varpulis_mp.io.jsonl import encode_fields

__all__ = [
    "MAX_PAYLOAD",
    "Decoded",
    "PayloadError",
    "decode_payload",
    "encode_record",
    "format_timestamp",
    "parse_timestamp",
]

MAX_PAYLOAD: Final = 1 << 20
_TYPE_KEYS: Final = ("event_type", "type")
_NOT_FIELDS: Final = frozenset({"event_type", "type", "ts", "timestamp"})
_RESERVED_OUT: Final = ("event_type", "timestamp")
_RFC3339_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH_DAY: Final = datetime.date(1970, 1, 1).toordinal()
_DAY_MS: Final = 86_400_000
# The last millisecond RFC 3339's four-digit years can write: 9999-12-31T23:59:59.999Z.
_MAX_RFC3339_MS: Final = (datetime.date(9999, 12, 31).toordinal() - _EPOCH_DAY + 1) * _DAY_MS - 1


class PayloadError(Exception):
    """A payload that cannot be read: `reason` is a short label (a metric label), `detail` says more."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a payload says: the type it names (None: the subscription's), its time, its fields."""

    named_type: str | None
    ts: int | None
    fields: dict[str, Any]


def decode_payload(payload: bytes) -> Decoded:
    """The event a broker payload holds; raises PayloadError with the reason."""
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError("too large", f"{len(payload)} bytes, more than 1 MiB")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("invalid utf-8", f"invalid UTF-8 at byte {exc.start}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = decode_json_value(text)
    except JsonValueError as exc:
        reason = "unsupported value" if str(exc) == "number out of range" else "invalid json"
        raise PayloadError(reason, str(exc)) from None
    if not isinstance(value, JsonObject):
        raise PayloadError("not an object", "the payload is JSON but not an object")
    members = dict(value.pairs)
    data = members.get("data")
    if isinstance(data, JsonObject):
        fields = dict(data.pairs)
    else:
        fields = {key: item for key, item in value.pairs if key not in _NOT_FIELDS}
    for key, item in fields.items():
        if isinstance(item, (JsonObject, list)) and holds_object(item):
            raise PayloadError("unsupported value", f"field '{key}' holds an object")
    return Decoded(_named_type(members), _event_time(members), fields)


def _named_type(members: dict[str, object]) -> str | None:
    # `event_type` wins over `type` (the Varpulis reference's order); the other is ignored.
    for key in _TYPE_KEYS:
        if key in members:
            named = members[key]
            if not isinstance(named, str) or not named:
                raise PayloadError("bad event type", f"'{key}' must be a non-empty string")
            return named
    return None


def _event_time(members: dict[str, object]) -> int | None:
    if "ts" in members:
        ts = members["ts"]
        if not _is_ms(ts):
            raise PayloadError("bad timestamp", "'ts' must be a non-negative integer of milliseconds")
        assert isinstance(ts, int)
        return ts
    if "timestamp" in members:
        stamp = members["timestamp"]
        if _is_ms(stamp):
            assert isinstance(stamp, int)
            return stamp
        if isinstance(stamp, str):
            return parse_timestamp(stamp)
        raise PayloadError("bad timestamp", "'timestamp' must be milliseconds or an RFC 3339 string")
    return None


def _is_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_timestamp(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 date-time (finer digits are cut, not rounded)."""
    m = _RFC3339_RE.fullmatch(text)
    if m is None:
        raise PayloadError("bad timestamp", f"'{text[:64]}' is not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    try:
        date = datetime.date(year, month, day)
    except ValueError:
        raise PayloadError("bad timestamp", f"'{text}' is not a valid date") from None
    offset_ms = 0
    if m.group(8) is None:
        off_h, off_m = int(m.group(10)), int(m.group(11))
        if off_h > 23 or off_m > 59:
            raise PayloadError("bad timestamp", f"'{text}' has an invalid offset")
        offset_ms = (off_h * 60 + off_m) * 60_000 * (1 if m.group(9) == "+" else -1)
    if hour > 23 or minute > 59 or second > 59:  # a leap second (60) has no place in epoch time
        raise PayloadError("bad timestamp", f"'{text}' has an invalid time of day")
    millis = int((m.group(7) or "0")[:3].ljust(3, "0"))
    ms = ((date.toordinal() - _EPOCH_DAY) * _DAY_MS + ((hour * 60 + minute) * 60 + second) * 1000
          + millis - offset_ms)
    if ms < 0:
        raise PayloadError("bad timestamp", f"'{text}' is before 1970")
    return ms


def format_timestamp(ms: int) -> str:
    """`1970-01-01T00:00:00.590Z` for 590: UTC, milliseconds, Z."""
    days, rest = divmod(ms, _DAY_MS)
    date = datetime.date.fromordinal(_EPOCH_DAY + days)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{date.isoformat()}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def encode_record(out: Output) -> bytes:
    """The payload of one output record: a flat JSON object, UTF-8."""
    # Times RFC 3339 cannot write (past year 9999, or negative) go out as Int ms, which reads back.
    stamp: object = format_timestamp(out.ts) if 0 <= out.ts <= _MAX_RFC3339_MS else out.ts
    obj: dict[str, Any] = {"event_type": out.stream, "timestamp": stamp}
    fields = out.fields
    if any(name in fields for name in _RESERVED_OUT):
        fields = _renamed(fields)
    obj.update(fields)
    return encode_fields(obj).encode("utf-8")


def _renamed(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields with `event_type`/`timestamp` written `_event_type`/`_timestamp`, in place."""
    taken = set(fields)
    renamed: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _RESERVED_OUT:
            new = "_" + name
            # A record that also has `_timestamp` keeps it; the renamed one takes more underscores.
            while new in taken:
                new = "_" + new
            taken.add(new)
            name = new
        renamed[name] = value
    return renamed

