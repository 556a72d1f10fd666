"""The ``krbtrace analyze`` command: options, progress display and exit codes over :func:`krbtrace.analyze`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from parsers.errors import MalformedFile

from .output import output_format
from .progress import terminal_progress
from .severity import SEVERITIES, SEVERITY_RANK

if TYPE_CHECKING:
    import polars as pl

EXIT_OK: Final = 0
EXIT_FINDINGS: Final = 1
EXIT_USAGE: Final = 2


def _when(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


#: Findings the text report prints by default: a terminal's worth; a large incident has thousands.
DEFAULT_LIMIT: Final = 50


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}")
    return value


def add_analyze_options(p: argparse.ArgumentParser) -> None:
    """The options of ``krbtrace analyze`` (besides the files, ``--evtx-backend`` and ``--strict``)."""
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: text)")
    p.add_argument(
        "--limit",
        type=_count,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"findings the text report prints, most severe first (default: {DEFAULT_LIMIT}; 0: all; the JSON and "
        "HTML reports hold every one)",
    )
    p.add_argument(
        "--fail-on",
        choices=(*SEVERITIES, "never"),
        default="high",
        help="exit 1 when a finding has this severity or a higher one (default: high)",
    )
    p.add_argument(
        "--timeline",
        type=Path,
        metavar="OUT",
        help="also write the correlated timeline (.parquet, .csv or .jsonl by suffix)",
    )
    p.add_argument("--since", type=_when, help="only attempts at or after this time (ISO 8601, UTC by default)")
    p.add_argument("--until", type=_when, help="only attempts at or before this time")
    p.add_argument("--principal", help="only attempts of this client principal (user, user@REALM)")
    p.add_argument("--service", help="only attempts involving a service name containing this text")
    p.add_argument("--host", help="only attempts involving this address or computer name")
    p.add_argument("--plot", type=Path, metavar="DIR", help="also write the figures as PNG files into DIR")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report")


def run_analyze(args: argparse.Namespace) -> int:
    # Imported here so that `krbtrace timeline` and `--help` do not pay for polars and the rules.
    from .analysis import analyze
    from .cli import jobs_of
    from .output import write_frame

    """Run ``krbtrace analyze``; returns the exit code (0, 1 findings at or above --fail-on, 2 input error)."""
    if args.timeline is not None:
        try:
            output_format(args.timeline)
        except ValueError as exc:
            print(f"krbtrace: {exc}", file=sys.stderr)
            return EXIT_USAGE
    progress = terminal_progress(sys.stderr, not args.no_progress)
    try:
        a = analyze(
            *args.files,
            evtx_backend=args.evtx_backend,
            strict=args.strict,
            since=args.since,
            until=args.until,
            principal=args.principal,
            service=args.service,
            host=args.host,
            progress=progress,
            jobs=jobs_of(args),
        )
    except MalformedFile as exc:
        print(f"krbtrace: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if progress is not None:
            progress.close()
    for r in a.reports:
        if r.fatal is not None:
            print(f"krbtrace: {r.source}: {r.fatal}", file=sys.stderr)
    if args.timeline is not None:
        write_frame(a.timeline, args.timeline)
        print(f"wrote {a.timeline.height} rows to {args.timeline}", file=sys.stderr)
    if args.plot is not None:
        from .plot import write_plots  # matplotlib loads only when figures are asked for

        print(f"wrote {len(write_plots(a, args.plot))} figures to {args.plot}", file=sys.stderr)
    if args.html is not None:
        from .html_report import write_html

        print(f"wrote {write_html(a, args.html)}", file=sys.stderr)
    sys.stdout.write(a.to_json() if args.format == "json" else a.report(args.limit))
    if any(r.fatal is not None for r in a.reports):
        return EXIT_USAGE
    return EXIT_FINDINGS if fails(a.findings, args.fail_on) else EXIT_OK


def fails(findings: pl.DataFrame, fail_on: str) -> bool:
    """Whether any finding has severity ``fail_on`` or higher (``never``: no)."""
    if fail_on == "never" or findings.height == 0:
        return False
    limit = SEVERITY_RANK[fail_on]
    return any(SEVERITY_RANK[s] <= limit for s in findings["severity"].to_list())
