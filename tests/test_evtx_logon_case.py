"""4624/4625 logons are Kerberos whatever the letter case of the package / logon process (issue 3, Events).

Windows writes "Kerberos"; exports, other tools and hand-made logs write "KERBEROS" or "kerberos", with padding
sometimes ("Kerberos "). The expected rows come from the events written here (the writer's record numbers), not
from the reader; every input path is checked: the EVTX prefilter (``logon_kerberos``), XML and JSON lines.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from parsers.events import read_events
from parsers.evtx import read_evtx
from parsers.evtxfilter import logon_kerberos
from parsers.record import ParseReport
from tests.test_evtx_helpers import evtxwriter, make_samples

#: (LogonProcessName, AuthenticationPackageName, kept?) in the order the events are written.
SPELLINGS: list[tuple[str, str, bool]] = [
    ("Kerberos", "Kerberos", True),
    ("KERBEROS", "KERBEROS", True),
    ("kerberos", "kerberos", True),
    ("KeRbErOs", "Negotiate", True),  # the logon process alone is enough
    ("Advapi  ", "kerberos", True),  # the package alone is enough
    ("Kerberos ", "NTLM", True),  # padded value: the mapping strips it
    ("NtLmSsp ", "NTLM", False),
    ("User32 ", "Negotiate", False),
    ("Kerb", "eros", False),
    ("NTLM", "Kerberoast", False),  # not the word itself
]


def _events() -> list[evtxwriter.EventSpec]:
    story = make_samples.security_story()
    base = next(ev for ev in story.events if ev.event_id == 4624)
    out = []
    for i, (process, package, _) in enumerate(SPELLINGS):
        values = {"LogonProcessName": process, "AuthenticationPackageName": package}
        data = [(k, values.get(k, v), t) for k, v, t in base.data]
        for event_id in (4624, 4625):
            out.append(
                dataclasses.replace(
                    base, event_id=event_id, record_id=None, time=base.time + i * 10_000_000 + event_id, data=data
                )
            )
    return out


def _expected() -> list[tuple[int, int]]:
    """(record number, event id) of the rows that must come out, record numbers as the writer assigns them."""
    return [
        (2 * i + j + 1, eid) for i, (_, _, kept) in enumerate(SPELLINGS) if kept for j, eid in enumerate((4624, 4625))
    ]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import renderers  # samples/evtx, on sys.path through tests.test_evtx_helpers

    out = tmp_path_factory.mktemp("logon-case")
    events = _events()
    with evtxwriter.EvtxWriter(str(out / "logons.evtx"), first_record_id=1) as w:
        for ev in events:
            w.add(ev)
    numbered = [dataclasses.replace(ev, record_id=i + 1) for i, ev in enumerate(events)]
    xml = "".join(renderers.to_xml(ev) + "\n" for ev in numbered)
    (out / "logons.xml").write_text(f"<Events>\n{xml}</Events>\n")
    (out / "logons.jsonl").write_text("".join(json.dumps(renderers.to_json(ev)) + "\n" for ev in numbered))
    return {"evtx": out / "logons.evtx", "xml": out / "logons.xml", "jsonl": out / "logons.jsonl"}


@pytest.mark.parametrize("kind", ["evtx", "python-evtx", "xml", "jsonl"])
def test_kerberos_logons_in_any_case(files: dict[str, Path], kind: str) -> None:
    path = files["evtx" if kind == "python-evtx" else kind]
    report = ParseReport(source=str(path))
    if kind in ("evtx", "python-evtx"):
        rows = list(read_evtx(str(path), report, backend=kind))
    else:
        rows = list(read_events(str(path), report, kind))
    assert [(r.record_no, r.event_id) for r in rows] == _expected()
    assert all(r.phase == "AP" and r.client == "alice" for r in rows)
    assert not report.issues and report.units == 2 * len(SPELLINGS)


def test_prefilter_reads_the_values_not_the_whole_event() -> None:
    head = '{"Event":{"System":{"EventID":4624},"EventData":{'
    assert logon_kerberos(head + '"LogonProcessName":"NtLmSsp ","AuthenticationPackageName":"NTLM"}}}') is False
    # a later LogonProcessName overrides the NTLM pair (the event dict keeps the last value)
    pair = '"LogonProcessName":"NtLmSsp ","AuthenticationPackageName":"NTLM"'
    assert logon_kerberos(head + pair + ',"LogonProcessName":"KERBEROS"}}}') is True
    # the keys in the other order, and a value that is an object
    assert logon_kerberos(head + '"AuthenticationPackageName":"kerberos","LogonProcessName":"x"}}}') is True
    assert logon_kerberos(head + '"LogonProcessName":{"#text":"Kerberos"}}}}') is True
    # neither key: not a Kerberos logon, whatever else mentions Kerberos
    assert logon_kerberos(head + '"WorkstationName":"KERBEROS"}}}') is False
