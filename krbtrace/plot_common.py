"""Shared pieces of krbtrace's figures: frames from an Analysis, Agg figures, UTC time axes split into panels.

Nothing here touches pyplot: a :class:`~matplotlib.figure.Figure` gets its own Agg canvas, so no figure is shown or
kept alive behind the caller's back. Times are UTC whatever the local zone (RFC 4120 §5.2.3: KerberosTime is UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any, Final

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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


def empty(fig: Figure, ax: Axes, what: str) -> Figure:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, gid="empty")
    ax.set_axis_off()
    return fig


def cut_text(shown: int, total: int, noun: str, by: str) -> str:
    if total <= shown:
        return f"all {total} {noun}"
    return f"top {shown} of {total:,} {noun} by {by}; {total - shown:,} not shown"


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


def fmt_gap(seconds: float) -> str:
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
            ax.set_title(f"… {fmt_gap((lo - panels[i - 1][1]) * 86400)} later", fontsize=8, loc="left")
        if i < n - 1:
            ax.spines["right"].set_linestyle((0, (3, 3)))
    return axes


def palette(names: list[str]) -> dict[str, Any]:
    cmap = mpl.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


NICE_STEPS_S: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 604800)


def bin_seconds(span_s: float, target: int = 40) -> int:
    """The smallest round bin width giving at most ``target`` bins over ``span_s`` seconds."""
    for step in NICE_STEPS_S:
        if span_s / step <= target:
            return step
    return int(np.ceil(span_s / target / 86400)) * 86400


def fmt_duration(seconds: float) -> str:
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
