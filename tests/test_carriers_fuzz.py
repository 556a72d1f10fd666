"""Every carrier fed valid conversations with random corruption and random segmentation: nothing escapes ``feed``
or ``gap``, every row is well formed, and the buffers stay bounded."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st
from test_carriers_base import smb2_message
from test_carriers_dcerpc import AUTH3, BIND, BIND_ACK, bind_body, pdu
from test_carriers_ldap import DIAG_52E, bind_request, bind_response
from test_carriers_smb import smb1_session_setup, smb2_pipe
from test_gss import ap_rep, ap_req, krb5_token, krb_error, neg_init, neg_resp

from parsers.carriers import DcerpcCarrier, HttpCarrier, LdapCarrier, SmbCarrier
from parsers.carriers.base import MAX_PDU

REQ = neg_init(krb5_token(b"\x01\x00", ap_req()))
REP = neg_resp(krb5_token(b"\x02\x00", ap_rep()))
ERR = neg_resp(krb5_token(b"\x03\x00", krb_error(37)), state=2)
CONVERSATIONS = {
    "smb": (SmbCarrier, [
        (True, smb2_message(REQ)), (False, smb2_message(ERR, reply=True, status=0xC0000016)),
        (True, smb1_session_setup(REQ)), (False, smb1_session_setup(b"", reply=True, status=0xC000006D)),
        (True, smb2_pipe(9, pdu(BIND, bind_body(), REQ))), (False, smb2_pipe(8, pdu(BIND_ACK, bind_body(), REP), True)),
    ]),
    "http": (HttpCarrier, [
        (True, b"POST /x HTTP/1.1\r\nAuthorization: Negotiate " + base64.b64encode(REQ)
         + b"\r\nContent-Length: 3\r\n\r\nabc"),
        (False, b"HTTP/1.1 401 x\r\nWWW-Authenticate: Negotiate " + base64.b64encode(ERR)
         + b"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    ]),
    "ldap": (LdapCarrier, [
        (True, bind_request(REQ)), (False, bind_response(14, creds=REP)),
        (True, bind_request(REQ, msg_id=2)), (False, bind_response(49, DIAG_52E, msg_id=2)),
    ]),
    "dcerpc": (DcerpcCarrier, [
        (True, pdu(BIND, bind_body(), REQ)), (False, pdu(BIND_ACK, bind_body(), REP)),
        (True, pdu(AUTH3, bytes(4), neg_resp(ap_rep()))),
    ]),
}  # fmt: skip
KINDS = {"AP-REQ", "AP-REP", "KRB-ERROR", None}


@settings(max_examples=250, deadline=None)
@given(
    st.sampled_from(sorted(CONVERSATIONS)),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=6),
    st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=8),
    st.integers(min_value=-1, max_value=20),
)
def test_corrupted_conversations(name: str, flips: list[tuple[int, int]], sizes: list[int], gap_at: int) -> None:
    carrier, parts = CONVERSATIONS[name]
    stream = bytearray(b"".join(d for _t, d in parts))
    for pos, value in flips:
        stream[pos % len(stream)] = value
    flow = carrier().new_flow()
    k = off = 0
    for to_server, data in parts:
        part = bytes(stream[off : off + len(data)])
        off += len(data)
        i = 0
        while i < len(part):
            n = sizes[k % len(sizes)]
            k += 1
            if k == gap_at:
                flow.gap(to_server)
            for r, ts, frame in flow.feed(to_server, part[i : i + n], k, k):
                assert r["msg_type"] in KINDS and r["phase"] == "AP" and r["carrier"] in ("smb", "smb2", "http",
                                                                                         "ldap", "dcerpc")  # fmt: skip
                assert (ts, frame) == (k, k)
            i += n
    assert all(len(b) <= MAX_PDU + 300 for b in flow._buf)
