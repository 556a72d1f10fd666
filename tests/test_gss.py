"""parsers.gss: Kerberos inside GSS-API / SPNEGO tokens (RFC 2743 §3.1, RFC 4121 §4.1, RFC 4178, MS-KILE §3.4.5).

Tokens are built here by hand, field by field, so the values the tests expect are the ones put in. The builders are
reused by the carrier tests (``from test_gss import ...``).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from krb5_samples import app, ctx, der, encdata, gstr, gtime, integer, kflags, octs, pname, seq, ticket

from parsers.gss import ISSUE_KRB5, ISSUE_MALFORMED, MAX_DEPTH, decode_gss, looks_like_gss

KRB5_OID = der(0x06, bytes.fromhex("2a864886f712010202"))
MS_KRB5_OID = der(0x06, bytes.fromhex("2a864882f712010202"))
SPNEGO_OID = der(0x06, bytes.fromhex("2b0601050502"))
NTLM_OID = der(0x06, bytes.fromhex("2b06010401823702020a"))
MUTUAL = 0x20000000  # ap-options mutual-required (bit 2)


def ap_req(
    realm: str = "WIN.TEST",
    sname: tuple[str, ...] = ("cifs", "fs1.win.test"),
    etype: int = 18,
    kvno: int = 7,
    options: int = MUTUAL,
) -> bytes:
    """An AP-REQ whose ticket names ``sname@realm`` with ``etype``/``kvno``; authenticator in etype 18."""
    tkt = ticket(realm, *sname, etype=etype, kvno=kvno)
    return app(
        14, seq(ctx(0, integer(5)), ctx(1, integer(14)), ctx(2, kflags(options)), ctx(3, tkt), ctx(4, encdata(18)))
    )


def ap_rep(etype: int = 18) -> bytes:
    return app(15, seq(ctx(0, integer(5)), ctx(1, integer(15)), ctx(2, encdata(etype))))


def krb_error(code: int = 37, sname: tuple[str, ...] = ("cifs", "fs1.win.test"), realm: str = "WIN.TEST") -> bytes:
    """A KRB-ERROR as a service sends it: stime 2026-11-25 11:00:01.456789, no cname."""
    return app(
        30,
        seq(
            ctx(0, integer(5)),
            ctx(1, integer(30)),
            ctx(4, gtime("20261125110001Z")),
            ctx(5, integer(456789)),
            ctx(6, integer(code)),
            ctx(9, gstr(realm)),
            ctx(10, pname(*sname, name_type=2)),
        ),
    )


def krb5_token(tok_id: bytes, message: bytes, oid: bytes = KRB5_OID) -> bytes:
    """RFC 2743 §3.1 InitialContextToken: ``60 len OID TOK_ID message``."""
    return der(0x60, oid + tok_id + message)


def neg_init(mech_token: bytes, mechs: tuple[bytes, ...] = (MS_KRB5_OID, KRB5_OID)) -> bytes:
    """SPNEGO NegTokenInit wrapped in the GSS InitialContextToken (RFC 4178 §4.2.1)."""
    return der(0x60, SPNEGO_OID + ctx(0, seq(ctx(0, seq(*mechs)), ctx(2, octs(mech_token)))))


def neg_resp(response_token: bytes | None, state: int = 0, mech: bytes = MS_KRB5_OID, mic: bytes = b"") -> bytes:
    """SPNEGO NegTokenResp (RFC 4178 §4.2.2): negState, supportedMech, responseToken, mechListMIC."""
    parts = [ctx(0, der(0x0A, bytes([state]))), ctx(1, mech)]
    if response_token is not None:
        parts.append(ctx(2, octs(response_token)))
    if mic:
        parts.append(ctx(3, octs(mic)))
    return ctx(1, seq(*parts))


def wrap_token() -> bytes:
    """An RFC 4121 §4.2.6.2 Wrap token (TOK_ID 05 04): no Kerberos message inside."""
    return b"\x05\x04\x06\xff\x00\x00\x00\x1c" + bytes(8) + bytes(40)


def mic_token() -> bytes:
    return b"\x04\x04\x05\xff\xff\xff\xff\xff" + bytes(8) + bytes(12)


def test_spnego_init_ap_req() -> None:
    issues: Counter[str] = Counter()
    rows = decode_gss(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=3))), issues)
    assert len(rows) == 1
    r = rows[0]
    assert (r["msg_type"], r["phase"], r["partial"]) == ("AP-REQ", "AP", False)
    assert (r["ticket_realm"], r["ticket_service"], r["ticket_etype"], r["ticket_kvno"]) == (
        "WIN.TEST",
        "cifs/fs1.win.test",
        18,
        3,
    )
    assert (r["service"], r["service_realm"], r["ap_options"], r["etype"]) == (
        "cifs/fs1.win.test",
        "WIN.TEST",
        MUTUAL,
        18,
    )
    assert not issues


def test_raw_krb5_tokens_both_oids() -> None:
    for oid in (KRB5_OID, MS_KRB5_OID):
        assert [r["msg_type"] for r in decode_gss(krb5_token(b"\x01\x00", ap_req(), oid))] == ["AP-REQ"]
        assert [r["msg_type"] for r in decode_gss(krb5_token(b"\x02\x00", ap_rep(), oid))] == ["AP-REP"]
    [err] = decode_gss(krb5_token(b"\x03\x00", krb_error(37)))
    assert (err["msg_type"], err["phase"], err["error_code"], err["error_name"]) == (
        "KRB-ERROR",
        "AP",
        37,
        "KRB_AP_ERR_SKEW",
    )
    assert err["stime"] == 1795604401_456789
    assert err["service"] == "cifs/fs1.win.test"


def test_neg_token_resp_with_ap_rep_and_mic_ignored() -> None:
    rows = decode_gss(neg_resp(krb5_token(b"\x02\x00", ap_rep(23)), mic=mic_token()))
    assert [(r["msg_type"], r["etype"], r["phase"]) for r in rows] == [("AP-REP", 23, "AP")]


def test_neg_token_resp_bare_messages() -> None:
    """MS-KILE: the DCE-style third leg is a bare AP-REP; Windows may answer with a bare KRB-ERROR."""
    assert [r["msg_type"] for r in decode_gss(neg_resp(ap_rep()))] == ["AP-REP"]
    assert [r["error_code"] for r in decode_gss(neg_resp(krb_error(41)))] == [41]
    assert [r["msg_type"] for r in decode_gss(ap_rep())] == ["AP-REP"]
    assert [r["msg_type"] for r in decode_gss(b"\x01\x00" + ap_req())] == ["AP-REQ"]


def test_tokens_without_kerberos_messages() -> None:
    issues: Counter[str] = Counter()
    assert decode_gss(neg_resp(None, state=0, mic=mic_token()), issues) == []  # accept-completed + MIC only
    assert decode_gss(neg_resp(b"NTLMSSP\x00\x02\x00\x00\x00" + bytes(40), state=1, mech=NTLM_OID), issues) == []
    assert decode_gss(wrap_token(), issues) == []
    assert decode_gss(mic_token(), issues) == []
    assert decode_gss(krb5_token(b"\x04\x04", bytes(20)), issues) == []
    assert decode_gss(der(0x60, NTLM_OID + b"\x00" * 8), issues) == []
    assert decode_gss(b"", issues) == []
    assert not issues


def test_tok_id_and_message_disagree_is_partial() -> None:
    [r] = decode_gss(krb5_token(b"\x01\x00", ap_rep()))
    assert r["msg_type"] == "AP-REP" and r["partial"] is True


def test_cut_short_keeps_the_readable_part() -> None:
    token = neg_init(krb5_token(b"\x01\x00", ap_req(sname=("HTTP", "web.win.test"))))
    cut = token[: len(token) - 20]  # authenticator cut; the ticket is whole
    issues: Counter[str] = Counter()
    [r] = decode_gss(cut, issues)
    assert (r["msg_type"], r["ticket_service"], r["partial"]) == ("AP-REQ", "HTTP/web.win.test", True)


def test_every_prefix_and_bit_flip_never_raises() -> None:
    tokens = [
        neg_init(krb5_token(b"\x01\x00", ap_req())),
        neg_resp(krb5_token(b"\x02\x00", ap_rep()), mic=mic_token()),
        krb5_token(b"\x03\x00", krb_error()),
    ]
    issues: Counter[str] = Counter()
    for token in tokens:
        for n in range(len(token) + 1):
            for r in decode_gss(token[:n], issues):
                assert r["msg_type"] in ("AP-REQ", "AP-REP", "KRB-ERROR")
        rnd = random.Random(len(token))
        for _ in range(300):
            flipped = bytearray(token)
            flipped[rnd.randrange(len(token))] ^= 1 << rnd.randrange(8)
            decode_gss(bytes(flipped), issues)
    assert issues[ISSUE_MALFORMED] + issues[ISSUE_KRB5] > 0


@pytest.mark.parametrize(
    "blob",
    [
        b"\x60\x84\xff\xff\xff\xff" + KRB5_OID + b"\x01\x00",  # absurd outer length
        b"\x60\x89" + b"\xff" * 9,  # nine-octet length
        b"\x60\x80" + KRB5_OID + b"\x01\x00\x00\x00",  # indefinite length
        b"\xa1\x84\x7f\xff\xff\xff\x30\x00",
        der(0x60, b"\x06\x84\xff\xff\xff\xff"),  # OID longer than the token
        der(0x60, b"\x30\x00"),  # no OID
        der(0x60, SPNEGO_OID + ctx(0, der(0x31, b""))),  # NegTokenInit without its SEQUENCE
        der(0x60, SPNEGO_OID + ctx(0, seq(ctx(2, integer(5))))),  # mechToken not an OCTET STRING
        der(0x60, SPNEGO_OID + ctx(5, seq())),  # neither NegTokenInit nor NegTokenResp
        krb5_token(b"\x01\x00", b"\x6e\x84\xff\xff\xff\xff\x30\x00"),  # AP-REQ with an absurd length
        krb5_token(b"\x01\x00", b"\x6e\x03\x30\x01\x02"),  # AP-REQ SEQUENCE broken
        b"\x6e\x05\x30\x03\x02\x01\x05",  # bare AP-REQ without msg-type
    ],
)
def test_hostile_tokens_are_counted(blob: bytes) -> None:
    issues: Counter[str] = Counter()
    assert decode_gss(blob, issues) == []
    assert issues[ISSUE_MALFORMED] + issues[ISSUE_KRB5] == 1


def test_nesting_depth_is_bounded() -> None:
    token = krb5_token(b"\x01\x00", ap_req())
    for _ in range(MAX_DEPTH):
        token = neg_init(token)
    assert [r["msg_type"] for r in decode_gss(token)] == ["AP-REQ"]
    issues: Counter[str] = Counter()
    deeper = neg_init(neg_init(token))
    assert decode_gss(deeper, issues) == []
    assert issues[ISSUE_MALFORMED] == 1
    bomb = b"\x00"
    for _ in range(2000):  # a hostile nesting bomb: no recursion error, one issue
        bomb = neg_init(bomb)
    issues.clear()
    assert decode_gss(bomb, issues) == []
    assert issues[ISSUE_MALFORMED] == 1


def test_looks_like_gss() -> None:
    assert looks_like_gss(neg_init(b"\x00"))
    assert looks_like_gss(neg_resp(None))
    assert looks_like_gss(ap_rep())
    assert not looks_like_gss(b"NTLMSSP\x00")
    assert not looks_like_gss(b"")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(blob: bytes) -> None:
    issues: Counter[str] = Counter()
    for r in decode_gss(blob, issues):
        assert r["phase"] == "AP"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=3))
def test_random_inner_tokens_never_raise(inner: bytes, wrap: int) -> None:
    token = [lambda b: b, neg_init, lambda b: neg_resp(b), lambda b: krb5_token(b"\x01\x00", b)][wrap](inner)
    decode_gss(token, Counter())
