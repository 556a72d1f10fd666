"""Per-row cost of the EVTX reader's Python side: JSON text of a kept record -> ``KrbRecord``.

    python3 bench/bench_eventrow.py [--log PATH] [--rows 30000] [--repeat 7]

Takes the first ``--rows`` records of the benchmark log (``bench/bench_evtx.py --size-mb 100 --kerberos-share 0.3
--modes bare --repeat 1`` writes it) that pass the reader's text pre-filter, and times, interleaved, best of
``--repeat``:

* ``old``: ``to_record(event_from_json(orjson.loads(d)), src, "evtx")`` (the general path);
* ``new``: ``row_from_json(orjson.loads(d), src)`` (:mod:`parsers.eventfast`, what ``rust_rows`` calls);

each on three data sets: ``repeat`` (the log as written; ``bench_evtx.py``'s logs before ``varied-v2`` repeated a
few distinct Kerberos events over and over, so that every memo hit), ``varied`` (the same events with their own
record number, time, client address and port, user and SID, service, LogonGuid, the UPN form of the user in
4769/4770; names and addresses drawn from pools of a few thousand, as on a real DC) and ``4624`` (a third as many
Kerberos network logons in Windows 10+'s 27-field layout, varied the same way, with their own logon ID). Every row
of both paths is compared before timing. The memos are emptied before each timed pass.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parsers import eventfast, eventmap  # noqa: E402
from parsers.eventfast import row_from_json  # noqa: E402
from parsers.eventmap import to_record  # noqa: E402
from parsers.eventparse import event_from_json  # noqa: E402
from parsers.evtxfilter import wanted  # noqa: E402

DEFAULT_LOG = "/tmp/krbtrace-bench/dc-security-100mb-30pct-varied-v2.evtx"


def kept_records(path: str, rows: int) -> list[str]:
    from evtx import PyEvtxParser

    out: list[str] = []
    for rec in PyEvtxParser(path, number_of_threads=1).records_json():
        if wanted(rec["data"]):
            out.append(rec["data"])
            if len(out) >= rows:
                break
    return out


def varied(data: list[str], seed: int = 3) -> list[str]:
    """The same events with the values a real DC log varies (see the module docstring)."""
    rng = random.Random(seed)
    users = [f"user{i:04d}" for i in range(3000)]
    services = [f"host/srv{i:03d}.example.test" for i in range(500)]
    addresses = [f"::ffff:10.{i // 250}.{i % 250}.{rng.randrange(1, 255)}" for i in range(2000)]
    us = 1_768_467_600_000_000  # 2026-01-15T09:00:00Z
    out: list[str] = []
    for n, text in enumerate(data):
        obj = orjson.loads(text)
        system, ed = obj["Event"]["System"], obj["Event"]["EventData"]
        system["EventRecordID"] = 1000 + n
        us += rng.randrange(1, 20_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000))
        system["TimeCreated"]["#attributes"]["SystemTime"] = f"{stamp}.{us % 1_000_000:06d}Z"
        u = rng.randrange(len(users))
        tgs = system["EventID"] in (4769, 4770)
        for key, value in (
            ("IpAddress", rng.choice(addresses)),
            ("IpPort", str(rng.randrange(49152, 65536))),
            ("TargetUserName", f"{users[u]}@EXAMPLE.TEST" if tgs else users[u]),  # 4769/4770: the UPN form
            ("TargetSid", f"S-1-5-21-3623811015-3361044348-30300820-{1100 + u}"),
            ("TargetUserSid", f"S-1-5-21-3623811015-3361044348-30300820-{1100 + u}"),
            ("TargetLogonId", hex(rng.getrandbits(28))),
            ("ServiceName", rng.choice(services)),
            ("LogonGuid", str(uuid.UUID(int=rng.getrandbits(128))).upper()),  # as the evtx package writes it
        ):
            if key in ed:
                ed[key] = value
        out.append(orjson.dumps(obj).decode())
    return out


#: A Kerberos network logon as the evtx package renders Windows 10 / Server 2016+'s 4624 (Version 2, 27 fields).
LOGON_4624 = (
    '{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":'
    '{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing","Guid":"54849625-5478-4994-A5BA-3E3B0328C30D"}},'
    '"EventID":4624,"Version":2,"Level":0,"Task":12544,"Opcode":0,"Keywords":"0x8020000000000000","TimeCreated":'
    '{"#attributes":{"SystemTime":"2026-01-15T09:00:00.000300Z"}},"EventRecordID":1,"Correlation":null,"Execution":'
    '{"#attributes":{"ProcessID":668,"ThreadID":2120}},"Channel":"Security","Computer":"dc01.example.test",'
    '"Security":null},"EventData":{"SubjectUserSid":"S-1-0-0","SubjectUserName":"-","SubjectDomainName":"-",'
    '"SubjectLogonId":"0x0","TargetUserSid":"S-1-5-21-1-2-3-1104","TargetUserName":"alice","TargetDomainName":'
    '"EXAMPLE.TEST","TargetLogonId":"0x3e7a21","LogonType":3,"LogonProcessName":"Kerberos",'
    '"AuthenticationPackageName":"Kerberos","WorkstationName":"-","LogonGuid":"1EC715BD-2F7B-4E7E-B8A0-9D3C1A2B3C4D",'
    '"TransmittedServices":"-","LmPackageName":"-","KeyLength":0,"ProcessId":"0x0","ProcessName":"-","IpAddress":'
    '"10.0.0.5","IpPort":"50110","ImpersonationLevel":"%%1833","RestrictedAdminMode":"-","TargetOutboundUserName":'
    '"-","TargetOutboundDomainName":"-","VirtualAccount":"%%1843","TargetLinkedLogonId":"0x0","ElevatedToken":'
    '"%%1842"}}}'
)


def clear_memos() -> None:
    for memo in (
        eventmap._NUMS,
        eventmap._MINUTES,
        eventmap._EVENT_DATA_MEMO,
        eventmap._IPS,
        eventmap._SIDS,
        eventmap._PROVIDERS,
        *eventfast.MEMOS,
    ):
        memo.clear()


def old(data: list[str]) -> None:
    loads = orjson.loads
    for d in data:
        to_record(event_from_json(loads(d)), "x", "evtx")


def new(data: list[str]) -> None:
    loads = orjson.loads
    for d in data:
        row_from_json(loads(d), "x")


def loads_only(data: list[str]) -> None:
    loads = orjson.loads
    for d in data:
        loads(d)


def time_once(fn: Callable[[list[str]], None], data: list[str]) -> float:
    clear_memos()
    t = time.perf_counter()
    fn(data)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", default=DEFAULT_LOG)
    ap.add_argument("--rows", type=int, default=30000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    sets = {"repeat": kept_records(args.log, args.rows)}
    sets["varied"] = varied(sets["repeat"])
    sets["4624"] = varied([LOGON_4624] * (args.rows // 3))
    for name, data in sets.items():
        rows_old = [to_record(event_from_json(orjson.loads(d)), "x", "evtx") for d in data]
        assert rows_old == [row_from_json(orjson.loads(d), "x") for d in data], f"{name}: rows differ"
    modes = {"orjson.loads": loads_only, "old": old, "new": new}
    times = {(s, m): float("inf") for s in sets for m in modes}
    for _ in range(args.repeat):
        for s, data in sets.items():
            for m, fn in modes.items():
                times[s, m] = min(times[s, m], time_once(fn, data))
    print(f"{args.rows} kept rows of {args.log}, best of {args.repeat}, µs per row:")
    print(f"{'data':8} {'orjson.loads':>12} {'old':>8} {'new':>8} {'old-loads':>10} {'new-loads':>10} {'speed-up':>9}")
    for s, data in sets.items():
        n = len(data)
        lo, o, w = (times[s, m] / n * 1e6 for m in modes)
        print(f"{s:8} {lo:12.2f} {o:8.2f} {w:8.2f} {o - lo:10.2f} {w - lo:10.2f} {o / w:8.2f}x")


if __name__ == "__main__":
    main()
