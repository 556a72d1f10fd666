"""Kerberos in SMB1 and SMB2 SESSION_SETUP security buffers (MS-SMB2 §2.2.5, §2.2.6; MS-SMB §2.2.4.6, MS-CIFS
§2.2.4.53; RFC 1002 §4.3 NetBIOS session framing).

Both ports 445 (direct TCP) and 139 (NetBIOS) frame every message the same way: a 4-octet header, type ``00`` =
session message then a 24-bit length (RFC 1002 uses 17 bits; Microsoft's direct TCP uses 24). Other NetBIOS types
(session request ``81``, positive response ``82``, keep-alive ``85``) are skipped. Inside a session message:

* SMB2 (``FE 'SMB'``): a chain of headers linked by NextCommand; command 1 = SESSION_SETUP, whose request and
  response hold SecurityBufferOffset/Length (relative to the header) pointing at the SPNEGO blob. The response's
  Status (STATUS_SUCCESS, STATUS_MORE_PROCESSING_REQUIRED, STATUS_LOGON_FAILURE, ...) becomes ``app_status`` and
  ``nt_status``. Encrypted (``FD 'SMB'``) and compressed (``FC 'SMB'``) messages are skipped.
* SMB1 (``FF 'SMB'``): SMB_COM_SESSION_SETUP_ANDX (``73``) with extended security: request WordCount 12
  (SecurityBlobLength in word 7), response WordCount 4 (SecurityBlobLength in word 3); the blob starts the data
  bytes. The status is an NTSTATUS when Flags2 has 0x4000, else a DOS error class and code.

Only SESSION_SETUP messages are buffered; everything else is skipped by its NetBIOS length.
"""

from __future__ import annotations

import struct
from typing import Final

from ..gss import decode_gss
from ..krb5.constants import NTSTATUS_NAMES
from .base import NEED, SKIP, TAKE, CarrierFlow, Fields
from .dcerpc import HEADER, DcerpcFlow, starts_pdu

__all__ = ["SmbCarrier", "SmbFlow", "nt_status_name"]

SMB1: Final = b"\xffSMB"
SMB2: Final = b"\xfeSMB"
_MAGICS: Final = (SMB1, SMB2, b"\xfdSMB", b"\xfcSMB")
SMB2_SESSION_SETUP: Final = 0x0001
SMB2_READ: Final = 0x0008
SMB2_WRITE: Final = 0x0009
SMB2_IOCTL: Final = 0x000B
_PIPE_COMMANDS: Final = frozenset({SMB2_READ, SMB2_WRITE, SMB2_IOCTL})
FSCTL_PIPE_TRANSCEIVE: Final = 0x0011C017
STATUS_BUFFER_OVERFLOW: Final = 0x80000005  # a pipe READ whose message continues: the data is still good
#: DCE/RPC PDU types worth reading on a pipe: bind, bind_ack, bind_nak, alter_context(_resp), auth3, fault.
_RPC_AUTH: Final = frozenset({3, 11, 12, 13, 14, 15, 16})
SMB1_SESSION_SETUP_ANDX: Final = 0x73
SMB2_FLAGS_SERVER_TO_REDIR: Final = 0x00000001
SMB1_FLAGS_REPLY: Final = 0x80
SMB1_FLAGS2_NT_STATUS: Final = 0x4000
#: Largest compound chain read for a SESSION_SETUP inside (larger ones carry READ/WRITE data and are skipped).
MAX_COMPOUND: Final = 1 << 16
#: Enough of a session message to see its magic and command.
_PEEK: Final = 4 + 16
#: NetBIOS session-service message types (RFC 1002 §4.3.1).
_NBSS_TYPES: Final = frozenset({0x00, 0x81, 0x82, 0x83, 0x84, 0x85})

_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")


def nt_status_name(status: int) -> str:
    """``STATUS_LOGON_FAILURE`` style name of an NTSTATUS, or its hex form ``0xC000006D`` when unknown."""
    return NTSTATUS_NAMES.get(status) or f"0x{status:08X}"


class SmbFlow(CarrierFlow):
    """One SMB connection (SMB1 and SMB2 may both appear: a dialect negotiation can start in SMB1)."""

    carrier = "smb2"

    def __init__(self) -> None:
        super().__init__()
        self._rpc: DcerpcFlow | None = None  # DCE/RPC over named pipes of this connection

    def _next(self, buf: bytearray, to_server: bool) -> tuple[int, int]:
        if len(buf) < 4:
            return NEED, 0
        kind = buf[0]
        if kind not in _NBSS_TYPES:
            raise ValueError(f"NetBIOS type 0x{kind:02x}")
        length = buf[1] << 16 | buf[2] << 8 | buf[3]
        if kind != 0x00:
            return SKIP, 4 + length
        if length < 4:
            return SKIP, 4 + length
        if len(buf) < min(_PEEK, 4 + length):
            return NEED, 0
        magic = bytes(buf[4:8])
        if magic not in _MAGICS:
            raise ValueError("session message without an SMB magic")
        if magic == SMB2 and length >= 16 and _U16.unpack_from(buf, 16)[0] == SMB2_SESSION_SETUP:
            return TAKE, 4 + length
        if magic == SMB2 and length >= 24 and _U32.unpack_from(buf, 24)[0] and length <= MAX_COMPOUND:
            return TAKE, 4 + length  # a compound chain: a later header may be a SESSION_SETUP
        if magic == SMB1 and length >= 5 and buf[8] == SMB1_SESSION_SETUP_ANDX:
            return TAKE, 4 + length
        if magic == SMB2 and 16 <= length <= MAX_COMPOUND and _U16.unpack_from(buf, 16)[0] in _PIPE_COMMANDS:
            at = _pipe_data(buf, 4, min(len(buf), 4 + length))
            if at is None:
                return SKIP, 4 + length
            if at[0] + HEADER > min(len(buf), 4 + length) and len(buf) < 4 + length:
                return NEED, 0  # the DCE/RPC header is not in yet
            if at[1] >= HEADER and starts_pdu(buf, at[0]) and buf[at[0] + 2] in _RPC_AUTH:
                return TAKE, 4 + length
        return SKIP, 4 + length

    def _resync(self, buf: bytearray, to_server: bool, start: int) -> int | None:
        pos = max(start, 0)
        while True:
            hit = min((i for i in (buf.find(m, pos + 4) for m in (SMB1, SMB2)) if i >= 0), default=-1)
            if hit < 0:
                return None
            if buf[hit - 4] == 0x00:
                return hit - 4
            pos = hit - 3

    def _unit(self, unit: bytes, to_server: bool) -> list[Fields]:
        if unit[4:8] == SMB2:
            return self._smb2(unit, 4, to_server)
        return self._smb1(unit, 4, to_server)

    def _smb2(self, unit: bytes, base: int, to_server: bool) -> list[Fields]:
        """Walk the compound chain (MS-SMB2 §3.2.4.1.4), decoding each SESSION_SETUP."""
        rows: list[Fields] = []
        end = len(unit)
        for _ in range(64):
            if end - base < 64 or unit[base : base + 4] != SMB2:
                break
            command = _U16.unpack_from(unit, base + 12)[0]
            nxt = _U32.unpack_from(unit, base + 20)[0]
            stop = base + nxt if nxt and base + nxt <= end else end
            if command == SMB2_SESSION_SETUP:
                rows += self.tag(self._session_setup2(unit, base, stop, to_server))
            elif command in _PIPE_COMMANDS:
                rows += self._pipe(unit, base, stop, to_server)
            if not nxt or base + nxt >= end:
                break
            base += nxt
        return rows

    def _session_setup2(self, unit: bytes, base: int, stop: int, to_server: bool) -> list[Fields]:
        self.carrier = "smb2"
        status = _U32.unpack_from(unit, base + 8)[0]
        reply = bool(_U32.unpack_from(unit, base + 16)[0] & SMB2_FLAGS_SERVER_TO_REDIR)
        key = ("smb2", _U64.unpack_from(unit, base + 24)[0])  # MessageId: the response repeats the request's
        body = base + 64
        if reply:
            if stop - body < 8:
                return self.answered([], nt_status_name(status), status, key)
            off, length = _U16.unpack_from(unit, body + 4)[0], _U16.unpack_from(unit, body + 6)[0]
        else:
            if stop - body < 16:
                return []
            off, length = _U16.unpack_from(unit, body + 12)[0], _U16.unpack_from(unit, body + 14)[0]
        blob = self._blob(unit, base + off, length, stop) if length else b""
        rows = decode_gss(blob, self.issues) if blob else []
        for r in rows:
            r["carrier"] = "smb2"
        if reply:
            return self.answered(rows, nt_status_name(status), status, key)
        return self.requested(rows, key)

    def _pipe(self, unit: bytes, base: int, stop: int, to_server: bool) -> list[Fields]:
        """DCE/RPC PDUs carried in a named-pipe WRITE, READ or FSCTL_PIPE_TRANSCEIVE (MS-RPCE §2.1.1.2)."""
        at = _pipe_data(unit, base, stop)
        if at is None:
            return []
        if self._rpc is None:
            self._rpc = DcerpcFlow()
            self._rpc.issues = self.issues
        rpc = self._rpc
        rpc._frame = self._frame
        pos, end = at[0], at[0] + at[1]
        rows: list[Fields] = []
        while end - pos >= HEADER and starts_pdu(unit, pos):
            frag = _U16.unpack_from(unit, pos + 8)[0] if unit[pos + 4] & 0x10 else unit[pos + 8] << 8 | unit[pos + 9]
            if pos + frag > end:
                break
            if unit[pos + 2] in _RPC_AUTH:
                rows += rpc._unit(unit[pos : pos + frag], to_server)
            pos += frag
        for r in rows:
            r["carrier"] = "dcerpc"
        return rows

    def _smb1(self, unit: bytes, base: int, to_server: bool) -> list[Fields]:
        self.carrier = "smb"
        end = len(unit)
        if end - base < 33 or unit[base + 4] != SMB1_SESSION_SETUP_ANDX:
            return []
        flags, flags2 = unit[base + 9], _U16.unpack_from(unit, base + 10)[0]
        reply = bool(flags & SMB1_FLAGS_REPLY)
        if flags2 & SMB1_FLAGS2_NT_STATUS:
            status: int | None = _U32.unpack_from(unit, base + 5)[0]
            app = nt_status_name(status)
        else:
            status = None
            app = f"DOS {unit[base + 5]}/{_U16.unpack_from(unit, base + 7)[0]}"
            if unit[base + 5] == 0 and _U16.unpack_from(unit, base + 7)[0] == 0:
                app = "STATUS_SUCCESS"
        key = ("smb", _U16.unpack_from(unit, base + 30)[0])  # MID: the response repeats the request's
        words = base + 32
        wc = unit[words]
        data = words + 1 + 2 * wc + 2  # after WordCount, the words and ByteCount
        blob_len = None
        if not reply and wc == 12 and data <= end:
            blob_len = _U16.unpack_from(unit, words + 1 + 14)[0]
        elif reply and wc == 4 and data <= end:
            blob_len = _U16.unpack_from(unit, words + 1 + 6)[0]
        rows: list[Fields] = []
        if blob_len:
            blob = self._blob(unit, data, blob_len, end)
            rows = decode_gss(blob, self.issues) if blob else []
        for r in rows:
            r["carrier"] = "smb"
        if reply:
            return self.answered(rows, app, status, key)
        return self.requested(rows, key)

    def _blob(self, unit: bytes, start: int, length: int, stop: int) -> bytes:
        """The security buffer, cut to the message (a lying length is counted, the readable part kept)."""
        if start < 0 or start >= stop:
            self.issues["smb_bad_security_buffer"] += 1
            return b""
        if start + length > stop:
            self.issues["smb_bad_security_buffer"] += 1
        return unit[start : min(start + length, stop)]


def _pipe_data(buf: bytes | bytearray, base: int, stop: int) -> tuple[int, int] | None:
    """``(start, length)`` of the data a WRITE request, READ response or pipe-transceive IOCTL carries (offsets are
    relative to the SMB2 header at ``base``), cut to ``stop``; ``None`` for other messages or when it is not there."""
    if stop - base < 64 + 8:
        return None
    command = _U16.unpack_from(buf, base + 12)[0]
    reply = _U32.unpack_from(buf, base + 16)[0] & SMB2_FLAGS_SERVER_TO_REDIR
    status = _U32.unpack_from(buf, base + 8)[0]
    body = base + 64
    if reply and status not in (0, STATUS_BUFFER_OVERFLOW):
        return None
    if command == SMB2_WRITE and not reply:
        off, length = _U16.unpack_from(buf, body + 2)[0], _U32.unpack_from(buf, body + 4)[0]
    elif command == SMB2_READ and reply:
        off, length = buf[body + 2], _U32.unpack_from(buf, body + 4)[0]
    elif command == SMB2_IOCTL and stop - body >= 40 and _U32.unpack_from(buf, body + 4)[0] == FSCTL_PIPE_TRANSCEIVE:
        at = body + (32 if reply else 24)  # response: OutputOffset/Count; request: InputOffset/Count
        off, length = _U32.unpack_from(buf, at)[0], _U32.unpack_from(buf, at + 4)[0]
    else:
        return None
    start = base + off
    if off < 64 or start >= stop or not length:
        return None
    return start, min(length, stop - start)


class SmbCarrier:
    """SMB1/SMB2 over NetBIOS session framing (ports 445 and 139, detected by content)."""

    name = "smb"

    def accepts(self, server_port: int, first: bytes, from_client: bool) -> bool:
        """A NetBIOS session message holding an SMB magic, or a NetBIOS session request (port 139's opening)."""
        if len(first) < 4:
            return False
        if first[0] == 0x00:
            return first[4:8] in _MAGICS
        return first[0] == 0x81 and from_client and first[1] == 0 and 4 + (first[2] << 8 | first[3]) == len(first)

    def new_flow(self) -> SmbFlow:
        return SmbFlow()
