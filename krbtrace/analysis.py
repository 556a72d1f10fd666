"""The library entry point: ``analyze(*paths) -> Analysis`` (read, correlate, diagnose) and ``analyze_frame``.

``Analysis`` holds every frame a notebook or the CLI needs: the correlated timeline, exchanges, attempts, clock
offsets and findings (schemas in :mod:`krbtrace.schema`), the per-file parse reports, and renders the text and
JSON reports (:mod:`krbtrace.report`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from parsers.errors import MalformedFile
from parsers.record import KrbRecord, ParseReport

from . import report as _report
from .correlate import correlate
from .diagnose import diagnose
from .exchanges import principal_key
from .progress import Progress, counted
from .schema import ATTEMPTS, CLOCK_OFFSETS, CORRELATED, EXCHANGES, FINDINGS
from .timeline import frame, iter_inputs


@dataclass
class Analysis:
    """The result of :func:`analyze`: frames (polars) and the reports built from them.

    ``timeline`` (``CORRELATED``), ``exchanges`` (``EXCHANGES``), ``attempts`` (``ATTEMPTS``), ``clock_offsets``
    (``CLOCK_OFFSETS``), ``findings`` (``FINDINGS``), ``reports`` (one :class:`ParseReport` per input file) and
    ``facts`` (the timeline with the helper columns the rules matched on).
    """

    timeline: pl.DataFrame = field(default_factory=CORRELATED.to_frame)
    exchanges: pl.DataFrame = field(default_factory=EXCHANGES.to_frame)
    attempts: pl.DataFrame = field(default_factory=ATTEMPTS.to_frame)
    findings: pl.DataFrame = field(default_factory=FINDINGS.to_frame)
    clock_offsets: pl.DataFrame = field(default_factory=CLOCK_OFFSETS.to_frame)
    reports: list[ParseReport] = field(default_factory=list)
    facts: pl.DataFrame = field(default_factory=CORRELATED.to_frame, repr=False)

    @property
    def issues(self) -> pl.DataFrame:
        """Parse issues: one row per input file and kind (``source``, ``kind``, ``count``)."""
        rows = [(r.source, kind, n) for r in self.reports for kind, n in sorted(r.issues.items())]
        rows += [(r.source, "unusable_file", 1) for r in self.reports if r.fatal is not None]
        return pl.DataFrame(rows, schema={"source": pl.String, "kind": pl.String, "count": pl.Int64}, orient="row")

    def summary(self) -> dict[str, object]:
        """Counts for the report: rows, exchanges and attempts by phase and outcome, findings by severity."""
        return _report.summary(self)

    def report(self, limit: int | None = None) -> str:
        """The readable text report (what ``krbtrace analyze`` prints); ``limit``: only the first findings."""
        return _report.text(self, limit)

    def to_json(self) -> str:
        """The stable JSON report (``krbtrace analyze --format json``): inputs, summary, clock_offsets, findings."""
        return _report.to_json(self)

    def _repr_html_(self) -> str:
        """The notebook view: summary, findings table and a small swimlane (:func:`krbtrace.html_report.repr_html`)."""
        from .html_report import repr_html  # matplotlib loads only in a notebook

        return repr_html(self)

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"Analysis({s['rows']} rows, {s['exchanges']} exchanges, {s['attempts']} attempts, "
            f"{self.findings.height} findings)"
        )


def _select(
    a: Analysis,
    since: datetime | None,
    until: datetime | None,
    principal: str | None,
    service: str | None,
    host: str | None,
) -> Analysis:
    """Keep the attempts (and their rows) that match the filters; rows outside any attempt are judged alone."""
    f = a.facts
    cond = pl.lit(True)
    if since is not None:
        cond &= pl.col("ts") >= since
    if until is not None:
        cond &= pl.col("ts") <= until
    if principal is not None:
        cond &= principal_key().eq(principal.lower().rsplit("@", 1)[0])
    if service is not None:
        cond &= pl.col("service").str.contains(f"(?i){re.escape(service)}")
    if host is not None:
        cond &= pl.any_horizontal(
            pl.col(c).eq(host) for c in ("client_host", "server_host", "host", "src_ip", "dst_ip")
        ).fill_null(False)
    hit = f.filter(cond.fill_null(False))
    attempts = hit["attempt_id"].drop_nulls().unique()
    keep = pl.col("attempt_id").is_in(attempts.implode()) | pl.col("row_id").is_in(hit["row_id"].implode())
    if since is not None:
        keep &= pl.col("ts") >= since
    if until is not None:
        keep &= pl.col("ts") <= until
    facts = f.filter(keep.fill_null(False))
    ex_ids = facts["exchange_id"].drop_nulls().unique().implode()
    return Analysis(
        timeline=a.timeline.filter(pl.col("row_id").is_in(facts["row_id"].implode())),
        exchanges=a.exchanges.filter(pl.col("exchange_id").is_in(ex_ids)),
        attempts=a.attempts.filter(pl.col("attempt_id").is_in(facts["attempt_id"].drop_nulls().unique().implode())),
        findings=diagnose(facts),
        clock_offsets=a.clock_offsets,
        reports=a.reports,
        facts=facts,
    )


def analyze_frame(
    df: pl.DataFrame,
    reports: list[ParseReport] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    principal: str | None = None,
    service: str | None = None,
    host: str | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Correlate and diagnose a timeline already loaded (``TIMELINE`` columns); see :func:`analyze`."""
    if progress is not None:
        progress("correlate", 0, 2)
    c = correlate(df)
    if progress is not None:
        progress("diagnose", 1, 2)
    a = Analysis(
        timeline=c.timeline,
        exchanges=c.exchanges,
        attempts=c.attempts,
        findings=FINDINGS.to_frame(),
        clock_offsets=c.clock_offsets,
        reports=list(reports or []),
        facts=c.facts,
    )
    if any(v is not None for v in (since, until, principal, service, host)):
        a = _select(a, since, until, principal, service, host)
    else:
        a.findings = diagnose(c.facts)
    if progress is not None:
        progress("diagnose", 2, 2)
    return a


def analyze(
    *paths: str | Path,
    evtx_backend: str = "evtx",
    strict: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    principal: str | None = None,
    service: str | None = None,
    host: str | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
) -> Analysis:
    """Read captures and event logs (files, folders, globs), correlate and diagnose them.

    ``since``/``until`` (aware datetimes), ``principal``, ``service`` (substring) and ``host`` (an address or
    computer name) keep the attempts that involve them. A file that cannot be used is recorded in
    ``Analysis.reports`` (``fatal``) and skipped; with ``strict=True`` it, or any counted parse issue, raises
    :class:`parsers.errors.MalformedFile` instead. ``progress`` is called as records are read and as later steps
    finish. ``jobs``: processes per large plain capture (see :func:`krbtrace.timeline.iter_inputs`).
    """
    reports: list[ParseReport] = []
    records: Iterable[KrbRecord] = iter_inputs(paths, reports, evtx_backend=evtx_backend, jobs=jobs)
    if progress is not None:
        records = counted(records, progress)
    df = frame(records)
    if strict:
        bad = [r for r in reports if r.fatal is not None or r.issue_total]
        if bad:
            why = "; ".join(f"{r.source}: {r.fatal or dict(r.issues)}" for r in bad)
            raise MalformedFile(f"strict mode: {why}")
    return analyze_frame(
        df, reports, since=since, until=until, principal=principal, service=service, host=host, progress=progress
    )
