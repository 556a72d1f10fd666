"""Hostile and damaged capture files: every problem is an exact issue count, a whole-file problem is one of the
parsers' own errors, and nothing else ever comes out."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from test_capture_build import (
    AS_REQ,
    ERR_PREAUTH,
    T0,
    block,
    epb,
    frames,
    idb,
    kinds,
    msg,
    pcap,
    read,
    rm,
    shb,
    tcp,
    udp,
)

from parsers.errors import Error, MalformedFile, UnsupportedFormat

GOOD = [udp(msg(AS_REQ)), udp(msg(ERR_PREAUTH), to_kdc=False)]


def test_truncated_file_header(tmp_path: Path) -> None:
    with pytest.raises(MalformedFile, match="file header cut short"):
        read(tmp_path, pcap([])[:10])


def test_not_a_capture_and_empty(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat):
        read(tmp_path, b"this is not a capture at all, just text\n" * 3)
    with pytest.raises(UnsupportedFormat):
        read(tmp_path, b"")


def test_truncated_record_header_and_data(tmp_path: Path) -> None:
    data = pcap(frames(GOOD))
    rows, report = read(tmp_path, data + b"\x01\x02\x03")  # 3 octets of a 16-octet record header
    assert kinds(rows) == [(1, "AS-REQ"), (2, "KRB-ERROR")]
    assert report.issues == {"truncated_file": 1} and report.units == 2
    rows, report = read(tmp_path, data[:-10])  # the last record's data cut short
    assert kinds(rows) == [(1, "AS-REQ")] and report.issues == {"truncated_file": 1} and report.units == 1


def test_absurd_record_length(tmp_path: Path) -> None:
    data = pcap(frames(GOOD)) + struct.pack("<IIII", 1, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"\0" * 100
    rows, report = read(tmp_path, data)
    assert kinds(rows) == [(1, "AS-REQ"), (2, "KRB-ERROR")]
    assert report.issues == {"bad_record_length": 1} and report.units == 2


def test_zero_length_and_tiny_frames(tmp_path: Path) -> None:
    rows, report = read(tmp_path, pcap([(T0, b""), (T0, b"\x00"), (T0, bytes(udp(msg(AS_REQ)))[:14])]))
    assert rows == [] and not report.issues and report.units == 3


def test_garbage_after_valid_frames(tmp_path: Path) -> None:
    rng = random.Random(7)
    junk = bytes(rng.getrandbits(8) for _ in range(5000))
    rows, report = read(tmp_path, pcap(frames(GOOD)) + junk)
    assert kinds(rows)[:2] == [(1, "AS-REQ"), (2, "KRB-ERROR")]
    assert report.issue_total >= 1  # the junk reads as an absurd record or a cut one, whatever its octets


def _ng(*blocks: bytes) -> bytes:
    return shb() + idb(1) + b"".join(blocks)


def test_pcapng_bad_block_lengths(tmp_path: Path) -> None:
    ok = epb(0, T0, bytes(GOOD[0]))
    for bad in (
        struct.pack("<II", 6, 13) + b"\0" * 8,  # not a multiple of 4
        struct.pack("<II", 6, 8) + b"\0" * 8,  # below the 12-octet minimum
        struct.pack("<II", 6, 0x7FFFFFF0) + b"\0" * 8,  # absurd
        ok[:-4] + struct.pack("<I", len(ok) + 4),  # trailing length differs
    ):
        rows, report = read(tmp_path, _ng(ok, bad, ok), "c.pcapng")
        assert kinds(rows) == [(1, "AS-REQ")], bad[:8]
        assert report.issues == {"pcapng_bad_block": 1} and report.units == 1


def test_pcapng_bad_packets(tmp_path: Path) -> None:
    pkt = bytes(GOOD[0])
    too_long = block(6, struct.pack("<IIIII", 0, 0, 0, len(pkt) + 500, len(pkt)) + pkt)
    rows, report = read(tmp_path, _ng(too_long, epb(3, T0, pkt), epb(0, T0, pkt)), "c.pcapng")
    assert kinds(rows) == [(3, "AS-REQ")] and report.units == 3
    assert report.issues == {"pcapng_bad_packet": 1, "pcapng_unknown_interface": 1}


def test_pcapng_truncated_block_and_bad_section(tmp_path: Path) -> None:
    data = _ng(epb(0, T0, bytes(GOOD[0])), epb(0, T0, bytes(GOOD[1])))
    rows, report = read(tmp_path, data[:-30], "c.pcapng")
    assert kinds(rows) == [(1, "AS-REQ")] and report.issues == {"truncated_file": 1}
    bad_shb = b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 28) + b"\xde\xad\xbe\xef" + b"\0" * 16
    rows, report = read(tmp_path, data + bad_shb, "c.pcapng")
    assert len(rows) == 2 and report.issues == {"pcapng_bad_block": 1}


def test_hostile_record_marks(tmp_path: Path) -> None:
    pkts = [
        tcp(b"", 1, flags="S"),
        tcp(b"", 9, to_kdc=False, flags="SA"),
        tcp(b"\x7f\xff\xff\xff" + b"\x6a" * 60, 2),  # a 2 GiB record mark: refused before buffering
        tcp(rm(msg(AS_REQ)), 66),
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(4, "AS-REQ")]
    assert report.issues == {"bad_record_mark": 1, "tcp_resync_skipped": 1}


def test_gzip_damaged(tmp_path: Path) -> None:
    import gzip

    data = gzip.compress(pcap(frames(GOOD * 50)))
    path = tmp_path / "c.pcap.gz"
    path.write_bytes(data[: len(data) // 2])
    from parsers.capture import read_capture
    from parsers.record import ParseReport

    report = ParseReport(str(path))
    rows = list(read_capture(str(path), report))
    assert rows and report.issues["truncated_file"] >= 1


def test_byte_flips_raise_nothing_foreign(tmp_path: Path) -> None:
    """Random corruptions of a small mixed capture: only the parsers' own errors may come out."""
    pkts = [*GOOD, tcp(b"", 1, flags="S"), tcp(rm(msg(AS_REQ)), 2), tcp(rm(msg(ERR_PREAUTH)), 50, to_kdc=False)]
    clean = pcap(frames(pkts))
    ng = _ng(*(epb(0, T0, bytes(p)) for p in pkts))
    rng = random.Random(2024)
    for base, name in ((clean, "c.pcap"), (ng, "c.pcapng")):
        for _ in range(150):
            data = bytearray(base)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            if rng.random() < 0.3:
                data = data[: rng.randrange(len(data))]
            try:
                read(tmp_path, bytes(data), name)
            except Error:
                pass


def test_unusable_file_raises_before_iteration(tmp_path: Path) -> None:
    """The CLI can report a bad file at once and go on with the others: nothing needs to be iterated."""
    from parsers.capture import read_capture
    from parsers.record import ParseReport

    cut = tmp_path / "cut.pcap"
    cut.write_bytes(pcap([])[:20])
    with pytest.raises(MalformedFile):
        read_capture(str(cut), ParseReport(str(cut)))
    text = tmp_path / "x.pcap"
    text.write_bytes(b"hello")
    with pytest.raises(UnsupportedFormat):
        read_capture(str(text), ParseReport(str(text)))


def test_pcapng_packet_block_too_short_for_its_header(tmp_path: Path) -> None:
    for btype in (6, 2):
        rows, report = read(tmp_path, _ng(epb(0, T0, bytes(GOOD[0])), block(btype, b"\0" * 4)), "c.pcapng")
        assert kinds(rows) == [(1, "AS-REQ")] and report.units == 2
        assert report.issues == {"pcapng_bad_packet": 1}
