"""Kerberos in LDAP SASL binds (RFC 4511 §4.2-§4.2.2, RFC 4513 §5.2, RFC 4752 for GSSAPI, MS-ADTS §5.1.1.1 for
GSS-SPNEGO; ports 389 and 3268, detected by content).

A BindRequest ``[APPLICATION 0] { version, name, authentication }`` with ``sasl [3] { mechanism, credentials }``
carries a raw Kerberos GSS token (mechanism ``GSSAPI``) or an SPNEGO token (``GSS-SPNEGO``); the BindResponse
``[APPLICATION 1] { resultCode, matchedDN, diagnosticMessage, ..., serverSaslCreds [7] }`` carries the answer. The
result becomes ``app_status`` as ``"<resultCode name>: <diagnosticMessage>"`` (e.g. ``"invalidCredentials: 8009030C:
LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 52e, v4563"``), or just the name when the
message is empty; ``saslBindInProgress`` (14) is the normal middle step, not a failure.

Other operations are skipped by their BER length without being buffered. Once a SASL security layer is in force,
every LDAP message travels inside a 4-octet big-endian length (RFC 4752 §3.3 / RFC 4422 §3.7): a unit that does not
start with ``30`` is such a buffer and is skipped whole.
"""

from __future__ import annotations

from typing import Final

from ..gss import decode_gss
from ..krb5.der import TAG_SEQUENCE, decode_text, tlv
from .base import NEED, SKIP, TAKE, CarrierFlow, Fields

__all__ = ["RESULT_CODES", "LdapCarrier", "LdapFlow"]

BIND_REQUEST: Final = 0x60
BIND_RESPONSE: Final = 0x61
#: RFC 4511 §4.1.9 and Appendix A.
RESULT_CODES: Final[dict[int, str]] = {
    0: "success", 1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded", 4: "sizeLimitExceeded",
    5: "compareFalse", 6: "compareTrue", 7: "authMethodNotSupported", 8: "strongerAuthRequired", 10: "referral",
    11: "adminLimitExceeded", 12: "unavailableCriticalExtension", 13: "confidentialityRequired",
    14: "saslBindInProgress", 16: "noSuchAttribute", 17: "undefinedAttributeType", 18: "inappropriateMatching",
    19: "constraintViolation", 20: "attributeOrValueExists", 21: "invalidAttributeSyntax", 32: "noSuchObject",
    33: "aliasProblem", 34: "invalidDNSyntax", 36: "aliasDereferencingProblem", 48: "inappropriateAuthentication",
    49: "invalidCredentials", 50: "insufficientAccessRights", 51: "busy", 52: "unavailable",
    53: "unwillingToPerform", 54: "loopDetect", 64: "namingViolation", 65: "objectClassViolation",
    66: "notAllowedOnNonLeaf", 67: "notAllowedOnRDN", 68: "entryAlreadyExists", 69: "objectClassModsProhibited",
    71: "affectsMultipleDSAs", 80: "other",
}  # fmt: skip
#: Longest diagnostic message kept in ``app_status``.
MAX_DIAGNOSTIC: Final = 512
#: BER needs at most 2 + 4 octets of length, then messageID (<= 2 + 4) and the protocolOp tag.
_PEEK: Final = 16

ISSUE_BIND: Final = "ldap_bad_bind"


def _header(buf: bytearray) -> tuple[int, int] | None:
    """``(total length, content start)`` of the BER element at the start of ``buf``, ``None`` if more is needed."""
    if len(buf) < 2:
        return None
    n = buf[1]
    if n < 0x80:
        return 2 + n, 2
    k = n & 0x7F
    if n == 0x80 or k > 4:
        raise ValueError("indefinite or oversized BER length")
    if len(buf) < 2 + k:
        return None
    return 2 + k + int.from_bytes(buf[2 : 2 + k], "big"), 2 + k


def starts_message(buf: bytes | bytearray, pos: int) -> bool:
    """Does an LDAPMessage start at ``pos``: ``30 <len> 02 <1-4 octets> <id> <[APPLICATION n]>``?"""
    if len(buf) - pos < 7 or buf[pos] != TAG_SEQUENCE:
        return False
    n = buf[pos + 1]
    at = pos + 2 if n < 0x80 else pos + 2 + (n & 0x7F)
    if n == 0x80 or n > 0x84 or at + 2 > len(buf) or buf[at] != 0x02 or not 1 <= buf[at + 1] <= 4:
        return False
    op = at + 2 + buf[at + 1]
    return op < len(buf) and 0x40 <= buf[op] <= 0x7F


def result_status(code: int, diagnostic: str) -> str:
    """``app_status`` of an LDAP result: the code's name, then the diagnostic message when there is one."""
    name = RESULT_CODES.get(code, f"resultCode {code}")
    return f"{name}: {diagnostic}" if diagnostic else name


class LdapFlow(CarrierFlow):
    """One LDAP connection."""

    carrier = "ldap"

    def _next(self, buf: bytearray, to_server: bool) -> tuple[int, int]:
        if not buf:
            return NEED, 0
        if buf[0] != TAG_SEQUENCE:
            if len(buf) < 4:
                return NEED, 0
            return SKIP, 4 + int.from_bytes(buf[:4], "big")  # a SASL-wrapped buffer
        head = _header(buf)
        if head is None:
            return NEED, 0
        total, s = head
        if len(buf) < min(total, s + _PEEK):
            return NEED, 0
        _tag, _ms, me = tlv(buf, s, min(total, len(buf)))  # messageID
        if me >= min(total, len(buf)):
            return (NEED, 0) if len(buf) < total else (SKIP, total)
        op = buf[me]
        if op in (BIND_REQUEST, BIND_RESPONSE):
            return TAKE, total
        return SKIP, total

    def _resync(self, buf: bytearray, to_server: bool, start: int) -> int | None:
        pos = buf.find(b"\x30", start)
        while pos >= 0:
            if starts_message(buf, pos):
                return pos
            pos = buf.find(b"\x30", pos + 1)
        return None

    def _unit(self, unit: bytes, to_server: bool) -> list[Fields]:
        _tag, s, e = tlv(unit, 0, len(unit))
        _t, ms, me = tlv(unit, s, e)
        msg_id = int.from_bytes(unit[ms:me], "big")  # a BindResponse carries its BindRequest's messageID
        op, os_, oe = tlv(unit, me, e)
        if op == BIND_REQUEST:
            return self.requested(self._bind_request(unit, os_, oe), msg_id)
        return self._bind_response(unit, os_, oe, msg_id)

    def _bind_request(self, unit: bytes, s: int, e: int) -> list[Fields]:
        _t, _vs, pos = tlv(unit, s, e)  # version
        _t, _ns, pos = tlv(unit, pos, e)  # name
        auth, as_, ae = tlv(unit, pos, e)
        if auth != 0xA3:  # simple [0] or Microsoft's sicily [9]/[10]/[11]: no Kerberos
            return []
        mtag, ms, me = tlv(unit, as_, ae)
        mechanism = bytes(unit[ms:me]).upper()
        if mtag != 0x04:
            self.issues[ISSUE_BIND] += 1
            return []
        if me >= ae or mechanism not in (b"GSSAPI", b"GSS-SPNEGO"):
            return []
        ctag, cs, ce = tlv(unit, me, ae)
        if ctag != 0x04:
            self.issues[ISSUE_BIND] += 1
            return []
        return decode_gss(unit[cs:ce], self.issues)

    def _bind_response(self, unit: bytes, s: int, e: int, msg_id: int) -> list[Fields]:
        rtag, rs, pos = tlv(unit, s, e)
        if rtag != 0x0A or not 0 < pos - rs <= 4:
            raise ValueError("BindResponse without an ENUMERATED resultCode")
        code = int.from_bytes(unit[rs:pos], "big")
        _t, _ds, pos = tlv(unit, pos, e)  # matchedDN
        dtag, ds, pos = tlv(unit, pos, e)
        diagnostic = decode_text(unit[ds : min(pos, ds + MAX_DIAGNOSTIC)]).strip("\x00 ") if dtag == 0x04 else ""
        diagnostic = diagnostic.replace("\ufffd", "").strip()
        rows: list[Fields] = []
        while pos < e:
            tag, cs, pos = tlv(unit, pos, e)
            if tag == 0x87:  # serverSaslCreds [7] IMPLICIT OCTET STRING
                rows = decode_gss(unit[cs:pos], self.issues)
        return self.answered(rows, result_status(code, diagnostic), key=msg_id)


class LdapCarrier:
    """LDAP over TCP: an LDAPMessage SEQUENCE whose messageID INTEGER is followed by an application-tagged op."""

    name = "ldap"

    def accepts(self, server_port: int, first: bytes, from_client: bool) -> bool:
        """``30 <len> 02 <1-4 octets> <id> <[APPLICATION n]>`` at the start of the stream."""
        return first[:1] == b"\x30" and starts_message(first, 0)

    def new_flow(self) -> LdapFlow:
        return LdapFlow()
