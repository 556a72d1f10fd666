"""Kerberos over TCP: the RFC 4120 §7.2.2 record mark (ports 88 and 464, RFC 3244 §1 for kpasswd).

Each message is preceded by four octets in network order: the high bit is reserved (RFC 5021 uses it to ask for
extensions; it is masked, as Wireshark does) and the other 31 bits are the message length. A segment may hold
several records and a record may span many segments; :class:`RecordMarkFlow` is the :class:`~parsers.streams.
CarrierFlow` that cuts the in-order byte stream of each direction into records.

After a gap or when the capture starts mid-connection the next four octets need not be a record mark, so the flow
*resynchronises*: it looks for the first offset where a plausible mark is followed by the start of a Kerberos message
whose DER length fills exactly that record (or, on 464, a kpasswd header of that length). Skipped octets are counted
(one ``tcp_resync_skipped`` per resynchronisation that skipped any); a mark longer than :data:`MAX_RECORD` is a
``bad_record_mark``; a record that does not decode is counted as ``asn1_decode_error`` (never dropped silently).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from .errors import KrbDecodeError
from .record import ParseReport
from .streams import Completed

log = logging.getLogger(__name__)

__all__ = ["MAX_RECORD", "RecordMarkFlow", "plausible_start"]

#: Largest record accepted. Real messages stay well under 64 KiB (a Windows ticket with a large PAC is about 20 KiB;
#: MIT's default limit is 64 KiB); a longer mark is taken as desynchronisation, not as a reason to buffer.
MAX_RECORD: Final = 1 << 20
#: Octets kept while searching for a record start; older octets are given up (counted as skipped).
MAX_SEARCH: Final = 1 << 16

_APP_FIRST: Final = frozenset({0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x74, 0x75, 0x76, 0x7E})
_KPASSWD_VERSIONS: Final = frozenset({0x0001, 0xFF80})

Decoder = Callable[[bytes], dict[str, object]]


def _der_header(buf: bytes | bytearray, pos: int, end: int) -> tuple[int, int] | None:
    """(header size, total size) of the DER element at ``pos``, from its header alone; None when unreadable."""
    if pos + 2 > end:
        return None
    first = buf[pos + 1]
    if first < 0x80:
        return 2, 2 + first
    k = first & 0x7F
    if not 1 <= k <= 4 or pos + 2 + k > end:
        return None
    return 2 + k, 2 + k + int.from_bytes(buf[pos + 2 : pos + 2 + k], "big")


def plausible_start(buf: bytes | bytearray, pos: int, end: int, kpasswd: bool) -> bool | None:
    """Whether a record starts at ``pos``: True, False, or None when more octets are needed to tell."""
    if pos + 6 > end:
        return None
    length = int.from_bytes(buf[pos : pos + 4], "big") & 0x7FFFFFFF
    if not 4 <= length <= MAX_RECORD:
        return False
    first = buf[pos + 4]
    if first in _APP_FIRST:
        header = _der_header(buf, pos + 4, end)
        if header is None:
            return None if pos + 10 > end else False
        size, total = header
        if total != length:
            return False
        if pos + 4 + size >= end:
            return None
        return buf[pos + 4 + size] == 0x30  # every Kerberos message is [APPLICATION n] SEQUENCE
    if kpasswd:
        if pos + 8 > end:
            return None
        inner = int.from_bytes(buf[pos + 4 : pos + 6], "big")
        version = int.from_bytes(buf[pos + 6 : pos + 8], "big")
        return inner == length and version in _KPASSWD_VERSIONS
    return False


class _Side:
    __slots__ = ("buf", "skipped", "synced")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.synced = True
        self.skipped = 0  # octets given up since synchronisation was lost


class RecordMarkFlow:
    """Record-marked Kerberos (or kpasswd) messages of one TCP connection; a :class:`~parsers.streams.CarrierFlow`.

    ``decode`` turns one record (without its mark) into the KrbRecord fields; ``carrier`` is ``"kdc"`` or
    ``"kpasswd"``. Issues go to ``report``.
    """

    __slots__ = ("carrier", "decode", "kpasswd", "report", "sides")

    def __init__(self, carrier: str, decode: Decoder, report: ParseReport) -> None:
        self.carrier = carrier
        self.decode = decode
        self.report = report
        self.kpasswd = carrier == "kpasswd"
        self.sides = (_Side(), _Side())  # [0] to the server, [1] to the client

    def gap(self, to_server: bool) -> None:
        """Bytes were lost in that direction: drop the partial record and look for the next record start."""
        side = self.sides[0 if to_server else 1]
        side.skipped = 0  # the partial record before the gap is the gap's loss, already counted by the caller
        side.buf.clear()
        side.synced = False

    def feed(self, to_server: bool, data: bytes, ts: int, frame_no: int) -> list[Completed]:
        """Append in-order octets; return each message completed, decoded, with this frame's ts and number."""
        side = self.sides[0 if to_server else 1]
        held = side.buf
        # the usual case, nothing held over: read the records straight from ``data`` (no copies)
        buf: bytes | bytearray = data
        if held:
            held += data
            buf = held
        out: list[Completed] = []
        pos = 0
        end = len(buf)
        while True:
            if not side.synced:
                found, new = self._search(buf, pos, end)
                side.skipped += new - pos
                pos = new
                if not found:
                    break
                side.synced = True
                if side.skipped:
                    self.report.add("tcp_resync_skipped", frame_no, f"{side.skipped} octets before a record start")
                    side.skipped = 0
            if end - pos < 4:
                break
            length = int.from_bytes(buf[pos : pos + 4], "big") & 0x7FFFFFFF
            if length > MAX_RECORD or length == 0:
                self.report.add("bad_record_mark", frame_no, f"record mark of {length} octets")
                side.synced = False
                continue
            if end - pos - 4 < length:
                break
            fields = self._decode(bytes(buf[pos + 4 : pos + 4 + length]), frame_no)
            pos += 4 + length
            if fields is not None:
                out.append((fields, ts, frame_no))
        if buf is held:
            if pos:
                del held[:pos]
        elif pos < end:
            held += data[pos:]  # a record (or a possible record start) continues in the next segment
        return out

    def _search(self, buf: bytes | bytearray, pos: int, end: int) -> tuple[bool, int]:
        """(True, offset) of the first plausible record start at or after ``pos``, or (False, offset) of the first
        octet that cannot be ruled out yet (more octets are needed)."""
        kpasswd = self.kpasswd
        while pos < end:
            verdict = plausible_start(buf, pos, end, kpasswd)
            if verdict is None:
                return False, pos
            if verdict:
                return True, pos
            pos += 1
        return False, pos

    def _decode(self, record: bytes, frame_no: int) -> dict[str, object] | None:
        try:
            fields = self.decode(record)
        except KrbDecodeError as exc:
            self.report.add("asn1_decode_error", frame_no, f"{self.carrier} tcp record of {len(record)} octets: {exc}")
            return None
        fields["carrier"] = self.carrier
        return fields
