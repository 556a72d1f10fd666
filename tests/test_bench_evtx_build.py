"""The EVTX benchmark's log builder (bench/bench_evtx.py ``build``): a small log reads back with the ``evtx``
package record for record, holds the Kerberos share asked for, its Kerberos events carry varied values (not the
sample story's few repeated ones), and ``parsers.evtx.read_evtx`` gives one row per Kerberos event with the values
the builder wrote (the builder's ``kept`` list is the truth; the ``evtx`` package reads the file independently)."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections import Counter
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from evtx import PyEvtxParser

from parsers.evtx import read_evtx
from parsers.record import ParseReport

ROOT = Path(__file__).resolve().parent.parent
SHARE = 0.3
#: Kept by krbtrace whatever their values (the 4624 only with Kerberos as its package, checked apart).
KERBEROS_IDS = {4625, 4738, 4768, 4769, 4770, 4771, 5136}


@cache
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_evtx", ROOT / "bench" / "bench_evtx.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_evtx"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, list[Any]]:
    path = tmp_path_factory.mktemp("evbench") / "log.evtx"
    kept: list[Any] = []
    n = bench().build(path, 1, SHARE, kept=kept)
    return path, n, kept


def fields(ev: Any) -> dict[str, Any]:
    return {name: value for name, value, _ in ev.data}


def test_reads_back_record_for_record(built: tuple[Path, int, list[Any]]) -> None:
    path, n, kept = built
    assert path.stat().st_size >= 1 << 20
    events = {r["event_record_id"]: orjson.loads(r["data"])["Event"] for r in PyEvtxParser(str(path)).records_json()}
    assert sorted(events) == list(range(1, n + 1))
    # the Kerberos share, counted from what the evtx package reads (not from the builder's list)
    krb = [
        rid
        for rid, e in events.items()
        if e["System"]["EventID"] in KERBEROS_IDS
        or (e["System"]["EventID"] == 4624 and e["EventData"]["AuthenticationPackageName"] == "Kerberos")
    ]
    assert abs(len(krb) - n * SHARE) <= 1
    assert krb == [ev.record_id for ev in kept]
    for ev in kept:
        data = events[ev.record_id]["EventData"]
        assert events[ev.record_id]["System"]["EventID"] == ev.event_id
        for name, value in fields(ev).items():
            if name in ("LogonGuid", "OpCorrelationID"):
                assert uuid.UUID(data[name]) == uuid.UUID(value)
            elif isinstance(value, int):
                assert int(data[name], 16) == value, name
            else:
                assert data[name] == value, name


def test_values_vary(built: tuple[Path, int, list[Any]]) -> None:
    _, _, kept = built
    got = [fields(ev) for ev in kept]
    ports = [f["IpPort"] for f in got if "IpPort" in f]
    assert all(49152 <= int(p) <= 65535 for p in ports)
    assert len(set(ports)) > 0.9 * len(ports)
    users = [f["TargetUserName"].split("@")[0] for f in got if f.get("TargetUserName")]
    assert len(set(users)) > 0.8 * len(users)
    addresses = [f["IpAddress"] for f in got if "IpAddress" in f]
    assert len(set(addresses)) > 0.6 * len(addresses)
    assert any(a.startswith("::ffff:10.") for a in addresses) and any(a.startswith("10.") for a in addresses)
    tickets = [f for ev, f in zip(kept, got, strict=True) if ev.event_id == 4769 and f["Status"] == 0]
    guids = [f["LogonGuid"] for f in tickets]
    assert len(set(guids)) == len(guids) > 20
    assert all(g.startswith("{") and g.endswith("}") and g.strip("{}0-") for g in guids)
    assert len({f["ServiceName"] for f in tickets}) > 0.8 * len(tickets)
    assert {f["TicketOptions"] for f in tickets} <= {0x40810000, 0x60810010}
    # every kind of the sample story is still there, in its own proportion
    kinds = Counter((ev.event_id, ev.version) for ev in kept)
    assert set(kinds) == {
        (4768, 0),
        (4769, 0),
        (4769, 1),
        (4770, 0),
        (4771, 0),
        (4738, 0),
        (5136, 0),
        (4624, 2),
        (4625, 0),
    }


def test_read_evtx_rows_match_what_was_written(built: tuple[Path, int, list[Any]]) -> None:
    path, n, kept = built
    report = ParseReport(source=str(path))
    rows = list(read_evtx(str(path), report))
    assert report.units == n and not report.issues
    assert [r.record_no for r in rows] == [ev.record_id for ev in kept]
    # a DC's pace (about 50 events a second), not thousands a second
    assert [r.ts for r in rows] == sorted(r.ts for r in rows)
    assert 0.01 * n < (rows[-1].ts - rows[0].ts) / 1e6 < 0.03 * n
    for row, ev in zip(rows, kept, strict=True):
        f = fields(ev)
        assert row.event_id == ev.event_id
        assert row.ts == ev.time // 10  # 100 ns units written, microseconds read
        if "IpPort" in f:
            assert row.src_port == int(f["IpPort"])
            assert row.src_ip == f["IpAddress"].removeprefix("::ffff:")
        if ev.event_id != 5136:
            assert row.client == (f["TargetUserName"].split("@")[0] or None)
        if ev.event_id == 4769 and f["Status"] == 0:
            assert row.service == f["ServiceName"]
            assert row.ticket_etype == f["TicketEncryptionType"]


def test_deterministic_and_named_apart(tmp_path: Path) -> None:
    a, b = tmp_path / "a.evtx", tmp_path / "b.evtx"
    assert bench().build(a, 1, 0.02) == bench().build(b, 1, 0.02)
    assert a.read_bytes() == b.read_bytes()
    names = {bench().log_name(100, s) for s in (0.003, 0.02, 0.3)}
    assert len(names) == 3 and all("varied" in name for name in names)


def test_whole_command_modes(built: tuple[Path, int, list[Any]]) -> None:
    """``cli`` writes one row per Kerberos event and ``bare-cmd`` runs, both with the byte code cached beside the
    log (``PYTHONPYCACHEPREFIX``) whatever this host's ``PYTHONDONTWRITEBYTECODE``."""
    path, _, kept = built
    env = bench().command_env(path.parent)
    assert "PYTHONDONTWRITEBYTECODE" not in env and env["PYTHONPYCACHEPREFIX"] == str(path.parent / "pycache")
    cli = bench().measure("cli", str(path))
    assert cli["rows"] == len(kept) and cli["records"] == -1
    assert list((path.parent / "pycache").rglob("evtx.*.pyc"))  # parsers/evtx.py, compiled there
    assert 0 < cli["seconds"] < 60 and 0 < cli["cpu"]
    assert bench().measure("bare-cmd", str(path))["records"] == -1
