"""The generator's events rendered as Windows event XML and as ``evtx_dump -o jsonl`` JSON (for the text samples).

Windows renders HexInt values minimal (``0x17``), GUIDs upper-case with braces and TimeCreated with 7 fraction
digits in XML; the ``evtx`` package's JSON drops the GUID braces and truncates TimeCreated to microseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from evtxwriter import EVENT_NS, EventSpec


def _render(value: Any, kind: str) -> str:
    """A value as Windows renders it in event XML (and the evtx package in JSON): minimal hex, braced GUIDs."""
    if value is None:
        return ""
    if kind in ("hex32", "hex64"):
        return hex(value)
    if kind == "guid":
        return "{" + str(value).upper() + "}"
    return str(value)


def _time_text(t: int) -> str:
    secs, ticks = divmod(t, 10_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ticks:07d}Z"


def to_xml(ev: EventSpec) -> str:
    prov = f"<Provider Name={quoteattr(ev.provider)}"
    if ev.provider_guid:
        prov += f" Guid={quoteattr('{' + ev.provider_guid.upper() + '}')}"
    if ev.source_name:
        prov += f" EventSourceName={quoteattr(ev.source_name)}"
    q = f" Qualifiers='{ev.qualifiers}'" if ev.qualifiers is not None else ""
    data = "".join(
        (f"<Data Name={quoteattr(n)}>" if n is not None else "<Data>") + escape(_render(v, k)) + "</Data>"
        for n, v, k in ev.data
    )
    return (
        f"<Event xmlns='{EVENT_NS}'><System>{prov}/><EventID{q}>{ev.event_id}</EventID><Version>{ev.version}</Version>"
        f"<Level>{ev.level}</Level><Task>{ev.task}</Task><Opcode>{ev.opcode}</Opcode>"
        f"<Keywords>{hex(ev.keywords)}</Keywords><TimeCreated SystemTime='{_time_text(ev.time)}'/>"
        f"<EventRecordID>{ev.record_id}</EventRecordID><Correlation/>"
        f"<Execution ProcessID='{ev.process_id}' ThreadID='{ev.thread_id}'/><Channel>{ev.channel}</Channel>"
        f"<Computer>{escape(ev.computer)}</Computer><Security/></System><EventData>{data}</EventData></Event>"
    )


def to_json(ev: EventSpec) -> dict[str, Any]:
    """The ``{"Event": ...}`` object ``evtx_dump -o jsonl`` prints (TimeCreated truncated to µs, as it does)."""
    attrs = {"Name": ev.provider}
    if ev.provider_guid:
        attrs["Guid"] = ev.provider_guid.upper()
    if ev.source_name:
        attrs["EventSourceName"] = ev.source_name
    event_id: Any = ev.event_id
    if ev.qualifiers is not None:
        event_id = {"#attributes": {"Qualifiers": ev.qualifiers}, "#text": ev.event_id}
    named = [(n, v, k) for n, v, k in ev.data if n is not None]
    if len(named) == len(ev.data):
        event_data: Any = {n: _render(v, k) if k not in ("guid",) else str(v).upper() for n, v, k in named}
    else:
        event_data = {"Data": {"#text": [_render(v, k) for _, v, k in ev.data]}}
    return {
        "Event": {
            "#attributes": {"xmlns": EVENT_NS},
            "System": {
                "Provider": {"#attributes": attrs},
                "EventID": event_id,
                "Version": ev.version,
                "Level": ev.level,
                "Task": ev.task,
                "Opcode": ev.opcode,
                "Keywords": f"0x{ev.keywords:016x}",
                "TimeCreated": {"#attributes": {"SystemTime": _time_text(ev.time)[:26] + "Z"}},
                "EventRecordID": ev.record_id,
                "Correlation": None,
                "Execution": {"#attributes": {"ProcessID": ev.process_id, "ThreadID": ev.thread_id}},
                "Channel": ev.channel,
                "Computer": ev.computer,
                "Security": None,
            },
            "EventData": event_data,
        }
    }
