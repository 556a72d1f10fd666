"""The DER reader's memos (parsers.krb5.der: principals and GeneralizedTimes by their encoding): the same values as
parsing, wherever the encoding sits, bounded, and failures never remembered."""

from __future__ import annotations

import pytest

from parsers.errors import KrbDecodeError
from parsers.krb5 import der


def _principal(*parts: bytes, name_type: int = 1) -> bytes:
    items = b"".join(b"\x1b" + bytes([len(p)]) + p for p in parts)
    seq = b"\x30" + bytes([len(items)]) + items
    body = b"\xa0\x03\x02\x01" + bytes([name_type]) + b"\xa1" + bytes([len(seq)]) + seq
    return b"\x30" + bytes([len(body)]) + body


def test_principal_memo_gives_the_parsed_value_at_any_offset() -> None:
    der._PRINCIPALS.clear()
    enc = _principal(b"krbtgt", b"EXAMPLE.ORG")
    assert der.principal(enc, 0, len(enc)) == "krbtgt/EXAMPLE.ORG"
    assert len(der._PRINCIPALS) == 1
    framed = b"\x00" * 7 + enc + b"\xff"
    assert der.principal(framed, 7, 7 + len(enc)) == "krbtgt/EXAMPLE.ORG"
    assert len(der._PRINCIPALS) == 1  # found by its octets, wherever they were
    other = _principal(b"krbtgt", b"EXAMPLE.ORH")
    assert der.principal(other, 0, len(other)) == "krbtgt/EXAMPLE.ORH"


def test_failures_are_not_remembered() -> None:
    der._PRINCIPALS.clear()
    bad = _principal(b"x")[:-1]
    for _ in range(2):
        with pytest.raises(KrbDecodeError):
            der.principal(bad, 0, len(bad))
    assert der._PRINCIPALS == {}
    der._TIMES.clear()
    for raw in (b"\x18\x0f20261306000000Z", b"\x18\x0f20260229000000Z"):  # month 13; no 29 Feb in 2026
        with pytest.raises(KrbDecodeError):
            der.gtime(raw, 0, len(raw))
    assert der._TIMES == {}


def test_memos_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(der._PRINCIPALS, "size", 8)
    monkeypatch.setattr(der._TIMES, "size", 8)
    der._PRINCIPALS.clear()
    der._TIMES.clear()
    for i in range(50):
        enc = _principal(b"user%d" % i)
        assert der.principal(enc, 0, len(enc)) == f"user{i}"
        t = b"\x18\x0f202612%02d000000Z" % (i % 28 + 1)
        assert der.gtime(t, 0, len(t)) == der.parse_gtime(t[2:])
        assert len(der._PRINCIPALS) <= 8 and len(der._TIMES) <= 8


def test_text_memo_gives_the_decoded_value_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Realms are remembered by their octets; a control character is still replaced, a Latin-1 fallback still
    # applies, and the memo never holds more than MEMO_SIZE entries.
    der._TEXTS.clear()
    for raw, want in ((b"EXAMPLE.ORG", "EXAMPLE.ORG"), (b"a\x1eb", "a\ufffdb"), (b"caf\xe9", "caf\xe9")):
        enc = b"\x1b" + bytes([len(raw)]) + raw
        for _ in range(2):
            assert der.text(b"\x00" + enc, 1, 1 + len(enc)) == want
    assert len(der._TEXTS) == 3
    monkeypatch.setattr(der._TEXTS, "size", 4)
    for i in range(20):
        enc = b"\x1b\x05" + b"R%04d" % i
        assert der.text(enc, 0, len(enc)) == f"R{i:04d}"
        assert len(der._TEXTS) <= 4


def test_etype_list_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    from parsers.krb5 import messages

    messages._ETYPE_LISTS.clear()
    enc = b"\x30\x0a\x02\x01\x12\x02\x01\x11\x02\x02\x00\x80"  # 18, 17, 128 (two octets)
    for _ in range(2):
        assert messages._ints(enc + b"\x00", 0, len(enc) + 1) == (18, 17, 128)
    assert len(messages._ETYPE_LISTS) == 1
    bad = enc[:-1]
    for _ in range(2):
        with pytest.raises(KrbDecodeError):
            messages._ints(bad, 0, len(bad))
    assert len(messages._ETYPE_LISTS) == 1  # failures are not remembered
    long = b"\x30\x81\xff" + b"\x02\x01\x01" * 85  # longer than the memo's key bound: decoded, not kept
    assert messages._ints(long, 0, len(long)) == (1,) * 85
    assert len(messages._ETYPE_LISTS) == 1
    monkeypatch.setattr(messages._ETYPE_LISTS, "size", 4)
    for i in range(20):
        one = b"\x30\x03\x02\x01" + bytes([i])
        assert messages._ints(one, 0, 5) == (i,)
        assert len(messages._ETYPE_LISTS) <= 4


def test_etype_info_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    from krb5_samples import ctx, gstr, integer, seq

    from parsers.krb5 import padata

    padata._ETYPE_INFO.clear()
    info2 = seq(seq(ctx(0, integer(18)), ctx(1, gstr("EXAMPLE.ORGalice"))), seq(ctx(0, integer(23))))
    for _ in range(2):
        assert padata._etype_info(info2, 0, len(info2)) == (("EXAMPLE.ORGalice", None), (18, 23))
    assert len(padata._ETYPE_INFO) == 1
    for _ in range(2):
        with pytest.raises(KrbDecodeError):
            padata._etype_info(info2[:-1], 0, len(info2) - 1)
    assert len(padata._ETYPE_INFO) == 1  # failures are not remembered
    monkeypatch.setattr(padata._ETYPE_INFO, "size", 4)
    for i in range(20):
        one = seq(seq(ctx(0, integer(i))))
        assert padata._etype_info(one, 0, len(one)) == ((None,), (i,))
        assert len(padata._ETYPE_INFO) <= 4
