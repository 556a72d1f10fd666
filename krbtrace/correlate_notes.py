"""Sentences for the explanations, computed only on the rows a rule matched (never on the whole timeline).

Each note column is either a full sentence or empty text, so a template can name it unconditionally
(``{skew_detail}``, ``{status_note}``, ...). Codes and statuses are named from the protocol tables
(:mod:`parsers.krb5.constants`: RFC 4120 §7.5.9, MS-ERREF), MIT e-text words from ``kerberos-protocol.md`` §3.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from parsers.krb5.constants import DEFAULT_SKEW_SECONDS, ERROR_MEANINGS, NTSTATUS_NAMES

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
                    pl.lit(" s against the "),
                    pl.when(pl.col("stime_offset_s").is_not_null())
                    .then(pl.lit("capture clock"))
                    .otherwise(pl.col("server_offset_reference").fill_null("capture clock")),
                    pl.lit(": the server's clock is off."),
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
                    pl.lit(" s against the "),
                    pl.col("client_offset_reference").fill_null("capture clock"),
                    pl.lit(" (from "),
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
    # Without an error or NT status name the application status is already the "failure" the text names.
    named = pl.col("error_name").is_not_null() | pl.col("nt_status_name").is_not_null()
    app = pl.when(named).then(pl.concat_str([pl.lit("Application status: "), pl.col("app_status"), pl.lit(". ")]))
    return pl.concat_str([nt.fill_null(""), et.fill_null(""), app.fill_null("")]).str.strip_chars()


def _account_note() -> pl.Expr:
    """Which account the ticket was made for (the DC's 4769 ServiceName) and which account the refusing server runs
    as (the client's System event 4 ``Server``): two different accounts are the misplaced or duplicate SPN."""
    made_for = pl.coalesce("service_account", "tgs_service_account")
    runs_as = pl.col("server_account")
    return pl.concat_str(
        [
            pl.when(made_for.is_not_null()).then(
                pl.concat_str(
                    [pl.lit("The ticket was encrypted for the account "), made_for, pl.lit(" (the DC's 4769). ")]
                )
            ),
            pl.when(runs_as.is_not_null()).then(
                pl.concat_str([pl.lit("The server that refused it runs as "), runs_as, pl.lit(" (System event 4). ")])
            ),
            pl.when(
                made_for.is_not_null()
                & runs_as.is_not_null()
                & (made_for.str.to_lowercase() != runs_as.str.to_lowercase())
            ).then(
                pl.concat_str(
                    [pl.lit("The SPN belongs on "), runs_as, pl.lit(" only: remove it from "), made_for, pl.lit(".")]
                )
            ),
            pl.when(made_for.is_not_null() & runs_as.is_null()).then(
                pl.lit("Check that this account really runs the service.")
            ),
        ],
        ignore_nulls=True,
    ).str.strip_chars()


def _note_exprs() -> list[pl.Expr]:
    return [
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
        _account_note().alias("account_note"),
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
        pl.when(pl.col("capture_tail_s") < CAPTURE_TAIL_S)
        .then(
            pl.lit("The capture ends less than 2 s after the request, so the answer may simply not have been recorded.")
        )
        .when(pl.col("server_answered"))
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
    ]


def _code_names() -> list[pl.Expr]:
    code = pl.coalesce("error_code", "x_error_code")
    return [
        code.replace_strict(ERROR_MEANINGS, default=None, return_dtype=pl.String).alias("error_meaning"),
        pl.col("nt_status")
        .replace_strict(NTSTATUS_NAMES, default=None, return_dtype=pl.String)
        .alias("nt_status_name"),
        pl.col("nt_status")
        .replace_strict(NTSTATUS_HINTS, default=None, return_dtype=pl.String)
        .alias("nt_status_hint"),
        pl.col("event_data").str.replace_all(r'[{}"]', "").fill_null("").alias("event_text"),
        # As text, so that several ids read as a list ("4742, 5136") rather than as a numeric range.
        pl.col("event_id").cast(pl.String).alias("event_ids"),
    ]


#: A request this close to the end of its capture may have had its answer cut off by the capture itself.
CAPTURE_TAIL_S: Final = 2.0

#: The columns :func:`add` creates (templates may name them like facts columns).
NOTE_COLUMNS: Final = (
    "error_meaning",
    "nt_status_name",
    "nt_status_hint",
    "event_text",
    "event_ids",
    "skew_detail",
    "account_hint",
    "status_note",
    "failure",
    "spray_note",
    "account_note",
    "kvno_note",
    "unanswered_note",
    "etext_hint",
)


def add(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (facts rows a rule matched) with the note columns of ``NOTE_COLUMNS``."""
    return rows.with_columns(_code_names()).with_columns(_note_exprs())
