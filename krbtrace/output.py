"""Writing a timeline (or any frame) to Parquet, CSV or JSON lines, chosen by the file suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

FORMATS: Final = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def output_format(path: Path) -> str:
    """``parquet``, ``csv`` or ``jsonl`` for a path's suffix; ``ValueError`` for any other suffix."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown output format; use .parquet, .csv or .jsonl")
    return fmt


def _csv_ready(df: pl.DataFrame) -> pl.DataFrame:
    # CSV has no list type: lists become ';'-joined text, so no value is lost.
    lists = [name for name, dtype in df.schema.items() if isinstance(dtype, pl.List)]
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
