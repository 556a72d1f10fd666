"""One self-contained HTML report of an analysis, and the notebook ``_repr_html_`` of an Analysis.

The report is a single file: figures are base64 PNG, style and script are inline, and a Content-Security-Policy
forbids every fetch, so it opens the same from a mail attachment on an air-gapped workstation. Sections: summary,
findings with evidence and remedies, clock offsets, figures, and the correlated timeline as a table filtered by a
little inline script (rows capped, with the cut stated). All text from the inputs is escaped: principal names,
e-text and event data are attacker-controlled.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl
from matplotlib.figure import Figure

from . import plot
from .html_assets import CSP, CSS, JS
from .schema import ATTEMPTS, CLOCK_OFFSETS, CORRELATED, EXCHANGES, FINDINGS
from .summary import kind_label

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS: Final = 5000
SEVERITY_ORDER: Final = ("critical", "high", "medium", "low", "info")
#: Lists in findings (principals, evidence) are cut to this many items, with the rest counted.
LIST_CAP: Final = 25
#: Findings in the embedded text report (as ``krbtrace analyze`` prints by default): every finding is in the page's
#: own Findings section, and a copy of thousands of them doubled the page (52 MB for 18 420 findings, 30 of them
#: the text).
TEXT_FINDINGS: Final = 50
TABLE_COLUMNS: Final = (
    ("ts", "time (UTC)"),
    ("evidence", "evidence"),
    ("host", "host"),
    ("flow", "from → to"),
    ("msg_type", "message / event"),
    ("phase", "phase"),
    ("outcome", "outcome"),
    ("error_name", "error"),
    ("client", "client"),
    ("service", "service"),
    ("etype", "etype"),
    ("clock_offset_s", "clock offset"),
)


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _ts(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _frames(data: Any) -> dict[str, pl.DataFrame]:
    return {
        "timeline": plot.frame(data, "timeline", CORRELATED),
        "exchanges": plot.frame(data, "exchanges", EXCHANGES),
        "findings": plot.frame(data, "findings", FINDINGS),
        "clock_offsets": plot.frame(data, "clock_offsets", CLOCK_OFFSETS),
    }


def figure_png(fig: Figure, dpi: int = 90) -> str:
    """The figure as a ``data:image/png;base64`` URL."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(fig: Figure, alt: str, dpi: int = 90) -> str:
    return f'<figure><img alt="{_esc(alt)}" src="{figure_png(fig, dpi)}"><figcaption>{_esc(alt)}</figcaption></figure>'


def _capped(items: Iterable[object] | None, cap: int = LIST_CAP) -> str:
    values = [str(v) for v in items or [] if v is not None]
    more = f" <i>(+{len(values) - cap} more)</i>" if len(values) > cap else ""
    return ", ".join(_esc(v) for v in values[:cap]) + more


def summary_facts(data: Any) -> list[tuple[str, str]]:
    """(label, value) pairs of the summary: rows, time span, exchanges, failures, principals, hosts, findings."""
    f = _frames(data)
    tl, ex, fnd = f["timeline"], f["exchanges"], f["findings"]
    facts = [("timeline rows", f"{tl.height:,}")]
    if tl.height:
        facts.append(("time span", f"{_ts(tl['ts'].min())} .. {_ts(tl['ts'].max())}"))  # type: ignore[arg-type]
        sources = tl["source"].drop_nulls().unique().sort().to_list()
        facts.append(
            (
                "inputs",
                ", ".join(sources[:LIST_CAP]) + (f" (+{len(sources) - LIST_CAP})" if len(sources) > LIST_CAP else ""),
            )
        )
    if ex.height:
        by = ex.group_by("outcome").len().sort("len", descending=True)
        facts.append(("exchanges", f"{ex.height:,} (" + ", ".join(f"{o}: {n:,}" for o, n in by.iter_rows()) + ")"))
        att = plot.frame(data, "attempts", ATTEMPTS)
        if att.height:
            by = att.group_by("outcome").len().sort(["len", "outcome"], descending=[True, False])
            shown = ", ".join(f"{o}: {n:,}" for o, n in by.iter_rows())
            facts.append(("attempts (AS → TGS → AP)", f"{att.height:,} ({shown})"))
        facts.append(("principals", f"{ex['client'].drop_nulls().n_unique():,}"))
        facts.append(("client hosts", f"{ex['client_host'].drop_nulls().n_unique():,}"))
    sev = severity_counts(fnd["severity"].to_list()) if fnd.height else "none"
    facts.append(("findings", f"{fnd.height} ({sev})" if fnd.height else "none"))
    counts = issue_counts(data)
    if counts:
        shown = ", ".join(f"{k}: {v:,}" for k, v in list(counts.items())[:10])
        facts.append(("parse issues", f"{sum(counts.values()):,} ({shown})"))
    return facts


def issue_counts(data: Any) -> dict[str, int]:
    """Parse issues by kind over all inputs, most frequent first (``Analysis.issues`` frame or a mapping)."""
    issues = getattr(data, "issues", None) if not isinstance(data, Mapping) else data.get("issues")
    if isinstance(issues, pl.DataFrame) and {"kind", "count"} <= set(issues.columns):
        by = issues.group_by("kind").agg(pl.col("count").sum()).sort(["count", "kind"], descending=[True, False])
        return {str(k): int(n) for k, n in by.iter_rows()}
    if isinstance(issues, Mapping):
        return {str(k): int(v) for k, v in sorted(issues.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))}
    return {}


def severity_counts(values: list[str]) -> str:
    """``"2 high, 1 medium"`` in severity order."""
    counts = {s: values.count(s) for s in dict.fromkeys(values)}
    order = [s for s in SEVERITY_ORDER if s in counts] + sorted(s for s in counts if s not in SEVERITY_ORDER)
    return ", ".join(f"{counts[s]} {s}" for s in order)


def _summary(data: Any) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in summary_facts(data))
    ex = plot.frame(data, "exchanges", EXCHANGES)
    matrix = ""
    if ex.height:
        piv = ex.group_by(["phase", "outcome"]).len()
        outcomes = [o for o in plot.OUTCOME_COLORS if o in set(piv["outcome"].to_list())]
        head = "".join(f"<th>{_esc(o)}</th>" for o in outcomes)
        body = ""
        for phase in sorted(
            set(piv["phase"].drop_nulls().to_list()),
            key=lambda p: list(plot.PHASE_MARKERS).index(p) if p in plot.PHASE_MARKERS else 9,
        ):
            cells = piv.filter(pl.col("phase") == phase)
            got = dict(zip(cells["outcome"], cells["len"], strict=True))
            body += (
                f"<tr><th>{_esc(phase)}</th>"
                + "".join(f'<td class="num">{got.get(o, 0):,}</td>' for o in outcomes)
                + "</tr>"
            )
        matrix = f'<table id="phases"><tr><th>phase</th>{head}</tr>{body}</table>'
    text = ""
    report = getattr(data, "report", None)
    if callable(report):
        try:
            text = f"<details><summary>text report</summary><pre>{_esc(report(TEXT_FINDINGS))}</pre></details>"
        except Exception:  # the HTML must still be written when the text report has a bug
            log.debug("text report failed", exc_info=True)
    return f'<section id="summary"><h2>Summary</h2><table>{rows}</table>{matrix}{text}</section>'


def _finding(i: int, f: dict[str, Any]) -> str:
    sev = str(f.get("severity") or "info")
    ids = " ".join(str(r) for r in f.get("row_ids") or [])
    evidence = list(f.get("evidence") or [])
    ev = "".join(f"<li>{_esc(e)}</li>" for e in evidence[:LIST_CAP])
    if len(evidence) > LIST_CAP:
        ev += f"<li><i>+{len(evidence) - LIST_CAP} more</i></li>"
    show = (
        f' <button type="button" data-rule="{_esc(f["rule"])}" data-rows="{_esc(ids)}">show in timeline</button>'
        if ids
        else ""
    )
    return (
        f'<article id="finding-{i}" class="finding sev-{_esc(sev)}" data-rule="{_esc(f["rule"])}">'
        f'<h3><span class="sev sev-{_esc(sev)}">{_esc(sev)}</span> {_esc(f.get("title") or f["rule"])} '
        f"<code>{_esc(f['rule'])}</code></h3><dl>"
        f"<dt>count</dt><dd>{_esc(f.get('count'))} (confidence {_esc(f.get('confidence') or 'n/a')})</dd>"
        f"<dt>seen</dt><dd>{_esc(_ts(f.get('first_seen')))} .. {_esc(_ts(f.get('last_seen')))}</dd>"
        f"<dt>error code</dt><dd>{_esc(f.get('error_code'))}</dd>"
        f"<dt>principals</dt><dd>{_capped(f.get('principals'))}</dd>"
        f"<dt>services</dt><dd>{_capped(f.get('services'))}</dd>"
        f"<dt>hosts</dt><dd>{_capped(f.get('hosts'))}</dd></dl>"
        f'<p class="explanation">{_esc(f.get("explanation"))}</p>'
        f'<div class="remedy"><b>Remedy:</b> {_esc(f.get("remedy"))}</div>'
        f"<details><summary>evidence ({len(evidence)})</summary><ul>{ev}</ul></details>{show}</article>"
    )


def _findings(data: Any) -> str:
    fnd = plot.frame(data, "findings", FINDINGS)
    if fnd.height == 0:
        return '<section id="findings"><h2>Findings</h2><p>No rule matched.</p></section>'
    rows = fnd.iter_rows(named=True)
    index = "".join(
        f'<tr><td><span class="sev sev-{_esc(f["severity"])}">{_esc(f["severity"])}</span></td>'
        f'<td><a href="#finding-{i}">{_esc(f["title"] or f["rule"])}</a></td><td class="num">{_esc(f["count"])}</td>'
        f"<td>{_capped(f['principals'], 3)}</td><td>{_capped(f['services'], 3)}</td></tr>"
        for i, f in enumerate(rows)
    )
    head = "<tr><th>severity</th><th>finding</th><th>count</th><th>principals</th><th>services</th></tr>"
    body = "".join(_finding(i, f) for i, f in enumerate(fnd.iter_rows(named=True)))
    return (
        f'<section id="findings"><h2>Findings ({fnd.height})</h2><table id="finding-index">{head}{index}</table>'
        f"{body}</section>"
    )


def _offsets(data: Any, tolerance_s: float) -> str:
    off = plot.frame(data, "clock_offsets", CLOCK_OFFSETS)
    if off.height == 0:
        return '<section id="clock"><h2>Clock offsets</h2><p>No clock could be compared.</p></section>'
    rows = ""
    for r in off.sort(pl.col("offset_s").abs(), descending=True, nulls_last=True).iter_rows(named=True):
        v = r["offset_s"]
        bad = v is not None and abs(v) > tolerance_s
        cls = ' class="bad"' if bad else ""
        shown = plot.fmt_offset(v) if v is not None else ""
        rows += (
            f"<tr><td>{_esc(r['host'])}</td><td>{_esc(r['role'])}</td><td{cls}>{_esc(shown)}</td>"
            f'<td class="num">{_esc(v)}</td><td>{"outside" if bad else "within"}</td><td>{_esc(r["reference"])}</td>'
            f'<td>{_esc(r["method"])}</td><td class="num">{_esc(r["samples"])}</td>'
            f"<td>{_capped(r['evidence'], 5)}</td></tr>"
        )
    head = "<tr><th>host</th><th>role</th><th>offset</th><th>seconds</th><th>tolerance</th><th>reference</th>"
    head += "<th>method</th><th>samples</th><th>evidence</th></tr>"
    fig = _img(plot.clock_offsets(data, tolerance_s=tolerance_s), "clock offsets per host with the tolerance band")
    return (
        f'<section id="clock"><h2>Clock offsets</h2><p>Tolerance ±{tolerance_s:g} s (Kerberos clock skew).</p>'
        f'{fig}<table id="offsets">{head}{rows}</table></section>'
    )


def _figures(data: Any) -> str:
    figs = [
        (plot.swimlane(data, by="principal"), "exchanges per principal (swimlane)"),
        (plot.swimlane(data, by="client_host"), "exchanges per client host (swimlane)"),
        (plot.errors_over_time(data), "errors over time"),
        (plot.top_failing(data), "top failing principals and services"),
    ]
    return '<section id="figures"><h2>Figures</h2>' + "".join(_img(f, alt) for f, alt in figs) + "</section>"


def table_rows(timeline: pl.DataFrame, max_rows: int) -> tuple[pl.DataFrame, str]:
    """The rows the table shows and the sentence stating the cut (empty when all rows are shown).

    Past ``max_rows``, the rows of failed and unanswered exchanges go first, the rest in time order.
    """
    if timeline.height <= max_rows:
        return timeline, ""
    urgent = pl.col("outcome").is_in(["failed", "unanswered", "unmatched"]).fill_null(False)
    kept = timeline.with_columns(_urgent=urgent).sort(["_urgent", "ts"], descending=[True, False]).head(max_rows)
    kept = kept.drop("_urgent").sort(["ts", "row_id"])
    n_urgent = int(timeline.select(urgent.sum()).item())
    note = (
        f"Table cut to {max_rows:,} of {timeline.height:,} rows: rows of failed and unanswered exchanges first "
        f"({min(n_urgent, max_rows):,} of {n_urgent:,}), then the others in time order. "
        "Write the whole timeline with: krbtrace timeline FILES -o timeline.parquet"
    )
    return kept, note


def _cell(name: str, r: dict[str, Any]) -> str:
    if name == "ts":
        return _ts(r["ts"])
    if name == "evidence":
        return f"{Path(str(r['source'] or '')).name}#{r['record_no']}"
    if name == "flow":
        src = f"{r['src_ip']}:{r['src_port']}" if r["src_ip"] else ""
        dst = f"{r['dst_ip']}:{r['dst_port']}" if r["dst_ip"] else ""
        return f"{src} → {dst}" if src or dst else ""
    if name == "msg_type":
        return kind_label(r["msg_type"], r["event_id"], r["carrier"])
    if name == "clock_offset_s":
        return plot.fmt_offset(r[name]) if r[name] is not None else ""
    return "" if r[name] is None else str(r[name])


def _timeline(data: Any, max_rows: int) -> str:
    tl = plot.frame(data, "timeline", CORRELATED)
    shown, note = table_rows(tl, max_rows)
    head = "".join(f"<th>{_esc(label)}</th>" for _, label in TABLE_COLUMNS)
    body = []
    for r in shown.iter_rows(named=True):
        attrs = (
            f'data-row="{_esc(r["row_id"])}" data-phase="{_esc(r["phase"])}" data-outcome="{_esc(r["outcome"])}" '
            f'data-error="{1 if r["error_code"] is not None else 0}" class="o-{_esc(r["outcome"])}"'
        )
        body.append(f"<tr {attrs}>" + "".join(f"<td>{_esc(_cell(n, r))}</td>" for n, _ in TABLE_COLUMNS) + "</tr>")
    phases = "".join(
        f'<option value="{_esc(p)}">{_esc(p)}</option>' for p in sorted(shown["phase"].drop_nulls().unique())
    )
    outcomes = "".join(
        f'<option value="{_esc(o)}">{_esc(o)}</option>' for o in sorted(shown["outcome"].drop_nulls().unique())
    )
    cut = f'<p class="cut" id="cut">{_esc(note)}</p>' if note else ""
    controls = (
        '<div class="controls">'
        '<input id="f-text" type="search" placeholder="filter: principal, host, error…" size="40">'
        f'<select id="f-phase"><option value="">any phase</option>{phases}</select>'
        f'<select id="f-outcome"><option value="">any outcome</option>{outcomes}</select>'
        '<label><input id="f-errors" type="checkbox"> errors only</label>'
        f'<span>showing <b id="f-count">{shown.height}</b> of {shown.height:,} rows</span>'
        '<span id="f-finding" hidden>rows of finding <b><span></span></b> '
        '<button type="button">clear</button></span></div>'
    )
    return (
        f'<section id="timeline-section"><h2>Correlated timeline</h2>{cut}{controls}'
        f'<div class="scroll"><table id="timeline"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


def render_html(
    data: Any, *, title: str = "krbtrace report", max_rows: int = DEFAULT_MAX_ROWS, tolerance_s: float = 300.0
) -> str:
    """The whole report as one HTML document (figures embedded, inline style and script, no fetches)."""
    from . import __version__

    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
        f'<h1>{_esc(title)}</h1><p class="meta">krbtrace {_esc(__version__)}, written {made}; all times UTC.</p>',
        _summary(data),
        _findings(data),
        _offsets(data, tolerance_s),
        _figures(data),
        _timeline(data, max_rows),
        f"<script>{JS}</script></body></html>",
    ]
    return "\n".join(parts)


def write_html(data: Any, path: str | Path, **options: Any) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8); returns the path."""
    out = Path(path)
    out.write_text(render_html(data, **options), encoding="utf-8")
    return out


def repr_html(data: Any, top: int = 10) -> str:
    """The notebook view of an Analysis: summary, findings table and a small swimlane (no script)."""
    facts = "".join(
        f"<tr><th style='text-align:left'>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in summary_facts(data)
    )
    fnd = plot.frame(data, "findings", FINDINGS)
    if fnd.height:
        rows = "".join(
            f"<tr><td>{_esc(f['severity'])}</td><td>{_esc(f['title'] or f['rule'])}</td><td>{_esc(f['count'])}</td>"
            f"<td>{_capped(f['principals'], 5)}</td><td>{_capped(f['services'], 5)}</td>"
            f"<td>{_capped(f['hosts'], 5)}</td>"
            f"<td>{_esc(_ts(f['first_seen']))}</td></tr>"
            for f in fnd.iter_rows(named=True)
        )
        findings = (
            "<table><tr><th>severity</th><th>finding</th><th>count</th><th>principals</th><th>services</th>"
            f"<th>hosts</th><th>first seen (UTC)</th></tr>{rows}</table>"
        )
    else:
        findings = "<p>No findings.</p>"
    fig = plot.swimlane(data, top=top)
    fig.set_size_inches(9, min(fig.get_size_inches()[1], 5.5))
    return (
        f"<div class='krbtrace-analysis'><b>krbtrace Analysis</b><table>{facts}</table>"
        f"<b>Findings</b>{findings}<img alt='exchanges per principal' src='{figure_png(fig, 72)}'></div>"
    )
