"""Figures of an analysis: phase swimlane, errors over time, clock offsets, top failing principals and services.

Every function takes an :class:`krbtrace.analysis.Analysis` (or any object or mapping with the frames
``exchanges``, ``findings``, ``clock_offsets`` of :mod:`krbtrace.schema`) and returns a matplotlib
:class:`~matplotlib.figure.Figure` drawn on the Agg canvas; nothing touches pyplot, so no global figure state and
never ``plt.show()``. Large incidents stay readable: lanes and bars are cut to the top N, and the cut is written on
the figure. Time axes are UTC whatever the local zone (Kerberos times are UTC on the wire, RFC 4120 §5.2.3), split
into panels when the inputs are days apart. The swimlane lives in :mod:`krbtrace.swimlane`, the shared axes and
frame helpers in :mod:`krbtrace.plot_common`.

Artists carry ``gid`` values (``errors``, ``error-label``, ``finding:<rule>``, ``tolerance``, ``offset-bar``,
``bin:<error name>``) so tests and callers can find what a figure shows without parsing pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from .plot_common import (
    DEFAULT_TOLERANCE_S,
    NONE_LABEL,
    OUTCOME_COLORS,
    PHASE_MARKERS,
    bin_seconds,
    cut_text,
    empty,
    fmt_duration,
    fmt_offset,
    frame,
    new_figure,
    palette,
    panel_axes,
    panel_of,
    short,
    time_panels,
    to_num,
)
from .schema import CLOCK_OFFSETS, EXCHANGES, FINDINGS
from .swimlane import fit_labels, rank_lanes, swimlane

__all__ = [
    "CLOCK_OFFSETS",
    "DEFAULT_TOLERANCE_S",
    "EXCHANGES",
    "FIGURES",
    "FINDINGS",
    "OUTCOME_COLORS",
    "PHASE_MARKERS",
    "bin_seconds",
    "clock_offsets",
    "errors_over_time",
    "fit_labels",
    "fmt_offset",
    "frame",
    "offset_labels",
    "panel_of",
    "rank_lanes",
    "swimlane",
    "time_panels",
    "top_failing",
    "write_plots",
]

log = logging.getLogger(__name__)


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
        return empty(fig, fig.add_subplot(), "no failed exchanges")
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
    colors = palette(order)
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
    axes[0].set_ylabel(f"failed exchanges per {fmt_duration(step)}")
    cut = f"; top {len(names)} of {totals.height} error names" if other else ""
    fig.suptitle(f"Errors over time — {errs.height:,} errors, {fmt_duration(step)} bins{cut}")
    handles = [Rectangle((0, 0), 1, 1, color=colors[n], label=short(n)) for n in order]
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return fig


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
        return empty(fig, ax, "no clock offsets measured")
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
    ax.set_xlabel(f"clock offset (host minus {ref}); band = ±{fmt_duration(tolerance_s)} tolerance")
    outside = int((np.abs(off["offset_s"].to_numpy()) > tolerance_s).sum())
    cut = cut_text(shown.height, off.height, "clocks", "|offset|")
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
            empty(fig, ax, "no failed exchanges")
        return fig
    totals = ex.group_by("error_name").len().sort(["len", "error_name"], descending=[True, False])
    kept: list[str] = totals["error_name"].head(names).to_list()
    order = kept + (["other"] if totals.height > len(kept) else [])
    colors = palette(order)
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
        ax.set_title(f"Failing {noun} — {cut_text(len(keys), ranking.height, noun, 'failures')}", fontsize=10)
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
