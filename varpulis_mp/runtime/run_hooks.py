"""The hooks a `run` gives its metrics around the drivers, and the run without metrics.

Owns the `RunHooks` protocol (what `runtime.commands` calls: the feed to read, the counters to
watch, wrappers for the delivery of records and for the start, the end) and `NoMetrics`, the
hooks of a run without `--metrics`: every wrapper hands back what it was given, so such a run pays
nothing and never imports the metrics' modules. `RunMetrics` (runtime/run_metrics.py) is the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from varpulis_mp.engine.output import Counters, Output
from varpulis_mp.runtime.live_feed import FeedSource, LiveFeed
from varpulis_mp.runtime.rejections import RejectionLog

if TYPE_CHECKING:
    from varpulis_mp.io.dead_letters import DeadLetters
    from varpulis_mp.runtime.live_input import WorkerWatch

__all__ = ["Deliver", "NoMetrics", "RunHooks"]

Deliver = Callable[[list[Output], bool], None]


class RunHooks(Protocol):
    def feed(self, sources: Sequence[FeedSource], stream_names: Sequence[str], log: RejectionLog) -> LiveFeed:
        """The live feed the run reads its inputs from."""
        ...

    def watch(self, log: RejectionLog, dead_letters: DeadLetters,
              subscriptions: Mapping[str, Sequence[FeedSource]]) -> None:
        """The run's rejections, its dead letters and its subscriptions by context."""
        ...

    def deliver(self, inner: Deliver) -> Deliver:
        """What the drivers call with every batch of outputs, `inner` doing the delivery."""
        ...

    def engine_counters(self, by_stream: Mapping[str, Counters]) -> None:
        """The engine's counters by stream of a run in one process (they move as it runs)."""
        ...

    def lines_released(self) -> Callable[[list[tuple[int, int, int, str]]], None] | None:
        """What the merger calls with the records it handed out as JSON Lines, (origin, stream
        index, seq, line) each, once they are out; None: nothing."""
        ...

    def on_start(self, inner: Callable[[], None]) -> Callable[[], None]:
        """What the drivers call once the workers are ready, `inner` starting the sinks."""
        ...

    def worker_watch(self) -> WorkerWatch | None:
        """What hears of the worker processes' lives (ready, exited, restarted, lost records)."""
        ...

    def finish(self) -> None:
        """The run ended (its summary is complete)."""
        ...

    def close(self) -> None:
        """Release what the hooks hold (the metrics server); called however the run ends."""
        ...


class NoMetrics:
    """`run` without `--metrics`."""

    def feed(self, sources: Sequence[FeedSource], stream_names: Sequence[str], log: RejectionLog) -> LiveFeed:
        return LiveFeed(sources, stream_names, log)

    def watch(self, log: RejectionLog, dead_letters: DeadLetters,
              subscriptions: Mapping[str, Sequence[FeedSource]]) -> None:
        pass

    def deliver(self, inner: Deliver) -> Deliver:
        return inner

    def engine_counters(self, by_stream: Mapping[str, Counters]) -> None:
        pass

    def lines_released(self) -> Callable[[list[tuple[int, int, int, str]]], None] | None:
        return None

    def on_start(self, inner: Callable[[], None]) -> Callable[[], None]:
        return inner

    def worker_watch(self) -> WorkerWatch | None:
        return None

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


