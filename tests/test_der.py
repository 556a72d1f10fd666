"""The bounded DER reader (parsers.krb5.der): X.690 encodings written out by hand, hostile lengths and nesting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from krb5_samples import ctx, der, gstr, integer, kflags, pname, seq

from parsers.errors import KrbDecodeError
from parsers.krb5 import der as d
from parsers.krb5 import looks_like_kerberos
from parsers.record import from_datetime


def test_tlv_short_and_long_lengths() -> None:
    assert d.tlv(b"\x02\x01\x05", 0, 3) == (0x02, 2, 3)
    long = b"\x04\x81\x80" + b"x" * 128
    assert d.tlv(long, 0, len(long)) == (0x04, 3, 131)
    big = b"\x04\x82\x01\x00" + b"y" * 256
    assert d.tlv(big, 0, len(big)) == (0x04, 4, 260)
    # Bytes after the element are not its business.
    assert d.tlv(b"\x05\x00\xff\xff", 0, 4) == (0x05, 2, 2)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "truncated"),
        (b"\x30", "truncated"),
        (b"\x30\x05\x01", "exceeds"),
        (b"\x30\x84\xff\xff\xff\xff", "exceeds"),  # 4 GiB claimed: refused before any slicing
        (b"\x30\x85\x01\x00\x00\x00\x00\x00", "octets"),  # a length of 5 octets
        (b"\x30\x80\x00\x00", "indefinite"),  # BER only
        (b"\x30\x82\x01", "truncated"),
        (b"\x1f\xff\xff\xff\xff\x7f\x00", "four octets"),  # high tag number without end
        (b"\x1f\x81", "truncated"),
    ],
)
def test_tlv_rejects(raw: bytes, why: str) -> None:
    with pytest.raises(KrbDecodeError, match=why):
        d.tlv(raw, 0, len(raw))


def test_tlv_respects_the_enclosing_stop() -> None:
    # The element fits in the buffer but not in the range it must stay inside.
    raw = b"\x30\x03\x02\x01\x05\xff"
    with pytest.raises(KrbDecodeError):
        d.tlv(raw, 2, 4)


def test_integers() -> None:
    for v in (0, 1, 127, 128, 255, 256, -1, -128, -129, 2**31 - 1, -(2**31), 2**32 - 1):
        raw = integer(v)
        assert d.integer(raw, 0, len(raw)) == v
    assert d.uint32(integer(-1), 0, 3) == 0xFFFFFFFF  # a nonce sent as a negative Int32
    raw = integer(-(2**31))
    assert d.uint32(raw, 0, len(raw)) == 2**31
    for bad in (b"\x02\x00", b"\x02\x0a" + b"\x01" * 10, b"\x04\x01\x00"):
        with pytest.raises(KrbDecodeError):
            d.integer(bad, 0, len(bad))


def test_integer_widths_against_int_from_bytes() -> None:
    # integer() reads 1-4 content octets inline; every width and sign boundary must agree with Python's own
    # decoding of the same octets, and a length that runs past ``stop`` must still be refused.
    for n in range(1, 10):
        for v in {0, 1, -1, 2 ** (8 * n - 1) - 1, -(2 ** (8 * n - 1)), 0x80 << (8 * (n - 1)) >> 1}:
            body = v.to_bytes(n, "big", signed=True)
            raw = b"\x02" + bytes([n]) + body
            assert d.integer(raw, 0, len(raw)) == int.from_bytes(body, "big", signed=True)
            with pytest.raises(KrbDecodeError):
                d.integer(raw, 0, len(raw) - 1)
            assert d.integer(raw + b"\xff", 0, len(raw) + 1) == int.from_bytes(body, "big", signed=True)


def test_boolean_and_flags() -> None:
    assert d.boolean(b"\x01\x01\xff", 0, 3) is True
    assert d.boolean(b"\x01\x01\x00", 0, 3) is False
    with pytest.raises(KrbDecodeError):
        d.boolean(b"\x01\x02\x00\x00", 0, 4)
    raw = kflags(0x40810010)
    assert d.flags(raw, 0, len(raw)) == 0x40810010
    assert d.flags(b"\x03\x02\x00\x80", 0, 4) == 0x80000000  # short string padded with zero bits
    assert d.flags(b"\x03\x06\x00\x00\x00\x00\x01\xff", 0, 8) == 1  # bits past the 32nd dropped
    with pytest.raises(KrbDecodeError):
        d.flags(b"\x03\x00", 0, 2)


def test_text_and_principal() -> None:
    assert d.text(gstr("EXAMPLE.TEST"), 0, 14) == "EXAMPLE.TEST"
    utf8 = gstr("Jürgen", tag=0x0C)  # UTF8String from a lenient peer
    assert d.text(utf8, 0, len(utf8)) == "Jürgen"
    latin = gstr(b"J\xfcrgen")  # not UTF-8: read as Latin-1, never fails
    assert d.text(latin, 0, len(latin)) == "Jürgen"
    ctl = gstr("a\x1fb\x1ec\nd")  # the timeline's separators and newlines are replaced
    assert d.text(ctl, 0, len(ctl)) == "a\ufffdb\ufffdc\ufffdd"
    with pytest.raises(KrbDecodeError):
        d.text(integer(5), 0, 3)
    raw = pname("HTTP", "web.example.test", name_type=2)
    assert d.principal(raw, 0, len(raw)) == "HTTP/web.example.test"
    no_strings = seq(ctx(0, integer(1)))
    with pytest.raises(KrbDecodeError):
        d.principal(no_strings, 0, len(no_strings))


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("20261125110443Z", datetime(2026, 11, 25, 11, 4, 43, tzinfo=UTC)),
        ("20370913024805Z", datetime(2037, 9, 13, 2, 48, 5, tzinfo=UTC)),  # Windows' "no end"
        ("19700101000000Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("20240229235959.5Z", datetime(2024, 2, 29, 23, 59, 59, 500000, tzinfo=UTC)),
        ("20001231120000.123456789Z", datetime(2000, 12, 31, 12, 0, 0, 123456, tzinfo=UTC)),
        ("19691231235959Z", datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_generalized_time(text: str, expect: datetime) -> None:
    raw = der(0x18, text.encode())
    assert d.gtime(raw, 0, len(raw)) == from_datetime(expect)


@pytest.mark.parametrize(
    "text", ["20261125110443", "2026112511044Z", "20261325110443Z", "20230229000000Z", "20261125250000Z", "2026-11-25Z",
             "20261125110443.Z", "20261125110443+0100"],
)  # fmt: skip
def test_generalized_time_rejects(text: str) -> None:
    raw = der(0x18, text.encode())
    with pytest.raises(KrbDecodeError):
        d.gtime(raw, 0, len(raw))


def test_fields_and_prefix() -> None:
    body = ctx(0, integer(5)) + ctx(1, integer(30)) + ctx(1, integer(99)) + b"\x05\x00" + ctx(3, integer(7))
    f = d.fields(body, 0, len(body))
    assert sorted(f) == [0, 1, 3]
    assert d.integer(body, *f[1]) == 30  # a repeated tag keeps its first occurrence
    broken = body + b"\xa4\x05\x02\x01"
    got, complete = d.fields_prefix(broken, 0, len(broken))
    # [4] claims 5 octets and has 2: kept, cut at the end, so what precedes the cut inside it can still be read.
    assert sorted(got) == [0, 1, 3, 4] and complete is False
    assert got[4] == (len(body) + 2, len(broken))
    for cut_header in (body + b"\xa4", body + b"\xa4\x82\x01", body + b"\x30\x05\x02"):
        got, complete = d.fields_prefix(cut_header, 0, len(cut_header))
        assert sorted(got) == [0, 1, 3] and complete is False
    with pytest.raises(KrbDecodeError):
        d.fields(broken, 0, len(broken))


def test_fields_prefix_length_forms() -> None:
    # [n] with one-, 0x81- and 0x82-octet lengths, a repeated tag, a universal element, a high tag number and a
    # three-octet length: fields_prefix() gives the ranges fields() gives, and stops the same way at a bad length.
    body = (
        ctx(0, integer(5))
        + ctx(1, gstr("x" * 200))
        + ctx(2, gstr("y" * 300))
        + ctx(1, integer(99))
        + b"\x05\x00"
        + b"\xbf\x1f\x03\x02\x01\x01"
        + b"\xa5\x83\x00\x00\x03\x02\x01\x07"
        + b"\xa6\x81\x03\x02\x01\x08"
    )
    f = d.fields(body, 0, len(body))
    assert d.fields_prefix(body, 0, len(body)) == (f, True)
    assert sorted(f) == [0, 1, 2, 5, 6]
    assert d.text(body, *f[1]) == "x" * 200 and d.text(body, *f[2]) == "y" * 300
    assert d.integer(body, *f[5]) == 7 and d.integer(body, *f[6]) == 8
    for cut in range(1, len(body)):
        got, complete = d.fields_prefix(body[:cut], 0, cut)
        assert complete is False or d.fields(body[:cut], 0, cut) == got
        assert all(s <= e <= cut for s, e in got.values())
    over = b"\xa2\x82\x01\x00" + b"\x00" * 10  # claims 256 octets, has 10: cut at the end, incomplete
    assert d.fields_prefix(over, 0, len(over)) == ({2: (4, len(over))}, False)


def test_expect_length_forms() -> None:
    # expect() reads short, 0x81 and 0x82 lengths inline: the content range must be what tlv() gives, a length past
    # the range or a different tag must raise, and a minimal element (2 octets) still works.
    for size in (0, 5, 127, 128, 255, 256, 4000):
        raw = der(0x04, b"\x07" * size)
        assert d.expect(raw + b"\x00", 0, len(raw) + 1, 0x04) == d.tlv(raw, 0, len(raw))[1:]
        with pytest.raises(KrbDecodeError):
            d.expect(raw, 0, len(raw) - 1 if size else 1, 0x04)
        with pytest.raises(KrbDecodeError):
            d.expect(raw, 0, len(raw), 0x30)
    assert d.expect(b"\x30\x00", 0, 2, 0x30) == (2, 2)
    assert d.expect(b"\x04\x83\x00\x00\x01\xaa", 0, 6, 0x04) == (5, 6)  # three-octet length: general path


def test_seq_items() -> None:
    raw = seq(integer(18), integer(17), integer(-128))
    items = d.seq_items(raw, 0, len(raw))
    assert [d.integer(raw, s - 2, e) for _t, s, e in items] == [18, 17, -128]


def _nest(depth: int, tag: int = 0x30) -> bytes:
    raw = b""
    for _ in range(depth):
        raw = der(tag, raw)
    return raw


def test_check_nesting_counts_and_limits() -> None:
    assert d.check_nesting(seq(integer(1), seq(integer(2)))) == 4
    assert d.check_nesting(_nest(d.MAX_DEPTH)) == d.MAX_DEPTH
    with pytest.raises(KrbDecodeError, match="nesting"):
        d.check_nesting(_nest(d.MAX_DEPTH + 2))
    with pytest.raises(KrbDecodeError, match="nesting"):
        d.check_nesting(_nest(5000, 0xA0))  # context tags nest the same way; no recursion, no RecursionError
    with pytest.raises(KrbDecodeError, match="exceeds"):
        d.check_nesting(b"\x30\x03\x02\x05\x01")  # inner length past its parent's end


def test_check_nesting_element_limit() -> None:
    many = der(0x30, b"\x05\x00" * (d.MAX_ELEMENTS + 1))
    with pytest.raises(KrbDecodeError, match="elements"):
        d.check_nesting(many)


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        (bytes.fromhex("6a81b63081b3a103020105"), False),  # claims 182 octets, has 9
        (bytes.fromhex("6a0330010500"), True),
        (bytes.fromhex("7e0330010500"), True),
        (bytes.fromhex("300330010500"), False),  # not an application tag
        (bytes.fromhex("6a03020105"), False),  # no SEQUENCE inside
        (bytes.fromhex("6a850000000330"), False),  # five length octets
        (bytes.fromhex("6a80300000"), False),  # indefinite
        (bytes.fromhex("6a053001050000"), False),  # the SEQUENCE does not fill the message
        (bytes.fromhex("6a0430010500"), False),  # ... nor overflow it
        (bytes.fromhex("6a81033001050000"), True),  # long form for a short length (BER, but harmless)
        (b"\x6a", False),
        (b"", False),
    ],
)
def test_looks_like_kerberos(raw: bytes, expect: bool) -> None:
    assert looks_like_kerberos(raw) is expect


def test_looks_like_kerberos_rarely_fooled_by_random_bytes() -> None:
    import random

    rng = random.Random(4120)
    hits = sum(looks_like_kerberos(rng.randbytes(rng.randrange(4, 200))) for _ in range(100_000))
    assert hits <= 5
