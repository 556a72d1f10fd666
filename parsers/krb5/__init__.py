"""Kerberos V5 message decoding (RFC 4120 §5, RFC 3244, RFC 6113, MS-KILE, MS-SFU).

* :func:`decode_message` — one DER message -> the timeline fields (fast, bounded hand reader, :mod:`.der`);
* :func:`decode_kpasswd` — one RFC 3244 kpasswd request or reply (port 464) -> the same fields;
* :func:`full_decode` — one message -> a complete nested decode with pyasn1 (slow; for inspection and as an
  oracle);
* :func:`looks_like_kerberos` — a cheap first-bytes test for the capture layer.

Every decoder raises only :class:`~parsers.errors.KrbDecodeError`; a message recognised but not wholly readable is
returned with ``partial=True`` and whatever could be read.

Modules: :mod:`.der` (bounded DER reader), :mod:`.messages` and :mod:`.padata` (the timeline fields),
:mod:`.kpasswd` (RFC 3244 framing), :mod:`.asn1_spec` and :mod:`.asn1` (the pyasn1 RFC 4120 module and the complete
decode), :mod:`.constants` (code tables).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import KrbDecodeError

if TYPE_CHECKING:
    from .kpasswd import decode_kpasswd
    from .messages import decode_message

__all__ = ["KrbDecodeError", "decode_kpasswd", "decode_message", "full_decode", "looks_like_kerberos"]

_APP_FIRST = frozenset({0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x74, 0x75, 0x76, 0x7E})


def __getattr__(name: str) -> Any:
    """The decoders load on first use (PEP 562): the event-log readers need only :mod:`.constants`, and importing
    this package for it should not load the message decoders (about 10 ms at every start of the command)."""
    if name == "decode_message":
        from .messages import decode_message

        return decode_message
    if name == "decode_kpasswd":
        from .kpasswd import decode_kpasswd

        return decode_kpasswd
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def looks_like_kerberos(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` starts like a whole Kerberos message: a message's [APPLICATION n] octet, a definite DER
    length (at most four octets) that fits in ``data``, and inside exactly one SEQUENCE filling that length (DER
    leaves no room for anything else). Costs well under a microsecond; random bytes pass about once in 10^5."""
    n = len(data)
    if n < 4 or data[0] not in _APP_FIRST:
        return False
    outer = _length(data, 1, n)
    if outer is None:
        return False
    length, pos = outer
    if not 2 <= length <= n - pos or data[pos] != 0x30:
        return False
    inner = _length(data, pos + 1, n)
    return inner is not None and inner[0] + inner[1] == pos + length


def _length(data: bytes | bytearray | memoryview, pos: int, n: int) -> tuple[int, int] | None:
    """The DER length at ``pos``: (length, content start), or None when it is indefinite, too long or cut."""
    if pos >= n:
        return None
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    k = first & 0x7F
    if not 1 <= k <= 4 or pos + 1 + k > n:
        return None
    return int.from_bytes(data[pos + 1 : pos + 1 + k], "big"), pos + 1 + k


def full_decode(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """A complete decode of one message (see :func:`parsers.krb5.asn1.full_decode`); imports pyasn1 on first use."""
    from .asn1 import full_decode as _full_decode

    return _full_decode(data)
