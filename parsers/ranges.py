"""Where a plain pcap / pcapng file can be cut into byte ranges read by separate processes (:mod:`parsers.parallel`).

A cut is a record (pcap) or block (pcapng) boundary found from a guessed offset: the first position where a chain of
:data:`CHAIN` plausible records or blocks starts (pcap: microseconds / nanoseconds below one second, captured length
<= original length <= :data:`~parsers.pcapfile.MAX_FRAME`, a time stamp within a year of the file's first; pcapng: a
known block type whose leading and trailing lengths agree, an Enhanced Packet Block's interface among the head's).
A cut that is not really a boundary is caught later (the walk before it does not land on it) and costs time only.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Final

from .pcapfile import _BOM, MAX_FRAME, PCAP_MAGICS, PCAPNG_SHB
from .prefilter import prefilter_for
from .streams import Carrier

__all__ = ["CHAIN", "LEAD", "MIN_RANGE", "SEARCH", "WARMUP", "Plan", "plan", "warm_start"]

#: Smallest range given to a process (a smaller file, or more jobs than this allows, uses fewer processes).
MIN_RANGE: Final = 8 << 20
#: Range 0's size against each other range's. The parent also passes every row on (and the command writing them
#: imports its writer meanwhile), a child walks its warm-up first and pickles its rows: measured about even on the
#: Kerberos-only benchmark capture (``krbtrace timeline``), so 1.
LEAD: Final = 1.0
#: Octets a child walks before its range to rebuild the state (flows, fragments) one process would have there.
WARMUP: Final = 4 << 20
#: How far after a guessed offset a boundary is looked for.
SEARCH: Final = 1 << 20
#: Plausible records / blocks in a row that make a boundary.
CHAIN: Final = 16
#: Octets read past a search window, for the chain of the last candidates in it.
_LOOKAHEAD: Final = 1 << 20
#: pcapng block types a range may start with (packets, name resolution, statistics, journal, secrets, custom).
_BLOCKS: Final = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 10, 0xBAD, 0x40000BAD})
_YEAR: Final = 366 * 86_400


@dataclass
class Plan:
    """How one file is read: its ranges' starts (``cuts``, after range 0) and what a child needs to start."""

    path: str
    kind: str
    head: bytes
    carriers: tuple[Carrier, ...]
    size: int
    first: int  # offset of the first record / packet block
    cuts: list[int] = field(default_factory=list)
    endian: str = "<"
    nano: bool = False
    t0: int = 0  # pcap: the first record's seconds
    nif: int = 0  # pcapng: interfaces in the head
    fallback: str | None = None  # set by :func:`read` when one process had to read on: why


def plan(path: str, jobs: int, carriers: tuple[Carrier, ...]) -> Plan | None:
    """The ranges of ``path`` for ``jobs`` processes, or None when it is to be read by one."""
    if jobs < 2 or not hasattr(os, "fork"):
        return None
    try:
        size = os.path.getsize(path)
        jobs = min(jobs, size // max(1, MIN_RANGE))
        if jobs < 2:
            return None
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
            p = _head(path, head, size, carriers)
            if p is None:
                return None
            for i in range(1, jobs):
                guess = p.first + int((size - p.first) * (LEAD + i - 1) / (LEAD + jobs - 1))
                fh.seek(guess)
                window = fh.read(SEARCH + _LOOKAHEAD)
                at = _boundary(p, window, guess, size, 0, SEARCH)
                if at is not None and at > (p.cuts[-1] if p.cuts else p.first) and at < size:
                    p.cuts.append(at)  # else one range fewer (a huge frame, damage: the neighbour reads it)
    except OSError:
        return None
    return p if p.cuts else None


def _head(path: str, head: bytes, size: int, carriers: tuple[Carrier, ...]) -> Plan | None:
    if head[:2] == b"\x1f\x8b":
        return None
    magic = PCAP_MAGICS.get(head[:4])
    if magic is not None:
        if len(head) < 40:
            return None
        endian, nano = magic
        (network,) = struct.unpack_from(endian + "I", head, 20)
        if prefilter_for(network & 0xFFFF) is None:
            return None
        (t0,) = struct.unpack_from(endian + "I", head, 24)
        return Plan(path, "pcap", head[:24], carriers, size, 24, endian=endian, nano=nano, t0=t0)
    if head[:4] != PCAPNG_SHB or head[8:12] not in _BOM:
        return None
    endian = _BOM[head[8:12]]
    pos = nif = 0
    while pos + 12 <= len(head):
        btype, blen = struct.unpack_from(endian + "II", head, pos)
        if btype in (2, 3, 6):
            return Plan(path, "pcapng", head[:24], carriers, size, pos, endian=endian, nif=nif)
        if (pos and btype == 0x0A0D0D0A) or blen < 12 or blen % 4 or pos + blen > len(head):
            return None
        if btype == 1:
            if blen < 20 or prefilter_for(struct.unpack_from(endian + "H", head, pos + 8)[0]) is None:
                return None
            nif += 1
        pos += blen
    return None


def _boundary(p: Plan, buf: bytes, base: int, size: int, lo: int, hi: int) -> int | None:
    """The file offset of the first boundary at ``buf[lo:hi]`` (``buf`` holds the file from ``base``)."""
    n = len(buf)
    at_eof = base + n >= size  # a chain may end exactly at the end of the file
    if p.kind == "pcap":
        rec = struct.Struct(p.endian + "IIII").unpack_from
        fmax = 1_000_000_000 if p.nano else 1_000_000
        tlo, thi = p.t0 - _YEAR, p.t0 + _YEAR
        for start in range(lo, min(hi, n - 16 + 1)):
            q = start
            for _ in range(CHAIN):
                if q + 16 > n:
                    q = q if q == n and at_eof else -1
                    break
                sec, frac, incl, orig = rec(buf, q)
                if frac >= fmax or incl > orig or orig > MAX_FRAME or sec < tlo or sec > thi:
                    q = -1
                    break
                q += 16 + incl
            if q >= 0 and (q <= n):
                return base + start
        return None
    head = struct.Struct(p.endian + "II").unpack_from
    trailer = struct.Struct(p.endian + "I").unpack_from
    epb = struct.Struct(p.endian + "I8xI").unpack_from
    first = lo + (-(base + lo)) % 4  # blocks are 4-aligned in the file
    for start in range(first, min(hi, n - 12 + 1), 4):
        q = start
        for _ in range(CHAIN):
            if q + 12 > n:
                q = q if q == n and at_eof else -1
                break
            btype, blen = head(buf, q)
            if btype not in _BLOCKS or blen < 12 or blen % 4 or blen > MAX_FRAME + 4096 or q + blen > n:
                q = -1
                break
            if trailer(buf, q + blen - 4)[0] != blen:
                q = -1
                break
            if btype == 6:
                if blen < 32:
                    q = -1
                    break
                iface, caplen = epb(buf, q + 8)
                if iface >= p.nif or caplen > blen - 32:
                    q = -1
                    break
            q += blen
        if q >= 0:
            return base + start
    return None


def warm_start(p: Plan, start: int) -> int | None:
    """The first boundary at least :data:`WARMUP` octets before ``start`` (further back while none is found
    there: frames may be larger than the warm-up), or the file's first record."""
    stop = start
    lo = start - WARMUP
    with open(p.path, "rb") as fh:
        for _ in range(8):
            if lo <= p.first:
                return p.first
            fh.seek(lo)
            buf = fh.read(stop - lo + _LOOKAHEAD)
            at = _boundary(p, buf, lo, p.size, 0, stop - lo)
            if at is not None:
                return at
            stop, lo = lo, lo - max(WARMUP, SEARCH)
    return None
