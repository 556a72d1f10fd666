"""A plain-text summary of a timeline: inputs, messages per type, errors per code, parse issues."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import polars as pl

from parsers.record import ParseReport


def kind_label(msg_type: str | None, event_id: int | None, carrier: str | None = None) -> str:
    """What a timeline row is, for people: its message type, ``event <id>``, or ``<carrier> outcome`` for a
    carrier's answer without a Kerberos token (HTTP 401, STATUS_LOGON_FAILURE, ...)."""
    if msg_type is not None:
        return msg_type
    if event_id is not None:
        return f"event {event_id}"
    return f"{carrier} outcome" if carrier else "other"


def kind_counts(df: pl.DataFrame) -> list[tuple[str, int]]:
    """``(kind_label, rows)`` of a timeline, most frequent first (ties by label, so the order is stable)."""
    counts: Counter[str] = Counter()
    for msg, ev, carrier, n in df.group_by("msg_type", "event_id", "carrier").len().iter_rows():
        counts[kind_label(msg, ev, carrier)] += n
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def inputs_table(reports: Sequence[ParseReport]) -> list[str]:
    """One line per input file: kind, frames or records read, Kerberos rows, issues (or why it was unusable)."""
    lines = []
    for r in reports:
        if r.fatal is not None:
            lines.append(f"  {r.source}: unusable ({r.fatal})")
            continue
        unit = "records" if r.source_kind in ("evtx", "xml", "jsonl") else "frames"
        issues = f", {r.issue_total} parse issues" if r.issue_total else ""
        lines.append(f"  {r.source} [{r.source_kind}]: {r.units} {unit}, {r.messages} Kerberos rows{issues}")
    return lines


def issues_table(reports: Sequence[ParseReport]) -> list[str]:
    """Parse issues by kind over all inputs, with the first examples of each."""
    total = ParseReport(source="")
    for r in reports:
        total.merge(r)
    lines = []
    for kind, n in sorted(total.issues.items(), key=lambda kv: (-kv[1], kv[0])):
        shown = "; ".join(total.examples.get(kind, [])[:3])
        lines.append(f"  {kind:<28} {n:>7}  {shown}")
    return lines


def summary_text(df: pl.DataFrame, reports: Sequence[ParseReport]) -> str:
    """The decoded-timeline summary printed by ``krbtrace analyze`` and ``krbtrace timeline --summary``."""
    out = ["Inputs:", *inputs_table(reports), ""]
    if df.height:
        span = f"{df['ts'].min():%Y-%m-%d %H:%M:%S} .. {df['ts'].max():%Y-%m-%d %H:%M:%S} UTC"
        out.append(f"Kerberos rows: {df.height} ({span})")
        out.append("Messages and events:")
        for label, n in kind_counts(df):
            out.append(f"  {label:<28} {n:>7}")
        errs = (
            df.filter(pl.col("error_code").is_not_null())
            .group_by("error_code", "error_name")
            .len()
            .sort(["len", "error_code"], descending=[True, False])
        )
        if errs.height:
            out.append("Errors:")
            for code, name, n in errs.iter_rows():
                out.append(f"  {code:>3} {name:<40} {n:>7}")
    else:
        out.append("Kerberos rows: 0")
    issues = issues_table(reports)
    out.append("Parse issues:" if issues else "Parse issues: none")
    out.extend(issues)
    return "\n".join(out) + "\n"
