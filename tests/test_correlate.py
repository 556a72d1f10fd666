"""Correlation on timelines that follow real protocol sequences (kerberos-protocol.md §2, §6, §7)."""

from __future__ import annotations

import polars as pl
import pytest

from krbtrace.analysis import analyze_frame
from krbtrace.diagnose import example_frame
from krbtrace.schema import TIMELINE

C, K = "10.0.0.5", "10.0.0.1"
REALM = "CORP.EXAMPLE"


def req(t, msg="AS-REQ", port=40000, nonce=1, transport="tcp", client="alice", service=f"krbtgt/{REALM}", **kw):
    return {
        "t": t,
        "msg_type": msg,
        "src_ip": C,
        "dst_ip": K,
        "src_port": port,
        "dst_port": 88,
        "nonce": nonce,
        "transport": transport,
        "client": client,
        "client_realm": REALM,
        "service": service,
        **kw,
    }


def ans(t, msg="AS-REP", port=40000, transport="tcp", **kw):
    return {
        "t": t,
        "msg_type": msg,
        "src_ip": K,
        "dst_ip": C,
        "src_port": 88,
        "dst_port": port,
        "transport": transport,
        **kw,
    }


def run(*rows):
    return analyze_frame(example_frame(list(rows)))


def test_preauth_required_then_success_is_one_ok_attempt_with_an_expected_step():
    a = run(
        req(0, nonce=1, pa_types=[128]),
        ans(0.01, "KRB-ERROR", error_code=25, client="alice"),
        req(0.05, port=40001, nonce=2, pa_types=[2, 128]),
        ans(0.06, port=40001, client="alice", nonce=2),
    )
    assert a.exchanges["outcome"].to_list() == ["expected", "ok"]
    assert a.attempts.select("as_outcome", "outcome").row(0) == ("ok", "ok")
    assert a.findings.height == 0


def test_several_exchanges_on_one_tcp_connection():
    a = run(
        req(0, nonce=1, pa_types=[2]),
        ans(0.01, nonce=1, client="alice"),
        req(0.1, "TGS-REQ", nonce=2, service="cifs/files01.corp.example"),
        ans(0.11, "TGS-REP", nonce=2, client="alice", ticket_service="cifs/files01.corp.example"),
        req(0.2, "TGS-REQ", nonce=3, service="HTTP/web01"),
        ans(0.21, "KRB-ERROR", error_code=7, service="HTTP/web01"),
    )
    assert a.exchanges.select("phase", "outcome").rows() == [("AS", "ok"), ("TGS", "ok"), ("TGS", "failed")]
    assert a.exchanges["row_ids"].to_list() == [[0, 1], [2, 3], [4, 5]]
    assert a.attempts.height == 1
    assert a.attempts.row(0, named=True)["tgs_outcome"] == "failed"
    assert a.findings["rule"].to_list() == ["spn_unknown"]


def test_udp_retransmissions_are_one_exchange():
    a = run(
        req(0, nonce=9, transport="udp", pa_types=[2]),
        req(1, nonce=9, transport="udp", pa_types=[2]),
        req(3, nonce=9, transport="udp", pa_types=[2]),
        ans(3.01, nonce=9, transport="udp", client="alice"),
    )
    assert a.exchanges.height == 1
    assert a.exchanges.row(0, named=True)["outcome"] == "ok"
    assert a.exchanges.row(0, named=True)["row_ids"] == [0, 1, 2, 3]


def test_unanswered_requests_and_a_new_nonce_is_a_new_exchange():
    a = run(req(0, nonce=1, transport="udp"), req(1, nonce=1, transport="udp"), req(5, nonce=2, transport="udp"))
    assert a.exchanges["outcome"].to_list() == ["unanswered", "unanswered"]
    assert a.attempts["outcome"].to_list() == ["unanswered"]
    f = a.findings.row(0, named=True)
    assert (f["rule"], f["count"]) == ("unanswered", 2)
    assert "never answered" in f["explanation"]


def test_response_too_big_then_tcp_retry_is_expected():
    a = run(
        req(0, nonce=5, transport="udp", pa_types=[2]),
        ans(0.01, "KRB-ERROR", transport="udp", error_code=52),
        req(0.02, port=40002, nonce=5, transport="tcp", pa_types=[2]),
        ans(0.05, port=40002, nonce=5, client="alice"),
    )
    assert a.exchanges.select("transport", "outcome").rows() == [("udp", "expected"), ("tcp", "ok")]
    assert a.attempts["outcome"].to_list() == ["ok"]
    assert a.findings.height == 0


def test_response_too_big_without_retry_is_reported():
    a = run(req(0, nonce=5, transport="udp"), ans(0.01, "KRB-ERROR", transport="udp", error_code=52))
    assert a.exchanges["outcome"].to_list() == ["failed"]
    assert a.findings["rule"].to_list() == ["unknown_error"]
    assert "KRB_ERR_RESPONSE_TOO_BIG" in a.findings["explanation"][0]


def test_error_without_its_request_is_placed_by_its_code_and_diagnosed():
    a = run(ans(0, "KRB-ERROR", error_code=24, client="alice"))
    assert a.exchanges.select("phase", "outcome").rows() == [("AS", "failed")]
    assert a.findings["rule"].to_list() == ["preauth_failed"]


def test_interleaved_clients_pair_by_flow():
    other = "10.0.0.6"
    a = run(
        req(0, nonce=1, pa_types=[2]),
        {
            "t": 0.001,
            "msg_type": "AS-REQ",
            "src_ip": other,
            "dst_ip": K,
            "src_port": 50000,
            "dst_port": 88,
            "nonce": 2,
            "client": "bob",
            "pa_types": [2],
        },
        {
            "t": 0.01,
            "msg_type": "KRB-ERROR",
            "src_ip": K,
            "dst_ip": other,
            "src_port": 88,
            "dst_port": 50000,
            "error_code": 24,
            "client": "bob",
        },
        ans(0.02, nonce=1, client="alice"),
    )
    ex = {r["client"]: r["outcome"] for r in a.exchanges.iter_rows(named=True)}
    assert ex == {"alice": "ok", "bob": "failed"}
    assert a.findings.row(0, named=True)["principals"] == ["bob"]


def test_full_logon_story_as_tgs_ap_is_one_attempt():
    svc = "HTTP/web01.corp.example"
    a = run(
        req(0, nonce=1, pa_types=[128]),
        ans(0.01, "KRB-ERROR", error_code=25),
        req(0.02, port=40001, nonce=2, pa_types=[2]),
        ans(0.03, port=40001, nonce=2, client="alice"),
        req(0.1, "TGS-REQ", port=40002, nonce=3, service=svc),
        ans(0.11, "TGS-REP", port=40002, nonce=3, client="alice", ticket_service=svc, ticket_kvno=3),
        {
            "t": 0.2,
            "msg_type": "AP-REQ",
            "carrier": "http",
            "src_ip": C,
            "dst_ip": "10.0.0.20",
            "src_port": 40003,
            "dst_port": 80,
            "service": svc,
            "ticket_service": svc,
            "ticket_kvno": 3,
            "ap_options": 0x20000000,
        },
        {
            "t": 0.21,
            "msg_type": "AP-REP",
            "carrier": "http",
            "src_ip": "10.0.0.20",
            "dst_ip": C,
            "src_port": 80,
            "dst_port": 40003,
        },
    )
    assert a.exchanges["phase"].to_list() == ["AS", "AS", "TGS", "AP"]
    assert a.exchanges["attempt_id"].to_list() == [1, 1, 1, 1]
    at = a.attempts.row(0, named=True)
    assert (at["as_outcome"], at["tgs_outcome"], at["ap_outcome"], at["outcome"]) == ("ok", "ok", "ok", "ok")
    assert at["services"] == [svc] and at["client"] == "alice"
    assert a.findings.height == 0


def test_ap_req_joins_the_attempt_of_the_tgs_that_issued_its_ticket_hours_later():
    svc = "cifs/files01.corp.example"
    a = run(
        req(0, "TGS-REQ", nonce=3, service=svc),
        ans(0.01, "TGS-REP", nonce=3, client="alice", ticket_service=svc),
        req(1800, "TGS-REQ", port=40005, nonce=4, service="ldap/dc1.corp.example"),
        ans(1800.01, "TGS-REP", port=40005, nonce=4, client="alice", ticket_service="ldap/dc1.corp.example"),
        {
            "t": 7200,
            "msg_type": "AP-REQ",
            "carrier": "smb2",
            "src_ip": C,
            "dst_ip": "10.0.0.30",
            "src_port": 40003,
            "dst_port": 445,
            "service": svc,
            "ticket_service": svc,
        },
    )
    ids = dict(zip(a.exchanges["service"].to_list(), a.exchanges["attempt_id"].to_list(), strict=True))
    assert ids[svc] != ids["ldap/dc1.corp.example"]
    ap = a.exchanges.filter(pl.col("phase") == "AP").row(0, named=True)
    assert ap["attempt_id"] == ids[svc] and ap["outcome"] == "ok"


def test_events_4768_then_4769_from_one_address_are_one_attempt():
    ev = {"host": "DC1.corp.example", "provider": "Microsoft-Windows-Security-Auditing", "src_ip": C}
    a = run(
        {"t": 0, "event_id": 4768, "phase": "AS", "client": "alice", "service": "krbtgt", "preauth_type": 2, **ev},
        {"t": 0.5, "event_id": 4769, "phase": "TGS", "client": "alice@CORP.EXAMPLE", "service": "FILES01$", **ev},
        {"t": 10, "event_id": 4771, "phase": "AS", "client": "bob", "error_code": 24, **ev},
    )
    assert a.exchanges.select("phase", "outcome", "attempt_id").rows() == [
        ("AS", "ok", 1),
        ("TGS", "ok", 1),
        ("AS", "failed", 2),
    ]
    assert a.exchanges["server_host"].to_list() == ["DC1.corp.example"] * 3
    assert a.exchanges["evidence"].to_list() == [["example.evtx#1"], ["example.evtx#2"], ["example.evtx#3"]]


def _capture_and_event(event_t: float, stime: float | None):
    return run(
        req(0, nonce=2, pa_types=[2]),
        ans(0.01, "KRB-ERROR", error_code=24, client="alice", stime=stime),
        {
            "t": event_t,
            "event_id": 4771,
            "phase": "AS",
            "client": "alice",
            "service": f"krbtgt/{REALM}",
            "error_code": 24,
            "host": "DC1",
            "src_ip": C,
            "src_port": 40000,
        },
    )


def test_cross_source_same_exchange_is_linked_not_double_counted():
    a = _capture_and_event(0.8, stime=0.0)
    assert a.exchanges.height == 1
    x = a.exchanges.row(0, named=True)
    assert x["sources"] == ["evtx", "pcap"] and x["row_ids"] == [0, 1, 2]
    assert x["evidence"] == ["example.pcap#1", "example.pcap#2", "example.evtx#3"]
    f = a.findings.row(0, named=True)
    assert f["rule"] == "preauth_failed" and f["count"] == 1
    dc = a.clock_offsets.filter(pl.col("method") == "cross_source").row(0, named=True)
    assert dc["host"] == "DC1" and dc["offset_s"] == pytest.approx(0.8)


def test_cross_source_link_uses_the_measured_kdc_offset():
    # The DC's clock is 120 s ahead (stime says so), so its event is stamped 120 s after the frame.
    linked = _capture_and_event(120.4, stime=120.01)
    assert linked.exchanges.height == 1
    unlinked = _capture_and_event(120.4, stime=0.01)
    assert unlinked.exchanges.height == 2
    assert unlinked.findings.row(0, named=True)["count"] == 2


def test_clock_offset_from_stime():
    a = run(req(0, nonce=1), ans(10.0, "KRB-ERROR", error_code=25, stime=610.0), ans(20.0, port=1, stime=None))
    row = a.clock_offsets.filter(pl.col("method") == "krb_error_stime").row(0, named=True)
    assert (row["host"], row["role"], row["samples"]) == (K, "kdc", 1)
    assert row["offset_s"] == pytest.approx(600.0)
    assert row["evidence"] == ["example.pcap#2"]


def test_clock_offset_from_mit_till_and_not_from_windows_till():
    mit = run(req(100, nonce=1, till=100 + 86_400 + 900))
    row = mit.clock_offsets.row(0, named=True)
    assert (row["host"], row["role"], row["method"]) == (C, "client", "request_till")
    assert row["offset_s"] == pytest.approx(900.0)
    windows_till = 2_136_077_285 - 1_700_000_000  # 2037-09-13T02:48:05Z after the examples' base time
    win = run(req(100, nonce=1, till=windows_till))
    assert win.clock_offsets.height == 0


def test_clock_offset_from_time_service_events_is_tolerant():
    ts = {"provider": "Microsoft-Windows-Time-Service", "host": "DC1"}
    a = run(
        {"t": 0, "event_id": 52, "event_data": '{"TimeOffsetSeconds": "35999"}', **ts},
        {
            "t": 1,
            "event_id": 50,
            "event_data": '{"TimeDifferenceMilliseconds": 5000, "TimeSampleSeconds": 900}',
            **{**ts, "host": "WS1"},
        },
        {"t": 2, "event_id": 52, "event_data": "{not json", **ts},
        {"t": 3, "event_id": 36, "event_data": '{"UnsynchronizedTimeSeconds": "86400"}', **ts},
    )
    got = {r["host"]: r["offset_s"] for r in a.clock_offsets.iter_rows(named=True)}
    assert got == {"DC1": pytest.approx(35999.0), "WS1": pytest.approx(5.0)}
    assert a.timeline.filter(pl.col("host") == "DC1")["clock_offset_s"].to_list() == [pytest.approx(35999.0)] * 3


def test_empty_and_odd_timelines_do_not_crash():
    empty = analyze_frame(TIMELINE.to_frame())
    assert (empty.timeline.height, empty.exchanges.height, empty.findings.height) == (0, 0, 0)
    assert "none" in empty.report()
    odd = run(
        {"t": 0},
        {"t": 1, "msg_type": "KRB-CRED"},
        {"t": 2, "event_id": 4738, "host": "DC1"},
        {"t": 3, "msg_type": "KRB-ERROR"},
        {"t": 4, "msg_type": "AS-REQ", "pa_types": None},
    )
    assert odd.timeline["outcome"].to_list()[:3] == ["context", "context", "context"]
    assert odd.findings["rule"].to_list() == ["unanswered", "unknown_error"]


def test_missing_columns_are_refused():
    with pytest.raises(ValueError, match="missing columns"):
        analyze_frame(pl.DataFrame({"ts": [1]}))


def test_ap_req_links_to_the_tgs_whose_ticket_it_carries():
    # Two tickets for the same SPN (kvno 3, then kvno 4 after a key change); the AP-REQ carries the kvno-3 ticket.
    svc = "HTTP/web01.corp.example"
    a = run(
        req(0, "TGS-REQ", nonce=3, service=svc),
        ans(0.01, "TGS-REP", nonce=3, client="alice", ticket_service=svc, ticket_kvno=3, ticket_etype=18),
        req(1000, "TGS-REQ", port=40009, nonce=4, service=svc, client="bob"),
        ans(1000.01, "TGS-REP", port=40009, nonce=4, client="bob", ticket_service=svc, ticket_kvno=4, ticket_etype=18),
        {
            "t": 1100,
            "msg_type": "AP-REQ",
            "carrier": "http",
            "src_ip": C,
            "dst_ip": "10.0.0.20",
            "src_port": 40003,
            "dst_port": 80,
            "service": svc,
            "ticket_service": svc,
            "ticket_kvno": 3,
            "ticket_etype": 18,
        },
    )
    tgs = {r["client"]: r["attempt_id"] for r in a.exchanges.filter(pl.col("phase") == "TGS").iter_rows(named=True)}
    ap = a.exchanges.filter(pl.col("phase") == "AP").row(0, named=True)
    assert ap["attempt_id"] == tgs["alice"] != tgs["bob"]
    assert a.facts.filter(pl.col("msg_type") == "AP-REQ")["tgs_kvno"].to_list() == [3]


def test_another_principal_on_the_same_host_starts_another_attempt():
    ev = {"host": "DC1", "src_ip": C}
    a = run(
        {"t": 0, "event_id": 4768, "phase": "AS", "client": "alice", **ev},
        {"t": 1, "event_id": 4769, "phase": "TGS", "client": "alice@CORP.EXAMPLE", "service": "FILES01$", **ev},
        {"t": 2, "event_id": 4769, "phase": "TGS", "client": "bob@CORP.EXAMPLE", "service": "FILES01$", **ev},
        {"t": 3, "event_id": 4769, "phase": "TGS", "client": "bob@CORP.EXAMPLE", "service": "SQL01$", **ev},
        {"t": 4, "event_id": 4769, "phase": "TGS", "service": "WEB01$", **ev},
    )
    assert a.exchanges["attempt_id"].to_list() == [1, 1, 2, 2, 2]
    assert a.attempts.select("client", "exchanges").rows() == [("alice", 2), ("bob@CORP.EXAMPLE", 3)]
