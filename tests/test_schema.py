"""The timeline contract: KrbRecord and TIMELINE agree, and the frame builder keeps every value."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from krbtrace.schema import CORRELATED, TIMELINE
from krbtrace.timeline import frame
from parsers.record import FIELDS, KrbRecord, from_datetime, to_datetime

ARCHITECTURE_COLUMNS = (
    "ts source source_kind record_no host provider event_id carrier transport src_ip dst_ip src_port dst_port "
    "msg_type phase error_code error_name e_text nt_status client client_realm service service_realm client_sid "
    "service_sid nonce kdc_options req_etypes etype ticket_etype ticket_kvno pa_types preauth_type till rtime "
    "stime ctime salts fast partial"
).split()


def test_record_fields_match_schema_in_order():
    assert list(FIELDS) == list(TIMELINE.names())


def test_architecture_columns_come_first_in_their_order():
    assert list(TIMELINE.names())[: len(ARCHITECTURE_COLUMNS)] == ARCHITECTURE_COLUMNS


def test_correlated_extends_timeline():
    assert list(CORRELATED.names())[: len(TIMELINE)] == list(TIMELINE.names())
    assert {"exchange_id", "attempt_id", "outcome", "clock_offset_s"} <= set(CORRELATED.names())


def test_time_round_trip():
    when = datetime(2037, 9, 13, 2, 48, 5, 123456, tzinfo=UTC)
    assert to_datetime(from_datetime(when)) == when
    assert to_datetime(None) is None


def test_frame_keeps_values_lists_and_nulls():
    t0 = from_datetime(datetime(2024, 3, 1, 12, 0, 0, 1, tzinfo=UTC))
    rows = [
        KrbRecord(
            ts=t0,
            source="a.pcap",
            source_kind="pcap",
            record_no=3,
            msg_type="AS-REQ",
            req_etypes=(18, 17, -133),
            pa_types=(),
            salts=("EXAMPLE.TESTalice", None, ""),
            salt_etypes=(18, 23, 17),
            fast=False,
            till=from_datetime(datetime(2037, 9, 13, 2, 48, 5, tzinfo=UTC)),
        ),
        KrbRecord(ts=t0 + 1, source="a.pcap", source_kind="pcap"),
    ]
    df = frame(rows)
    assert df.schema == TIMELINE
    first, second = df.row(0, named=True), df.row(1, named=True)
    assert first["ts"] == datetime(2024, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
    assert first["req_etypes"] == [18, 17, -133]
    assert first["pa_types"] == []
    assert first["salts"] == ["EXAMPLE.TESTalice", None, ""]
    assert first["salt_etypes"] == [18, 23, 17]
    assert first["fast"] is False
    assert first["till"] == datetime(2037, 9, 13, 2, 48, 5, tzinfo=UTC)
    assert second["req_etypes"] is None and second["salts"] is None and second["msg_type"] is None


def test_empty_frame_has_schema():
    df = frame([])
    assert df.height == 0 and df.schema == TIMELINE


def test_frame_batches_concatenate(monkeypatch):
    import krbtrace.timeline as tl

    monkeypatch.setattr(tl, "BATCH_ROWS", 7)
    rows = [KrbRecord(ts=i, source="x", source_kind="pcap", record_no=i, req_etypes=(i,)) for i in range(20)]
    df = frame(rows)
    assert df["record_no"].to_list() == list(range(20))
    assert df["req_etypes"].to_list() == [[i] for i in range(20)]
    assert df.schema == TIMELINE
    assert isinstance(df["ts"].dtype, pl.Datetime)
