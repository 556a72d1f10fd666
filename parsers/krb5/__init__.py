"""Kerberos V5 message decoding (RFC 4120 §5, RFC 3244, RFC 6113, MS-KILE, MS-SFU).

* :func:`decode_message` — one DER message -> the timeline fields (fast, bounded hand reader, :mod:`.der`);
* :func:`decode_kpasswd` — one RFC 3244 kpasswd request or reply (port 464) -> the same fields;
* :func:`full_decode` — one message -> a complete nested decode with pyasn1 (slow; for inspection and as an
  oracle);
* :func:`looks_like_kerberos` — a cheap first-bytes test for the capture layer.

Every decoder raises only :class:`~parsers.errors.KrbDecodeError`.
"""

from __future__ import annotations

from typing import Any

from ..errors import KrbDecodeError
from .kpasswd import decode_kpasswd
from .messages import decode_message

__all__ = ["KrbDecodeError", "decode_kpasswd", "decode_message", "full_decode", "looks_like_kerberos"]

_APP_FIRST = frozenset({0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x74, 0x75, 0x76, 0x7E})


def looks_like_kerberos(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` starts like a Kerberos message: a message's [APPLICATION n] octet, a DER length that fits
    in ``data`` (definite, at most four octets) and a SEQUENCE inside. Costs a few hundred nanoseconds."""
    n = len(data)
    if n < 4 or data[0] not in _APP_FIRST:
        return False
    first = data[1]
    if first < 0x80:
        length, pos = first, 2
    elif 0x81 <= first <= 0x84:
        k = first & 0x7F
        if n < 2 + k + 2:
            return False
        length, pos = int.from_bytes(data[2 : 2 + k], "big"), 2 + k
    else:
        return False
    return 2 <= length <= n - pos and data[pos] == 0x30


def full_decode(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """A complete decode of one message (see :func:`parsers.krb5.asn1.full_decode`); imports pyasn1 on first use."""
    from .asn1 import full_decode as _full_decode

    return _full_decode(data)
