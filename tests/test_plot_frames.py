"""Analysis frames built by hand from a scenario list, for the figure and HTML tests.

The scenario is data (who, from where, which phase, what outcome, how often), so the tests can count what a figure
must show from the list itself rather than from the code under test. Frames follow krbtrace.schema exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from krbtrace.schema import ATTEMPTS, CLOCK_OFFSETS, CORRELATED, EXCHANGES, FINDINGS

REALM = "CORP.EXAMPLE.COM"
KDC = "10.0.0.10"
T0 = datetime(2026, 3, 14, 9, 26, 0, tzinfo=UTC)
CODES = {
    "KDC_ERR_PREAUTH_REQUIRED": 25,
    "KDC_ERR_PREAUTH_FAILED": 24,
    "KRB_AP_ERR_SKEW": 37,
    "KDC_ERR_S_PRINCIPAL_UNKNOWN": 7,
    "KDC_ERR_CLIENT_REVOKED": 18,
}


@dataclass(frozen=True)
class Step:
    """``times`` exchanges of one phase by ``client`` from ``host``, ``gap_s`` apart, starting ``at_s`` after T0."""

    client: str
    host: str
    phase: str
    outcome: str
    error: str | None = None
    service: str | None = None
    at_s: float = 0.0
    times: int = 1
    gap_s: float = 5.0
    server: str = KDC


SCENARIO: list[Step] = [
    # alice logs on and opens a share: the ordinary AS (pre-auth round trip), TGS, AP sequence, three times
    *(
        s
        for k in range(3)
        for s in (
            Step("alice", "10.0.0.21", "AS", "expected", "KDC_ERR_PREAUTH_REQUIRED", "krbtgt/" + REALM, 60.0 * k),
            Step("alice", "10.0.0.21", "AS", "ok", None, "krbtgt/" + REALM, 60.0 * k + 0.01),
            Step("alice", "10.0.0.21", "TGS", "ok", None, "cifs/fs01.corp.example.com", 60.0 * k + 0.05),
            Step(
                "alice",
                "10.0.0.21",
                "AP",
                "ok",
                None,
                "cifs/fs01.corp.example.com",
                60.0 * k + 0.08,
                server="10.0.0.30",
            ),
        )
    ),
    # bob mistypes his password three times
    Step("bob", "10.0.0.22", "AS", "failed", "KDC_ERR_PREAUTH_FAILED", "krbtgt/" + REALM, 30.0, times=3, gap_s=4.0),
    # svc_backup's host runs 7.5 minutes ahead: the file server refuses its authenticator
    Step("svc_backup", "10.0.0.23", "AS", "ok", None, "krbtgt/" + REALM, 90.0),
    Step("svc_backup", "10.0.0.23", "TGS", "ok", None, "cifs/fs01.corp.example.com", 90.2),
    Step(
        "svc_backup",
        "10.0.0.23",
        "AP",
        "failed",
        "KRB_AP_ERR_SKEW",
        "cifs/fs01.corp.example.com",
        90.3,
        2,
        30.0,
        "10.0.0.30",
    ),
    # carol asks for a service ticket to an SPN nobody registered
    Step("carol", "10.0.0.24", "AS", "ok", None, "krbtgt/" + REALM, 120.0),
    Step(
        "carol",
        "10.0.0.24",
        "TGS",
        "failed",
        "KDC_ERR_S_PRINCIPAL_UNKNOWN",
        "HTTP/intranet.corp.example.com",
        120.1,
        2,
        10.0,
    ),
    # dave's request is never answered (the KDC was unreachable on UDP)
    Step("dave", "10.0.0.25", "AS", "unanswered", None, "krbtgt/" + REALM, 150.0, times=2, gap_s=3.0),
    # a disabled account from alice's workstation
    Step("olduser", "10.0.0.21", "AS", "failed", "KDC_ERR_CLIENT_REVOKED", "krbtgt/" + REALM, 170.0),
]

FAILED_BY_CLIENT = {"bob": 3, "svc_backup": 2, "carol": 2, "olduser": 1}
ERRORS_BY_NAME = {
    "KDC_ERR_PREAUTH_FAILED": 3,
    "KRB_AP_ERR_SKEW": 2,
    "KDC_ERR_S_PRINCIPAL_UNKNOWN": 2,
    "KDC_ERR_CLIENT_REVOKED": 1,
}


@dataclass
class Built:
    frames: dict[str, pl.DataFrame]
    rows_of: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (client, error) -> row ids

    def __getattr__(self, name: str) -> Any:
        try:
            return self.frames[name]
        except KeyError:
            raise AttributeError(name) from None


def build(steps: list[Step] | None = None, t0: datetime = T0) -> Built:
    """The frames of an analysis of ``steps`` (default :data:`SCENARIO`)."""
    steps = SCENARIO if steps is None else steps
    ex_rows: list[dict[str, Any]] = []
    tl_rows: list[dict[str, Any]] = []
    rows_of: dict[tuple[str, str], list[int]] = {}
    for st in steps:
        for k in range(st.times):
            start = t0 + timedelta(seconds=st.at_s + k * st.gap_s)
            xid = len(ex_rows)
            req = {"AS": "AS-REQ", "TGS": "TGS-REQ", "AP": "AP-REQ", "KPASSWD": "KPASSWD-REQ"}[st.phase]
            rep = req.replace("REQ", "REP") if st.error is None else "KRB-ERROR"
            msgs = [req] if st.outcome == "unanswered" else [req, rep]
            ids = []
            for i, msg in enumerate(msgs):
                rid = len(tl_rows)
                ids.append(rid)
                reply = i == 1
                tl_rows.append(
                    {
                        "ts": start + timedelta(milliseconds=3 * i),
                        "source": "scenario.pcap",
                        "source_kind": "pcap",
                        "record_no": rid + 1,
                        "carrier": "kdc" if st.phase != "AP" else "smb2",
                        "transport": "tcp",
                        "src_ip": st.server if reply else st.host,
                        "dst_ip": st.host if reply else st.server,
                        "src_port": 88 if reply else 50000 + xid,
                        "dst_port": 50000 + xid if reply else 88,
                        "msg_type": msg,
                        "phase": st.phase,
                        "error_code": CODES[st.error] if reply and st.error else None,
                        "error_name": st.error if reply else None,
                        "client": st.client,
                        "client_realm": REALM,
                        "service": st.service,
                        "service_realm": REALM,
                        "partial": False,
                        "row_id": rid,
                        "exchange_id": xid,
                        "attempt_id": None,
                        "outcome": st.outcome,
                    }
                )
            if st.error:
                rows_of.setdefault((st.client, st.error), []).extend(ids)
            ex_rows.append(
                {
                    "exchange_id": xid,
                    "phase": st.phase,
                    "outcome": st.outcome,
                    "start": start,
                    "end": None if st.outcome == "unanswered" else start + timedelta(milliseconds=3),
                    "client_host": st.host,
                    "server_host": st.server,
                    "client": st.client,
                    "client_realm": REALM,
                    "service": st.service,
                    "service_realm": REALM,
                    "error_code": CODES[st.error] if st.error else None,
                    "error_name": st.error,
                    "carrier": "kdc",
                    "transport": "tcp",
                    "sources": ["pcap"],
                    "row_ids": ids,
                    "evidence": [f"scenario.pcap#{r + 1}" for r in ids],
                }
            )
    # row_id is the position in the time-sorted timeline (and the frame number, as if one capture saw it all)
    order = sorted(range(len(tl_rows)), key=lambda r: (tl_rows[r]["ts"], r))
    renum = {old: new for new, old in enumerate(order)}
    for row in tl_rows:
        row["row_id"] = renum[row["row_id"]]
        row["record_no"] = row["row_id"] + 1
    for ex in ex_rows:
        ex["row_ids"] = [renum[r] for r in ex["row_ids"]]
        ex["evidence"] = [f"scenario.pcap#{r + 1}" for r in ex["row_ids"]]
    rows_of = {k: [renum[r] for r in v] for k, v in rows_of.items()}
    timeline = pl.DataFrame(tl_rows, schema=CORRELATED).sort("row_id")
    exchanges = pl.DataFrame(ex_rows, schema=EXCHANGES)
    return Built(
        {
            "timeline": timeline,
            "exchanges": exchanges,
            "attempts": pl.DataFrame(schema=ATTEMPTS),
            "findings": _findings(rows_of, t0),
            "clock_offsets": _offsets(t0),
        },
        rows_of,
    )


def _finding(
    rule: str,
    title: str,
    sev: str,
    code: int,
    who: str,
    svc: str,
    host: str,
    ids: list[int],
    t0: datetime,
    explanation: str,
    remedy: str,
) -> dict[str, Any]:
    return {
        "rule": rule,
        "title": title,
        "severity": sev,
        "confidence": "high",
        "error_code": code,
        "principals": [who],
        "services": [svc],
        "hosts": [host],
        "count": len(ids) // 2,
        "first_seen": t0,
        "last_seen": t0 + timedelta(minutes=3),
        "row_ids": ids,
        "evidence": [f"scenario.pcap#{r + 1}" for r in ids],
        "explanation": explanation,
        "remedy": remedy,
    }


def _findings(rows_of: dict[tuple[str, str], list[int]], t0: datetime) -> pl.DataFrame:
    rows = [
        _finding(
            "clock_skew",
            "Client clock outside the 5-minute tolerance",
            "high",
            37,
            "svc_backup",
            "cifs/fs01.corp.example.com",
            "10.0.0.23",
            rows_of.get(("svc_backup", "KRB_AP_ERR_SKEW"), []),
            t0,
            "The service rejected the authenticator: 10.0.0.23 runs +7m30s ahead of the file server.",
            "Point 10.0.0.23 at the domain time hierarchy (w32tm /resync) and check its NTP source.",
        ),
        _finding(
            "missing_spn",
            "Service principal name not registered",
            "medium",
            7,
            "carol",
            "HTTP/intranet.corp.example.com",
            "10.0.0.24",
            rows_of.get(("carol", "KDC_ERR_S_PRINCIPAL_UNKNOWN"), []),
            t0,
            "The KDC knows no account with SPN HTTP/intranet.corp.example.com <script>alert(1)</script>.",
            "setspn -S HTTP/intranet.corp.example.com <service account>",
        ),
        _finding(
            "wrong_password",
            "Repeated wrong password",
            "medium",
            24,
            "bob",
            "krbtgt/" + REALM,
            "10.0.0.22",
            rows_of.get(("bob", "KDC_ERR_PREAUTH_FAILED"), []),
            t0,
            "Pre-authentication failed three times for bob.",
            "Check for a stale saved credential on 10.0.0.22.",
        ),
    ]
    return pl.DataFrame(rows, schema=FINDINGS)


OFFSETS = {"10.0.0.23": 450.0, "10.0.0.10": 0.4, "10.0.0.30": -12.0, "10.0.0.31": -400.0}


def _offsets(t0: datetime) -> pl.DataFrame:
    roles = {"10.0.0.23": "client", "10.0.0.10": "kdc", "10.0.0.30": "service", "10.0.0.31": "service"}
    return pl.DataFrame(
        [
            {
                "host": h,
                "role": roles[h],
                "offset_s": v,
                "reference": "capture clock",
                "method": "krb_error_stime",
                "samples": 2,
                "first_seen": t0,
                "last_seen": t0 + timedelta(minutes=2),
                "evidence": ["scenario.pcap#1"],
            }
            for h, v in OFFSETS.items()
        ],
        schema=CLOCK_OFFSETS,
    )


def large(principals: int = 3000, per: int = 4, t0: datetime = T0) -> Built:
    """A big incident: ``principals`` users each with ``per`` exchanges over a day, every 7th user failing."""
    steps = []
    for i in range(principals):
        host = f"10.{1 + i // 60000}.{i // 250 % 240}.{i % 250 + 1}"
        fail = i % 7 == 0
        steps.append(
            Step(
                f"user{i:05d}",
                host,
                "AS",
                "failed" if fail else "ok",
                "KDC_ERR_PREAUTH_FAILED" if fail else None,
                "krbtgt/" + REALM,
                (i * 86400 / principals) % 86400,
                per,
                11.0,
            )
        )
    return build(steps, t0)


def test_truth_tables_match_the_scenario() -> None:
    failed: dict[str, int] = {}
    names: dict[str, int] = {}
    for st in SCENARIO:
        if st.outcome == "failed":
            failed[st.client] = failed.get(st.client, 0) + st.times
            names[str(st.error)] = names.get(str(st.error), 0) + st.times
    assert failed == FAILED_BY_CLIENT
    assert names == ERRORS_BY_NAME
    b = build()
    assert b.exchanges.height == sum(st.times for st in SCENARIO)
    assert b.timeline.height == sum(st.times * (1 if st.outcome == "unanswered" else 2) for st in SCENARIO)
    assert b.timeline["row_id"].to_list() == sorted(b.timeline["row_id"].to_list())
