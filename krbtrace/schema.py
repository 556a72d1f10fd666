"""The timeline contract as polars schemas, defined once (``docs/architecture.md``, "The contract").

``TIMELINE`` has one column per :class:`parsers.record.KrbRecord` field, in the same order. ``CORRELATED`` is the
timeline plus the correlator's columns. Columns after ``partial`` are krbtrace's additions to the architecture
table; the README documents every column.
"""

from __future__ import annotations

from typing import Final

import polars as pl

UTC_US: Final = pl.Datetime("us", "UTC")

TIMELINE: Final[pl.Schema] = pl.Schema(
    {
        "ts": UTC_US,
        "source": pl.String,
        "source_kind": pl.String,
        "record_no": pl.Int64,
        "host": pl.String,
        "provider": pl.String,
        "event_id": pl.Int32,
        "carrier": pl.String,
        "transport": pl.String,
        "src_ip": pl.String,
        "dst_ip": pl.String,
        "src_port": pl.Int32,
        "dst_port": pl.Int32,
        "msg_type": pl.String,
        "phase": pl.String,
        "error_code": pl.Int32,
        "error_name": pl.String,
        "e_text": pl.String,
        "nt_status": pl.Int64,
        "client": pl.String,
        "client_realm": pl.String,
        "service": pl.String,
        "service_realm": pl.String,
        "client_sid": pl.String,
        "service_sid": pl.String,
        "nonce": pl.Int64,
        "kdc_options": pl.Int64,
        "req_etypes": pl.List(pl.Int32),
        "etype": pl.Int32,
        "ticket_etype": pl.Int32,
        "ticket_kvno": pl.Int32,
        "pa_types": pl.List(pl.Int32),
        "preauth_type": pl.Int32,
        "till": UTC_US,
        "rtime": UTC_US,
        "stime": UTC_US,
        "ctime": UTC_US,
        "salts": pl.List(pl.String),
        "fast": pl.Boolean,
        "partial": pl.Boolean,
        # krbtrace additions
        "ticket_realm": pl.String,
        "ticket_service": pl.String,
        "ap_options": pl.Int64,
        "pac_request": pl.Boolean,
        "s4u_user": pl.String,
        "additional_tickets": pl.Int32,
        "salt_etypes": pl.List(pl.Int32),
        "kpasswd_result": pl.Int32,
        "app_status": pl.String,
        "event_data": pl.String,
    }
)

#: Columns the correlator adds to the timeline (``Analysis.timeline`` has ``CORRELATED``).
CORRELATION_COLUMNS: Final[pl.Schema] = pl.Schema(
    {
        "row_id": pl.Int64,  # position in the sorted timeline, the key that evidence lists refer to
        "exchange_id": pl.Int64,  # null for rows that are no request/reply/error (context events)
        "attempt_id": pl.Int64,
        "outcome": pl.String,  # of the row's exchange: ok, failed, expected, unanswered, unmatched, context
        "clock_offset_s": pl.Float64,  # the measured offset of the host that wrote the row's time, when known
    }
)

CORRELATED: Final[pl.Schema] = pl.Schema({**TIMELINE, **CORRELATION_COLUMNS})

#: One row per exchange: a request with its reply or error (or none), or one event standing for a whole exchange.
EXCHANGES: Final[pl.Schema] = pl.Schema(
    {
        "exchange_id": pl.Int64,
        "attempt_id": pl.Int64,
        "phase": pl.String,  # AS, TGS, AP, KPASSWD
        "outcome": pl.String,  # ok, failed, expected (PREAUTH_REQUIRED / RESPONSE_TOO_BIG step), unanswered, unmatched
        "start": UTC_US,
        "end": UTC_US,
        "client_host": pl.String,  # client IP, or the event's IpAddress
        "server_host": pl.String,  # KDC or service IP, or the event's Computer
        "client": pl.String,
        "client_realm": pl.String,
        "service": pl.String,
        "service_realm": pl.String,
        "error_code": pl.Int32,
        "error_name": pl.String,
        "carrier": pl.String,
        "transport": pl.String,
        "sources": pl.List(pl.String),  # source kinds that saw it: pcap, evtx, ... (cross-source links merge here)
        "row_ids": pl.List(pl.Int64),  # the timeline rows of this exchange
        "evidence": pl.List(pl.String),  # "file#frame" or "file#EventRecordID"
    }
)

#: One row per attempt: AS -> TGS -> AP of one client host and principal within a time window.
ATTEMPTS: Final[pl.Schema] = pl.Schema(
    {
        "attempt_id": pl.Int64,
        "client_host": pl.String,
        "client": pl.String,
        "start": UTC_US,
        "end": UTC_US,
        "as_outcome": pl.String,
        "tgs_outcome": pl.String,
        "ap_outcome": pl.String,
        "outcome": pl.String,  # ok, failed (at the first failed phase), unanswered, partial (phases not seen)
        "services": pl.List(pl.String),
        "exchanges": pl.Int64,
    }
)

#: One row per host whose clock could be compared with another's.
CLOCK_OFFSETS: Final[pl.Schema] = pl.Schema(
    {
        "host": pl.String,
        "role": pl.String,  # kdc, service, client, dc (Time-Service event)
        "offset_s": pl.Float64,  # host clock minus the reference clock (the capture host), seconds; + = ahead
        "reference": pl.String,  # what it was measured against: capture clock, DC clock, ...
        "method": pl.String,  # krb_error_stime, request_till, time_service_event, ...
        "samples": pl.Int64,
        "first_seen": UTC_US,
        "last_seen": UTC_US,
        "evidence": pl.List(pl.String),
    }
)

#: One row per diagnosis (``krbtrace.diagnose``), ordered by severity then count.
FINDINGS: Final[pl.Schema] = pl.Schema(
    {
        "rule": pl.String,  # the rule id (file name under krbtrace/rules/)
        "title": pl.String,
        "severity": pl.String,  # critical, high, medium, low, info
        "confidence": pl.String,  # high, medium, low
        "error_code": pl.Int32,
        "principals": pl.List(pl.String),
        "services": pl.List(pl.String),
        "hosts": pl.List(pl.String),
        "count": pl.Int64,
        "first_seen": UTC_US,
        "last_seen": UTC_US,
        "row_ids": pl.List(pl.Int64),
        "evidence": pl.List(pl.String),
        "explanation": pl.String,
        "remedy": pl.String,
    }
)
