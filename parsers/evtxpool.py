"""Parallel ``.evtx`` reading: contiguous batches of chunks parsed by forked worker processes, merged in file order.

EVTX chunks are independent by design (MS-EVEN6; libyal's "Windows XML Event Log (EVTX) format": each 64 KiB
chunk carries its own string and template tables, and no record spans two chunks). A worker therefore parses a
*view* of the file, the 4 KiB file header followed by its batch of chunks, with its own ``PyEvtxParser`` and the
record loop of the sequential reader (:func:`parsers.evtx.rust_rows`). It sends back what the sequential reader
would have produced for those chunks: the rows (plain tuples, ``marshal``-encoded: shipping a pickled NamedTuple
costs 10 µs a row, a marshalled tuple 3 µs), the record-level issues it counted and the runs of record numbers it
saw. The parent replays issues and runs batch by batch in file order, so the rows, their order and the final
:class:`ParseReport` are exactly those of ``jobs=1``.

The parent scans chunk headers and CRC32s (:func:`parsers.evtx.scan`) while the workers parse the first batches.
Memory is bounded whatever the file size: at most ``2 * jobs`` batches are in flight, and a worker reads its view
block by block from the file (:data:`BATCH_CHUNKS` chunks at most, 4 MiB). ``concurrent.futures`` rather than
``multiprocessing.Pool``: a worker that dies (killed, out of memory) makes the first raise ``BrokenProcessPool``
where the second waits for ever; the parent then logs it and parses the remaining batches itself with the same
function, so the output is still the same.
"""

from __future__ import annotations

import logging
import marshal
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final

from .evtx import (
    Tally,
    check_chunks,
    check_header,
    count_missing,
    open_rust,
    rust_rows,
    scan,
    tail_cut,
)
from .evtxview import CHUNK_SIZE, HEADER_SIZE, ChunkView
from .record import MAX_EXAMPLES, KrbRecord, ParseReport

log = logging.getLogger(__name__)

#: Smallest file read in parallel: below it, starting the workers (a fork each, ~5-10 ms) costs about what they
#: save (the sequential reader does ~250 MB/s of CPU).
PARALLEL_MIN_BYTES: Final = 8 << 20
#: Chunks per batch at most (4 MiB); smaller files get smaller batches, so every worker has several.
BATCH_CHUNKS: Final = 64
#: Test knob: a worker given the batch that starts at this chunk index exits at once (a killed worker).
_DIE_AT: int | None = None

_Issue = tuple[str, Any, str | None]
#: What a worker returns: marshalled row tuples, runs of record numbers, the first issues of each kind (replayed
#: with ``report.add``) and the count of the others by kind.
BatchResult = tuple[bytes, list[tuple[int, int]], list[_Issue], dict[str, int]]


def usable() -> bool:
    """Whether this process can start workers: ``fork`` exists here (not on Windows) and this is not itself a
    daemonic worker (those may not have children)."""
    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


class _Issues:
    """``ParseReport.add`` for a worker: the first :data:`MAX_EXAMPLES` issues of each kind in order, and counts."""

    def __init__(self) -> None:
        self.shown: list[_Issue] = []
        self.per_kind: Counter[str] = Counter()
        self.extra: Counter[str] = Counter()

    def add(self, kind: str, where: Any = None, detail: str | None = None, n: int = 1) -> None:
        if self.per_kind[kind] < MAX_EXAMPLES and n == 1:
            self.per_kind[kind] += 1
            self.shown.append((kind, where, detail))
        else:
            self.extra[kind] += n


def parse_batch(path: str, source: str, first: int, count: int, cut: frozenset[int], worker: bool) -> BatchResult:
    """Rows of chunks ``first .. first + count - 1`` (indexes after the file header); ``worker`` is false when the
    parent runs it."""
    if worker and first == _DIE_AT:
        os._exit(70)
    issues = _Issues()
    runs: list[tuple[int, int]] = []
    with ChunkView(path, first, count) as view:
        parser = open_rust(view)
        rows = [tuple(row) for row in rust_rows(parser.records_json(), source, cut, issues.add, runs)]
    return marshal.dumps(rows), runs, issues.shown, dict(issues.extra)


def batches(n_chunks: int, jobs: int, most: int = BATCH_CHUNKS) -> list[tuple[int, int]]:
    """``(first chunk, count)`` of each batch: at most ``most`` chunks, and about four batches per worker."""
    size = max(1, min(most, n_chunks // (4 * jobs)))
    return [(i, min(size, n_chunks - i)) for i in range(0, n_chunks, size)]


def read_parallel(path: str, report: ParseReport, jobs: int) -> Iterator[KrbRecord]:
    """What :func:`parsers.evtx.read_evtx` yields for the ``"evtx"`` backend, read by ``jobs`` worker processes."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        check_header(fh.read(HEADER_SIZE))
    source = report.source or path
    cut = tail_cut(path, size)
    todo = deque(batches(-(-(size - HEADER_SIZE) // CHUNK_SIZE), jobs, BATCH_CHUNKS))
    pool: ProcessPoolExecutor | None = None
    if todo:  # a header-only file has nothing to hand out
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=multiprocessing.get_context("fork"))
    pending: deque[tuple[int, int, Future[BatchResult] | None]] = deque()

    def broken(exc: BrokenProcessPool) -> None:
        """A worker died: every batch not done yet raises this, from ``result()`` or ``submit()``; say it once."""
        nonlocal pool
        if pool is not None:
            log.warning("%s: an EVTX worker process died (%s); reading the rest here", source, exc)
            pool.shutdown(wait=True, cancel_futures=True)
            pool = None

    def submit() -> None:
        first, count = todo.popleft()
        fut = None
        if pool is not None:
            try:
                fut = pool.submit(parse_batch, path, source, first, count, cut, True)
            except BrokenProcessPool as exc:
                broken(exc)
        pending.append((first, count, fut))

    tally: Tally | None = None
    try:
        while todo and len(pending) < 2 * jobs:
            submit()
        # the header and CRC32 scan runs while the workers parse; its issues come first, as in the sequential read
        layout = scan(path, report)
        check_chunks(layout, report)
        tally = Tally(layout)
        while pending:
            first, count, fut = pending.popleft()
            result = None
            if fut is not None:
                try:
                    result = fut.result()
                except BrokenProcessPool as exc:
                    broken(exc)
            if result is None:
                result = parse_batch(path, source, first, count, cut, False)
            if todo:
                submit()
            blob, runs, shown, extra = result
            tally.add_runs(runs)
            for kind, where, detail in shown:
                report.add(kind, where, detail)
            for kind, n in extra.items():  # beyond the examples the replay above filled
                report.issues[kind] += n
            new = tuple.__new__
            for values in marshal.loads(blob):
                yield new(KrbRecord, values)
        tally.finish()
        report.units += tally.total
        tally = None
        count_missing(layout, report)
    finally:
        if tally is not None:  # the consumer stopped early or an error interrupted: count what was read
            tally.finish()
            report.units += tally.total
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
