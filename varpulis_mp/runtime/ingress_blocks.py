"""Block ingress, the supervisor's side: whole blocks of raw lines, with no work per line.

Owns `BlockReader`, the input thread used when nothing needs to see events one by one
(`--immediate`, no `--verbose`, no progress display): it reads the source in checked blocks of lines
(`io.readers.iter_blocks`: UTF-8, line length, CRLF), cuts them into pieces of at most `batch`
lines (`transport.block_lines_for`: the ingress high-water mark of pieces holds about a
channel's capacity of lines, and a piece at least `transport.MIN_BLOCK_LINES`) and sends each
piece, as one `BLOCK` frame encoded once, to every worker that reads events. Workers keep their
own lines (runtime/blocks.py); one of them, in turn, checks the lines nobody reads. Origins are
line numbers, so the router's origin is the last line read. The cost here is a few C-level calls
per piece, whatever the lines hold, except for a pool whose lines are split by key
(runtime/key_routes.py): there the router sorts each piece's lines out once, for all its workers.
"""

from __future__ import annotations

from collections.abc import Iterator

from varpulis_mp.errors import EventFileError
from varpulis_mp.io.readers import iter_blocks
from varpulis_mp.runtime import wire
from varpulis_mp.runtime.ingress import Block, InputEnd, InputError, InputFailure, Source, SourceThread
from varpulis_mp.runtime.key_routes import KeyRoutes

__all__ = ["BlockReader", "pieces"]


_SAMPLE = 1 << 16  # characters whose lines give the mean line length of a block
# Whatever may change the BATCH time or hide a JSON event's type in an escape (runtime/blocks.py).
# A lone backslash is found with memchr, far faster than any longer mark.
ODD_MARKS = ("\\", "BATCH")


def pieces(first: int, text: str, batch: int) -> Iterator[tuple[int, int, str]]:
    """`text` (LF-separated lines, the first being line `first`) as (first line, last line, text)
    pieces of at most `batch` lines, cut at an estimate from the mean line length."""
    n = len(text)
    if n <= _SAMPLE:
        total = text.count("\n") + 1
        if total <= batch:
            yield first, first + total - 1, text
            return
        mean = n / total
    else:
        mean = _SAMPLE / (text.count("\n", 0, _SAMPLE) + 1)
    # Aim below `batch` lines so that a first guess is usually right; halve it when it is not.
    stride = max(1, int(mean * batch * 0.9))
    pos = 0
    while True:
        step = stride
        while True:
            end = text.find("\n", pos + step) if pos + step < n else -1
            if end < 0:
                end = n
            lines = text.count("\n", pos, end) + 1
            if lines <= batch or step == 0:
                break
            step //= 2
        yield first, first + lines - 1, text[pos:end]
        first += lines
        if end >= n:
            return
        pos = end + 1


class BlockReader(SourceThread):
    """Reads the input in a thread and hands over `Block`s of `BLOCK` messages (see above)."""

    def __init__(self, source: Source, display_path: str, worker_types: list[list[str]], batch: int,
                 routes: KeyRoutes | None = None) -> None:
        super().__init__(source, display_path)
        self._readers = [w for w, types in enumerate(worker_types) if types]
        if not self._readers:
            raise ValueError("block ingress needs a worker that reads events")
        self._workers = len(worker_types)
        self._batch = max(1, batch)
        self._routes = routes  # pools whose workers get only their keys' lines (runtime/key_routes.py)
        self.line = 0  # the last line handed over

    def run(self) -> None:
        try:
            readers = self._readers
            turn = 0
            for first, text in iter_blocks(self._source, self._path):  # type: ignore[arg-type]
                # Searched once here rather than in every worker: most blocks hold neither mark.
                marked = any(mark in text for mark in ODD_MARKS)
                for start, last, piece in pieces(first, text, self._batch):
                    if self._halt.is_set():
                        return
                    odd = marked and any(mark in piece for mark in ODD_MARKS)
                    checker = readers[turn]
                    turn = (turn + 1) % len(readers)
                    messages = self._messages(start, last, checker, odd, piece)
                    if not self._put(Block(last - start + 1, last, 0, messages, None, None)):
                        return
                    self.line = last
        except EventFileError as exc:  # a line that is not UTF-8 or too long
            self._put(InputError(exc.diagnostics[0].pos.line, exc))
            return
        except Exception as exc:  # handed to the loop, which raises it there
            self._put(InputFailure(exc))
            return
        self._put(InputEnd(self.line))

    def _messages(self, start: int, last: int, checker: int, odd: bool, piece: str) -> list[list[bytes]]:
        """Each worker's message for a piece: the piece itself, encoded once for every reader, or
        for a pool's worker only its groups of lines when the piece is split."""
        routes = self._routes
        split = None if routes is None or odd else routes.split(piece, checker)
        messages: list[list[bytes]] = [[] for _ in range(self._workers)]
        whole: bytes | None = None
        for w in self._readers:
            groups = None if split is None else split.get(w)
            if groups is not None:
                messages[w] = [wire.encode([(wire.BLOCK, start, last, checker, False, "", groups)])]
                continue
            if whole is None:
                whole = wire.encode([(wire.BLOCK, start, last, checker, odd, piece, None)])
            messages[w] = [whole]
        return messages
