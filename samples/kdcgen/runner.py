"""The command line both sample generators share (``python3 -m samples.kdcgen``, ``python3 -m samples.sambagen``).

Arguments; the checks before a run (scenario names, root, tools); re-execution in private namespaces
(``unshare``); the overall time limit and signals; the temporary work folder; and the end of a run: checking each
capture against its scenario and writing the manifest, or (``--check``) comparing each with the manifest. Exit 0
when all is well, 1 with a diff when the captures differ, 2 when the generator itself could not run. What differs
between the generators is a :class:`Generator`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Final, NoReturn

from .capture import stop_all
from .manifest import Reading, load
from .scenarios import Scenario

#: The folder holding the ``samples`` package, put on the re-executed process's PYTHONPATH.
ROOT: Final = Path(__file__).resolve().parent.parent.parent


class Interrupted(Exception):
    """SIGTERM/SIGINT/SIGHUP, or the whole run took longer than the generator's time limit (SIGALRM)."""


@dataclass(frozen=True)
class Run:
    """What one generation made: the client log and TShark's reading per scenario, and the time it took as text."""

    logs: dict[str, list[str]]
    readings: dict[str, Reading]
    took: str


@dataclass(frozen=True)
class Generator:
    """What one generator is: its name, folders, manifest module and the steps that differ.

    ``book`` is the manifest module (``against_scenario``, ``entry``, ``dump``, ``compare``); ``isolate`` re-executes
    the generator in private namespaces and returns only when it does not (with why it cannot, or ``None`` to go on
    here); ``produce`` runs the scenarios into a folder (``out``, ``work``) and reads the captures.
    ``check_took`` formats :attr:`Run.took` in the ``--check`` summary.
    """

    name: str
    doc: str
    default_out: Path
    manifest: Path
    book: ModuleType
    tools: tuple[str, ...]
    root_why: str
    timeout: int
    select: Callable[[Sequence[str]], list[Scenario[Any]]]
    isolate: Callable[[argparse.Namespace, list[str]], str | None]
    produce: Callable[[list[Scenario[Any]], Path, Path], Run]
    keeps: str
    check_took: str = "({})"
    no_netns: bool = False


def _parser(gen: Generator) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python3 -m samples.{gen.name}", description=gen.doc.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help=f"output folder (default {gen.default_out})")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp folder and compare with MANIFEST")
    ap.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only these scenarios (name or number)")
    ap.add_argument("--manifest", type=Path, default=None, help=f"manifest to write or check (default {gen.manifest})")
    ap.add_argument("--keep", action="store_true", help=f"keep the temporary folder ({gen.keeps}) for debugging")
    if gen.no_netns:
        ap.add_argument("--no-netns", action="store_true", help="stay on the host loopback")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def unshare_refused(options: Sequence[str]) -> str | None:
    """Why ``unshare`` with ``options`` cannot run here (its error text), or ``None`` when it can."""
    probe = subprocess.run(["unshare", *options, "true"], capture_output=True, check=False)
    return None if probe.returncode == 0 else probe.stderr.decode(errors="replace").strip()


def reexec(options: Sequence[str], module: str, env_flag: str, argv: list[str]) -> NoReturn:
    """Run ``python3 -m module argv`` again under ``unshare options`` in place of this process, with ``env_flag``
    set so that the new process knows it is inside."""
    env = dict(os.environ, **{env_flag: "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", ["unshare", *options, sys.executable, "-m", module, *argv], env)


def _arm(timeout: int) -> None:
    """Turn SIGTERM/SIGINT/SIGHUP and a SIGALRM after ``timeout`` seconds into :class:`Interrupted`."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # One interruption is enough: later signals must not break the cleanup that this one starts.
        signal.alarm(0)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if signum == signal.SIGALRM:
            raise Interrupted(f"the generator took more than {timeout} s")
        raise Interrupted(f"stopped by signal {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(timeout)


def main(gen: Generator, argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(gen).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=f"{gen.name}: %(message)s")
    try:
        scenarios = gen.select(args.only)
    except KeyError as exc:
        print(f"{gen.name}: {exc.args[0]}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(f"{gen.name}: must run as root ({gen.root_why})", file=sys.stderr)
        return 2
    missing = [t for t in gen.tools if not shutil.which(t)]
    if missing:
        print(f"{gen.name}: missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2
    why = gen.isolate(args, argv)
    if why is not None:
        print(f"{gen.name}: {why}", file=sys.stderr)
        return 2
    _arm(gen.timeout)
    work = Path(tempfile.mkdtemp(prefix=f"{gen.name}-"))
    try:
        out = work / "pcaps" if args.check else (args.out or gen.default_out).resolve()
        out.mkdir(parents=True, exist_ok=True)
        run = gen.produce(scenarios, out, work)
        if args.check:
            return check(gen, scenarios, run, args.manifest or gen.manifest, complete=not args.only)
        if args.manifest is None:
            args.manifest = gen.manifest if out == gen.default_out.resolve() else out / "MANIFEST"
        return write(gen, scenarios, run, out, args.manifest)
    except Exception as exc:
        print(f"{gen.name}: failed: {exc}", file=sys.stderr)
        logging.getLogger(f"samples.{gen.name}").debug("traceback", exc_info=True)
        return 2
    finally:
        signal.alarm(0)
        stop_all()
        if args.keep:
            print(f"{gen.name}: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _differ(title: str, problems: list[str], logs: dict[str, list[str]]) -> int:
    """Print the problems (``name: what``) and the client log of each scenario named; returns exit status 1."""
    print(title, *problems, sep="\n  ", file=sys.stderr)
    for name in sorted({p.split(":")[0] for p in problems}):
        for line in logs.get(name, []):
            print(f"  {name}: {line}", file=sys.stderr)
    return 1


def write(gen: Generator, scenarios: list[Scenario[Any]], run: Run, out: Path, target: Path) -> int:
    """Write the scenarios' manifest lines into ``target`` (keeping the other lines it holds), unless a capture
    does not show what its scenario expects."""
    problems = []
    for sc in scenarios:
        problems += [f"{sc.name}: {p}" for p in gen.book.against_scenario(sc.expect, sc.facts, run.readings[sc.name])]
    if problems:
        return _differ(f"{gen.name}: captures differ from the scenarios' expectations:", problems, run.logs)
    entries = load(target) if target.exists() else {}
    for sc in scenarios:
        entries[sc.name] = gen.book.entry(sc.name, sc.title, sc.facts, run.readings[sc.name])
    target.write_text(gen.book.dump(entries))
    print(f"{gen.name}: {len(scenarios)} captures in {out} ({run.took}), manifest {target}")
    return 0


def check(gen: Generator, scenarios: list[Scenario[Any]], run: Run, path: Path, complete: bool) -> int:
    """Compare the regenerated captures with the manifest at ``path``; ``complete``: every scenario ran, so a
    manifest line that none made is a difference too."""
    entries = load(path)
    problems = []
    if complete:
        known = {sc.name for sc in scenarios}
        problems += [f"{name}: in {path} but no scenario makes it" for name in sorted(set(entries) - known)]
    for sc in scenarios:
        if sc.name not in entries:
            problems.append(f"{sc.name}: not in {path}")
            continue
        problems += [f"{sc.name}: {p}" for p in gen.book.compare(entries[sc.name], run.readings[sc.name])]
    if problems:
        return _differ(f"{gen.name} --check: regenerated captures differ from {path}:", problems, run.logs)
    took = gen.check_took.format(run.took)
    print(f"{gen.name} --check: {len(scenarios)} scenarios regenerated {took} match {path}")
    return 0
