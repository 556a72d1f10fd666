"""Damaged ``.evtx`` files: every intact record kept, what was lost counted by kind, both backends.

The base log is written by samples/evtx/evtxwriter.py (the Security sample's 24 events repeated, 4 chunks), whose
``placed`` list says where each record sits; the expected rows and counts below are computed from that layout,
not from the reader.
"""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import pytest

from parsers import MalformedFile, UnsupportedFormat, detect
from parsers.evtx import read_evtx
from parsers.record import ParseReport
from tests.test_evtx_helpers import evtxwriter, make_samples

BACKENDS = ["evtx", "python-evtx"]
HEADER, CHUNK = 4096, 65536
N_EVENTS = 60


@dataclasses.dataclass
class Log:
    data: bytes
    placed: list[tuple[int, int, int, int]]  # record id, chunk, offset in chunk, size
    kerberos: set[int]  # record ids that must become rows

    def ids(self, chunk: int) -> list[int]:
        return [rid for rid, ch, _, _ in self.placed if ch == chunk]

    def rows(self, keep: set[int]) -> list[int]:
        return [rid for rid, _, _, _ in self.placed if rid in keep and rid in self.kerberos]

    def all_ids(self) -> set[int]:
        return {rid for rid, _, _, _ in self.placed}


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    story = make_samples.security_story()
    keep = {row["record_no"] for row in story.expect}
    path = tmp_path_factory.mktemp("damage") / "base.evtx"
    kerberos = set()
    with evtxwriter.EvtxWriter(str(path), first_record_id=1) as w:
        for i in range(N_EVENTS):
            ev = story.events[i % len(story.events)]
            # a long extra value makes records big, so four chunks hold few records (python-evtx is slow)
            pad = [("Padding", "x" * 1500, "str")]
            rid = w.add(dataclasses.replace(ev, record_id=None, time=ev.time + i * 10_000_000, data=ev.data + pad))
            if ev.record_id in keep:
                kerberos.add(rid)
        placed = list(w.placed)
    data = path.read_bytes()
    assert len(data) == HEADER + 4 * CHUNK, "the base log spans four chunks"
    return Log(data, placed, kerberos)


def _run(tmp_path: Path, data: bytes, backend: str) -> tuple[list[int], ParseReport]:
    path = tmp_path / "damaged.evtx"
    path.write_bytes(data)
    report = ParseReport(source=str(path))
    rows = [r.record_no for r in read_evtx(str(path), report, backend=backend)]
    return rows, report


@pytest.mark.parametrize("backend", BACKENDS)
def test_intact_log(tmp_path: Path, log: Log, backend: str) -> None:
    rows, report = _run(tmp_path, log.data, backend)
    assert rows == log.rows(log.all_ids())
    assert not report.issues and report.units == N_EVENTS


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_inside_a_chunk(tmp_path: Path, log: Log, backend: str) -> None:
    mid = log.placed[[p[1] for p in log.placed].index(2) + 5]
    cut = mid[2] + mid[3] // 2  # chunk 2 ends in the middle of its sixth record
    intact = {rid for rid, ch, off, size in log.placed if ch < 2 or (ch == 2 and off + size <= cut)}
    cut_short = [rid for rid, ch, off, size in log.placed if ch == 2 and off + size > cut]
    rows, report = _run(tmp_path, log.data[: HEADER + 2 * CHUNK + cut], backend)
    assert rows == log.rows(intact)
    # the records the cut chunk declares past the cut are missing (its CRC cannot be checked: counted as the cut)
    assert len(cut_short) > 5
    assert dict(report.issues) == {"evtx_truncated": 1, "evtx_records_missing": len(cut_short)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_inside_a_chunk_header(tmp_path: Path, log: Log, backend: str) -> None:
    rows, report = _run(tmp_path, log.data[: HEADER + 2 * CHUNK + 100], backend)
    assert rows == log.rows(set(log.ids(0) + log.ids(1)))
    assert dict(report.issues) == {"evtx_truncated": 1, "evtx_chunk_error": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_chunk_header_checksum_keeps_records(tmp_path: Path, log: Log, backend: str) -> None:
    data = bytearray(log.data)
    data[HEADER + CHUNK + 60] ^= 0xFF  # unused header bytes: only the CRC notices
    rows, report = _run(tmp_path, bytes(data), backend)
    assert rows == log.rows(log.all_ids())
    assert dict(report.issues) == {"evtx_checksum_error": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_zeroed_chunk_magic_loses_that_chunk_only(tmp_path: Path, log: Log, backend: str) -> None:
    data = bytearray(log.data)
    data[HEADER + CHUNK : HEADER + CHUNK + 8] = bytes(8)
    rows, report = _run(tmp_path, bytes(data), backend)
    assert rows == log.rows(log.all_ids() - set(log.ids(1)))
    assert dict(report.issues) == {"evtx_chunk_error": 1}


def _late_record(log: Log, chunk: int) -> tuple[int, int, int, int]:
    """A record near the end of ``chunk`` whose template was defined by an earlier record."""
    return [p for p in log.placed if p[1] == chunk][-3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_garbage_record_body(tmp_path: Path, log: Log, backend: str) -> None:
    rid, ch, off, size = _late_record(log, 1)
    data = bytearray(log.data)
    start = HEADER + ch * CHUNK + off
    data[start + 24 : start + size - 4] = random.Random(7).randbytes(size - 28)  # header and trailer kept
    rows, report = _run(tmp_path, bytes(data), backend)
    assert rows == log.rows(log.all_ids() - {rid})
    assert dict(report.issues) == {"evtx_checksum_error": 1, "evtx_records_missing": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_garbage_over_record_headers(tmp_path: Path, log: Log, backend: str) -> None:
    """Garbage over a record header breaks the chain: the rest of that chunk is lost, the next chunks are not."""
    _rid, ch, off, _ = _late_record(log, 1)
    data = bytearray(log.data)
    start = HEADER + ch * CHUNK + off
    data[start : start + 64] = random.Random(8).randbytes(64)
    lost = {r for r, c, o, _ in log.placed if c == ch and o >= off}
    rows, report = _run(tmp_path, bytes(data), backend)
    assert rows == log.rows(log.all_ids() - lost)
    assert dict(report.issues) == {"evtx_checksum_error": 1, "evtx_records_missing": len(lost)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_garbage_appended(tmp_path: Path, log: Log, backend: str) -> None:
    rows, report = _run(tmp_path, log.data + random.Random(9).randbytes(70_000), backend)
    assert rows == log.rows(log.all_ids())
    assert dict(report.issues) == {"evtx_truncated": 1, "evtx_chunk_error": 2}


@pytest.mark.parametrize("backend", BACKENDS)
def test_header_only_log_is_empty(tmp_path: Path, log: Log, backend: str) -> None:
    rows, report = _run(tmp_path, log.data[:HEADER], backend)
    assert rows == [] and not report.issues


@pytest.mark.parametrize("backend", BACKENDS)
def test_unusable_files_raise(tmp_path: Path, log: Log, backend: str) -> None:
    with pytest.raises(MalformedFile, match="header"):
        _run(tmp_path, log.data[:100], backend)
    with pytest.raises(MalformedFile, match="no readable chunk"):
        _run(tmp_path, log.data[:HEADER] + random.Random(10).randbytes(2 * CHUNK), backend)
    with pytest.raises(UnsupportedFormat):
        _run(tmp_path, b"not an event log at all\n" * 200, backend)


def test_not_a_log_is_not_detected(tmp_path: Path) -> None:
    path = tmp_path / "random.evtx"
    path.write_bytes(random.Random(11).randbytes(5000))
    with pytest.raises(UnsupportedFormat):
        detect(path)
    assert os.path.getsize(path) == 5000
