"""The EVTX reader's per-record fast path: an ``orjson`` event dict -> :class:`KrbRecord` in one step.

:func:`row_from_json` gives exactly what the general path ``to_record(event_from_json(obj), source, "evtx")``
gives (the same row, the same ``None``, the same exception with the same text), only cheaper for what a DC's
Security log is made of: Security-Auditing events in the ``evtx`` package's usual shape (``EventID`` and
``EventRecordID`` plain numbers, named ``Data`` as a flat object). Anything else (other providers, a lower-case
provider name, ``EventID`` with ``Qualifiers``, ``Data``/``Binary``/``UserData`` elements, a part that is not an
object) goes to the general path whole.

What it saves (issue 3's profile of the general path, about 6 µs a kept row besides ``orjson.loads``):

* for every Security event: the intermediate :class:`parsers.eventmap.Event`, the provider canonicalisation (the
  name is compared with the manifest name, its own canonical name) and one of the two copies of ``EventData``;
* for the ticket events 4768-4773, the bulk of a DC's Kerberos events: the helper call per field (``_num`` x5,
  ``text`` x4, ``_sid`` x2, ``_ip``, ``parse_time``, ``error_name``), the copy of ``EventData`` and the pops, and
  ``_event_data``'s key of all the fields left. The fields are picked in one call per event by where the event's
  layout (:class:`_Shape`, by its keys in order) has them; the columns that follow from values that repeat
  (host, realm, options, status, etypes: :func:`_template`) come from a memo of ready rows; the columns that vary
  (address, port, user, SIDs, service) use the general path's memos (``_IPS``, ``_SIDS``) or ``text``'s first
  test; ``event_data`` is remembered per layout by the values left.

Why each shortcut gives the general path's value is said where it is taken. ``tests/test_eventfast.py`` compares
both paths on every record of the corpus and the samples, and on generated odd events (the general path run with
every memo emptied, so that nothing this module remembers can leak into the reference).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any, Final

import orjson

from .eventmap import (
    _EVENT_DATA,
    _IPS,
    _MINUTES,
    _PARTIAL,
    _SIDS,
    _TEMPLATE,
    AS_EVENTS,
    IMPLIED_ERRORS,
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
    is_kerberos,
    normal_value,
    parse_time,
    text,
    to_record,
)
from .eventparse import event_from_json
from .krb5.constants import error_name
from .memo import Memo
from .record import FIELDS, KrbRecord

__all__ = ["row_from_json"]

_COL: Final = {name: i for i, name in enumerate(FIELDS)}
_C_ERROR_CODE: Final = _COL["error_code"]
_C_ERROR_NAME: Final = _COL["error_name"]
_C_SRC_IP, _C_SRC_PORT, _C_PHASE = _COL["src_ip"], _COL["src_port"], _COL["phase"]
_C_CLIENT, _C_CLIENT_REALM, _C_CLIENT_SID = _COL["client"], _COL["client_realm"], _COL["client_sid"]
_C_SERVICE, _C_SERVICE_SID, _C_KDC_OPTIONS = _COL["service"], _COL["service_sid"], _COL["kdc_options"]
_C_TICKET_ETYPE, _C_PREAUTH_TYPE = _COL["ticket_etype"], _COL["preauth_type"]


def _general(obj: Any, source: str) -> KrbRecord | None:
    return to_record(event_from_json(obj), source, "evtx")


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
    # 4624/4625/4738/4742/5136: to_record's own steps, without the Event and its copy of EventData; is_kerberos
    # only reads named fields, so "#attributes" (not yet dropped) does not change its answer
    if not is_kerberos(eid, SECURITY, ed):
        return None
    ts = parse_time(created)
    if ts is None:
        raise ValueError("event without TimeCreated")
    return _by_fields(eid, rid, ts, system.get("Computer"), ed, source)


def _by_fields(eid: int, rid: int, ts: int, computer: Any, ed: dict[str, Any], source: str) -> KrbRecord:
    """The rest of ``to_record`` for a kept Security-Auditing event, through ``_security`` itself."""
    d = ed.copy()
    d.pop("#attributes", None)
    bad: list[str] = []
    row = _TEMPLATE.copy()
    _security(eid, d, bad, row)
    code = row[_C_ERROR_CODE] = row[_C_ERROR_CODE] or IMPLIED_ERRORS.get((SECURITY, eid))
    row[_C_ERROR_NAME] = error_name(code)
    row[0:7] = (ts, source, "evtx", rid, text(computer), SECURITY, eid)
    if bad:
        row[_PARTIAL] = True
    if d:
        # a long object (a 4624 leaves 10-25 fields, among them a logon ID and a LogonGuid) does not repeat as a
        # whole, and is too long for _event_data's memo anyway: its pieces are what repeats
        row[_EVENT_DATA] = event_data_text(d) if len(d) > _WHOLE_FIELDS else _event_data(d, event_data_text)
    return _new_record(KrbRecord, row)


def _ticket_row(eid: int, rid: int, created: Any, computer: Any, ed: dict[str, Any], source: str) -> KrbRecord:
    """``to_record`` for 4768-4773: the time, then the row from the shape's and the template's memos.

    TimeCreated: ``parse_time``'s own first test and sum, ``minute + int(ss) * 1_000_000 + int(µs)``, with the
    first two terms remembered per second (a busy DC logs many events a second) and the minute taken from
    ``parse_time``'s memo (so only a minute ``parse_time`` has read is used); anything else is ``parse_time``'s.

    Then, when the fields are spelled the usual way, the row is a copy of a template (the columns that follow
    from the values that repeat, see :func:`_template`) with the columns that vary from event to event written
    in: address and SIDs through the general path's memos (``_ip`` and ``_sid`` are those look-ups for a
    ``str``), user and service through ``text``'s own first test (a ``str`` that starts and ends above ``" "``
    and is not ``"-"`` is returned as it is), the port as ``int`` of ASCII digits (``_num``'s value for those).
    Anything else (an unreadable number, a port that is not plain digits, a list or an object where text
    belongs) goes to :func:`_ticket_fields`, which maps it field by field as ``_security`` does.
    """
    ts: Any = None
    if type(created) is str and len(created) == 27 and created[26] == "Z" and created[19] == ".":
        second = _SECONDS.get(created[:19])
        if second is None:
            minute = _MINUTES.get(created[:16])
            if minute is not None:
                try:
                    second = _SECONDS.keep(created[:19], minute + int(created[17:19]) * 1_000_000)
                except ValueError:
                    second = None
        if second is not None:
            try:
                ts = second + int(created[20:26])
            except ValueError:
                ts = None
    if ts is None:
        ts = parse_time(created)
        if ts is None:
            raise ValueError("event without TimeCreated")
    shape = _SHAPES[tuple(ed)]
    vals = (*ed.values(), None)  # the None stands for the fields this shape lacks
    # (unpacked name by name, and the key written out: a starred unpack or key costs more than all the rest here)
    ip, port, raw_user, tsid, svc, ssid, domain, options, code, etype, preauth = shape.take(vals)
    key = (eid, computer, source, domain, options, code, etype, preauth)
    try:
        tmpl = _TEMPLATES.get(key)
    except TypeError:  # an unhashable value (a list, an object): not a usual spelling
        tmpl = None
    if tmpl is None:
        tmpl = _template(key)
        if tmpl is None:
            return _by_fields(eid, rid, ts, computer, ed, source)
    if type(port) is str and port.isdigit() and port.isascii():
        port = int(port) or None  # _num's value for ASCII digits, "or None" as in _security
    elif port == "-" or port == "":
        port = None  # _num's value (and not unreadable)
    elif port is not None:
        return _by_fields(eid, rid, ts, computer, ed, source)
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
        rest = (*shape.rest(vals), raw_user)  # TargetUserName stays in event_data, as the last of the fields left
    elif shape.names:
        row[_C_CLIENT] = user
        rest = shape.rest(vals)
    else:
        row[_C_CLIENT] = user
        return _new_record(KrbRecord, row)
    out = None
    if shape.stored < _MAX_STORED:  # (a layout whose fields left vary is not looked up whole)
        try:
            out = _DATA.get((shape, rest))
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

    __slots__ = ("names", "rest", "stored", "take")

    def __init__(self, keys: tuple[str, ...]) -> None:
        code = "Status" if "Status" in keys else "FailureCode"
        taken = (*_VARYING, "TargetDomainName", "TicketOptions", code, "TicketEncryptionType", "PreAuthType")
        where = {k: i for i, k in enumerate(keys)}
        self.take = itemgetter(*(where.get(name, len(keys)) for name in taken))
        self.names = tuple(k for k in keys if k not in taken and k != "#attributes")
        picks = [where[k] for k in self.names]
        self.rest: Callable[[tuple[Any, ...]], tuple[Any, ...]]
        if len(picks) > 1:
            self.rest = itemgetter(*picks)
        elif picks:  # itemgetter of one index gives the value itself, not a tuple
            self.rest = lambda vals, i=picks[0]: (vals[i],)
        else:
            self.rest = lambda vals: ()
        #: event_data texts remembered for this layout: past _MAX_STORED, its fields left vary from event to event
        #: (a LogonGuid, a user's UPN), and looking them up whole only costs
        self.stored = 0

    def event_data(self, rest: tuple[Any, ...]) -> str:
        """``_event_data`` of the fields left (``rest``: the values of ``names``, then the raw ``TargetUserName``
        when a UPN split kept it): the same text, as ``event_data_json`` depends on the fields and values only.
        Remembered when every value is text or null: then a tuple equal to ``rest`` holds the very same values
        (a ``str`` equals only a ``str``), whereas ``1 == 1.0 == True`` would mix values that normalise apart."""
        names = self.names if len(rest) == len(self.names) else (*self.names, "TargetUserName")
        out = event_data_text(dict(zip(names, rest, strict=True)))
        if self.stored < _MAX_STORED and len(out) <= _MAX_DATA_TEXT and set(map(type, rest)) <= _TEXT_OR_NULL:
            _DATA.keep((self, rest), out)
            self.stored += 1
        return out


#: Ticket events' EventData layouts, by their keys in order (a log has a handful).
_SHAPES: Final = Memo(_Shape, 256)
#: Ticket rows' columns that follow from few values (see _template), by those values.
_TEMPLATES: Final = Memo(None, 4096)
#: TimeCreated's second -> µs since the epoch of its start (see _ticket_row).
_SECONDS: Final = Memo(None, 4096)
#: event_data by (shape, values left), for values that are all text or null (see _Shape.event_data): one memo
#: for all shapes, so that memory stays bounded however many layouts a log has.
_DATA: Final = Memo(None, 8192)
_TEXT_OR_NULL: Final = frozenset({str, type(None)})
_MAX_DATA_TEXT: Final = 512
#: ``"key":value`` texts of event_data items by (key, value) (see event_data_text).
_PIECES: Final = Memo(None, 16384)
_MAX_PIECE: Final = 300
#: Pieces remembered per field name (see event_data_text), and the most remembered for one field or layout.
_STORED: Final = Memo(None, 4096)
_MAX_STORED: Final = 512
#: Values whose pieces are remembered: not float (-0.0 == 0.0, with different texts), not list or object.
_SCALARS: Final = frozenset({str, int, bool, type(None)})
#: The sorted keys of the objects event_data_text puts together (_Order), by their keys in order (a log has a
#: handful).
_ORDERS: Final = Memo(None, 256)
#: Fields left beyond which event_data is not looked up whole (see _by_fields).
_WHOLE_FIELDS: Final = 8
#: This module's own memos (for tests that run it on a clean state).
MEMOS: Final[list[dict[Any, Any]]] = [_SHAPES, _TEMPLATES, _SECONDS, _DATA, _PIECES, _ORDERS, _STORED]


#: The fields ``_security`` takes for a ticket event: those that vary from event to event, then (with the code
#: field chosen per shape between them) those that take few values.
_VARYING: Final = ("IpAddress", "IpPort", "TargetUserName", "TargetSid", "ServiceName", "ServiceSid")


def _template(key: tuple[Any, ...]) -> list[Any] | None:
    """The row columns of a ticket event that follow from few values: host, realm, options, code, error name,
    ticket etype, pre-auth type (and source, provider, event ID, phase), remembered by those values, ``key`` =
    (EventID, Computer, source, TargetDomainName, TicketOptions, Status or FailureCode, TicketEncryptionType,
    PreAuthType).

    ``None`` (and nothing remembered) unless every value is text or null and every number is readable: then the
    key equals only keys of the same values (a ``str`` equals only a ``str``), and no field is left for
    ``event_data`` or marks the row ``partial``. The values are the general helpers' (``text``, ``_num``)."""
    eid, computer, source, domain, *numbers = key
    if type(computer) is not str or not set(map(type, key[3:])) <= _TEXT_OR_NULL:
        return None
    bad: list[str] = []
    options, code, etype, preauth = (_num({"v": raw}, "v", bad) for raw in numbers)
    if bad:
        return None
    code = _int32(code) or IMPLIED_ERRORS.get((SECURITY, eid))  # _security's "or None", then to_record's
    row = _TEMPLATE.copy()
    row[0:7] = (None, source, "evtx", None, text(computer), SECURITY, eid)
    row[_C_PHASE] = "AS" if eid in AS_EVENTS else "TGS"
    row[_C_CLIENT_REALM] = text(domain)
    row[_C_KDC_OPTIONS] = options
    row[_C_ERROR_CODE] = code
    row[_C_ERROR_NAME] = error_name(code)
    row[_C_TICKET_ETYPE] = _int32(etype)
    row[_C_PREAUTH_TYPE] = _int32(preauth)
    return _TEMPLATES.keep(key, row)


class _Order:
    """An object's keys in sorted order, and a getter of its values in that order (one C call)."""

    __slots__ = ("order", "prefixes", "values")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.order = tuple(sorted(keys))
        #: each key's ``"key":`` text, as orjson writes a key (escaped as a string value is)
        self.prefixes = tuple(orjson.dumps(k).decode() + ":" for k in self.order)
        self.values: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            itemgetter(*self.order) if len(self.order) > 1 else (lambda d, k=self.order[0]: (d[k],))
        )


def event_data_text(d: dict[str, Any]) -> str:
    """``event_data_json(d)``, put together from remembered pieces: a log repeats most values of the fields left
    (``"-"``, ``"0x0"``, ``"%%1833"``, empty certificate fields) while one or two vary (a logon ID, a LogonGuid),
    so whole objects seldom repeat (and a 4624's is longer than ``_event_data`` keeps) but most fields do.

    ``orjson.dumps`` of a dict with sorted keys is ``{`` + the ``"key":value`` texts of its items, in key order,
    joined by ``,`` + ``}``: compact, each item's text independent of the others, the key written as a string
    value is. So each item's text is ``"key":`` + its value's text, remembered by ``(key, value, type of value)``
    for text, integers, booleans and null (the type keeps ``1`` and ``True`` apart: equal, with different texts; a
    ``str`` equals only a ``str``), not for a float (``-0.0 == 0.0``), a list or an object, nor when longer than
    :data:`_MAX_PIECE`; and the keys are sorted as ``orjson`` sorts them (by their UTF-8 bytes, which is code point
    order, Python's own ``str`` order). The look-ups run in C (``zip``, ``map``): a Python loop over 20 fields
    costs more than the work it saves. ``tests/test_eventfast.py`` compares it with ``event_data_json`` on
    generated objects.
    """
    if not d:
        return "{}"
    layout = _ORDERS.get(keys := tuple(d))
    if layout is None:
        layout = _ORDERS.keep(keys, _Order(keys))
    values = layout.values(d)
    pieces_keys = list(zip(layout.order, values, map(type, values), strict=True))
    try:
        parts = list(map(_PIECES.get, pieces_keys))
    except TypeError:  # a list or an object among the values: not remembered
        parts = [None] * len(pieces_keys)
    if None in parts:
        for i, p in enumerate(parts):
            if p is None:
                k, v, _ = key = pieces_keys[i]
                parts[i] = piece = layout.prefixes[i] + orjson.dumps(normal_value(k, v)).decode()
                if len(piece) <= _MAX_PIECE and type(v) in _SCALARS:
                    stored = _STORED.get(k, 0)
                    if stored < _MAX_STORED:  # past it, the field's values vary (a logon ID): not remembered
                        _STORED.keep(k, stored + 1)
                        _PIECES.keep(key, piece)
    return "{" + ",".join(parts) + "}"
