"""Test helper (no tests of its own): write pcap / pcapng files by hand and build packets with scapy, and provide
real MIT Kerberos messages (tests/data/krb5/mit_messages.tsv) to put in them.

The file writers are written from the format specifications independently of ``parsers.pcapfile``, so that the
reader is checked against them; scapy builds the link/IP/UDP/TCP layers (checksums, fragments, extension headers).
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

from krb5_samples import mit_fixtures
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from parsers.capture import read_capture
from parsers.record import KrbRecord, ParseReport

#: Explicit MAC addresses: without them scapy resolves the destination on the network (ND for IPv6 takes seconds).
MAC_A = "02:00:00:00:00:05"
MAC_B = "02:00:00:00:00:01"
CLIENT = "10.0.0.5"
KDC = "10.0.0.1"
T0 = 1_700_000_000_000_000  # microseconds


@cache
def msg(label: str) -> bytes:
    """A real MIT message by its fixture label, e.g. ``01_as_tgs_ok#1`` (AS-REQ)."""
    for name, raw, _row in mit_fixtures():
        if name == label:
            return raw
    raise KeyError(label)


AS_REQ = "01_as_tgs_ok#1"
ERR_PREAUTH = "01_as_tgs_ok#2"  # KRB-ERROR 25
AS_REQ2 = "01_as_tgs_ok#3"
AS_REP = "01_as_tgs_ok#4"
TGS_REQ = "01_as_tgs_ok#5"
TGS_REP = "01_as_tgs_ok#6"
ERR_S_UNKNOWN = "04_server_unknown_fast_error#6"  # KRB-ERROR 7 answering a TGS-REQ
KPASSWD_REQ = "11_password_expired_kpasswd#10"
KPASSWD_REP = "11_password_expired_kpasswd#12"


def rm(raw: bytes, high_bit: bool = False) -> bytes:
    """An RFC 4120 §7.2.2 record: 4-octet length, then the message."""
    return struct.pack(">I", len(raw) | (0x80000000 if high_bit else 0)) + raw


def pcap(
    frames: Iterable[tuple[int, bytes] | tuple[int, bytes, int]],
    linktype: int = 1,
    nano: bool = False,
    endian: str = "<",
) -> bytes:
    """A classic pcap file: frames are (ts in us, octets[, original length])."""
    out = [struct.pack(endian + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for f in frames:
        ts, data = f[0], f[1]
        orig = f[2] if len(f) > 2 else len(data)  # type: ignore[misc]
        frac = (ts % 1_000_000) * (1000 if nano else 1)
        out.append(struct.pack(endian + "IIII", ts // 1_000_000, frac, len(data), orig) + data)
    return b"".join(out)


def _opt(code: int, value: bytes, endian: str) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * pad


def block(btype: int, body: bytes, endian: str = "<") -> bytes:
    body += b"\0" * ((-len(body)) % 4)
    n = len(body) + 12
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def shb(endian: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1), endian)


def idb(linktype: int, tsresol: int | None = None, endian: str = "<", tsoffset: int = 0) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += _opt(9, bytes([tsresol]), endian)
    if tsoffset:
        opts += _opt(14, struct.pack(endian + "q", tsoffset), endian)
    if opts:
        opts += _opt(0, b"", endian)
    return block(1, struct.pack(endian + "HHI", linktype, 0, 262144) + opts, endian)


def epb(iface: int, ts_units: int, data: bytes, endian: str = "<", orig: int | None = None) -> bytes:
    hdr = struct.pack(endian + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, len(data), orig or len(data))
    return block(6, hdr + data, endian)


def spb(data: bytes, endian: str = "<") -> bytes:
    return block(3, struct.pack(endian + "I", len(data)) + data, endian)


def udp(payload: bytes, to_kdc: bool = True, sport: int = 50000, port: int = 88, **ip: object) -> Packet:
    src, dst = (CLIENT, KDC) if to_kdc else (KDC, CLIENT)
    s, d = (sport, port) if to_kdc else (port, sport)
    return Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst, **ip) / UDP(sport=s, dport=d) / Raw(payload)


def tcp(payload: bytes, seq: int, to_kdc: bool = True, flags: str = "PA", sport: int = 50000, port: int = 88) -> Packet:
    src, dst = (CLIENT, KDC) if to_kdc else (KDC, CLIENT)
    s, d = (sport, port) if to_kdc else (port, sport)
    pkt = Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst) / TCP(sport=s, dport=d, seq=seq % (1 << 32), flags=flags)
    return pkt / Raw(payload) if payload else pkt


def frames(packets: Sequence[Packet | bytes], step: int = 1000) -> list[tuple[int, bytes]]:
    """(ts, octets) for each packet, ``step`` microseconds apart from :data:`T0`."""
    return [(T0 + i * step, bytes(p)) for i, p in enumerate(packets)]


def read(
    tmp_path: Path, data: bytes, name: str = "c.pcap", gz: bool = False, **kw: object
) -> tuple[list[KrbRecord], ParseReport]:
    """Write ``data`` to a file and read it back with :func:`read_capture`."""
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    report = ParseReport(str(path))
    rows = list(read_capture(str(path), report, **kw))  # type: ignore[arg-type]
    return rows, report


def kinds(rows: Sequence[KrbRecord]) -> list[tuple[int | None, str | None]]:
    return [(r.record_no, r.msg_type) for r in rows]
