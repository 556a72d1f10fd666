"""parsers.carriers.ldap: SASL GSSAPI / GSS-SPNEGO binds (RFC 4511 §4.2, RFC 4752) with the result and message."""

from __future__ import annotations

import struct

from krb5_samples import der, integer, octs, seq
from test_carriers_base import feed
from test_gss import ap_rep, ap_req, krb5_token, krb_error, neg_init, neg_resp

from parsers.carriers.base import ISSUE_UNPARSABLE
from parsers.carriers.ldap import ISSUE_BIND, LdapCarrier, LdapFlow, result_status

DIAG_52E = "8009030C: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 52e, v4563\x00"


def ldap_message(msg_id: int, op: bytes) -> bytes:
    return seq(integer(msg_id), op)


def bind_request(credentials: bytes | None, mechanism: bytes = b"GSS-SPNEGO", msg_id: int = 1) -> bytes:
    """BindRequest [APPLICATION 0] { version 3, name "", sasl [3] { mechanism, credentials } }."""
    sasl = octs(mechanism) + (octs(credentials) if credentials is not None else b"")
    return ldap_message(msg_id, der(0x60, integer(3) + octs(b"") + der(0xA3, sasl)))


def simple_bind(msg_id: int = 1) -> bytes:
    return ldap_message(msg_id, der(0x60, integer(3) + octs(b"cn=admin") + der(0x80, b"secret")))


def bind_response(code: int, diagnostic: str = "", creds: bytes | None = None, msg_id: int = 1) -> bytes:
    """BindResponse [APPLICATION 1] { resultCode, matchedDN, diagnosticMessage, serverSaslCreds [7] }."""
    body = der(0x0A, bytes([code])) + octs(b"") + octs(diagnostic.encode())
    if creds is not None:
        body += der(0x87, creds)
    return ldap_message(msg_id, der(0x61, body))


def search_entry(size: int, msg_id: int = 2) -> bytes:
    return ldap_message(msg_id, der(0x64, octs(b"cn=x") + seq(octs(bytes(size)))))


def run(parts: list[tuple[bool, bytes]], chunk: int | None = None) -> tuple[list[dict], LdapFlow]:
    flow = LdapCarrier().new_flow()
    return [r for r, _ts, _f in feed(flow, parts, chunk)], flow


def test_gss_spnego_bind_success() -> None:
    got, flow = run(
        [
            (True, bind_request(neg_init(krb5_token(b"\x01\x00", ap_req(sname=("ldap", "dc1.win.test"), kvno=3))))),
            (False, bind_response(0, creds=neg_resp(krb5_token(b"\x02\x00", ap_rep())))),
        ],
        chunk=50,
    )
    assert [(r["msg_type"], r["carrier"], r["ticket_service"], r["ticket_kvno"], r["app_status"]) for r in got] == [
        ("AP-REQ", "ldap", "ldap/dc1.win.test", 3, None),
        ("AP-REP", "ldap", None, None, "success"),
    ]
    assert not flow.issues


def test_gssapi_bind_with_sasl_in_progress_then_security_layer() -> None:
    """RFC 4752: raw Kerberos token, saslBindInProgress with the AP-REP, then wrap-token steps; later traffic is
    SASL-wrapped (4-octet length) and skipped."""
    wrapped = struct.pack(">I", 60) + bytes(60)
    got, flow = run(
        [
            (True, bind_request(krb5_token(b"\x01\x00", ap_req()), mechanism=b"GSSAPI")),
            (False, bind_response(14, creds=krb5_token(b"\x02\x00", ap_rep()))),
            (True, bind_request(b"", mechanism=b"GSSAPI", msg_id=2)),
            (False, bind_response(14, creds=b"\x05\x04\x01\xff" + bytes(24), msg_id=2)),
            (True, bind_request(b"\x05\x04\x00\xff" + bytes(24), mechanism=b"GSSAPI", msg_id=3)),
            (False, bind_response(0, msg_id=3)),
            (True, wrapped),
            (False, wrapped * 3),
        ]
    )
    assert [(r["msg_type"], r["app_status"]) for r in got] == [("AP-REQ", None), ("AP-REP", "saslBindInProgress")]
    assert not flow.issues


def test_invalid_credentials_without_token_gives_the_outcome_row() -> None:
    got, _flow = run(
        [
            (True, bind_request(neg_init(krb5_token(b"\x01\x00", ap_req(sname=("ldap", "dc1.win.test")))))),
            (False, bind_response(49, DIAG_52E)),
        ]
    )
    _req, outcome = got
    assert (outcome["msg_type"], outcome["phase"], outcome["carrier"], outcome["service"]) == (
        None,
        "AP",
        "ldap",
        "ldap/dc1.win.test",
    )
    assert outcome["app_status"] == (
        "invalidCredentials: 8009030C: LdapErr: DSID-0C0906B5, comment: AcceptSecurityContext error, data 52e, v4563"
    )


def test_krb_error_in_server_sasl_creds() -> None:
    got, _flow = run(
        [
            (True, bind_request(neg_init(krb5_token(b"\x01\x00", ap_req())))),
            (False, bind_response(49, "", creds=neg_resp(krb_error(37), state=2))),
        ]
    )
    assert [(r["msg_type"], r["error_code"], r["app_status"]) for r in got] == [
        ("AP-REQ", None, None),
        ("KRB-ERROR", 37, "invalidCredentials"),
    ]


def test_other_operations_and_simple_binds_are_skipped() -> None:
    big = search_entry(3_000_000)
    got, flow = run(
        [
            (True, simple_bind()),
            (False, bind_response(0)),
            (False, big),
            (True, bind_request(neg_init(krb5_token(b"\x01\x00", ap_req())), msg_id=5)),
        ],
        chunk=1460,
    )
    assert [r["msg_type"] for r in got] == ["AP-REQ"]
    assert max(len(b) for b in flow._buf) < 4096
    assert not flow.issues


def test_hostile_binds_are_counted() -> None:
    bad_mech = ldap_message(1, der(0x60, integer(3) + octs(b"") + der(0xA3, integer(7))))
    bad_creds = ldap_message(1, der(0x60, integer(3) + octs(b"") + der(0xA3, octs(b"GSSAPI") + integer(7))))
    broken = ldap_message(1, der(0x60, integer(3) + b"\x04\x84\xff\xff\xff\xff"))
    not_result = ldap_message(1, der(0x61, octs(b"x")))
    ok = bind_request(neg_init(krb5_token(b"\x01\x00", ap_req())))
    got, flow = run([(True, bad_mech + bad_creds + broken + ok), (False, not_result)])
    assert [r["msg_type"] for r in got] == ["AP-REQ"]
    assert flow.issues[ISSUE_BIND] == 2
    assert flow.issues[ISSUE_UNPARSABLE] == 2
    got, flow = run([(True, b"\x30\x80\x02\x01\x01" + ok)])  # indefinite length: not LDAP; resync finds the bind
    assert [r["msg_type"] for r in got] == ["AP-REQ"]


def test_truncations_never_raise() -> None:
    msg = bind_request(neg_init(krb5_token(b"\x01\x00", ap_req())))
    for n in range(len(msg)):
        run([(True, msg[:n])])
        cut = bytearray(msg[:n])
        run([(True, bytes(cut) + msg)])


def test_result_status() -> None:
    assert result_status(0, "") == "success"
    assert result_status(49, "data 52e") == "invalidCredentials: data 52e"
    assert result_status(99, "") == "resultCode 99"


def test_answers_pair_by_message_id() -> None:
    """Two binds outstanding, answered in the other order: each outcome goes to its own AP-REQ."""
    got, _flow = run(
        [
            (True, bind_request(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=1))), msg_id=1)),
            (True, bind_request(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=2))), msg_id=2)),
            (False, bind_response(49, DIAG_52E, msg_id=2)),
            (False, bind_response(0, msg_id=1)),
            (False, bind_response(49, msg_id=3)),  # answers nothing that was asked with Kerberos
        ]
    )
    assert [(r["msg_type"], r["ticket_kvno"], (r["app_status"] or "")[:18]) for r in got] == [
        ("AP-REQ", 1, ""),
        ("AP-REQ", 2, ""),
        (None, 2, "invalidCredentials"),
        (None, 1, "success"),
    ]
