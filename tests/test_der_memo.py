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
    monkeypatch.setattr(der, "MEMO_SIZE", 8)
    der._PRINCIPALS.clear()
    der._TIMES.clear()
    for i in range(50):
        enc = _principal(b"user%d" % i)
        assert der.principal(enc, 0, len(enc)) == f"user{i}"
        t = b"\x18\x0f202612%02d000000Z" % (i % 28 + 1)
        assert der.gtime(t, 0, len(t)) == der.parse_gtime(t[2:])
        assert len(der._PRINCIPALS) <= 8 and len(der._TIMES) <= 8
