"""Where a live run's records go: standard output in the chosen format, and each stream's `.to` sinks.

Owns `RecordRouter`, the one object both live drivers hand their outputs to. Standard output gets
every output (its writer keeps what its format shows); each stream with `.to` sinks gets its own
records, in its own order, in the partitions built from them (io/ports.py). Closing the router
closes every sink, which delivers what it still holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from varpulis_mp.engine.output import Output
from varpulis_mp.io.jsonl import JsonlSink
from varpulis_mp.io.ports import Sink, SinkPartition
from varpulis_mp.runtime.handover import RendersLines

__all__ = ["Discard", "Prompt", "RecordRouter"]


class Prompt:
    """JSON Lines on standard output for a live run: every batch written and flushed at once, so a
    record is out as soon as it exists."""

    def __init__(self, sink: JsonlSink) -> None:
        self._sink = sink

    def write_batch(self, records: Sequence[Output], flush: bool) -> None:
        if records:
            self._sink.write_outputs(records)
            self._sink.flush()

    def write_lines(self, lines: list[str]) -> None:
        self._sink.write_lines(lines)
        self._sink.flush()

    def close(self) -> None:
        self._sink.close()


class Discard:
    """`--output none`: no records on standard output (the choice under systemd)."""

    def write_batch(self, records: Sequence[Output], flush: bool) -> None:
        pass

    def write_lines(self, lines: list[str]) -> None:
        pass

    def close(self) -> None:
        pass


class RecordRouter:
    """`sinks` are descriptions; `start()` builds them where and when they run (after any fork)."""

    def __init__(self, stdout: SinkPartition, sinks: Mapping[str, Sequence[Sink]]) -> None:
        self._stdout = stdout
        self._sinks = {name: list(descriptions) for name, descriptions in sinks.items() if descriptions}
        self._by_stream: dict[str, list[SinkPartition]] = {}
        self._closed = False

    def start(self) -> None:
        if self._sinks and not self._by_stream:
            self._by_stream = {name: [d.build(0, 1) for d in descriptions]
                               for name, descriptions in self._sinks.items()}

    def lines_taker(self) -> Callable[[list[str]], None] | None:
        """What takes the records as ready-made JSON Lines lines when that is all standard output
        wants (`jsonl`, or nothing for `none`) and no `.to` sink is run here; None when the
        Outputs themselves are needed."""
        if self._sinks or not isinstance(self._stdout, RendersLines):
            return None
        return self._stdout.write_lines

    def deliver(self, outputs: list[Output], flush: bool) -> None:
        self._stdout.write_batch(outputs, flush)
        if not self._by_stream or not outputs:
            return
        grouped: dict[str, list[Output]] = {}
        for out in outputs:
            if out.kind == "record" and out.stream in self._by_stream:
                grouped.setdefault(out.stream, []).append(out)
        for name, records in grouped.items():
            for part in self._by_stream[name]:
                part.write_batch(records, flush)

    def close(self) -> None:
        """Close every sink (each delivers what it holds); the first failure is raised after all tried."""
        if self._closed:
            return
        self._closed = True
        failure: BaseException | None = None
        for part in [self._stdout, *(p for parts in self._by_stream.values() for p in parts)]:
            try:
                part.close()
            except Exception as exc:  # noqa: BLE001 - every sink gets its chance to deliver
                failure = failure or exc
        if failure is not None:
            raise failure
