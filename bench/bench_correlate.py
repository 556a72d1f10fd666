"""Benchmark: correlate + diagnose a synthetic timeline of about 1M rows (``python3 bench/bench_correlate.py``).

The timeline follows real sequences: per logon AS-REQ -> PREAUTH_REQUIRED -> AS-REQ (pre-auth) -> AS-REP,
TGS-REQ -> TGS-REP, AP-REQ -> AP-REP (8 rows), with 3 % wrong passwords, 1 % unknown SPNs, a spraying source,
and 4768/4769 events for a tenth of the logons (linked across sources). Prints the seconds per stage.
Options: ``--logons N`` (default 125000, i.e. 1M rows).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from krbtrace.correlate import correlate
from krbtrace.diagnose import diagnose
from krbtrace.schema import TIMELINE

BASE_US = 1_700_000_000_000_000


def synth(logons: int) -> pl.DataFrame:
    """A timeline with ``8 * logons`` capture rows plus events."""
    i = pl.int_range(0, logons, dtype=pl.Int64, eager=True).to_frame("i")
    host = pl.concat_str(
        [pl.lit("10.1."), (pl.col("i") % 250).cast(pl.String), pl.lit("."), ((pl.col("i") // 250) % 20).cast(pl.String)]
    )
    user = pl.concat_str([pl.lit("user"), (pl.col("i") % 20_000).cast(pl.String)])
    t0 = pl.lit(BASE_US) + pl.col("i") * 50_000  # one logon every 50 ms: about 1.7 h of traffic
    port = (pl.col("i") * 4 % 60_000 + 1024).cast(pl.Int32)
    bad = (pl.col("i") % 33) == 0
    nospn = (pl.col("i") % 97) == 0
    svc = pl.concat_str([pl.lit("cifs/srv"), (pl.col("i") % 50).cast(pl.String), pl.lit(".corp.example")])
    kdc = pl.lit("10.0.0.1")

    def rows(dt_us: int, msg: str, to_kdc: bool, p: pl.Expr, **cols: pl.Expr) -> pl.DataFrame:
        ip_c, ip_s = host, cols.pop("server", kdc)
        src, dst = (ip_c, ip_s) if to_kdc else (ip_s, ip_c)
        sport, dport = (p, pl.lit(88, pl.Int32)) if to_kdc else (pl.lit(88, pl.Int32), p)
        if "server_port" in cols:
            sp = cols.pop("server_port")
            sport, dport = (p, sp) if to_kdc else (sp, p)
        return i.select(
            (t0 + dt_us).alias("ts"),
            src.alias("src_ip"),
            dst.alias("dst_ip"),
            sport.alias("src_port"),
            dport.alias("dst_port"),
            pl.lit(msg).alias("msg_type"),
            "i",
            *[v.alias(k) for k, v in cols.items()],
        )

    n = pl.col("i") * 3
    parts = [
        rows(
            0,
            "AS-REQ",
            True,
            port,
            client=user,
            service=pl.lit("krbtgt/CORP.EXAMPLE"),
            nonce=n,
            pa_types=pl.lit([128], pl.List(pl.Int32)),
            phase=pl.lit("AS"),
        ),
        rows(
            1_000,
            "KRB-ERROR",
            False,
            port,
            error_code=pl.lit(25, pl.Int32),
            client=user,
            stime=t0.cast(pl.Datetime("us", "UTC")),
        ),
        rows(
            3_000,
            "AS-REQ",
            True,
            port + 1,
            client=user,
            service=pl.lit("krbtgt/CORP.EXAMPLE"),
            nonce=n + 1,
            pa_types=pl.lit([2, 128], pl.List(pl.Int32)),
            phase=pl.lit("AS"),
        ),
        rows(4_000, "AS-REP", False, port + 1, client=user, nonce=n + 1, phase=pl.lit("AS")).with_columns(
            pl.when(bad).then(pl.lit("KRB-ERROR")).otherwise(pl.lit("AS-REP")).alias("msg_type"),
            pl.when(bad).then(pl.lit(24, pl.Int32)).alias("error_code"),
        ),
        rows(6_000, "TGS-REQ", True, port + 2, service=svc, nonce=n + 2, phase=pl.lit("TGS")),
        rows(
            7_000,
            "TGS-REP",
            False,
            port + 2,
            client=user,
            ticket_service=svc,
            nonce=n + 2,
            ticket_kvno=pl.lit(3, pl.Int32),
            phase=pl.lit("TGS"),
        ).with_columns(
            pl.when(nospn).then(pl.lit("KRB-ERROR")).otherwise(pl.lit("TGS-REP")).alias("msg_type"),
            pl.when(nospn).then(pl.lit(7, pl.Int32)).alias("error_code"),
        ),
        rows(
            9_000,
            "AP-REQ",
            True,
            port + 3,
            server=pl.lit("10.0.0.30"),
            server_port=pl.lit(445, pl.Int32),
            service=svc,
            ticket_service=svc,
            ticket_kvno=pl.lit(3, pl.Int32),
            carrier=pl.lit("smb2"),
            ap_options=pl.lit(0x20000000),
            phase=pl.lit("AP"),
        ),
        rows(
            10_000,
            "AP-REP",
            False,
            port + 3,
            server=pl.lit("10.0.0.30"),
            server_port=pl.lit(445, pl.Int32),
            carrier=pl.lit("smb2"),
            phase=pl.lit("AP"),
        ),
    ]
    cap = (
        pl.concat(parts, how="diagonal_relaxed")
        .sort("ts")
        .with_columns(
            pl.col("ts").cast(pl.Datetime("us", "UTC")),
            pl.lit("synthetic.pcap").alias("source"),
            pl.lit("pcap").alias("source_kind"),
            pl.lit("tcp").alias("transport"),
            pl.col("carrier").fill_null("kdc"),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("record_no"),
        )
        .drop("i")
    )
    ev = i.filter(pl.col("i") % 10 == 0).select(
        (t0 + 4_500).cast(pl.Datetime("us", "UTC")).alias("ts"),
        pl.lit("dc1.evtx").alias("source"),
        pl.lit("evtx").alias("source_kind"),
        pl.col("i").alias("record_no"),
        pl.lit("DC1").alias("host"),
        pl.lit(4768, pl.Int32).alias("event_id"),
        pl.lit("AS").alias("phase"),
        host.alias("src_ip"),
        user.alias("client"),
        pl.when(bad).then(pl.lit(24, pl.Int32)).alias("error_code"),
    )
    spray = (
        pl.int_range(0, 2_000, dtype=pl.Int64, eager=True)
        .to_frame("j")
        .select(
            (pl.lit(BASE_US) + pl.col("j") * 1_000_000).cast(pl.Datetime("us", "UTC")).alias("ts"),
            pl.lit("dc1.evtx").alias("source"),
            pl.lit("evtx").alias("source_kind"),
            (pl.col("j") + 10_000_000).alias("record_no"),
            pl.lit("DC1").alias("host"),
            pl.lit(4771, pl.Int32).alias("event_id"),
            pl.lit("AS").alias("phase"),
            pl.lit("10.9.9.9").alias("src_ip"),
            pl.concat_str([pl.lit("victim"), pl.col("j").cast(pl.String)]).alias("client"),
            pl.lit(24, pl.Int32).alias("error_code"),
        )
    )
    full = pl.concat([cap, ev, spray], how="diagonal_relaxed")
    return full.select(
        [pl.col(c).cast(t) if c in full.columns else pl.lit(None, t).alias(c) for c, t in TIMELINE.items()]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--logons", type=int, default=125_000)
    args = ap.parse_args()
    t = time.perf_counter()
    df = synth(args.logons)
    print(f"synthetic timeline: {df.height:,} rows in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    c = correlate(df)
    t_corr = time.perf_counter() - t
    t = time.perf_counter()
    f = diagnose(c.facts)
    t_diag = time.perf_counter() - t
    print(
        f"correlate: {t_corr:.1f} s ({c.exchanges.height:,} exchanges, {c.attempts.height:,} attempts, "
        f"{c.clock_offsets.height} clock rows)"
    )
    print(f"diagnose:  {t_diag:.1f} s ({f.height:,} findings)")
    print(f"total:     {t_corr + t_diag:.1f} s for {df.height:,} rows")
    print(f.group_by("rule").agg(pl.col("count").sum()).sort("rule"))


if __name__ == "__main__":
    main()
