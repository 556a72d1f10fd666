"""Complete decode of one Kerberos message with the pyasn1 RFC 4120 module of :mod:`parsers.krb5.asn1_spec`.

:func:`full_decode` is the slow, complete decoder: every component of one message as nested Python values, used to
inspect a message and as the independent oracle of the fast reader (:mod:`parsers.krb5.messages`). It shares no
decoding code with it: tags, lengths, integers, strings and times are pyasn1's; only the nesting check
(:func:`parsers.krb5.der.check_nesting`) runs first, so hostile nesting never reaches pyasn1's recursive decoder.

Output shape: a SEQUENCE is a dict keyed by the RFC component names (absent OPTIONAL components left out), a
SEQUENCE OF a list, INTEGER an int, BOOLEAN a bool, OCTET STRING bytes, KerberosString a str (UTF-8, else
Latin-1), KerberosTime an int (microseconds since the epoch, UTC), KerberosFlags an int (bit 0 = 0x80000000),
UInt32 folded to 0..2**32-1. Each PA-DATA of a known type gains ``value`` (its decoded padata-value: PA-TGS-REQ,
PA-ENC-TIMESTAMP, ETYPE-INFO/-INFO2, PW-SALT, PAC-REQUEST, PA-FOR-USER, PA-S4U-X509-USER, PA-FX-FAST with the
armour AP-REQ, PA-PAC-OPTIONS); a KRB-ERROR's e-data gains ``e-data-value`` with ``kind`` METHOD-DATA / TYPED-DATA /
KERB-ERROR-DATA / octets (kpasswd's result code, RFC 3244). A value that does not decode gets ``value-error``
instead, so one odd PA-DATA never hides the rest of the message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

from pyasn1.codec.der import decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, univ, useful

from ..errors import KrbDecodeError
from .asn1_spec import (
    MESSAGES,
    PA_SPECS,
    ApReq,
    KerbErrorData,
    MethodData,
    PaFxFastReply,
    PaFxFastRequest,
    TypedDataEntry,
)
from .der import check_nesting, tlv

log = logging.getLogger(__name__)

__all__ = ["full_decode"]


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
    return _exact(raw, PA_SPECS[ptype])


def _padata(entries: list[dict[str, Any]], msg: int) -> None:
    for pa in entries:
        ptype, raw = pa["padata-type"], pa["padata-value"]
        if not raw or (ptype not in PA_SPECS and ptype not in (1, 3, 136)):  # unknown or opaque (PA-FX-COOKIE)
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
