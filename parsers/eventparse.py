"""Event JSON and event XML -> :class:`parsers.eventmap.Event` (the raw values, before any normalisation).

Two renderings of the same Windows event schema (``http://schemas.microsoft.com/win/2004/08/events/event``):

* JSON as the ``evtx`` package / ``evtx_dump -o json(l)`` build it: attributes under ``#attributes``, element text
  under ``#text``, ``EventID`` either a number or ``{"#attributes": {"Qualifiers": ...}, "#text": n}``, unnamed
  ``Data`` as ``{"Data": {"#text": value-or-list}}``;
* XML as Windows (``wevtutil qe /f:xml``, Event Viewer "Save as XML") and python-evtx write it, where a
  multi-string ``Data`` may hold ``<string>`` children.

Unnamed ``Data`` elements are keyed ``Data[0]``, ``Data[1]``, ...; ``Binary`` by that name; ``UserData`` leaves by
tag name (the conventions of the corpus ground truth).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from .eventmap import Event

_NESTED = (dict, list)


class EventShapeError(ValueError):
    """A JSON object or XML element that is not a Windows event."""


def _attrs(node: Any) -> dict[str, Any]:
    if isinstance(node, dict):
        a = node.get("#attributes")
        if isinstance(a, dict):
            return a
    return {}


def _node_text(node: Any) -> Any:
    if isinstance(node, dict):
        return node.get("#text")
    return node


def _opt_int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise EventShapeError("boolean where a number belongs")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise EventShapeError(f"not a number: {value!r}") from exc


def _provider(attrs: dict[str, Any]) -> str | None:
    """The provider's ``Name`` (or classic ``EventSourceName``); raises :class:`EventShapeError` when it is not text
    (the mapping looks it up and lower-cases it)."""
    name = attrs.get("Name") or attrs.get("EventSourceName")
    if name is None or type(name) is str:
        return name
    raise EventShapeError(f"provider name is not text: {name!r}"[:200])


def _flatten(node: Any, out: dict[str, Any], name: str) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "#attributes":
                continue
            _flatten(v, out, name if k == "#text" else k)
    else:
        out[name] = node


def event_from_json(obj: Any) -> Event:
    """The event of one JSON record (``{"Event": {...}}``, or a record dict whose ``data`` holds it)."""
    try:  # the evtx package's usual shape, read without the general path's checks
        event = obj["Event"]
        system = event["System"]
        ed = event["EventData"]
        if type(ed) is dict and "Data" not in ed and "Binary" not in ed:
            eid = system["EventID"]
            rid = system["EventRecordID"]
            prov = system["Provider"]["#attributes"]
            if type(eid) is int and type(rid) is int and "UserData" not in event and type(prov) is dict:
                data = dict(ed)
                data.pop("#attributes", None)
                return Event(  # positional: a keyword call costs twice as much
                    rid,
                    eid,
                    _provider(prov),
                    system["TimeCreated"]["#attributes"]["SystemTime"],
                    system.get("Computer"),
                    data,
                    system.get("Version"),
                )
    except (KeyError, TypeError):
        pass
    if isinstance(obj, dict) and "Event" not in obj and isinstance(obj.get("data"), dict):
        obj = obj["data"]
    if not isinstance(obj, dict) or not isinstance(obj.get("Event"), dict):
        raise EventShapeError("no Event object")
    event = obj["Event"]
    system = event.get("System")
    if not isinstance(system, dict):
        raise EventShapeError("no System object")
    prov = _attrs(system.get("Provider"))
    ed = event.get("EventData")
    if type(ed) is dict and all(type(v) not in _NESTED for k, v in ed.items() if k != "#attributes"):
        # the usual case, named Data with plain values: take the object as it is
        data = dict(ed)
        data.pop("#attributes", None)
        ed = None
    else:
        data = {}
    if isinstance(ed, dict):
        for k, v in ed.items():
            if k == "#attributes":
                continue
            if k == "Data" and (isinstance(v, dict) or isinstance(v, list)):
                values = _node_text(v) if isinstance(v, dict) else v
                if not isinstance(values, list):
                    values = [values]
                for i, item in enumerate(values):
                    data[f"Data[{i}]"] = _node_text(item)
            else:
                data[k] = _node_text(v)
    elif ed is not None and not isinstance(ed, str | int | float):
        raise EventShapeError("EventData is neither an object nor text")
    ud = event.get("UserData")
    if isinstance(ud, dict):
        _flatten(ud, data, "UserData")
    return Event(
        record_id=_opt_int(_node_text(system.get("EventRecordID"))),
        event_id=_opt_int(_node_text(system.get("EventID"))),
        provider=_provider(prov),
        time_created=_attrs(system.get("TimeCreated")).get("SystemTime"),
        computer=_node_text(system.get("Computer")),
        data=data,
        version=_opt_int(_node_text(system.get("Version"))),
    )


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _element_value(el: ET.Element) -> Any:
    strings = [c for c in el if _local(c.tag) == "string"]
    if strings:  # python-evtx renders a multi-string value as <string> children
        return [s.text or "" for s in strings]
    return el.text or ""


def event_from_xml(el: ET.Element) -> Event:
    """The event of one ``<Event>`` element (namespaced or not)."""
    if _local(el.tag) != "Event":
        raise EventShapeError(f"<{_local(el.tag)}> is not an Event")
    system = data_el = user_el = None
    for child in el:
        name = _local(child.tag)
        if name == "System":
            system = child
        elif name == "EventData":
            data_el = child
        elif name == "UserData":
            user_el = child
    if system is None:
        raise EventShapeError("no System element")
    sys_fields = {_local(c.tag): c for c in system}
    prov = sys_fields.get("Provider")
    tc_el = sys_fields.get("TimeCreated")
    data: dict[str, Any] = {}
    if data_el is not None:
        unnamed = 0
        for d in data_el:
            tag = _local(d.tag)
            name = d.get("Name")
            if tag == "Data" and name is None:
                name = f"Data[{unnamed}]"
                unnamed += 1
            data[name or tag] = _element_value(d)
    if user_el is not None:
        for leaf in user_el.iter():
            if len(leaf) == 0 and leaf is not user_el:
                data[_local(leaf.tag)] = leaf.text or ""

    def field(name: str) -> str | None:
        node = sys_fields.get(name)
        return None if node is None else (node.text or "").strip()

    return Event(
        record_id=_opt_int(field("EventRecordID")),
        event_id=_opt_int(field("EventID")),
        provider=None if prov is None else (prov.get("Name") or prov.get("EventSourceName")),
        time_created=None if tc_el is None else tc_el.get("SystemTime"),
        computer=field("Computer"),
        data=data,
        version=_opt_int(field("Version")),
    )
