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
function, so the output is still the same. A worker that does not come back (the parser caught in a loop on a
damaged chunk) is killed after :data:`BATCH_TIMEOUT_S` (each worker notes its process id per batch in a shared
array); its batch is counted lost and a new pool reads the rest.
"""

from __future__ import annotations

import logging
import marshal
import multiprocessing
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
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

#: Smallest file read by ``jobs`` workers: below it, starting them (a fork each, ~5-10 ms) costs about what they
#: save (the sequential reader does ~250 MB/s of CPU), and a smaller file is read by one worker (for the timeout).
PARALLEL_MIN_BYTES: Final = 8 << 20
#: Chunks per batch at most (4 MiB); smaller files get smaller batches, so every worker has several.
BATCH_CHUNKS: Final = 64
#: Seconds the parent waits for one batch before it gives the batch up. A batch (at most 4 MiB) takes about 50 ms;
#: the ``evtx`` package has looped for ever on some damaged chunks (omerbenamram/evtx issues #263, #264, #288,
#: #290), and a forensic tool must not hang on a dirty log: the workers are stopped, the batch's records are
#: counted lost (``evtx_parse_timeout``, and missing against the chunk headers) and a new pool reads the rest.
BATCH_TIMEOUT_S: float = 120.0
#: Test knobs: a worker given the batch that starts at this chunk index exits at once (a killed worker), or sleeps
#: for ever (a parser caught in a loop).
_DIE_AT: int | None = None
_HANG_AT: int | None = None

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
    if worker and _OWNERS is not None:
        _OWNERS[first] = os.getpid()  # which process has this batch, should it never come back
    if worker and first == _DIE_AT:
        os._exit(70)
    if worker and first == _HANG_AT:
        time.sleep(3600)
    issues = _Issues()
    runs: list[tuple[int, int]] = []
    with ChunkView(path, first, count) as view:
        parser = open_rust(view)
        rows = [tuple(row) for row in rust_rows(parser.records_json(), source, cut, issues.add, runs)]
    return marshal.dumps(rows), runs, issues.shown, dict(issues.extra)


#: In a worker: the shared array where it writes its process id at the index of each batch it starts.
_OWNERS: Any = None


def _set_owners(owners: Any) -> None:
    global _OWNERS
    _OWNERS = owners


def _kill_stuck(pool: ProcessPoolExecutor, owner: int) -> None:
    """Kill the worker ``owner`` (busy in the parser, so sending nothing) and let the pool break: its manager then
    stops the other workers itself and ``shutdown`` returns. Terminating workers from here instead could stop one in
    the middle of sending a result, and the manager would wait for the rest of that message for ever."""
    if owner and owner in getattr(pool, "_processes", {owner: None}):  # one of this pool's workers, nothing else
        try:
            os.kill(owner, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pool.shutdown(wait=True, cancel_futures=True)


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

    context = multiprocessing.get_context("fork")
    owners = context.RawArray("i", -(-(size - HEADER_SIZE) // CHUNK_SIZE) or 1)  # batch's first chunk -> its pid

    def new_pool() -> ProcessPoolExecutor:
        workers = min(jobs, len(todo) + len(pending))
        return ProcessPoolExecutor(
            max_workers=max(1, workers), mp_context=context, initializer=_set_owners, initargs=(owners,)
        )

    pending: deque[tuple[int, int, Future[BatchResult] | None]] = deque()
    if todo:  # a header-only file has nothing to hand out
        pool = new_pool()

    def broken(exc: BrokenProcessPool) -> None:
        """A worker died: every batch not done yet raises this, from ``result()`` or ``submit()``; say it once."""
        nonlocal pool
        if pool is not None:
            log.warning("%s: an EVTX worker process died (%s); reading the rest here", source, exc)
            pool.shutdown(wait=True, cancel_futures=True)
            pool = None

    def submit(first: int, count: int) -> Future[BatchResult] | None:
        if pool is not None:
            try:
                return pool.submit(parse_batch, path, source, first, count, cut, True)
            except BrokenProcessPool as exc:
                broken(exc)
        return None

    def submit_next() -> None:
        first, count = todo.popleft()
        pending.append((first, count, submit(first, count)))

    def stuck(first: int, count: int) -> None:
        """A batch did not come back in time: stop every worker, count the batch lost, resubmit the others."""
        nonlocal pool
        log.warning(
            "%s: the evtx parser did not finish chunks %d-%d in %.0f s; their records are counted missing",
            source,
            first,
            first + count - 1,
            BATCH_TIMEOUT_S,
        )
        report.add(
            "evtx_parse_timeout",
            f"chunks {first}-{first + count - 1}",
            f"the evtx parser did not finish them in {BATCH_TIMEOUT_S:.0f} s (a damaged chunk it loops on)",
        )
        if pool is not None:
            _kill_stuck(pool, owners[first])
        pool = new_pool()
        for i, (f, c, _) in enumerate(pending):
            owners[f] = 0  # not started in the new pool yet
            pending[i] = (f, c, submit(f, c))

    tally: Tally | None = None
    try:
        while todo and len(pending) < 2 * jobs:
            submit_next()
        # the header and CRC32 scan runs while the workers parse; its issues come first, as in the sequential read
        layout = scan(path, report)
        check_chunks(layout, report)
        tally = Tally(layout)
        while pending:
            first, count, fut = pending.popleft()
            result = None
            if fut is not None:
                try:
                    result = fut.result(timeout=BATCH_TIMEOUT_S)
                except BrokenProcessPool as exc:
                    broken(exc)
                except FutureTimeout:
                    stuck(first, count)
                    if todo:
                        submit_next()
                    continue
            if result is None:
                result = parse_batch(path, source, first, count, cut, False)
            if todo:
                submit_next()
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
