"""Outcome corrections that look beyond one exchange (``kerberos-protocol.md`` §2, §6).

* Expected steps: KDC_ERR_PREAUTH_REQUIRED (25) followed by a pre-authenticated AS-REQ of the same client, and
  KRB_ERR_RESPONSE_TOO_BIG (52) followed by the same request over TCP, are ``expected`` (RFC 4120 §3.1.1,
  §7.2.1): steps of a successful logon, not failures.
* Missed answers: an AS request without a captured reply, after which the client went on to a TGS exchange the
  KDC answered, got its TGT; its outcome is ``unmatched`` rather than ``unanswered``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import polars as pl

from .exchanges import PREAUTH_REQUIRED, RESPONSE_TOO_BIG, RETRY_WINDOW_S, principal_key


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
    for errors, retries, keys in ((e25, retries25, ["k_host", "k_princ"]), (e52, retries52, ["k_host", "k_type"])):
        if errors.height and retries.height:
            j = errors.sort("at").join_asof(
                retries,
                left_on="at",
                right_on="retry_ts",
                by=keys,
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


#: A request whose answer is missing from the capture although the client went on to the next phase this soon.
MISSED_ANSWER_S: Final = 10


def mark_missed_answers(x: pl.DataFrame) -> pl.DataFrame:
    """Unanswered AS exchanges followed within ``MISSED_ANSWER_S`` by a TGS exchange of the same client host that
    the KDC answered: the client got its TGT, so the AS-REP was only missing from the capture (outcome
    ``unmatched``, not ``unanswered``). Seen in the ndpi corpus capture whose AS-REPs are absent."""
    un = x.filter((pl.col("outcome") == "unanswered") & (pl.col("phase") == "AS")).select(
        "xid", pl.col("client_host").fill_null("").alias("k"), pl.col("start").alias("t")
    )
    nxt = (
        x.filter((pl.col("phase") == "TGS") & pl.col("outcome").is_in(["ok", "failed"]))
        .select(pl.col("client_host").fill_null("").alias("k"), pl.col("start").alias("t2"))
        .sort("t2")
    )
    if un.height == 0 or nxt.height == 0:
        return x
    j = un.sort("t").join_asof(
        nxt,
        left_on="t",
        right_on="t2",
        by="k",
        strategy="forward",
        tolerance=timedelta(seconds=MISSED_ANSWER_S),
        check_sortedness=False,
    )
    missed = j.filter(pl.col("t2").is_not_null())["xid"]
    return x.with_columns(
        pl.when(pl.col("xid").is_in(missed.implode())).then(pl.lit("unmatched")).otherwise("outcome").alias("outcome")
    )
