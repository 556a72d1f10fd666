"""The RFC 4120 ASN.1 module (§5, Appendix A) in pyasn1, with the PA-DATA and e-data types a trace meets:
ETYPE-INFO/ETYPE-INFO2 (§5.2.7.4-5), KERB-PA-PAC-REQUEST and KERB-ERROR-DATA (MS-KILE §2.2), PA-FOR-USER and
PA-S4U-X509-USER (MS-SFU §2.2.1-2), PA-FX-FAST request/reply (RFC 6113 §5.4.2-3), TYPED-DATA (§5.9.1).

:func:`full_decode` is the complete, slow decoder: every component of one message as nested Python values, used to
inspect a message and as the independent oracle of the fast reader (:mod:`parsers.krb5.messages`). It shares no
decoding code with it: tags, lengths, integers, strings and times are pyasn1's; only the nesting check
(:func:`parsers.krb5.der.check_nesting`) runs first, so hostile nesting never reaches pyasn1's recursive decoder.

Output shape: a SEQUENCE is a dict keyed by the RFC component names (absent OPTIONAL components left out), a
SEQUENCE OF a list, INTEGER an int, BOOLEAN a bool, OCTET STRING bytes, KerberosString a str (UTF-8, else
Latin-1), KerberosTime an int (microseconds since the epoch, UTC), KerberosFlags an int (bit 0 = 0x80000000),
UInt32 folded to 0..2**32-1. Each PA-DATA of a known type gains ``value`` (its decoded padata-value); a KRB-ERROR's
e-data gains ``e-data-value`` with ``kind`` METHOD-DATA / TYPED-DATA / KERB-ERROR-DATA. A value that does not decode
gets ``value-error`` instead, so one odd PA-DATA never hides the rest of the message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

from pyasn1.codec.der import decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, namedtype, tag, univ, useful

from ..errors import KrbDecodeError
from .der import check_nesting, tlv

log = logging.getLogger(__name__)

__all__ = ["MESSAGES", "full_decode"]


def _x(n: int, t: Any) -> Any:
    """``[n]`` EXPLICIT (RFC 4120 §5: the module's default tagging)."""
    return t.subtype(explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, n))


def _req(name: str, n: int, t: Any) -> namedtype.NamedType:
    return namedtype.NamedType(name, _x(n, t))


def _opt(name: str, n: int, t: Any) -> namedtype.OptionalNamedType:
    return namedtype.OptionalNamedType(name, _x(n, t))


def _app(n: int) -> tag.TagSet:
    return univ.Sequence.tagSet.tagExplicitly(tag.Tag(tag.tagClassApplication, tag.tagFormatConstructed, n))


class KerberosString(char.GeneralString):
    pass


class KerberosTime(useful.GeneralizedTime):
    pass


class PrincipalName(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("name-type", 0, univ.Integer()),
        _req("name-string", 1, univ.SequenceOf(componentType=KerberosString())),
    )


class EncryptedData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("etype", 0, univ.Integer()),
        _opt("kvno", 1, univ.Integer()),
        _req("cipher", 2, univ.OctetString()),
    )


class Checksum(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("cksumtype", 0, univ.Integer()), _req("checksum", 1, univ.OctetString()))


class HostAddress(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("addr-type", 0, univ.Integer()), _req("address", 1, univ.OctetString()))


class PAData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("padata-type", 1, univ.Integer()), _req("padata-value", 2, univ.OctetString())
    )


class MethodData(univ.SequenceOf):
    componentType = PAData()


class Ticket(univ.Sequence):
    tagSet = _app(1)
    componentType = namedtype.NamedTypes(
        _req("tkt-vno", 0, univ.Integer()),
        _req("realm", 1, KerberosString()),
        _req("sname", 2, PrincipalName()),
        _req("enc-part", 3, EncryptedData()),
    )


class KdcReqBody(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("kdc-options", 0, univ.BitString()),
        _opt("cname", 1, PrincipalName()),
        _req("realm", 2, KerberosString()),
        _opt("sname", 3, PrincipalName()),
        _opt("from", 4, KerberosTime()),
        _req("till", 5, KerberosTime()),
        _opt("rtime", 6, KerberosTime()),
        _req("nonce", 7, univ.Integer()),
        _req("etype", 8, univ.SequenceOf(componentType=univ.Integer())),
        _opt("addresses", 9, univ.SequenceOf(componentType=HostAddress())),
        _opt("enc-authorization-data", 10, EncryptedData()),
        _opt("additional-tickets", 11, univ.SequenceOf(componentType=Ticket())),
    )


def _kdc_req(n: int) -> type[univ.Sequence]:
    class KdcReq(univ.Sequence):
        tagSet = _app(n)
        componentType = namedtype.NamedTypes(
            _req("pvno", 1, univ.Integer()),
            _req("msg-type", 2, univ.Integer()),
            _opt("padata", 3, MethodData()),
            _req("req-body", 4, KdcReqBody()),
        )

    return KdcReq


def _kdc_rep(n: int) -> type[univ.Sequence]:
    class KdcRep(univ.Sequence):
        tagSet = _app(n)
        componentType = namedtype.NamedTypes(
            _req("pvno", 0, univ.Integer()),
            _req("msg-type", 1, univ.Integer()),
            _opt("padata", 2, MethodData()),
            _req("crealm", 3, KerberosString()),
            _req("cname", 4, PrincipalName()),
            _req("ticket", 5, Ticket()),
            _req("enc-part", 6, EncryptedData()),
        )

    return KdcRep


class ApReq(univ.Sequence):
    tagSet = _app(14)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()),
        _req("msg-type", 1, univ.Integer()),
        _req("ap-options", 2, univ.BitString()),
        _req("ticket", 3, Ticket()),
        _req("authenticator", 4, EncryptedData()),
    )


class ApRep(univ.Sequence):
    tagSet = _app(15)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()), _req("msg-type", 1, univ.Integer()), _req("enc-part", 2, EncryptedData())
    )


class KrbSafeBody(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("user-data", 0, univ.OctetString()),
        _opt("timestamp", 1, KerberosTime()),
        _opt("usec", 2, univ.Integer()),
        _opt("seq-number", 3, univ.Integer()),
        _req("s-address", 4, HostAddress()),
        _opt("r-address", 5, HostAddress()),
    )


class KrbSafe(univ.Sequence):
    tagSet = _app(20)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()),
        _req("msg-type", 1, univ.Integer()),
        _req("safe-body", 2, KrbSafeBody()),
        _req("cksum", 3, Checksum()),
    )


class KrbPriv(univ.Sequence):
    tagSet = _app(21)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()), _req("msg-type", 1, univ.Integer()), _req("enc-part", 3, EncryptedData())
    )


class KrbCred(univ.Sequence):
    tagSet = _app(22)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()),
        _req("msg-type", 1, univ.Integer()),
        _req("tickets", 2, univ.SequenceOf(componentType=Ticket())),
        _req("enc-part", 3, EncryptedData()),
    )


class KrbError(univ.Sequence):
    tagSet = _app(30)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()),
        _req("msg-type", 1, univ.Integer()),
        _opt("ctime", 2, KerberosTime()),
        _opt("cusec", 3, univ.Integer()),
        _req("stime", 4, KerberosTime()),
        _req("susec", 5, univ.Integer()),
        _req("error-code", 6, univ.Integer()),
        _opt("crealm", 7, KerberosString()),
        _opt("cname", 8, PrincipalName()),
        _req("realm", 9, KerberosString()),
        _req("sname", 10, PrincipalName()),
        _opt("e-text", 11, KerberosString()),
        _opt("e-data", 12, univ.OctetString()),
    )


# --- PA-DATA values and e-data ---


class EtypeInfo2Entry(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("etype", 0, univ.Integer()), _opt("salt", 1, KerberosString()), _opt("s2kparams", 2, univ.OctetString())
    )


class EtypeInfoEntry(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("etype", 0, univ.Integer()), _opt("salt", 1, univ.OctetString()))


class PacRequest(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("include-pac", 0, univ.Boolean()))


class PaForUser(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("userName", 0, PrincipalName()),
        _req("userRealm", 1, KerberosString()),
        _req("cksum", 2, Checksum()),
        _req("auth-package", 3, KerberosString()),
    )


class S4UUserId(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("nonce", 0, univ.Integer()),
        _opt("cname", 1, PrincipalName()),
        _req("crealm", 2, KerberosString()),
        _opt("subject-certificate", 3, univ.OctetString()),
        _opt("options", 4, univ.BitString()),
    )


class PaS4UX509User(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("user-id", 0, S4UUserId()), _req("checksum", 1, Checksum()))


class KrbFastArmor(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("armor-type", 0, univ.Integer()), _req("armor-value", 1, univ.OctetString())
    )


class KrbFastArmoredReq(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _opt("armor", 0, KrbFastArmor()), _req("req-checksum", 1, Checksum()), _req("enc-fast-req", 2, EncryptedData())
    )


class KrbFastArmoredRep(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("enc-fast-rep", 0, EncryptedData()))


class PaFxFastRequest(univ.Choice):
    componentType = namedtype.NamedTypes(_req("armored-data", 0, KrbFastArmoredReq()))


class PaFxFastReply(univ.Choice):
    componentType = namedtype.NamedTypes(_req("armored-data", 0, KrbFastArmoredRep()))


class TypedDataEntry(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("data-type", 0, univ.Integer()), _opt("data-value", 1, univ.OctetString())
    )


class KerbErrorData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("data-type", 1, univ.Integer()), _opt("data-value", 2, univ.OctetString())
    )


#: msg-type -> (name, spec). The application tag of the first octet selects it.
MESSAGES: Final[dict[int, tuple[str, Any]]] = {
    10: ("AS-REQ", _kdc_req(10)),
    11: ("AS-REP", _kdc_rep(11)),
    12: ("TGS-REQ", _kdc_req(12)),
    13: ("TGS-REP", _kdc_rep(13)),
    14: ("AP-REQ", ApReq),
    15: ("AP-REP", ApRep),
    20: ("KRB-SAFE", KrbSafe),
    21: ("KRB-PRIV", KrbPriv),
    22: ("KRB-CRED", KrbCred),
    30: ("KRB-ERROR", KrbError),
}

_UINT32_FIELDS: Final = frozenset({"nonce", "kvno", "seq-number"})


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _flags(bits: univ.BitString) -> int:
    """KerberosFlags: bit i of the BIT STRING is 1 << (31 - i); bits past the 32nd are dropped."""
    value = 0
    for i, bit in enumerate(tuple(bits)[:32]):
        if bit:
            value |= 1 << (31 - i)
    return value


def _py(v: Any, name: str = "") -> Any:
    """A decoded pyasn1 value as plain Python values (see the module docstring)."""
    if isinstance(v, useful.GeneralizedTime):
        stamp = v.asDateTime
        if stamp.tzinfo is None:
            raise KrbDecodeError(f"KerberosTime {v} without a time zone")
        delta = stamp.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(v, univ.Choice):
        chosen = v.getName()
        return {chosen: _py(v.getComponent(), chosen)}
    if isinstance(v, univ.Sequence):
        return {n: _py(c, n) for n, c in v.items() if c.isValue}
    if isinstance(v, univ.SequenceOf):
        return [_py(c) for c in v]
    if isinstance(v, univ.Boolean):
        return bool(v)
    if isinstance(v, univ.Integer):
        value = int(v)
        return value & 0xFFFFFFFF if name in _UINT32_FIELDS and -0x80000000 <= value < 0 else value
    if isinstance(v, univ.BitString):
        return _flags(v)
    if isinstance(v, char.AbstractCharacterString):
        return _text(v.asOctets())
    if isinstance(v, univ.OctetString):
        return bytes(v)
    raise KrbDecodeError(f"unexpected ASN.1 value {type(v).__name__}")


def _decode(raw: bytes, spec: Any) -> tuple[Any, int]:
    """pyasn1 DER decode of ``raw`` against ``spec``: (plain value, trailing octets). Raises KrbDecodeError only."""
    check_nesting(raw, 0, _first_len(raw))
    try:
        value, rest = decoder.decode(raw, asn1Spec=spec)
        return _py(value), len(rest)
    except (PyAsn1Error, ValueError, TypeError, IndexError, KeyError, OverflowError, RecursionError) as exc:
        raise KrbDecodeError(f"{type(spec).__name__}: {str(exc)[:200]}") from None


def _first_len(raw: bytes) -> int:
    """The end of the first element (check_nesting must not read what a decoder will ignore as trailing bytes)."""
    return tlv(raw, 0, len(raw))[2]


def _exact(raw: bytes, spec: Any) -> Any:
    value, rest = _decode(raw, spec)
    if rest:
        raise KrbDecodeError(f"{rest} octets after {type(spec).__name__}")
    return value


_PA_SPECS: Final[dict[int, Any]] = {
    2: EncryptedData(),
    11: univ.SequenceOf(componentType=EtypeInfoEntry()),
    19: univ.SequenceOf(componentType=EtypeInfo2Entry()),
    128: PacRequest(),
    129: PaForUser(),
    130: PaS4UX509User(),
}


def _pa_value(ptype: int, raw: bytes, msg: int) -> Any:
    if ptype == 1:  # PA-TGS-REQ: an AP-REQ
        return _exact(raw, ApReq())
    if ptype == 136:  # PA-FX-FAST: a request's armoured request, a reply's or error's armoured reply
        value = _exact(raw, PaFxFastRequest() if msg in (10, 12) else PaFxFastReply())
        armor = value["armored-data"].get("armor")
        if armor and armor["armor-type"] == 1:
            armor["armor-value-decoded"] = _exact(armor["armor-value"], ApReq())
        return value
    if ptype == 3:  # PA-PW-SALT: octets (a Windows error may put a KERB-EXT-ERROR here)
        return raw
    return _exact(raw, _PA_SPECS[ptype])


def _padata(entries: list[dict[str, Any]], msg: int) -> None:
    for pa in entries:
        ptype, raw = pa["padata-type"], pa["padata-value"]
        if not raw or (ptype not in _PA_SPECS and ptype not in (1, 3, 136)):
            continue
        try:
            pa["value"] = _pa_value(ptype, raw, msg)
        except KrbDecodeError as exc:
            pa["value-error"] = str(exc)


def _e_data(raw: bytes) -> dict[str, Any]:
    """e-data by trial decoding: METHOD-DATA, TYPED-DATA, KERB-ERROR-DATA; else raw (kpasswd result, RFC 3244)."""
    for kind, spec in (
        ("METHOD-DATA", MethodData()),
        ("TYPED-DATA", univ.SequenceOf(componentType=TypedDataEntry())),
        ("KERB-ERROR-DATA", KerbErrorData()),
    ):
        try:
            value = _exact(raw, spec)
        except KrbDecodeError:
            continue
        if kind == "METHOD-DATA":
            _padata(value, 30)
        return {"kind": kind, "value": value}
    return {"kind": "octets", "value": raw}


def full_decode(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode one Kerberos message completely (see the module docstring for the output's shape).

    The result has ``message`` (AS-REQ ... KRB-ERROR), ``trailing`` (octets after the message) and every component
    of the message under its RFC 4120 name. Raises :class:`KrbDecodeError` for anything that does not decode.
    """
    raw = bytes(data)
    if not raw or raw[0] & 0xE0 != 0x60 or (raw[0] & 0x1F) not in MESSAGES:
        raise KrbDecodeError(f"not a Kerberos message: {raw[:1].hex() or 'empty'}")
    msg = raw[0] & 0x1F
    name, spec = MESSAGES[msg]
    value, trailing = _decode(raw, spec())
    if value["msg-type"] != msg:
        raise KrbDecodeError(f"msg-type {value['msg-type']} inside [APPLICATION {msg}]")
    if "padata" in value:
        _padata(value["padata"], msg)
    if "e-data" in value:
        value["e-data-value"] = _e_data(value["e-data"])
    return {"message": name, "trailing": trailing, **value}
