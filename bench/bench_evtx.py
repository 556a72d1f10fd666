"""EVTX benchmark: krbtrace's reader against a bare loop over the ``evtx`` package, on one >= 100 MB log.

    python3 bench/bench_evtx.py [--size-mb 100] [--kerberos-share 0.3] [--out DIR] [--repeat 3] [--jobs N]
                                [--before DIR] [--modes a,b,...]

Builds (once, cached in ``--out``, default ``$TMPDIR/krbtrace-bench``, under a name carrying :data:`LOG_VERSION`)
a DC Security log with ``samples/evtx/evtxwriter.py``: the Security sample's Kerberos events mixed with
non-Kerberos noise (4634, 4672, 5156, NTLM 4624) so that ``--kerberos-share`` of the records are Kerberos. Every
event gets its own values (:func:`vary`, seeded): a fresh ephemeral port, a client from ~2000 addresses, an account
from ~5000, a service from ~300, a fresh LogonGuid, options / etypes / failure codes from the sets a DC writes; as
in a real log, so the reader's per-value memos hit only as often as they would there. Then, each in its own
process (so peak RSS is that mode's alone), best of ``--repeat`` runs (wall and CPU each their own best):

* ``bare``: ``for r in PyEvtxParser(path).records_json(): r["data"]`` (the package's defaults: a worker pool of
  one thread per core);
* ``bare-1t``: the same loop with ``PyEvtxParser(path, number_of_threads=1)``, the API and settings ``read_evtx``
  uses (``parsers.evtx.EVTX_THREADS``): the fair baseline for the ratio;
* ``bare-cmd``: the ``bare`` loop as a whole command (``python3 -c``: interpreter start and import included), the
  like-for-like baseline for the ``cli`` modes, which are whole commands too;
* ``bare+orjson``: ``bare-1t`` plus ``orjson.loads`` of every record (the cheapest loop that looks inside events);
* ``read_evtx``: ``for row in parsers.evtx.read_evtx(path, report)``, KrbRecord rows, one process (``jobs=1``);
* ``read_evtx-jN``: the same with ``jobs=N`` worker processes (``--jobs``, default
  :func:`parsers.jobs.default_jobs`: the CPUs this process may use, at most 8);
* ``cli``: ``python3 -m krbtrace.cli timeline FILE -o out.parquet`` (rows -> Parquet, streamed), the CLI's default
  jobs; ``cli-j1``: the same with ``--jobs 1`` (only when the CLI has ``--jobs``);
* ``python-evtx``: ``read_evtx(..., backend="python-evtx")`` on the first 2 chunks only;
* with ``--before DIR`` (another checkout of the project, e.g. ``git worktree add DIR main``): ``read_evtx@before``
  and ``cli@before``, the same two modes run from that tree, interleaved with the others, for before/after figures
  from one run.

Prints records/s on the wall clock and on CPU (the process and its children: the workers, the CLI) and peak RSS per
mode, of the process itself and of its largest child (``RUSAGE_CHILDREN``: a worker, or the CLI and its workers),
then the ratios of each krbtrace mode to the bare loops (target >= 0.70, every process < 200 MB).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "samples" / "evtx"))

if TYPE_CHECKING:
    from evtxwriter import EventSpec

CHUNK, HEADER = 65536, 4096


#: Part of the cached log's file name: bump it whenever the content changes, so that a stale log is never reused.
LOG_VERSION = 2
SEED = 20261206
REALM, DOMAIN_SID = "EXAMPLE.TEST", "S-1-5-21-3623811015-3361044348-30300820"
NULL_SID, NULL_GUID = "S-1-0-0", "{00000000-0000-0000-0000-000000000000}"
#: The small sets of values a DC writes (Microsoft's event-4768/4769/4771 pages), per event ID where it matters.
OPTIONS = {4768: (0x40810010, 0x40810010, 0x40800010), 4771: (0x40810010,), 4769: (0x40810000, 0x40810000, 0x60810010)}
ETYPES = (0x12,) * 8 + (0x17, 0x11)
FAILURES = {4768: (0x6, 0x12), 4771: (0x18, 0x18, 0x25)}
FIRST = "adam anna ben carla dan eva frank gina hugo ida jan kim lars mia nils olga paul rita sam tina".split()
LAST = "berg cole diaz evans fox gray hill ito jones khan lee moss nash owen park quinn ross shaw tate wu".split()
SPN_KINDS = ("host", "cifs", "HTTP", "MSSQLSvc", "ldap", "TERMSRV")


@dataclasses.dataclass(frozen=True)
class Pools:
    """What a mid-sized domain's DC sees: ~5000 accounts, ~300 services, ~2000 client addresses."""

    users: list[tuple[str, str]]  # (sAMAccountName, SID): people and computer accounts
    services: list[tuple[str, str, str]]  # (account the SPN belongs to, SPN, the account's SID)
    addresses: list[str]  # as 4768/4769 write them: mostly IPv4-mapped, some plain IPv4, a few IPv6


def make_pools(rng: random.Random, users: int = 5000, services: int = 300, addresses: int = 2000) -> Pools:
    """Distinct accounts (7 in 10 people, the rest computers) with distinct RIDs, services and addresses."""
    rids = iter(rng.sample(range(1110, 1_000_000), users + services))
    people = [f"{f}.{m}{n}" for n in ("", *range(2, 20)) for f in FIRST for m in LAST]
    names = rng.sample(people, users * 7 // 10) + [f"WS{i:05d}$" for i in rng.sample(range(100_000), users * 3 // 10)]
    user_pool = [(name, f"{DOMAIN_SID}-{next(rids)}") for name in names]
    service_pool = []
    for i in range(services):
        kind = SPN_KINDS[i % len(SPN_KINDS)]
        host = f"srv{i:03d}"
        account = f"svc_{host}" if kind in ("HTTP", "MSSQLSvc") else f"{host.upper()}$"
        spn = f"{kind}/{host}.example.test" + (":1433" if kind == "MSSQLSvc" else "")
        service_pool.append((account, spn, f"{DOMAIN_SID}-{next(rids)}"))
    hosts = rng.sample(range(1 << 16), addresses)  # 10.<0-255>.<0-255>.<host>: distinct subnets/hosts
    address_pool = []
    for h in hosts:
        v4 = f"10.{h >> 8}.{h & 0xFF}.{rng.randrange(1, 255)}"
        roll = rng.random()
        address_pool.append(
            f"::ffff:{v4}" if roll < 0.8 else v4 if roll < 0.97 else f"fd00::{h:x}:{rng.randrange(1, 65535):x}"
        )
    return Pools(user_pool, service_pool, address_pool)


def vary(ev: EventSpec, rng: random.Random, pools: Pools, kerberos: bool) -> EventSpec:
    """``ev`` (a sample event) with its own client, port, user, service, GUIDs and options, its kind unchanged:
    fields empty or null in ``ev`` (failures, the 4769 0x25 without names) stay so, as do the realm, krbtgt and the
    event's layout. The values come from ``pools`` and ``rng`` (seeded: the same log every time)."""
    user, user_sid = rng.choice(pools.users)
    account, spn, service_sid = rng.choice(pools.services)
    address = rng.choice(pools.addresses)
    ok = all(value == 0 for name, value, _ in ev.data if name == "Status")
    data: list[tuple[str | None, str | int | None, str]] = []
    for name, value, kind in ev.data:
        if name in ("IpPort", "DestPort"):
            value = str(rng.randint(49152, 65535))  # a fresh ephemeral port, as every new connection has
        elif name in ("IpAddress", "DestAddress"):
            # 4768-4771 write what the socket gave (mostly ::ffff:a.b.c.d), 4624/4625 and 5156 the plain address
            value = address if str(value).startswith("::ffff:") else address.removeprefix("::ffff:")
        elif name == "TargetUserName" and value:
            value = f"{user}@{REALM}" if "@" in str(value) else user
        elif name in ("TargetSid", "TargetUserSid") and value != NULL_SID:
            value = user_sid
        elif name == "SubjectUserSid" and ev.event_id == 4672:  # the account a logon gave privileges to
            value = user_sid
        elif name == "ServiceName" and ev.event_id == 4769 and value:
            # Windows names the account holding the SPN; an SPN no account holds is logged as requested
            value = account if ok else spn.replace(".example", "-old.example")
        elif name == "ServiceSid" and ev.event_id == 4769 and value != NULL_SID:
            value = service_sid
        elif name == "TicketOptions" and ev.event_id in OPTIONS:
            value = rng.choice(OPTIONS[ev.event_id])
        elif name == "TicketEncryptionType" and value == 0x12:
            value = rng.choice(ETYPES)
        elif name == "Status" and value and ev.event_id in FAILURES:
            value = rng.choice(FAILURES[ev.event_id])
        elif name in ("LogonGuid", "OpCorrelationID"):
            # a fresh GUID per issued ticket (it ties a 4769 to the service's 4624); NTLM logons and refused tickets
            # carry the null GUID
            fresh = name == "OpCorrelationID" or (kerberos and ok)
            value = f"{{{uuid.UUID(int=rng.getrandbits(128), version=4)}}}".upper() if fresh else NULL_GUID
        elif name == "TargetLogonId":
            value = rng.randrange(0x10000, 0x100000000)
        elif name == "ObjectDN":
            value = f"CN={account},CN=Users,DC=example,DC=test"
        elif name == "AttributeValue":
            value = spn
        data.append((name, value, kind))
    return dataclasses.replace(ev, data=data)


def build(path: Path, size_mb: int, share: float, seed: int = SEED, kept: list[EventSpec] | None = None) -> int:
    """Write the benchmark log; returns the number of records. ``kept`` (when given) receives the Kerberos events
    as written, record IDs set: the truth a test checks the readers against."""
    import make_samples
    from evtxwriter import EventSpec, EvtxWriter

    rng = random.Random(seed)
    pools = make_pools(rng)
    story = make_samples.security_story()
    wanted = {row["record_no"] for row in story.expect}
    kerberos = [ev for ev in story.events if ev.record_id in wanted]
    noise_logon = next(ev for ev in story.events if ev.event_id == 4624 and ev.record_id not in wanted)
    noise = [
        noise_logon,
        *[ev for ev in story.events if ev.event_id in (4634, 4672)],
        EventSpec(
            provider=make_samples.SEC,
            provider_guid=make_samples.SEC_GUID,
            event_id=5156,
            time=0,
            computer=make_samples.DC,
            task=12810,
            data=[
                ("ProcessID", "656", "str"),
                ("Application", "\\device\\harddiskvolume2\\windows\\system32\\lsass.exe", "str"),
                ("Direction", "%%14592", "str"),
                ("SourceAddress", "10.0.0.10", "str"),
                ("SourcePort", "88", "str"),
                ("DestAddress", "10.0.0.51", "str"),
                ("DestPort", "50123", "str"),
                ("Protocol", "17", "str"),
                ("FilterRTID", "0", "str"),
                ("LayerName", "%%14610", "str"),
                ("LayerRTID", "44", "str"),
            ],
        ),
    ]
    target = size_mb * 1024 * 1024
    n = k = j = 0
    t = make_samples.T0
    with EvtxWriter(str(path)) as w:
        acc = 0.0
        while True:
            acc += share
            is_kerberos = acc >= 1.0  # exactly floor(n * share) Kerberos events among the first n, evenly spread
            if is_kerberos:
                acc -= 1.0
                ev = vary(kerberos[k % len(kerberos)], rng, pools, True)
                k += 1
            else:
                ev = vary(noise[j % len(noise)], rng, pools, False)
                j += 1
            # a busy DC's pace: 0-40 ms apart (about 50 events/s, an hour per 100 MB), 7-digit fractions
            t += rng.randrange(400_000)
            ev = dataclasses.replace(ev, record_id=None, time=t)
            record_id = w.add(ev)
            if kept is not None and is_kerberos:
                kept.append(dataclasses.replace(ev, record_id=record_id))
            n += 1
            if n % 256 == 0 and (w._chunks + 1) * CHUNK + HEADER >= target:
                break
    return n


def log_name(size_mb: int, share: float) -> str:
    """The cached log's file name: size, share and :data:`LOG_VERSION` (a log of older content is never reused)."""
    return f"dc-security-{size_mb}mb-{share * 100:g}pct-varied-v{LOG_VERSION}.evtx"


def command_env(out: Path, root: Path = ROOT) -> dict[str, str]:
    """The environment of a whole command (the CLI, the bare loop as a command; also ``bench/run.py``'s): Python may
    use and write byte code, kept under ``out`` (not in the tree), and the project at ``root`` is compiled there now,
    before any clock starts. Without it (``PYTHONDONTWRITEBYTECODE``, which some hosts set) every run of the CLI
    compiles the project's ~80 modules again (~35 ms), which a pip-installed krbtrace never does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(out / "pycache")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "krbtrace", "parsers"], check=True, cwd=root, env=env)
    return env


def measure(mode: str, path: str, root: Path = ROOT) -> dict[str, float]:
    """Run one mode in this process (``parsers`` / ``krbtrace`` from ``root``); returns records, rows, seconds, CPU
    seconds (this process and its children) and peak RSS in MB (``rss_mb`` this process, ``child_rss_mb`` its
    largest child).

    Imports happen before the clock starts (a fixed cost, about 0.1 s for ``parsers``); the ``cli`` modes are a
    whole command, imports included.
    """
    import orjson
    from evtx import PyEvtxParser

    sys.path.insert(0, str(root))
    name, _, jobs_text = mode.partition("-j")
    if name in ("read_evtx", "python-evtx"):
        import Evtx.Evtx  # noqa: F401

        import parsers.evtx  # noqa: F401
    env = command_env(Path(path).parent, root) if name in ("cli", "bare-cmd") else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cpu_start = time.process_time()
    rows = 0
    if mode in ("bare", "bare-1t", "bare+orjson"):
        records = 0
        parser = PyEvtxParser(path) if mode == "bare" else PyEvtxParser(path, number_of_threads=1)
        for rec in parser.records_json():
            data = rec["data"]
            if mode == "bare+orjson":
                orjson.loads(data)
            records += 1
    elif name in ("read_evtx", "python-evtx"):
        from parsers.evtx import read_evtx
        from parsers.record import ParseReport

        report = ParseReport(source=path)
        backend = "python-evtx" if mode == "python-evtx" else "evtx"
        jobs = {"jobs": int(jobs_text)} if jobs_text else {}
        for _ in read_evtx(path, report, backend=backend, **jobs):
            rows += 1
        records = report.units
    elif mode == "bare-cmd":
        loop = "import sys\nfrom evtx import PyEvtxParser\nfor r in PyEvtxParser(sys.argv[1]).records_json(): r['data']"
        subprocess.run([sys.executable, "-c", loop, path], check=True, env=env)
        records = -1
    elif name == "cli":
        out = Path(tempfile.mkdtemp()) / "out.parquet"
        extra = ["--jobs", jobs_text] if jobs_text else []
        cmd = [sys.executable, "-m", "krbtrace.cli", "timeline", path, "-o", str(out), *extra]
        subprocess.run(cmd, check=True, cwd=root, env=env)
        records = -1
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    if name == "cli":  # counted after the clock stops: importing pyarrow here is not the command's time
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(out).metadata.num_rows
        shutil.rmtree(out.parent)
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time of every thread (the evtx package parses on worker threads) and of every child process (read_evtx's
    # workers, the CLI and its workers): steadier than wall time on a shared host
    cpu += children.ru_utime + children.ru_stime - before.ru_utime - before.ru_stime
    return {
        "records": records,
        "rows": rows,
        "seconds": seconds,
        "cpu": cpu,
        "rss_mb": own.ru_maxrss / 1024,
        "child_rss_mb": children.ru_maxrss / 1024,
    }


def run_once(mode: str, path: Path, before: Path | None) -> dict[str, float]:
    name, _, tree = mode.partition("@")
    root = before if tree and before is not None else ROOT
    cmd = [sys.executable, __file__, "--measure", name, str(path), "--root", str(root)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def run(modes: list[str], path: Path, repeat: int, before: Path | None) -> dict[str, dict[str, float]]:
    """Best of ``repeat`` per mode, wall seconds and CPU seconds each their own minimum (the least disturbed runs),
    peak RSS the largest seen; the modes take turns within each round, so a burst of load on the shared host hits
    all of them alike."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for mode in modes:
            res = run_once(mode, path, before)
            if mode not in best:
                best[mode] = res
                continue
            b = best[mode]
            b["seconds"] = min(b["seconds"], res["seconds"])
            b["cpu"] = min(b["cpu"], res["cpu"])
            b["rss_mb"] = max(b["rss_mb"], res["rss_mb"])
            b["child_rss_mb"] = max(b["child_rss_mb"], res["child_rss_mb"])
    return best


def cli_has_jobs(root: Path) -> bool:
    """Whether the CLI in ``root`` takes ``--jobs`` (added alongside the parallel readers)."""
    cli = root / "krbtrace" / "cli.py"
    return cli.exists() and '"--jobs"' in cli.read_text()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--kerberos-share", type=float, default=0.3)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "krbtrace-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, help="read_evtx-jN workers (default: parsers.jobs.default_jobs())")
    ap.add_argument("--before", type=Path, help="another checkout to measure read_evtx and cli from, side by side")
    ap.add_argument("--modes", help="comma-separated subset of the modes (default: all)")
    ap.add_argument("--measure", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    ap.add_argument("--build", nargs=3, metavar=("FILE", "MB", "SHARE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure, root=args.root)))
        return
    if args.build:
        print(build(Path(args.build[0]), int(args.build[1]), float(args.build[2])))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / log_name(args.size_mb, args.kerberos_share)
    if not path.exists():
        # built (like every measurement) in a child process: Linux keeps a process's peak RSS across fork+exec,
        # so this process must stay small for the children's figures to be their own
        t = time.perf_counter()
        cmd = [sys.executable, __file__, "--build", str(path), str(args.size_mb), str(args.kerberos_share)]
        n = int(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(f"built {path} ({path.stat().st_size / 2**20:.0f} MiB, {n} records) in {time.perf_counter() - t:.1f} s")
    size = path.stat().st_size
    slice_path = args.out / f"{path.stem}-slice-2-chunks.evtx"  # per log: another run may use another log
    with open(path, "rb") as fh:
        slice_path.write_bytes(fh.read(HEADER + 2 * CHUNK))
    if args.jobs is None:
        from parsers.jobs import default_jobs

        args.jobs = default_jobs()
    modes = ["bare", "bare-1t", "bare-cmd", "bare+orjson", "read_evtx", f"read_evtx-j{args.jobs}", "cli"]
    if cli_has_jobs(ROOT):
        modes.append("cli-j1")
    if args.before is not None:
        modes += ["read_evtx@before", "cli@before"]
    if args.modes:
        modes = [m for m in modes if m in args.modes.split(",")]
    results = run(modes, path, args.repeat, args.before)
    if not args.modes or "python-evtx" in args.modes.split(","):
        results["python-evtx"] = run(["python-evtx"], slice_path, 1, None)["python-evtx"]
    records = next(r["records"] for r in results.values() if r["records"] > 0)
    print(f"file: {path.name}, {size / 2**20:.0f} MiB, {records:.0f} records, Kerberos share {args.kerberos_share}")
    head = f"{'mode':<18}{'records':>10}{'rows':>8}{'wall s':>8}{'rec/s wall':>12}{'CPU s':>7}{'rec/s CPU':>11}"
    print(head + f"{'RSS MB':>8}{'child RSS':>10}")
    for mode, r in results.items():
        n = records if r["records"] < 0 else r["records"]
        print(
            f"{mode:<18}{n:>10.0f}{r['rows']:>8.0f}{r['seconds']:>8.2f}{n / r['seconds']:>12.0f}{r['cpu']:>7.2f}"
            f"{n / r['cpu']:>11.0f}{r['rss_mb']:>8.1f}{r['child_rss_mb']:>10.1f}"
        )
    print("ratios of records/s (target >= 0.70; the bare loops' figures over the mode's):")
    for mode in results:
        if not mode.startswith(("read_evtx", "cli")):
            continue
        parts = []
        # a whole command (cli) against the whole-command loop; the in-process reader against the in-process loops
        bases = ("bare-cmd", "bare") if mode.startswith("cli") else ("bare", "bare-1t", "bare+orjson")
        for base in bases:
            if base in results:
                wall = results[base]["seconds"] / results[mode]["seconds"]
                cpu = results[base]["cpu"] / results[mode]["cpu"]
                parts.append(f"/ {base}: wall {wall:.2f}, CPU {cpu:.2f}")
        print(f"  {mode:<18}" + "; ".join(parts))
    print(f"os.cpu_count()={os.cpu_count()}")


if __name__ == "__main__":
    main()
