"""A small, bounded DER reader for Kerberos messages (X.690 §8.1-§8.3, §10; RFC 4120 §5.2 basic types).

This is the timeline's hot path, so it works on ``bytes`` plus integer offsets and never builds an object tree:
every reader takes ``(buf, start, stop)`` and returns plain values. Hostile input is the normal case (captures hold
fuzzers, truncated frames and non-Kerberos bytes on port 88), hence:

* every length is checked against the bytes that remain *before* anything is sliced (a 0xFFFFFFFF length costs
  nothing), indefinite lengths (BER only) are refused, lengths take at most four octets;
* nothing recurses without a bound: the message decoders follow the fixed RFC 4120 schema, and :func:`check_nesting`
  walks an arbitrary tree with an explicit stack and a depth limit;
* text is decoded leniently (GeneralString has no defined charset; Windows and MIT send UTF-8) and control
  characters are replaced, because the timeline uses ``\\x1e``/``\\x1f`` as separators and terminals interpret
  escapes;
* GeneralizedTime becomes integer microseconds since the epoch (UTC) with calendar arithmetic
  (:mod:`parsers.krb5.ktime`), never a naive ``datetime``;
* the only exception that leaves this module is :class:`~parsers.errors.KrbDecodeError`.
"""

from __future__ import annotations

import logging
from typing import Final

from ..errors import KrbDecodeError
from ..memo import Memo
from .ktime import parse_gtime

log = logging.getLogger(__name__)

__all__ = [
    "MAX_DEPTH",
    "KrbDecodeError",
    "boolean",
    "check_nesting",
    "clean_text",
    "expect",
    "fields",
    "flags",
    "gtime",
    "integer",
    "octets",
    "principal",
    "seq_items",
    "text",
    "tlv",
    "uint32",
]

#: Deepest nesting :func:`check_nesting` accepts. A real Kerberos message nests about 12 levels (AS-REQ ->
#: req-body -> additional-tickets -> Ticket -> enc-part -> cipher); 32 leaves room for PKINIT and FAST inner types.
MAX_DEPTH: Final = 32
#: Most TLVs :func:`check_nesting` visits; a 64 KB message cannot hold more than 32 768 anyway.
MAX_ELEMENTS: Final = 65_536
#: Longest INTEGER content accepted: Kerberos integers are Int32/UInt32/Microseconds (RFC 4120 §5.2.4); nine octets
#: still admit a 64-bit unsigned value with its sign octet.
MAX_INT_OCTETS: Final = 9

TAG_BOOLEAN: Final = 0x01
TAG_INTEGER: Final = 0x02
TAG_BIT_STRING: Final = 0x03
TAG_OCTET_STRING: Final = 0x04
TAG_SEQUENCE: Final = 0x30
TAG_GENERALIZED_TIME: Final = 0x18
#: Tags a KerberosString may arrive with: GeneralString (RFC 4120), and what lenient peers send instead.
TEXT_TAGS: Final = frozenset({0x1B, 0x0C, 0x16, 0x13, 0x1A, 0x14, 0x04})

_REPLACEMENT: Final = "\ufffd"
#: C0 controls, DEL, C1 controls and the Unicode line/paragraph separators: none belongs in a principal name, and
#: \x1e/\x1f are the timeline's own separators.
_CONTROL_MAP: Final[dict[int, str]] = {
    **{c: _REPLACEMENT for c in range(0x20)},
    0x7F: _REPLACEMENT,
    **{c: _REPLACEMENT for c in range(0x80, 0xA0)},
    0x2028: _REPLACEMENT,
    0x2029: _REPLACEMENT,
}


def tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read the tag and length at ``pos``; return ``(tag, content_start, content_stop)``.

    ``tag`` is the identifier octet for low tag numbers (all Kerberos tags are below 31); a high-tag-number form
    gives ``first_octet << 16 | number``, which matches no Kerberos tag. Raises :class:`KrbDecodeError` when the
    element does not fit in ``[pos, end)``.
    """
    # Fast path (almost every element of a real message): low tag number, one- to three-octet length. It is the
    # reader's innermost call (about 40 per message), so it avoids everything the general path does.
    avail = end - pos
    if avail >= 2:
        tag = buf[pos]
        n = buf[pos + 1]
        if tag & 0x1F != 0x1F:
            if n < 0x80:
                stop = pos + 2 + n
                if stop <= end:
                    return tag, pos + 2, stop
            elif n == 0x81 and avail >= 3:
                stop = pos + 3 + buf[pos + 2]
                if stop <= end:
                    return tag, pos + 3, stop
            elif n == 0x82 and avail >= 4:
                stop = pos + 4 + (buf[pos + 2] << 8 | buf[pos + 3])
                if stop <= end:
                    return tag, pos + 4, stop
    return _tlv_general(buf, pos, end)


def _tlv_general(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """:func:`tlv` for every case, with the reasons for refusing."""
    if end - pos < 2:
        raise KrbDecodeError(f"truncated element at offset {pos}")
    tag = buf[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        number = 0
        for _ in range(4):
            if pos >= end:
                raise KrbDecodeError("truncated high tag number")
            octet = buf[pos]
            pos += 1
            number = (number << 7) | (octet & 0x7F)
            if not octet & 0x80:
                break
        else:
            raise KrbDecodeError("tag number longer than four octets")
        tag = tag << 16 | number
        if pos >= end:
            raise KrbDecodeError("truncated length")
    n = buf[pos]
    pos += 1
    if n < 0x80:
        length = n
    elif n == 0x80:
        raise KrbDecodeError(f"indefinite length at offset {pos - 1} (not DER)")
    else:
        k = n & 0x7F
        if k > 4:
            raise KrbDecodeError(f"length of {k} octets at offset {pos - 1}")
        if end - pos < k:
            raise KrbDecodeError("truncated length")
        length = int.from_bytes(buf[pos : pos + k], "big")
        pos += k
    if length > end - pos:
        raise KrbDecodeError(f"length {length} exceeds the {end - pos} bytes left at offset {pos}")
    return tag, pos, pos + length


def expect(buf: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """Read one element that must carry ``tag``; return its content range ``(start, stop)``."""
    if end - pos >= 4 and buf[pos] == tag:  # tlv()'s fast path inlined: expect() runs 6-20 times per message
        n = buf[pos + 1]
        if n < 0x80:
            if pos + 2 + n <= end:
                return pos + 2, pos + 2 + n
        elif n == 0x82:  # tickets, authenticators, AP-REQs: 256 to 65 535 octets
            stop = pos + 4 + (buf[pos + 2] << 8 | buf[pos + 3])
            if stop <= end:
                return pos + 4, stop
        elif n == 0x81:
            stop = pos + 3 + buf[pos + 2]
            if stop <= end:
                return pos + 3, stop
    got, start, stop = tlv(buf, pos, end)
    if got != tag:
        raise KrbDecodeError(f"tag 0x{got:02x} where 0x{tag:02x} was expected at offset {pos}")
    return start, stop


def fields(buf: bytes, start: int, stop: int) -> dict[int, tuple[int, int]]:
    """The EXPLICIT context-tagged components of a SEQUENCE's content: ``{n: (start, stop)}`` of each ``[n]``.

    The range is the content of the ``[n]`` wrapper, i.e. the inner element's TLV, ready for the typed readers.
    Other elements are skipped; a repeated tag keeps its first occurrence.
    """
    out: dict[int, tuple[int, int]] = {}
    pos = start
    while pos < stop:
        # tlv()'s fast path inlined: this loop runs for every SEQUENCE the reader opens.
        tag = buf[pos]
        n = buf[pos + 1] if stop - pos >= 2 else 0x80
        if n < 0x80 and tag & 0x1F != 0x1F and pos + 2 + n <= stop:
            s = pos + 2
            pos = s + n
        else:
            tag, s, pos = tlv(buf, pos, stop)
        if tag & 0xE0 == 0xA0 and tag & 0x1F not in out:
            out[tag & 0x1F] = (s, pos)
    return out


def fields_prefix(buf: bytes, start: int, stop: int) -> tuple[dict[int, tuple[int, int]], bool]:
    """Like :func:`fields` but stops at the first broken element: ``(components read so far, complete?)``.

    A component whose header is readable but whose length runs past ``stop`` (a message cut short) is kept with
    its content range cut at ``stop``, so the caller can still read what precedes the cut inside it.
    """
    out: dict[int, tuple[int, int]] = {}
    pos = start
    try:
        while pos < stop:
            tag = buf[pos]  # tlv()'s fast path inlined for [n] with short, 0x81 or 0x82 lengths (a message's parts)
            if 0xA0 <= tag < 0xBF and stop - pos >= 4:
                n = buf[pos + 1]
                if n < 0x80:
                    s = pos + 2
                    e = s + n
                elif n == 0x81:
                    s = pos + 3
                    e = s + buf[pos + 2]
                elif n == 0x82:
                    s = pos + 4
                    e = s + (buf[pos + 2] << 8 | buf[pos + 3])
                else:
                    e = stop + 1
                if e <= stop:
                    pos = e
                    if tag - 0xA0 not in out:
                        out[tag - 0xA0] = (s, e)
                    continue
            tag, s, pos = tlv(buf, pos, stop)
            if tag & 0xE0 == 0xA0 and tag & 0x1F not in out:
                out[tag & 0x1F] = (s, pos)
    except KrbDecodeError:
        tag = buf[pos]
        if tag & 0xE0 == 0xA0 and tag & 0x1F != 0x1F and stop - pos >= 2:
            n = buf[pos + 1]
            k = 0 if n < 0x80 else n & 0x7F
            if n != 0x80 and k <= 4 and pos + 2 + k < stop:
                out.setdefault(tag & 0x1F, (pos + 2 + k, stop))
        return out, False
    return out, True


def seq_items(buf: bytes, start: int, stop: int) -> list[tuple[int, int, int]]:
    """The elements of the SEQUENCE (OF) whose TLV spans ``[start, stop)``: ``[(tag, start, stop), ...]``."""
    s, e = expect(buf, start, stop, TAG_SEQUENCE)
    items: list[tuple[int, int, int]] = []
    while s < e:
        tag = buf[s]  # tlv()'s short-form fast path inlined
        n = buf[s + 1] if e - s >= 2 else 0x80
        if n < 0x80 and tag & 0x1F != 0x1F and s + 2 + n <= e:
            items.append((tag, s + 2, s + 2 + n))
            s += 2 + n
        else:
            item = tlv(buf, s, e)
            items.append(item)
            s = item[2]
    return items


def integer(buf: bytes, start: int, stop: int) -> int:
    """The INTEGER at ``start`` (signed, as Int32 etypes and name types are)."""
    if stop - start >= 3 and buf[start] == TAG_INTEGER:
        n = buf[start + 1]
        if n == 1:  # one octet: most of them
            v = buf[start + 2]
            return v - 256 if v & 0x80 else v
        if n == 2 and stop - start >= 4:  # two octets: padata types 128-32767 (PA-PAC-REQUEST, FX-FAST, ...)
            v = buf[start + 2] << 8 | buf[start + 3]
            return v - 0x10000 if v & 0x8000 else v
        if 2 < n <= 4 and stop - start >= 2 + n:  # nonces, error codes, kvnos
            return int.from_bytes(buf[start + 2 : start + 2 + n], "big", signed=True)
    s, e = expect(buf, start, stop, TAG_INTEGER)
    if not 0 < e - s <= MAX_INT_OCTETS:
        raise KrbDecodeError(f"INTEGER of {e - s} octets")
    return int.from_bytes(buf[s:e], "big", signed=True)


def uint32(buf: bytes, start: int, stop: int) -> int:
    """A UInt32 (nonce, kvno): some encoders emit it as a negative Int32, so fold that back to 0..2**32-1."""
    value = integer(buf, start, stop)
    if -0x80000000 <= value < 0:
        return value & 0xFFFFFFFF
    return value


def boolean(buf: bytes, start: int, stop: int) -> bool:
    """The BOOLEAN at ``start`` (any non-zero octet is true, as BER allows)."""
    s, e = expect(buf, start, stop, TAG_BOOLEAN)
    if e - s != 1:
        raise KrbDecodeError(f"BOOLEAN of {e - s} octets")
    return buf[s] != 0


def flags(buf: bytes, start: int, stop: int) -> int:
    """KerberosFlags (a BIT STRING, RFC 4120 §5.2.8) as a 32-bit int: bit 0 is the MSB of the first octet.

    Bits past the 32nd are dropped; a shorter string is padded with zero bits.
    """
    if stop - start >= 7 and buf[start] == TAG_BIT_STRING and buf[start + 1] == 5:  # the usual 32 bits: inline
        return int.from_bytes(buf[start + 3 : start + 7], "big")
    s, e = expect(buf, start, stop, TAG_BIT_STRING)
    if e - s < 1:
        raise KrbDecodeError("BIT STRING without its unused-bits octet")
    body = buf[s + 1 : min(e, s + 5)]
    return int.from_bytes(body, "big") << (8 * (4 - len(body)))


def octets(buf: bytes, start: int, stop: int) -> tuple[int, int]:
    """The content range of the OCTET STRING at ``start`` (not copied)."""
    return expect(buf, start, stop, TAG_OCTET_STRING)


def clean_text(value: str) -> str:
    """``value`` with control characters (C0, DEL, C1, U+2028/9) replaced by U+FFFD."""
    if value.isprintable():
        return value
    return value.translate(_CONTROL_MAP)


def decode_text(raw: bytes) -> str:
    """Bytes of a KerberosString as text: UTF-8, else Latin-1 (never fails), control characters replaced."""
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        value = raw.decode("latin-1")
    return clean_text(value)


def text(buf: bytes, start: int, stop: int) -> str:
    """The KerberosString (GeneralString, or a lenient peer's other string type) at ``start``, cleaned."""
    if stop - start >= 2 and buf[start] == 0x1B:  # GeneralString, short form: almost every realm
        n = buf[start + 1]
        if n < 0x80 and start + 2 + n <= stop:
            return _TEXTS[buf[start + 2 : start + 2 + n]]  # realms repeat in every message
    tag, s, e = tlv(buf, start, stop)
    if tag not in TEXT_TAGS:
        raise KrbDecodeError(f"tag 0x{tag:02x} where a string was expected at offset {start}")
    return decode_text(buf[s:e])


#: Decoded values by their encoding, for the readers whose values repeat across a capture (a realm's services and
#: users, the KDC's far-future ``till``): a dict lookup instead of a parse (:class:`parsers.memo.Memo`).
_PRINCIPALS = Memo()
_TIMES = Memo(parse_gtime)
#: Short-form GeneralStrings (at most 127 octets, so the memo stays small whatever the input).
_TEXTS = Memo(decode_text)


def principal(buf: bytes, start: int, stop: int) -> str:
    """A PrincipalName (RFC 4120 §5.2.2) as its name-string components joined by ``/``."""
    key = buf[start:stop]
    value = _PRINCIPALS.get(key)
    if value is None:  # read from ``buf``, so that an error names the offset in the message
        value = _PRINCIPALS.keep(key, _principal(buf, start, stop))
    return value


def _principal(buf: bytes, start: int, stop: int) -> str:
    f = fields(buf, *expect(buf, start, stop, TAG_SEQUENCE))
    rng = f.get(1)
    if rng is None:
        raise KrbDecodeError("PrincipalName without name-string")
    parts = []
    for tag, s, e in seq_items(buf, *rng):
        if tag not in TEXT_TAGS:
            raise KrbDecodeError(f"name component with tag 0x{tag:02x}")
        parts.append(decode_text(buf[s:e]))
    return "/".join(parts)


def gtime(buf: bytes, start: int, stop: int) -> int:
    """The KerberosTime (GeneralizedTime) at ``start`` as microseconds since the epoch, UTC."""
    s, e = expect(buf, start, stop, TAG_GENERALIZED_TIME)
    if e - s > 64:
        raise KrbDecodeError(f"GeneralizedTime of {e - s} octets")
    return _TIMES[buf[s:e]]


def check_nesting(buf: bytes, start: int = 0, stop: int | None = None, max_depth: int = MAX_DEPTH) -> int:
    """Walk every element in ``buf[start:stop]`` without recursion; return how many there are.

    Raises :class:`KrbDecodeError` for a bad length, nesting deeper than ``max_depth`` or more than
    :data:`MAX_ELEMENTS` elements. Primitive contents (OCTET STRINGs holding nested messages) are not entered.
    Run it before handing bytes to a recursive decoder such as pyasn1.
    """
    end = len(buf) if stop is None else stop
    stack: list[int] = []
    pos, limit, count = start, end, 0
    while True:
        while pos >= limit:
            if not stack:
                return count
            pos = limit
            limit = stack.pop()
        tag, s, e = tlv(buf, pos, limit)
        count += 1
        if count > MAX_ELEMENTS:
            raise KrbDecodeError(f"more than {MAX_ELEMENTS} elements")
        if (tag >> 16 or tag) & 0x20 and e > s:
            if len(stack) >= max_depth:
                raise KrbDecodeError(f"nesting deeper than {max_depth}")
            stack.append(limit)
            pos, limit = s, e
        else:
            pos = e
