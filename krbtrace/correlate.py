"""The correlator: timeline -> exchanges, attempts, clock offsets and the facts the rules match on.

Data flow (each step a polars frame operation, no per-row Python):
``exchanges.prepare`` (sort, row ids, request direction) -> ``exchanges.assign`` (pair by conversation and order)
-> ``exchanges.summarise`` / ``mark_expected`` (outcome per exchange) -> cross-source links (a DC event and the
same exchange in a capture become one exchange) -> ``attempts`` (AS -> TGS -> AP) -> ``clocks`` -> facts
(``correlate_features``) for :mod:`krbtrace.diagnose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import polars as pl

from . import attempts as att
from . import clocks
from . import correlate_features as features
from . import exchanges as exch
from .schema import CORRELATED, EXCHANGES, TIMELINE

#: Largest distance between an event's time and a captured exchange's (after any measured KDC offset) for a link.
LINK_TOLERANCE_S: Final = 5.0


@dataclass(frozen=True)
class Correlation:
    """What :func:`correlate` returns: the correlated timeline, exchanges, attempts, clock offsets and facts."""

    timeline: pl.DataFrame
    exchanges: pl.DataFrame
    attempts: pl.DataFrame
    clock_offsets: pl.DataFrame
    facts: pl.DataFrame


def _link_keys(x: pl.DataFrame) -> pl.DataFrame:
    code = pl.coalesce("error_code", pl.when(pl.col("outcome") == "ok").then(pl.lit(0)).otherwise(pl.lit(-1)))
    return x.filter(pl.col("phase").is_in(["AS", "TGS", "AP"]) & pl.col("client_host").is_not_null()).select(
        "xid",
        "phase",
        pl.col("client_host").alias("k_host"),
        # AP outcomes differ in form (KRB-ERROR code vs 4625 NTSTATUS): match on ok / failed only.
        pl.when(pl.col("phase") == "AP").then((code != 0).cast(pl.Int32)).otherwise(code).alias("k_code"),
        pl.when(pl.col("phase") == "AS").then(exch.principal_key().fill_null("")).otherwise(pl.lit("")).alias("k_p"),
        "start",
        "server_host",
        "is_event",
        pl.col("evidence").list.first().alias("ev"),
    )


def link_sources(x: pl.DataFrame, offsets: pl.DataFrame) -> pl.DataFrame:
    """Pairs (``ev_xid``, ``cap_xid``, ``host``, ``ts``, ``capture_ts``) of an event and its captured exchange.

    Keys: phase, client address, error code (or ok/failed for AP) and, for AS, the principal; times within
    ``LINK_TOLERANCE_S`` after shifting the capture time by the KDC's measured offset. Each captured exchange takes
    at most one event (the nearest).
    """
    keys = _link_keys(x)
    best = clocks.best_by_host(offsets).select(pl.col("host").alias("server_host"), pl.col("offset_s").alias("off"))
    caps = (
        keys.filter(~pl.col("is_event"))
        .join(best, on="server_host", how="left")
        .with_columns(
            (pl.col("start") + pl.duration(microseconds=(pl.col("off").fill_null(0.0) * 1e6).cast(pl.Int64))).alias("t")
        )
        .select(pl.col("xid").alias("cap_xid"), "phase", "k_host", "k_code", "k_p", "t", pl.col("start").alias("cs"))
        .sort("t")
    )
    evs = keys.filter(pl.col("is_event")).select(
        pl.col("xid").alias("ev_xid"),
        "phase",
        "k_host",
        "k_code",
        "k_p",
        "start",
        pl.col("server_host").alias("host"),
        "ev",
    )
    empty = pl.DataFrame(
        schema={
            "ev_xid": pl.Int64,
            "cap_xid": pl.Int64,
            "host": pl.String,
            "ts": exch_ts(),
            "capture_ts": exch_ts(),
            "ev": pl.String,
        }
    )
    if caps.height == 0 or evs.height == 0:
        return empty
    j = evs.sort("start").join_asof(
        caps,
        left_on="start",
        right_on="t",
        by=["phase", "k_host", "k_code", "k_p"],
        strategy="nearest",
        tolerance=timedelta(seconds=LINK_TOLERANCE_S),
        check_sortedness=False,
    )
    j = (
        j.filter(pl.col("cap_xid").is_not_null())
        .with_columns((pl.col("start") - pl.col("t")).abs().alias("dist"))
        .sort("dist")
        .unique("cap_xid", keep="first")
        .select("ev_xid", "cap_xid", "host", pl.col("start").alias("ts"), pl.col("cs").alias("capture_ts"), "ev")
    )
    return j


def exch_ts() -> pl.DataType:
    """The timestamp type of exchange times."""
    return TIMELINE["ts"]


def merge_links(x: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Fold each linked event exchange into its captured exchange (rows, evidence, sources, names)."""
    if pairs.height == 0:
        return x.with_columns(pl.lit(None, pl.String).alias("service_account"))
    ev = x.join(pairs.select("ev_xid", "cap_xid"), left_on="xid", right_on="ev_xid", how="inner").select(
        "cap_xid",
        pl.col("sources").alias("e_sources"),
        pl.col("row_ids").alias("e_rows"),
        pl.col("evidence").alias("e_ev"),
        pl.col("client").alias("e_client"),
        pl.col("client_realm").alias("e_realm"),
        pl.col("service").alias("e_service"),
    )
    x = x.filter(~pl.col("xid").is_in(pairs["ev_xid"].implode())).join(
        ev, left_on="xid", right_on="cap_xid", how="left"
    )
    linked = pl.col("e_sources").is_not_null()
    return x.with_columns(
        pl.when(linked).then(pl.concat_list("sources", "e_sources").list.unique().list.sort()).otherwise("sources"),
        pl.when(linked).then(pl.concat_list("row_ids", "e_rows").list.sort()).otherwise("row_ids"),
        pl.when(linked).then(pl.concat_list("evidence", "e_ev")).otherwise("evidence"),
        pl.coalesce("client", "e_client").alias("client"),
        pl.coalesce("client_realm", "e_realm").alias("client_realm"),
        # 4769 names the account that owns the SPN: the account hint for AP-phase diagnoses.
        pl.when(pl.col("phase") == "TGS").then(pl.col("e_service")).alias("service_account"),
    ).drop("e_sources", "e_rows", "e_ev", "e_client", "e_realm", "e_service")


def correlate(df: pl.DataFrame) -> Correlation:
    """Correlate a timeline (``TIMELINE`` columns, any order).

    Returns the timeline with ``CORRELATED`` columns (sorted by time; ``row_id`` is the position), one row per
    exchange (``EXCHANGES``), per attempt (``ATTEMPTS``), the clock offsets (``CLOCK_OFFSETS``) and the facts
    frame (the timeline plus helper and multi-row columns that the rules match on).
    """
    missing = [c for c in TIMELINE.names() if c not in df.columns]
    if missing:
        raise ValueError(f"not a krbtrace timeline: missing columns {missing}")
    df = exch.assign(exch.prepare(df.select(TIMELINE.names()).cast(dict(TIMELINE))))  # type: ignore[arg-type]
    x = exch.mark_expected(exch.summarise(df), df)
    first_offsets = clocks.estimate(df)
    pairs = link_sources(x, first_offsets)
    x = merge_links(x, pairs)
    if pairs.height:
        remap = pairs.select("ev_xid", "cap_xid")
        df = (
            df.join(remap, left_on="xid", right_on="ev_xid", how="left", maintain_order="left")
            .with_columns(pl.coalesce("cap_xid", "xid").alias("xid"))
            .drop("cap_xid")
        )
    x = exch.number(x).with_columns(exch.principal_key().alias("principal"))
    x = att.sessionize(att.link_ap(x))
    attempts = att.attempts(x)
    offsets = clocks.estimate(df, pairs)
    facts = features.add(df, x, offsets)
    if not facts["row_id"].is_sorted():
        facts = facts.sort("row_id")
    # The timeline keeps each message's own names; only the phase (of an error: its exchange's) and the clock
    # column come from the correlation. The facts frame fills names from the exchange for the rules.
    raw = {c: pl.col(f"raw_{c}") for c in features.FILLED if c != "phase"}
    timeline = facts.select([raw[c].alias(c) if c in raw else pl.col(c) for c in CORRELATED.names()])
    exchanges = x.select(EXCHANGES.names()).cast(dict(EXCHANGES)).sort("exchange_id")  # type: ignore[arg-type]
    return Correlation(timeline, exchanges, attempts, offsets, facts)
