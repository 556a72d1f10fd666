"""parsers.carriers.http: Negotiate / Kerberos HTTP authentication (RFC 4559, WinRM) with the response status."""

from __future__ import annotations

import base64

from test_carriers_base import feed
from test_gss import ap_rep, ap_req, krb5_token, krb_error, neg_init, neg_resp

from parsers.carriers.base import ISSUE_UNPARSABLE
from parsers.carriers.http import ISSUE_BASE64, HttpCarrier, HttpFlow
from parsers.gss import ISSUE_KRB5, ISSUE_MALFORMED


def b64(blob: bytes) -> bytes:
    return base64.b64encode(blob)


def request(token: bytes | None, scheme: bytes = b"Negotiate", body: bytes = b"", method: bytes = b"POST") -> bytes:
    auth = b"Authorization: " + scheme + b" " + b64(token) + b"\r\n" if token is not None else b""
    return (
        method + b" /wsman HTTP/1.1\r\nHost: srv.win.test:5985\r\n" + auth
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


def response(status: int, token: bytes | None = None, scheme: bytes = b"Negotiate", body: bytes = b"",
             extra: bytes = b"") -> bytes:  # fmt: skip
    auth = b""
    if token is not None:
        auth = b"WWW-Authenticate: " + scheme + (b" " + b64(token) if token else b"") + b"\r\n"
    return (
        b"HTTP/1.1 " + str(status).encode() + b" Reason\r\nServer: Microsoft-HTTPAPI/2.0\r\n" + auth + extra
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


def run(parts: list[tuple[bool, bytes]], chunk: int | None = None) -> tuple[list[tuple[dict, int, int]], HttpFlow]:
    flow = HttpCarrier().new_flow()
    return feed(flow, parts, chunk), flow


def test_negotiate_success_with_mutual_authentication() -> None:
    got, flow = run(
        [
            (True, request(neg_init(krb5_token(b"\x01\x00", ap_req(sname=("HTTP", "srv.win.test"), kvno=2))))),
            (False, response(200, neg_resp(krb5_token(b"\x02\x00", ap_rep())), body=b"<s:Envelope/>")),
        ]
    )
    (req, _t1, f1), (rep, _t2, f2) = got
    assert (req["msg_type"], req["carrier"], req["ticket_service"], req["ticket_kvno"]) == (
        "AP-REQ",
        "http",
        "HTTP/srv.win.test",
        2,
    )
    assert (rep["msg_type"], rep["carrier"], rep["app_status"]) == ("AP-REP", "http", "HTTP 200")
    assert (f1, f2) == (1, 2)
    assert not flow.issues


def test_winrm_kerberos_scheme_raw_token_and_body_completes_the_message() -> None:
    """WinRM: ``Authorization: Kerberos <raw GSS token>``; the row comes at the frame that ends the body."""
    body = b"--Encrypted Boundary\r\n" + bytes(3000)
    got, _flow = run(
        [
            (True, request(krb5_token(b"\x01\x00", ap_req()), scheme=b"Kerberos", body=body)),
            (False, response(200, krb5_token(b"\x02\x00", ap_rep()), scheme=b"Kerberos", body=body)),
        ],
        chunk=1000,
    )
    req_len = len(request(krb5_token(b"\x01\x00", ap_req()), scheme=b"Kerberos", body=body))
    resp_len = len(response(200, krb5_token(b"\x02\x00", ap_rep()), scheme=b"Kerberos", body=body))
    assert [(r["msg_type"], f) for r, _ts, f in got] == [
        ("AP-REQ", -(-req_len // 1000)),
        ("AP-REP", -(-req_len // 1000) + -(-resp_len // 1000)),
    ]


def test_401_after_ap_req_without_token_gives_the_outcome_row() -> None:
    got, _flow = run(
        [
            (True, request(None, method=b"GET")),
            (False, response(401, b"")),  # the initial challenge: no AP-REQ pending, nothing emitted
            (True, request(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=6))), method=b"GET")),
            (False, response(401, b"", extra=b"WWW-Authenticate: NTLM\r\n")),
        ]
    )
    rows = [r for r, _ts, _f in got]
    assert [(r["msg_type"], r["app_status"]) for r in rows] == [("AP-REQ", None), (None, "HTTP 401")]
    outcome = rows[1]
    assert (outcome["phase"], outcome["carrier"], outcome["ticket_kvno"], outcome["service"]) == (
        "AP",
        "http",
        6,
        "cifs/fs1.win.test",
    )


def test_krb_error_token_in_401() -> None:
    got, _flow = run(
        [
            (True, request(neg_init(krb5_token(b"\x01\x00", ap_req())))),
            (False, response(401, neg_resp(krb5_token(b"\x03\x00", krb_error(41)), state=2))),
        ]
    )
    assert [(r["msg_type"], r["error_code"], r["app_status"]) for r, _ts, _f in got] == [
        ("AP-REQ", None, None),
        ("KRB-ERROR", 41, "HTTP 401"),
    ]


def test_chunked_body_head_and_pipelining() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nWWW-Authenticate: Negotiate "
        + b64(neg_resp(krb5_token(b"\x02\x00", ap_rep())))
        + b"\r\n\r\n5\r\nhello\r\n10;ext=1\r\n"
        + bytes(16)
        + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"  # HEAD: no body follows
    req1 = request(neg_init(krb5_token(b"\x01\x00", ap_req())))
    parts = [
        (True, req1 + request(None, method=b"HEAD")),
        (True, request(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=8))))),
        (False, chunked + head),
        (False, response(200, neg_resp(krb5_token(b"\x02\x00", ap_rep(23))))),
    ]
    got, flow = run(parts, chunk=9)
    n = [-(-len(p) // 9) for _d, p in parts]
    assert [(r["msg_type"], r["app_status"], r["etype"]) for r, _ts, _f in got] == [
        ("AP-REQ", None, 18),
        ("AP-REQ", None, 18),
        ("AP-REP", "HTTP 200", 18),
        ("AP-REP", "HTTP 200", 23),
    ]
    # each row at the frame with the message's last byte: the chunked response's once its trailers arrived
    assert [f for _r, _ts, f in got] == [
        -(-len(req1) // 9),
        n[0] + n[1],
        n[0] + n[1] + -(-len(chunked) // 9),
        sum(n),
    ]
    assert not flow.issues


def test_bad_base64_and_bad_tokens_are_counted() -> None:
    bad = b"GET / HTTP/1.1\r\nAuthorization: Negotiate YII*not-base64!\r\n\r\n"
    not_gss = request(b"\x60\x84\xff\xff\xff\xff\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01\x00")
    got, flow = run([(True, bad), (True, not_gss), (True, request(neg_init(krb5_token(b"\x01\x00", ap_req()))))])
    assert [r["msg_type"] for r, _ts, _f in got] == ["AP-REQ"]
    assert flow.issues[ISSUE_BASE64] == 1
    assert flow.issues[ISSUE_MALFORMED] + flow.issues[ISSUE_KRB5] == 1


def test_hostile_framing() -> None:
    """An absurd Content-Length, endless headers, a bad chunk size: counted, then the flow finds the next message."""
    ok = request(neg_init(krb5_token(b"\x01\x00", ap_req())))
    got, flow = run([(True, b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n" + ok)])
    assert [r["msg_type"] for r, _ts, _f in got] == ["AP-REQ"]
    assert flow.issues[ISSUE_UNPARSABLE] == 1
    got, flow = run([(True, b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20000)], chunk=4096)
    assert got == [] and flow.issues[ISSUE_UNPARSABLE] >= 1
    assert max(len(b) for b in flow._buf) < 70000
    bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    got, flow = run([(True, ok), (False, bad_chunk + response(401, b""))])
    # the 200 answered the AP-REQ (outcome row, released when its body broke off); the 401 answers nothing
    assert [(r["msg_type"], r["app_status"]) for r, _ts, _f in got] == [("AP-REQ", None), (None, "HTTP 200")]
    assert flow.issues[ISSUE_UNPARSABLE] == 1


def test_response_until_close_and_gap() -> None:
    flow = HttpCarrier().new_flow()
    got = feed(flow, [(True, request(neg_init(krb5_token(b"\x01\x00", ap_req()))))])
    got += flow.feed(False, b"HTTP/1.0 200 OK\r\n\r\n" + b"HTTP/1.1 401 x\r\n\r\n" * 3, 5, 5)
    assert [(r["msg_type"], r["app_status"]) for r, _ts, _f in got] == [("AP-REQ", None), (None, "HTTP 200")]
    flow.gap(True)
    got = flow.feed(True, b"tail of a lost body" + request(neg_init(krb5_token(b"\x01\x00", ap_req()))), 6, 6)
    assert [r["msg_type"] for r, _ts, _f in got] == ["AP-REQ"]


def test_header_line_without_colon_is_counted() -> None:
    token = base64.b64encode(neg_init(krb5_token(b"\x01\x00", ap_req())))
    head = b"GET / HTTP/1.1\r\nthis is not a header\r\nAuthorization: Negotiate "
    got, flow = run([(True, head + token + b"\r\n\r\n")])
    assert [r["msg_type"] for r, _ts, _f in got] == ["AP-REQ"]
    assert flow.issues == {"http_bad_headers": 1}


def test_pipelined_requests_are_answered_in_order() -> None:
    reqs = b"".join(request(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=k)))) for k in (1, 2, 3))
    got, _flow = run([(True, reqs), (False, response(401, b"") + response(200) + response(403, b""))])
    rows = [r for r, _ts, _f in got]
    assert [(r["msg_type"], r["ticket_kvno"], r["app_status"]) for r in rows] == [
        ("AP-REQ", 1, None),
        ("AP-REQ", 2, None),
        ("AP-REQ", 3, None),
        (None, 1, "HTTP 401"),
        (None, 2, "HTTP 200"),
        (None, 3, "HTTP 403"),
    ]


def test_a_gap_forgets_outstanding_requests() -> None:
    flow = HttpCarrier().new_flow()
    feed(flow, [(True, request(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=1)))))])
    flow.gap(False)  # the answer to it was lost
    got = feed(flow, [(True, request(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=2))))), (False, response(401, b""))])
    assert [(r["msg_type"], r["ticket_kvno"], r["app_status"]) for r, _ts, _f in got] == [
        ("AP-REQ", 2, None),
        (None, 2, "HTTP 401"),
    ]


def test_a_response_to_an_unseen_request_does_not_shift_the_pairing() -> None:
    flow = HttpCarrier().new_flow()
    flow.gap(True)
    flow.gap(False)  # the capture starts mid-connection
    got = feed(
        flow,
        [
            (False, response(200)),  # answers a request sent before the capture
            (True, request(neg_init(krb5_token(b"\x01\x00", ap_req(kvno=4))))),
            (False, response(401, b"")),
        ],
    )
    assert [(r["msg_type"], r["ticket_kvno"], r["app_status"]) for r, _ts, _f in got] == [
        ("AP-REQ", 4, None),
        (None, 4, "HTTP 401"),
    ]
