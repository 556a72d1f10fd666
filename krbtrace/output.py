"""Writing a timeline (or any frame) to Parquet, CSV or JSON lines, chosen by the file suffix.

:func:`write_records` streams :class:`parsers.record.KrbRecord` rows to a file in batches, so memory holds one batch
whatever the number of rows (``krbtrace timeline FILE -o OUT``). The rows go as Parquet row groups (pyarrow, zstd)
to a temporary file beside OUT. When they arrived in time order (the usual case: one capture, or inputs given in
time order) and OUT is Parquet, that file simply becomes OUT. Otherwise the file is copied into OUT a few row groups
at a time, in ``ts`` order (stable, nulls first: exactly ``timeline.load``'s order) when the rows were not in it:
an argsort of the ``ts`` column (16 octets per row) and at most :data:`MAX_GROUPS` row groups in memory. CSV and
JSON lines are polars' own text for each chunk, so the file reads as :func:`write_frame` would have written it.
This module imports neither polars nor pyarrow until it needs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from parsers.record import FIELDS, TIME_FIELDS, KrbRecord

if TYPE_CHECKING:
    import polars as pl

FORMATS: Final = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

#: Rows per Parquet row group while streaming (about 10 MiB of Python objects and Arrow arrays at a time).
STREAM_BATCH: Final = 5_000

# The timeline's column types (krbtrace.schema.TIMELINE) without importing polars; tests/test_output_stream.py
# checks that the two agree.
_INT64: Final = frozenset({"record_no", "nt_status", "nonce", "kdc_options", "ap_options"})
_INT32: Final = frozenset(
    {
        "event_id", "src_port", "dst_port", "error_code", "etype", "ticket_etype", "ticket_kvno", "preauth_type",
        "additional_tickets", "kpasswd_result",
    }
)  # fmt: skip
_BOOL: Final = frozenset({"fast", "partial", "pac_request"})
_INT_LISTS: Final = frozenset({"req_etypes", "pa_types", "salt_etypes"})
_STR_LISTS: Final = frozenset({"salts"})


def output_format(path: Path) -> str:
    """``parquet``, ``csv`` or ``jsonl`` for a path's suffix; ``ValueError`` for any other suffix."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown output format; use .parquet, .csv or .jsonl")
    return fmt


def _csv_ready(df: pl.LazyFrame | pl.DataFrame) -> Any:
    # CSV has no list type: lists become ';'-joined text, so no value is lost.
    import polars as pl

    schema = df.collect_schema() if isinstance(df, pl.LazyFrame) else df.schema
    lists = [name for name, dtype in schema.items() if isinstance(dtype, pl.List)]
    return df.with_columns(pl.col(n).cast(pl.List(pl.String)).list.join(";") for n in lists)


def write_frame(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` in the format its suffix names (Parquet, CSV or JSON lines)."""
    fmt = output_format(path)
    if fmt == "parquet":
        df.write_parquet(path)
    elif fmt == "csv":
        _csv_ready(df).write_csv(path)
    else:
        df.write_ndjson(path)


def arrow_schema() -> Any:
    """The timeline schema as a ``pyarrow.Schema`` (same columns and types as ``krbtrace.schema.TIMELINE``)."""
    import pyarrow as pa

    def kind(name: str) -> Any:
        if name in TIME_FIELDS:
            return pa.timestamp("us", tz="UTC")
        if name in _INT64:
            return pa.int64()
        if name in _INT32:
            return pa.int32()
        if name in _BOOL:
            return pa.bool_()
        if name in _INT_LISTS:
            return pa.list_(pa.int32())
        if name in _STR_LISTS:
            return pa.list_(pa.string())
        return pa.string()

    return pa.schema([pa.field(name, kind(name)) for name in FIELDS])


def _in_order(ts: Iterable[int | None], last: int | None, started: bool) -> tuple[bool, int | None, bool]:
    """Whether ``ts`` continues a sequence sorted as ``sort("ts")`` sorts (nulls first, then ascending); returns
    (still in order, last value, whether a value was seen)."""
    for t in ts:
        if t is None:
            if started:
                return False, last, started
        elif started and t < last:  # type: ignore[operator]
            return False, last, started
        else:
            last, started = t, True
    return True, last, started


def write_records(records: Iterable[KrbRecord], path: Path, batch_rows: int = STREAM_BATCH) -> int:
    """Write timeline rows to ``path`` (format by suffix), sorted by ``ts`` like ``timeline.load``, streaming;
    returns the number of rows. Memory holds one batch of ``batch_rows`` rows unless the rows arrive out of time
    order, when the final sort is polars' (lazy, over the temporary Parquet file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fmt = output_format(path)
    schema = arrow_schema()
    types = [f.type for f in schema]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part.parquet")
    n = 0
    ordered, last, started = True, None, False
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            it = iter(records)
            while batch := list(islice(it, batch_rows)):
                columns = list(zip(*batch, strict=True))
                del batch
                if ordered:
                    ordered, last, started = _in_order(columns[0], last, started)
                arrays = [pa.array(col, type=t) for col, t in zip(columns, types, strict=True)]
                del columns
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                n += len(arrays[0])
        if ordered and fmt == "parquet":
            os.replace(tmp, path)
        else:
            _rewrite(tmp, path, fmt, ordered)
    finally:
        tmp.unlink(missing_ok=True)
    return n


#: Row groups of the temporary file held at once while writing sorted output (each about STREAM_BATCH rows).
MAX_GROUPS: Final = 8


def _rewrite(tmp: Path, path: Path, fmt: str, ordered: bool) -> None:
    """The temporary Parquet file -> ``path`` in ``fmt``, sorted by ``ts`` when it is not yet. Memory holds at most
    :data:`MAX_GROUPS` row groups, plus 16 octets per row for the sort order when the rows were not in order."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(tmp)
    with _Sink(path, fmt, pf.schema_arrow) as sink:
        if ordered:
            for g in range(pf.num_row_groups):
                sink.write(pf.read_row_group(g))
        else:
            for table in _sorted_chunks(pf):
                sink.write(table)


def _sorted_chunks(pf: Any) -> Iterable[Any]:
    """The rows of a Parquet file (row groups in file order) as tables in ``sort("ts", maintain_order=True)``
    order (stable, nulls first): a stable argsort of the ``ts`` column, then gathered a chunk at a time from at
    most :data:`MAX_GROUPS` row groups (kept in a small LRU). Rows nearly in order (inputs overlapping in time, a
    few late rows) touch few row groups per chunk; any order stays correct, only slower."""
    from collections import OrderedDict

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    meta = pf.metadata
    sizes = [meta.row_group(i).num_rows for i in range(pf.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    ts = pf.read(columns=["ts"])
    try:  # a stable sort (Arrow's sort_indices is stable), nulls first as polars sorts them
        indices = pc.sort_indices(ts, sort_keys=[("ts", "ascending", "at_start")])
    except (TypeError, ValueError, pa.ArrowInvalid):  # pyarrow < 25 takes null_placement for all keys
        indices = pc.sort_indices(ts, sort_keys=[("ts", "ascending")], null_placement="at_start")
    order = indices.to_numpy().astype(np.int64)
    del ts
    groups = np.searchsorted(starts, order, side="right") - 1
    cache: OrderedDict[int, Any] = OrderedDict()
    pos, n = 0, len(order)
    while pos < n:
        end = min(n, pos + STREAM_BATCH)
        seen: list[int] = []
        for j, g in enumerate(groups[pos:end].tolist()):
            if g not in seen:
                if len(seen) == MAX_GROUPS:
                    end = pos + j
                    break
                seen.append(g)
        parts = []
        base = np.zeros(len(sizes), dtype=np.int64)
        offset = 0
        for g in sorted(seen):
            table = cache.pop(g, None)
            if table is None:
                table = pf.read_row_group(g)
            cache[g] = table
            base[g] = offset
            offset += table.num_rows
            parts.append(table)
        while len(cache) > MAX_GROUPS:
            cache.popitem(last=False)
        idx, grp = order[pos:end], groups[pos:end]
        local = idx - starts[grp] + base[grp]
        yield pa.concat_tables(parts).take(pa.array(local))
        pos = end


class _Sink:
    """Tables appended to one output file: Parquet row groups, or polars' own CSV / JSON-lines text per table (so
    the file reads exactly as :func:`write_frame` writes a whole frame)."""

    def __init__(self, path: Path, fmt: str, schema: Any) -> None:
        self.path, self.fmt, self.schema = path, fmt, schema
        self.rows_written = False
        self.writer: Any = None
        self.fh: Any = None

    def __enter__(self) -> _Sink:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        else:
            self.fh = open(self.path, "wb")  # closed in __exit__
        return self

    def write(self, table: Any) -> None:
        if self.writer is not None:
            self.writer.write_table(table)
            return
        import polars as pl

        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        if self.fmt == "csv":
            _csv_ready(df).write_csv(self.fh, include_header=not self.rows_written)
        else:
            df.write_ndjson(self.fh)
        self.rows_written = True

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
            return
        if not self.rows_written and self.fmt == "csv":  # no rows: the header still names the columns
            self.write(self.schema.empty_table())
        self.fh.close()
