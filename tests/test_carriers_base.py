"""parsers.carriers: the shared flow machinery (segmentation, skipping, gaps) and carrier detection by content.

``feed`` is reused by the per-carrier tests (``from test_carriers_base import feed``).
"""

from __future__ import annotations

import base64
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from test_gss import ap_rep, ap_req, krb5_token, neg_init, neg_resp

from parsers.carriers import DEFAULT
from parsers.carriers.base import ISSUE_TOO_LARGE, ISSUE_UNPARSABLE, MAX_PDU, CarrierFlow
from parsers.carriers.dcerpc import DcerpcCarrier
from parsers.carriers.http import HttpCarrier
from parsers.carriers.ldap import LdapCarrier
from parsers.carriers.smb import SmbCarrier
from parsers.record import ParseReport

Row = tuple[str | None, int, str | None]


def feed(flow: CarrierFlow, parts: list[tuple[bool, bytes]], chunk: int | None = None) -> list[tuple[dict, int, int]]:
    """Feed ``(to_server, bytes)`` parts in order, each part cut into ``chunk``-byte segments; segment k (1-based,
    over the whole run) has frame number k and ts 1000 * k. Returns everything the flow emitted."""
    out: list[tuple[dict, int, int]] = []
    frame = 0
    for to_server, data in parts:
        step = chunk or max(1, len(data))
        for i in range(0, len(data), step):
            frame += 1
            out += flow.feed(to_server, data[i : i + step], 1000 * frame, frame)
    return out


def smb2_message(blob: bytes, reply: bool = False, status: int = 0, command: int = 1) -> bytes:
    """A NetBIOS-framed SMB2 SESSION_SETUP (MS-SMB2 §2.2.5/§2.2.6) with ``blob`` as its security buffer."""
    header = b"\xfeSMB" + struct.pack(
        "<HHIHHIIQIIQ16s", 64, 1, status, command, 1, 1 if reply else 0, 0, 7, 0, 0, 0x1234, bytes(16)
    )
    if reply:
        body = struct.pack("<HHHH", 9, 0, 64 + 8 if blob else 0, len(blob))
    else:
        body = struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 64 + 24 if blob else 0, len(blob), 0)
    msg = header + body + blob
    return struct.pack(">I", len(msg)) + msg


def test_default_carriers() -> None:
    assert [c.name for c in DEFAULT] == ["smb", "http", "ldap", "dcerpc"]
    for carrier in DEFAULT:
        flow = carrier.new_flow()
        assert flow.feed(True, b"", 1, 1) == []


FIRSTS = {
    "smb": [smb2_message(b"", command=0), b"\x00\x00\x00\x2f\xffSMBr" + bytes(40), b"\x81\x00\x00\x44" + bytes(68)],
    "http": [b"POST /wsman HTTP/1.1\r\nHost: x\r\n", b"GET / HTTP/1.0\r\n\r\n"],
    "ldap": [bytes.fromhex("300c020101600702010304008000"), bytes.fromhex("3084000000100201016384000000070400")],
    "dcerpc": [bytes.fromhex("05000b03100000007800000002000000") + bytes(104)],
}
OTHERS = [
    b"\x00\x00\x05\xdc\x6a\x82\x05\xd8",  # a Kerberos TCP record (port 88)
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS ClientHello
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"\x00\x00\x00\x10\x00\x00\x00\x00",
    b"",
    b"\x05",
]


def test_accepts_is_by_content() -> None:
    carriers = {c.name: c for c in DEFAULT}
    for name, firsts in FIRSTS.items():
        for first in firsts:
            for port in (445, 139, 80, 5985, 389, 135, 49674, 40000):
                got = [n for n, c in carriers.items() if c.accepts(port, first, True)]
                assert got == [name], (name, first[:8], port)
    for first in OTHERS:
        assert not any(c.accepts(88, first, True) or c.accepts(88, first, False) for c in DEFAULT)
    assert HttpCarrier().accepts(5985, b"HTTP/1.1 401 Unauthorized\r\n", False)
    assert not HttpCarrier().accepts(5985, b"HTTP/1.1 401 Unauthorized\r\n", True)
    rnd = random.Random(7)
    hits = sum(
        any(c.accepts(1234, bytes(rnd.randrange(256) for _ in range(32)), True) for c in DEFAULT) for _ in range(3000)
    )
    assert hits <= 3  # random bytes are almost never taken for a carrier


def test_byte_by_byte_equals_whole() -> None:
    parts = [
        (True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))),
        (False, smb2_message(neg_resp(krb5_token(b"\x02\x00", ap_rep())), reply=True)),
    ]
    whole = feed(SmbCarrier().new_flow(), parts)
    single = feed(SmbCarrier().new_flow(), parts, chunk=1)
    assert [r["msg_type"] for r, _ts, _f in whole] == ["AP-REQ", "AP-REP"]
    assert [r for r, _ts, _f in single] == [r for r, _ts, _f in whole]
    # each message is reported at the frame that delivered its last byte
    assert [f for _r, _ts, f in single] == [len(parts[0][1]), len(parts[0][1]) + len(parts[1][1])]
    assert [ts for _r, ts, _f in single] == [1000 * f for _r, _ts, f in single]


def test_gap_resynchronises_on_the_next_message() -> None:
    req = smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=5))))
    flow = SmbCarrier().new_flow()
    assert flow.feed(True, req[:100], 1, 1) == []
    flow.gap(True)  # the rest of that message was lost
    junk = req[150:]  # the tail of the lost message arrives first
    got = flow.feed(True, junk + req, 2, 2)
    assert [(r["msg_type"], r["ticket_kvno"]) for r, _ts, _f in got] == [("AP-REQ", 5)]
    assert not flow.issues  # the lost bytes are the capture layer's tcp_gap; the flow just found its footing


def test_garbage_is_counted_and_skipped() -> None:
    req = smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))
    flow = SmbCarrier().new_flow()
    got = feed(flow, [(True, b"\x47" * 50 + req)])
    assert [r["msg_type"] for r, _ts, _f in got] == ["AP-REQ"]
    assert flow.issues[ISSUE_UNPARSABLE] == 1


def test_issues_go_to_the_report_when_one_is_set() -> None:
    report = ParseReport("x.pcap")
    flow = SmbCarrier().new_flow()
    flow.report = report
    req = smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))
    got = flow.feed(True, b"\x47" * 50 + req, 7, 42)
    assert [r["msg_type"] for r, _ts, _f in got] == ["AP-REQ"]
    assert dict(report.issues) == {ISSUE_UNPARSABLE: 1}
    assert report.examples[ISSUE_UNPARSABLE] == ["#42: smb2"]
    assert not flow.issues


def test_oversized_unit_is_counted_not_buffered() -> None:
    blob = neg_init(krb5_token(b"\x01\x00", ap_req()))
    huge = struct.pack(">I", MAX_PDU + 10) + b"\xfeSMB" + struct.pack("<HHIH", 64, 1, 0, 1) + bytes(MAX_PDU - 4)
    flow = SmbCarrier().new_flow()
    got = feed(flow, [(True, huge), (True, smb2_message(blob))], chunk=65536)
    assert [r["msg_type"] for r, _ts, _f in got] == ["AP-REQ"]
    assert flow.issues[ISSUE_TOO_LARGE] == 1
    assert max(len(b) for b in flow._buf) < 70000


def test_every_carrier_survives_random_and_truncated_streams() -> None:
    rnd = random.Random(11)
    for carrier in (SmbCarrier(), HttpCarrier(), LdapCarrier(), DcerpcCarrier()):
        for n in range(200):
            flow = carrier.new_flow()
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400)))
            feed(flow, [(bool(n % 2), data), (not n % 2, data[::-1])], chunk=rnd.randrange(1, 50))
            if n % 3 == 0:
                flow.gap(True)
                flow.gap(False)
                feed(flow, [(True, data)], chunk=7)


def test_an_answer_delivered_late_does_not_answer_a_later_request() -> None:
    """Bytes held behind a TCP hole reach the flow with their own (earlier) frame after a later request: that
    answer cannot be the later AP-REQ's outcome."""
    flow = SmbCarrier().new_flow()
    req = smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))
    failure = smb2_message(b"", reply=True, status=0xC000006D)
    assert [r["msg_type"] for r, _ts, _f in flow.feed(True, req, 20, 20)] == ["AP-REQ"]
    assert flow.feed(False, failure, 15, 15) == []  # frame 15 precedes the AP-REQ of frame 20
    got = flow.feed(False, failure, 21, 21)
    assert [(r["msg_type"], r["app_status"]) for r, _ts, _f in got] == [(None, "STATUS_LOGON_FAILURE")]


CONVERSATIONS = {
    "smb": (
        SmbCarrier,
        [
            (True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req())))),
            (False, smb2_message(neg_resp(krb5_token(b"\x02\x00", ap_rep())), reply=True)),
            (True, smb2_message(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=9))))),
            (False, smb2_message(b"", reply=True, status=0xC000006D)),
        ],
    ),
    "http": (
        HttpCarrier,
        [
            (
                True,
                b"GET / HTTP/1.1\r\nAuthorization: Negotiate "
                + base64.b64encode(neg_init(krb5_token(b"\x01\x00", ap_req())))
                + b"\r\n\r\n",
            ),
            (
                False,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nWWW-Authenticate: Negotiate "
                + base64.b64encode(neg_resp(krb5_token(b"\x02\x00", ap_rep())))
                + b"\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
            ),
        ],
    ),
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(CONVERSATIONS)), st.lists(st.integers(min_value=1, max_value=400), min_size=1))
def test_any_segmentation_gives_the_same_rows(name: str, sizes: list[int]) -> None:
    """Rows depend on the bytes, not on how TCP cut them (sizes cycle over the conversation)."""
    carrier, parts = CONVERSATIONS[name]
    whole = [r for r, _ts, _f in feed(carrier().new_flow(), parts)]
    flow = carrier().new_flow()
    got = []
    k = 0
    for to_server, data in parts:
        i = 0
        while i < len(data):
            n = sizes[k % len(sizes)]
            k += 1
            got += [r for r, _ts, _f in flow.feed(to_server, data[i : i + n], k, k)]
            i += n
    assert got == whole
    assert len(whole) == (4 if name == "smb" else 2)
