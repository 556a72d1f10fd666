"""Messages -> exchanges: each reply or error paired with its request (RFC 4120 §3.1-3.3, §7.2).

A reply carries its request's nonce; a KRB-ERROR does not, so pairing works on the conversation (the request's
flow, and the reversed flow for the answer) and the order inside it. On TCP several requests can share one
connection; each request after an answer opens a new exchange. A UDP request repeated with the same nonce before
any answer is a retransmission, not a new exchange. An event of a domain controller (4768, 4769, 4771, ...) is an
exchange on its own, its outcome read from its status.

Expected steps (``kerberos-protocol.md`` §6): KDC_ERR_PREAUTH_REQUIRED (25) followed by a pre-authenticated AS-REQ
of the same client, and KRB_ERR_RESPONSE_TOO_BIG (52) followed by the same request over TCP, are marked
``expected``: they are steps of a successful logon, not failures.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import polars as pl

from parsers.krb5.constants import PREAUTH_TYPES

from .clocks import evidence_expr

REQUESTS: Final = ("AS-REQ", "TGS-REQ", "AP-REQ", "KPASSWD-REQ")
REPLIES: Final = ("AS-REP", "TGS-REP", "AP-REP", "KPASSWD-REP")
ANSWERS: Final = (*REPLIES, "KRB-ERROR")
#: Windows events that each stand for one exchange (DC side: 4768-4773; service side: 4624/4625).
EXCHANGE_EVENTS: Final = (4768, 4769, 4770, 4771, 4772, 4773, 4624, 4625)
PREAUTH_REQUIRED: Final = 25
RESPONSE_TOO_BIG: Final = 52
#: How long a client may take to send the pre-authenticated AS-REQ or the TCP retry after the expected error.
RETRY_WINDOW_S: Final = 30
#: Error codes only an AS exchange produces; used to place an error whose request was not captured.
_AS_ONLY: Final = (6, 18, 23, 24, 25, 1, 16)
_TGS_GUESS: Final = (7, 8, 13, 14, 12)
#: Carrier statuses that mean the application accepted the authentication or asks for another leg.
_APP_OK: Final = (
    r"(?i)^(0|0x0+|200|20[0-9]|success|ok|status_success|status_more_processing_required|saslbindinprogress|14)$"
)

_CONV: Final = ("source", "transport", "client_ip", "client_port", "server_ip", "server_port")


def principal_key(col: str = "client") -> pl.Expr:
    """Case-folded principal without its ``@REALM`` suffix (4769 writes ``user@REALM``, captures ``user``)."""
    return pl.col(col).str.to_lowercase().str.replace(r"@[^@]*$", "")


def prepare(df: pl.DataFrame) -> pl.DataFrame:
    """Sort the timeline and add the helper columns pairing and the rules use.

    Adds ``row_id`` (position after sorting by time), ``role`` (req / ans / event / null), ``client_ip``,
    ``client_port``, ``server_ip``, ``server_port`` (the request's direction whatever the row's), ``client_host``
    and ``server_host`` (addresses, or an event's computer), and ``principal`` (case-folded client name).
    """
    df = df.sort(["ts", "source", "record_no"], nulls_last=True, maintain_order=True).with_row_index("row_id")
    df = df.with_columns(pl.col("row_id").cast(pl.Int64))
    is_event = pl.col("event_id").is_not_null()
    is_req = pl.col("msg_type").is_in(REQUESTS)
    is_ans = pl.col("msg_type").is_in(ANSWERS)
    role = (
        pl.when(is_event & pl.col("event_id").is_in(EXCHANGE_EVENTS))
        .then(pl.lit("event"))
        .when(is_event)
        .then(pl.lit(None, pl.String))
        .when(is_req)
        .then(pl.lit("req"))
        .when(is_ans)
        .then(pl.lit("ans"))
        # A carrier's own answer without a Kerberos token (SMB STATUS_LOGON_FAILURE, HTTP 401) answers the AP-REQ.
        .when(pl.col("msg_type").is_null() & pl.col("carrier").is_not_null() & pl.col("app_status").is_not_null())
        .then(pl.lit("ans"))
        .otherwise(pl.lit(None, pl.String))
    )
    answer = pl.col("role") == "ans"
    client_ip = pl.when(answer).then(pl.col("dst_ip")).otherwise(pl.col("src_ip"))
    server_ip = pl.when(answer).then(pl.col("src_ip")).otherwise(pl.col("dst_ip"))
    df = df.with_columns(role.alias("role")).with_columns(
        client_ip.alias("client_ip"),
        pl.when(answer).then(pl.col("dst_port")).otherwise(pl.col("src_port")).alias("client_port"),
        server_ip.alias("server_ip"),
        pl.when(answer).then(pl.col("src_port")).otherwise(pl.col("dst_port")).alias("server_port"),
    )
    return df.with_columns(
        pl.coalesce("client_ip", pl.when(is_event).then(pl.col("host"))).alias("client_host"),
        pl.coalesce(pl.when(is_event).then(pl.col("host")), "server_ip").alias("server_host"),
        principal_key().alias("principal"),
    )


def _conversation_ids(msgs: pl.DataFrame) -> pl.DataFrame:
    """``xid`` for capture rows (role req/ans): a new exchange at each request that is not a retransmission."""
    msgs = msgs.sort([*_CONV, "row_id"], nulls_last=True)
    conv = [pl.col(c) for c in _CONV]
    prev_role = pl.col("role").shift(1).over(conv)
    prev_msg = pl.col("msg_type").shift(1).over(conv)
    prev_nonce = pl.col("nonce").shift(1).over(conv)
    retransmit = (
        (prev_role == "req")
        & (prev_msg == pl.col("msg_type"))
        & pl.col("nonce").is_not_null()
        & (prev_nonce == pl.col("nonce"))
    )
    first = prev_role.is_null()
    new = first | ((pl.col("role") == "req") & ~retransmit.fill_null(False))
    return msgs.with_columns(new.cum_sum().cast(pl.Int64).alias("xid"))


def assign(df: pl.DataFrame) -> pl.DataFrame:
    """Add ``xid`` (a provisional exchange key) to the rows of ``prepare``'s frame; null for context rows."""
    caps = _conversation_ids(
        df.filter(pl.col("role").is_in(["req", "ans"])).select("row_id", "role", "msg_type", "nonce", *_CONV)
    )
    offset = caps.height + 1
    ids = caps.select("row_id", "xid")
    events = df.filter(pl.col("role") == "event").select(
        "row_id", (pl.int_range(pl.len(), dtype=pl.Int64) + offset).alias("xid")
    )
    return df.join(pl.concat([ids, events]), on="row_id", how="left")


def summarise(df: pl.DataFrame) -> pl.DataFrame:
    """One row per ``xid``: the exchange's phase, names, hosts, times, error and raw outcome."""
    rows = df.filter(pl.col("xid").is_not_null()).with_columns(evidence_expr().alias("ev"))
    req = pl.col("role") == "req"
    err = pl.col("msg_type") == "KRB-ERROR"
    rep = pl.col("msg_type").is_in(REPLIES)
    ev = pl.col("role") == "event"

    def first_of(cond: pl.Expr, col: str) -> pl.Expr:
        return pl.col(col).filter(cond & pl.col(col).is_not_null()).first()

    x = rows.group_by("xid").agg(
        pl.col("ts").min().alias("start"),
        pl.col("ts").max().alias("end"),
        pl.col("row_id").min().alias("first_row"),
        pl.coalesce(first_of(req, "phase"), first_of(ev, "phase"), first_of(rep, "phase")).alias("phase"),
        first_of(req, "msg_type").alias("req_type"),
        req.any().alias("has_req"),
        rep.any().alias("has_rep"),
        err.any().alias("has_err"),
        ev.any().alias("is_event"),
        pl.coalesce(first_of(err, "error_code"), first_of(ev, "error_code")).alias("error_code"),
        pl.coalesce(first_of(err, "error_name"), first_of(ev, "error_name")).alias("error_name"),
        pl.coalesce(first_of(ev, "nt_status"), first_of(err, "nt_status")).alias("nt_status"),
        pl.col("app_status").drop_nulls().last().alias("app_status"),
        pl.col("client_host").drop_nulls().first().alias("client_host"),
        pl.col("server_host").drop_nulls().first().alias("server_host"),
        pl.coalesce(
            first_of(req, "client"), first_of(rep, "client"), first_of(err, "client"), first_of(ev, "client")
        ).alias("client"),
        pl.col("client_realm").drop_nulls().first().alias("client_realm"),
        pl.coalesce(
            first_of(req, "service"),
            first_of(err, "service"),
            first_of(ev, "service"),
            first_of(rep, "ticket_service"),
            pl.col("ticket_service").drop_nulls().first(),
        ).alias("service"),
        pl.col("service_realm").drop_nulls().first().alias("service_realm"),
        pl.col("carrier").drop_nulls().first().alias("carrier"),
        first_of(req, "transport").alias("transport"),
        first_of(req, "nonce").alias("nonce"),
        (req & pl.col("pa_types").list.eval(pl.element().is_in(PREAUTH_TYPES)).list.any()).any().alias("preauth"),
        first_of(req, "ap_options").alias("ap_options"),
        pl.col("ticket_service").drop_nulls().first().alias("ticket_service"),
        pl.col("ticket_realm").drop_nulls().first().alias("ticket_realm"),
        pl.col("ticket_etype").drop_nulls().first().alias("ticket_etype"),
        pl.col("ticket_kvno").drop_nulls().first().alias("ticket_kvno"),
        pl.col("source_kind").unique().sort().alias("sources"),
        pl.col("row_id").sort().alias("row_ids"),
        pl.col("ev").sort_by("row_id").alias("evidence"),
    )
    code = pl.col("error_code")
    phase = pl.coalesce(
        "phase",
        pl.when(code.is_in(_AS_ONLY)).then(pl.lit("AS")).when(code.is_in(_TGS_GUESS)).then(pl.lit("TGS")),
    )
    app_failed = pl.col("app_status").is_not_null() & ~pl.col("app_status").str.contains(_APP_OK)
    mutual = (pl.col("ap_options").fill_null(0) & 0x20000000) != 0
    outcome = (
        pl.when(pl.col("is_event"))
        .then(
            pl.when(code.is_null() & pl.col("nt_status").is_null())
            .then(pl.lit("ok"))
            .when(code == PREAUTH_REQUIRED)
            .then(pl.lit("expected"))
            .otherwise(pl.lit("failed"))
        )
        .when(pl.col("has_err") | app_failed)
        .then(pl.lit("failed"))
        .when(pl.col("has_rep"))
        .then(pl.lit("ok"))
        .when(~pl.col("has_req"))
        .then(pl.lit("unmatched"))
        # An AP-REQ without mutual authentication expects no Kerberos answer: the application's silence is success.
        .when((pl.col("req_type") == "AP-REQ") & ~mutual)
        .then(pl.lit("ok"))
        .otherwise(pl.lit("unanswered"))
    )
    return x.with_columns(phase.alias("phase"), outcome.alias("outcome"), app_failed.alias("app_failed"))


def mark_expected(x: pl.DataFrame, df: pl.DataFrame) -> pl.DataFrame:
    """Turn 25-then-pre-authenticated-retry and 52-then-TCP-retry exchanges into ``expected`` steps.

    Adds ``retry_outcome`` (the outcome of the retry that followed, null when none did).
    """
    window = timedelta(seconds=RETRY_WINDOW_S)
    key25 = pl.col("client_host").fill_null(""), principal_key().fill_null("")
    retries25 = (
        x.filter((pl.col("phase") == "AS") & pl.col("preauth"))
        .select(
            key25[0].alias("k_host"),
            key25[1].alias("k_princ"),
            pl.col("start").alias("retry_ts"),
            pl.col("outcome").alias("retry_outcome"),
        )
        .sort("retry_ts")
    )
    retries52 = (
        x.filter((pl.col("transport") == "tcp") & pl.col("has_req"))
        .select(
            pl.col("client_host").fill_null("").alias("k_host"),
            pl.col("req_type").fill_null("").alias("k_type"),
            pl.col("start").alias("retry_ts"),
            pl.col("outcome").alias("retry_outcome"),
        )
        .sort("retry_ts")
    )
    e25 = x.filter(pl.col("error_code") == PREAUTH_REQUIRED).select(
        "xid", key25[0].alias("k_host"), key25[1].alias("k_princ"), pl.col("end").alias("at")
    )
    e52 = x.filter((pl.col("error_code") == RESPONSE_TOO_BIG) & (pl.col("transport") == "udp")).select(
        "xid",
        pl.col("client_host").fill_null("").alias("k_host"),
        pl.col("req_type").fill_null("").alias("k_type"),
        pl.col("end").alias("at"),
    )
    found = []
    if e25.height and retries25.height:
        j = e25.sort("at").join_asof(
            retries25,
            left_on="at",
            right_on="retry_ts",
            by=["k_host", "k_princ"],
            strategy="forward",
            tolerance=window,
            check_sortedness=False,
        )
        found.append(j.filter(pl.col("retry_ts").is_not_null()).select("xid", "retry_outcome"))
    if e52.height and retries52.height:
        j = e52.sort("at").join_asof(
            retries52,
            left_on="at",
            right_on="retry_ts",
            by=["k_host", "k_type"],
            strategy="forward",
            tolerance=window,
            check_sortedness=False,
        )
        found.append(j.filter(pl.col("retry_ts").is_not_null()).select("xid", "retry_outcome"))
    if not found:
        return x.with_columns(pl.lit(None, pl.String).alias("retry_outcome"))
    hits = pl.concat(found).unique("xid", keep="first")
    x = x.join(hits, on="xid", how="left")
    return x.with_columns(
        pl.when(pl.col("retry_outcome").is_not_null()).then(pl.lit("expected")).otherwise("outcome").alias("outcome")
    )


def number(x: pl.DataFrame) -> pl.DataFrame:
    """Give exchanges their final ``exchange_id``: 1, 2, ... in order of their first row."""
    return x.sort("first_row").with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("exchange_id"))
