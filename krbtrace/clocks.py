"""Clock offsets per host, from whatever the data allows (``kerberos-protocol.md`` §7, ``windows-events.md`` §5).

Methods, strongest first:

* ``krb_error_stime``: a KRB-ERROR's mandatory ``stime``/``susec`` is the answering server's clock (RFC 4120
  §5.9.1); minus the capture time of the frame it gives the KDC's or service's offset against the capture host.
  MIT 1.20's ``susec`` lags by up to ~85 ms, so the figure is good to about ±0.1 s.
* ``request_till``: an MIT client's first AS-REQ asks ``till = client_now + lifetime``; with the default lifetime
  (1 day, or 10 h for Heimdal/Java) ``till - lifetime - capture_time`` is the client's offset. Windows and Rubeus send
  fixed 2037 dates and carry no clock information. An offset saved in a reused credential cache (MIT
  ``kdc_timesync``) hides the client's skew, so this is a hint, flagged as such.
* ``kerberos_event``: a client-side Security-Kerberos event 3 states the client's and the server's time of the
  error it received: the client's offset against that server.
* ``cross_source``: the same exchange seen in a capture and in a DC log; the event time minus the frame time is the
  DC's logging clock against the capture host.
* ``time_service_event``: W32Time events that state a correction (52 ``TimeOffsetSeconds``: a positive value set
  the clock back, so the host was that far ahead) or a difference (50 ``TimeDifferenceMilliseconds``, magnitude
  only).
"""

from __future__ import annotations

from typing import Final

import polars as pl

from .schema import CLOCK_OFFSETS

#: Lifetimes clients ask for by default: MIT 1 day; Heimdal, Java and Windows 10 hours.
LIFETIMES_S: Final = (86_400, 36_000)
#: Beyond this the till-based estimate is not trusted (a non-default lifetime is likelier than such a skew).
TILL_MAX_OFFSET_S: Final = 4 * 3600
#: Windows clients ask for this till (Rubeus 4 h earlier): no clock information (``kerberos-protocol.md`` §7).
_FIXED_TILL_YEAR: Final = 2037
#: Method preference when a host has several estimates.
METHOD_RANK: Final[dict[str, int]] = {
    "krb_error_stime": 0,
    "kerberos_event": 0,
    "cross_source": 1,
    "request_till": 2,
    "time_service_event": 3,
}
MAX_EVIDENCE: Final = 20
_TS_KEYS: Final = ("TimeOffsetSeconds", "OffsetSeconds", "offset_s", "TimeOffset")
_TS_MS_KEYS: Final = ("TimeDifferenceMilliseconds",)


def evidence_expr() -> pl.Expr:
    """``file#frame`` or ``file#EventRecordID`` of a row (the base name keeps reports short)."""
    name = pl.col("source").str.replace(r"^.*[/\\]", "")
    return pl.concat_str([name, pl.lit("#"), pl.col("record_no").cast(pl.String).fill_null("?")])


def _seconds(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_microseconds() / 1_000_000


def _aggregate(rows: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return rows.group_by(keys).agg(
        pl.col("offset_s").median().alias("offset_s"),
        pl.len().cast(pl.Int64).alias("samples"),
        pl.col("ts").min().alias("first_seen"),
        pl.col("ts").max().alias("last_seen"),
        pl.col("ev").head(MAX_EVIDENCE).alias("evidence"),
    )


def from_stime(df: pl.DataFrame) -> pl.DataFrame:
    """Offsets of the servers that sent KRB-ERRORs, one row per server and capture file."""
    rows = df.filter(
        (pl.col("msg_type") == "KRB-ERROR") & pl.col("stime").is_not_null() & pl.col("event_id").is_null()
    ).select(
        pl.col("src_ip").alias("host"),
        pl.when(pl.col("carrier").is_in(["kdc", "kpasswd"]) | pl.col("carrier").is_null())
        .then(pl.lit("kdc"))
        .otherwise(pl.lit("service"))
        .alias("role"),
        pl.col("source"),
        "ts",
        _seconds(pl.col("stime") - pl.col("ts")).alias("offset_s"),
        evidence_expr().alias("ev"),
    )
    out = _aggregate(rows, ["host", "role", "source"])
    return out.with_columns(
        pl.concat_str([pl.lit("capture clock ("), pl.col("source").str.replace(r"^.*[/\\]", ""), pl.lit(")")]).alias(
            "reference"
        ),
        pl.lit("krb_error_stime").alias("method"),
    )


def from_till(df: pl.DataFrame) -> pl.DataFrame:
    """Client offsets from the first AS-REQ ``till`` of each client (MIT-style relative lifetimes only)."""
    first = (
        df.filter(
            (pl.col("msg_type") == "AS-REQ")
            & pl.col("till").is_not_null()
            & pl.col("event_id").is_null()
            & (pl.col("till").dt.year() != _FIXED_TILL_YEAR)
        )
        .sort("row_id")
        .unique(["source", "src_ip", "principal"], keep="first", maintain_order=True)
    )
    d = _seconds(pl.col("till") - pl.col("ts"))
    best = pl.min_horizontal(*[(d - life).abs() for life in LIFETIMES_S])
    offset = pl.coalesce(*[pl.when((d - life).abs() == best).then(d - life) for life in LIFETIMES_S])
    rows = first.select(
        pl.col("src_ip").alias("host"), "source", "ts", offset.alias("offset_s"), evidence_expr().alias("ev")
    ).filter(pl.col("offset_s").abs() <= TILL_MAX_OFFSET_S)
    out = _aggregate(rows, ["host", "source"])
    return out.with_columns(
        pl.lit("client").alias("role"),
        pl.concat_str([pl.lit("capture clock ("), pl.col("source").str.replace(r"^.*[/\\]", ""), pl.lit(")")]).alias(
            "reference"
        ),
        pl.lit("request_till").alias("method"),
    )


def from_kerberos_event(df: pl.DataFrame) -> pl.DataFrame:
    """Client offsets from client-side error events that state both clocks (Security-Kerberos 3: client and
    server time of a KRB-ERROR, e.g. 37): client time minus server time, against that server's clock."""
    rows = (
        df.filter(pl.col("event_id").is_not_null() & pl.col("stime").is_not_null() & pl.col("ctime").is_not_null())
        .select(
            pl.col("host"),
            "ts",
            _seconds(pl.col("ctime") - pl.col("stime")).alias("offset_s"),
            evidence_expr().alias("ev"),
            pl.concat_str([pl.lit("server clock ("), pl.col("service").fill_null("?"), pl.lit(")")]).alias("reference"),
        )
        .filter(pl.col("host").is_not_null())
    )
    out = _aggregate(rows, ["host", "reference"])
    return out.with_columns(pl.lit("client").alias("role"), pl.lit("kerberos_event").alias("method"))


def _json_number(keys: tuple[str, ...]) -> pl.Expr:
    found = [pl.col("event_data").str.json_path_match(f"$.{k}").cast(pl.Float64, strict=False) for k in keys]
    return pl.coalesce(*found)


def from_time_service(df: pl.DataFrame) -> pl.DataFrame:
    """Offsets stated by W32Time events (``event_data`` JSON; unreadable values are skipped, never fatal)."""
    rows = df.filter(pl.col("provider").str.contains("(?i)time-service") & pl.col("event_data").str.starts_with("{"))
    if rows.height == 0:
        return CLOCK_OFFSETS.to_frame()
    rows = (
        rows.with_columns(
            # 52 "set the time with offset X seconds": a positive X moved the clock back by X (the corpus's
            # omerbenamram__evtx System log has Kernel-General 1 beside its 52 with X = 35999: OldTime 17:18:24,
            # NewTime 07:18:24), so before that the host was X s ahead of its source.
            _json_number(_TS_KEYS).alias("corr"),
            (_json_number(_TS_MS_KEYS) / 1000).alias("diff"),
        )
        .select(
            pl.col("host"),
            "ts",
            pl.coalesce("corr", "diff").alias("offset_s"),
            evidence_expr().alias("ev"),
            pl.when(pl.col("corr").is_not_null())
            .then(pl.lit("time_service_event (correction the service applied; offset before it)"))
            .otherwise(pl.lit("time_service_event (time difference, sign not stated)"))
            .alias("method"),
        )
        # A value beyond ~3 years is a misread field (seen: 1.4e16 in the plaso System.evtx sample), not a clock.
        .filter(pl.col("offset_s").is_not_null() & pl.col("host").is_not_null() & (pl.col("offset_s").abs() < 1e8))
    )
    out = _aggregate(rows, ["host", "method"])
    return out.with_columns(pl.lit("host").alias("role"), pl.lit("its time source").alias("reference"))


def from_links(pairs: pl.DataFrame) -> pl.DataFrame:
    """DC log clock against the capture clock from linked exchanges (``pairs``: host, ts, capture_ts, ev)."""
    if pairs.height == 0:
        return CLOCK_OFFSETS.to_frame()
    rows = pairs.with_columns(_seconds(pl.col("ts") - pl.col("capture_ts")).alias("offset_s"))
    out = _aggregate(rows, ["host"])
    return out.with_columns(
        pl.lit("dc").alias("role"), pl.lit("capture clock").alias("reference"), pl.lit("cross_source").alias("method")
    )


def estimate(df: pl.DataFrame, links: pl.DataFrame | None = None) -> pl.DataFrame:
    """All offset estimates (``CLOCK_OFFSETS`` columns), one row per host, role and method, best method first."""
    parts = [from_stime(df), from_kerberos_event(df), from_till(df), from_time_service(df)]
    if links is not None:
        parts.append(from_links(links))
    cols = list(CLOCK_OFFSETS.names())
    # A host without a name or address (a message with no IP header fields) cannot carry an offset.
    frames = [
        p.select(cols).cast(dict(CLOCK_OFFSETS)).filter(pl.col("host").is_not_null() & pl.col("offset_s").is_not_null())  # type: ignore[arg-type]
        for p in parts
        if p.height
    ]
    frames = [f for f in frames if f.height]
    if not frames:
        return CLOCK_OFFSETS.to_frame()
    out = pl.concat(frames)
    rank = pl.col("method").str.extract(r"^(\w+)").replace_strict(METHOD_RANK, default=9, return_dtype=pl.Int32)
    return out.sort([rank, "host", "first_seen"]).select(cols)


def best_by_host(offsets: pl.DataFrame, prefer: tuple[str, ...] = ()) -> pl.DataFrame:
    """One offset per host (``host``, ``offset_s``, ``method``, ``reference``): estimates of the roles in
    ``prefer`` first (a host can be both a client and a KDC, e.g. on loopback), then the strongest method."""
    if offsets.height == 0:
        return pl.DataFrame(
            schema={"host": pl.String, "offset_s": pl.Float64, "method": pl.String, "reference": pl.String}
        )
    rank = pl.col("role").replace_strict(
        {r: i for i, r in enumerate(prefer)}, default=len(prefer), return_dtype=pl.Int32
    )
    ordered = offsets.with_row_index("_order").sort([rank, "_order"])
    return ordered.unique("host", keep="first", maintain_order=True).select("host", "offset_s", "method", "reference")
