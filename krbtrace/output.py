"""Writing a timeline (or any frame) to Parquet, CSV or JSON lines, chosen by the file suffix.

:func:`write_records` streams :class:`parsers.record.KrbRecord` rows to a file in batches, so memory holds one batch
whatever the number of rows (``krbtrace timeline FILE -o OUT``). The rows go as Parquet row groups (pyarrow, zstd)
to a temporary file beside OUT. When they arrived in time order (the usual case: one capture, or inputs given in
time order) and OUT is Parquet, that file simply becomes OUT; otherwise polars reads it back lazily, sorts it by
``ts`` (stable, nulls first: exactly ``timeline.load``'s order) when needed, and sinks it in OUT's format. This
module imports neither polars nor pyarrow until it needs them.
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


def _rewrite(tmp: Path, path: Path, fmt: str, ordered: bool) -> None:
    """The temporary Parquet file -> ``path``, sorted by ``ts`` when it is not yet, in ``fmt``."""
    import polars as pl

    lf = pl.scan_parquet(tmp)
    if not ordered:
        lf = lf.sort("ts", maintain_order=True)
    if fmt == "parquet":
        lf.sink_parquet(path)
    elif fmt == "csv":
        _csv_ready(lf).sink_csv(path)
    else:
        lf.sink_ndjson(path)
