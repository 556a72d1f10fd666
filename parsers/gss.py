"""Kerberos messages inside GSS-API and SPNEGO tokens (RFC 2743 §3.1, RFC 4121 §4.1, RFC 4178 §4.2, MS-KILE §3.4.5,
MS-SPNG §2.2).

:func:`decode_gss` takes one security blob as a carrier hands it over (an SMB security buffer, the base64-decoded
value of an HTTP ``Negotiate`` header, LDAP SASL credentials, a DCE/RPC auth verifier) and returns the fields of each
Kerberos message inside (:func:`parsers.krb5.decode_message` dicts, ``phase`` set to ``AP``). It understands:

* the GSS InitialContextToken ``60 <len> 06 <oid> ...``: the Kerberos OID 1.2.840.113554.1.2.2 or Microsoft's
  1.2.840.48018.1.2.2, then TOK_ID ``01 00`` AP-REQ, ``02 00`` AP-REP, ``03 00`` KRB-ERROR and the DER message;
  the SPNEGO OID 1.3.6.1.5.5.2 followed by a NegotiationToken;
* SPNEGO NegTokenInit ``[0]`` (mechToken ``[2]``) and NegTokenResp ``[1]`` (responseToken ``[2]``); mechTypes,
  negState, supportedMech and mechListMIC carry no Kerberos message and are skipped;
* a Kerberos token without the ``60`` framing (TOK_ID then message, as some servers answer inside NegTokenResp) and a
  bare AP-REQ, AP-REP or KRB-ERROR (MS-KILE §3.4.5.1/§3.4.5.2: the DCE-style third leg is a bare AP-REP; Windows
  also sends bare KRB-ERRORs in NegTokenResp).

Wrap and MIC tokens (TOK_ID ``04 04``, ``05 04``, ``01 01``, ``02 01``), NTLMSSP and other mechanisms hold no Kerberos
message and give nothing. Every length is checked against the bytes that remain, nesting is bounded by
:data:`MAX_DEPTH`, and problems are counted in the caller's ``issues`` counter by a stable kind
(:data:`ISSUE_MALFORMED`, :data:`ISSUE_KRB5`); nothing raises.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Final

from .errors import KrbDecodeError
from .krb5 import decode_message
from .krb5.der import TAG_SEQUENCE, fields_prefix, tlv

log = logging.getLogger(__name__)

__all__ = ["ISSUE_KRB5", "ISSUE_MALFORMED", "KRB5_OIDS", "MAX_DEPTH", "decode_gss", "looks_like_gss"]

#: OID contents (without the ``06 09`` header).
KRB5_OID: Final = bytes.fromhex("2a864886f712010202")  # 1.2.840.113554.1.2.2 (RFC 1964)
MS_KRB5_OID: Final = bytes.fromhex("2a864882f712010202")  # 1.2.840.48018.1.2.2 (MS-KILE §1.9)
KRB5_OIDS: Final = frozenset({KRB5_OID, MS_KRB5_OID})
SPNEGO_OID: Final = bytes.fromhex("2b0601050502")  # 1.3.6.1.5.5.2 (RFC 4178)

#: RFC 4121 §4.1 TOK_ID of the context-establishment tokens -> the message they must carry.
TOK_IDS: Final[dict[bytes, str]] = {b"\x01\x00": "AP-REQ", b"\x02\x00": "AP-REP", b"\x03\x00": "KRB-ERROR"}
#: First octets of the Kerberos messages a GSS context exchange carries: AP-REQ, AP-REP, KRB-ERROR.
BARE_FIRST: Final = frozenset({0x6E, 0x6F, 0x7E})

#: SPNEGO inside GSS inside SPNEGO never needs more than a few levels; deeper input is hostile.
MAX_DEPTH: Final = 4

#: Issue kinds: a token whose GSS/SPNEGO framing is broken; a Kerberos message that decode_message refused.
ISSUE_MALFORMED: Final = "gss_malformed_token"
ISSUE_KRB5: Final = "gss_krb5_decode_error"
_CUT: Final = "_cut"

#: One decoded message: the decode_message keys.
Fields = dict[str, object]

_AP_ERRORS: Final = (KrbDecodeError, ValueError, IndexError, KeyError, TypeError, OverflowError)


def looks_like_gss(blob: bytes) -> bool:
    """Cheap test: could ``blob`` be a GSS/SPNEGO token or a bare Kerberos AP message (first octet only)?"""
    return bool(blob) and (blob[0] in (0x60, 0xA0, 0xA1) or blob[0] in BARE_FIRST)


def _lenient(buf: bytes, pos: int, end: int, issues: Counter[str]) -> tuple[int, int, int, bool]:
    """Like :func:`tlv`, but a length running past ``end`` is cut to ``end``: ``(tag, start, stop, whole?)``.

    Carriers hand over whole blobs; a blob still cut short (a truncated capture, a lying carrier length) keeps the
    readable part, and the message inside comes out ``partial``. The cut is noted; :func:`decode_gss` counts it once
    per blob as :data:`ISSUE_MALFORMED` unless another issue was counted.
    """
    try:
        tag, s, e = tlv(buf, pos, end)
        return tag, s, e, True
    except KrbDecodeError:
        if end - pos < 2 or buf[pos] & 0x1F == 0x1F:
            raise
        n = buf[pos + 1]
        k = 0 if n < 0x80 else n & 0x7F
        if n == 0x80 or k > 4 or end - pos - 2 < k:
            raise
        issues[_CUT] += 1
        return buf[pos], pos + 2 + k, end, False


def _message(buf: bytes, start: int, stop: int, whole: bool, want: str | None, issues: Counter[str]) -> list[Fields]:
    """Decode the Kerberos message at ``buf[start:stop]``; ``want`` is the type its TOK_ID promised."""
    try:
        r = decode_message(buf[start:stop])
    except _AP_ERRORS as exc:
        issues[ISSUE_KRB5] += 1
        log.debug("Kerberos message in a GSS token not decoded: %s", exc)
        return []
    if want is not None and r["msg_type"] != want:
        # The TOK_ID and the message disagree: keep the message (it is what the peer sent) but say so.
        r["partial"] = True
    if not whole:
        r["partial"] = True
    r["phase"] = "AP"
    return [r]


def _krb5_token(buf: bytes, pos: int, end: int, whole: bool, issues: Counter[str]) -> list[Fields]:
    """TOK_ID + message (RFC 4121 §4.1), after the OID of an InitialContextToken or bare."""
    if end - pos < 2:
        issues[ISSUE_MALFORMED] += 1
        return []
    want = TOK_IDS.get(bytes(buf[pos : pos + 2]))
    if want is None:
        return []  # wrap/MIC/other tokens: no Kerberos message
    return _message(buf, pos + 2, end, whole, want, issues)


def _negotiation(buf: bytes, pos: int, end: int, depth: int, issues: Counter[str]) -> list[Fields]:
    """SPNEGO NegotiationToken (RFC 4178 §4.2): NegTokenInit [0] / NegTokenResp [1], both ``{ ..., [2] token }``."""
    tag, s, e, whole = _lenient(buf, pos, end, issues)
    if tag not in (0xA0, 0xA1):
        issues[ISSUE_MALFORMED] += 1
        return []
    seq, ss, se, whole_seq = _lenient(buf, s, e, issues)
    if seq != TAG_SEQUENCE:
        issues[ISSUE_MALFORMED] += 1
        return []
    f, complete = fields_prefix(buf, ss, se)
    rng = f.get(2)  # mechToken / responseToken: [2] OCTET STRING
    if rng is None:
        return []
    otag, os_, oe, owhole = _lenient(buf, rng[0], rng[1], issues)
    if otag != 0x04:
        issues[ISSUE_MALFORMED] += 1
        return []
    out = _token(buf, os_, oe, depth + 1, issues)
    if not (whole and whole_seq and owhole and complete):
        for r in out:
            r["partial"] = True
    return out


def _token(buf: bytes, pos: int, end: int, depth: int, issues: Counter[str]) -> list[Fields]:
    if depth > MAX_DEPTH:
        issues[ISSUE_MALFORMED] += 1
        return []
    if end - pos < 2:
        if end > pos:
            issues[ISSUE_MALFORMED] += 1
        return []
    first = buf[pos]
    if first == 0x60:
        # InitialContextToken [APPLICATION 0] IMPLICIT SEQUENCE { thisMech OID, innerContextToken ANY }
        _tag, s, e, whole = _lenient(buf, pos, end, issues)
        otag, os_, oe = tlv(buf, s, e)
        if otag != 0x06:
            issues[ISSUE_MALFORMED] += 1
            return []
        oid = bytes(buf[os_:oe])
        if oid in KRB5_OIDS:
            return _krb5_token(buf, oe, e, whole, issues)
        if oid == SPNEGO_OID:
            out = _negotiation(buf, oe, e, depth, issues) if oe < e else []
            if not whole:
                for r in out:
                    r["partial"] = True
            return out
        return []  # another mechanism (IAKERB, NegoEx, ...)
    if first in (0xA0, 0xA1):
        return _negotiation(buf, pos, end, depth, issues)
    if first in BARE_FIRST:
        _tag, _s, e, whole = _lenient(buf, pos, end, issues)
        return _message(buf, pos, e, whole, None, issues)
    if first in (0x01, 0x02, 0x03) and buf[pos + 1] == 0x00 and end - pos > 2 and buf[pos + 2] in BARE_FIRST:
        return _krb5_token(buf, pos, end, True, issues)
    return []  # NTLMSSP, raw wrap tokens, other mechanisms


def decode_gss(blob: bytes | bytearray | memoryview, issues: Counter[str] | None = None) -> list[Fields]:
    """The Kerberos messages inside one GSS-API / SPNEGO security blob, in order (usually zero or one).

    Each item is a :func:`parsers.krb5.decode_message` dict with ``phase`` = ``"AP"``; ``partial`` is set when the
    blob was cut short or its TOK_ID disagrees with the message. Problems are counted in ``issues`` (kinds
    :data:`ISSUE_MALFORMED`, :data:`ISSUE_KRB5`); a blob of another mechanism gives ``[]`` without an issue.
    Never raises.
    """
    local: Counter[str] = Counter()
    buf = blob if type(blob) is bytes else bytes(blob)
    try:
        out = _token(buf, 0, len(buf), 0, local)
    except _AP_ERRORS as exc:
        local[ISSUE_MALFORMED] += 1
        log.debug("GSS token not decoded: %s", exc)
        out = []
    if issues is not None:
        cut = local.pop(_CUT, 0)
        if cut and not local:
            local[ISSUE_MALFORMED] = 1
        issues.update(local)
    return out
