"""Exchanges -> attempts: the AS -> TGS -> AP story of one client host and principal (RFC 4120 §1.1, §3).

An attempt starts at each AS exchange that is not the retry after an expected step (PREAUTH_REQUIRED or
RESPONSE_TOO_BIG), or when the client host was quiet for ``GAP_S``; TGS and AP exchanges of the same host join
the current attempt. An AP-REQ is linked to the TGS exchange that issued its ticket (same client host, same
service name, the latest successful TGS before it within a ticket lifetime) and joins that exchange's attempt.
From events: 4768 then 4769 from the same address form one attempt; 4771 is an AS exchange.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import polars as pl

from .schema import ATTEMPTS

#: A client host quiet this long starts a new attempt.
GAP_S: Final = 600
#: A service ticket is used within its lifetime (10 h by default in AD and MIT).
TICKET_LIFETIME_S: Final = 36_000


def _svc_key(col: str) -> pl.Expr:
    return pl.col(col).str.to_lowercase().str.replace(r"@[^@]*$", "")


def link_ap(x: pl.DataFrame) -> pl.DataFrame:
    """Add ``tgs_exchange_id`` (the TGS exchange that issued an AP exchange's ticket) and ``tgs_outcome``."""
    tgs = (
        x.filter((pl.col("phase") == "TGS") & (pl.col("outcome") == "ok") & pl.col("client_host").is_not_null())
        .select(
            pl.col("client_host").alias("k_host"),
            pl.coalesce(_svc_key("ticket_service"), _svc_key("service")).alias("k_svc"),
            pl.col("start").alias("tgs_ts"),
            pl.col("exchange_id").alias("tgs_exchange_id"),
            pl.col("outcome").alias("tgs_outcome"),
            pl.col("ticket_kvno").alias("tgs_kvno"),
            pl.col("service_account").alias("tgs_service_account"),
        )
        .filter(pl.col("k_svc").is_not_null())
        .sort("tgs_ts")
    )
    ap = x.filter(pl.col("phase") == "AP").select(
        "exchange_id",
        pl.col("client_host").alias("k_host"),
        pl.coalesce(_svc_key("ticket_service"), _svc_key("service")).alias("k_svc"),
        pl.col("start").alias("ap_ts"),
    )
    empty = {
        "tgs_exchange_id": pl.Int64,
        "tgs_outcome": pl.String,
        "tgs_kvno": pl.Int32,
        "tgs_service_account": pl.String,
    }
    if ap.height == 0 or tgs.height == 0:
        return x.with_columns(pl.lit(None, dtype).alias(name) for name, dtype in empty.items())
    j = ap.sort("ap_ts").join_asof(
        tgs,
        left_on="ap_ts",
        right_on="tgs_ts",
        by=["k_host", "k_svc"],
        strategy="backward",
        tolerance=timedelta(seconds=TICKET_LIFETIME_S),
        check_sortedness=False,
    )
    return x.join(j.select("exchange_id", *empty), on="exchange_id", how="left")


def sessionize(x: pl.DataFrame) -> pl.DataFrame:
    """Add ``attempt_id`` to the exchange frame (columns of ``exchanges.summarise`` plus ``exchange_id``)."""
    x = x.sort(["client_host", "start", "exchange_id"], nulls_last=True)
    same = pl.col("client_host").eq_missing(pl.col("client_host").shift(1)).fill_null(False)

    def prev(col: str) -> pl.Expr:
        return pl.when(same).then(pl.col(col).shift(1))

    prev_start, prev_phase, prev_outcome, prev_princ = (prev(c) for c in ("start", "phase", "outcome", "principal"))
    # The pre-authenticated AS-REQ after PREAUTH_REQUIRED, the TCP retry after RESPONSE_TOO_BIG and a client's new
    # try after no answer all continue the same logon.
    retry_after_step = (
        (prev_phase == "AS")
        & prev_outcome.is_in(["expected", "unanswered"])
        & prev_princ.eq_missing(pl.col("principal"))
    )
    new = (
        prev_start.is_null()
        | ((pl.col("start") - prev_start) > pl.duration(seconds=GAP_S))
        | ((pl.col("phase") == "AS") & ~retry_after_step.fill_null(False))
    )
    x = x.with_columns(new.fill_null(True).cum_sum().cast(pl.Int64).alias("attempt_id"))
    # An AP exchange belongs to the attempt of the TGS exchange that issued its ticket.
    by_tgs = x.select(pl.col("exchange_id").alias("tgs_exchange_id"), pl.col("attempt_id").alias("tgs_attempt"))
    x = x.join(by_tgs, on="tgs_exchange_id", how="left").with_columns(
        pl.coalesce("tgs_attempt", "attempt_id").alias("attempt_id")
    )
    # Renumber in time order so ids read naturally.
    order = (
        x.group_by("attempt_id")
        .agg(pl.col("start").min().alias("a_start"), pl.col("exchange_id").min().alias("a_first"))
        .sort(["a_start", "a_first"])
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("new_id"))
    )
    x = x.join(order.select("attempt_id", "new_id"), on="attempt_id", how="left")
    return x.with_columns(pl.col("new_id").alias("attempt_id")).drop("new_id", "tgs_attempt").sort("exchange_id")


def _phase_outcome(phase: str) -> pl.Expr:
    o = pl.col("outcome").filter(pl.col("phase") == phase)
    return (
        pl.when(o.is_in(["failed"]).any())
        .then(pl.lit("failed"))
        .when(o.is_in(["ok"]).any())
        .then(pl.lit("ok"))
        .when(o.is_in(["unanswered"]).any())
        .then(pl.lit("unanswered"))
        .when(o.is_in(["expected"]).any())
        .then(pl.lit("expected"))
        .when(o.is_in(["unmatched"]).any())
        .then(pl.lit("unmatched"))
        .otherwise(pl.lit(None, pl.String))
    )


def attempts(x: pl.DataFrame) -> pl.DataFrame:
    """One row per attempt (``ATTEMPTS`` columns) from the exchange frame with ``attempt_id``."""
    if x.height == 0:
        return ATTEMPTS.to_frame()
    a = x.group_by("attempt_id").agg(
        pl.col("client_host").drop_nulls().first(),
        pl.coalesce(
            pl.col("client").filter(pl.col("phase") == "AS").drop_nulls().first(), pl.col("client").drop_nulls().first()
        ).alias("client"),
        pl.col("start").min(),
        pl.col("end").max(),
        _phase_outcome("AS").alias("as_outcome"),
        _phase_outcome("TGS").alias("tgs_outcome"),
        _phase_outcome("AP").alias("ap_outcome"),
        pl.col("service").filter(pl.col("phase").is_in(["TGS", "AP"])).drop_nulls().unique().sort().alias("services"),
        pl.len().cast(pl.Int64).alias("exchanges"),
        (pl.col("outcome") == "unanswered").any().alias("_unans"),
        (pl.col("outcome") == "ok").any().alias("_ok"),
        (pl.col("outcome") == "failed").any().alias("_failed"),
    )
    failed = pl.any_horizontal(*(pl.col(c) == "failed" for c in ("as_outcome", "tgs_outcome", "ap_outcome")))
    outcome = (
        pl.when(failed | pl.col("_failed"))
        .then(pl.lit("failed"))
        .when(pl.col("_unans"))
        .then(pl.lit("unanswered"))
        .when(pl.col("_ok"))
        .then(pl.lit("ok"))
        .otherwise(pl.lit("partial"))
    )
    a = a.with_columns(outcome.alias("outcome")).sort("attempt_id")
    return a.select(list(ATTEMPTS.names())).cast(dict(ATTEMPTS))  # type: ignore[arg-type]
