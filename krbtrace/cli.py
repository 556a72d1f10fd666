"""The ``krbtrace`` command: a few lines over the library for each subcommand.

Exit codes: 0 success; 2 usage error, an input that could not be used, or (with ``--strict``) any parse issue.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from parsers.record import KrbRecord, ParseReport

from . import __version__
from .cli_analyze import add_analyze_options, run_analyze
from .output import output_format, write_records
from .progress import counted, terminal_progress
from .timeline import iter_inputs, load

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USAGE = 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="captures (pcap, pcapng, .gz) and event logs; folders and globs too"
    )
    p.add_argument(
        "--evtx-backend",
        choices=("evtx", "python-evtx"),
        default="evtx",
        help="EVTX reader: the Rust-backed 'evtx' package (default, fast) or pure-Python 'python-evtx'",
    )
    p.add_argument("--strict", action="store_true", help="exit 2 when any parse issue was counted")
    p.add_argument("--no-progress", action="store_true", help="no progress display on stderr (shown on a terminal)")
    p.add_argument(
        "--jobs",
        type=_positive,
        default=None,
        metavar="N",
        help="processes that read one large file together: a plain (not gzip) capture of 16 MiB or more, a range of "
        "it each, or an EVTX log of 8 MiB or more, batches of chunks each (a smaller log: one worker, stopped if the "
        "parser loops on a damaged chunk); the rows and issues are one process's "
        "(default: the CPUs this process may use, at most 8; 1: one process, no such stop)",
    )


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return n


def jobs_of(args: argparse.Namespace) -> int:
    """The ``--jobs`` value, or the default (the CPUs this process may use, at most 8)."""
    if args.jobs is not None:
        return int(args.jobs)
    from parsers.jobs import default_jobs

    return default_jobs()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``krbtrace`` command."""
    parser = argparse.ArgumentParser(
        prog="krbtrace",
        description="Kerberos forensics: captures and Windows event logs into one timeline, correlated and explained.",
    )
    parser.add_argument("--version", action="version", version=f"krbtrace {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    an = sub.add_parser(
        "analyze",
        help="correlate and diagnose captures and logs",
        description="Read captures and logs, pair messages into exchanges and AS -> TGS -> AP attempts, measure "
        "clock offsets and explain every failure. Exit code 0: no finding at or above --fail-on; 1: some; "
        "2: usage or input error.",
    )
    _common(an)
    add_analyze_options(an)

    tl = sub.add_parser(
        "timeline",
        help="decode inputs into the Kerberos timeline",
        description="Decode the inputs into one timeline; print it as a table, or write it with -o.",
    )
    _common(tl)
    tl.add_argument(
        "-o", "--output", type=Path, help="write Parquet (.parquet), CSV (.csv) or JSON lines (.jsonl, .ndjson)"
    )
    tl.add_argument(
        "--summary", action="store_true", help="print the summary (messages, errors, issues) instead of rows"
    )
    tl.add_argument("--limit", type=int, default=None, help="print at most this many rows (default: all)")
    return parser


def _print_fatal(report: ParseReport) -> None:
    print(f"krbtrace: {report.source}: {report.fatal}", file=sys.stderr)


def _exit_code(args: argparse.Namespace, reports: Sequence[ParseReport]) -> int:
    if any(r.fatal is not None for r in reports):
        return EXIT_USAGE
    if args.strict and any(r.issue_total for r in reports):
        return EXIT_USAGE
    return EXIT_OK


_SHOWN = ["ts", "record_no", "src_ip", "dst_ip", "msg_type", "phase", "error_name", "client", "service", "etype"]


def _print_table(df: pl.DataFrame, limit: int | None) -> None:
    import polars as pl

    cols = [c for c in _SHOWN if c in df.columns]
    view = df.select(cols) if limit is None else df.select(cols).head(limit)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60, tbl_hide_dataframe_shape=True):
        print(view)
    if limit is not None and df.height > limit:
        print(f"... {df.height - limit} more rows (use -o to write them all)")


def _started(records: Iterator[KrbRecord]) -> Iterator[KrbRecord]:
    """``records`` with the first row already read: the reading (and a parallel read's other processes) starts
    before the writer imports pyarrow, not after."""
    first = next(records, None)
    return records if first is None else itertools.chain((first,), records)


def cmd_timeline(args: argparse.Namespace) -> int:
    """``krbtrace timeline``: decode and print or write the timeline."""
    if args.output is not None:
        try:
            output_format(args.output)
        except ValueError as exc:
            print(f"krbtrace: {exc}", file=sys.stderr)
            return EXIT_USAGE
    reports: list[ParseReport] = []
    progress = terminal_progress(sys.stderr, not args.no_progress)

    def fatal(report: ParseReport) -> None:
        if progress is not None:
            progress.close()  # the error on a line of its own; the next update draws the progress again
        _print_fatal(report)

    try:
        if args.output is not None:  # streamed: memory holds one batch of rows whatever the input size
            records = iter_inputs(
                args.files, reports, evtx_backend=args.evtx_backend, jobs=jobs_of(args), on_error=fatal
            )
            n = write_records(_started(records if progress is None else counted(records, progress)), args.output)
        else:
            df = load(
                *args.files,
                evtx_backend=args.evtx_backend,
                jobs=jobs_of(args),
                reports=reports,
                on_error=fatal,
                progress=progress,
            )
    finally:
        if progress is not None:
            progress.close()
    if args.output is not None:
        print(f"wrote {n} rows to {args.output}", file=sys.stderr)
        return _exit_code(args, reports)
    if args.summary:
        from .summary import summary_text

        print(summary_text(df, reports), end="")
    else:
        _print_table(df, args.limit)
    return _exit_code(args, reports)


def cmd_analyze(args: argparse.Namespace) -> int:
    """``krbtrace analyze``: the correlated, diagnosed report (text or JSON)."""
    return run_analyze(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``krbtrace`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="krbtrace: %(levelname)s: %(message)s")
    handlers = {"timeline": cmd_timeline, "analyze": cmd_analyze}
    try:
        return handlers[args.command](args)
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("krbtrace: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"krbtrace: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
