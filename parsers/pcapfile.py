"""Capture file formats: classic pcap and pcapng, plain or gzip-compressed.

* pcap (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html): magic ``a1b2c3d4`` (microseconds) or
  ``a1b23c4d`` (nanoseconds), in either byte order; 24-octet file header, then a 16-octet header per record.
* pcapng (draft-ietf-opsawg-pcapng): Section Header Blocks (each fixes the byte order of its section), Interface
  Description Blocks (link type, ``if_tsresol``, ``if_tsoffset`` per interface), Enhanced / Simple / obsolete Packet
  Blocks. Every packet block is one frame, numbered from 1 across the file as Wireshark numbers them.

:func:`iter_frames` hands back only the frames that a caller-supplied prefilter keeps, so the cost of an
uninteresting frame is one header unpack and one test. A plain file is memory-mapped (the pages already walked are
released every 8 MiB, so the resident size does not grow with the file); a gzip file streams through a 1 MiB
window. For Ethernet captures the record header and the prefilter's common case (IPv4, UDP/TCP ports) share one
``struct`` unpack (:mod:`parsers.fastloop`). Problems are counted in
the :class:`~parsers.record.ParseReport`: ``truncated_file`` (the file ends inside a record or block),
``bad_record_length`` (a pcap record longer than :data:`MAX_FRAME`), ``pcapng_bad_block`` (a block length or trailer
that cannot be right: the rest of the file cannot be trusted), ``pcapng_bad_packet`` (a packet block whose captured
length does not fit in it), ``pcapng_unknown_interface``, ``unsupported_link_type`` (frames of a link type krbtrace
cannot read). A file that is not usable at all raises :class:`~parsers.errors.MalformedFile`.
"""

from __future__ import annotations

import gzip
import io
import logging
import mmap
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final

from .errors import MalformedFile, UnsupportedFormat
from .fastloop import FUSED_NG_SPAN, FUSED_SPAN, fused_epb, fused_ethernet
from .record import ParseReport

log = logging.getLogger(__name__)

__all__ = ["MAX_FRAME", "Frame", "Prefilter", "Span", "iter_frames", "open_capture", "read_head", "sniff"]

PCAP_MAGICS: Final[dict[bytes, tuple[str, bool]]] = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"
_BOM: Final[dict[bytes, str]] = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}

#: Largest frame accepted (Wireshark's own limit for most link types is 256 KiB; some write up to 16 MiB).
MAX_FRAME: Final = 1 << 24
_CHUNK: Final = 1 << 20

#: (1-based frame number, microseconds since the epoch, link type, captured octets, original length)
Frame = tuple[int, int, int, bytes, int]
#: ``keep(buf, start, end)``: whether the frame at ``buf[start:end]`` may carry Kerberos.
Prefilter = Callable[[bytes, int, int], bool]


def sniff(head: bytes) -> str | None:
    """``"pcap"`` or ``"pcapng"`` from the first octets of a file, else None."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_SHB and head[8:12] in _BOM:
        return "pcapng"
    return None


def open_capture(path: str) -> BinaryIO:
    """The capture's octets as a stream: gzip files are decompressed on the fly."""
    fh: BinaryIO = open(path, "rb")
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    fh.seek(0)
    return fh


def read_head(fh: BinaryIO) -> bytes:
    """The first 24 octets of the stream (what :func:`sniff` and :func:`iter_frames` need)."""
    return _read(fh, 24)


class Span:
    """A byte range of a plain (memory-mappable) capture file, walked on its own (:mod:`parsers.parallel`).

    ``start`` is the offset of a record or block, ``stop`` the offset to stop at (None: the end of the file, with
    the end-of-file checks as usual), ``first_frame`` the number of the frames before ``start``. A bounded walk
    never reports the end of its range as damage: a record crossing ``stop`` ends it with ``exact`` False, ``end``
    the offset it reached; with ``fixed_section`` a new pcapng section or interface ends any walk with ``broken``.
    pcapng: ``endian`` and ``ifaces`` are the section's state at ``start`` (``fixed_section``: taken from the file's
    head), and are left at the walk's final state.
    """

    __slots__ = (
        "broken",
        "end",
        "endian",
        "exact",
        "first_frame",
        "fixed_section",
        "frames",
        "ifaces",
        "start",
        "stop",
    )

    def __init__(self, start: int, stop: int | None, first_frame: int = 0) -> None:
        self.start = start
        self.stop = stop
        self.first_frame = first_frame
        self.endian = "<"
        self.ifaces: list[_Interface] = []
        self.fixed_section = False
        self.end = start
        self.exact = False
        self.frames = 0  # frames walked in the range
        self.broken = False  # ended at a new section or interface (``fixed_section``): not the range's end


def iter_frames(
    fh: BinaryIO,
    head: bytes,
    report: ParseReport,
    keep_for: Callable[[int], Prefilter | None],
    span: Span | None = None,
) -> Iterator[Frame]:
    """The frames of a pcap or pcapng stream that ``keep_for(link_type)`` keeps; ``report.units`` counts them all.

    ``head`` is what :func:`read_head` returned. ``keep_for`` returns the prefilter of a link type, or None when the
    link type is not supported. With ``span`` only that range of the file is walked (``fh`` must be a plain file;
    raises :class:`MalformedFile` when it cannot be memory-mapped).
    """
    kind = sniff(head)
    if kind is None:
        raise UnsupportedFormat("not a pcap or pcapng file")
    if kind == "pcap":
        if len(head) < 24:
            raise MalformedFile(f"pcap file header cut short ({len(head)} of 24 octets)")
        return _pcap(fh, head, report, keep_for, span)
    return _pcapng(fh, head, report, keep_for, span)


def _read(fh: BinaryIO, n: int) -> bytes:
    try:
        return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:  # damaged gzip stream
        raise MalformedFile(f"unreadable capture: {exc}") from exc


def _spanned(fh: BinaryIO, span: Span | None) -> tuple[mmap.mmap | None, int, int, bool]:
    """(map, end of the walk, first offset, bounded) of a walk over the whole stream or over ``span``."""
    mapped = _map(fh)
    if span is None:
        return mapped, 0 if mapped is None else len(mapped), 0, False
    if mapped is None:
        raise MalformedFile("a capture range needs a plain file")
    n = len(mapped)
    if span.stop is None or span.stop >= n:
        return mapped, n, span.start, False
    return mapped, span.stop, span.start, True


def _pcap(
    fh: BinaryIO,
    head: bytes,
    report: ParseReport,
    keep_for: Callable[[int], Prefilter | None],
    span: Span | None = None,
) -> Iterator[Frame]:
    endian, nano = PCAP_MAGICS[head[:4]]
    (network,) = struct.unpack_from(endian + "I", head, 20)
    linktype = network & 0xFFFF  # the upper bits carry FCS information (pcap draft §4)
    keep = keep_for(linktype)
    # the time stamp is unpacked only for the frames kept: most are not
    lengths = struct.Struct(endian + "8xII").unpack_from
    stamp = struct.Struct(endian + "II").unpack_from
    first = frame_no = 0 if span is None else span.first_frame
    buf: bytes | mmap.mmap = b""
    pos = n = 0
    fused = fused_ethernet(keep, endian, nano, stamp) if linktype == 1 else None
    mapped, n, pos, bounded = _spanned(fh, span)
    if mapped is not None:
        buf, pos = mapped, max(pos, 24)
    window = n if mapped is None else _WINDOW
    released = pos - pos % mmap.PAGESIZE
    try:
        if keep is None:
            keep = _never
        while True:
            if n - pos < 16:
                more = b"" if mapped is not None else _read_more(fh, report, 0)
                if not more:
                    if n - pos and not bounded:
                        report.add("truncated_file", frame_no + 1, f"{n - pos} octets of a record header")
                    return
                buf = buf[pos:] + more
                n = len(buf)
                pos = 0
                continue
            incl, orig = lengths(buf, pos)
            end = pos + 16 + incl
            if end > n:
                if bounded:
                    return  # the record crosses the range's end: not a boundary
                if incl > MAX_FRAME:
                    report.add("bad_record_length", frame_no + 1, f"record of {incl} octets; the rest is unreadable")
                    return
                more = b"" if mapped is not None else _read_more(fh, report, end - n)
                if not more:
                    report.add("truncated_file", frame_no + 1, f"{n - pos - 16} of {incl} octets")
                    return
                buf = buf[pos:] + more
                n = len(buf)
                pos = 0
                continue
            frame_no += 1
            if keep(buf, pos + 16, end):
                sec, frac = stamp(buf, pos)
                yield frame_no, sec * 1_000_000 + (frac // 1000 if nano else frac), linktype, buf[pos + 16 : end], orig
            pos = end
            if fused is not None and n - pos >= FUSED_SPAN:
                # the bulk of the file: the fused loop runs until it meets the end of the window
                for item in fused(buf, pos, min(n, pos + window), frame_no):
                    if type(item) is int:
                        pos, frame_no = item >> 32, item & 0xFFFFFFFF
                        break
                    frame_no = item[0]
                    yield item
            if mapped is not None and pos - released >= _WINDOW:
                released = _release(mapped, released, pos)
    finally:
        if mapped is not None:
            mapped.close()
        report.units += frame_no - first
        if span is not None:
            span.end, span.exact, span.frames = pos, pos == n, frame_no - first
        if keep is _never and frame_no > first:
            report.add("unsupported_link_type", None, f"link type {linktype}", n=frame_no - first)


#: How much of a memory-mapped file is walked before the pages behind are released.
_WINDOW: Final = 8 << 20


def _map(fh: BinaryIO) -> mmap.mmap | None:
    """The whole file memory-mapped, when it is a plain file on disk (no read calls, no copies); else None.

    A capture cut shorter by another process while it is being read would fault; evidence files are not rewritten
    while they are analysed, and a growing capture is read up to its size at opening."""
    if not isinstance(fh, io.BufferedReader) or not hasattr(mmap, "MADV_DONTNEED"):
        return None
    try:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # empty file, a pipe, a file system without mmap
        return None


def _release(mapped: mmap.mmap, released: int, pos: int) -> int:
    """Give back the pages read so far (from ``released`` up to ``pos``), so the resident size stays flat however
    large the file; returns the new ``released`` offset."""
    upto = pos - pos % mmap.PAGESIZE
    mapped.madvise(mmap.MADV_DONTNEED, released, upto - released)
    return upto


def _never(buf: bytes, start: int, end: int) -> bool:
    return False


def _read_more(fh: BinaryIO, report: ParseReport, need: int) -> bytes:
    # read1: a damaged gzip stream still yields what precedes the damage (read() would drop the whole call's data)
    try:
        return fh.read1(max(_CHUNK, need))  # type: ignore[attr-defined]
    except (OSError, EOFError, zlib.error) as exc:
        report.add("truncated_file", None, f"damaged compressed stream: {exc}")
        return b""


class _Interface:
    __slots__ = ("div", "keep", "linktype", "mul", "offset", "snaplen")

    def __init__(self, linktype: int, snaplen: int, keep: Prefilter | None) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.keep = keep
        self.mul = 1
        self.div = 1
        self.offset = 0

    def options(self, body: bytes, pos: int, end: int, endian: str) -> None:
        """Read ``if_tsresol`` (9) and ``if_tsoffset`` (14); other options are skipped."""
        while pos + 4 <= end:
            code, length = struct.unpack_from(endian + "HH", body, pos)
            pos += 4
            if code == 0 or pos + length > end:
                return
            if code == 9 and length >= 1:
                v = body[pos]
                if v & 0x80:
                    self.mul, self.div = 1_000_000, 1 << (v & 0x7F)
                elif v <= 6:
                    self.mul, self.div = 10 ** (6 - v), 1
                else:
                    self.mul, self.div = 1, 10 ** (v - 6)
            elif code == 14 and length >= 8:
                self.offset = struct.unpack_from(endian + "q", body, pos)[0] * 1_000_000
            pos += (length + 3) & ~3


def _pcapng(
    fh: BinaryIO,
    head: bytes,
    report: ParseReport,
    keep_for: Callable[[int], Prefilter | None],
    span: Span | None = None,
) -> Iterator[Frame]:
    endian = "<" if span is None else span.endian
    ifaces: list[_Interface] = [] if span is None else list(span.ifaces)
    first = frame_no = 0 if span is None else span.first_frame
    fixed = span is not None and span.fixed_section
    unsupported = 0
    unknown_linktypes: set[int] = set()
    buf: bytes | mmap.mmap = head
    pos = 0
    n = len(buf)
    mapped, mapped_n, start, bounded = _spanned(fh, span)
    if mapped is not None:
        buf, n, pos = mapped, mapped_n, start
    released = pos - pos % mmap.PAGESIZE
    fused = fused_epb(ifaces, endian) if ifaces else None
    try:
        while True:
            if fused is not None and n - pos >= FUSED_NG_SPAN:
                for item in fused(buf, pos, min(n, pos + _WINDOW), frame_no):
                    if type(item) is int:
                        pos, frame_no = item >> 32, item & 0xFFFFFFFF
                        break
                    frame_no = item[0]
                    yield item
            if mapped is not None and pos - released >= _WINDOW:
                released = _release(mapped, released, pos)
            if n - pos < 12:
                more = b"" if mapped is not None else _read_more(fh, report, 0)
                if not more:
                    if n - pos and not bounded:
                        report.add("truncated_file", frame_no + 1, f"{n - pos} octets of a block header")
                    return
                buf = buf[pos:] + more
                n = len(buf)
                pos = 0
                continue
            btype = buf[pos : pos + 4]
            if fixed and (btype == PCAPNG_SHB or struct.unpack_from(endian + "I", buf, pos)[0] == 1):
                assert span is not None
                span.broken = True
                return  # a new section or interface: this range cannot be read from the head's state
            if btype == PCAPNG_SHB:
                new = _BOM.get(buf[pos + 8 : pos + 12])
                if new is None:
                    report.add("pcapng_bad_block", frame_no + 1, "section header without a byte-order magic")
                    return
                endian = new
            btype_n, blen = struct.unpack_from(endian + "II", buf, pos)
            if blen < 12 or blen % 4 or blen > MAX_FRAME + 4096:
                report.add("pcapng_bad_block", frame_no + 1, f"block type {btype_n:#x} of length {blen}")
                return
            end = pos + blen
            if end > n:
                if bounded:
                    return  # the block crosses the range's end: not a boundary
                more = b"" if mapped is not None else _read_more(fh, report, end - n)
                if not more:
                    report.add("truncated_file", frame_no + 1, f"{n - pos} of {blen} octets of a block")
                    return
                buf = buf[pos:] + more
                n = len(buf)
                pos = 0
                continue
            if struct.unpack_from(endian + "I", buf, end - 4)[0] != blen:
                report.add("pcapng_bad_block", frame_no + 1, f"block type {btype_n:#x}: trailing length differs")
                return
            body = pos + 8
            bend = end - 4
            if btype_n == 6 or btype_n == 2:  # Enhanced Packet Block, obsolete Packet Block
                frame_no += 1
                if bend - body < 20:
                    iface_id, hi, lo, caplen, orig = 0, 0, 0, bend - body, 0
                elif btype_n == 6:
                    iface_id, hi, lo, caplen, orig = struct.unpack_from(endian + "IIIII", buf, body)
                else:
                    iface_id, _drops, hi, lo, caplen, orig = struct.unpack_from(endian + "HHIIII", buf, body)
                start = body + 20
                if bend - body < 20 or start + caplen > bend:
                    report.add("pcapng_bad_packet", frame_no, f"captured length {caplen} in a block of {blen}")
                elif iface_id >= len(ifaces):
                    report.add("pcapng_unknown_interface", frame_no, f"interface {iface_id}")
                else:
                    iface = ifaces[iface_id]
                    keep = iface.keep
                    if keep is None:
                        unsupported += 1
                    elif keep(buf, start, start + caplen):
                        ts = ((hi << 32 | lo) * iface.mul) // iface.div + iface.offset
                        yield frame_no, ts, iface.linktype, buf[start : start + caplen], orig
            elif btype_n == 3:  # Simple Packet Block: interface 0, no timestamp
                frame_no += 1
                if not ifaces or bend - body < 4:
                    report.add("pcapng_unknown_interface", frame_no, "simple packet block before any interface")
                else:
                    iface = ifaces[0]
                    (orig,) = struct.unpack_from(endian + "I", buf, body)
                    caplen = min(orig, bend - body - 4, iface.snaplen or orig)
                    if iface.keep is None:
                        unsupported += 1
                    elif iface.keep(buf, body + 4, body + 4 + caplen):
                        yield frame_no, iface.offset, iface.linktype, buf[body + 4 : body + 4 + caplen], orig
            elif btype_n == 1:  # Interface Description Block
                if bend - body >= 8:
                    linktype, _res, snaplen = struct.unpack_from(endian + "HHI", buf, body)
                    keep = keep_for(linktype)
                    if keep is None:
                        unknown_linktypes.add(linktype)
                    iface = _Interface(linktype, snaplen, keep)
                    iface.options(buf, body + 8, bend, endian)
                    ifaces.append(iface)
                    fused = fused_epb(ifaces, endian)
                else:
                    report.add("pcapng_bad_block", frame_no + 1, "interface description block too short")
            elif btype_n == 0x0A0D0D0A:
                ifaces = []  # interface numbers restart in every section
                fused = None
            pos = end
    finally:
        if mapped is not None:
            mapped.close()
        report.units += frame_no - first
        if span is not None:
            span.end, span.exact, span.frames = pos, pos == n, frame_no - first
            span.endian, span.ifaces = endian, ifaces
        if unsupported:
            kinds = ", ".join(str(t) for t in sorted(unknown_linktypes))
            report.add("unsupported_link_type", None, f"link type {kinds}", n=unsupported)
