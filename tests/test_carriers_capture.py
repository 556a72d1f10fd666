"""Carriers end to end: pcap files written by hand (scapy layers) through parsers.capture.read_capture with
parsers.carriers.DEFAULT, and through parsers.iter_records (which uses them by default)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

pytest.importorskip("parsers.capture", reason="parsers.capture (branch capture) is not merged here")

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from test_capture_build import T0, frames, pcap, read
from test_carriers_base import smb2_message
from test_carriers_dcerpc import BIND, BIND_ACK, bind_body, pdu
from test_carriers_ldap import DIAG_52E, bind_request, bind_response
from test_gss import ap_rep, ap_req, krb5_token, neg_init, neg_resp

import parsers
from parsers.carriers import DEFAULT
from parsers.record import ParseReport

CLIENT, SERVER = "10.1.0.5", "10.1.0.9"
ISN_C, ISN_S = 1000, 900000


class Conn:
    """A TCP connection's packets with running sequence numbers."""

    def __init__(self, cport: int, sport: int) -> None:
        self.cport, self.sport = cport, sport
        self.seq = {True: ISN_C + 1, False: ISN_S + 1}

    def pkt(self, to_server: bool, payload: bytes = b"", flags: str = "PA", seq: int | None = None) -> Packet:
        src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
        sp, dp = (self.cport, self.sport) if to_server else (self.sport, self.cport)
        s = self.seq[to_server] if seq is None else seq
        p = Ether() / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, seq=s, flags=flags)
        return p / Raw(payload) if payload else p

    def handshake(self) -> list[Packet]:
        return [
            self.pkt(True, flags="S", seq=ISN_C),
            self.pkt(False, flags="SA", seq=ISN_S),
            self.pkt(True, flags="A"),
        ]

    def segments(self, to_server: bool, data: bytes, size: int) -> list[Packet]:
        out = []
        for i in range(0, len(data), size):
            out.append(self.pkt(to_server, data[i : i + size]))
            self.seq[to_server] += len(data[i : i + size])
        return out


def rows_of(tmp_path: Path, packets: list[Packet]) -> tuple[list, ParseReport]:
    return read(tmp_path, pcap(frames(packets)), carriers=DEFAULT)


def test_smb2_reordered_and_retransmitted_segments(tmp_path: Path) -> None:
    c = Conn(50100, 445)
    req = c.segments(True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=3)))), 100)
    assert len(req) >= 3
    resp = c.segments(False, smb2_message(b"", reply=True, status=0xC000006D), 1460)
    packets = [*c.handshake(), req[0], req[2], req[1], *req[3:], req[1], *resp]  # 2 before 1, then 1 again
    rows, report = rows_of(tmp_path, packets)
    assert [(r.record_no, r.msg_type, r.carrier, r.app_status, r.nt_status) for r in rows] == [
        (3 + len(req), "AP-REQ", "smb2", None, None),
        (len(packets), None, "smb2", "STATUS_LOGON_FAILURE", 0xC000006D),
    ]
    ap, outcome = rows
    assert (ap.src_ip, ap.src_port, ap.dst_ip, ap.dst_port, ap.transport, ap.phase) == (
        CLIENT,
        50100,
        SERVER,
        445,
        "tcp",
        "AP",
    )
    assert (outcome.src_ip, outcome.dst_port, outcome.phase, outcome.ticket_kvno) == (SERVER, 50100, "AP", 3)
    assert ap.ts == T0 + (3 + len(req) - 1) * 1000
    assert not report.issues


def test_lost_segment_is_a_gap_and_the_next_message_decodes(tmp_path: Path) -> None:
    c = Conn(50101, 445)
    first = c.segments(True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=1)))), 100)
    second = c.segments(True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=2)))), 100)
    packets = [*c.handshake(), first[0], *first[2:], *second]  # first[1] never captured
    rows, report = rows_of(tmp_path, packets)
    assert [(r.msg_type, r.ticket_kvno) for r in rows] == [("AP-REQ", 2)]
    assert report.issues["tcp_gap"] == 1


def test_http_ldap_dcerpc_flows_side_by_side(tmp_path: Path) -> None:
    h, ldap, rpc = Conn(50200, 5985), Conn(50201, 389), Conn(50202, 49674)
    token = base64.b64encode(krb5_token(b"\x01\x00", ap_req(sname=("HTTP", "srv.win.test"))))
    http_req = b"POST /wsman HTTP/1.1\r\nAuthorization: Kerberos " + token + b"\r\nContent-Length: 0\r\n\r\n"
    http_resp = b"HTTP/1.1 401 \r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n"
    packets = [
        *h.handshake(),
        *ldap.handshake(),
        *h.segments(True, http_req, 700),
        *ldap.segments(True, bind_request(neg_init(krb5_token(b"\x01\x00", ap_req(sname=("ldap", "dc"))))), 300),
        *h.segments(False, http_resp, 700),
        *ldap.segments(False, bind_response(49, DIAG_52E), 300),
        # DCE/RPC on a dynamic port, capture started mid-connection (no handshake)
        *rpc.segments(
            True, pdu(BIND, bind_body(), neg_init(krb5_token(b"\x01\x00", ap_req(sname=("host", "ws"))))), 1460
        ),
        *rpc.segments(False, pdu(BIND_ACK, bind_body(), neg_resp(krb5_token(b"\x02\x00", ap_rep()))), 1460),
    ]
    rows, report = rows_of(tmp_path, packets)
    got = [(r.carrier, r.msg_type, r.service, r.app_status) for r in rows]
    assert got == [
        ("http", "AP-REQ", "HTTP/srv.win.test", None),
        ("ldap", "AP-REQ", "ldap/dc", None),
        ("http", None, "HTTP/srv.win.test", "HTTP 401"),
        ("ldap", None, "ldap/dc", "invalidCredentials: " + DIAG_52E.rstrip("\x00")),
        ("dcerpc", "AP-REQ", "host/ws", None),
        ("dcerpc", "AP-REP", None, "bind_ack"),
    ]
    assert not report.issues


def test_other_tcp_gives_nothing_and_iter_records_uses_the_carriers(tmp_path: Path) -> None:
    tls, smb = Conn(50300, 443), Conn(50301, 445)
    packets = [
        *tls.handshake(),
        *tls.segments(True, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(500), 1460),
        *smb.handshake(),
        *smb.segments(True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req()))), 1460),
    ]
    path = tmp_path / "mixed.pcap"
    path.write_bytes(pcap(frames(packets)))
    report = ParseReport(str(path))
    rows = list(parsers.iter_records(path, report))
    assert [(r.carrier, r.msg_type, r.record_no) for r in rows] == [("smb2", "AP-REQ", len(packets))]
    assert not report.issues
    rows, _report = read(tmp_path, pcap(frames(packets)))  # read_capture alone: no carriers unless given
    assert rows == []


def test_carrier_issues_reach_the_report(tmp_path: Path) -> None:
    c = Conn(50400, 445)
    bad = bytearray(smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req()))))
    bad[-30:] = b"\xff" * 30  # the authenticator's end is garbage
    junk = smb2_message(b"\x60\x84\x7f\xff\xff\xff\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01\x00\x6e\x00")
    packets = [*c.handshake(), *c.segments(True, bytes(bad) + junk, 1460)]
    rows, report = rows_of(tmp_path, packets)
    assert [(r.msg_type, r.partial) for r in rows] == [("AP-REQ", True)]
    assert report.issues["partial_message"] == 1
    assert report.issues["gss_krb5_decode_error"] + report.issues["gss_malformed_token"] == 1
    assert report.examples["gss_krb5_decode_error" if report.issues["gss_krb5_decode_error"] else
                          "gss_malformed_token"] == [f"#{len(packets)}: smb2"]  # fmt: skip
