"""The sign of a W32Time correction, against the kernel's own record of the same clock change.

The corpus's omerbenamram__evtx System log holds a Time-Service event 52 ("The time service has set the time with
offset 35999 seconds") and, in the same millisecond, the Kernel-General event 1 that records that change of the
system time (OldTime, NewTime). The kernel event is read here with the ``evtx`` package directly (krbtrace keeps
only Kerberos-related events, so it never sees it): the host's offset before the correction is OldTime - NewTime,
and krbtrace's clock offset for that host must be the same, sign included.
"""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest
from evtx import PyEvtxParser

from krbtrace import analyze
from tests.conftest import corpus_path


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_time_service_offset_has_the_kernels_sign() -> None:
    path = corpus_path("evtx", "omerbenamram__evtx", "samples", "system.evtx")
    events = []
    for rec in PyEvtxParser(str(path)).records_json():
        ev = orjson.loads(rec["data"])["Event"]
        system = ev["System"]
        eid = system["EventID"]
        events.append(
            (
                _time(system["TimeCreated"]["#attributes"]["SystemTime"]),
                system["Provider"]["#attributes"].get("Name"),
                eid["#text"] if isinstance(eid, dict) else eid,
                system.get("Computer"),
                ev.get("EventData") or {},
            )
        )
    (at, _, _, host, data) = next(e for e in events if e[1] == "Microsoft-Windows-Time-Service" and e[2] == 52)
    assert data["TimeOffsetSeconds"] == 35999
    # the kernel's record of the change that 52 reports: the largest jump within a second of it
    kernel = [
        e
        for e in events
        if e[1] == "Microsoft-Windows-Kernel-General" and e[2] == 1 and abs((e[0] - at).total_seconds()) < 1
    ]
    jumps = [(_time(e[4]["OldTime"]) - _time(e[4]["NewTime"])).total_seconds() for e in kernel]
    before = max(jumps, key=abs)
    assert before == pytest.approx(35999.7, abs=0.5)  # the clock was set back: it had been ~10 h ahead

    offsets = analyze(str(path)).clock_offsets
    ours = offsets.filter((offsets["host"] == host) & offsets["method"].str.starts_with("time_service_event"))
    assert ours.height == 1
    assert ours["offset_s"][0] == pytest.approx(before, abs=1.0)
