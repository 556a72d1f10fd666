"""Kerberos in DCE/RPC connection-oriented auth verifiers (C706 §12.6, MS-RPCE §2.2.1.1.7, §2.2.2.11, §3.3.1.5.2;
TCP 135 and the dynamic endpoint ports, detected by content).

Every PDU starts with a 16-octet common header: ``rpc_vers`` 5, ``rpc_vers_minor`` 0/1, ``PTYPE``, ``pfc_flags``,
the data representation (``drep[0] & 0x10`` = little-endian), ``frag_length``, ``auth_length``, ``call_id``. The
auth verifier is the last ``auth_length + 8`` octets: the ``sec_trailer`` (auth_type, auth_level, pad length,
reserved, context id) and the token. auth_type 9 (RPC_C_AUTHN_GSS_NEGOTIATE: SPNEGO) and 16 (RPC_C_AUTHN_GSS_KERBEROS:
raw Kerberos GSS tokens; MS-KILE's DCE style adds a bare AP-REP third leg) are decoded in bind (11), bind_ack (12),
alter_context (14), alter_context_resp (15) and auth3 (16). bind_nak (13) and fault (3) answers give the outcome
row when they answer an AP-REQ. request/response PDUs (whose verifiers are wrap tokens) are skipped unread.
"""

from __future__ import annotations

import struct
from typing import Final

from ..gss import decode_gss
from .base import NEED, SKIP, TAKE, CarrierFlow, Fields

__all__ = ["DcerpcCarrier", "DcerpcFlow"]

HEADER: Final = 16
PTYPES: Final[dict[int, str]] = {
    0: "request", 1: "ping", 2: "response", 3: "fault", 4: "working", 5: "nocall", 6: "reject", 7: "ack",
    8: "cl_cancel", 9: "fack", 10: "cancel_ack", 11: "bind", 12: "bind_ack", 13: "bind_nak", 14: "alter_context",
    15: "alter_context_resp", 16: "auth3", 17: "shutdown", 18: "co_cancel", 19: "orphaned",
}  # fmt: skip
_AUTH_PDUS: Final = frozenset({11, 12, 14, 15, 16})
_CLIENT_PDUS: Final = frozenset({11, 14, 16})
_ANSWERS: Final = frozenset({3, 12, 13, 15})
AUTHN_GSS_NEGOTIATE: Final = 9
AUTHN_GSS_KERBEROS: Final = 16
#: C706 §12.6.3.1 / MS-RPCE §2.2.2.5 provider reject reasons of bind_nak.
REJECT_REASONS: Final[dict[int, str]] = {
    0: "reason_not_specified", 1: "temporary_congestion", 2: "local_limit_exceeded", 3: "called_paddr_unknown",
    4: "protocol_version_not_supported", 5: "default_context_not_supported", 6: "user_data_not_readable",
    7: "no_psap_available", 8: "authentication_type_not_recognized", 9: "invalid_checksum",
}  # fmt: skip
#: Fault statuses an authentication failure produces (MS-RPCE §2.2.2.5, MS-ERREF §2.2).
FAULT_NAMES: Final[dict[int, str]] = {
    0x00000005: "ERROR_ACCESS_DENIED", 0x00000721: "RPC_S_SEC_PKG_ERROR", 0x1C010002: "nca_s_op_rng_error",
    0x1C010003: "nca_s_unk_if", 0x1C00001B: "nca_s_proto_error", 0x000006D8: "EPT_S_CANT_PERFORM_OP",
    0x80090322: "SEC_E_WRONG_PRINCIPAL", 0x80090324: "SEC_E_TIME_SKEW", 0x8009030C: "SEC_E_LOGON_DENIED",
}  # fmt: skip


def starts_pdu(buf: bytes | bytearray, pos: int) -> bool:
    """Does a connection-oriented DCE/RPC v5 PDU header start at ``pos``?"""
    if len(buf) - pos < HEADER:
        return False
    if buf[pos] != 5 or buf[pos + 1] > 1 or buf[pos + 2] not in PTYPES or buf[pos + 4] & 0xEE:
        return False
    little = buf[pos + 4] & 0x10
    frag = (buf[pos + 8] | buf[pos + 9] << 8) if little else (buf[pos + 8] << 8 | buf[pos + 9])
    auth = (buf[pos + 10] | buf[pos + 11] << 8) if little else (buf[pos + 10] << 8 | buf[pos + 11])
    return frag >= HEADER and (auth == 0 or auth + 8 + HEADER <= frag)


class DcerpcFlow(CarrierFlow):
    """One DCE/RPC connection (several PDUs, several binds and auth contexts)."""

    carrier = "dcerpc"

    def _next(self, buf: bytearray, to_server: bool) -> tuple[int, int]:
        if len(buf) < HEADER:
            return NEED, 0
        if not starts_pdu(buf, 0):
            raise ValueError("not a DCE/RPC v5 header")
        fmt = "<H" if buf[4] & 0x10 else ">H"
        frag = struct.unpack_from(fmt, buf, 8)[0]
        if buf[2] in _AUTH_PDUS or buf[2] in _ANSWERS:
            return TAKE, frag
        return SKIP, frag

    def _resync(self, buf: bytearray, to_server: bool, start: int) -> int | None:
        pos = buf.find(b"\x05", start)
        while pos >= 0:
            if starts_pdu(buf, pos):
                return pos
            pos = buf.find(b"\x05", pos + 1)
        return None

    def _unit(self, unit: bytes, to_server: bool) -> list[Fields]:
        little = unit[4] & 0x10
        u16, u32 = ("<H", "<I") if little else (">H", ">I")
        ptype = unit[2]
        auth_len = struct.unpack_from(u16, unit, 10)[0]
        call = struct.unpack_from(u32, unit, 12)[0]  # an answer carries its request's call_id
        rows: list[Fields] = []
        if ptype in _AUTH_PDUS and auth_len:
            trailer = len(unit) - auth_len - 8  # starts_pdu() made sure it lies after the header
            if unit[trailer] in (AUTHN_GSS_NEGOTIATE, AUTHN_GSS_KERBEROS):
                rows = decode_gss(unit[trailer + 8 :], self.issues)
        if ptype in _CLIENT_PDUS:
            return self.requested(rows, call)
        if ptype == 13:
            reason = struct.unpack_from(u16, unit, HEADER)[0] if len(unit) >= HEADER + 2 else None
            status = "bind_nak" if reason is None else f"bind_nak: {REJECT_REASONS.get(reason, reason)}"
            return self.answered(rows, status, key=call)
        if ptype == 3:
            code = struct.unpack_from(u32, unit, HEADER + 8)[0] if len(unit) >= HEADER + 12 else None
            name = None if code is None else FAULT_NAMES.get(code, f"0x{code:08X}")
            return self.answered(rows, "fault" if name is None else f"fault: {name}", key=call)
        return self.answered(rows, PTYPES[ptype], key=call)


class DcerpcCarrier:
    """DCE/RPC over TCP on any port: a v5 connection-oriented PDU header at the start of the stream."""

    name = "dcerpc"

    def accepts(self, server_port: int, first: bytes, from_client: bool) -> bool:
        """The first bytes are a plausible DCE/RPC v5 header (version, PTYPE, flags, drep, lengths)."""
        return first[:1] == b"\x05" and starts_pdu(first, 0)

    def new_flow(self) -> DcerpcFlow:
        return DcerpcFlow()
