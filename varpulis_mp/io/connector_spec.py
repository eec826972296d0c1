"""What every connector kind shares: how it is asked for sources and sinks, its parameters, its counters.

The language hands each connector over as plain data: a mapping of RUN.md §1.1's parameter names
to values (defaults applied, Durations as int milliseconds), the `Subscription`s of its `.from`s
and, per sink, the `.to` parameters and the stream's name. A `ConnectorKind` turns that into a
`Source` or `Sink` description (ports.py) that the worker builds where it runs.

`Params` reads such a mapping with the types RUN.md gives, so that a bad value fails at start-up
with the parameter named rather than deep in a client library.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from varpulis_mp.io.ports import Sink, Source

__all__ = [
    "Backoff",
    "ConnectorCounters",
    "ConnectorKind",
    "Monitored",
    "Params",
    "Subscription",
]

BACKOFF_FIRST_S: Final = 0.1
BACKOFF_MAX_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Subscription:
    """One `T.from(C, params)`: the event type T and the `.from` parameters."""

    event_type: str
    params: Mapping[str, object] = field(default_factory=dict)


class ConnectorKind(Protocol):
    """One kind of connector (`mqtt`, `nats`, `file`, `http`)."""

    @property
    def kind(self) -> str: ...

    def source(self, connector: str, params: Mapping[str, object],
               subscriptions: Sequence[Subscription], context: str) -> Source:
        """The one source of a process for `connector`, holding all of its subscriptions there."""
        ...

    def sink(self, connector: str, params: Mapping[str, object], to_params: Mapping[str, object],
             stream: str, context: str) -> Sink:
        """The sink of one `.to(connector, to_params)` of `stream`."""
        ...


class Params:
    """Typed reads of a connector's (or a `.from`/`.to`'s) parameters; errors name the parameter."""

    def __init__(self, connector: str, values: Mapping[str, object]) -> None:
        self._connector = connector
        self._values = values

    def _bad(self, name: str, what: str) -> ValueError:
        return ValueError(f"connector '{self._connector}': parameter '{name}' must be {what}")

    def text(self, name: str, default: str | None = None) -> str:
        value = self._values.get(name, default)
        if not isinstance(value, str):
            raise self._bad(name, "a string" if name in self._values else "given")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is not None and not isinstance(value, str):
            raise self._bad(name, "a string")
        return value

    def integer(self, name: str, default: int, low: int = 0, high: int | None = None) -> int:
        value = self._values.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (
                high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise self._bad(name, f"an integer {bounds}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._values.get(name, default)
        if not isinstance(value, bool):
            raise self._bad(name, "true or false")
        return value

    def qos(self, name: str = "qos", default: int = 0) -> int:
        return self.integer(name, default, 0, 1)


@dataclass(slots=True)
class ConnectorCounters:
    """A client's counters, for the metrics of RUN.md §4 (`varpulis_connector_*`).

    Written by one thread each (the client's or the sender's) and read by others: plain ints,
    whose reads and writes are atomic under the interpreter lock.
    """

    messages_in: int = 0
    messages_out: int = 0
    ignored: int = 0  # messages a covering wire pattern brought that no subscription asked for
    connects: int = 0
    failures: int = 0
    dead_lettered: int = 0


@runtime_checkable
class Monitored(Protocol):
    """A connector partition's health and counters, for `/healthz` and the metrics (RUN.md §4)."""

    counters: ConnectorCounters

    @property
    def healthy(self) -> bool:
        """Connected (MQTT: CONNACK and SUBACK received; NATS: connected and subscribed)."""
        ...


class Backoff:
    """Delays between attempts to reach a broker or endpoint: 100 ms doubling, at most 5 s.

    A little jitter (up to a tenth) keeps many clients from retrying in step after a broker restart.
    """

    def __init__(self, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._cap)
        return delay * (1.0 - 0.1 * random.random())

    def reset(self) -> None:
        self._next = self._first
