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

__all__ = ["SmbCarrier", "SmbFlow", "nt_status_name"]

SMB1: Final = b"\xffSMB"
SMB2: Final = b"\xfeSMB"
_MAGICS: Final = (SMB1, SMB2, b"\xfdSMB", b"\xfcSMB")
SMB2_SESSION_SETUP: Final = 0x0001
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


def nt_status_name(status: int) -> str:
    """``STATUS_LOGON_FAILURE`` style name of an NTSTATUS, or its hex form ``0xC000006D`` when unknown."""
    return NTSTATUS_NAMES.get(status) or f"0x{status:08X}"


class SmbFlow(CarrierFlow):
    """One SMB connection (SMB1 and SMB2 may both appear: a dialect negotiation can start in SMB1)."""

    carrier = "smb2"

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
            if not nxt or base + nxt >= end:
                break
            base += nxt
        return rows

    def _session_setup2(self, unit: bytes, base: int, stop: int, to_server: bool) -> list[Fields]:
        self.carrier = "smb2"
        status = _U32.unpack_from(unit, base + 8)[0]
        reply = bool(_U32.unpack_from(unit, base + 16)[0] & SMB2_FLAGS_SERVER_TO_REDIR)
        body = base + 64
        if reply:
            if stop - body < 8:
                return self.answered([], nt_status_name(status), status)
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
            return self.answered(rows, nt_status_name(status), status)
        return self.requested(rows)

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
            return self.answered(rows, app, status)
        return self.requested(rows)

    def _blob(self, unit: bytes, start: int, length: int, stop: int) -> bytes:
        """The security buffer, cut to the message (a lying length is counted, the readable part kept)."""
        if start < 0 or start >= stop:
            self.issues["smb_bad_security_buffer"] += 1
            return b""
        if start + length > stop:
            self.issues["smb_bad_security_buffer"] += 1
        return unit[start : min(start + length, stop)]


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
