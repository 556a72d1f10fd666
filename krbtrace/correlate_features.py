"""Multi-row conditions as columns, so that the rules (``krbtrace/rules/*.yaml``) stay single-row matches.

Every column here is computed per exchange and joined onto its rows. Windows and thresholds follow the public
rule sets summarised in ``windows-events.md`` §6-7 (Sigma, Hayabusa, Splunk): failures from one source are
grouped in bursts (a new burst after ``BURST_GAP_S`` of quiet); many accounts in one burst = spraying (or user
enumeration for unknown names), many failures of one account = brute force when fast, a stale stored credential
when slow and regular.
"""

from __future__ import annotations

import difflib
from typing import Final

import polars as pl

from parsers.eventmap import KERBEROS_CLIENT

from . import clocks
from . import correlate_changes as changes
from .exchanges import anonymous

BURST_GAP_S: Final = 1800
#: A KDC error 18 this soon after wrong passwords for the same account is a lockout caused by them.
LOCKOUT_LOOKBACK: Final = "30m"


def _bursts(x: pl.DataFrame, kind: str, keys: list[str]) -> pl.DataFrame:
    """Burst counts for one failure kind: ``burst_accounts``, ``burst_failures``, ``account_failures``, rate."""
    f = x.filter(pl.col("fail_kind") == kind).sort("start")
    if f.height == 0:
        return pl.DataFrame(schema={"exchange_id": pl.Int64})
    gap = (pl.col("start") - pl.col("start").shift(1).over(keys)) > pl.duration(seconds=BURST_GAP_S)
    f = f.with_columns(gap.fill_null(True).cum_sum().over(keys).alias("burst"))
    grp = [*keys, "burst"]
    acct = [*grp, "principal"]
    span = (pl.col("start").max() - pl.col("start").min()).dt.total_seconds().over(acct)
    return f.select(
        "exchange_id",
        pl.col("principal").n_unique().over(grp).cast(pl.Int64).alias("burst_accounts"),
        pl.len().over(grp).cast(pl.Int64).alias("burst_failures"),
        pl.len().over(acct).cast(pl.Int64).alias("account_failures"),
        (pl.len().over(acct) * 60.0 / pl.max_horizontal(span, pl.lit(60))).alias("account_rate_per_min"),
        span.cast(pl.Float64).alias("account_span_s"),
    )


def _spn_hints(x: pl.DataFrame) -> pl.DataFrame:
    """For each unknown SPN (error 7): a short host name, a missing port, or a near miss of a working SPN."""
    x = x.select("error_code", "phase", "outcome", "service")
    failed = x.filter(pl.col("error_code") == 7)["service"].drop_nulls().unique().to_list()
    good = x.filter((pl.col("phase") == "TGS") & (pl.col("outcome") == "ok"))["service"].drop_nulls().unique()
    good_list = [g for g in good.to_list() if "/" in g]
    rows = []
    for spn in failed:
        notes = []
        svc, _, host = spn.partition("/")
        hostname = host.split(":")[0].split("/")[0]
        if host and "." not in hostname and not spn.lower().startswith("krbtgt/"):
            notes.append(f"'{hostname}' is a short host name; SPNs are normally registered with the FQDN too")
        if svc.lower() == "mssqlsvc" and ":" not in host:
            notes.append("MSSQLSvc SPNs carry the port or instance name (MSSQLSvc/host.fqdn:1433)")
        near = difflib.get_close_matches(spn, good_list, n=1, cutoff=0.85)
        if near and near[0].lower() != spn.lower():
            notes.append(f"it looks like a typo of '{near[0]}', which works")
        elif near:
            notes.append(f"'{near[0]}' (different case) works")
        rows.append((spn, ("Note: " + "; ".join(notes) + ".") if notes else ""))
    return pl.DataFrame(rows, schema={"service": pl.String, "spn_hint": pl.String}, orient="row")


def exchange_features(x: pl.DataFrame, offsets: pl.DataFrame) -> pl.DataFrame:
    """The per-exchange columns the rules use (see the module docstring); one row per ``exchange_id``."""
    code = pl.col("error_code")
    x = x.with_columns(
        pl.when(code == 24)
        .then(pl.lit("preauth"))
        .when((code == 6) | ((code == 25) & (pl.col("outcome") == "failed")))
        .then(pl.lit("unknown"))
        .when(code == 18)
        .then(pl.lit("revoked"))
        .alias("fail_kind")
    )
    parts = [_bursts(x, kind, ["client_host"]) for kind in ("preauth", "unknown", "revoked")]
    bursts = pl.concat([p for p in parts if "burst_accounts" in p.columns] or [parts[0]], how="diagonal_relaxed")
    for c in ("burst_accounts", "burst_failures", "account_failures", "account_rate_per_min", "account_span_s"):
        if c not in bursts.columns:
            float_col = c.endswith(("_min", "_s"))
            bursts = bursts.with_columns(pl.lit(None, pl.Float64 if float_col else pl.Int64).alias(c))
    x = x.join(bursts, on="exchange_id", how="left")
    # Error 18 after wrong passwords for the same account: the lockout they caused.
    lk = x.filter(code.is_in([18, 24])).sort("start")
    if lk.height:
        lk = lk.with_columns(
            (pl.col("error_code") == 24)
            .cast(pl.Int64)
            .rolling_sum_by("start", window_size=LOCKOUT_LOOKBACK)
            .over("principal")
            .alias("prior_preauth_failures")
        ).select("exchange_id", "prior_preauth_failures")
        x = x.join(lk, on="exchange_id", how="left")
    else:
        x = x.with_columns(pl.lit(None, pl.Int64).alias("prior_preauth_failures"))
    spray_hosts = x.filter((pl.col("fail_kind") == "preauth") & (pl.col("burst_accounts") >= 5))["client_host"]
    x = x.join(_spn_hints(x), on="service", how="left")
    answered = x.filter(pl.col("has_rep") | pl.col("has_err"))["server_host"].drop_nulls().unique()
    x = x.join(_kdc_realms(x), on="server_host", how="left")
    return x.with_columns(
        pl.col("server_host").is_in(answered.implode()).alias("server_answered"),
        pl.col("client_host").is_in(spray_hosts.implode()).alias("from_spray_source"),
        (
            pl.col("service_realm").is_not_null()
            & pl.col("client_realm").is_not_null()
            & (pl.col("service_realm").str.to_uppercase() != pl.col("client_realm").str.to_uppercase())
        ).alias("cross_realm"),
        (pl.col("phase") == "AP").and_(pl.col("tgs_outcome") == "ok").fill_null(False).alias("tgs_succeeded"),
        pl.col("spn_hint").fill_null(""),
        # An AS request for a realm this KDC never issued a TGT for: MIT answers 6 (client unknown), not 68.
        (
            (pl.col("phase") == "AS")
            & pl.col("kdc_realms").is_not_null()
            & pl.col("client_realm").is_not_null()
            & ~pl.col("client_realm").str.to_uppercase().is_in(pl.col("kdc_realms"))
        )
        .fill_null(False)
        .alias("foreign_realm"),
        pl.when(pl.col("kdc_realms").is_not_null())
        .then(pl.lit(" (it issues tickets of ") + pl.col("kdc_realms").list.sort().list.join(", ") + pl.lit(")"))
        .otherwise(pl.lit(""))
        .alias("kdc_realm_note"),
    ).drop("kdc_realms")


def _named(col: str) -> pl.Expr:
    """The client name, or null where a KDC reply names WELLKNOWN/ANONYMOUS for a client it keeps encrypted (see
    :func:`krbtrace.exchanges.anonymous`): the attempt's client stands in."""
    hidden = pl.col("msg_type").is_in(["AS-REP", "TGS-REP"]).fill_null(False) & anonymous(col)
    return pl.when(~hidden).then(pl.col(col))


def _kdc_realms(x: pl.DataFrame) -> pl.DataFrame:
    """Per KDC (``server_host``), the realms of the TGTs it issued: the realms it serves (``kdc_realms``)."""
    ok_as = (pl.col("phase") == "AS") & (pl.col("outcome") == "ok") & pl.col("service_realm").is_not_null()
    return (
        x.filter(ok_as & pl.col("server_host").is_not_null())
        .group_by("server_host")
        .agg(pl.col("service_realm").str.to_uppercase().unique().alias("kdc_realms"))
    )


#: Contract columns the facts frame fills from the exchange; the raw values stay in ``raw_<name>``.
FILLED: Final = ("phase", "client", "client_realm", "service", "service_realm")


def add(df: pl.DataFrame, x: pl.DataFrame, offsets: pl.DataFrame) -> pl.DataFrame:
    """The facts frame: rows of ``df`` (with ``xid``) joined once with their exchange's ids and features.

    Adds ``exchange_id``, ``attempt_id``, ``outcome`` (``context`` for rows outside any exchange),
    ``clock_offset_s`` and the feature columns; keeps the row order of ``df``.
    """
    stime = (
        df.filter((pl.col("msg_type") == "KRB-ERROR") & pl.col("stime").is_not_null() & pl.col("xid").is_not_null())
        .group_by("xid")
        .agg(((pl.col("stime") - pl.col("ts")).dt.total_microseconds() / 1e6).first().alias("stime_offset_s"))
    )
    f = exchange_features(x, offsets).join(stime, on="xid", how="left")
    keep = [
        "xid",
        "exchange_id",
        "attempt_id",
        "outcome",
        "fail_kind",
        "burst_accounts",
        "burst_failures",
        "account_failures",
        "account_rate_per_min",
        "account_span_s",
        "prior_preauth_failures",
        "from_spray_source",
        "stime_offset_s",
        "spn_hint",
        "cross_realm",
        "foreign_realm",
        "kdc_realm_note",
        "tgs_succeeded",
        "tgs_kvno",
        "tgs_service_account",
        "service_account",
        "app_failed",
        "retry_outcome",
        "server_answered",
    ]
    xf = f.select(
        *keep,
        pl.col("phase").alias("x_phase"),
        pl.col("client_host").alias("x_client_host"),
        pl.col("server_host").alias("x_server_host"),
        # An AP-REQ or a failed TGS-REQ names no client in clear: the attempt's principal stands in for reports.
        pl.coalesce("client", pl.col("client").drop_nulls().first().over("attempt_id")).alias("x_client"),
        pl.col("service").alias("x_service"),
        pl.col("error_code").alias("x_error_code"),
        pl.col("transport").alias("x_transport"),
        pl.col("preauth").alias("x_preauth"),
        pl.col("client_realm").alias("x_client_realm"),
        pl.col("service_realm").alias("x_service_realm"),
    )
    out = df.join(xf, on="xid", how="left", maintain_order="left")
    best = clocks.best_by_host(offsets)
    by_host = dict(zip(best["host"].to_list(), best["offset_s"].to_list(), strict=True))
    is_event = pl.col("event_id").is_not_null()
    writer = pl.when(is_event).then(pl.col("host")).otherwise(pl.col("src_ip"))
    out = out.with_columns(*[pl.col(c).alias(f"raw_{c}") for c in FILLED]).with_columns(
        pl.col("outcome").fill_null(pl.lit("context")),
        pl.coalesce("phase", "x_phase").alias("phase"),
        pl.coalesce("x_client_host", "client_host").alias("client_host"),
        pl.coalesce("x_server_host", "server_host").alias("server_host"),
        pl.coalesce(_named("client"), "x_client").alias("client"),
        pl.coalesce("client_realm", "x_client_realm").alias("client_realm"),
        pl.coalesce("service_realm", "x_service_realm").alias("service_realm"),
        pl.coalesce("service", "x_service").alias("service"),
        # Security-Kerberos event 4 names the server that answered KRB_AP_ERR_MODIFIED ("received ... from the
        # server %1"): the account the service runs as, which could not decrypt a ticket made for another account.
        pl.when((pl.col("event_id") == 4) & (pl.col("provider") == KERBEROS_CLIENT))
        .then(pl.col("event_data").str.extract(r'"Server"\s*:\s*"([^"]+)"'))
        .alias("server_account"),
        writer.replace_strict(by_host, default=None, return_dtype=pl.Float64).alias("clock_offset_s"),
        pl.col("app_failed").fill_null(False),
        pl.col("from_spray_source").fill_null(False),
        pl.col("cross_realm").fill_null(False),
        pl.col("foreign_realm").fill_null(False),
        pl.col("kdc_realm_note").fill_null(""),
        pl.col("tgs_succeeded").fill_null(False),
        pl.col("spn_hint").fill_null(""),
        pl.col("server_answered").fill_null(False),
        # Seconds from the row to the last row of its file (the capture may end before an answer arrives).
        ((pl.col("ts").max().over("source") - pl.col("ts")).dt.total_microseconds() / 1e6).alias("capture_tail_s"),
    )
    # Clock offsets by the row's own hosts (context rows such as Security-Kerberos 3 have no exchange).
    lookups = []
    for side, prefer in (("client", ("client",)), ("server", ("kdc", "service", "dc", "host"))):
        best = clocks.best_by_host(offsets, prefer)
        host = pl.col(f"{side}_host")
        for col, name in (("offset_s", "offset_s"), ("method", "offset_method"), ("reference", "offset_reference")):
            table = dict(zip(best["host"].to_list(), best[col].to_list(), strict=True))
            dtype = pl.Float64 if col == "offset_s" else pl.String
            lookups.append(host.replace_strict(table, default=None, return_dtype=dtype).alias(f"{side}_{name}"))
    # Account changes (4738/4742/5136) that touch Kerberos settings: correlate_changes.py.
    return changes.add(out.with_columns(lookups))
