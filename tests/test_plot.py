"""What the figures show, read from the Figure objects (tick labels, artists by gid, bar sizes), not from pixels.

Truth comes from the hand-written scenario in test_plot_frames.py (who failed how often, which offsets were
measured), never from the plotting code.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import polars as pl
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image
from test_plot_frames import ERRORS_BY_NAME, FAILED_BY_CLIENT, OFFSETS, SCENARIO, T0, build, large

from krbtrace import plot

TOLERANCE = 300.0


@pytest.fixture(scope="module")
def built():
    return build()


def lane_labels(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


def by_gid(fig: Figure, prefix: str) -> list:
    return [a for ax in fig.axes for a in ax.get_children() if str(a.get_gid() or "").startswith(prefix)]


def error_points(fig: Figure) -> np.ndarray:
    colls = [c for c in by_gid(fig, "errors") if isinstance(c, PathCollection)]
    return np.concatenate([c.get_offsets() for c in colls]) if colls else np.empty((0, 2))


def test_swimlane_one_lane_per_principal_ranked_by_failures(built) -> None:
    fig = plot.swimlane(built, by="principal")
    principals = {st.client for st in SCENARIO}
    labels = lane_labels(fig)
    assert sorted(labels) == sorted(principals)
    # most failures first, then most exchanges: svc_backup (2 failed of 4) before carol (2 failed of 3)
    assert labels[:4] == ["bob", "svc_backup", "carol", "olduser"]
    assert f"all {len(principals)} principals" in fig.get_suptitle()


def test_swimlane_marks_every_failed_exchange_on_its_lane(built) -> None:
    fig = plot.swimlane(built, by="principal")
    labels = lane_labels(fig)
    pts = error_points(fig)
    assert len(pts) == sum(FAILED_BY_CLIENT.values()) == 8
    marked = Counter(labels[round(y)] for _x, y in pts)
    assert marked == Counter(FAILED_BY_CLIENT)
    # bob's three wrong passwords are at T0+30s, +34s, +38s (UTC)
    bob = labels.index("bob")
    times = sorted(mdates.num2date(x, tz=UTC) for x, y in pts if round(y) == bob)
    assert times == [T0 + timedelta(seconds=s) for s in (30, 34, 38)]


def test_swimlane_names_each_error_once_per_lane(built) -> None:
    fig = plot.swimlane(built, by="principal")
    texts = sorted(t.get_text() for t in by_gid(fig, "error-label"))
    want = sorted(
        f"{st.error} ×{st.times}" if st.times > 1 else str(st.error) for st in SCENARIO if st.outcome == "failed"
    )
    assert texts == want
    # the expected PREAUTH_REQUIRED round trip of a normal logon is not an error mark
    assert not any("PREAUTH_REQUIRED" in t for t in texts)


def test_swimlane_highlights_findings_on_their_lanes(built) -> None:
    fig = plot.swimlane(built, by="principal")
    labels = lane_labels(fig)
    boxes = {a.get_gid(): a for a in by_gid(fig, "finding:") if isinstance(a, Rectangle)}
    assert set(boxes) == {"finding:clock_skew", "finding:missing_spn", "finding:wrong_password"}
    owner = {"finding:clock_skew": "svc_backup", "finding:missing_spn": "carol", "finding:wrong_password": "bob"}
    for gid, box in boxes.items():
        centre = box.get_y() + box.get_height() / 2
        assert labels[round(centre)] == owner[gid]
        # the box spans the finding's failed exchanges in time
        lane_pts = [x for x, y in error_points(fig) if round(y) == round(centre)]
        assert box.get_x() <= min(lane_pts) and box.get_x() + box.get_width() >= max(lane_pts)
    assert len(by_gid(plot.swimlane(built, findings=False), "finding:")) == 0


def test_swimlane_by_client_host(built) -> None:
    fig = plot.swimlane(built, by="client_host")
    assert sorted(lane_labels(fig)) == sorted({st.host for st in SCENARIO})
    # alice's workstation carries olduser's revoked account: one failure on 10.0.0.21
    labels = lane_labels(fig)
    per_host = Counter(labels[round(y)] for _x, y in error_points(fig))
    assert per_host == {"10.0.0.22": 3, "10.0.0.23": 2, "10.0.0.24": 2, "10.0.0.21": 1}
    with pytest.raises(ValueError, match="by must be"):
        plot.swimlane(built, by="service")


def test_swimlane_ticks_are_utc_whatever_the_local_zone(built, monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        fig = plot.swimlane(built)
        fig.canvas.draw()
        ax = fig.axes[0]
        ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert "09:27" in ticks and "09:28" in ticks  # the scenario runs 09:26-09:29 UTC; Tokyo would say 18:xx
        assert ax.get_xlabel() == "time (UTC)"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_swimlane_on_thousands_of_principals_states_the_cut() -> None:
    big = large(principals=3000, per=4)
    t = time.perf_counter()
    fig = plot.swimlane(big, top=25)
    fig.canvas.draw()
    elapsed = time.perf_counter() - t
    labels = lane_labels(fig)
    assert len(labels) == 25
    # every 7th user fails 4 times; the lanes shown are failing users only
    assert all(int(name[4:]) % 7 == 0 for name in labels)
    assert len(error_points(fig)) == 25 * 4
    assert "top 25 of 3,000 principals by findings, then failed exchanges; 2,975 not shown" in fig.get_suptitle()
    assert fig.get_size_inches()[1] < 15  # 25 lanes, not 3000
    assert elapsed < 10, elapsed


def test_swimlane_draws_lanes_named_by_findings_first() -> None:
    big = large(principals=3000, per=4)
    quiet = "user01234"  # 1234 % 7 != 0: no failure, would never make the top 25 by failures
    finding = big.findings.head(1).with_columns(principals=pl.lit([quiet]), row_ids=pl.lit([], dtype=pl.List(pl.Int64)))
    fig = plot.swimlane({**big.frames, "findings": finding}, top=25)
    labels = lane_labels(fig)
    assert labels[0] == quiet and len(labels) == 25
    (box,) = [a for a in by_gid(fig, "finding:") if isinstance(a, Rectangle)]
    assert round(box.get_y() + box.get_height() / 2) == 0
    assert lane_labels(plot.swimlane({**big.frames, "findings": finding}, top=25, findings=False))[0] != quiet


def test_inputs_days_apart_get_one_panel_each() -> None:
    # bob's failures happen 30 days after everything else (a DC log from another month, say)
    later = [replace(st, at_s=st.at_s + 30 * 86400) if st.client == "bob" else st for st in SCENARIO]
    two = build(later)
    fig = plot.swimlane(two)
    assert len(fig.axes) == 2
    assert fig.axes[1].get_title(loc="left").startswith("… 30 days later")
    assert len(error_points(fig)) == 8  # every failure drawn once, on its own panel
    per_panel = [len(c.get_offsets()) for ax in fig.axes for c in ax.collections if c.get_gid() == "errors"]
    assert per_panel == [5, 3]
    # each panel's axis spans only its own minutes
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        assert (hi - lo) * 86400 < 600
    eot = plot.errors_over_time(two)
    assert len(eot.axes) == 2
    assert sum(p.get_height() for ax in eot.axes for p in ax.patches) == 8
    assert "2 s bins" in eot.get_suptitle()  # binned for the 80 s of the widest panel, not for a month


def test_time_panels() -> None:
    day = 1.0
    xs = np.array([0.0, 0.001, 0.002, 10 * day, 10 * day + 0.001, 40 * day])
    assert plot.time_panels(xs) == [(0.0, 0.002), (10.0, 10.001), (40.0, 40.0)]
    assert plot.time_panels(xs, max_panels=2) == [(0.0, 10.001), (40.0, 40.0)]
    # gaps under an hour never split, however uneven
    assert plot.time_panels(np.array([0.0, 1 / 86400, 0.03])) == [(0.0, 0.03)]
    assert plot.time_panels(np.array([np.nan])) == []
    assert plot.panel_of(xs, plot.time_panels(xs)).tolist() == [0, 0, 0, 1, 1, 2]


def test_errors_over_time_counts_per_name(built) -> None:
    fig = plot.errors_over_time(built)
    ax = fig.axes[0]
    heights = {
        p.get_gid()[4:]: sum(r.get_height() for r in ax.patches if r.get_gid() == p.get_gid())
        for p in ax.patches
        if str(p.get_gid()).startswith("bin:")
    }
    assert heights == ERRORS_BY_NAME
    assert "8 errors, 5 s bins" in fig.get_suptitle()
    assert ax.get_xlabel() == "time (UTC)"
    with_expected = plot.errors_over_time(built, include_expected=True).axes[0]
    names = {str(p.get_gid())[4:] for p in with_expected.patches}
    assert "KDC_ERR_PREAUTH_REQUIRED" in names


def test_errors_over_time_top_names_and_bins(built) -> None:
    fig = plot.errors_over_time(built, top=2, bin_s=60)
    ax = fig.axes[0]
    names = {str(p.get_gid())[4:] for p in ax.patches}
    assert names == {"KDC_ERR_PREAUTH_FAILED", "KDC_ERR_S_PRINCIPAL_UNKNOWN", "other (2 names)"}
    assert sum(p.get_height() for p in ax.patches) == 8
    assert "top 2 of 4 error names" in fig.get_suptitle()
    # one-minute bins: every bar is a minute wide and starts on a minute boundary
    for p in ax.patches:
        assert p.get_width() == pytest.approx(60 / 86400)
        assert mdates.num2date(p.get_x(), tz=UTC).second == 0
    assert plot.bin_seconds(3600) == 120 and plot.bin_seconds(86400) == 3600 and plot.bin_seconds(10) == 1


def test_clock_offsets_bars_and_tolerance_band(built) -> None:
    fig = plot.clock_offsets(built)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_gid() == "offset-bar"]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    widths = {lab.split()[0]: bar.get_width() for lab, bar in zip(labels, bars, strict=True)}
    assert widths == OFFSETS
    assert labels[0] == "10.0.0.23 (client)"  # largest |offset| first
    red = {lab.split()[0] for lab, bar in zip(labels, bars, strict=True) if bar.get_facecolor()[0] > 0.7}
    assert red == {h for h, v in OFFSETS.items() if abs(v) > TOLERANCE}
    (band,) = by_gid(fig, "tolerance")
    assert (band.get_x(), band.get_x() + band.get_width()) == (-TOLERANCE, TOLERANCE)
    assert "2 of 4 outside tolerance" in ax.get_title()
    texts = {t.get_text() for t in ax.texts}
    assert {"+7m30s", "-6m40s", "-12.0s", "+0.4s"} <= texts
    wide = plot.clock_offsets(built, tolerance_s=600).axes[0]
    assert "0 of 4 outside tolerance" in wide.get_title()


def test_clock_offsets_top_cut(built) -> None:
    ax = plot.clock_offsets(built, top=2).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["10.0.0.23 (client)", "10.0.0.31 (service)"]
    assert "top 2 of 4 clocks by |offset|; 2 not shown" in ax.get_title()


def test_top_failing_principals_and_services(built) -> None:
    fig = plot.top_failing(built)
    left, right = fig.axes[:2]
    names = [t.get_text() for t in left.get_yticklabels()]
    assert names == ["bob", "carol", "svc_backup", "olduser"]
    totals = Counter()
    for p in left.patches:
        totals[names[round(p.get_y() + p.get_height() / 2)]] += p.get_width()
    assert totals == Counter(FAILED_BY_CLIENT)
    services = [t.get_text() for t in right.get_yticklabels()]
    assert services[0] == "krbtgt/CORP.EXAMPLE.COM"  # 3 wrong passwords + 1 revoked account
    assert set(services) == {st.service for st in SCENARIO if st.outcome == "failed"}
    cut = plot.top_failing(large(principals=700, per=1), top=10).axes[0]
    assert "top 10 of 100 principals by failures; 90 not shown" in cut.get_title()


@pytest.mark.parametrize("make", list(plot.FIGURES.values()), ids=list(plot.FIGURES))
def test_empty_and_missing_frames_give_a_figure_that_says_so(make) -> None:
    for data in ({}, {"exchanges": pl.DataFrame(schema=plot.EXCHANGES)}, object()):
        fig = make(data)
        assert isinstance(fig, Figure)
        assert by_gid(fig, "empty"), "an empty input is said on the figure"


def test_write_plots_and_no_pyplot_state(built, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    paths = plot.write_plots(built, tmp_path / "figs")
    assert [p.name for p in paths] == [f"{n}.png" for n in plot.FIGURES]
    for p in paths:
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width >= 600 and im.height >= 200
            # not a blank canvas: a real figure has many distinct colours
            assert len(im.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 20
    assert plt.get_fignums() == before


def test_fmt_offset() -> None:
    assert plot.fmt_offset(450) == "+7m30s"
    assert plot.fmt_offset(-0.4) == "-0.4s"
    assert plot.fmt_offset(7380) == "+2h03m"


def test_offset_labels_tell_repeated_hosts_apart() -> None:
    off = pl.DataFrame(
        {
            "host": ["127.0.0.1", "127.0.0.1", "127.0.0.1", "10.0.0.5"],
            "role": ["client", "client", "kdc", "kdc"],
            "reference": ["capture clock (a.pcap)", "capture clock (b.pcap)", "capture clock (a.pcap)", "DC clock"],
            "method": ["request_till"] * 3 + ["time_service_event"],
        }
    )
    assert plot.offset_labels(off) == [
        "127.0.0.1 (client) vs a.pcap",
        "127.0.0.1 (client) vs b.pcap",
        "127.0.0.1 (kdc)",
        "10.0.0.5 (kdc)",
    ]
    assert plot.fmt_offset(599.962) == "+10m00s"
    assert plot.fmt_offset(59.97) == "+1m00s"


def hostile_frames() -> dict[str, pl.DataFrame]:
    """Frames a buggy or partial correlator could hand over: nulls everywhere, unknown phases and outcomes."""
    t = T0
    ex = pl.DataFrame(
        [
            {"exchange_id": 1},  # nothing else known
            {"exchange_id": 2, "end": t, "phase": "WEIRD", "outcome": "bogus", "client": None},
            {"exchange_id": 3, "start": t, "phase": None, "outcome": "failed", "error_name": None},
            {"exchange_id": 4, "start": t, "phase": "AS", "outcome": "failed", "error_name": "X" * 500, "row_ids": []},
            {"exchange_id": 5, "start": t, "phase": "TGS", "outcome": None, "client": "<b>&amp;</b>", "row_ids": None},
        ],
        schema=plot.EXCHANGES,
    )
    fnd = pl.DataFrame(
        [
            {"rule": "r1", "principals": ["<img src=x onerror=alert(1)>"]},
            {"rule": "r2", "principals": [None], "row_ids": [None, 4], "hosts": None},
        ],
        schema=plot.FINDINGS,
    )
    off = pl.DataFrame(
        [{"host": None, "offset_s": 1e9}, {"host": "h", "offset_s": None}, {"host": "h", "offset_s": -1e-9}],
        schema=plot.CLOCK_OFFSETS,
    )
    return {"exchanges": ex, "findings": fnd, "clock_offsets": off}


@pytest.mark.parametrize("make", list(plot.FIGURES.values()), ids=list(plot.FIGURES))
def test_hostile_frames_give_figures(make) -> None:
    fig = make(hostile_frames())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a collapsed layout warns: the labels must stay small enough
        fig.canvas.draw()  # layout and text rendering run too
    assert isinstance(fig, Figure)


def test_hostile_frames_content() -> None:
    fig = plot.swimlane(hostile_frames())
    # exchange 1 has no time at all and is left out; the other four are on two lanes
    assert sorted(lane_labels(fig)) == ["(unknown)", "<b>&amp;</b>"]
    assert len(error_points(fig)) == 1  # only exchange 4 is a failure with an error name
    (label,) = by_gid(fig, "error-label")
    assert label.get_text() == "X" * 59 + "…"  # names from the wire are cut to a readable length
    ax = plot.clock_offsets(hostile_frames()).axes[0]
    assert len([p for p in ax.patches if p.get_gid() == "offset-bar"]) == 2  # the null offset is not a bar
