"""``python3 -m samples.kdcgen [--out DIR] [--check] [--only NAME...] [--keep]``.

Generate (default): writes ``samples/kdc/NN_name.pcap``, the decryption keytab and ``samples/MANIFEST``.
``--check``: regenerates every scenario into a temporary folder and compares what TShark reads in each capture with
``samples/MANIFEST``; exit 1 with a diff when they differ, 2 when the generator itself could not run.
Runs as root (tcpdump, ports 88/464); re-executes itself in a private network namespace (``unshare -n``) when it can,
so a KDC already on the host does not matter and the captures hold only this traffic.
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
import time
from pathlib import Path
from types import FrameType
from typing import Final

from . import manifest
from .capture import Capture, stop_all
from .realm import Realm
from .scenarios import Client, Scenario, select

log = logging.getLogger("samples.kdcgen")

HERE: Final = Path(__file__).resolve().parent
SAMPLES: Final = HERE.parent
DEFAULT_OUT: Final = SAMPLES / "kdc"
MANIFEST: Final = SAMPLES / "MANIFEST"
TOTAL_TIMEOUT: Final = 420
NETNS_ENV: Final = "KDCGEN_IN_NETNS"
TOOLS: Final = ("krb5kdc", "kadmind", "kdb5_util", "kadmin.local", "kinit", "kvno", "ktutil", "tcpdump", "tshark",
                "faketime", "curl")  # fmt: skip


class Interrupted(Exception):
    """SIGTERM/SIGINT/SIGHUP, or the whole run took longer than TOTAL_TIMEOUT (SIGALRM)."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    # One interruption is enough: later signals must not break the cleanup that this one starts.
    signal.alarm(0)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if signum == signal.SIGALRM:
        raise Interrupted(f"the generator took more than {TOTAL_TIMEOUT} s")
    raise Interrupted(f"stopped by signal {signal.Signals(signum).name}")


def _enter_netns(argv: list[str]) -> None:
    """Re-execute in a fresh network namespace (only loopback, port 88 free); returns if that is not possible."""
    if os.environ.get(NETNS_ENV) or os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("ip")):
        return
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        log.warning("unshare -n is not allowed here; using the host loopback (ports 88, 464, 749 must be free)")
        return
    env = dict(os.environ, **{NETNS_ENV: "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SAMPLES.parent), env.get("PYTHONPATH", "")]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", ["unshare", "-n", sys.executable, "-m", "samples.kdcgen", *argv], env)


def _loopback_up() -> None:
    if os.environ.get(NETNS_ENV):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)


def generate(scenarios: list[Scenario], out: Path, work: Path) -> dict[str, list[str]]:
    """Run the realm and every scenario, one capture each into ``out``; returns the client log per scenario."""
    realm = Realm(work / "realm")
    logs: dict[str, list[str]] = {}
    t0 = time.monotonic()
    try:
        realm.create()
        realm.start()
        log.info("realm up in %.1f s", time.monotonic() - t0)
        for sc in scenarios:
            client = Client(realm, sc.name)
            logs[sc.name] = client.log
            if sc.prepare is not None:
                sc.prepare(client)
            if sc.keytab is not None:
                realm.start_http(sc.keytab)
            with Capture(out / f"{sc.name}.pcap", work):
                sc.act(client)
            log.info("%s captured", sc.name)
        realm.export_keytab(out / "example.test.keytab")
    finally:
        realm.stop()
    return logs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python3 -m samples.kdcgen", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp folder and compare with MANIFEST")
    ap.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only these scenarios (name or number)")
    ap.add_argument("--manifest", type=Path, default=None, help=f"manifest to write or check (default {MANIFEST})")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (realm, logs) for debugging")
    ap.add_argument("--no-netns", action="store_true", help="stay on the host loopback")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="kdcgen: %(message)s")
    try:
        scenarios = select(args.only)
    except KeyError as exc:
        print(f"kdcgen: {exc.args[0]}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("kdcgen: must run as root (tcpdump on lo, KDC on port 88)", file=sys.stderr)
        return 2
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        print(f"kdcgen: missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not args.no_netns:
        _enter_netns(argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    signal.signal(signal.SIGALRM, _on_signal)
    signal.alarm(TOTAL_TIMEOUT)
    work = Path(tempfile.mkdtemp(prefix="kdcgen-"))
    try:
        _loopback_up()
        if args.check:
            out = work / "pcaps"
        else:
            out = (args.out or DEFAULT_OUT).resolve()
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        logs = generate(scenarios, out, work)
        elapsed = time.monotonic() - t0
        readings = {sc.name: manifest.read_pcap(out / f"{sc.name}.pcap") for sc in scenarios}
        if args.check:
            return _check(scenarios, readings, logs, elapsed, args.manifest or MANIFEST, complete=not args.only)
        if args.manifest is None:
            args.manifest = MANIFEST if out == DEFAULT_OUT.resolve() else out / "MANIFEST"
        return _write(scenarios, readings, logs, out, elapsed, args.manifest)
    except Exception as exc:
        print(f"kdcgen: failed: {exc}", file=sys.stderr)
        log.debug("traceback", exc_info=True)
        return 2
    finally:
        signal.alarm(0)
        stop_all()
        if args.keep:
            print(f"kdcgen: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _problems(scenarios: list[Scenario], readings: dict[str, manifest.Reading]) -> list[str]:
    """Captures that do not show their scenario's expected sequence and facts."""
    out = []
    for sc in scenarios:
        out += [f"{sc.name}: {p}" for p in manifest.against_scenario(sc.expect, sc.facts, readings[sc.name])]
    return out


def _show_logs(names: set[str], logs: dict[str, list[str]]) -> None:
    for name in sorted(names):
        for line in logs.get(name, []):
            print(f"  {name}: {line}", file=sys.stderr)


def _write(
    scenarios: list[Scenario],
    readings: dict[str, manifest.Reading],
    logs: dict[str, list[str]],
    out: Path,
    elapsed: float,
    target: Path,
) -> int:
    problems = _problems(scenarios, readings)
    if problems:
        print("kdcgen: captures differ from the scenarios' expectations:", *problems, sep="\n  ", file=sys.stderr)
        _show_logs({p.split(":")[0] for p in problems}, logs)
        return 1
    entries = manifest.load(target) if target.exists() else {}
    for sc in scenarios:
        entries[sc.name] = manifest.entry(sc.name, sc.title, sc.facts, readings[sc.name])
    target.write_text(manifest.dump(entries))
    print(f"kdcgen: {len(scenarios)} captures in {out} ({elapsed:.1f} s), manifest {target}")
    return 0


def _check(
    scenarios: list[Scenario],
    readings: dict[str, manifest.Reading],
    logs: dict[str, list[str]],
    elapsed: float,
    path: Path,
    complete: bool,
) -> int:
    entries = manifest.load(path)
    problems = []
    if complete:
        known = {sc.name for sc in scenarios}
        problems += [f"{name}: in {path} but no scenario makes it" for name in sorted(set(entries) - known)]
    for sc in scenarios:
        if sc.name not in entries:
            problems.append(f"{sc.name}: not in {path}")
            continue
        problems += [f"{sc.name}: {p}" for p in manifest.compare(entries[sc.name], readings[sc.name])]
    if problems:
        print(f"kdcgen --check: regenerated captures differ from {path}:", *problems, sep="\n  ", file=sys.stderr)
        _show_logs({p.split(":")[0] for p in problems}, logs)
        return 1
    print(f"kdcgen --check: {len(scenarios)} scenarios regenerated in {elapsed:.1f} s match {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
