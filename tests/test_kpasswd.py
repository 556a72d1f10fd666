"""decode_kpasswd (RFC 3244 framing) on the real MIT exchange and on framings built by hand."""

from __future__ import annotations

import struct

import pytest
from krb5_samples import _krb_error, mit_fixtures

from parsers.errors import KrbDecodeError
from parsers.krb5 import decode_kpasswd

KPASSWD = [(label, raw) for label, raw, row in mit_fixtures() if row["kpasswd"] == "1"]
REQUEST = next(raw for label, raw in KPASSWD if label == "11_password_expired_kpasswd#10")
REPLY = next(raw for label, raw in KPASSWD if label == "11_password_expired_kpasswd#12")


def _frame(version: int, ap: bytes, rest: bytes) -> bytes:
    return struct.pack(">HHH", 6 + len(ap) + len(rest), version, len(ap)) + ap + rest


def _parts(raw: bytes) -> tuple[bytes, bytes]:
    ap_len = struct.unpack(">H", raw[4:6])[0]
    return raw[6 : 6 + ap_len], raw[6 + ap_len :]


def test_real_request_and_reply() -> None:
    req = decode_kpasswd(REQUEST)
    assert (req["msg_type"], req["phase"], req["partial"]) == ("KPASSWD-REQ", "KPASSWD", False)
    assert (req["ticket_service"], req["ticket_realm"], req["ticket_etype"]) == ("kadmin/changepw", "EXAMPLE.TEST", 18)
    rep = decode_kpasswd(REPLY)
    assert (rep["msg_type"], rep["etype"], rep["kpasswd_result"], rep["partial"]) == ("KPASSWD-REP", 18, None, False)


def test_set_password_version() -> None:
    """RFC 3244 set-password requests carry version 0xff80."""
    ap, priv = _parts(REQUEST)
    r = decode_kpasswd(_frame(0xFF80, ap, priv))
    assert r["msg_type"] == "KPASSWD-REQ" and r["partial"] is False


@pytest.mark.parametrize(("code", "text"), [(5, b"access denied"), (4, b"Password too short"), (0, b"")])
def test_error_reply_result_code(code: int, text: bytes) -> None:
    err = _krb_error(60, struct.pack(">H", code) + text)
    framed = decode_kpasswd(_frame(1, b"", err))
    bare = decode_kpasswd(err)  # servers that cannot parse the request answer with a bare KRB-ERROR
    for r in (framed, bare):
        assert (r["msg_type"], r["phase"], r["error_code"], r["kpasswd_result"]) == ("KPASSWD-REP", "KPASSWD", 60, code)


def test_error_reply_without_result_code() -> None:
    r = decode_kpasswd(_frame(1, b"", _krb_error(41, None)))
    assert r["error_code"] == 41 and r["kpasswd_result"] is None
    r = decode_kpasswd(_frame(1, b"", _krb_error(25, bytes.fromhex("3000"))))
    assert r["kpasswd_result"] is None  # a SEQUENCE is KDC-style e-data, not a result code


def test_trailing_bytes_after_the_length_ignored() -> None:
    r = decode_kpasswd(REQUEST + b"\x00" * 6)
    assert r["msg_type"] == "KPASSWD-REQ" and r["partial"] is False


def test_broken_krb_priv_is_partial() -> None:
    ap, priv = _parts(REQUEST)
    r = decode_kpasswd(_frame(1, ap, priv[:-3]))
    assert r["partial"] is True and r["ticket_service"] == "kadmin/changepw"
    r = decode_kpasswd(_frame(1, ap, b"\x30\x00"))
    assert r["partial"] is True


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x06\x00",
        bytes.fromhex("000a0002000000000000"),  # version 2
        bytes.fromhex("00060001"),  # four octets
        bytes.fromhex("000c000100046e02300000000000"),  # a broken AP-REQ
        bytes.fromhex("ffff00010000"),  # message length past the data
        bytes.fromhex("000800010010aaaa"),  # AP length past the message length
        bytes.fromhex("000a0001000430000000"),  # AP field that is neither AP-REQ nor AP-REP
        bytes.fromhex("00080001000000"),  # error reply without a KRB-ERROR
    ],
)
def test_bad_framing_raises(raw: bytes) -> None:
    with pytest.raises(KrbDecodeError):
        decode_kpasswd(raw)


def test_every_truncation() -> None:
    """Each prefix of the real request is refused or, once the AP-REQ is whole, decoded as partial."""
    for n in range(len(REQUEST)):
        cut = REQUEST[:n]
        try:
            r = decode_kpasswd(cut)
        except KrbDecodeError:
            continue
        raise AssertionError(f"prefix of {n} octets decoded: {r}")  # the message length always gives it away
    short = struct.pack(">H", len(REQUEST) - 19) + REQUEST[2:]  # a length that cuts into the KRB-PRIV
    r = decode_kpasswd(short)
    assert r["partial"] is True and r["msg_type"] == "KPASSWD-REQ"
