"""The readable text report and the stable JSON report of an :class:`krbtrace.analysis.Analysis`.

JSON (``krbtrace analyze --format json``), version 1 — keys never removed or renamed within a version:

* ``format``: ``"krbtrace-report"``, ``version``: 1
* ``inputs``: list of ``{file, kind, units, unit, messages, issues: {kind: count}, fatal}``
* ``summary``: ``{rows, exchanges, attempts, phases: {AS|TGS|AP|KPASSWD: {ok, failed, expected, unanswered,
  unmatched}}, attempts_by_outcome: {...}, findings_by_severity: {...}}`` (phases count exchanges; an
  ``expected`` step is part of a successful attempt)
* ``clock_offsets``: list of ``{host, role, offset_s, reference, method, samples, first_seen, last_seen,
  evidence}``
* ``findings``: list of ``{rule, title, severity, confidence, error_code, principals, services, hosts, count,
  first_seen, last_seen, evidence, explanation, remedy}``; times are ISO 8601 UTC with ``Z``
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
import polars as pl

from .summary import inputs_table, issues_table, kind_counts

if TYPE_CHECKING:
    from .analysis import Analysis

JSON_VERSION: Final = 1
PHASES: Final = ("AS", "TGS", "AP", "KPASSWD")
OUTCOMES: Final = ("ok", "failed", "expected", "unanswered", "unmatched")
#: Evidence references printed per finding in the text report (JSON has them all).
TEXT_EVIDENCE: Final = 8
_EVENT_KINDS: Final = ("evtx", "xml", "jsonl")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clock(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def phase_table(a: Analysis) -> dict[str, dict[str, int]]:
    """Exchanges per phase and outcome (every phase and outcome present, zero when none)."""
    table = {p: dict.fromkeys(OUTCOMES, 0) for p in PHASES}
    counts = a.exchanges.group_by("phase", "outcome").len()
    for phase, outcome, n in counts.iter_rows():
        if phase in table and outcome in table[phase]:
            table[phase][outcome] = n
    return table


def summary(a: Analysis) -> dict[str, Any]:
    """Counts: rows, exchanges, attempts, the phase table, attempts by outcome, findings by severity."""
    by_outcome = dict(a.attempts.group_by("outcome").len().sort("outcome").iter_rows())
    sev = dict(a.findings.group_by("severity").len().iter_rows())
    return {
        "rows": a.timeline.height,
        "exchanges": a.exchanges.height,
        "attempts": a.attempts.height,
        "phases": phase_table(a),
        "attempts_by_outcome": by_outcome,
        "findings_by_severity": {s: sev.get(s, 0) for s in ("critical", "high", "medium", "low", "info")},
    }


def _inputs(a: Analysis) -> list[dict[str, Any]]:
    return [
        {
            "file": r.source,
            "kind": r.source_kind,
            "units": r.units,
            "unit": "records" if r.source_kind in _EVENT_KINDS else "frames",
            "messages": r.messages,
            "issues": dict(sorted(r.issues.items())),
            "fatal": r.fatal,
        }
        for r in a.reports
    ]


def _records(df: pl.DataFrame, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    out = []
    for row in df.drop([c for c in drop if c in df.columns]).iter_rows(named=True):
        out.append({k: _iso(v) if isinstance(v, datetime) else v for k, v in row.items()})
    return out


def to_dict(a: Analysis) -> dict[str, Any]:
    """The JSON report as a Python mapping (see the module docstring for the layout)."""
    return {
        "format": "krbtrace-report",
        "version": JSON_VERSION,
        "inputs": _inputs(a),
        "summary": summary(a),
        "clock_offsets": _records(a.clock_offsets),
        "findings": _records(a.findings, drop=("row_ids",)),
    }


def to_json(a: Analysis) -> str:
    """The JSON report as text (indented, keys in a fixed order, one trailing newline)."""
    return orjson.dumps(to_dict(a), option=orjson.OPT_INDENT_2).decode() + "\n"


def _wrap(label: str, text: str, width: int = 110) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(cur)
    pad = " " * len(label)
    return [f"{label if i == 0 else pad}{line}" for i, line in enumerate(lines)] or [label.rstrip()]


def _names(values: list[str] | None, limit: int = 6) -> str:
    vals = values or []
    if not vals:
        return "-"
    more = f" (+{len(vals) - limit} more)" if len(vals) > limit else ""
    return ", ".join(vals[:limit]) + more


def text(a: Analysis, limit: int | None = None) -> str:
    """The readable report: inputs, phase table, clock offsets, findings by severity (the first ``limit`` of them
    when given: a large incident has thousands, and the JSON report keeps every one)."""
    out = ["== Inputs", *inputs_table(a.reports)]
    msgs = ", ".join(f"{label} {n}" for label, n in kind_counts(a.timeline)[:12])
    out.append(f"  Kerberos rows: {a.timeline.height}" + (f" ({msgs})" if msgs else ""))
    if a.timeline.height:
        out.append(f"  Time span: {_clock(a.timeline['ts'].min())} .. {_clock(a.timeline['ts'].max())} UTC")  # type: ignore[arg-type]
    issues = issues_table(a.reports)
    out.append("  Parse issues:" if issues else "  Parse issues: none")
    out.extend(f"  {line}" for line in issues)

    out += ["", "== Phases (exchanges; an expected step is part of a successful logon)"]
    out.append(f"  {'phase':<8}" + "".join(f"{o:>12}" for o in OUTCOMES))
    for phase, row in phase_table(a).items():
        if any(row.values()):
            out.append(f"  {phase:<8}" + "".join(f"{row[o]:>12}" for o in OUTCOMES))
    by = summary(a)["attempts_by_outcome"]
    shown = ", ".join(f"{k} {v}" for k, v in by.items()) or "none"
    out.append(f"  Attempts (AS -> TGS -> AP per client and principal): {a.attempts.height} ({shown})")

    out += ["", "== Clock offsets (host clock minus reference; + = ahead)"]
    if a.clock_offsets.height == 0:
        out.append("  none measured")
    for r in a.clock_offsets.iter_rows(named=True):
        out.append(
            f"  {r['host'] or '?':<24} {r['role'] or '?':<8} {r['offset_s'] or 0.0:>+10.1f} s  vs {r['reference']}  "
            f"[{r['method']}, {r['samples']} samples]"
        )

    counts = ", ".join(f"{s} {n}" for s, n in summary(a)["findings_by_severity"].items() if n)
    out += ["", f"== Findings ({a.findings.height}{': ' + counts if counts else ''})"]
    if a.findings.height == 0:
        out.append("  none")
    shown = a.findings if limit is None or limit <= 0 else a.findings.head(limit)
    for i, f in enumerate(shown.iter_rows(named=True), 1):
        code = f" (error {f['error_code']})" if f["error_code"] is not None else ""
        out.append(f"{i}. [{f['severity'].upper()}] {f['title']}{code}  x{f['count']}  rule {f['rule']}")
        out.append(f"   seen {_clock(f['first_seen'])} .. {_clock(f['last_seen'])} UTC")
        out.append(f"   principals: {_names(f['principals'])}")
        out.append(f"   services:   {_names(f['services'])}")
        out.append(f"   hosts:      {_names(f['hosts'])}")
        ev = f["evidence"] or []
        more = f" (+{len(ev) - TEXT_EVIDENCE} more)" if len(ev) > TEXT_EVIDENCE else ""
        out.append(f"   evidence:   {', '.join(ev[:TEXT_EVIDENCE])}{more}")
        out.extend(_wrap("   why:  ", f["explanation"]))
        out.extend(_wrap("   fix:  ", f["remedy"]))
    if shown.height < a.findings.height:
        out.append(
            f"... {a.findings.height - shown.height} more findings, less severe or less frequent than those above "
            "(--limit 0 shows all; --format json and --html list every one)"
        )
    return "\n".join(out) + "\n"
