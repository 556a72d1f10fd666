"""parsers.carriers.smb: SMB2 and SMB1 SESSION_SETUP security buffers (MS-SMB2 §2.2.5/§2.2.6, MS-SMB §2.2.4.6).

SMB2 messages are built with scapy's SMB2 layers (an independent encoder) and by hand; SMB1 by hand.
"""

from __future__ import annotations

import struct

from test_carriers_base import feed, smb2_message
from test_gss import ap_rep, ap_req, krb5_token, krb_error, neg_init, neg_resp

from parsers.carriers.smb import SmbCarrier, nt_status_name

LOGON_FAILURE = 0xC000006D
MORE_PROCESSING = 0xC0000016


def scapy_smb2(blob: bytes, reply: bool = False, status: int = 0) -> bytes:
    from scapy.layers.netbios import NBTSession
    from scapy.layers.smb2 import SMB2_Header, SMB2_Session_Setup_Request, SMB2_Session_Setup_Response

    if reply:
        hdr = SMB2_Header(Command=1, Flags="SMB2_FLAGS_SERVER_TO_REDIR", Status=status, MID=2)
        response = SMB2_Session_Setup_Response()
        response.SecurityBlob = blob  # scapy's setter; the Buffer= keyword form drops a raw blob
        return bytes(NBTSession() / hdr / response)
    hdr = SMB2_Header(Command=1, MID=2)
    return bytes(NBTSession() / hdr / SMB2_Session_Setup_Request(Buffer=[("SecurityBlob", blob)]))


def smb1_session_setup(blob: bytes, reply: bool = False, status: int = 0, nt: bool = True) -> bytes:
    """SMB_COM_SESSION_SETUP_ANDX with extended security (MS-SMB §2.2.4.6.1/§2.2.4.6.2)."""
    flags = 0x98 if reply else 0x18
    flags2 = 0xC807 if nt else 0x8807
    status_bytes = struct.pack("<I", status) if nt else struct.pack("<BBH", status >> 24, 0, status & 0xFFFF)
    header = b"\xffSMB" + b"\x73" + status_bytes + bytes([flags]) + struct.pack("<H", flags2) + bytes(20)
    if reply:
        words = struct.pack("<BBHHH", 0xFF, 0, 0, 0, len(blob))
    else:
        words = struct.pack("<BBHHHHIHII", 0xFF, 0, 0, 4356, 50, 0, 0, len(blob), 0, 0x8000E05C)
    data = blob + "Windows\0".encode("utf-16-le")
    msg = header + bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data
    return struct.pack(">I", len(msg)) + msg


def rows(parts: list[tuple[bool, bytes]], chunk: int | None = None) -> tuple[list[dict], SmbCarrier]:
    flow = SmbCarrier().new_flow()
    return [r for r, _ts, _f in feed(flow, parts, chunk)], flow


def test_smb2_success_with_mutual_authentication() -> None:
    for build in (scapy_smb2, smb2_message):
        got, flow = rows(
            [
                (True, build(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=4))))),
                (False, build(neg_resp(krb5_token(b"\x02\x00", ap_rep())), reply=True)),
            ],
            chunk=300,
        )
        req, rep = got
        assert (req["msg_type"], req["carrier"], req["phase"], req["app_status"]) == ("AP-REQ", "smb2", "AP", None)
        assert (req["ticket_service"], req["ticket_realm"], req["ticket_kvno"], req["ap_options"]) == (
            "cifs/fs1.win.test",
            "WIN.TEST",
            4,
            0x20000000,
        )
        assert (rep["msg_type"], rep["carrier"], rep["app_status"], rep["nt_status"]) == (
            "AP-REP",
            "smb2",
            "STATUS_SUCCESS",
            0,
        )
        assert not flow.issues


def test_smb2_logon_failure_without_token_gives_the_outcome_row() -> None:
    got, _flow = rows(
        [
            (True, scapy_smb2(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=9))))),
            (False, scapy_smb2(b"", reply=True, status=LOGON_FAILURE)),
        ]
    )
    req, outcome = got
    assert req["msg_type"] == "AP-REQ"
    assert (outcome["msg_type"], outcome["phase"], outcome["carrier"]) == (None, "AP", "smb2")
    assert (outcome["app_status"], outcome["nt_status"]) == ("STATUS_LOGON_FAILURE", LOGON_FAILURE)
    assert (outcome["service"], outcome["ticket_kvno"], outcome["ticket_etype"]) == ("cifs/fs1.win.test", 9, 18)


def test_smb2_krb_error_token_with_more_processing() -> None:
    got, _flow = rows(
        [
            (True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))),
            (False, smb2_message(neg_resp(krb5_token(b"\x03\x00", krb_error(37))), reply=True, status=MORE_PROCESSING)),
        ]
    )
    assert [(r["msg_type"], r["error_code"], r["app_status"]) for r in got] == [
        ("AP-REQ", None, None),
        ("KRB-ERROR", 37, "STATUS_MORE_PROCESSING_REQUIRED"),
    ]


def test_answer_without_a_pending_ap_req_gives_nothing() -> None:
    """The NEGOTIATE response's NegTokenInit2 hint and an NTLM exchange are not Kerberos."""
    ntlm = neg_init(b"NTLMSSP\x00\x01\x00\x00\x00" + bytes(24))
    got, flow = rows(
        [
            (False, smb2_message(neg_init(b"\x00"), reply=True, command=0)),
            (True, smb2_message(ntlm)),
            (False, smb2_message(b"", reply=True, status=LOGON_FAILURE)),
        ]
    )
    assert got == []
    assert not flow.issues


def test_smb1_session_setup_andx() -> None:
    got, _flow = rows(
        [
            (True, smb1_session_setup(neg_init(krb5_token(b"\x01\x00", ap_req())))),
            (
                False,
                smb1_session_setup(
                    neg_resp(krb5_token(b"\x03\x00", krb_error(37))), reply=True, status=MORE_PROCESSING
                ),
            ),
        ],
        chunk=100,
    )
    assert [(r["msg_type"], r["carrier"], r["app_status"], r["nt_status"]) for r in got] == [
        ("AP-REQ", "smb", None, None),
        ("KRB-ERROR", "smb", "STATUS_MORE_PROCESSING_REQUIRED", MORE_PROCESSING),
    ]
    got, _flow = rows(
        [
            (True, smb1_session_setup(neg_init(krb5_token(b"\x01\x00", ap_req())))),
            (False, smb1_session_setup(b"", reply=True, status=0x01 << 24 | 5, nt=False)),
        ]
    )
    assert [(r["msg_type"], r["app_status"], r["nt_status"]) for r in got] == [
        ("AP-REQ", None, None),
        (None, "DOS 1/5", None),
    ]


def test_netbios_session_request_then_smb() -> None:
    """Port 139: session request (81) and positive response (82), then session messages; keep-alives (85)."""
    request = b"\x81\x00\x00\x44" + b" " + bytes(33) + b" " + bytes(33)
    assert SmbCarrier().accepts(139, request, True)
    got, flow = rows(
        [
            (True, request),
            (False, b"\x82\x00\x00\x00"),
            (True, b"\x85\x00\x00\x00"),
            (True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))),
        ]
    )
    assert [r["msg_type"] for r in got] == ["AP-REQ"]
    assert not flow.issues


def test_other_commands_are_skipped_unbuffered() -> None:
    read = struct.pack(">I", 5_000_064) + b"\xfeSMB" + struct.pack("<HHIH", 64, 1, 0, 8) + bytes(5_000_052)
    flow = SmbCarrier().new_flow()
    got = feed(flow, [(False, read), (True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req()))))], chunk=1460)
    assert [r["msg_type"] for r, _ts, _f in got] == ["AP-REQ"]
    assert not flow.issues


def test_compound_chain() -> None:
    """A SESSION_SETUP after another command in one compound message (NextCommand, MS-SMB2 §2.2.1)."""
    first = smb2_message(b"", command=0x0E)[4:]  # a (fake) TREE_CONNECT-like header without security buffer
    pad = bytes(-len(first) % 8)
    first = first[:20] + struct.pack("<I", len(first) + len(pad)) + first[24:]
    second = smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))[4:]
    chain = first + pad + second
    got, _flow = rows([(True, struct.pack(">I", len(chain)) + chain)])
    assert [r["msg_type"] for r in got] == ["AP-REQ"]


def test_lying_security_buffer_is_counted() -> None:
    msg = bytearray(smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req()))))
    struct.pack_into("<H", msg, 4 + 64 + 14, 60000)  # SecurityBufferLength past the message
    got, flow = rows([(True, bytes(msg))])
    assert [r["msg_type"] for r in got] == ["AP-REQ"]  # the blob that is there is whole
    assert flow.issues["smb_bad_security_buffer"] == 1
    msg2 = bytearray(smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req()))))
    struct.pack_into("<H", msg2, 4 + 64 + 12, 65000)  # SecurityBufferOffset past the message
    got, flow = rows([(True, bytes(msg2))])
    assert got == [] and flow.issues["smb_bad_security_buffer"] == 1


def test_truncated_messages_never_raise() -> None:
    msg = smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))
    for n in range(0, len(msg), 7):
        cut = bytearray(msg[:n])
        if n >= 4:
            cut[1:4] = (n - 4).to_bytes(3, "big")  # the NetBIOS length agrees with the cut
        got, _flow = rows([(True, bytes(cut))])
        assert all(r["msg_type"] == "AP-REQ" for r in got)


def test_nt_status_name() -> None:
    assert nt_status_name(0xC000006D) == "STATUS_LOGON_FAILURE"
    assert nt_status_name(0xC0000016) == "STATUS_MORE_PROCESSING_REQUIRED"
    assert nt_status_name(0xC00000AA) == "0xC00000AA"


def test_large_compound_chains_are_skipped_without_an_issue() -> None:
    """A compound READ response of 2 MiB is data, not a SESSION_SETUP: skipped, not counted as too large."""
    header = b"\xfeSMB" + struct.pack("<HHIHHII", 64, 1, 0, 8, 1, 1, 128) + bytes(40)
    chain = header + bytes(64) + header[:20] + bytes(4) + header[24:] + bytes(2 << 20)
    flow = SmbCarrier().new_flow()
    got = feed(flow, [(False, struct.pack(">I", len(chain)) + chain)], chunk=1460)
    assert got == [] and not flow.issues
    assert max(len(b) for b in flow._buf) < 4096


def smb2_pipe(command: int, data: bytes, reply: bool = False, status: int = 0) -> bytes:
    """An SMB2 WRITE request / READ response / pipe-transceive IOCTL carrying ``data`` (MS-SMB2 §2.2.19-§2.2.32)."""
    header = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 1, status, command, 1, 1 if reply else 0, 0, 9, 0, 0,
                                      0x1234, bytes(16))  # fmt: skip
    if command == 9:  # WRITE request: data at 64 + 48
        body = struct.pack("<HHIQ16sIIHHI", 49, 64 + 48, len(data), 0, bytes(16), 0, 0, 0, 0, 0)
    elif command == 8:  # READ response: data at 64 + 16
        body = struct.pack("<HBBIII", 17, 64 + 16, 0, len(data), 0, 0)
    elif reply:  # IOCTL FSCTL_PIPE_TRANSCEIVE response: output at 64 + 48
        body = struct.pack("<HHI16sIIIIII", 49, 0, 0x0011C017, bytes(16), 64 + 48, 0, 64 + 48, len(data), 0, 0)
    else:  # IOCTL FSCTL_PIPE_TRANSCEIVE request: input at 64 + 56
        body = struct.pack("<HHI16sIIIIIIII", 57, 0, 0x0011C017, bytes(16), 64 + 56, len(data), 0, 0, 0, 1024, 1, 0)
    msg = header + body + data
    return struct.pack(">I", len(msg)) + msg


def test_dcerpc_over_named_pipes() -> None:
    """A Kerberos-authenticated bind over \\PIPE\\...: WRITE bind, READ bind_ack, then IOCTL alter_context and its
    answer; the rows are DCE/RPC rows. Pipe requests and file data are skipped."""
    from test_carriers_dcerpc import ALTER, ALTER_RESP, BIND, BIND_ACK, REQUEST, bind_body, pdu

    bind = pdu(BIND, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req(sname=("host", "dc1"), kvno=5))))
    ack = pdu(BIND_ACK, bind_body(), neg_resp(krb5_token(b"\x02\x00", ap_rep())))
    alter = pdu(ALTER, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req(sname=("host", "dc1"), kvno=6))))
    got, flow = rows(
        [
            (True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))),
            (False, smb2_message(neg_resp(krb5_token(b"\x02\x00", ap_rep())), reply=True)),
            (True, smb2_pipe(9, bind)),
            (False, smb2_pipe(8, ack, reply=True)),
            (True, smb2_pipe(9, pdu(REQUEST, bytes(5000)))),
            (True, smb2_pipe(9, bytes(30000))),
            (True, smb2_pipe(11, alter)),
            (False, smb2_pipe(11, pdu(ALTER_RESP, bind_body()), reply=True)),
        ],
        chunk=700,
    )
    assert [(r["carrier"], r["msg_type"], r["ticket_kvno"], r["app_status"]) for r in got] == [
        ("smb2", "AP-REQ", 7, None),
        ("smb2", "AP-REP", None, "STATUS_SUCCESS"),
        ("dcerpc", "AP-REQ", 5, None),
        ("dcerpc", "AP-REP", None, "bind_ack"),
        ("dcerpc", "AP-REQ", 6, None),
        ("dcerpc", None, 6, "alter_context_resp"),  # answered without a token: the outcome row
    ]
    assert not flow.issues


def test_answers_pair_by_message_id() -> None:
    """SMB2 MessageId pairs a response with its request, whatever the order (two channels binding at once)."""

    def with_mid(msg: bytes, mid: int) -> bytes:
        return msg[:28] + struct.pack("<Q", mid) + msg[36:]

    got, _flow = rows(
        [
            (True, with_mid(smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=1)))), 5)),
            (True, with_mid(smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=2)))), 6)),
            (False, with_mid(smb2_message(b"", reply=True, status=LOGON_FAILURE), 6)),
            (False, with_mid(smb2_message(b"", reply=True), 5)),
        ]
    )
    assert [(r["msg_type"], r["ticket_kvno"], r["app_status"]) for r in got] == [
        ("AP-REQ", 1, None),
        ("AP-REQ", 2, None),
        (None, 2, "STATUS_LOGON_FAILURE"),
        (None, 1, "STATUS_SUCCESS"),
    ]
