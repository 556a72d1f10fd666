"""The phase swimlane: one lane per principal or client host, AS/TGS/AP exchanges along UTC time.

Failed exchanges are marked and named with their RFC 4120 §7.5.9 / MS-KILE error names; the exchanges that
findings cite are boxed. Artists carry ``gid`` values (``errors``, ``error-label``, ``finding:<rule>``,
``exchanges:<phase>:<outcome>``) so tests and callers can read what the figure shows.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .plot_common import (
    FINDING_COLOR,
    LANE_KEYS,
    NONE_LABEL,
    OUTCOME_COLORS,
    PHASE_MARKERS,
    PHASE_OFFSETS,
    cut_text,
    empty,
    frame,
    new_figure,
    panel_axes,
    panel_of,
    short,
    time_panels,
    to_num,
)
from .schema import EXCHANGES, FINDINGS


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
        return empty(fig, fig.add_subplot(), "no Kerberos exchanges")
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
        return empty(fig, fig.add_subplot(), "no Kerberos exchanges")
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
    axes[0].set_ylim(len(lanes) - 0.5, -0.8)  # headroom for the top lane's error label
    axes[0].set_ylabel("principal" if by == "principal" else "client host")
    order = "findings, then failed exchanges" if findings else "failed exchanges"
    fig.suptitle(f"Kerberos exchanges per {noun[:-1]} — {cut_text(len(lanes), ranked.height, noun, order)}")
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
    labels: dict[float, tuple[float, float, list[str]]] = {}
    view = ax.get_xlim()
    # Which of the panel's exchanges each row id and each lane name points to, built once: a large incident has
    # thousands of findings, and a filter of the panel per finding cost seconds each hundred.
    lane_ys = ((part["y"] + 0.5).floor()).to_list()  # the lane's centre, whatever the phase offsets
    xns = part["xn"].to_list()
    by_row: dict[int, list[int]] = {}
    for k, ids in enumerate(part["row_ids"].to_list()):
        for r in ids or ():
            by_row.setdefault(r, []).append(k)
    by_lane: dict[str, list[int]] = {}
    for k, lane in enumerate(part["lane"].to_list()):
        by_lane.setdefault(lane, []).append(k)
    for i, f in enumerate(fnd.iter_rows(named=True)):
        hit: set[int] = set()
        for r in f["row_ids"] or ():
            hit.update(by_row.get(r, ()))
        for name in (f["principals"] if by == "principal" else f["hosts"]) or ():
            hit.update(by_lane.get(name, ()))
        spans: dict[float, tuple[float, float]] = {}
        for k in sorted(hit):
            x = xns[k]
            if x is None or x != x:  # no time: nothing to box
                continue
            lo, hi = spans.get(lane_ys[k], (x, x))
            spans[lane_ys[k]] = (min(lo, x), max(hi, x))
        for y, (lo, hi) in spans.items():
            pad = max((hi - lo) * 0.02, (view[1] - view[0]) * 0.006)  # a lone exchange gets a box it fits in
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
            x0, x1, rules = labels.get(y, (lo - pad, hi + pad, []))
            if f["rule"] not in rules:
                rules.append(str(f["rule"]))
            labels[y] = (min(x0, lo - pad), max(x1, hi + pad), rules)
            drawn.add(i)
    lo, hi = ax.get_xlim()
    width_pt = ax.get_position().width * ax.get_figure().get_figwidth() * 72  # type: ignore[union-attr]
    per_char = 4.0 * (hi - lo) / width_pt
    for y, (x0, x1, rules) in labels.items():
        right = x0 > (lo + hi) / 2  # then the label ends at the box's right edge and runs leftwards
        ax.annotate(
            fit_labels(rules, int(((x1 - lo) if right else (hi - x0)) / per_char) - 2),
            (x1 if right else x0, y + 0.46),
            xytext=(-2 if right else 2, 1),
            ha="right" if right else "left",
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
