"""Messages -> exchanges: each reply or error paired with its request (RFC 4120 §3.1-3.3, §7.2).

A reply carries its request's nonce; a KRB-ERROR does not, so pairing works on the conversation (the request's
flow, and the reversed flow for the answer) and the order inside it. On TCP several requests can share one
connection; each request after an answer opens a new exchange. A UDP request repeated with the same nonce before
any answer is a retransmission, not a new exchange. An event of a domain controller (4768, 4769, 4771, ...) is an
exchange on its own, its outcome read from its status.

Expected steps (``kerberos-protocol.md`` §6): KDC_ERR_PREAUTH_REQUIRED (25) followed by a pre-authenticated AS-REQ
of the same client, and KRB_ERR_RESPONSE_TOO_BIG (52) followed by the same request over TCP, are marked
``expected`` (:mod:`krbtrace.correlate_steps`): steps of a successful logon, not failures.
"""

from __future__ import annotations

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
#: Carrier statuses that mean the application accepted the authentication or asks for another leg
#: (``parsers.carriers``: SMB NT status names, ``HTTP <code>``, LDAP result names, DCE/RPC answer PDUs).
_APP_OK: Final = (
    r"(?i)^(HTTP [123][0-9][0-9]|STATUS_SUCCESS|STATUS_MORE_PROCESSING_REQUIRED|success|saslBindInProgress|"
    r"bind_ack|alter_context_resp|0x0+$|0$)"
)
#: PA-DATA that make an AS-REQ pre-authenticated: ENC-TIMESTAMP, PKINIT, encrypted challenge, SPAKE, and FAST
#: armour (136), under which the real pre-authentication is hidden (``kerberos-protocol.md`` §9).
PREAUTH_PA: Final = (*PREAUTH_TYPES, 136)

_CONV: Final = ("source", "transport", "client_ip", "client_port", "server_ip", "server_port")


def anonymous(col: str = "client") -> pl.Expr:
    """True for WELLKNOWN/ANONYMOUS (RFC 8062). In a KDC reply under FAST (Samba, Windows) it stands in clear for a
    client kept in the encrypted part, so it names nobody; in a request it is a real anonymous (PKINIT) client."""
    return pl.col(col).str.to_uppercase().str.starts_with("WELLKNOWN/ANONYMOUS").fill_null(False)


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
    # Security-Kerberos events (3, 4) are written by the client: the server is the one the SPN names.
    client_side = is_event & pl.col("provider").str.contains("(?i)Security-Kerberos").fill_null(False)
    spn_host = (
        pl.when(pl.col("service").str.starts_with("krbtgt/"))
        .then(pl.concat_str([pl.lit("KDC of "), pl.col("service").str.slice(7)]))
        .otherwise(pl.col("service").str.extract(r"^[^/]+/([^/:@]+)"))
    )
    return df.with_columns(
        pl.coalesce("client_ip", pl.when(is_event).then(pl.col("host"))).alias("client_host"),
        pl.when(client_side)
        .then(spn_host)
        .otherwise(pl.coalesce(pl.when(is_event).then(pl.col("host")), "server_ip"))
        .alias("server_host"),
        principal_key().alias("principal"),
    )


def _conversation_ids(msgs: pl.DataFrame) -> pl.DataFrame:
    """``xid`` for capture rows (role req/ans): a new exchange at each request that is not a retransmission."""
    # Sorting on a 64-bit hash of the six conversation keys groups each conversation (several times faster than
    # sorting the text columns); the neighbour test below still compares the real keys, so a hash collision
    # could only split a conversation, never merge two.
    msgs = msgs.with_columns(pl.struct(_CONV).hash().alias("_conv")).sort(["_conv", "row_id"])
    # Sorted by conversation, "the previous row of my conversation" is the previous row when the keys agree;
    # comparing neighbours is much cheaper than a window over six key columns.
    same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in _CONV]).fill_null(False)
    prev_role = pl.when(same).then(pl.col("role").shift(1))
    retransmit = (
        (prev_role == "req")
        & (pl.col("msg_type").shift(1) == pl.col("msg_type"))
        & pl.col("nonce").is_not_null()
        & (pl.col("nonce").shift(1) == pl.col("nonce"))
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
    both = pl.concat([ids, events])
    # row_id is the row's position, so the ids can be scattered into place instead of joined.
    xid = pl.select(pl.repeat(None, df.height, dtype=pl.Int64).alias("xid")).to_series()
    if both.height:
        xid = xid.scatter(both["row_id"], both["xid"])
    return df.with_columns(xid)


def summarise(df: pl.DataFrame) -> pl.DataFrame:
    """One row per ``xid``: the exchange's phase, names, hosts, times, error and raw outcome."""
    rows = (
        df.filter(pl.col("xid").is_not_null())
        .sort("row_id")
        .with_columns(
            evidence_expr().alias("ev"),
            (
                (pl.col("role") == "req")
                & (
                    pl.col("pa_types").list.eval(pl.element().is_in(PREAUTH_PA)).list.any().fill_null(False)
                    | pl.col("fast").fill_null(False)
                )
            ).alias("_pre"),
        )
    )
    # The first row of each kind per exchange. Filtering on is_first_distinct() is far cheaper than aggregating
    # string columns over half a million groups (measured: about 0.1 s per string column per million rows).

    def first(cond: pl.Expr, cols: dict[str, str], marker: str | None = None) -> pl.DataFrame:
        # Narrow first, then filter: copying five columns is much cheaper than copying sixty.
        part = rows.select(*dict.fromkeys(["xid", "role", "msg_type", *cols])).filter(cond)
        part = part.filter(pl.col("xid").is_first_distinct())
        extra = [pl.lit(True).alias(marker)] if marker else []
        return part.select("xid", *[pl.col(c).alias(a) for c, a in cols.items()], *extra)

    head = first(
        pl.lit(True),
        {
            "client_host": "client_host",
            "server_host": "server_host",
            "carrier": "carrier",
            "client_realm": "h_crealm",
            "service_realm": "h_srealm",
            "source_kind": "_kind",
            "ticket_service": "h_tservice",
            "ticket_realm": "h_trealm",
            "ticket_etype": "h_tetype",
            "ticket_kvno": "h_tkvno",
        },
    )
    req = first(
        pl.col("role") == "req",
        {
            "phase": "q_phase",
            "msg_type": "req_type",
            "client": "q_client",
            "service": "q_service",
            "transport": "transport",
            "nonce": "nonce",
            "ap_options": "ap_options",
        },
        "_has_req",
    )
    err = first(
        pl.col("msg_type") == "KRB-ERROR",
        {
            "error_code": "e_code",
            "error_name": "e_name",
            "nt_status": "e_nt",
            "client": "e_client",
            "service": "e_service",
            "client_realm": "e_crealm",
            "service_realm": "e_srealm",
        },
        "_has_err",
    )
    rep = first(
        pl.col("msg_type").is_in(REPLIES),
        {
            "phase": "r_phase",
            "client": "r_client",
            "client_realm": "r_crealm",
            "ticket_service": "r_tservice",
            "ticket_realm": "r_trealm",
            "ticket_etype": "r_tetype",
            "ticket_kvno": "r_tkvno",
        },
        "_has_rep",
    )
    ev = first(
        pl.col("role") == "event",
        {
            "phase": "v_phase",
            "error_code": "v_code",
            "error_name": "v_name",
            "nt_status": "v_nt",
            "client": "v_client",
            "service": "v_service",
        },
        "_is_event",
    )
    app = rows.filter(pl.col("app_status").is_not_null())
    app = app.filter(pl.col("xid").is_last_distinct()).select("xid", "app_status")
    base = rows.group_by("xid").agg(
        pl.col("ts").min().alias("start"),
        pl.col("ts").max().alias("end"),
        pl.col("row_id").min().alias("first_row"),
        pl.col("_pre").any().alias("preauth"),
        pl.col("row_id").alias("row_ids"),
        pl.col("ev").alias("evidence"),
    )
    # An exchange's rows come from one capture conversation or one event: one source kind (links add another).
    base = base.join(head, on="xid", how="left").join(app, on="xid", how="left")
    base = base.with_columns(pl.concat_list("_kind").alias("sources")).drop("_kind")
    x = (
        base.join(req, on="xid", how="left")
        .join(err, on="xid", how="left")
        .join(rep, on="xid", how="left")
        .join(ev, on="xid", how="left")
    )
    x = x.with_columns(
        pl.col("_has_req").is_not_null().alias("has_req"),
        pl.col("_has_err").is_not_null().alias("has_err"),
        pl.col("_has_rep").is_not_null().alias("has_rep"),
        pl.col("_is_event").is_not_null().alias("is_event"),
    ).with_columns(
        pl.coalesce("q_phase", "v_phase", "r_phase").alias("phase"),
        pl.coalesce("e_code", "v_code").alias("error_code"),
        pl.coalesce("e_name", "v_name").alias("error_name"),
        pl.coalesce("v_nt", "e_nt").alias("nt_status"),
        pl.coalesce("q_client", pl.when(~anonymous("r_client")).then(pl.col("r_client")), "e_client", "v_client").alias(
            "client"
        ),
        pl.coalesce("q_service", "e_service", "v_service", "r_tservice", "h_tservice").alias("service"),
        pl.coalesce("h_crealm", "r_crealm", "e_crealm").alias("client_realm"),
        pl.coalesce("h_srealm", "e_srealm").alias("service_realm"),
        pl.coalesce("r_tservice", "h_tservice").alias("ticket_service"),
        pl.coalesce("r_trealm", "h_trealm").alias("ticket_realm"),
        pl.coalesce("r_tetype", "h_tetype").alias("ticket_etype"),
        pl.coalesce("r_tkvno", "h_tkvno").alias("ticket_kvno"),
    )
    x = x.drop(
        "q_phase",
        "v_phase",
        "r_phase",
        "e_code",
        "v_code",
        "e_name",
        "v_name",
        "v_nt",
        "e_nt",
        "q_client",
        "r_client",
        "e_client",
        "v_client",
        "q_service",
        "e_service",
        "v_service",
        "r_tservice",
        "h_crealm",
        "r_crealm",
        "e_crealm",
        "h_srealm",
        "e_srealm",
        "h_tservice",
        "h_trealm",
        "h_tetype",
        "h_tkvno",
        "r_trealm",
        "r_tetype",
        "r_tkvno",
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


def number(x: pl.DataFrame) -> pl.DataFrame:
    """Give exchanges their final ``exchange_id``: 1, 2, ... in order of their first row."""
    return x.sort("first_row").with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("exchange_id"))
