"""What a driver hands its outputs to: the driver-side face of a Sink (io/ports.py).

Owns the `Delivery` protocol and its optional capabilities, by which a driver (`runtime/local.py`,
`runtime/supervisor.py`) chooses how to run without a flag per variant:

* every delivery takes `write_batch(outputs, flush)`: the outputs of one origin (or, with worker
  processes, of several in order), in canonical order; `flush` marks those of the end-of-input flush;
* a delivery that also `Announces` (`input_event(n, ts, type)`) sees every input event before its
  outputs and gets a `write_batch` for every origin, empty ones too: the verbose human display and
  real-time replay; the drivers then number and route events one by one;
* a delivery that `RendersLines` (`write_lines(lines)`) takes records already written as JSON Lines:
  the workers render them, and the supervisor only orders strings.

`EveryOrigin` and `OriginsWithOutputs` adapt a plain callback (tests, the Python API);
`Announced` a pair of them (the verbose display); `batches` a live run's record router, with its
JSON Lines taker when it has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from varpulis_mp.engine.output import Output

__all__ = ["Announced", "Announces", "Batches", "Delivery", "EveryOrigin", "OriginsWithOutputs", "RendersLines", "batches"]


class Delivery(Protocol):
    def write_batch(self, outputs: list[Output], flush: bool) -> None: ...


@runtime_checkable
class Announces(Protocol):
    def input_event(self, n: int, ts: int, type_name: str) -> None:
        """Input event `n` (1-based) is about to be processed."""
        ...


@runtime_checkable
class RendersLines(Protocol):
    def write_lines(self, lines: list[str]) -> None:
        """Records already written as JSON Lines lines (each with its LF), in canonical order."""
        ...


class EveryOrigin:
    """Calls `take(outputs)` for every origin, in order, empty ones included."""

    def __init__(self, take: Callable[[list[Output]], object]) -> None:
        self._take = take

    def write_batch(self, outputs: list[Output], flush: bool) -> None:
        self._take(outputs)

    def input_event(self, n: int, ts: int, type_name: str) -> None:
        pass


class OriginsWithOutputs:
    """Calls `take(outputs)` for every origin that has outputs, in order."""

    def __init__(self, take: Callable[[list[Output]], object]) -> None:
        self._take = take

    def write_batch(self, outputs: list[Output], flush: bool) -> None:
        if outputs:
            self._take(outputs)


class Announced:
    """Calls `announce(n, ts, type)` for every input event and `take(outputs, flush)` for every
    origin, empty ones included."""

    def __init__(self, announce: Callable[[int, int, str], object],
                 take: Callable[[list[Output], bool], object]) -> None:
        self._announce = announce
        self._take = take

    def input_event(self, n: int, ts: int, type_name: str) -> None:
        self._announce(n, ts, type_name)

    def write_batch(self, outputs: list[Output], flush: bool) -> None:
        self._take(outputs, flush)


class Batches:
    """Calls `take(outputs, flush)` for each batch."""

    def __init__(self, take: Callable[[list[Output], bool], object]) -> None:
        self._take = take

    def write_batch(self, outputs: list[Output], flush: bool) -> None:
        self._take(outputs, flush)


class _BatchesOrLines(Batches):
    """A `Batches` that takes the records as JSON Lines when the driver can give them so."""

    def __init__(self, take: Callable[[list[Output], bool], object], lines: Callable[[list[str]], object]) -> None:
        super().__init__(take)
        self._lines = lines

    def write_lines(self, lines: list[str]) -> None:
        self._lines(lines)


def batches(take: Callable[[list[Output], bool], object],
            lines: Callable[[list[str]], object] | None = None) -> Delivery:
    """`take(outputs, flush)` for each batch, or `lines(lines)` for the records as JSON Lines when
    given (`RecordRouter.lines_taker`, runtime/outputs.py)."""
    return Batches(take) if lines is None else _BatchesOrLines(take, lines)
