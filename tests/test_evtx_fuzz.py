"""Hostile input: random byte flips, hostile lengths and garbage never crash a reader; both backends on the corpus."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from parsers import Error
from parsers.events import read_events
from parsers.evtx import read_evtx
from parsers.record import ParseReport
from tests.conftest import CORPUS, corpus_path
from tests.test_evtx_helpers import EVTX_SAMPLES

SECURITY = (EVTX_SAMPLES / "dc01-security.evtx").read_bytes()


def _read(tmp_path: Path, data: bytes, backend: str) -> tuple[list, ParseReport]:
    path = tmp_path / "fuzz.evtx"
    path.write_bytes(data)
    report = ParseReport(source=str(path))
    try:
        rows = list(read_evtx(str(path), report, backend=backend))
    except Error:  # a file damaged beyond use: the one allowed exception
        rows = []
    return rows, report


@pytest.mark.parametrize(("backend", "count"), [("evtx", 150), ("python-evtx", 6)])
def test_byte_flips_never_crash(tmp_path: Path, backend: str, count: int) -> None:
    rng = random.Random(1234)
    for _ in range(count):
        data = bytearray(SECURITY)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(4096 + 512, 4096 + 12000)] = rng.randrange(256)
        rows, report = _read(tmp_path, bytes(data), backend)
        assert len(rows) <= 20
        assert report.units <= 24
        assert all(r.ts is not None and r.source_kind == "evtx" for r in rows)


@pytest.mark.parametrize("backend", ["evtx", "python-evtx"])
def test_hostile_record_sizes(tmp_path: Path, backend: str) -> None:
    """A record whose size field points past the chunk, or is zero: that record and the rest of its chunk go."""
    for size in (0xFFFFFFF0, 0, 23):
        data = bytearray(SECURITY)
        struct.pack_into("<I", data, 4096 + 512 + 4, size)  # the first record's size
        rows, report = _read(tmp_path, bytes(data), backend)
        assert rows == []
        assert report.issues["evtx_records_missing"] == 24


def test_hostile_file_header_counts(tmp_path: Path) -> None:
    """The file header's chunk count and numbers are not trusted: chunks are found by walking the file."""
    data = bytearray(SECURITY)
    struct.pack_into("<QQQ", data, 8, 2**63, 2**64 - 1, 2**64 - 1)
    struct.pack_into("<H", data, 42, 0xFFFF)
    rows, report = _read(tmp_path, bytes(data), "evtx")
    assert len(rows) == 20
    assert dict(report.issues) == {"evtx_checksum_error": 1}


def test_text_readers_survive_garbage(tmp_path: Path) -> None:
    rng = random.Random(99)
    xml = (EVTX_SAMPLES / "dc01-security.xml").read_bytes()
    jsonl = (EVTX_SAMPLES / "dc01-security.jsonl").read_bytes()
    for kind, base in (("xml", xml), ("jsonl", jsonl)):
        for _ in range(40):
            data = bytearray(base)
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            path = tmp_path / f"fuzz.{kind}"
            path.write_bytes(bytes(data))
            report = ParseReport(source=str(path))
            rows = list(read_events(str(path), report, kind))
            assert len(rows) <= 20
        path.write_bytes(rng.randbytes(5000))
        assert list(read_events(str(path), ParseReport(source="x"), kind)) == []


SMALL_CORPUS = sorted(
    p.relative_to(CORPUS / "evtx").as_posix()
    for p in (CORPUS / "evtx").rglob("*.evtx")
    if p.stat().st_size <= 69632 and p.with_name(p.name + ".kerberos.jsonl").stat().st_size > 0
)


@pytest.mark.corpus
@pytest.mark.parametrize("rel", SMALL_CORPUS or ["(corpus absent)"])
def test_backends_agree_on_small_corpus_logs(rel: str) -> None:
    """Real Windows logs (one chunk each) through both backends: the same rows, TimeCreated within 2 µs."""
    path = str(corpus_path("evtx", rel))
    rust = list(read_evtx(path, ParseReport(source=path)))
    python = list(read_evtx(path, ParseReport(source=path), backend="python-evtx"))
    assert len(rust) == len(python) > 0
    for a, b in zip(rust, python, strict=True):
        assert abs(a.ts - b.ts) <= 2
        assert a._replace(ts=0) == b._replace(ts=0)
