"""Figures of an analysis: phase swimlane, errors over time, clock offsets, top failing principals and services.

Every function takes an :class:`krbtrace.analysis.Analysis` (or any object or mapping with the frames
``exchanges``, ``findings``, ``clock_offsets`` of :mod:`krbtrace.schema`) and returns a matplotlib
:class:`~matplotlib.figure.Figure` drawn on the Agg canvas; nothing touches pyplot, so no global figure state and
never ``plt.show()``. Large incidents stay readable: lanes and bars are cut to the top N, and the cut is written on
the figure. Time axes are UTC whatever the local zone (Kerberos times are UTC on the wire, RFC 4120 §5.2.3).

Artists carry ``gid`` values (``errors``, ``error-label``, ``finding``, ``tolerance``, ``offset-bar``) so tests
and callers can find what a figure shows without parsing pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC
from pathlib import Path
from typing import Any, Final

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from .schema import CLOCK_OFFSETS, EXCHANGES, FINDINGS

log = logging.getLogger(__name__)

#: Windows and MIT KDCs both reject authenticators more than five minutes off (RFC 4120 §1.6 "clockskew").
DEFAULT_TOLERANCE_S: Final = 300.0

OUTCOME_COLORS: Final[dict[str, str]] = {
    "ok": "#2e7d32",
    "failed": "#c62828",
    "expected": "#9e9e9e",
    "unanswered": "#ef6c00",
    "unmatched": "#6a1b9a",
}
PHASE_MARKERS: Final[dict[str, str]] = {"AS": "o", "TGS": "s", "AP": "^", "KPASSWD": "D"}
#: Phases sit on sub-rows of a lane so that AS -> TGS -> AP reads top to bottom inside it.
PHASE_OFFSETS: Final[dict[str, float]] = {"AS": -0.27, "TGS": -0.09, "AP": 0.09, "KPASSWD": 0.27}
FINDING_COLOR: Final = "#f9a825"
#: A gap longer than this share of the whole span (and than an hour) splits the time axis into panels.
GAP_SHARE: Final = 0.2
MAX_PANELS: Final = 3
LANE_KEYS: Final[dict[str, str]] = {"principal": "client", "client_host": "client_host"}
NONE_LABEL: Final = "(unknown)"


def frame(data: Any, name: str, schema: pl.Schema) -> pl.DataFrame:
    """The frame ``name`` of an Analysis-like object or a mapping; an empty frame of ``schema`` when absent."""
    df = data.get(name) if isinstance(data, Mapping) else getattr(data, name, None)
    return df if isinstance(df, pl.DataFrame) else pl.DataFrame(schema=schema)


def short(text: str, width: int = 40) -> str:
    """``text`` cut to ``width`` characters with an ellipsis: names come from the wire and can be any length."""
    return text if len(text) <= width else text[: width - 1] + "…"


def new_figure(width: float, height: float) -> Figure:
    """A Figure on its own Agg canvas (no pyplot, so nothing is shown or kept alive behind the caller's back)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_num(s: pl.Series) -> np.ndarray:
    """UTC datetimes as matplotlib date numbers (NaN for null)."""
    naive = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return np.asarray(mdates.date2num(naive.to_numpy()), dtype=float)


def utc_axis(ax: Axes) -> None:
    """Concise date ticks in UTC, labelled as such."""
    locator = mdates.AutoDateLocator(tz=UTC, minticks=3, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    ax.set_xlabel("time (UTC)")


def _empty(fig: Figure, ax: Axes, what: str) -> Figure:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, gid="empty")
    ax.set_axis_off()
    return fig


def _cut(shown: int, total: int, noun: str, by: str) -> str:
    if total <= shown:
        return f"all {total} {noun}"
    return f"top {shown} of {total:,} {noun} by {by}; {total - shown:,} not shown"


def rank_lanes(ex: pl.DataFrame, by: str, cited: frozenset[str] = frozenset()) -> pl.DataFrame:
    """Lanes ranked: cited by a finding first, then by failed exchanges, all exchanges, name.

    Columns lane, cited, failed, total.
    """
    key = LANE_KEYS[by]
    return (
        ex.with_columns(pl.col(key).fill_null(NONE_LABEL).alias("lane"))
        .group_by("lane")
        .agg(failed=(pl.col("outcome") == "failed").sum(), total=pl.len())
        .with_columns(cited=pl.col("lane").is_in(list(cited)))
        .sort(["cited", "failed", "total", "lane"], descending=[True, True, True, False])
    )


def cited_lanes(data: Any, by: str) -> frozenset[str]:
    """The principals (or hosts) that findings name: their lanes are drawn before any other."""
    fnd = frame(data, "findings", FINDINGS)
    col = "principals" if by == "principal" else "hosts"
    if fnd.height == 0:
        return frozenset()
    return frozenset(fnd[col].explode().drop_nulls().to_list())


def time_panels(xs: np.ndarray, max_panels: int = MAX_PANELS) -> list[tuple[float, float]]:
    """(first, last) date numbers of each panel: the times cut at their largest gaps.

    Inputs from different days (a lab capture, last month's DC log) would otherwise be squeezed against both ends of
    one axis. A gap splits when it is longer than an hour and than :data:`GAP_SHARE` of the whole span.
    """
    v = np.sort(xs[~np.isnan(xs)])
    if v.size == 0:
        return []
    gaps = np.diff(v)
    limit = max((v[-1] - v[0]) * GAP_SHARE, 1 / 24)
    cuts = sorted(int(i) for i in np.argsort(gaps)[::-1][: max_panels - 1] if gaps[i] > limit)
    starts, ends = [0, *(i + 1 for i in cuts)], [*cuts, v.size - 1]
    return [(float(v[a]), float(v[b])) for a, b in zip(starts, ends, strict=True)]


def panel_of(xs: np.ndarray, panels: list[tuple[float, float]]) -> np.ndarray:
    """The panel index of each date number."""
    starts = np.array([lo for lo, _ in panels])
    return np.clip(np.searchsorted(starts, xs, side="right") - 1, 0, max(len(panels) - 1, 0))


def _fmt_gap(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 60:.0f} minutes"


def panel_axes(fig: Figure, panels: list[tuple[float, float]]) -> list[Axes]:
    """One Axes per time panel, sharing y, each with its own UTC ticks; later panels say how long the gap was."""
    n = max(len(panels), 1)
    axes: list[Axes] = list(fig.subplots(1, n, sharey=True, squeeze=False)[0])
    for i, (ax, (lo, hi)) in enumerate(zip(axes, panels, strict=False)):
        pad = max((hi - lo) * 0.04, 2 / 86400)
        ax.set_xlim(lo - pad, hi + pad)
        utc_axis(ax)
        ax.grid(axis="x", alpha=0.3)
        if i:
            ax.spines["left"].set_linestyle((0, (3, 3)))
            ax.tick_params(axis="y", left=False)
            ax.set_title(f"… {_fmt_gap((lo - panels[i - 1][1]) * 86400)} later", fontsize=8, loc="left")
        if i < n - 1:
            ax.spines["right"].set_linestyle((0, (3, 3)))
    return axes


def swimlane(data: Any, by: str = "principal", top: int = 25, findings: bool = True) -> Figure:
    """One lane per principal (``by="principal"``) or client host (``by="client_host"``), exchanges along time.

    Marker shape is the phase (AS circle, TGS square, AP triangle, KPASSWD diamond) and colour the outcome; failed
    exchanges are red crosses (``gid="errors"``) with each error name written once per lane and panel at its first
    occurrence (``gid="error-label"``, ``NAME ×n`` when repeated; names close together share one label). Findings
    are gold boxes over the lanes and time span of their exchanges (``gid="finding:<rule>"``). Only ``top`` lanes
    are drawn: those the findings name, then those with the most failures (:func:`rank_lanes`); the title states
    the cut. Long gaps split the time axis into panels (:func:`time_panels`).
    """
    if by not in LANE_KEYS:
        raise ValueError(f"by must be one of {sorted(LANE_KEYS)}, not {by!r}")
    ex = frame(data, "exchanges", EXCHANGES)
    noun = "principals" if by == "principal" else "client hosts"
    ranked = rank_lanes(ex, by, cited_lanes(data, by) if findings else frozenset())
    lanes: list[str] = ranked["lane"].head(top).to_list()
    fig = new_figure(11.0, min(max(3.4, 2.2 + 0.38 * len(lanes)), 40.0))  # the legend needs 3.4 in
    if not lanes:
        return _empty(fig, fig.add_subplot(), "no Kerberos exchanges")
    pos = {lane: i for i, lane in enumerate(lanes)}
    shown = (
        ex.with_columns(pl.col(LANE_KEYS[by]).fill_null(NONE_LABEL).alias("lane"))
        .filter(pl.col("lane").is_in(lanes))
        .with_columns(
            y=pl.col("lane").replace_strict(pos, return_dtype=pl.Float64)
            + pl.col("phase").replace_strict(PHASE_OFFSETS, default=0.0, return_dtype=pl.Float64),
            x=pl.col("start").fill_null(pl.col("end")),
        )
        .filter(pl.col("x").is_not_null())
        .sort("x")
    )
    if shown.height == 0:
        return _empty(fig, fig.add_subplot(), "no Kerberos exchanges")
    xs = to_num(shown["x"])
    panels = time_panels(xs)
    shown = shown.with_columns(xn=pl.Series(xs), panel=pl.Series(panel_of(xs, panels)))
    axes = panel_axes(fig, panels)
    fnd = frame(data, "findings", FINDINGS) if findings else pl.DataFrame(schema=FINDINGS)
    cited: set[int] = set()
    for k, ax in enumerate(axes):
        part = shown.filter(pl.col("panel") == k)
        _draw_exchanges(ax, part)
        _label_errors(ax, part)
        cited |= _highlight_findings(ax, fnd, part, by)
    axes[0].set_yticks(range(len(lanes)), [short(n) for n in lanes], fontsize=8)
    axes[0].set_ylim(len(lanes) - 0.5, -0.5)
    axes[0].set_ylabel("principal" if by == "principal" else "client host")
    order = "findings, then failed exchanges" if findings else "failed exchanges"
    fig.suptitle(f"Kerberos exchanges per {noun[:-1]} — {_cut(len(lanes), ranked.height, noun, order)}")
    _legend(axes[-1], len(cited))
    return fig


def _draw_exchanges(ax: Axes, part: pl.DataFrame) -> None:
    is_error = (pl.col("outcome") == "failed") & pl.col("error_name").is_not_null()
    for (phase, outcome), sub in part.filter(~is_error).group_by(["phase", "outcome"], maintain_order=True):
        ax.scatter(
            sub["xn"].to_numpy(),
            sub["y"].to_numpy(),
            marker=PHASE_MARKERS.get(str(phase), "o"),
            s=28,
            color=OUTCOME_COLORS.get(str(outcome), "#455a64"),
            alpha=0.85,
            linewidths=0,
            gid=f"exchanges:{phase}:{outcome}",
            zorder=3,
        )
    errors = part.filter(is_error)
    if errors.height:
        ax.scatter(
            errors["xn"].to_numpy(),
            errors["y"].to_numpy(),
            marker="X",
            s=60,
            color=OUTCOME_COLORS["failed"],
            edgecolors="white",
            linewidths=0.5,
            gid="errors",
            zorder=4,
        )


def _label_errors(ax: Axes, part: pl.DataFrame) -> None:
    """Each error name once per lane at its first occurrence; names whose labels would overlap share one label.

    Labels in the right half of a panel extend to the left, so that none runs into the next panel or the legend.
    """
    errors = part.filter((pl.col("outcome") == "failed") & pl.col("error_name").is_not_null())
    firsts = (
        errors.group_by(["lane", "error_name"])
        .agg(pl.col("xn").first(), pl.col("y").first(), n=pl.len())
        .sort(["lane", "xn", "error_name"])
    )
    lo, hi = ax.get_xlim()
    width_pt = ax.get_position().width * ax.get_figure().get_figwidth() * 72  # type: ignore[union-attr]
    per_char = 4.5 * (hi - lo) / width_pt  # a 7-point capital is about 4.5 points wide
    groups: list[tuple[float, float, list[str]]] = []
    last_lane = None
    for lane, name, x, y, n in firsts.iter_rows():
        text = f"{short(str(name), 60)} ×{n}" if n > 1 else short(str(name), 60)
        if lane == last_lane:
            gx, _gy, texts = groups[-1]
            if x - gx < per_char * (max(len(", ".join(texts)), len(text)) + 3):
                texts.append(text)
                continue
        groups.append((x, y, [text]))
        last_lane = lane
    for x, y, texts in groups:
        right = x > (lo + hi) / 2
        room = int(((x - lo) if right else (hi - x)) / per_char) - 2
        ax.annotate(
            fit_labels(texts, room),
            (x, y),
            xytext=(-4 if right else 4, 5),
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=7,
            color=OUTCOME_COLORS["failed"],
            gid="error-label",
            zorder=5,
            clip_on=True,
        ).set_in_layout(False)


def fit_labels(texts: list[str], room: int) -> str:
    """``texts`` joined by commas within ``room`` characters, the rest counted (``A, B +2 more``); never empty."""
    out: list[str] = []
    for i, t in enumerate(texts):
        rest = len(texts) - i - 1
        tail = len(f" +{rest} more") if rest else 0
        if out and len(", ".join([*out, t])) + tail > room:
            return ", ".join(out) + f" +{len(texts) - i} more"
        out.append(t)
    return ", ".join(out)


def _highlight_findings(ax: Axes, fnd: pl.DataFrame, part: pl.DataFrame, by: str) -> set[int]:
    """Gold boxes over the exchanges each finding cites (by row id, or by its principals or hosts).

    Returns the indices of the findings drawn. The rule names of a lane share one label.
    """
    drawn: set[int] = set()
    labels: dict[float, tuple[float, list[str]]] = {}
    for i, f in enumerate(fnd.iter_rows(named=True)):
        ids = list(f["row_ids"] or [])
        names = list((f["principals"] if by == "principal" else f["hosts"]) or [])
        if not ids and not names:
            continue
        hit = part.filter(pl.col("row_ids").list.eval(pl.element().is_in(ids)).list.any() | pl.col("lane").is_in(names))
        for (lane_y,), sub in hit.group_by((pl.col("y") + 0.5).floor()):
            xs = sub["xn"].to_numpy()
            lo, hi = float(np.nanmin(xs)), float(np.nanmax(xs))
            pad = max((hi - lo) * 0.02, 2.0 / 86400)
            y = float(lane_y)  # the lane's centre, whatever the phase offsets
            ax.add_patch(
                Rectangle(
                    (lo - pad, y - 0.46),
                    hi - lo + 2 * pad,
                    0.92,
                    facecolor=FINDING_COLOR,
                    alpha=0.15,
                    edgecolor=FINDING_COLOR,
                    linewidth=1.0,
                    gid=f"finding:{f['rule']}",
                    zorder=1,
                )
            )
            x0, rules = labels.get(y, (lo - pad, []))
            if f["rule"] not in rules:
                rules.append(str(f["rule"]))
            labels[y] = (min(x0, lo - pad), rules)
            drawn.add(i)
    lo, hi = ax.get_xlim()
    width_pt = ax.get_position().width * ax.get_figure().get_figwidth() * 72  # type: ignore[union-attr]
    for y, (x0, rules) in labels.items():
        ax.annotate(
            fit_labels(rules, int((hi - x0) / (4.0 * (hi - lo) / width_pt)) - 2),
            (x0, y + 0.46),
            xytext=(2, 1),
            textcoords="offset points",
            fontsize=6.5,
            color="#8d6e00",
            va="bottom",
            gid="finding-label",
            zorder=5,
            clip_on=True,
        ).set_in_layout(False)
    return drawn


def _legend(ax: Axes, n_findings: int) -> None:
    handles = [
        Line2D([], [], marker=m, linestyle="", color="#455a64", label=phase) for phase, m in PHASE_MARKERS.items()
    ]
    handles += [
        Line2D([], [], marker="o", linestyle="", color=c, label=o) for o, c in OUTCOME_COLORS.items() if o != "failed"
    ]
    handles.append(Line2D([], [], marker="X", linestyle="", color=OUTCOME_COLORS["failed"], label="failed (error)"))
    if n_findings:
        handles.append(Rectangle((0, 0), 1, 1, facecolor=FINDING_COLOR, alpha=0.4, label=f"finding ({n_findings})"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)


def _palette(names: list[str]) -> dict[str, Any]:
    cmap = mpl.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


_NICE_STEPS_S: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 604800)


def bin_seconds(span_s: float, target: int = 40) -> int:
    """The smallest round bin width giving at most ``target`` bins over ``span_s`` seconds."""
    for step in _NICE_STEPS_S:
        if span_s / step <= target:
            return step
    return int(np.ceil(span_s / target / 86400)) * 86400


def errors_over_time(data: Any, bin_s: int | None = None, top: int = 8, include_expected: bool = False) -> Figure:
    """Failed exchanges per error name in time bins (stacked bars; the ``top`` names, the rest as "other").

    ``bin_s`` defaults to a round width giving about 40 bins. ``include_expected`` also counts the expected
    errors of a normal exchange (PREAUTH_REQUIRED before pre-authentication, RESPONSE_TOO_BIG before TCP).
    """
    ex = frame(data, "exchanges", EXCHANGES)
    outcomes = ["failed", "expected"] if include_expected else ["failed"]
    errs = ex.filter(pl.col("outcome").is_in(outcomes) & pl.col("error_name").is_not_null())
    errs = errs.with_columns(x=pl.col("start").fill_null(pl.col("end"))).filter(pl.col("x").is_not_null())
    fig = new_figure(11.0, 4.2)
    if errs.height == 0:
        return _empty(fig, fig.add_subplot(), "no failed exchanges")
    xn = to_num(errs["x"])
    panels = time_panels(xn)
    widest = max(hi - lo for lo, hi in panels) * 86400
    step = bin_s or bin_seconds(widest)
    totals = errs.group_by("error_name").len().sort(["len", "error_name"], descending=[True, False])
    names: list[str] = totals["error_name"].head(top).to_list()
    other = totals.height - len(names)
    errs = errs.with_columns(
        name=pl.when(pl.col("error_name").is_in(names)).then("error_name").otherwise(pl.lit(f"other ({other} names)")),
        bin=pl.col("x").dt.truncate(f"{step}s"),
        panel=pl.Series(panel_of(xn, panels)),
    )
    counts = errs.group_by(["panel", "bin", "name"]).len()
    order = names + ([f"other ({other} names)"] if other else [])
    colors = _palette(order)
    width = step / 86400
    axes = panel_axes(fig, panels)
    for k, ax in enumerate(axes):
        mine = counts.filter(pl.col("panel") == k)
        bins = mine["bin"].unique().sort()
        xs = to_num(bins)
        bottom = np.zeros(len(bins))
        for name in order:
            part = bins.to_frame().join(mine.filter(pl.col("name") == name), on="bin", how="left")
            ys = part["len"].fill_null(0).to_numpy().astype(float)
            if ys.any():
                ax.bar(xs, ys, width=width, bottom=bottom, align="edge", color=colors[name], gid=f"bin:{name}")
            bottom += ys
        ax.set_xlim(xs.min() - width, xs.max() + 2 * width)
        ax.grid(axis="y", alpha=0.3)
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel(f"failed exchanges per {_fmt_duration(step)}")
    cut = f"; top {len(names)} of {totals.height} error names" if other else ""
    fig.suptitle(f"Errors over time — {errs.height:,} errors, {_fmt_duration(step)} bins{cut}")
    handles = [Rectangle((0, 0), 1, 1, color=colors[n], label=short(n)) for n in order]
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return fig


def _fmt_duration(seconds: float) -> str:
    s = abs(seconds)
    if s >= 86400 and s % 86400 == 0:
        return f"{int(s // 86400)} d"
    if s >= 3600 and s % 3600 == 0:
        return f"{int(s // 3600)} h"
    if s >= 60 and s % 60 == 0:
        return f"{int(s // 60)} min"
    return f"{s:g} s"


def fmt_offset(seconds: float) -> str:
    """A signed clock offset for people: ``+7m12s``, ``-0.4s``, ``+2h03m``."""
    sign = "-" if seconds < 0 else "+"
    s = abs(seconds)
    if s < 59.95:
        return f"{sign}{s:.1f}s"
    s = round(s)
    if s < 3600:
        return f"{sign}{int(s // 60)}m{int(s % 60):02d}s"
    return f"{sign}{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def offset_labels(off: pl.DataFrame) -> list[str]:
    """``host (role)``, told apart when a host was measured more than once: by reference, then by method."""
    short = pl.col("reference").str.extract(r"\(([^)]*)\)").fill_null(pl.col("reference")).fill_null("?")
    df = off.with_columns(short=short)
    dup_role = df.select(pl.struct("host", "role").is_duplicated()).to_series().to_list()
    dup_ref = df.select(pl.struct("host", "role", "short").is_duplicated()).to_series().to_list()
    out = []
    for row, d1, d2 in zip(df.iter_rows(named=True), dup_role, dup_ref, strict=True):
        label = f"{row['host']} ({row['role']})"
        if d1:
            label += f" vs {row['short']}"
        if d2:
            label += f", {row['method']}"
        out.append(label)
    return out


def clock_offsets(data: Any, tolerance_s: float = DEFAULT_TOLERANCE_S, top: int = 30) -> Figure:
    """One bar per measured host clock (offset from the reference, + = ahead) with the ±tolerance band.

    Bars outside the band are red. The ``top`` largest offsets are drawn when there are more hosts.
    """
    off = frame(data, "clock_offsets", CLOCK_OFFSETS).filter(pl.col("offset_s").is_not_null())
    off = off.sort(pl.col("offset_s").abs(), descending=True)
    shown = off.head(top)
    fig = new_figure(9.0, min(2.0 + 0.34 * max(shown.height, 1), 30.0))
    ax = fig.add_subplot()
    if shown.height == 0:
        return _empty(fig, ax, "no clock offsets measured")
    labels = offset_labels(shown)
    values = shown["offset_s"].to_numpy()
    colors = [OUTCOME_COLORS["failed"] if abs(v) > tolerance_s else OUTCOME_COLORS["ok"] for v in values]
    ys = np.arange(shown.height)
    ax.axvspan(-tolerance_s, tolerance_s, color=OUTCOME_COLORS["ok"], alpha=0.12, gid="tolerance", zorder=0)
    for edge in (-tolerance_s, tolerance_s):
        ax.axvline(edge, color=OUTCOME_COLORS["ok"], linestyle="--", linewidth=1, zorder=1)
    ax.axvline(0, color="#455a64", linewidth=0.8, zorder=1)
    ax.barh(ys, values, color=colors, height=0.6, gid="offset-bar", zorder=2)
    for y, v in zip(ys, values, strict=True):
        ax.annotate(
            fmt_offset(float(v)),
            (float(v), float(y)),
            xytext=(4 if v >= 0 else -4, 0),
            textcoords="offset points",
            ha="left" if v >= 0 else "right",
            va="center",
            fontsize=7,
        )
    ax.set_yticks(ys, [short(n, 60) for n in labels], fontsize=8)
    ax.set_ylim(shown.height - 0.5, -0.5)
    lim = max(float(np.abs(values).max()), tolerance_s) * 1.3
    ax.set_xlim(-lim, lim)
    ax.xaxis.set_major_locator(MultipleLocator(bin_seconds(lim, target=4)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_offset(v) if v else "0"))
    refs = sorted({str(r) for r in shown["reference"].drop_nulls()})
    ref = refs[0] if len(refs) == 1 else "its reference clock"
    ax.set_xlabel(f"clock offset (host minus {ref}); band = ±{_fmt_duration(tolerance_s)} tolerance")
    outside = int((np.abs(off["offset_s"].to_numpy()) > tolerance_s).sum())
    cut = _cut(shown.height, off.height, "clocks", "|offset|")
    ax.set_title(f"Clock offsets — {outside} of {off.height} outside tolerance; {cut}")
    return fig


def top_failing(data: Any, top: int = 15, names: int = 6) -> Figure:
    """Failed exchanges per principal (left) and per service (right), stacked by error name, top ``top`` each."""
    ex = frame(data, "exchanges", EXCHANGES).filter(pl.col("outcome") == "failed")
    ex = ex.with_columns(pl.col("error_name").fill_null("(no error code)"))
    rows = max(ex["client"].n_unique(), ex["service"].n_unique(), 1)
    fig = new_figure(12.0, min(2.2 + 0.32 * min(top, rows), 16.0))
    axes = fig.subplots(1, 2)
    if ex.height == 0:
        for ax in axes:
            _empty(fig, ax, "no failed exchanges")
        return fig
    totals = ex.group_by("error_name").len().sort(["len", "error_name"], descending=[True, False])
    kept: list[str] = totals["error_name"].head(names).to_list()
    order = kept + (["other"] if totals.height > len(kept) else [])
    colors = _palette(order)
    ex = ex.with_columns(name=pl.when(pl.col("error_name").is_in(kept)).then("error_name").otherwise(pl.lit("other")))
    for ax, key, noun in ((axes[0], "client", "principals"), (axes[1], "service", "services")):
        part = ex.with_columns(pl.col(key).fill_null(NONE_LABEL).alias("key"))
        ranking = part.group_by("key").len().sort(["len", "key"], descending=[True, False])
        keys: list[str] = ranking["key"].head(top).to_list()
        counts = part.filter(pl.col("key").is_in(keys)).group_by(["key", "name"]).len()
        ys = np.arange(len(keys))
        left = np.zeros(len(keys))
        for name in order:
            sub = pl.DataFrame({"key": keys}).join(counts.filter(pl.col("name") == name), on="key", how="left")
            w = sub["len"].fill_null(0).to_numpy().astype(float)
            if w.any():
                ax.barh(ys, w, left=left, color=colors[name], height=0.65, label=short(name), gid=f"{noun}:{name}")
            left += w
        ax.set_yticks(ys, [short(k) for k in keys], fontsize=8)
        ax.set_ylim(len(keys) - 0.5, -0.5)
        ax.set_xlabel("failed exchanges")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(f"Failing {noun} — {_cut(len(keys), ranking.height, noun, 'failures')}", fontsize=10)
    axes[1].legend(loc="lower right", fontsize=7)
    return fig


#: The figures written by ``krbtrace analyze --plot DIR``, by file stem.
FIGURES: Final = {
    "swimlane_principal": lambda a: swimlane(a, by="principal"),
    "swimlane_client_host": lambda a: swimlane(a, by="client_host"),
    "errors_over_time": errors_over_time,
    "clock_offsets": clock_offsets,
    "top_failing": top_failing,
}


def write_plots(data: Any, folder: str | Path, dpi: int = 110) -> list[Path]:
    """Write every figure of :data:`FIGURES` as ``<folder>/<name>.png``; returns the paths written."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in FIGURES.items():
        path = out / f"{name}.png"
        make(data).savefig(path, dpi=dpi)
        paths.append(path)
        log.debug("wrote %s", path)
    return paths
