"""The loss ledger and a worker's side of it (RUN.md §6) when a *sender* is restarted: what the
dead process had sent toward a reader and the reader never got is lost, counted exactly, whichever
of the two reports comes first; the reader drops a replaced sender's late messages. No process is
started: the frames are those the workers send in band. A sending process is named by when it
made its channel (200, then 201 and 202 for its replacements)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from varpulis_mp.runtime import wire
from varpulis_mp.runtime.losses import LossLedger
from varpulis_mp.runtime.transport import Outbox
from varpulis_mp.runtime.worker import MERGER, WorkerSpec

if TYPE_CHECKING:
    from varpulis_mp.runtime.worker import _Worker

CONTEXTS = ["first", "second", "third"]
FIRST, SECOND, THIRD = 0, 1, 2


def _ledger() -> tuple[LossLedger, list[tuple[str, str, int]]]:
    lost: list[tuple[str, str, int]] = []
    return LossLedger(CONTEXTS, lambda context, _w, stream, n: lost.append((context, stream, n))), lost


def _consumed(taken: int) -> list[Any]:
    return [wire.CONSUMED, "p1", {"Passed": taken}, {"Passed": taken}]


def test_what_a_killed_sender_had_sent_and_its_reader_never_got_is_lost_with_the_sender() -> None:
    ledger, lost = _ledger()
    ledger.account(THIRD, [wire.RESUMED, "p1", {}, 200])
    ledger.account(SECOND, [wire.SENT, THIRD, {"Passed": 1500}, 200])
    ledger.account(THIRD, _consumed(1480))
    ledger.restarted(SECOND, "SIGKILL", 1, 5, {"p0"}, 0.0, {THIRD})
    ledger.account(THIRD, _consumed(1488))  # the reader's last of the dead process: final
    ledger.account(THIRD, [wire.RESUMED, "p1", {}, 201])  # the replacement's first, numbered from 0
    ledger.account(THIRD, _consumed(20))
    assert lost == [("second", "Passed", 12)]
    assert ledger.total == 12 and ledger.by_stream[("second", "Passed")] == 12


def test_what_the_dead_sender_said_late_still_counts() -> None:
    ledger, lost = _ledger()
    ledger.account(THIRD, [wire.RESUMED, "p1", {}, 200])
    ledger.account(SECOND, [wire.SENT, THIRD, {"Passed": 100}, 200])
    ledger.account(THIRD, _consumed(90))
    ledger.account(THIRD, [wire.RESUMED, "p1", {}, 201])  # before the dead process's last SENT
    ledger.account(SECOND, [wire.SENT, THIRD, {"Passed": 130}, 200])
    ledger.account(SECOND, [wire.SENT, THIRD, {"Passed": 5}, 201])  # the replacement's: not a loss
    assert lost == [("second", "Passed", 10), ("second", "Passed", 30)]
    assert ledger.total == 40


def test_a_sender_process_the_reader_never_heard_from_lost_all_it_sent() -> None:
    ledger, lost = _ledger()
    ledger.account(THIRD, [wire.RESUMED, "p1", {}, 200])
    ledger.account(SECOND, [wire.SENT, THIRD, {"Passed": 100}, 200])
    ledger.account(THIRD, _consumed(90))
    ledger.account(SECOND, [wire.SENT, THIRD, {"Passed": 50}, 201])
    ledger.account(THIRD, [wire.RESUMED, "p1", {"Passed": 3}, 202])
    assert ledger.total == 10 + 50 + 3, lost


def test_a_reader_restarted_after_its_sender_counts_both_gaps() -> None:
    ledger, _ = _ledger()
    ledger.account(THIRD, [wire.RESUMED, "p1", {}, 200])
    ledger.account(SECOND, [wire.SENT, THIRD, {"Passed": 100}, 200])
    ledger.account(THIRD, _consumed(90))
    ledger.died(THIRD)
    ledger.restarted(THIRD, "SIGKILL", 1, 5, {"p1"}, 0.0)
    # The new reader's first message comes from the new sender, 7 records into its numbering.
    ledger.account(THIRD, [wire.RESUMED, "p1", {"Passed": 7}, 201])
    assert ledger.total == 10 + 7
    assert ledger.by_stream == {("second", "Passed"): 10, ("third", "Passed"): 7}


# -- a worker's side, without sockets -------------------------------------------------------------

TWO_CONTEXTS = ("context a\ncontext b\nstream A = T.context(a).emit(context: b, v: v)\n"
                "stream B = A.context(b).emit(v: v)\n")


def _worker(spec: WorkerSpec, merger: Outbox) -> _Worker:
    """Worker `spec` of TWO_CONTEXTS with its dataflow and `merger` as its channel toward the merger."""
    from varpulis_mp.engine.dataflow import Dataflow
    from varpulis_mp.lang.frontend import load_program
    from varpulis_mp.runtime.worker import _Worker

    program = load_program(TWO_CONTEXTS, "p.vpl")
    worker = _Worker(program, spec, None, os.getpid())  # type: ignore[arg-type] # no sockets needed
    worker.outgoing.dests[MERGER] = merger
    worker.outgoing.flow = Dataflow(program, worker.outgoing.emitted.append, hosted=spec.streams)
    worker.outgoing.sessions = False
    return worker


def _reader(merger: Outbox) -> tuple[_Worker, wire.ShapeDecoder]:
    return _worker(WorkerSpec(1, "b", None, ["B"], [], {"A": [0]}, {}, prompt=True), merger), wire.ShapeDecoder()


def _message(seq: dict[str, int], sender: int, values: list[int]) -> list[list[Any]]:
    """A numbered message of records of A from sending process `sender`, as a worker of `a` sends it."""
    return [[wire.SEQ, seq, sender], [wire.SHAPE, 0, ["v"]],
            [wire.RECORDS, "A", 0, values, values, [[v] for v in values]]]


def test_a_reader_drops_a_replaced_senders_late_messages_and_says_what_it_took_first() -> None:
    worker, decoder = _reader(merger := Outbox(None))
    worker.frames.handle(_message({}, 200, [1, 2]), decoder, None, "p0")  # type: ignore[arg-type]
    worker.frames.handle(_message({}, 201, [3]), decoder, None, "p0")  # type: ignore[arg-type] # the replacement
    worker.frames.handle(_message({"A": 2}, 200, [4]), decoder, None, "p0")  # type: ignore[arg-type] # late: dropped
    worker.frames.handle(_message({"A": 1}, 201, [5]), decoder, None, "p0")  # type: ignore[arg-type]
    accounting = [f for f in merger.frames if f[0] in (wire.RESUMED, wire.CONSUMED)]
    assert accounting == [(wire.RESUMED, "p0", {}, 200), (wire.CONSUMED, "p0", {"A": 2}, {"A": 2}),
                          (wire.RESUMED, "p0", {}, 201)]
    assert worker.incoming.taken == {"p0": {"A": 2}}
    outputs = [f for f in merger.frames if f[0] == wire.OUTPUTS]
    origins = [origin for f in outputs for origin in f[1][0::wire.OUTPUT_STRIDE]]
    assert origins == [1, 2, 3, 5]


def test_a_new_reader_that_hears_the_replacement_first_drops_the_dead_senders_leftovers() -> None:
    worker, decoder = _reader(merger := Outbox(None))
    worker.frames.handle(_message({}, 201, [1]), decoder, None, "p0")  # type: ignore[arg-type]
    worker.frames.handle(_message({"A": 9}, 200, [2]), decoder, None, "p0")  # type: ignore[arg-type]
    assert [f for f in merger.frames if f[0] == wire.RESUMED] == [(wire.RESUMED, "p0", {}, 201)]
    assert worker.incoming.taken == {"p0": {"A": 1}}


def test_a_message_toward_the_merger_says_what_went_toward_each_reader_with_it() -> None:
    merger = Outbox(None, 2)
    worker = _worker(WorkerSpec(0, "a", None, ["A"], ["T"], {}, {"A": [1]}, prompt=True, capacity=2), merger)
    merger.on_seal = worker.reports.report
    worker.outgoing.dests[1] = toward_b = Outbox(None, 2, numbered=True)
    for origin in (1, 2, 3):
        worker.outgoing.flow.push_event(origin, "T", origin, {"v": origin})
        worker.outgoing.route()
    # Sealed at two outputs: the two records toward `b` went with them, numbered or not yet.
    assert [wire.SENT, 1, {"A": 2}, toward_b.born] in wire.decode(merger.outbox[0])
    worker.outgoing.seal_all()
    assert [wire.SENT, 1, {"A": 3}, toward_b.born] in wire.decode(merger.outbox[1])
    assert sum(toward_b.sent.values()) == 3
