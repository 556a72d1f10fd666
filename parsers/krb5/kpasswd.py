"""Kerberos change/set password messages on port 464 (RFC 3244 §2; MIT's 0x0001 change-password variant).

Request::

    message length (2) | version (2: 0x0001 change, 0xff80 RFC 3244 set) | AP-REQ length (2) | AP-REQ | KRB-PRIV

Reply::

    message length (2) | version (2: 0x0001) | AP-REP length (2) | AP-REP | KRB-PRIV
                                            | 0                  |        | KRB-ERROR

Some servers answer a request they cannot parse with a bare KRB-ERROR, without this framing; that is accepted too.
The result code travels inside the encrypted KRB-PRIV of a normal reply, so it is visible only in a KRB-ERROR
reply, whose e-data is the 2-octet result code followed by a UTF-8 result string (RFC 3244 §2).

:func:`decode_kpasswd` returns the same keys as :func:`parsers.krb5.messages.decode_message`, with msg_type
``KPASSWD-REQ`` / ``KPASSWD-REP`` and phase ``KPASSWD``: a request carries the AP-REQ's ticket fields
(``kadmin/changepw``), a reply the AP-REP's etype or the KRB-ERROR's code, text and times.
"""

from __future__ import annotations

import logging
from typing import Final

from ..errors import KrbDecodeError
from .der import TAG_SEQUENCE, expect, fields, octets, tlv
from .messages import DECODE_ERRORS, decode_message

log = logging.getLogger(__name__)

__all__ = ["KPASSWD_VERSIONS", "decode_kpasswd"]

#: 0x0001: the original change-password protocol (request and every reply); 0xff80: RFC 3244 set-password request.
KPASSWD_VERSIONS: Final = frozenset({0x0001, 0xFF80})
_HEADER: Final = 6
_AP_REQ: Final = 0x6E
_AP_REP: Final = 0x6F
_KRB_PRIV: Final = 0x75
_KRB_ERROR: Final = 0x7E


def _result_code(buf: bytes) -> int | None:
    """The kpasswd result code at the front of a KRB-ERROR's e-data ([12] OCTET STRING), if it has one."""
    seq = fields(buf, *expect(buf, *expect(buf, 0, len(buf), _KRB_ERROR), TAG_SEQUENCE))
    rng = seq.get(12)
    if rng is None:
        return None
    s, e = octets(buf, *rng)
    if e - s < 2 or buf[s] == TAG_SEQUENCE:
        return None  # no code, or a METHOD-DATA / KERB-ERROR-DATA from a KDC-style error
    return int.from_bytes(buf[s : s + 2], "big")


def _error_reply(buf: bytes) -> dict[str, object]:
    r = decode_message(buf)
    if r["msg_type"] != "KRB-ERROR":
        raise KrbDecodeError(f"kpasswd reply holds a {r['msg_type']} where a KRB-ERROR was expected")
    try:
        r["kpasswd_result"] = _result_code(buf)
    except DECODE_ERRORS as exc:
        log.debug("kpasswd e-data: %s", exc)
        r["partial"] = True
    return r


def _check_inner(r: dict[str, object], buf: bytes, tag: int) -> None:
    """The message after the AP-REQ/AP-REP must be a complete element with ``tag``; otherwise mark ``r`` partial."""
    try:
        got, _s, e = tlv(buf, 0, len(buf))
        if got != tag or e != len(buf):
            raise KrbDecodeError(f"kpasswd inner message 0x{got:02x} of {e} of {len(buf)} octets")
        decode_message(buf)
    except DECODE_ERRORS as exc:
        log.debug("kpasswd inner message: %s", exc)
        r["partial"] = True


def decode_kpasswd(data: bytes | bytearray | memoryview) -> dict[str, object]:
    """Decode one kpasswd request or reply (the UDP payload, or a TCP record without its 4-octet record mark).

    Returns the keys of :func:`~parsers.krb5.messages.decode_message`; ``kpasswd_result`` is set only when the
    reply is a KRB-ERROR whose e-data starts with the result code. Raises :class:`KrbDecodeError` when the framing
    is wrong or the AP-REQ/AP-REP/KRB-ERROR cannot be recognised; a bad KRB-PRIV only makes the result partial.
    """
    buf = data if type(data) is bytes else bytes(data)
    if buf[:1] == bytes((_KRB_ERROR,)):
        r = _error_reply(buf)
        request = False
    else:
        if len(buf) < _HEADER:
            raise KrbDecodeError(f"kpasswd message of {len(buf)} octets")
        length = int.from_bytes(buf[0:2], "big")
        version = int.from_bytes(buf[2:4], "big")
        ap_len = int.from_bytes(buf[4:6], "big")
        if version not in KPASSWD_VERSIONS:
            raise KrbDecodeError(f"kpasswd version 0x{version:04x}")
        # Octets after ``length`` (Ethernet padding, a second message) are ignored, as decode_message does.
        if not _HEADER <= length <= len(buf):
            raise KrbDecodeError(f"kpasswd message length {length} with {len(buf)} octets present")
        if _HEADER + ap_len > length:
            raise KrbDecodeError(f"kpasswd AP length {ap_len} exceeds the message length {length}")
        ap = buf[_HEADER : _HEADER + ap_len]
        rest = buf[_HEADER + ap_len : length]
        request = ap_len > 0 and ap[0] == _AP_REQ
        if ap_len == 0:
            r = _error_reply(rest)
        elif ap[0] in (_AP_REQ, _AP_REP):
            r = decode_message(ap)
            _check_inner(r, rest, _KRB_PRIV)
        else:
            raise KrbDecodeError(f"kpasswd AP field starts with 0x{ap[0]:02x}")
    r["msg_type"] = "KPASSWD-REQ" if request else "KPASSWD-REP"
    r["phase"] = "KPASSWD"
    return r
