"""Streaming the timeline to a file (krbtrace.output.write_records): the same rows, types and order as building the
whole frame with timeline.load and writing it, in every output format, whether the inputs arrive in time order
(streamed straight through) or not (sorted at the end); and the CLI uses it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krbtrace.cli import main
from krbtrace.output import arrow_schema, write_frame, write_records
from krbtrace.schema import TIMELINE
from krbtrace.timeline import iter_inputs, load
from parsers.record import FIELDS, KrbRecord

ROOT = Path(__file__).resolve().parent.parent
KDC = sorted((ROOT / "samples" / "kdc").glob("*.pcap"))
EVTX = ROOT / "samples" / "evtx" / "dc01-security.evtx"


def test_arrow_schema_is_the_timeline_schema() -> None:
    want = pl.DataFrame(schema=TIMELINE).to_arrow().schema
    got = arrow_schema()
    assert got.names == want.names == list(FIELDS)
    for name in FIELDS:
        w, g = str(want.field(name).type), str(got.field(name).type)
        assert w.replace("large_", "") == g, name  # polars exports 64-bit offsets; Parquet does not keep them


def _streamed(paths: list[Path], out: Path, batch_rows: int) -> pl.DataFrame:
    n = write_records(iter_inputs(paths, []), out, batch_rows)
    leftovers = [p for p in out.parent.iterdir() if p.name.startswith(".")]
    assert not leftovers
    if out.suffix == ".parquet":
        df = pl.read_parquet(out)
    elif out.suffix == ".csv":
        df = pl.read_csv(out, infer_schema=False)
    else:
        df = pl.read_ndjson(out, schema=TIMELINE)
    assert df.height == n
    return df


def _whole(paths: list[Path], out: Path) -> pl.DataFrame:
    write_frame(load(*paths), out)
    if out.suffix == ".parquet":
        return pl.read_parquet(out)
    if out.suffix == ".csv":
        return pl.read_csv(out, infer_schema=False)
    return pl.read_ndjson(out, schema=TIMELINE)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
@pytest.mark.parametrize("order", ["time", "reversed"])
def test_streamed_file_equals_the_whole_frame_written(tmp_path: Path, suffix: str, order: str) -> None:
    paths = [*KDC, EVTX] if order == "time" else [EVTX, *reversed(KDC)]
    whole = _whole(paths, tmp_path / f"whole{suffix}")
    (tmp_path / "s").mkdir()
    streamed = _streamed(paths, tmp_path / "s" / f"t{suffix}", batch_rows=7)  # many batches
    assert whole.height > 100
    assert streamed.schema == whole.schema
    assert streamed.equals(whole)
    if suffix == ".parquet":
        assert streamed.schema == TIMELINE


def _rec(ts: int | None, no: int) -> KrbRecord:
    values = dict.fromkeys(FIELDS)
    values.update(ts=ts, record_no=no, source="x", req_etypes=(18, 17), salts=("a", None), partial=False)
    return KrbRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stamps", "order"),
    [
        ([None, None, 1, 1, 2, 5], [0, 1, 2, 3, 4, 5]),  # in order: nulls first, ties kept
        ([3, None, 1, 1, 2, 5], [1, 2, 3, 4, 0, 5]),  # a null after a value, a step back: sorted, stable
        ([1, 2, 3, 4, 2, 2], [0, 1, 4, 5, 2, 3]),  # the step back is in a later batch
    ],
)
def test_order_is_load_order_across_batches(tmp_path: Path, stamps: list[int | None], order: list[int]) -> None:
    out = tmp_path / "t.parquet"
    n = write_records([_rec(t, i) for i, t in enumerate(stamps)], out, batch_rows=2)
    df = pl.read_parquet(out)
    assert n == 6 and df["record_no"].to_list() == order
    assert df["req_etypes"].to_list()[0] == [18, 17] and df["salts"].to_list()[0] == ["a", None]
    want = pl.DataFrame([_rec(t, i) for i, t in enumerate(stamps)], schema=list(FIELDS), orient="row")
    assert df["record_no"].to_list() == want.sort("ts", maintain_order=True)["record_no"].to_list()


def test_no_rows_gives_an_empty_timeline_file(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    assert write_records([], out) == 0
    assert pl.read_parquet(out).schema == TIMELINE


def test_cli_timeline_output_streams(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.parquet"
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    assert main(["timeline", str(KDC[0]), str(bad), str(KDC[1]), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:" in err and f"wrote {load(KDC[0], KDC[1]).height} rows" in err
    assert pl.read_parquet(out).equals(load(KDC[0], KDC[1]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stamps=st.lists(st.one_of(st.none(), st.integers(0, 6)), max_size=40), suffix=st.sampled_from([".parquet", ".csv"])
)
def test_any_order_is_sorted_with_few_row_groups_held(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, stamps: list[int | None], suffix: str
) -> None:
    from krbtrace import output

    monkeypatch.setattr(output, "MAX_GROUPS", 2)  # chunks split wherever they would need a third row group
    monkeypatch.setattr(output, "STREAM_BATCH", 4)
    out = tmp_path_factory.mktemp("any") / f"t{suffix}"
    assert write_records([_rec(t, i) for i, t in enumerate(stamps)], out, batch_rows=3) == len(stamps)
    df = pl.read_parquet(out) if suffix == ".parquet" else pl.read_csv(out, infer_schema=False)
    want = sorted(range(len(stamps)), key=lambda i: (stamps[i] is not None, stamps[i] or 0))  # stable, nulls first
    assert [int(x) for x in df["record_no"].to_list()] == want
