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

#: Columns the correlator adds to the timeline.
CORRELATION_COLUMNS: Final[pl.Schema] = pl.Schema(
    {
        "exchange_id": pl.Int64,
        "attempt_id": pl.Int64,
        "outcome": pl.String,
        "clock_offset_s": pl.Float64,
    }
)

CORRELATED: Final[pl.Schema] = pl.Schema({**TIMELINE, **CORRELATION_COLUMNS})

#: One row per diagnosis (``krbtrace.diagnose``).
FINDINGS: Final[pl.Schema] = pl.Schema(
    {
        "rule": pl.String,
        "severity": pl.String,
        "error_code": pl.Int32,
        "principals": pl.List(pl.String),
        "services": pl.List(pl.String),
        "hosts": pl.List(pl.String),
        "count": pl.Int64,
        "first_seen": UTC_US,
        "last_seen": UTC_US,
        "evidence": pl.List(pl.String),
        "explanation": pl.String,
        "remedy": pl.String,
    }
)
