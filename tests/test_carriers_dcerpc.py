"""parsers.carriers.dcerpc: auth verifiers of bind / alter_context / auth3 and their answers (MS-RPCE §2.2.2.11)."""

from __future__ import annotations

import struct

from test_carriers_base import feed
from test_gss import ap_rep, ap_req, krb5_token, krb_error, neg_init, neg_resp

from parsers.carriers.base import ISSUE_UNPARSABLE
from parsers.carriers.dcerpc import DcerpcCarrier, DcerpcFlow, starts_pdu

BIND, BIND_ACK, BIND_NAK, ALTER, ALTER_RESP, AUTH3, REQUEST, RESPONSE, FAULT = 11, 12, 13, 14, 15, 16, 0, 2, 3


def pdu(
    ptype: int, body: bytes, token: bytes = b"", auth_type: int = 9, little: bool = True, call_id: int = 2
) -> bytes:
    """A connection-oriented PDU (C706 §12.6): header, body padded to 4, sec_trailer + token."""
    e = "<" if little else ">"
    pad = bytes(-len(body) % 4) if token else b""
    trailer = struct.pack("<BBBBI", auth_type, 6, len(pad), 0, 0) if token else b""
    frag = 16 + len(body) + len(pad) + len(trailer) + len(token)
    drep = b"\x10\x00\x00\x00" if little else b"\x00\x00\x00\x00"
    header = bytes([5, 0, ptype, 3]) + drep + struct.pack(e + "HHI", frag, len(token), 2)
    return header + body + pad + trailer + token


def bind_body() -> bytes:
    """max_xmit, max_recv, assoc_group, one presentation context (abstract + transfer syntax)."""
    ctx = struct.pack("<HBB", 0, 1, 0) + bytes(16) + struct.pack("<HH", 4, 0) + bytes(16) + struct.pack("<I", 2)
    return struct.pack("<HHIB3x", 5840, 5840, 0, 1) + ctx


def run(parts: list[tuple[bool, bytes]], chunk: int | None = None) -> tuple[list[dict], DcerpcFlow]:
    flow = DcerpcCarrier().new_flow()
    return [r for r, _ts, _f in feed(flow, parts, chunk)], flow


def test_spnego_bind_three_legs() -> None:
    """bind (AP-REQ) -> bind_ack (AP-REP) -> auth3 (the client's bare AP-REP, DCE style)."""
    got, flow = run(
        [
            (True, pdu(BIND, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req(sname=("host", "ws6.win.test")))))),
            (False, pdu(BIND_ACK, bind_body(), neg_resp(krb5_token(b"\x02\x00", ap_rep()), state=1))),
            (True, pdu(AUTH3, bytes(4), neg_resp(ap_rep(23), state=0))),
            (True, pdu(REQUEST, bytes(24), b"\x05\x04" + bytes(30))),
            (False, pdu(RESPONSE, bytes(24), b"\x05\x04" + bytes(30))),
        ],
        chunk=100,
    )
    assert [(r["msg_type"], r["carrier"], r["ticket_service"], r["etype"], r["app_status"]) for r in got] == [
        ("AP-REQ", "dcerpc", "host/ws6.win.test", 18, None),
        ("AP-REP", "dcerpc", None, 18, "bind_ack"),
        ("AP-REP", "dcerpc", None, 23, None),
    ]
    assert not flow.issues


def test_kerberos_auth_type_alter_context_big_endian() -> None:
    got, _flow = run(
        [
            (True, pdu(ALTER, bind_body(), krb5_token(b"\x01\x00", ap_req()), auth_type=16, little=False)),
            (False, pdu(ALTER_RESP, bind_body(), krb5_token(b"\x02\x00", ap_rep()), auth_type=16, little=False)),
        ]
    )
    assert [(r["msg_type"], r["app_status"]) for r in got] == [("AP-REQ", None), ("AP-REP", "alter_context_resp")]


def test_bind_nak_and_fault_give_the_outcome_row() -> None:
    got, _flow = run(
        [
            (True, pdu(BIND, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req(kvno=12))))),
            (False, pdu(BIND_NAK, struct.pack("<H", 9) + bytes(2))),
        ]
    )
    assert [(r["msg_type"], r["phase"], r["app_status"], r["ticket_kvno"]) for r in got] == [
        ("AP-REQ", "AP", None, 12),
        (None, "AP", "bind_nak: invalid_checksum", 12),
    ]
    got, _flow = run(
        [
            (True, pdu(ALTER, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req())))),
            (False, pdu(FAULT, struct.pack("<IHBBI", 0, 0, 0, 0, 5) + bytes(4))),
        ]
    )
    assert [(r["msg_type"], r["app_status"]) for r in got] == [("AP-REQ", None), (None, "fault: ERROR_ACCESS_DENIED")]


def test_krb_error_token_in_bind_ack() -> None:
    got, _flow = run(
        [
            (True, pdu(BIND, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req())))),
            (False, pdu(BIND_ACK, bind_body(), neg_resp(krb5_token(b"\x03\x00", krb_error(37)), state=2))),
        ]
    )
    assert [(r["msg_type"], r["error_code"]) for r in got] == [("AP-REQ", None), ("KRB-ERROR", 37)]


def test_other_auth_types_are_not_read() -> None:
    ntlm = b"NTLMSSP\x00\x01\x00\x00\x00" + bytes(24)
    got, flow = run([(True, pdu(BIND, bind_body(), ntlm, auth_type=10)), (False, pdu(BIND_ACK, bind_body()))])
    assert got == [] and not flow.issues


def test_hostile_pdus_are_counted() -> None:
    ok = pdu(BIND, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req())))
    lying = bytearray(ok)
    struct.pack_into("<H", lying, 10, len(ok) - 20)  # auth_length leaves no room for the header
    got, flow = run([(True, bytes(lying))])
    assert got == [] and flow.issues[ISSUE_UNPARSABLE] == 1  # starts_pdu refuses it; nothing to resync to
    inside = bytearray(ok)
    struct.pack_into("<H", inside, 10, len(ok) - 16 - 8 - 4)  # a verifier reaching into the body: not Kerberos
    got, flow = run([(True, bytes(inside))])
    assert got == [] and not flow.issues
    got, flow = run([(True, b"\x05\x00\x0b\x03\x10\x00\x00\x00\x08\x00\x00\x00" + bytes(20) + ok)])
    assert [r["msg_type"] for r in got] == ["AP-REQ"]
    assert flow.issues[ISSUE_UNPARSABLE] == 1
    for n in range(len(ok)):
        run([(True, ok[:n])], chunk=13)


def test_starts_pdu() -> None:
    assert starts_pdu(pdu(BIND, bind_body()), 0)
    assert starts_pdu(pdu(BIND, bind_body(), little=False), 0)
    assert not starts_pdu(b"\x05\x00\x0b\x03\x10\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00", 0)  # frag < 16
    assert not starts_pdu(b"\x04\x00\x0b\x03\x10\x00\x00\x00\x48\x00\x00\x00\x00\x00\x00\x00", 0)  # version 4
    assert not starts_pdu(b"\x05\x00\x0b\x03\x22\x00\x00\x00\x48\x00\x00\x00\x00\x00\x00\x00", 0)  # bad drep


def test_answers_pair_by_call_id() -> None:
    def with_call(p: bytes, call: int) -> bytes:
        return p[:12] + struct.pack("<I", call) + p[16:]

    got, _flow = run(
        [
            (True, with_call(pdu(BIND, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req(kvno=1)))), 7)),
            (True, with_call(pdu(ALTER, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req(kvno=2)))), 8)),
            (False, with_call(pdu(BIND_NAK, struct.pack("<H", 8) + bytes(2)), 8)),
            (False, with_call(pdu(FAULT, struct.pack("<IHBBI", 0, 0, 0, 0, 0x721) + bytes(4)), 7)),
        ]
    )
    assert [(r["msg_type"], r["ticket_kvno"], r["app_status"]) for r in got] == [
        ("AP-REQ", 1, None),
        ("AP-REQ", 2, None),
        (None, 2, "bind_nak: authentication_type_not_recognized"),
        (None, 1, "fault: RPC_S_SEC_PKG_ERROR"),
    ]
