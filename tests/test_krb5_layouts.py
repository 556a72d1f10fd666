"""The message readers' fast paths (parsers.krb5.padata: PA-DATA, EncryptedData, Ticket) against the layouts they
do not take: other component orders, extra or repeated components, long length forms, damage. Every layout gives
the values its construction says (or KrbDecodeError), the same as the usual layout (RFC 4120 §5.2.7, §5.2.9, §5.3;
X.690 §8.1.3: any definite length form is valid BER and the reader accepts it)."""

from __future__ import annotations

import pytest
from krb5_samples import app, ctx, der, gstr, integer, octs, pname, seq

from parsers.errors import KrbDecodeError
from parsers.krb5 import padata as p


def _long(tag: int, content: bytes) -> bytes:
    """An element with a two-octet length even when one would do."""
    return bytes((tag, 0x82)) + len(content).to_bytes(2, "big") + content


CIPHER = octs(b"\x5a" * 200)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (seq(ctx(0, integer(18)), ctx(1, integer(2)), ctx(2, CIPHER)), (18, 2)),
        (seq(ctx(0, integer(23)), ctx(2, CIPHER)), (23, None)),
        (seq(ctx(0, integer(-128)), ctx(1, integer(2**32 - 1)), ctx(2, CIPHER)), (-128, 2**32 - 1)),
        (seq(ctx(2, CIPHER), ctx(1, integer(7)), ctx(0, integer(17))), (17, 7)),  # any order
        (seq(ctx(0, integer(18)), ctx(1, integer(2)), ctx(2, CIPHER), ctx(3, integer(1))), (18, 2)),  # extension
        (seq(ctx(0, integer(18)), ctx(0, integer(3)), ctx(2, CIPHER)), (18, None)),  # repeated: first one kept
        (seq(ctx(0, integer(18)), _long(0xA1, integer(2)), ctx(2, CIPHER)), (18, 2)),
        (seq(ctx(0, integer(200)), ctx(2, CIPHER)), (200, None)),  # two-octet etype
        (seq(ctx(0, integer(18)), ctx(1, integer(2)), _long(0xA2, octs(b"\x01"))), (18, 2)),
    ],
)
def test_encdata_layouts(raw: bytes, want: tuple[int, int | None]) -> None:
    assert p.encdata(raw + b"\x00", 0, len(raw) + 1) == want


@pytest.mark.parametrize(
    "raw",
    [
        seq(ctx(0, integer(18)), ctx(1, integer(2)), ctx(2, CIPHER))[:-1],  # cipher cut
        seq(ctx(0, integer(18)), ctx(1, integer(2)), ctx(2, CIPHER), b"\x04\x05ab"),  # broken element after it
        seq(ctx(0, integer(18)), ctx(1, der(0x04, b"\x02")), ctx(2, CIPHER)),  # kvno not an INTEGER
        seq(ctx(1, integer(2)), ctx(2, CIPHER)),  # no etype
    ],
)
def test_encdata_damage(raw: bytes) -> None:
    with pytest.raises((KrbDecodeError, KeyError)):
        p.encdata(raw, 0, len(raw))


def _ticket(*components: bytes) -> bytes:
    return app(1, seq(*components))


ENC = ctx(3, seq(ctx(0, integer(18)), ctx(1, integer(4)), ctx(2, CIPHER)))
WANT = ("EXAMPLE.ORG", "krbtgt/EXAMPLE.ORG", 18, 4)


@pytest.mark.parametrize(
    "raw",
    [
        _ticket(ctx(0, integer(5)), ctx(1, gstr("EXAMPLE.ORG")), ctx(2, pname("krbtgt", "EXAMPLE.ORG")), ENC),
        _ticket(ctx(1, gstr("EXAMPLE.ORG")), ctx(0, integer(5)), ctx(2, pname("krbtgt", "EXAMPLE.ORG")), ENC),
        _ticket(ctx(0, integer(5)), ctx(1, gstr("EXAMPLE.ORG")), ctx(2, pname("krbtgt", "EXAMPLE.ORG")), ENC, ENC),
        _ticket(ctx(0, integer(5)), _long(0xA1, gstr("EXAMPLE.ORG")), ctx(2, pname("krbtgt", "EXAMPLE.ORG")), ENC),
        _ticket(ctx(0, integer(5)), ctx(1, gstr("EXAMPLE.ORG")), _long(0xA2, pname("krbtgt", "EXAMPLE.ORG")), ENC),
    ],
)
def test_ticket_layouts(raw: bytes) -> None:
    assert p._ticket(raw, 0, len(raw)) == WANT


def test_ticket_damage() -> None:
    good = _ticket(ctx(0, integer(5)), ctx(1, gstr("EXAMPLE.ORG")), ctx(2, pname("krbtgt", "EXAMPLE.ORG")), ENC)
    for cut in range(1, len(good)):
        with pytest.raises((KrbDecodeError, KeyError)):
            p._ticket(good[:cut], 0, cut)
    no_realm = _ticket(ctx(0, integer(5)), ctx(2, pname("krbtgt", "EXAMPLE.ORG")), ENC)
    with pytest.raises(KeyError):
        p._ticket(no_realm, 0, len(no_realm))


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (seq(ctx(1, integer(2)), ctx(2, octs(b"abc"))), (2, b"abc")),
        (seq(ctx(1, integer(149)), ctx(2, octs(b""))), (149, b"")),
        (seq(ctx(2, octs(b"abc")), ctx(1, integer(2))), (2, b"abc")),  # reversed
        (seq(ctx(1, integer(2)), _long(0xA2, octs(b"abc"))), (2, b"abc")),
        (seq(ctx(1, integer(2)), ctx(2, octs(b"abc")), ctx(3, integer(0))), (2, b"abc")),  # extra component
        (seq(ctx(1, integer(133))), (133, b"")),  # no value
        (seq(ctx(1, integer(2)), ctx(2, octs(b"x" * 300))), (2, b"x" * 300)),
    ],
)
def test_padata_entry_layouts(raw: bytes, want: tuple[int, bytes]) -> None:
    outer = seq(raw, raw)
    got = p.padata_entries(outer, 0, len(outer))
    assert [(t, outer[s:e]) for t, s, e in got] == [want, want]


def test_padata_damage() -> None:
    good = seq(seq(ctx(1, integer(2)), ctx(2, octs(b"abc"))))
    for cut in range(1, len(good)):
        with pytest.raises((KrbDecodeError, KeyError, IndexError)):
            p.padata_entries(good[:cut], 0, cut)
    value_not_octets = seq(seq(ctx(1, integer(2)), ctx(2, integer(5))))
    with pytest.raises(KrbDecodeError):
        p.padata_entries(value_not_octets, 0, len(value_not_octets))
