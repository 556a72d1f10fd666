"""``timeline.in_time_order``: the stable sort by ``ts`` (nulls first) that ``load`` returns, skipped when the rows are
in that order already; the reference is polars' own ``sort("ts", maintain_order=True)``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from krbtrace.timeline import frame, in_time_order, iter_inputs, load

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _frame(offsets: list[int | None]) -> pl.DataFrame:
    ts = [None if o is None else T0 + timedelta(seconds=o) for o in offsets]
    return pl.DataFrame({"ts": ts, "n": list(range(len(ts)))}, schema={"ts": pl.Datetime("us", "UTC"), "n": pl.Int64})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 5)), max_size=12), st.booleans())
def test_same_as_the_stable_sort(offsets: list[int | None], presort: bool) -> None:
    df = _frame(offsets)
    if presort:  # the already-ordered case, with ties and leading nulls
        df = df.sort("ts", maintain_order=True)
    want = df.sort("ts", maintain_order=True)
    got = in_time_order(df)
    assert got.equals(want) and got["n"].to_list() == want["n"].to_list()
    assert got["ts"].flags["SORTED_ASC"]


def test_out_of_order_and_late_nulls_are_sorted() -> None:
    assert in_time_order(_frame([3, 1, 2]))["n"].to_list() == [1, 2, 0]
    assert in_time_order(_frame([1, None, 2]))["n"].to_list() == [1, 0, 2]  # a null sorts first


def test_load_sorts_only_what_needs_it() -> None:
    """A log (January 2026) and a capture (made at generation time, later), given in both orders: ``load`` returns
    the stable sort of the rows as read, whether they came in time order or not."""
    log = ROOT / "samples" / "evtx" / "dc01-security.evtx"
    cap = ROOT / "samples" / "kdc" / "02_preauth_failed.pcap"
    for paths in ((log, cap), (cap, log)):
        as_read = frame(iter_inputs(paths, []))
        got = load(*paths)
        assert got.equals(as_read.sort("ts", maintain_order=True))
    in_order = frame(iter_inputs((log, cap), []))
    assert in_order["ts"].is_sorted() and load(log, cap).equals(in_order)  # nothing to sort: returned as read
    assert not frame(iter_inputs((cap, log), []))["ts"].is_sorted()  # and this one had to be sorted
