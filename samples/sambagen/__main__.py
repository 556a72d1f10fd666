"""``python3 -m samples.sambagen [--out DIR] [--check] [--only NAME...] [--keep] [-v]``.

Generate (default): provisions a throwaway Samba AD DC, writes ``samples/samba/NN_name.pcap``, the decryption keytab
``samba.test.keytab`` and ``samples/samba/MANIFEST``. ``--check``: regenerates every scenario into a temporary folder
and compares what TShark reads in each capture with the manifest; exit 1 with a diff when they differ, 2 when the
generator itself could not run. Needs root: it re-executes itself in private network and mount namespaces
(``unshare -n -m --propagation private``), where the DC listens on 127.0.0.1 and its mounts (``/etc/hosts``,
tmpfs over Samba's host folders) never reach the host.
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

from samples.kdcgen import manifest as kdc_manifest
from samples.kdcgen.capture import stop_all

from . import manifest
from .capture import SambaCapture
from .dc import Dc
from .scenarios import Client, Scenario, select

log = logging.getLogger("samples.sambagen")

HERE: Final = Path(__file__).resolve().parent
SAMPLES: Final = HERE.parent
DEFAULT_OUT: Final = SAMPLES / "samba"
MANIFEST: Final = DEFAULT_OUT / "MANIFEST"
KEYTAB: Final = "samba.test.keytab"
TOTAL_TIMEOUT: Final = 300
NETNS_ENV: Final = "SAMBAGEN_IN_NETNS"
TOOLS: Final = ("samba", "samba-tool", "samba_spnupdate", "wbinfo", "ldbsearch", "smbclient", "kinit", "tcpdump",
                "tshark", "unshare", "mount", "ip")  # fmt: skip


class Interrupted(Exception):
    """SIGTERM/SIGINT/SIGHUP, or the whole run took longer than TOTAL_TIMEOUT (SIGALRM)."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    signal.alarm(0)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if signum == signal.SIGALRM:
        raise Interrupted(f"the generator took more than {TOTAL_TIMEOUT} s")
    raise Interrupted(f"stopped by signal {signal.Signals(signum).name}")


def _enter_namespaces(argv: list[str]) -> str | None:
    """Re-execute in fresh network and mount namespaces; returns why not when that is impossible."""
    if os.environ.get(NETNS_ENV):
        return None
    probe = subprocess.run(["unshare", "-n", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare -n -m is not allowed here: {probe.stderr.decode(errors='replace').strip()}"
    env = dict(os.environ, **{NETNS_ENV: "1"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SAMPLES.parent), env.get("PYTHONPATH", "")]))
    sys.stdout.flush()
    sys.stderr.flush()
    argv = ["unshare", "-n", "-m", "--propagation", "private", sys.executable, "-m", "samples.sambagen", *argv]
    os.execvpe("unshare", argv, env)
    return None  # not reached


def generate(scenarios: list[Scenario], out: Path, work: Path) -> tuple[dict[str, list[str]], dict[str, float]]:
    """The domain and every scenario, one capture each into ``out``; returns client logs and timings."""
    dc = Dc(work / "run")
    logs: dict[str, list[str]] = {}
    try:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        dc.isolate()
        dc.provision()
        dc.start()
        dc.accounts()
        t0 = time.monotonic()
        for sc in scenarios:
            client = Client(dc, sc.name)
            logs[sc.name] = client.log
            if sc.prepare is not None:
                sc.prepare(client)
            with SambaCapture(out / f"{sc.name}.pcap", work):
                sc.act(client)
            log.info("%s captured", sc.name)
        dc.timings["scenarios"] = round(time.monotonic() - t0, 2)
        dc.export_keytab(out / KEYTAB)
    finally:
        dc.stop()
    return logs, dc.timings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python3 -m samples.sambagen", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--check", action="store_true", help="regenerate into a temp folder and compare with MANIFEST")
    ap.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only these scenarios (name or number)")
    ap.add_argument("--manifest", type=Path, default=None, help=f"manifest to write or check (default {MANIFEST})")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (domain, logs) for debugging")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="sambagen: %(message)s")
    try:
        scenarios = select(args.only)
    except KeyError as exc:
        print(f"sambagen: {exc.args[0]}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("sambagen: must run as root (namespaces, mounts, tcpdump)", file=sys.stderr)
        return 2
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        print(f"sambagen: missing tools: {', '.join(missing)}", file=sys.stderr)
        return 2
    why = _enter_namespaces(argv)
    if why is not None:
        print(f"sambagen: {why}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    signal.signal(signal.SIGALRM, _on_signal)
    signal.alarm(TOTAL_TIMEOUT)
    work = Path(tempfile.mkdtemp(prefix="sambagen-"))
    try:
        out = work / "pcaps" if args.check else (args.out or DEFAULT_OUT).resolve()
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        logs, timings = generate(scenarios, out, work)
        timings["total"] = round(time.monotonic() - t0, 2)
        readings = {sc.name: manifest.read_pcap(out / f"{sc.name}.pcap", out / KEYTAB) for sc in scenarios}
        times = " ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        if args.check:
            return _check(scenarios, readings, logs, times, args.manifest or MANIFEST, complete=not args.only)
        if args.manifest is None:
            args.manifest = MANIFEST if out == DEFAULT_OUT.resolve() else out / "MANIFEST"
        return _write(scenarios, readings, logs, out, times, args.manifest)
    except Exception as exc:
        print(f"sambagen: failed: {exc}", file=sys.stderr)
        log.debug("traceback", exc_info=True)
        return 2
    finally:
        signal.alarm(0)
        stop_all()
        if args.keep:
            print(f"sambagen: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _show_logs(names: set[str], logs: dict[str, list[str]]) -> None:
    for name in sorted(names):
        for line in logs.get(name, []):
            print(f"  {name}: {line}", file=sys.stderr)


def _write(
    scenarios: list[Scenario],
    readings: dict[str, manifest.SambaReading],
    logs: dict[str, list[str]],
    out: Path,
    times: str,
    target: Path,
) -> int:
    problems = []
    for sc in scenarios:
        problems += [f"{sc.name}: {p}" for p in manifest.against_scenario(sc.expect, sc.facts, readings[sc.name])]
    if problems:
        print("sambagen: captures differ from the scenarios' expectations:", *problems, sep="\n  ", file=sys.stderr)
        _show_logs({p.split(":")[0] for p in problems}, logs)
        return 1
    entries = kdc_manifest.load(target) if target.exists() else {}
    for sc in scenarios:
        entries[sc.name] = manifest.entry(sc.name, sc.title, sc.facts, readings[sc.name])
    target.write_text(manifest.dump(entries))
    print(f"sambagen: {len(scenarios)} captures in {out} ({times}), manifest {target}")
    return 0


def _check(
    scenarios: list[Scenario],
    readings: dict[str, manifest.SambaReading],
    logs: dict[str, list[str]],
    times: str,
    path: Path,
    complete: bool,
) -> int:
    entries = kdc_manifest.load(path)
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
        print(f"sambagen --check: regenerated captures differ from {path}:", *problems, sep="\n  ", file=sys.stderr)
        _show_logs({p.split(":")[0] for p in problems}, logs)
        return 1
    print(f"sambagen --check: {len(scenarios)} scenarios regenerated ({times}) match {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
