"""Time krbtrace against TShark on the benchmark captures, side by side, in one run.

    python3 bench/make_captures.py [--pcapng] [--packets N --out DIR]   # once: mixed.pcap(ng), kerberos.pcap(ng)
    python3 bench/run.py [--repeat 3] [--cli] [FILE ...]

For each capture, each tool runs as its own child process (its peak RSS and CPU seconds, children included, read
with ``os.wait4``); of ``--repeat`` runs the best wall clock and the best CPU seconds are kept (each its own best:
the machine may be shared). Tools:

* ``read_capture``: ``parsers.iter_records`` over the file, rows counted (the decode layer alone, one process,
  with the application carriers on, as the CLI reads captures);
* ``krbtrace timeline`` (with ``--cli``): the CLI writing the whole timeline to Parquet (decode + polars), with
  its default ``--jobs`` (the CPUs this process may use: the file read by that many processes, see
  ``parsers/parallel.py``), and ``timeline --jobs 1`` (one process) beside it;
* ``tshark``: ``tshark -n -r FILE -Y kerberos -T fields -e frame.number -e kerberos.msg_type -e kerberos.error_code
  -e kerberos.CNameString -e kerberos.SNameString -e kerberos.realm``, its output counted.

Printed per capture and tool: wall and CPU (user+sys, all processes) seconds, packets/s and Kerberos messages/s on
wall time, peak RSS (the largest process), and the ratios tshark / krbtrace of wall and of CPU seconds. Messages
found are checked against the ``manifest.json`` beside each capture.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_evtx import command_env  # bench/ is this script's own folder, first on sys.path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

READ = """
import sys
from parsers import iter_records
from parsers.record import ParseReport
r = ParseReport(sys.argv[1])
n = sum(1 for _ in iter_records(sys.argv[1], r))
print(n, r.units, dict(r.issues))
"""


def _top_level(types: str) -> int:
    """Top-level messages of a TShark msg_type cell: an AP-REQ (14) right after an AS/TGS-REQ is its PA-TGS-REQ."""
    n = 0
    prev = ""
    for t in types.split(","):
        if not (t == "14" and prev in ("10", "12")):
            n += 1
        prev = t
    return n


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """(wall s, cpu s, peak RSS MiB, stdout) of one child process, started in the checkout this script belongs to
    (``python -c`` / ``-m`` put the working directory first on ``sys.path``: from elsewhere another checkout's
    ``parsers`` could be the one timed)."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({status}): {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, text


def best(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """The best wall clock and the best CPU seconds of ``repeat`` runs (each its own minimum), the largest RSS."""
    runs = [run(cmd, env) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs), runs[0][3]


def main() -> None:
    ap = argparse.ArgumentParser(description="krbtrace vs tshark on the benchmark captures")
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cli", action="store_true", help="also time `krbtrace timeline FILE -o out.parquet`")
    args = ap.parse_args()
    out = HERE / "out"
    files = args.files or [
        p for p in (out / f"{kind}.{ext}" for ext in ("pcap", "pcapng") for kind in ("mixed", "kerberos")) if p.exists()
    ]
    # byte code cached outside the tree and compiled before any clock starts, as a pip-installed krbtrace has it
    env = dict(command_env(Path(tempfile.gettempdir()) / "krbtrace-bench"), PYTHONPATH=str(ROOT))
    tshark = shutil.which("tshark")
    for path in files:
        if not path.exists():
            raise SystemExit(f"{path} missing: run python3 bench/make_captures.py first")
        manifest_path = path.parent / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        want = manifest.get(path.name, {})
        print(f"\n{path.name}: {path.stat().st_size / 2**20:.0f} MiB, manifest {want}")
        print(f"  {'tool':<18}{'wall s':>8}{'cpu s':>8}{'pkt/s':>11}{'msg/s':>9}{'RSS MiB':>9}  found (rates on wall)")
        results = {}
        wall, cpu, rss, text = best([sys.executable, "-c", READ, str(path)], args.repeat, env)
        found, packets = (int(x) for x in text.split()[:2])
        results["read_capture"] = (wall, cpu, rss, found, packets)
        if args.cli:
            for tool, extra in (("timeline", []), ("timeline --jobs 1", ["--jobs", "1"])):
                with tempfile.TemporaryDirectory() as tmp:
                    cmd = [sys.executable, "-m", "krbtrace.cli", "timeline", str(path), "-o", f"{tmp}/t.parquet"]
                    wall, cpu, rss, _ = best(cmd + extra, args.repeat, env)
                results[tool] = (wall, cpu, rss, found, packets)
        if tshark:
            fields = [
                "frame.number", "kerberos.msg_type", "kerberos.error_code", "kerberos.CNameString",
                "kerberos.SNameString", "kerberos.realm",
            ]  # fmt: skip
            cmd = [tshark, "-n", "-r", str(path), "-Y", "kerberos", "-T", "fields"]
            for f in fields:
                cmd += ["-e", f]
            wall, cpu, rss, text = best(cmd, args.repeat)
            msgs = sum(_top_level(ln.split("\t")[1]) for ln in text.splitlines() if ln)
            results["tshark"] = (wall, cpu, rss, msgs, packets)
        for tool, (wall, cpu, rss, msgs, pk) in results.items():
            print(f"  {tool:<18}{wall:>8.2f}{cpu:>8.2f}{pk / wall:>11,.0f}{msgs / wall:>9,.0f}{rss:>9}  {msgs}")
        if "tshark" in results:
            t_wall, t_cpu = results["tshark"][0], results["tshark"][1]
            for tool in results:
                if tool != "tshark":
                    w, c = results[tool][0], results[tool][1]
                    print(f"  ratio tshark/{tool:<18} {t_wall / w:5.1f}x wall {t_cpu / c:5.1f}x CPU")
        if want and results["read_capture"][3] != want.get("kerberos_messages"):
            print(f"  !! read_capture found {results['read_capture'][3]} messages, manifest says {want}")


if __name__ == "__main__":
    main()
