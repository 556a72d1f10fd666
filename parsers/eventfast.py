"""The EVTX reader's per-record fast path: an ``orjson`` event dict -> :class:`KrbRecord` in one function.

:func:`row_from_json` gives exactly what the general path ``to_record(event_from_json(obj), source, "evtx")``
gives (same row, same ``None``, same exception), only cheaper for what a DC's Security log is made of: Security-
Auditing events in the ``evtx`` package's usual shape (``EventID`` and ``EventRecordID`` plain numbers, named
``Data`` as a flat object). It skips the intermediate :class:`parsers.eventmap.Event`, the provider canonicalisation
(the name is compared with the manifest name itself), the copy of ``EventData`` that ``event_from_json`` makes for
``to_record`` to copy again, and, for the ticket events 4768-4773 (the bulk of what a DC logs), the helper call per
field (``_num``, ``text``, ``_sid``, ``_ip``, ``parse_time``): their common case is written out here, with the same
memos (:mod:`parsers.eventmap`'s ``_NUMS``, ``_IPS``, ``_SIDS``, ``_MINUTES``), and every other value goes to the
very helper the general path calls. Anything else (other providers, a lower-case provider name, ``EventID`` with
``Qualifiers``, ``Data``/``Binary``/``UserData`` elements, a non-dict part) is handed to the general path whole.

Why each shortcut gives the general path's value is said where it is taken; ``tests/test_eventfast.py`` compares
both paths on every record of the corpus and the samples and on generated odd events.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any, Final

from .eventmap import (
    _EVENT_DATA,
    _IPS,
    _MINUTES,
    _NUMS,
    _PARTIAL,
    _SIDS,
    _TEMPLATE,
    AS_EVENTS,
    SECURITY,
    SECURITY_EVENTS,
    TGS_EVENTS,
    TICKET_EVENTS,
    _event_data,
    _int32,
    _ip_of,
    _new_record,
    _num,
    _security,
    _sid_of,
    event_data_json,
    is_kerberos,
    parse_time,
    text,
    to_record,
)
from .eventparse import event_from_json
from .krb5.constants import error_name
from .memo import Memo
from .record import FIELDS, KrbRecord

__all__ = ["row_from_json"]

_MISSING: Final = object()
_INT32_MIN: Final = -(2**31)
_INT32_END: Final = 2**31
_COL: Final = {name: i for i, name in enumerate(FIELDS)}
_C_ERROR_CODE: Final = _COL["error_code"]
_C_ERROR_NAME: Final = _COL["error_name"]
_C_SRC_IP, _C_SRC_PORT, _C_PHASE = _COL["src_ip"], _COL["src_port"], _COL["phase"]
_C_CLIENT, _C_CLIENT_REALM, _C_CLIENT_SID = _COL["client"], _COL["client_realm"], _COL["client_sid"]
_C_SERVICE, _C_SERVICE_SID, _C_KDC_OPTIONS = _COL["service"], _COL["service_sid"], _COL["kdc_options"]
_C_TICKET_ETYPE, _C_PREAUTH_TYPE = _COL["ticket_etype"], _COL["preauth_type"]


def _general(obj: Any, source: str) -> KrbRecord | None:
    return to_record(event_from_json(obj), source, "evtx")


def _number(d: dict[str, Any], name: str, raw: Any, bad: list[str]) -> int | None:
    """``_num`` for a value already taken out of ``d``: put back, then read by ``_num`` itself (it pops it again,
    and puts it back when unreadable), so the value, the ``bad`` mark and what stays for ``event_data`` are
    ``_num``'s. Only the key's position in ``d`` can differ, and ``event_data`` is written with sorted keys."""
    d[name] = raw
    return _num(d, name, bad)


def row_from_json(obj: Any, source: str) -> KrbRecord | None:
    """``to_record(event_from_json(obj), source, "evtx")``, cheaper for the usual Security-Auditing events.

    The checks below are those of ``event_from_json``'s own fast branch (plus provider and EventID), so an event
    taken here is one that branch would have turned into ``Event(rid, eid, SECURITY, created, computer, data)``
    with ``data`` = ``EventData`` less ``#attributes``; ``to_record`` then maps it as written out below.
    """
    try:
        event = obj["Event"]
        system = event["System"]
        ed = event["EventData"]
        eid = system["EventID"]
        rid = system["EventRecordID"]
        prov = system["Provider"]["#attributes"]
        created = system["TimeCreated"]["#attributes"]["SystemTime"]
    except (KeyError, TypeError):  # what event_from_json's fast branch gives way on, too
        return _general(obj, source)
    if (
        type(eid) is not int
        or eid not in SECURITY_EVENTS
        or type(rid) is not int
        or type(ed) is not dict
        or type(prov) is not dict
        # "Name" wins over "EventSourceName" in event_from_json; the manifest name is its own canonical name
        or prov.get("Name") != SECURITY
        or "Data" in ed
        or "Binary" in ed
        or "UserData" in event
    ):
        return _general(obj, source)
    if eid in TICKET_EVENTS:
        return _ticket_row(eid, rid, created, system.get("Computer"), ed, source)
    # 4624/4625/4738/4742/5136: to_record's steps without the Event and the second copy; is_kerberos only reads
    # named fields, so "#attributes" (not yet removed) does not change its answer
    if not is_kerberos(eid, SECURITY, ed):
        return None
    ts = parse_time(created)
    if ts is None:
        raise ValueError("event without TimeCreated")
    d = ed.copy()
    d.pop("#attributes", None)
    bad: list[str] = []
    row = _TEMPLATE.copy()
    _security(eid, d, bad, row)
    return _finish(row, ts, source, rid, system.get("Computer"), eid, d, bad)


def _finish(
    row: list[Any], ts: int, source: str, rid: int, computer: Any, eid: int, d: dict[str, Any], bad: list[str]
) -> KrbRecord:
    """The end of ``to_record`` for a Security-Auditing event (no Security event has an implied error code)."""
    code = row[_C_ERROR_CODE]
    row[_C_ERROR_NAME] = error_name(code)
    row[0:7] = (ts, source, "evtx", rid, text(computer), SECURITY, eid)
    if bad:
        row[_PARTIAL] = True
    if d:
        row[_EVENT_DATA] = _event_data(d)
    return _new_record(KrbRecord, row)


def _ticket_row(eid: int, rid: int, created: Any, computer: Any, ed: dict[str, Any], source: str) -> KrbRecord:
    """``to_record`` for 4768-4773: the time, then the row from the shape's and the template's memos.

    TimeCreated: ``parse_time``'s own first test and memo of the start of each minute, the same sum; anything
    else is ``parse_time``'s. Then, when the event's fields are spelled the usual way, the row is its
    :class:`_Shape`'s template (the columns that take few values, see :func:`_template`) plus the columns that
    vary from event to event; otherwise :func:`_ticket_fields` maps it field by field.
    """
    ts: Any = None
    if type(created) is str and len(created) == 27 and created[26] == "Z" and created[19] == ".":
        minute = _MINUTES.get(created[:16])
        if minute is not None:
            try:
                ts = minute + int(created[17:19]) * 1_000_000 + int(created[20:26])
            except ValueError:
                ts = None
    if ts is None:
        ts = parse_time(created)
        if ts is None:
            raise ValueError("event without TimeCreated")
    shape = _SHAPES[tuple(ed)]
    vals = (*ed.values(), None)  # the None stands for the fields this shape lacks
    ip, port, raw_user, tsid, svc, ssid, *fixed = shape.take(vals)
    try:
        tmpl = _TEMPLATES.get((eid, computer, source, *fixed))
    except TypeError:  # an unhashable value (a list, an object): not a usual spelling
        tmpl = None
    if tmpl is None:
        tmpl = _template(eid, computer, source, fixed)
        if tmpl is None:
            return _ticket_fields(eid, rid, ts, computer, ed, source)
    if type(port) is str and port.isdigit() and port.isascii():
        port = int(port) or None  # _num's value for ASCII digits, "or None" as in _security
    elif port is not None:
        return _ticket_fields(eid, rid, ts, computer, ed, source)
    v = raw_user
    user = v if type(v) is str and v and v[0] > " " and v[-1] > " " and v != "-" else text(v)
    row = tmpl.copy()
    row[0] = ts
    row[3] = rid
    row[_C_SRC_IP] = _IPS[ip] if type(ip) is str else _ip_of(ip)
    row[_C_SRC_PORT] = port
    row[_C_CLIENT_SID] = _SIDS[tsid] if type(tsid) is str else _sid_of(tsid)
    v = svc
    row[_C_SERVICE] = v if type(v) is str and v and v[0] > " " and v[-1] > " " and v != "-" else text(v)
    row[_C_SERVICE_SID] = _SIDS[ssid] if type(ssid) is str else _sid_of(ssid)
    if user and "@" in user and eid in TGS_EVENTS:
        # 4769/4770 write the UPN form user@REALM; the original stays in event_data (as in _security)
        user, _, upn_realm = user.rpartition("@")
        row[_C_CLIENT_REALM] = row[_C_CLIENT_REALM] or upn_realm or None
        row[_C_CLIENT] = user or None
        d = dict(zip(shape.names, shape.rest(vals), strict=True))
        d["TargetUserName"] = raw_user
        row[_EVENT_DATA] = _event_data(d)
        return _new_record(KrbRecord, row)
    row[_C_CLIENT] = user
    if shape.names:
        rest = shape.rest(vals)
        try:
            out = shape.data.get(rest)
        except TypeError:  # a list or an object among them
            out = None
        row[_EVENT_DATA] = out if out is not None else shape.event_data(rest)
    return _new_record(KrbRecord, row)


class _Shape:
    """What a ticket event's ``EventData`` keys (their order included) say about where its fields are.

    ``take`` picks, from ``(*EventData.values(), None)``, the fields the columns come from, in the order of
    ``taken`` (the final ``None`` for the fields this shape lacks: absent is what ``pop(name, None)`` reads as
    ``None``); the code comes from ``Status`` when the event has it, else from ``FailureCode`` (as in
    ``_security``). ``names`` are the fields left for ``event_data`` (``#attributes`` aside, which
    ``event_from_json`` drops), ``rest`` picks their values.
    """

    __slots__ = ("data", "names", "rest", "take")

    def __init__(self, keys: tuple[str, ...]) -> None:
        code = "Status" if "Status" in keys else "FailureCode"
        taken = (*_VARYING, "TargetDomainName", "TicketOptions", code, "TicketEncryptionType", "PreAuthType")
        where = {k: i for i, k in enumerate(keys)}
        self.take = itemgetter(*(where.get(name, len(keys)) for name in taken))
        self.names = tuple(k for k in keys if k not in taken and k != "#attributes")
        picks = [where[k] for k in self.names]
        self.rest: Callable[[tuple[Any, ...]], tuple[Any, ...]] = (
            itemgetter(*picks) if len(picks) > 1 else (lambda vals: tuple(vals[i] for i in picks))
        )
        #: event_data by the values of ``names``, for values that are all text or null (see event_data)
        self.data: Memo = Memo(None, _MAX_DATA)

    def event_data(self, rest: tuple[Any, ...]) -> str:
        """``_event_data`` of the fields left: the same text, as ``event_data_json`` depends on the fields only.
        Remembered when every value is text or null: then a tuple equal to ``rest`` holds the very same values
        (a ``str`` equals only a ``str``), whereas ``1 == 1.0 == True`` would mix values that normalise apart."""
        out = event_data_json(dict(zip(self.names, rest, strict=True)))
        if len(out) <= _MAX_DATA_TEXT and all(v is None or type(v) is str for v in rest):
            self.data.keep(rest, out)
        return out


#: Ticket events' EventData layouts, by their keys in order (a log has a handful).
_SHAPES: Final = Memo(_Shape, 256)
#: Ticket rows' columns that follow from few values (see _template), by those values.
_TEMPLATES: Final = Memo(None, 4096)
_MAX_DATA: Final = 1024
_MAX_DATA_TEXT: Final = 512
#: This module's own memos (for tests that run it on a clean state).
MEMOS: Final[list[dict[Any, Any]]] = [_SHAPES, _TEMPLATES]


#: The fields ``_security`` takes for a ticket event: those that vary from event to event, then (with the code
#: field chosen per shape between them) those that take few values.
_VARYING: Final = ("IpAddress", "IpPort", "TargetUserName", "TargetSid", "ServiceName", "ServiceSid")


def _template(eid: int, computer: Any, source: str, fixed: list[Any]) -> list[Any] | None:
    """The row columns of a ticket event that follow from few values: host, realm, options, code, error name,
    ticket etype, pre-auth type (and source, provider, event ID, phase), remembered by those values.

    ``None`` (and nothing remembered) unless every value is text or null and every number is readable: then the
    key equals only keys of the same values (a ``str`` equals only a ``str``), and no field is left for
    ``event_data`` or marks the row ``partial``. The values are the general helpers' (``text``, ``_num``)."""
    domain, *numbers = fixed
    if type(computer) is not str or any(v is not None and type(v) is not str for v in fixed):
        return None
    bad: list[str] = []
    options, code, etype, preauth = (_num({"v": raw}, "v", bad) for raw in numbers)
    if bad:
        return None
    code = _int32(code) or None
    row = _TEMPLATE.copy()
    row[0:7] = (None, source, "evtx", None, text(computer), SECURITY, eid)
    row[_C_PHASE] = "AS" if eid in AS_EVENTS else "TGS"
    row[_C_CLIENT_REALM] = text(domain)
    row[_C_KDC_OPTIONS] = options
    row[_C_ERROR_CODE] = code
    row[_C_ERROR_NAME] = error_name(code)
    row[_C_TICKET_ETYPE] = _int32(etype)
    row[_C_PREAUTH_TYPE] = _int32(preauth)
    return _TEMPLATES.keep((eid, computer, source, *fixed), row)


def _ticket_fields(eid: int, rid: int, ts: int, computer: Any, ed: dict[str, Any], source: str) -> KrbRecord:
    """``to_record`` + ``_security`` for 4768-4773, field by field (any spelling), each field's usual spelling read
    in line.

    Fields are taken in ``_security``'s order. Text values: a ``str`` that starts and ends above ``" "`` and is not
    ``"-"`` is what ``text`` returns unchanged (its own first test); anything else goes to ``text``. Numbers: a
    ``str`` found in ``_NUMS`` has the value ``_num`` would return (``_num`` fills it, with parse_int's values
    only); decimal ASCII digits (the port) are ``int(raw)``, as in ``_num``; anything else goes to ``_num``.
    Addresses and SIDs use the general path's memos (``_ip`` and ``_sid`` are those look-ups for a ``str``).
    """
    d = ed.copy()  # what is left becomes event_data
    pop = d.pop
    if "#attributes" in d:
        del d["#attributes"]
    bad: list[str] = []
    nums = _NUMS.get
    missing = _MISSING

    v = pop("IpAddress", None)
    src_ip = _IPS[v] if type(v) is str else _ip_of(v)
    v = pop("IpPort", None)
    if type(v) is str and v.isdigit() and v.isascii():
        port = int(v) or None
    else:
        port = _number(d, "IpPort", v, bad) or None
    raw_user = pop("TargetUserName", None)
    v = raw_user
    user = v if type(v) is str and v and v[0] > " " and v[-1] > " " and v != "-" else text(v)
    v = pop("TargetDomainName", None)
    realm = v if type(v) is str and v and v[0] > " " and v[-1] > " " and v != "-" else text(v)
    if user and "@" in user and eid in TGS_EVENTS:
        # 4769/4770 write the UPN form user@REALM; the original stays in event_data (as in _security)
        d["TargetUserName"] = raw_user
        user, _, upn_realm = user.rpartition("@")
        realm = realm or upn_realm or None
    v = pop("TargetSid", None)
    client_sid = _SIDS[v] if type(v) is str else _sid_of(v)
    v = pop("ServiceName", None)
    service = v if type(v) is str and v and v[0] > " " and v[-1] > " " and v != "-" else text(v)
    v = pop("ServiceSid", None)
    service_sid = _SIDS[v] if type(v) is str else _sid_of(v)
    v = pop("TicketOptions", None)
    options = nums(v, missing) if type(v) is str else (None if v is None else missing)
    if options is missing:
        options = _number(d, "TicketOptions", v, bad)
    name = "Status" if "Status" in d else "FailureCode"
    v = pop(name, None)
    code = nums(v, missing) if type(v) is str else (None if v is None else missing)
    if code is missing:
        code = _number(d, name, v, bad)
    code = code if code is not None and _INT32_MIN <= code < _INT32_END else None
    v = pop("TicketEncryptionType", None)
    etype = nums(v, missing) if type(v) is str else (None if v is None else missing)
    if etype is missing:
        etype = _number(d, "TicketEncryptionType", v, bad)
    v = pop("PreAuthType", None)
    preauth = nums(v, missing) if type(v) is str else (None if v is None else missing)
    if preauth is missing:
        preauth = _number(d, "PreAuthType", v, bad)

    row = _TEMPLATE.copy()
    row[0:7] = (ts, source, "evtx", rid, text(computer), SECURITY, eid)
    row[_C_SRC_IP] = src_ip
    row[_C_SRC_PORT] = port
    row[_C_PHASE] = "AS" if eid in AS_EVENTS else "TGS"
    row[_C_CLIENT] = user or None
    row[_C_CLIENT_REALM] = realm
    row[_C_CLIENT_SID] = client_sid
    row[_C_SERVICE] = service
    row[_C_SERVICE_SID] = service_sid
    row[_C_KDC_OPTIONS] = options
    if code:  # _int32(code) or None
        row[_C_ERROR_CODE] = code
        row[_C_ERROR_NAME] = error_name(code)
    row[_C_TICKET_ETYPE] = etype if etype is not None and _INT32_MIN <= etype < _INT32_END else None
    row[_C_PREAUTH_TYPE] = preauth if preauth is not None and _INT32_MIN <= preauth < _INT32_END else None
    if bad:
        row[_PARTIAL] = True
    if d:
        row[_EVENT_DATA] = _event_data(d)
    return _new_record(KrbRecord, row)
