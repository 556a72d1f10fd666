"""Every log of the reference corpus (``corpus/evtx``) against its ``*.kerberos.jsonl`` ground truth.

The ground truth was produced independently (see the corpus MANIFEST.md): it lists each Kerberos-related event
with its raw EventData strings exactly as Windows renders them. Here each is turned into the expected timeline
columns by the rules of the README's column table, written out again without the parser's helpers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parsers.evtx import read_evtx
from parsers.krb5.constants import ERROR_NAMES
from parsers.record import ParseReport
from tests.conftest import CORPUS, corpus_path

CORPUS_FILES = sorted(p.relative_to(CORPUS / "evtx").as_posix() for p in (CORPUS / "evtx").rglob("*.evtx"))
#: Damage the real files carry, by kind (counted, not fatal): independently known from the MANIFEST and
#: docs/decoding-choices.md (the zero-data-size record stops its chunk; two files carry a stale CRC32).
KNOWN_ISSUES = {
    "omerbenamram__evtx/samples/sample-with-zero-data-size-event.evtx": {"evtx_checksum_error", "evtx_records_missing"},
    "omerbenamram__evtx/samples/security_bad_string_cache.evtx": {"evtx_checksum_error"},
}


def _us(text: str) -> int:
    """TimeCreated with 7 fraction digits -> µs since the epoch, truncated (as the timeline keeps it)."""
    head, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000 + int((frac + "000000")[:6])


def _none(v: str | None) -> str | None:
    return None if v in (None, "", "-") else v


def _expected(gt: dict) -> dict:
    d = gt["EventData"]
    eid = gt["EventID"]
    exp: dict = {
        "record_no": gt["EventRecordID"],
        "event_id": eid,
        "ts": _us(gt["TimeCreated"]),
        "host": gt["Computer"],
        "provider": gt["Provider"],
        "msg_type": None,
    }
    if eid in (4768, 4769, 4771):
        status = int(d["Status"], 16)
        exp["error_code"] = status or None
        exp["error_name"] = ERROR_NAMES[status] if status else None
        exp["phase"] = "AS" if eid in (4768, 4771) else "TGS"
        exp["kdc_options"] = int(d["TicketOptions"], 16)
        ip = d["IpAddress"]
        exp["src_ip"] = ip[7:] if ip.startswith("::ffff:") else _none(ip)
        exp["src_port"] = int(d["IpPort"]) or None
        user = _none(d["TargetUserName"])
        if eid == 4769 and user and "@" in user:
            user = user.rsplit("@", 1)[0]
        exp["client"] = user
        exp["client_realm"] = _none(d.get("TargetDomainName"))
        exp["service"] = _none(d["ServiceName"])
        sid = d.get("ServiceSid")
        exp["service_sid"] = None if sid in (None, "S-1-0-0") else sid
        if "TicketEncryptionType" in d:
            te = int(d["TicketEncryptionType"], 16)
            exp["ticket_etype"] = None if te == 0xFFFFFFFF else te
        if "PreAuthType" in d:
            exp["preauth_type"] = None if d["PreAuthType"] == "-" else int(d["PreAuthType"])
    elif eid == 4624:
        exp["phase"] = "AP"
        exp["client"] = _none(d["TargetUserName"])
        exp["client_realm"] = _none(d["TargetDomainName"])
        exp["client_sid"] = _none(d["TargetUserSid"])
        exp["src_ip"] = _none(d["IpAddress"])
        exp["error_code"] = None
    elif eid in (4738, 4742):
        exp["client"] = d["TargetUserName"]
        exp["client_sid"] = d["TargetSid"]
        exp["phase"] = None
    elif eid == 5136:
        exp["client"] = d["ObjectDN"]
    else:  # System-log providers: no columns beyond the event itself; KDC 29 carries no code
        exp["phase"] = None
        exp["error_code"] = None
    return exp


@pytest.mark.corpus
@pytest.mark.parametrize("rel", CORPUS_FILES or ["(corpus absent)"])
def test_corpus_file_matches_ground_truth(rel: str) -> None:
    path = corpus_path("evtx", rel)
    truth = [json.loads(line) for line in Path(f"{path}.kerberos.jsonl").read_text().splitlines() if line.strip()]
    report = ParseReport(source=str(path))
    rows = list(read_evtx(str(path), report))
    assert [(r.record_no, r.event_id) for r in rows] == [(g["EventRecordID"], g["EventID"]) for g in truth]
    for row, gt in zip(rows, truth, strict=True):
        exp = _expected(gt)
        got = {k: getattr(row, k) for k in exp}
        assert got == exp, gt
        assert row.source_kind == "evtx"
        # every EventData field is either a column or in event_data, nothing invented
        left = json.loads(row.event_data) if row.event_data else {}
        assert set(left) <= set(gt["EventData"])
    assert set(report.issues) == KNOWN_ISSUES.get(rel, set())
    assert report.messages == len(truth)


@pytest.mark.corpus
def test_corpus_event_data_keeps_the_rest() -> None:
    """4769 keeps LogonGuid (upper-case, braces) and the UPN-form TargetUserName in event_data."""
    path = corpus_path(
        "evtx",
        "mdecrevoisier__EVTX-to-MITRE-Attack/TA0006-Credential Access/T1558-Steal or Forge Kerberos Tickets/"
        "ID4769-Kerberoast ticket with low encryption.evtx",
    )
    rows = list(read_evtx(str(path), ParseReport(source=str(path))))
    rc4 = [r for r in rows if r.ticket_etype == 0x17]
    assert len(rc4) == 1
    extra = json.loads(rc4[0].event_data)
    assert extra == {
        "LogonGuid": "{ED648110-ACF3-7F43-0CCB-256EF183156D}",
        "TargetUserName": "admmig@OFFSEC.LAN",
        "TransmittedServices": None,
    }
    skew = [r for r in rows if r.error_code == 0x25]
    assert len(skew) == 1 and skew[0].error_name == "KRB_AP_ERR_SKEW" and skew[0].client is None


@pytest.mark.corpus
@pytest.mark.slow
def test_python_evtx_backend_reads_past_a_dirty_file_header() -> None:
    """python-evtx's own iterator sees 326 of 1 881 records here (MANIFEST.md); the backend walks every chunk."""
    path = str(corpus_path("evtx", "omerbenamram__evtx/samples/system.evtx"))
    rust_report, python_report = ParseReport(source=path), ParseReport(source=path)
    rust = list(read_evtx(path, rust_report))
    python = list(read_evtx(path, python_report, backend="python-evtx"))
    assert rust_report.units == python_report.units == 1881
    assert len(rust) == len(python) == 27
    assert all(
        abs(a.ts - b.ts) <= 2 and a._replace(ts=0) == b._replace(ts=0) for a, b in zip(rust, python, strict=True)
    )
