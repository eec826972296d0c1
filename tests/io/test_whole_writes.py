"""The standard-output writers write every byte of an unbuffered stream, signals or not.

Standard output as `python -u` (or `PYTHONUNBUFFERED=1`) makes it: a text layer writing through
to the raw descriptor, here a pipe. A slow reader keeps the pipe full, so each large write
blocks, and a signal sent to the writing thread every 2 ms (handled, as SIGTERM is in a run)
interrupts it after part of it went: the text layer alone would drop the rest. The JSON Lines and human writers must not.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tests.brokers import record
from varpulis_mp.io.human import HumanSink, HumanView
from varpulis_mp.io.jsonl import JsonlSink

RECORDS = 20_000
PAD = "x" * 100


@contextmanager
def _unbuffered_pipe_read_slowly() -> Iterator[tuple[TextIO, Callable[[], bytes]]]:
    """An unbuffered text stream into a pipe, a reader taking it slowly, and SIGUSR1 to this thread
    every 2 ms; yields the stream and a function that closes it and returns all that was read."""
    read_end, write_end = os.pipe()
    stream = io.TextIOWrapper(io.FileIO(write_end, "wb"), encoding="utf-8", write_through=True)
    got = bytearray()

    def read() -> None:
        while chunk := os.read(read_end, 16_384):
            got.extend(chunk)
            time.sleep(0.001)

    writer = threading.get_ident()
    stop = threading.Event()

    def interrupt() -> None:
        while not stop.wait(0.002):
            signal.pthread_kill(writer, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    reader = threading.Thread(target=read, daemon=True)
    interrupter = threading.Thread(target=interrupt, daemon=True)
    reader.start()
    interrupter.start()

    def finish() -> bytes:
        stop.set()
        interrupter.join(10)
        stream.close()
        reader.join(10)
        assert not reader.is_alive(), "the reader did not see the end of the pipe"
        return bytes(got)

    try:
        yield stream, finish
    finally:
        stop.set()
        interrupter.join(10)
        signal.signal(signal.SIGUSR1, previous)
        if not stream.closed:
            stream.close()
        os.close(read_end)


def test_json_lines_reach_an_interrupted_unbuffered_pipe_whole() -> None:
    outputs = [record("S", i, n=i, pad=PAD) for i in range(RECORDS)]
    with _unbuffered_pipe_read_slowly() as (stream, finish):
        sink = JsonlSink(stream)
        for start in range(0, RECORDS, 5_000):
            sink.write_outputs(outputs[start:start + 5_000])
            sink.flush()
        got = finish()
    lines = got.decode("utf-8").split("\n")
    assert lines[-1] == ""
    assert [line.count(PAD) for line in lines[:-1]] == [1] * RECORDS
    assert lines[-2].startswith('{"stream": "S", "ts": 19999,')


def test_human_lines_reach_an_interrupted_unbuffered_pipe_whole() -> None:
    outputs = [record("S", i, n=i, pad=PAD) for i in range(RECORDS)]
    with _unbuffered_pipe_read_slowly() as (stream, finish):
        sink = HumanSink(stream, HumanView({}, set()), verbose=False, immediate=False)
        for start in range(0, RECORDS, 5_000):
            sink.write_outputs(outputs[start:start + 5_000])
        sink.close()
        got = finish()
    text = got.decode("utf-8")
    assert text.endswith("\n")
    assert text.count(PAD) == RECORDS
