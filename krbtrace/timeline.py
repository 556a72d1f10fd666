"""Records -> the timeline DataFrame (``krbtrace.schema.TIMELINE``), and input files -> records.

Rows are turned into columns in batches so that memory holds one batch of Python objects at a time. Times arrive
as integer microseconds and lists as tuples (see :mod:`parsers.record`); list columns travel as joined strings
and are split by polars, which is about 25 times faster than handing polars Python lists. polars is imported when
a frame is built, not before: ``krbtrace timeline -o`` streams the records of :func:`iter_inputs` to a file
(:func:`krbtrace.output.write_records`) without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Final

import parsers
from parsers.errors import Error
from parsers.record import FIELDS, TIME_FIELDS, KrbRecord, ParseReport

from .progress import Progress, counted

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

BATCH_ROWS: Final = 50_000
_SEP: Final = "\x1f"  # ASCII unit separator: cannot occur in a decoded name (the decoders strip controls)
_NULL: Final = "\x1e"  # marks a null element inside a list of strings (an ETYPE-INFO2 entry without salt)


@cache
def _lists() -> tuple[frozenset[str], frozenset[str]]:
    """(names of the integer list columns, names of the string list columns) of ``TIMELINE``."""
    import polars as pl

    from .schema import TIMELINE

    ints = frozenset(name for name, dtype in TIMELINE.items() if dtype == pl.List(pl.Int32))
    strs = frozenset(name for name, dtype in TIMELINE.items() if dtype == pl.List(pl.String))
    return ints, strs


def _joined(values: Sequence[tuple[object, ...] | None], strings: bool) -> list[str | None]:
    if strings:  # every element gets a one-character prefix so that ("",) and () stay different
        return [None if v is None else _SEP.join(_NULL if s is None else f"s{s}" for s in v) for v in values]
    return [None if v is None else _SEP.join(map(str, v)) for v in values]


def _column(name: str, values: Sequence[object]) -> pl.Series:
    import polars as pl

    from .schema import TIMELINE

    dtype = TIMELINE[name]
    if values.count(None) == len(values):  # a column no row fills: no conversion of every value
        return pl.Series(name, dtype=dtype).extend_constant(None, len(values))
    if name in TIME_FIELDS:
        return pl.Series(name, values, dtype=pl.Int64).cast(dtype)
    int_lists, str_lists = _lists()
    if name in int_lists or name in str_lists:
        strings = name in str_lists
        joined = pl.Series(name, _joined(values, strings), dtype=pl.String)  # type: ignore[arg-type]
        split = pl.col(name).str.split(_SEP)
        if strings:
            el = pl.element()
            split = split.list.eval(pl.when(el == _NULL).then(None).otherwise(el.str.slice(1)))
        expr = pl.when(pl.col(name) == "").then(pl.lit([], dtype=dtype)).otherwise(split.cast(dtype))
        return joined.to_frame().select(expr.alias(name)).to_series()
    return pl.Series(name, values, dtype=dtype)


def frame(records: Iterable[KrbRecord]) -> pl.DataFrame:
    """Build the timeline from records: a DataFrame with exactly the ``TIMELINE`` schema, in input order."""
    import polars as pl

    from .schema import TIMELINE

    parts: list[pl.DataFrame] = []
    it = iter(records)
    while batch := list(islice(it, BATCH_ROWS)):
        columns = list(zip(*batch, strict=True))
        parts.append(pl.DataFrame([_column(n, c) for n, c in zip(FIELDS, columns, strict=True)]))
    if not parts:
        return TIMELINE.to_frame()
    return pl.concat(parts, how="vertical", rechunk=False) if len(parts) > 1 else parts[0]


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files named by ``paths``: plain files as given, folders walked recursively, glob patterns expanded.

    A name that matches nothing is returned as is, so that reading it reports a clear "no such file" error.
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif not p.exists() and any(ch in str(raw) for ch in "*?["):
            anchor = Path(p.anchor) if p.is_absolute() else Path()
            pattern = str(p.relative_to(anchor)) if p.is_absolute() else str(raw)
            matches = sorted(f for f in anchor.glob(pattern) if f.is_file())
            out.extend(matches or [p])
        else:
            out.append(p)
    return out


def iter_inputs(
    paths: Iterable[str | Path],
    reports: list[ParseReport],
    *,
    evtx_backend: str = "evtx",
    jobs: int = 1,
    on_error: Callable[[ParseReport], None] | None = None,
) -> Iterator[KrbRecord]:
    """Records of every input in turn. Each file gets a :class:`ParseReport` appended to ``reports``.

    ``jobs`` > 1: a large plain capture is read by that many processes (:mod:`parsers.parallel`; same rows).

    A file that cannot be used at all (``parsers.errors.Error`` or ``OSError``) gets ``report.fatal`` set, is
    passed to ``on_error`` and skipped; the other files are still read.
    """
    for path in expand_inputs(paths):
        report = ParseReport(source=str(path))
        reports.append(report)
        try:
            yield from parsers.iter_records(path, report, evtx_backend=evtx_backend, jobs=jobs)
        except (Error, OSError) as exc:
            report.fatal = _reason(exc)
            log.debug("cannot read %s", path, exc_info=True)
            if on_error is not None:
                on_error(report)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror != exc.strerror.upper() else exc.strerror
    return str(exc) or type(exc).__name__


def load(
    *paths: str | Path,
    evtx_backend: str = "evtx",
    jobs: int = 1,
    reports: list[ParseReport] | None = None,
    on_error: Callable[[ParseReport], None] | None = None,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """Read captures and event logs into one timeline (``TIMELINE`` columns), sorted by time.

    Files, folders (recursively) and glob patterns are accepted; ``reports`` (if given) receives one
    :class:`ParseReport` per file. ``jobs``: processes per large plain capture (see :func:`iter_inputs`).
    ``progress`` (see :mod:`krbtrace.progress`) is told the rows read as they come.
    """
    sink = reports if reports is not None else []
    records = iter_inputs(paths, sink, evtx_backend=evtx_backend, jobs=jobs, on_error=on_error)
    df = frame(records if progress is None else counted(records, progress))
    return in_time_order(df)


def in_time_order(df: pl.DataFrame) -> pl.DataFrame:
    """``df.sort("ts", maintain_order=True)`` (stable, nulls first), without the sorted copy when the rows are in that
    order already (one capture, one log, inputs given in time order): the same frame at half the memory (the copy
    of a 227 000-row timeline is ~100 MB, and the allocator keeps the original's pages)."""
    import polars as pl

    if df["ts"].is_sorted():  # non-decreasing with nulls first: what the stable sort would return unchanged
        return df.with_columns(pl.col("ts").set_sorted())
    return df.sort("ts", maintain_order=True)
