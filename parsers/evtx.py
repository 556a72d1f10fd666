"""``.evtx`` files (MS-EVEN6 binary XML event logs) -> Kerberos :class:`KrbRecord` rows.

File layout (libyal's "Windows XML Event Log (EVTX) format" and MS-EVEN6): a 4 KiB file header (``ElfFile\\0``,
CRC32 of its first 120 bytes at offset 124) followed by 64 KiB chunks (``ElfChnk\\0``; header CRC32 over bytes
0-120 and 128-512 at offset 124, CRC32 of the records area at offset 52; first/last record numbers at 8/16).

Two backends read the records, both through the shared mapping of :mod:`parsers.eventmap`:

* ``"evtx"`` (default): the Rust ``evtx`` package, ``records_json()``; a cheap text pre-filter
  (:mod:`parsers.evtxfilter`) skips non-Kerberos events before ``orjson`` decodes anything; ``jobs`` > 1 spreads
  the chunks over worker processes (:mod:`parsers.evtxpool`);
* ``"python-evtx"`` (:mod:`parsers.evtxpy`): the pure-Python ``Evtx`` module, every chunk slot in the file (its
  default iterator trusts a dirty file header and silently reads only part of the file, python-evtx issue #85),
  ``Record.xml()`` parsed with ElementTree.

Known differences between the backends, and how they are made equal: hex values (``0x17`` vs ``0x00000017``),
GUIDs (``ED64...`` vs ``{ed64...}``), empty values and multi-string ``Data`` are normalised by the shared mapping;
python-evtx computes TimeCreated through a float, so its ``ts`` can be 1-2 µs off (the tests allow 2 µs); python-evtx
cannot render some real records at all (the corpus SharpHound log): those count as ``evtx_records_missing`` there.

Damage is counted, never raised, once the file header is readable (:func:`scan`): ``evtx_truncated`` (file cut
inside a chunk; the chunk's intact records are still read), ``evtx_chunk_error`` (a chunk slot whose header is
not a chunk), ``evtx_checksum_error`` (a chunk whose header or records CRC32 is wrong; its records are still
read), ``evtx_records_missing`` (records a readable chunk header declares that the backend could not deliver:
garbage records, a cut), ``evtx_event_error`` (a record read but not an event: no time, bad shape),
``evtx_parse_timeout`` (parallel reads: a batch of chunks the parser did not finish in time, :mod:`parsers.evtxpool`;
a sequential read cannot be interrupted that way).
"""

from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from .errors import MalformedFile, UnsupportedFormat
from .eventfast import row_from_json
from .evtxfilter import (
    KEEP,
    LOGON,
    MAX_VERDICTS,
    REJECT,
    SECURITY_EID_AT,
    SECURITY_HEAD,
    SECURITY_HEAD_AT,
    VERDICT_END,
    logon_kerberos,
    security_verdict,
    wanted,
)
from .evtxview import CHUNK_SIZE, FILE_MAGIC, HEADER_SIZE, ChunkView
from .record import KrbRecord, ParseReport

log = logging.getLogger(__name__)

CHUNK_MAGIC: Final = b"ElfChnk\x00"
#: Records that fit in a chunk (24-byte header + trailer at least): a declared count beyond this is a dirty header.
MAX_RECORDS_PER_CHUNK: Final = (CHUNK_SIZE - 512) // 28
BACKENDS: Final = ("evtx", "python-evtx")
#: Chunk header: first and last record numbers (24), free-space offset (48), records CRC32 (52).
_CHUNK_FIELDS: Final = struct.Struct("<QQxxxxxxxxII")
_U32: Final = struct.Struct("<I")
#: Worker threads for the ``evtx`` package. One: the default pool saves no CPU below ~1 GB (a bare
#: ``records_json()`` loop over 100 MB: 0.40 s CPU either way, bench/README.md), its threads compete with other
#: processes on a loaded host, and the Python side, which holds the GIL, is the larger part of the work anyway.
EVTX_THREADS: Final = 1

#: Runs of record numbers the Rust reader collects before crediting them (bounded memory on a scrambled log).
_MAX_RUNS: Final = 4096


@dataclass
class Chunk:
    """One readable chunk slot: where it is and which record numbers its header declares."""

    offset: int
    first: int
    last: int
    declared: bool  # whether first..last is plausible enough to count missing records against
    seen: int = 0


@dataclass
class Layout:
    """What :func:`scan` found: the readable chunks and whether the file ends inside a chunk."""

    size: int
    padded_size: int
    chunks: list[Chunk] = field(default_factory=list)
    #: identifiers of records the end of the file cuts through: a backend may still render them from the zero
    #: filling, but they are not intact, so they are dropped (and counted missing)
    cut: frozenset[int] = frozenset()

    @property
    def truncated(self) -> bool:
        return self.padded_size != self.size


def scan(path: str, report: ParseReport) -> Layout:
    """Check the file header and every chunk header (magic, CRC32s), counting damage in ``report``.

    Raises :class:`UnsupportedFormat` when the file is not an EVTX log and :class:`MalformedFile` when it is cut
    inside the file header.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        header = fh.read(HEADER_SIZE)
        check_header(header)
        if struct.unpack_from("<I", header, 124)[0] != zlib.crc32(header[:120]):
            report.add("evtx_checksum_error", "file header", "file header CRC32 mismatch")
        layout = Layout(size=size, padded_size=size)
        tail = (size - HEADER_SIZE) % CHUNK_SIZE
        if tail:
            layout.padded_size = size - tail + CHUNK_SIZE
            report.add(
                "evtx_truncated", f"chunk {(size - HEADER_SIZE) // CHUNK_SIZE}", f"file ends {tail} bytes into it"
            )
        _scan_chunks(fh, size, layout, report)
    return layout


def check_header(header: bytes) -> None:
    """Raise :class:`UnsupportedFormat` / :class:`MalformedFile` unless ``header`` is a whole EVTX file header."""
    if header[:8] != FILE_MAGIC:
        raise UnsupportedFormat("not an EVTX file (no ElfFile magic)")
    if len(header) < HEADER_SIZE:
        raise MalformedFile(f"EVTX file cut inside its {HEADER_SIZE}-byte header ({len(header)} bytes)")


def tail_cut(path: str, size: int) -> frozenset[int]:
    """:attr:`Layout.cut` without the whole scan: the records the end of a truncated file cuts through."""
    tail = (size - HEADER_SIZE) % CHUNK_SIZE
    if size <= HEADER_SIZE or not tail:
        return frozenset()
    with open(path, "rb") as fh:
        fh.seek(size - tail)
        chunk = fh.read(tail)
    return _cut_records(chunk) if chunk[:8] == CHUNK_MAGIC and len(chunk) >= 512 else frozenset()


def _scan_chunks(fh: io.BufferedReader, size: int, layout: Layout, report: ParseReport) -> None:
    # one reused buffer, read into and viewed without copies (not a memory map: mapped pages would count in the
    # process's RSS, the size of the file)
    buf = bytearray(CHUNK_SIZE)
    whole = memoryview(buf)
    for index, offset in enumerate(range(HEADER_SIZE, size, CHUNK_SIZE)):
        fh.seek(offset)
        chunk = whole[: fh.readinto(whole)]
        if chunk[:8] != CHUNK_MAGIC:
            if bytes(chunk).strip(b"\x00"):  # an all-zero slot is pre-allocated space, not damage
                report.add("evtx_chunk_error", f"chunk {index}", "no ElfChnk magic")
            continue
        if len(chunk) < 512:
            report.add("evtx_chunk_error", f"chunk {index}", "chunk header cut short")
            continue
        first, last, free, records_crc = _CHUNK_FIELDS.unpack_from(chunk, 24)
        crc_ok = _U32.unpack_from(chunk, 124)[0] == zlib.crc32(chunk[128:512], zlib.crc32(chunk[:120]))
        if crc_ok and len(chunk) == CHUNK_SIZE and 512 <= free <= CHUNK_SIZE:
            crc_ok = records_crc == zlib.crc32(chunk[512:free])
        if not crc_ok:
            report.add("evtx_checksum_error", f"chunk {index}", "chunk CRC32 mismatch")
        declared = 0 < first <= last and last - first < MAX_RECORDS_PER_CHUNK
        layout.chunks.append(Chunk(offset, first, last, declared))
        if len(chunk) < CHUNK_SIZE:
            layout.cut = _cut_records(bytes(chunk))


def _cut_records(chunk: bytes) -> frozenset[int]:
    """Identifiers of the records of a cut-short chunk that extend past its end (walking the size fields)."""
    pos = 512
    while pos + 24 <= len(chunk) and chunk[pos : pos + 4] == b"**\x00\x00":
        size, record_id = struct.unpack_from("<IQ", chunk, pos + 4)
        if size < 28:
            break
        if pos + size > len(chunk):
            return frozenset({record_id})
        pos += size
    return frozenset()


def count_missing(layout: Layout, report: ParseReport) -> None:
    for index, ch in enumerate(layout.chunks):
        if ch.declared:
            missing = ch.last - ch.first + 1 - ch.seen
            if missing > 0:
                report.add("evtx_records_missing", f"chunk at {ch.offset}", f"{missing} records unreadable", n=missing)
        log.debug("chunk %d: %d records seen", index, ch.seen)


class Tally:
    """Attributes delivered record numbers to the chunk that declares them (for ``evtx_records_missing``).

    The Rust reader hands over *runs* of consecutive record numbers (``(first, count)``, usually one run per file)
    instead of single numbers; :meth:`add_runs` credits them exactly as crediting one record at a time would, so
    the sequential reader and the parallel one (:mod:`parsers.evtxpool`, whose workers send their runs back in file
    order) count the same.
    """

    def __init__(self, layout: Layout) -> None:
        self.chunks = sorted((c for c in layout.chunks if c.declared), key=lambda c: c.first)
        self.firsts = [c.first for c in self.chunks]
        self.current: Chunk | None = None
        self.total = 0  # records credited through switch(), in a chunk or not (the Rust reader's units)
        self.lo, self.hi, self.seen = 1, 0, 0  # the current chunk's record range, and its records not yet credited

    def switch(self, record_no: int, seen: int) -> tuple[int, int]:
        """Credit ``seen`` records to the current chunk; make the chunk of ``record_no`` current (its range)."""
        self.total += seen
        if self.current is not None:
            self.current.seen += seen
        i = bisect_right(self.firsts, record_no) - 1
        if i >= 0 and record_no <= self.chunks[i].last:
            self.current = self.chunks[i]
            return self.current.first, self.current.last
        self.current = None
        return 1, 0

    def add_runs(self, runs: list[tuple[int, int]]) -> None:
        """Count the records ``first .. first + count - 1`` of each run, in order."""
        lo, hi, seen = self.lo, self.hi, self.seen
        for first, count in runs:
            r, end = first, first + count - 1
            while r <= end:
                if lo <= r <= hi:  # the rest of the run inside the current chunk's range, in one step
                    take = min(hi, end) - r + 1
                    seen += take
                    r += take
                else:
                    lo, hi = self.switch(r, seen)
                    seen = 1
                    r += 1
        self.lo, self.hi, self.seen = lo, hi, seen

    def finish(self) -> None:
        """Credit what is pending (after the last run)."""
        self.switch(0, self.seen)
        self.lo, self.hi, self.seen = 1, 0, 0

    def see(self, record_no: int) -> None:
        """Count one record (the slow path, for readers that do not keep the range themselves)."""
        cur = self.current
        if cur is not None and cur.first <= record_no <= cur.last:
            cur.seen += 1
        else:
            self.switch(record_no, 0)
            if self.current is not None:
                self.current.seen += 1


def read_evtx(path: str, report: ParseReport, backend: str = "evtx", jobs: int = 1) -> Iterator[KrbRecord]:
    """Kerberos rows of one ``.evtx`` file, in file order (see :mod:`parsers.eventmap` for the columns).

    ``backend`` is ``"evtx"`` (Rust, default) or ``"python-evtx"``. ``report.units`` counts the records read,
    ``report.messages`` the rows emitted. Raises :class:`UnsupportedFormat` / :class:`MalformedFile` for a file that
    is not usable at all (no magic, cut inside the file header, no readable chunk in a non-empty file).

    ``jobs`` > 1 reads a file of at least :data:`parsers.evtxpool.PARALLEL_MIN_BYTES` with that many forked worker
    processes, a smaller file with one (so that a parser caught in a loop is stopped, see
    :data:`parsers.evtxpool.BATCH_TIMEOUT_S`); ``"evtx"`` backend, where ``fork`` exists, not inside a daemonic
    worker. Rows, their order and ``report`` are those of ``jobs=1``, which reads in this process (and cannot stop
    a looping parser). The caller chooses ``jobs`` (e.g. :func:`parsers.jobs.default_jobs`).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown EVTX backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if jobs > 1 and backend == "evtx":
        from . import evtxpool

        if evtxpool.usable():
            # a small file gets one worker: not for speed (starting it costs about what it saves) but so that a
            # parser caught in a loop on a damaged chunk is stopped after evtxpool.BATCH_TIMEOUT_S, as it is in a
            # large file, instead of hanging the whole run (carved or damaged logs are often small)
            small = os.path.getsize(path) < evtxpool.PARALLEL_MIN_BYTES
            rows = evtxpool.read_parallel(path, report, 1 if small else jobs)
            for row in rows:
                report.messages += 1
                yield row
            return
    layout = scan(path, report)
    check_chunks(layout, report)
    tally = Tally(layout)
    if backend == "evtx":
        rows = _read_rust(path, report, layout, tally)
    else:
        from .evtxpy import read_python

        rows = read_python(path, report, layout, tally)
    for row in rows:
        report.messages += 1
        yield row
    count_missing(layout, report)


def check_chunks(layout: Layout, report: ParseReport) -> None:
    """Raise :class:`MalformedFile` when a non-empty file has no readable chunk at all."""
    if not layout.chunks and layout.size > HEADER_SIZE and report.issues:
        raise MalformedFile("no readable chunk in the EVTX file")


def open_rust(source: Any) -> Any:
    """A ``PyEvtxParser`` over a path or a binary file object (one thread, :data:`EVTX_THREADS`)."""
    from evtx import PyEvtxParser

    try:
        return PyEvtxParser(source, number_of_threads=EVTX_THREADS)
    except (OSError, RuntimeError) as exc:
        raise MalformedFile(f"EVTX file unreadable: {exc}") from exc


def _read_rust(path: str, report: ParseReport, layout: Layout, tally: Tally) -> Iterator[KrbRecord]:
    padded = ChunkView(path, 0, (layout.padded_size - HEADER_SIZE) // CHUNK_SIZE) if layout.truncated else None
    runs: list[tuple[int, int]] = []

    def flush() -> None:
        tally.add_runs(runs)
        runs.clear()

    try:
        parser = open_rust(padded if padded is not None else path)
        yield from rust_rows(parser.records_json(), report.source or path, layout.cut, report.add, runs, flush)
    finally:
        flush()
        tally.finish()
        report.units += tally.total
        if padded is not None:
            padded.close()


def rust_rows(
    records: Iterator[dict[str, Any]],
    source: str,
    cut: frozenset[int],
    add: Callable[..., None],
    runs: list[tuple[int, int]],
    flush: Callable[[], None] | None = None,
) -> Iterator[KrbRecord]:
    """The rows of the ``evtx`` package's ``records_json()`` iterator (the reader's loop, shared by the workers of
    :mod:`parsers.evtxpool`).

    The numbers of the records delivered (those in ``cut`` aside) go to ``runs`` as ``(first, count)`` runs of
    consecutive numbers, for :class:`Tally`; ``flush`` (when given) is called to empty ``runs`` once it holds
    :data:`_MAX_RUNS` of them (a log whose numbers jump about); the last run is appended when the iterator ends.
    Records that are no event go to ``add("evtx_event_error", record_id, why)``.
    """
    start = nxt = -1  # the current run of record numbers: start .. nxt - 1
    verdicts: dict[str, int] = {}  # EventID text -> security_verdict() of the usual Security head with it
    try:
        while True:
            try:
                for rec in records:
                    record_id = rec["event_record_id"]
                    if cut and record_id in cut:
                        continue
                    if record_id == nxt:
                        nxt += 1
                    else:
                        if nxt > start:
                            runs.append((start, nxt - start))
                            if flush is not None and len(runs) >= _MAX_RUNS:
                                flush()
                        start, nxt = record_id, record_id + 1
                    data = rec["data"]
                    # the bulk of a Security log, judged without a call: the provider's fixed head compared in
                    # place, then the EventID's first five characters looked up
                    if data.startswith(SECURITY_HEAD, SECURITY_HEAD_AT):
                        eid = data[SECURITY_EID_AT:VERDICT_END]
                        verdict = verdicts.get(eid)
                        if verdict is None:
                            verdict = security_verdict(SECURITY_HEAD + eid)
                            if verdict is not None and len(verdicts) < MAX_VERDICTS:
                                verdicts[eid] = verdict
                    else:
                        verdict = None
                    if verdict != KEEP and (
                        verdict == REJECT or (not logon_kerberos(data) if verdict == LOGON else not wanted(data))
                    ):
                        continue
                    try:
                        row = row_from_json(orjson.loads(data), source)  # = to_record(event_from_json(...))
                    except (orjson.JSONDecodeError, ValueError) as exc:  # EventShapeError, an unusable time
                        add("evtx_event_error", record_id, str(exc))
                        continue
                    if row is not None:
                        yield row
                break
            except RuntimeError as exc:
                # a chunk or record the package could not read: already counted by scan() (chunk slots) or as
                # missing records; the iterator resumes after it
                log.debug("%s: evtx: %s", source, exc)
    finally:
        if nxt > start:
            runs.append((start, nxt - start))
