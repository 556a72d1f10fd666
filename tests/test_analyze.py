"""The public API (analyze, analyze_frame, Analysis) and the ``krbtrace analyze`` command."""

from __future__ import annotations

import json

import polars as pl

import krbtrace
from krbtrace.cli import main
from krbtrace.diagnose import example_frame
from krbtrace.schema import ATTEMPTS, CLOCK_OFFSETS, CORRELATED, EXCHANGES, FINDINGS

WRONG_PASSWORD = [
    {
        "t": 0,
        "msg_type": "AS-REQ",
        "src_ip": "10.0.0.5",
        "dst_ip": "10.0.0.1",
        "src_port": 50001,
        "dst_port": 88,
        "client": "alice",
        "client_realm": "CORP.EXAMPLE",
        "service": "krbtgt/CORP.EXAMPLE",
        "nonce": 1,
        "pa_types": [128],
    },
    {
        "t": 0.01,
        "msg_type": "KRB-ERROR",
        "src_ip": "10.0.0.1",
        "dst_ip": "10.0.0.5",
        "src_port": 88,
        "dst_port": 50001,
        "error_code": 25,
        "client": "alice",
        "service": "krbtgt/CORP.EXAMPLE",
        "stime": 0.0,
    },
    {
        "t": 0.05,
        "msg_type": "AS-REQ",
        "src_ip": "10.0.0.5",
        "dst_ip": "10.0.0.1",
        "src_port": 50002,
        "dst_port": 88,
        "client": "alice",
        "client_realm": "CORP.EXAMPLE",
        "service": "krbtgt/CORP.EXAMPLE",
        "nonce": 2,
        "pa_types": [2, 128],
    },
    {
        "t": 0.06,
        "msg_type": "KRB-ERROR",
        "src_ip": "10.0.0.1",
        "dst_ip": "10.0.0.5",
        "src_port": 88,
        "dst_port": 50002,
        "error_code": 24,
        "client": "alice",
        "service": "krbtgt/CORP.EXAMPLE",
        "stime": 0.0,
    },
]


def test_public_names():
    assert {"analyze", "analyze_frame", "Analysis", "load"} <= set(krbtrace.__all__)
    assert len(krbtrace.__all__) < 10


def test_analysis_frames_have_the_contract_schemas():
    a = krbtrace.analyze_frame(example_frame(WRONG_PASSWORD))
    assert a.timeline.schema == CORRELATED
    assert a.exchanges.schema == EXCHANGES
    assert a.attempts.schema == ATTEMPTS
    assert a.clock_offsets.schema == CLOCK_OFFSETS
    assert a.findings.schema == FINDINGS
    assert a.timeline["row_id"].to_list() == [0, 1, 2, 3]
    assert a.timeline["outcome"].to_list() == ["expected", "expected", "failed", "failed"]
    assert a.exchanges["outcome"].to_list() == ["expected", "failed"]
    assert a.attempts.height == 1
    assert a.findings["rule"].to_list() == ["preauth_failed"]


def test_report_text_and_json_name_the_evidence():
    a = krbtrace.analyze_frame(example_frame(WRONG_PASSWORD))
    text = a.report()
    for word in ("alice", "10.0.0.5", "10.0.0.1", "example.pcap#4", "KDC_ERR_PREAUTH_FAILED", "preauth_failed"):
        assert word in text
    doc = json.loads(a.to_json())
    assert set(doc) >= {"inputs", "summary", "clock_offsets", "findings"}
    f = doc["findings"][0]
    assert set(f) >= {
        "rule",
        "severity",
        "error_code",
        "principals",
        "services",
        "hosts",
        "count",
        "first_seen",
        "last_seen",
        "evidence",
        "explanation",
        "remedy",
    }
    assert f["error_code"] == 24 and f["evidence"] == ["example.pcap#4"] and f["first_seen"].endswith("Z")
    assert doc["summary"]["phases"]["AS"] == {"ok": 0, "failed": 1, "expected": 1, "unanswered": 0, "unmatched": 0}


def test_issues_frame():
    a = krbtrace.analyze_frame(example_frame(WRONG_PASSWORD))
    assert a.issues.schema == pl.Schema({"source": pl.String, "kind": pl.String, "count": pl.Int64})


def test_cli_unusable_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "junk.bin"
    bad.write_bytes(b"this is not a capture or a log")
    assert main(["analyze", "--no-progress", str(bad)]) == 2
    assert "junk.bin" in capsys.readouterr().err


def test_cli_bad_timeline_suffix(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "x"), "--timeline", str(tmp_path / "out.txt")]) == 2
    assert "unknown output format" in capsys.readouterr().err
