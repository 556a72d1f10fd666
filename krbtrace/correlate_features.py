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

from parsers.krb5.constants import DEFAULT_SKEW_SECONDS, ERROR_MEANINGS, NTSTATUS_NAMES

from . import clocks

BURST_GAP_S: Final = 1800
#: A KDC error 18 this soon after wrong passwords for the same account is a lockout caused by them.
LOCKOUT_LOOKBACK: Final = "30m"
#: Windows NTSTATUS in KERB-EXT-ERROR / 4625 that mean "locked out" and "clocks out of sync".
STATUS_LOCKED_OUT: Final = 0xC0000234
STATUS_TIME_DIFFERENCE: Final = 0xC0000133
#: MIT e-text status words (``kerberos-protocol.md`` §3) and what they tell beyond the code.
ETEXT_HINTS: Final[dict[str, str]] = {
    "PROCESS_TGS": "MIT could not process the TGS request, typically a TGT whose krbtgt key version no longer "
    "exists (the krbtgt key was changed): get a new TGT (kinit, or klist purge on Windows).",
    "LOCKED_OUT": "the MIT KDC reports the account locked out by its lockout policy.",
    "CLIENT KEY EXPIRED": "the password has expired and must be changed.",
    "CLIENT EXPIRED": "the principal's expiry date has passed.",
    "NEEDED_PREAUTH": "the KDC asks for pre-authentication (normal first step).",
    "LOOKING_UP_SERVER": "the KDC has no such service principal.",
    "TICKET NOT RENEWABLE": "a renewal was asked for a ticket that is not renewable.",
    "TGT NOT FORWARDABLE": "a forwardable ticket was asked from a TGT that is not forwardable.",
}
NTSTATUS_HINTS: Final[dict[int, str]] = {
    0xC000006A: "wrong password",
    0xC0000064: "no such user",
    0xC0000072: "account disabled",
    0xC0000193: "account expired",
    0xC0000234: "account locked out",
    0xC000006F: "outside the allowed logon hours",
    0xC0000070: "not allowed from this workstation",
    0xC0000071: "password expired",
    0xC0000224: "password must be changed",
    0xC000015B: "logon type not granted",
    0xC0000133: "clocks out of sync with the DC",
    0xC000018C: "trust relationship failure",
    0xC0000413: "authentication firewall (selective authentication) refused it",
}


def _fmt(expr: pl.Expr) -> pl.Expr:
    """A signed number of seconds as text (``+600.0``)."""
    sign = pl.when(expr >= 0).then(pl.lit("+")).otherwise(pl.lit(""))
    return pl.concat_str([sign, expr.round(1).cast(pl.String)])


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
    )


def _spn_hints(x: pl.DataFrame) -> pl.DataFrame:
    """For each unknown SPN (error 7): a short host name, a missing port, or a near miss of a working SPN."""
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
    parts = [_bursts(x, "preauth", ["client_host"]), _bursts(x, "unknown", ["client_host"])]
    bursts = pl.concat([p for p in parts if "burst_accounts" in p.columns] or [parts[0]], how="diagonal_relaxed")
    for c in ("burst_accounts", "burst_failures", "account_failures", "account_rate_per_min"):
        if c not in bursts.columns:
            bursts = bursts.with_columns(pl.lit(None, pl.Float64 if "rate" in c else pl.Int64).alias(c))
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
    best = clocks.best_by_host(offsets)
    srv = best.select(
        pl.col("host").alias("server_host"),
        pl.col("offset_s").alias("server_offset_s"),
        pl.col("method").alias("server_offset_method"),
    )
    cli = best.select(
        pl.col("host").alias("client_host"),
        pl.col("offset_s").alias("client_offset_s"),
        pl.col("method").alias("client_offset_method"),
    )
    x = x.join(srv, on="server_host", how="left").join(cli, on="client_host", how="left")
    x = x.join(_spn_hints(x), on="service", how="left")
    answered = x.filter(pl.col("has_rep") | pl.col("has_err"))["server_host"].drop_nulls().unique()
    return x.with_columns(
        pl.col("server_host").is_in(answered.implode()).alias("server_answered"),
        pl.col("client_host").is_in(spray_hosts.implode()).alias("from_spray_source"),
        pl.col("error_code")
        .replace_strict(ERROR_MEANINGS, default=None, return_dtype=pl.String)
        .alias("error_meaning"),
        pl.col("nt_status")
        .replace_strict(NTSTATUS_NAMES, default=None, return_dtype=pl.String)
        .alias("nt_status_name"),
        pl.col("nt_status")
        .replace_strict(NTSTATUS_HINTS, default=None, return_dtype=pl.String)
        .alias("nt_status_hint"),
        (
            pl.col("service_realm").is_not_null()
            & pl.col("client_realm").is_not_null()
            & (pl.col("service_realm").str.to_uppercase() != pl.col("client_realm").str.to_uppercase())
        ).alias("cross_realm"),
        (pl.col("phase") == "AP").and_(pl.col("tgs_outcome") == "ok").fill_null(False).alias("tgs_succeeded"),
        pl.col("spn_hint").fill_null(""),
    )


def _skew_detail() -> pl.Expr:
    """One sentence saying which clock is off, from the measured offsets (empty when nothing was measured)."""
    limit = DEFAULT_SKEW_SECONDS
    srv = pl.coalesce("stime_offset_s", "server_offset_s")
    cli = pl.col("client_offset_s")
    return (
        pl.when(srv.abs() > limit)
        .then(
            pl.concat_str(
                [
                    pl.lit("The server "),
                    pl.col("server_host").fill_null("?"),
                    pl.lit("'s clock is "),
                    _fmt(srv),
                    pl.lit(" s against the capture clock: the server's clock is off."),
                ]
            )
        )
        .when(cli.abs() > limit)
        .then(
            pl.concat_str(
                [
                    pl.lit("The client "),
                    pl.col("client_host").fill_null("?"),
                    pl.lit("'s clock is "),
                    _fmt(cli),
                    pl.lit(" s against the capture clock (from "),
                    pl.col("client_offset_method"),
                    pl.lit("): the client's clock is off."),
                ]
            )
        )
        .when(srv.is_not_null())
        .then(
            pl.concat_str(
                [
                    pl.lit("The server "),
                    pl.col("server_host").fill_null("?"),
                    pl.lit("'s clock is "),
                    _fmt(srv),
                    pl.lit(" s against the capture clock, within tolerance: the client "),
                    pl.col("client_host").fill_null("?"),
                    pl.lit("'s clock is the likely one off (unless the capture was taken on the client)."),
                ]
            )
        )
        .otherwise(pl.lit("No clock offset could be measured from this data."))
    )


def _status_note() -> pl.Expr:
    """ "NTSTATUS 0xC0000234 STATUS_ACCOUNT_LOCKED_OUT (account locked out). E-text: ..." or empty text."""
    hexs = pl.concat_str(
        [
            pl.lit("0x"),
            pl.col("nt_status")
            .cast(pl.Int64)
            .map_batches(
                lambda s: s.map_elements(lambda v: f"{v:08X}", return_dtype=pl.String), return_dtype=pl.String
            ),
        ]
    )
    nt = pl.concat_str(
        [
            pl.lit("NTSTATUS "),
            hexs,
            pl.lit(" "),
            pl.col("nt_status_name").fill_null(""),
            pl.when(pl.col("nt_status_hint").is_not_null())
            .then(pl.concat_str([pl.lit(" ("), pl.col("nt_status_hint"), pl.lit(")")]))
            .otherwise(pl.lit("")),
            pl.lit(". "),
        ]
    )
    et = pl.concat_str([pl.lit("E-text: "), pl.col("e_text"), pl.lit(". ")])
    app = pl.concat_str([pl.lit("Application status: "), pl.col("app_status"), pl.lit(". ")])
    return pl.concat_str([nt.fill_null(""), et.fill_null(""), app.fill_null("")]).str.strip_chars()


def add(df: pl.DataFrame, x: pl.DataFrame, offsets: pl.DataFrame) -> pl.DataFrame:
    """The facts frame: correlated rows (``df``) with the exchange features and per-row clock columns."""
    stime = (
        df.filter(
            (pl.col("msg_type") == "KRB-ERROR") & pl.col("stime").is_not_null() & pl.col("exchange_id").is_not_null()
        )
        .group_by("exchange_id")
        .agg(((pl.col("stime") - pl.col("ts")).dt.total_microseconds() / 1e6).first().alias("stime_offset_s"))
    )
    f = exchange_features(x, offsets).join(stime, on="exchange_id", how="left")
    keep = [
        "exchange_id",
        "fail_kind",
        "burst_accounts",
        "burst_failures",
        "account_failures",
        "account_rate_per_min",
        "prior_preauth_failures",
        "from_spray_source",
        "server_offset_s",
        "client_offset_s",
        "client_offset_method",
        "stime_offset_s",
        "spn_hint",
        "error_meaning",
        "nt_status_name",
        "nt_status_hint",
        "cross_realm",
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
        pl.col("client").alias("x_client"),
        pl.col("service").alias("x_service"),
        pl.col("error_code").alias("x_error_code"),
        pl.col("transport").alias("x_transport"),
        pl.col("preauth").alias("x_preauth"),
        pl.col("client_realm").alias("x_client_realm"),
        pl.col("service_realm").alias("x_service_realm"),
    )
    out = df.join(xf, on="exchange_id", how="left")
    best = clocks.best_by_host(offsets)
    by_host = dict(zip(best["host"].to_list(), best["offset_s"].to_list(), strict=True))
    is_event = pl.col("event_id").is_not_null()
    writer = pl.when(is_event).then(pl.col("host")).otherwise(pl.col("src_ip"))
    out = out.with_columns(
        pl.coalesce("phase", "x_phase").alias("phase"),
        pl.coalesce("x_client_host", "client_host").alias("client_host"),
        pl.coalesce("x_server_host", "server_host").alias("server_host"),
        pl.coalesce("client", "x_client").alias("client"),
        pl.coalesce("client_realm", "x_client_realm").alias("client_realm"),
        pl.coalesce("service_realm", "x_service_realm").alias("service_realm"),
        pl.coalesce("service", "x_service").alias("service"),
        writer.replace_strict(by_host, default=None, return_dtype=pl.Float64).alias("clock_offset_s"),
        pl.col("event_data").str.replace_all(r'[{}"]', "").fill_null("").alias("event_text"),
        pl.col("app_failed").fill_null(False),
        pl.col("from_spray_source").fill_null(False),
        pl.col("cross_realm").fill_null(False),
        pl.col("tgs_succeeded").fill_null(False),
        pl.col("spn_hint").fill_null(""),
        pl.col("server_answered").fill_null(False),
    )
    return out.with_columns(
        _skew_detail().alias("skew_detail"),
        pl.coalesce(pl.col("service_account"), pl.col("tgs_service_account")).alias("account_hint"),
        _status_note().alias("status_note"),
        pl.coalesce("error_name", "nt_status_name", "app_status").alias("failure"),
        pl.when(pl.col("from_spray_source"))
        .then(
            pl.lit(
                "This source is also guessing passwords: the KDC checks the time only after the timestamp "
                "decrypted, so this error means the password it tried was right."
            )
        )
        .otherwise(pl.lit(""))
        .alias("spray_note"),
        pl.when(pl.coalesce("service_account", "tgs_service_account").is_not_null())
        .then(
            pl.concat_str(
                [
                    pl.lit("The DC issued the ticket for the account "),
                    pl.coalesce("service_account", "tgs_service_account"),
                    pl.lit(" (4769 ServiceName); check that this account really runs the service."),
                ]
            )
        )
        .otherwise(pl.lit(""))
        .alias("account_note"),
        pl.when(pl.coalesce("ticket_kvno", "tgs_kvno").is_not_null())
        .then(
            pl.concat_str(
                [
                    pl.lit("The ticket is encrypted with key version (kvno) "),
                    pl.coalesce("ticket_kvno", "tgs_kvno").cast(pl.String),
                    pl.lit("; the service's keytab or password must hold that version."),
                ]
            )
        )
        .otherwise(pl.lit(""))
        .alias("kvno_note"),
        pl.when(pl.col("server_answered"))
        .then(
            pl.lit(
                "The same server answered other requests, so these answers were lost on the way (large UDP "
                "replies whose IP fragments are dropped are the usual cause) or the capture missed them."
            )
        )
        .otherwise(
            pl.lit(
                "The server never answered anything: it is unreachable, a firewall blocks port 88 (or 464), "
                "or the client uses a wrong KDC address (DNS SRV records, krb5.conf)."
            )
        )
        .alias("unanswered_note"),
        pl.col("e_text")
        .str.to_uppercase()
        .replace_strict(ETEXT_HINTS, default=None, return_dtype=pl.String)
        .fill_null("")
        .alias("etext_hint"),
    )
