"""``read_evtx(..., jobs=N)``: worker processes over batches of chunks give exactly the rows and report of ``jobs=1``.

The sequential reader is checked against independent truth elsewhere (the samples' MANIFEST, the corpus ground
truth, the writer's record layout in test_evtx_damage.py); here every such input, and every kind of damage, is
read again in parallel with tiny batches (one or two chunks, so batch edges fall everywhere) and must come out the
same: rows in the same order, the same units, messages, issue counts and issue examples.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers import MalformedFile, UnsupportedFormat, evtxpool
from parsers.evtx import Chunk, Layout, Tally, read_evtx
from parsers.record import ParseReport
from tests.conftest import CORPUS, corpus_path
from tests.test_evtx_helpers import EVTX_SAMPLES, evtxwriter, make_samples

HEADER, CHUNK = 4096, 65536
#: A worker pool's shutdown that hangs inside a generator's close shows only as an "exception ignored" warning.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
CORPUS_FILES = sorted(p.relative_to(CORPUS / "evtx").as_posix() for p in (CORPUS / "evtx").rglob("*.evtx"))


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file goes parallel, one chunk per batch."""
    monkeypatch.setattr(evtxpool, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(evtxpool, "BATCH_CHUNKS", 1)


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A parent waiting for ever on a worker fails the test instead of hanging the suite."""

    def expired(*_: Any) -> None:
        raise TimeoutError("read_evtx(jobs>1) did not finish in 60 s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _read(path: Path | str, jobs: int, backend: str = "evtx") -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    report = ParseReport(source=str(path))
    rows = [tuple(r) for r in read_evtx(str(path), report, backend=backend, jobs=jobs)]
    summary = {
        "units": report.units,
        "messages": report.messages,
        "issues": dict(report.issues),
        "examples": report.examples,
    }
    return rows, summary


def _same(path: Path | str, jobs: int = 2) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    sequential = _read(path, 1)
    parallel = _read(path, jobs)
    assert parallel[1] == sequential[1]
    assert parallel[0] == sequential[0]
    return sequential


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("name", ["dc01-security.evtx", "dc01-system.evtx"])
@pytest.mark.parametrize("jobs", [2, 3])
def test_samples(name: str, jobs: int) -> None:
    rows, summary = _same(EVTX_SAMPLES / name, jobs)
    assert rows and not summary["issues"]


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("rel", CORPUS_FILES or ["(corpus absent)"])
def test_corpus(rel: str) -> None:
    _same(corpus_path("evtx", rel), 2)


@dataclasses.dataclass
class Log:
    data: bytes
    placed: list[tuple[int, int, int, int]]  # record id, chunk, offset in chunk, size
    kerberos: list[int]  # record ids that become rows, in order


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    """Six chunks of the Security sample's events (padded so few fit a chunk), Kerberos ones known by record id."""
    story = make_samples.security_story()
    keep = {row["record_no"] for row in story.expect}
    path = tmp_path_factory.mktemp("parallel") / "base.evtx"
    kerberos = []
    with evtxwriter.EvtxWriter(str(path), first_record_id=1) as w:
        i = 0
        while w._chunks < 6:
            ev = story.events[i % len(story.events)]
            pad = [("Padding", "x" * 1500, "str")]
            rid = w.add(dataclasses.replace(ev, record_id=None, time=ev.time + i * 10_000_000, data=ev.data + pad))
            if ev.record_id in keep:
                kerberos.append(rid)
            i += 1
        placed = [p for p in w.placed if p[1] < 6]
    data = path.read_bytes()[: HEADER + 6 * CHUNK]
    return Log(data, placed, [rid for rid in kerberos if any(p[0] == rid for p in placed)])


def _damaged(log: Log) -> dict[str, bytes]:
    """Each kind of damage test_evtx_damage.py checks against the layout, at several places."""
    out = {"intact": log.data}
    by_chunk = [[p for p in log.placed if p[1] == c] for c in range(6)]
    for c in (1, 3):
        _, _, off, size = by_chunk[c][5]
        out[f"cut inside chunk {c}"] = log.data[: HEADER + c * CHUNK + off + size // 2]
        out[f"cut inside chunk {c} header"] = log.data[: HEADER + c * CHUNK + 100]
        bad = bytearray(log.data)
        bad[HEADER + c * CHUNK + 60] ^= 0xFF
        out[f"bad header CRC chunk {c}"] = bytes(bad)
        bad = bytearray(log.data)
        bad[HEADER + c * CHUNK : HEADER + c * CHUNK + 8] = bytes(8)
        out[f"zeroed magic chunk {c}"] = bytes(bad)
        _, _, off, size = by_chunk[c][-3]
        bad = bytearray(log.data)
        start = HEADER + c * CHUNK + off
        bad[start + 24 : start + size - 4] = random.Random(c).randbytes(size - 28)
        out[f"garbage record body chunk {c}"] = bytes(bad)
        bad = bytearray(log.data)
        bad[start : start + 64] = random.Random(c + 10).randbytes(64)
        out[f"garbage over record header chunk {c}"] = bytes(bad)
        bad = bytearray(log.data)
        bad[HEADER + c * CHUNK : HEADER + (c + 1) * CHUNK] = random.Random(c + 20).randbytes(CHUNK)
        out[f"garbage chunk {c}"] = bytes(bad)
        bad = bytearray(log.data)
        bad[HEADER + c * CHUNK : HEADER + (c + 1) * CHUNK] = bytes(CHUNK)
        out[f"zero chunk {c}"] = bytes(bad)
    out["garbage appended"] = log.data + random.Random(9).randbytes(70_000)
    bad = bytearray(log.data)
    bad[40] ^= 0xFF
    out["bad file header CRC"] = bytes(bad)
    out["header only"] = log.data[:HEADER]
    return out


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("jobs", [2, 3])
def test_damaged_logs(tmp_path: Path, log: Log, jobs: int) -> None:
    kinds_seen: set[str] = set()
    for name, data in _damaged(log).items():
        path = tmp_path / "damaged.evtx"
        path.write_bytes(data)
        rows, summary = _same(path, jobs)
        kinds_seen.update(summary["issues"])
        if name == "intact":
            assert [r[3] for r in rows] == log.kerberos and not summary["issues"]
            assert summary["units"] == len(log.placed)
    # the damage really was damage: every kind of loss the reader counts came up somewhere
    assert kinds_seen >= {"evtx_truncated", "evtx_chunk_error", "evtx_checksum_error", "evtx_records_missing"}


@pytest.mark.usefixtures("small_batches")
def test_batches_of_two_and_more_jobs_than_batches(tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "base.evtx"
    path.write_bytes(log.data)
    monkeypatch.setattr(evtxpool, "BATCH_CHUNKS", 2)
    _same(path, 3)
    monkeypatch.setattr(evtxpool, "BATCH_CHUNKS", 64)
    _same(path, 8)  # one batch for eight workers


@pytest.mark.usefixtures("small_batches")
def test_unusable_files_raise_the_same(tmp_path: Path, log: Log) -> None:
    path = tmp_path / "bad.evtx"
    cases: list[tuple[bytes, type[Exception], str]] = [
        (log.data[:100], MalformedFile, "header"),
        (log.data[:HEADER] + random.Random(10).randbytes(2 * CHUNK), MalformedFile, "no readable chunk"),
        (b"not an event log at all\n" * 200, UnsupportedFormat, "ElfFile"),
    ]
    for data, exc, match in cases:
        path.write_bytes(data)
        for jobs in (1, 2):
            with pytest.raises(exc, match=match):
                _read(path, jobs)
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("die_at", [0, 2, 5])
def test_a_dead_worker_does_not_hang_the_parent(
    tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, die_at: int
) -> None:
    """The pool breaks while batches are pending and while more are being submitted: both must fall back."""
    path = tmp_path / "base.evtx"
    path.write_bytes(log.data)
    expected = _read(path, 1)
    monkeypatch.setattr(evtxpool, "_DIE_AT", die_at)  # the worker given that chunk exits at once
    with caplog.at_level(logging.WARNING, logger="parsers.evtxpool"):
        assert _read(path, 2) == expected
    assert "worker process died" in caplog.text
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("small_batches")
def test_stopping_early_shuts_the_workers_down(tmp_path: Path, log: Log) -> None:
    path = tmp_path / "base.evtx"
    path.write_bytes(log.data)
    rows = read_evtx(str(path), ParseReport(source=str(path)), jobs=2)
    first = next(rows)
    assert first.record_no == log.kerberos[0]
    rows.close()
    assert not multiprocessing.active_children()


def test_small_files_get_one_worker_and_jobs_1_none(log: Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "base.evtx"
    path.write_bytes(log.data)
    assert len(log.data) < evtxpool.PARALLEL_MIN_BYTES
    real = evtxpool.read_parallel
    asked: list[int] = []

    def spy(path: str, report: Any, jobs: int) -> Iterator[Any]:
        asked.append(jobs)
        return real(path, report, jobs)

    monkeypatch.setattr(evtxpool, "read_parallel", spy)
    assert _read(path, 4) == _read(path, 1)
    assert asked == [1]  # jobs=4: one worker for a small file; jobs=1: none


@pytest.mark.parametrize("hang_at", [0, 2])
def test_a_small_log_does_not_hang_on_a_looping_parser(
    tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch, hang_at: int
) -> None:
    """Under PARALLEL_MIN_BYTES, with the default jobs: the one worker's stuck batch is given up after the timeout,
    the rest is read (batches of one chunk here, so only that chunk's records are lost)."""
    path = tmp_path / "base.evtx"
    path.write_bytes(log.data)
    rows, summary = _read(path, 1)
    monkeypatch.setattr(evtxpool, "BATCH_CHUNKS", 1)
    monkeypatch.setattr(evtxpool, "_HANG_AT", hang_at)
    monkeypatch.setattr(evtxpool, "BATCH_TIMEOUT_S", 1.0)
    got_rows, got = _read(path, 2)
    lost = {rid for rid, chunk, _, _ in log.placed if chunk == hang_at}
    assert lost and got_rows == [r for r in rows if r[3] not in lost]
    assert got["issues"]["evtx_parse_timeout"] == 1 and got["units"] == summary["units"] - len(lost)
    assert not multiprocessing.active_children()


@pytest.mark.usefixtures("small_batches")
def test_no_workers_where_they_cannot_start(tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "base.evtx"
    path.write_bytes(log.data)

    def refuse(*_: Any) -> Iterator[Any]:
        raise AssertionError("no workers without fork or inside a daemonic process")

    monkeypatch.setattr(evtxpool, "read_parallel", refuse)
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert _read(path, 2)[0] == _read(path, 1)[0]
    monkeypatch.undo()
    monkeypatch.setattr(evtxpool, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(evtxpool, "read_parallel", refuse)
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert not evtxpool.usable()


@pytest.mark.usefixtures("small_batches")
def test_python_evtx_ignores_jobs(tmp_path: Path, log: Log) -> None:
    path = tmp_path / "base.evtx"
    path.write_bytes(log.data[: HEADER + 2 * CHUNK])
    assert _read(path, 2, "python-evtx") == _read(path, 1, "python-evtx")


@pytest.mark.parametrize(("n_chunks", "jobs", "most"), [(1, 2, 64), (7, 2, 1), (128, 2, 64), (1600, 2, 64), (33, 3, 4)])
def test_batches_cover_every_chunk_once(n_chunks: int, jobs: int, most: int) -> None:
    got = evtxpool.batches(n_chunks, jobs, most)
    assert [i for first, count in got for i in range(first, first + count)] == list(range(n_chunks))
    assert all(1 <= count <= most for _, count in got)


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for r in ids:
        if runs and runs[-1][0] + runs[-1][1] == r:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((r, 1))
    return runs


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 60), st.integers(0, 15)), min_size=0, max_size=6),
    st.lists(st.tuples(st.integers(0, 80), st.integers(1, 20)), max_size=10),
    st.lists(st.integers(1, 10), max_size=12),
)
def test_runs_credit_chunks_as_single_records_do(
    ranges: list[tuple[int, int]], pieces: list[tuple[int, int]], cuts: list[int]
) -> None:
    """Crediting runs of record numbers (split anywhere: batches, flushes) equals crediting one number at a time,
    dirty overlapping chunk ranges included (the sequential reader's per-record rule is the reference)."""
    ids = [start + k for start, n in pieces for k in range(n)]  # mostly consecutive, as in a log

    def layout() -> Layout:
        chunks = [Chunk(HEADER + i * CHUNK, first, first + span, True) for i, (first, span) in enumerate(ranges)]
        return Layout(size=HEADER + len(chunks) * CHUNK, padded_size=HEADER + len(chunks) * CHUNK, chunks=chunks)

    ref_layout = layout()
    ref = Tally(ref_layout)
    lo, hi, seen = 1, 0, 0
    for r in ids:
        if lo <= r <= hi:
            seen += 1
        else:
            lo, hi = ref.switch(r, seen)
            seen = 1
    ref.switch(0, seen)

    got_layout = layout()
    got = Tally(got_layout)
    runs = _runs(ids)
    start = 0
    for size in [*cuts, len(runs)]:  # feed the runs in pieces
        got.add_runs(runs[start : start + size])
        start += size
    got.finish()
    assert [c.seen for c in got_layout.chunks] == [c.seen for c in ref_layout.chunks]
    assert got.total == ref.total == len(ids)


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("hang_at", [0, 3])
def test_a_stuck_worker_costs_its_batch_not_the_run(
    tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, hang_at: int
) -> None:
    """A parser caught in a loop on one damaged chunk: after BATCH_TIMEOUT_S the workers are stopped, that chunk's
    records are counted lost and every other chunk is still read (by a new pool), in order."""
    path = tmp_path / "base.evtx"
    path.write_bytes(log.data)
    rows, summary = _read(path, 1)
    monkeypatch.setattr(evtxpool, "_HANG_AT", hang_at)  # the worker given that chunk sleeps for an hour
    monkeypatch.setattr(evtxpool, "BATCH_TIMEOUT_S", 1.0)
    with caplog.at_level(logging.WARNING, logger="parsers.evtxpool"):
        got_rows, got = _read(path, 2)
    lost = {rid for rid, chunk, _, _ in log.placed if chunk == hang_at}
    assert got_rows == [r for r in rows if r[3] not in lost]  # record_no is the fourth column
    assert got["issues"]["evtx_parse_timeout"] == 1
    assert got["issues"]["evtx_records_missing"] == len(lost)
    assert got["units"] == summary["units"] - len(lost)
    assert f"did not finish chunks {hang_at}-{hang_at}" in caplog.text
    assert not multiprocessing.active_children()
