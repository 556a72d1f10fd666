"""Windows event -> :class:`KrbRecord`: the one mapping shared by every EVTX backend and every text format.

Event meanings and field layouts follow Microsoft's audit reference (``event-4768.md`` ... ``event-4773.md``,
``event-4624.md``, ``event-4625.md``, ``event-4738.md``, ``event-4742.md``, ``event-5136.md``) and MS-KILE; the
formatting traps each producer sets (hex padding, ``-`` for empty, ``::ffff:`` addresses, GUID spelling, the
``Qualifiers`` form of ``EventID``) are listed in ``docs/windows-events.md`` §4. Every reader first turns its input
into an :class:`Event` (text values as the producer wrote them), then :func:`to_record` normalises and maps it, so
the backends cannot drift apart.

Column choices (the README's column table): ``msg_type`` is null for events; ``phase`` AS (4768, 4771, 4772), TGS
(4769, 4770, 4773), AP (4624/4625 Kerberos logons and Security-Kerberos client events), null for KDC-service,
Time-Service and configuration rows; ``error_code`` from ``Status`` / ``FailureCode`` / ``ErrorCode`` (0 -> null),
or the code an event stands for (Security-Kerberos 4 = 0x29, KDC 11 = 0x8, KDC 14/16/27 = 0xE); ``ticket_etype``
0xffffffff (no ticket issued) -> null; port 0 (a local request) -> null; ``S-1-0-0`` (the NULL SID) -> null.
Whatever EventData is not a column stays in ``event_data`` as JSON, values normalised the same way (hex minimal
lower-case, GUIDs upper-case with braces, ``-``/empty -> null, multi-valued fields split into lists).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import orjson

from .krb5.constants import error_name
from .memo import Memo
from .record import FIELDS, KrbRecord, from_datetime

SECURITY: Final = "Microsoft-Windows-Security-Auditing"
KERBEROS_CLIENT: Final = "Microsoft-Windows-Security-Kerberos"
KDC: Final = "Microsoft-Windows-Kerberos-Key-Distribution-Center"
TIME_SERVICE: Final = "Microsoft-Windows-Time-Service"

#: Classic event-source names that older exports carry instead of the manifest provider name.
_PROVIDER_ALIASES: Final[dict[str, str]] = {
    "kerberos": KERBEROS_CLIENT,
    "security-kerberos": KERBEROS_CLIENT,
    "kdc": KDC,
    "kdcsvc": KDC,
    "microsoft-windows-kdcsvc": KDC,
    "w32time": TIME_SERVICE,
    "microsoft-windows-security-auditing": SECURITY,
}

AS_EVENTS: Final = frozenset({4768, 4771, 4772})
TGS_EVENTS: Final = frozenset({4769, 4770, 4773})
TICKET_EVENTS: Final = AS_EVENTS | TGS_EVENTS
LOGON_EVENTS: Final = frozenset({4624, 4625})
CHANGE_EVENTS: Final = frozenset({4738, 4742, 5136})
SECURITY_EVENTS: Final = TICKET_EVENTS | LOGON_EVENTS | CHANGE_EVENTS
SYSTEM_PROVIDERS: Final = frozenset({KERBEROS_CLIENT, KDC, TIME_SERVICE})

#: 4738/4742 ``UserAccountControl`` insertion strings that change Kerberos behaviour, enabled (%%209x) and
#: disabled (%%206x): trusted for delegation, use DES key only, don't require pre-auth, trusted to authenticate
#: for delegation (event-4738.md's table).
KERBEROS_UAC: Final = frozenset({"%%2061", "%%2063", "%%2064", "%%2066", "%%2093", "%%2095", "%%2096", "%%2098"})
#: 5136 attributes that change Kerberos behaviour.
KERBEROS_ATTRIBUTES: Final = frozenset(
    {
        "serviceprincipalname",
        "useraccountcontrol",
        "msds-allowedtodelegateto",
        "msds-allowedtoactonbehalfofotheridentity",
    }
)
#: The error an event stands for when it carries no code of its own.
IMPLIED_ERRORS: Final[dict[tuple[str, int], int]] = {
    (KERBEROS_CLIENT, 4): 0x29,  # KRB_AP_ERR_MODIFIED
    (KDC, 11): 0x8,  # KDC_ERR_PRINCIPAL_NOT_UNIQUE (duplicate SPN)
    (KDC, 14): 0xE,  # no suitable key for an AS request (16 and 27: for a TGS request)
    (KDC, 16): 0xE,  # KDC_ERR_ETYPE_NOTSUPP
    (KDC, 27): 0xE,
}
#: Fields whose value is a list separated by white space (insertion strings, SPNs, delegation targets).
LIST_FIELDS: Final = frozenset({"UserAccountControl", "ServicePrincipalNames", "AllowedToDelegateTo"})
#: Fields holding a NTSTATUS or hex number whatever the producer's padding.
HEX_FIELDS: Final = frozenset(
    {"Status", "SubStatus", "FailureCode", "TicketOptions", "TicketEncryptionType", "ErrorCode", "ExtendedError"}
)

NULL_SID: Final = "S-1-0-0"
_HEX_RE: Final = re.compile(r"0[xX][0-9a-fA-F]+")
_GUID_RE: Final = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?")
_KERBEROS_TIME_RE: Final = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))? (\d{1,2})/(\d{1,2})/(\d{4}) Z")
_DAYS: dict[str, int] = {}
_SPECIAL_FIRST: Final = frozenset("0{tTfF ")
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: Memos of pure functions of one value (numbers as text, provider names, addresses, SIDs, event_data objects): a
#: log repeats the same few spellings, and a look-up costs a fraction of the work. Each holds at most _MAX_MEMO
#: entries (the :class:`parsers.memo.Memo` ones start afresh when full, the others stop growing).
_MAX_MEMO: Final = 8192
_MISSING: Final = object()
_NUMS: dict[str, int | None] = {}
_MINUTES: dict[str, int] = {}
_EVENT_DATA_MEMO: dict[tuple[tuple[str, Any], ...], str] = {}
_MEMO_TYPES: Final = frozenset({str, int, type(None)})
_MEMO_TEXT: Final = 512


class Event(NamedTuple):
    """One event as a reader saw it: System fields plus EventData by name, values as the producer wrote them."""

    record_id: int | None
    event_id: int | None
    provider: str | None
    time_created: Any  # SystemTime as the producer wrote it (parsed only for events that are kept)
    computer: str | None
    data: dict[str, Any]
    version: int | None = None


def canonical_provider(name: str | None) -> str | None:
    """The manifest provider name of ``name`` (classic source names such as ``KDC`` mapped), else ``name``."""
    return _PROVIDERS[name] if name else None


def _canonical(name: str) -> str:
    return _PROVIDER_ALIASES.get(name.lower(), name)


def is_kerberos(event_id: int | None, provider: str | None, data: dict[str, Any]) -> bool:
    """Whether an event belongs in the Kerberos timeline (the corpus manifest's selection rule)."""
    if event_id in TICKET_EVENTS and provider == SECURITY:  # the bulk of the kept events first
        return True
    if provider in SYSTEM_PROVIDERS:
        return True
    if provider != SECURITY or event_id not in SECURITY_EVENTS:
        return False
    if event_id in TICKET_EVENTS:
        return True
    if event_id in LOGON_EVENTS:
        return any(
            (text(data.get(k)) or "").lower() == "kerberos" for k in ("AuthenticationPackageName", "LogonProcessName")
        )
    if event_id == 5136:
        return (text(data.get("AttributeLDAPDisplayName")) or "").lower() in KERBEROS_ATTRIBUTES
    uac = split_list(data.get("UserAccountControl")) or []
    return bool(
        KERBEROS_UAC.intersection(uac)
        or text(data.get("ServicePrincipalNames"))
        or text(data.get("AllowedToDelegateTo"))
    )


def text(value: Any) -> str | None:
    """A value as stripped text; ``-``, empty, ``null`` and missing become ``None``."""
    if type(value) is str:
        if value and value[0] > " " and value[-1] > " ":  # the usual case: nothing to strip
            return None if value == "-" else value
        value = value.strip()
        return None if value in ("", "-") else value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = " ".join(str(v) for v in value if v is not None)
    s = str(value).strip()
    return None if s in ("", "-") else s


def split_list(value: Any) -> list[str] | None:
    """A white-space separated multi-value (or a list of them) as a list; ``None`` when empty."""
    if isinstance(value, list):
        parts = [p for v in value for p in str(v).split() if v is not None]
    else:
        s = text(value)
        parts = s.split() if s else []
    parts = [p for p in parts if p != "-"]
    return parts or None


def parse_int(value: Any) -> int | None:
    """Hex (``0x17``, ``0x00000017``) or decimal text as an int; ``None`` when absent. Raises ``ValueError``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    s = text(value)
    if s is None:
        return None
    if s[:2] in ("0x", "0X"):
        return int(s, 16)
    return int(s, 10)


def parse_time(value: Any) -> int | None:
    """Microseconds since the epoch of an event time in any producer's spelling; ``None`` when absent.

    Windows writes 100 ns (7 fraction digits, ``Z``); the ``evtx`` package truncates to µs; python-evtx prints
    ``2015-08-08 09:34:46.123456+00:00``. Digits beyond the microsecond are truncated, as the ``evtx`` package does.
    Raises ``ValueError`` on text that is not a time.
    """
    if type(value) is str and len(value) == 27 and value[26] == "Z" and value[19] == ".":
        # the evtx package's form, 2015-08-08T09:34:46.843750Z: skip the general parser; the start of each minute
        # is memoised (a log has many events a minute)
        minute = _MINUTES.get(value[:16])
        if minute is None:
            day = _DAYS.get(value[:10])
            if day is None:
                day = _DAYS[value[:10]] = from_datetime(datetime.fromisoformat(value[:10] + "T00:00:00+00:00"))
            try:
                minute = day + (int(value[11:13]) * 3600 + int(value[14:16]) * 60) * 1_000_000
            except ValueError:
                pass
            else:
                if len(_MINUTES) < _MAX_MEMO:
                    _MINUTES[value[:16]] = minute
        if minute is not None:
            try:
                return minute + int(value[17:19]) * 1_000_000 + int(value[20:26])
            except ValueError:
                pass
    s = text(value)
    if s is None:
        return None
    m = _KERBEROS_TIME_RE.fullmatch(s)
    if m:  # Security-Kerberos 3 ClientTime / ServerTime: "14:31:27.0000 7/30/2019 Z", "23:4:2.0000 3/13/2026 Z"
        hh, mi, ss, frac, mo, dd, yy = m.groups()
        s = f"{yy}-{int(mo):02d}-{int(dd):02d}T{int(hh):02d}:{int(mi):02d}:{int(ss):02d}.{frac or '0'}Z"
    s = s.replace(" ", "T", 1)
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dot = s.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(s) and s[end].isdigit():
            end += 1
        s = s[: dot + 1] + s[dot + 1 : end][:6].ljust(6, "0") + s[end:]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:  # an export without an offset is UTC (SystemTime always is)
        dt = dt.replace(tzinfo=UTC)
    return from_datetime(dt)


def normal_value(name: str, value: Any) -> Any:
    """An EventData value normalised for ``event_data``: backend-independent spelling, ``None`` for empty."""
    if type(value) is str and name not in LIST_FIELDS:
        if value == "-" or value == "":
            return None
        # plain text needs no work: not hex, GUID or boolean shaped, nothing to strip, no control characters
        if value[0] not in _SPECIAL_FIRST and value[-1] != " " and len(value) != 36 and value.isprintable():
            return value
        # the two usual spellings that do need work, without the general steps below: they have nothing to
        # strip, and a hex number is not GUID shaped, a bare GUID (the evtx package's LogonGuid) is not hex
        if value[0] == "0" and _HEX_RE.fullmatch(value):
            return hex(int(value, 16))
        if len(value) == 36:
            m = _GUID_RE.fullmatch(value)
            if m:
                return "{" + m.group(1).upper() + "}"
    if name in LIST_FIELDS:
        return split_list(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    s = text(value)
    if s is None:
        return None
    first = s[0]
    if first == "0" and _HEX_RE.fullmatch(s):
        return hex(int(s, 16))
    if len(s) in (36, 38) and s.count("-") == 4:
        m = _GUID_RE.fullmatch(s)
        if m:
            return "{" + m.group(1).upper() + "}"
    if first in "tTfF" and s.lower() in ("true", "false"):
        return s.lower()
    return s if s.isprintable() else _CONTROL_RE.sub("", s)


def _ip(value: Any) -> str | None:
    return _IPS[value] if type(value) is str else _ip_of(value)


def _ip_of(value: Any) -> str | None:
    s = text(value)
    if s is None:
        return None
    if s.lower().startswith("::ffff:") and "." in s:
        s = s[7:]
    return s


def _sid(value: Any) -> str | None:
    return _SIDS[value] if type(value) is str else _sid_of(value)


def _sid_of(value: Any) -> str | None:
    s = text(value)
    return None if s is None or s == NULL_SID else s.upper()


_PROVIDERS = Memo(_canonical, _MAX_MEMO)
_IPS = Memo(_ip_of, _MAX_MEMO)
_SIDS = Memo(_sid_of, _MAX_MEMO)


def _num(d: dict[str, Any], name: str, bad: list[str]) -> int | None:
    """Pop ``name`` from ``d`` as an int; unreadable text goes back into ``d`` (kept in event_data) and ``bad``."""
    raw = d.pop(name, None)
    if raw is None:  # absent (4770 has no Status, 4768 no FailureCode): what parse_int(None) gives
        return None
    if type(raw) is str:
        # a log repeats a few spellings ("0x40810010", "0x12", "-") over and over: one look-up for those
        value = _NUMS.get(raw, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        # the usual spellings without parse_int's general path; int() strips white space as text() would, so every
        # value returned here is the one parse_int gives
        if raw[:2] == "0x":
            try:
                value = int(raw, 16)
            except ValueError:
                value = _MISSING
        elif raw == "-":
            value = None
        elif raw.isdigit() and raw.isascii():
            value = int(raw)
        if value is not _MISSING:
            if len(_NUMS) < _MAX_MEMO:
                _NUMS[raw] = value
            return value  # type: ignore[return-value]
    try:
        return parse_int(raw)
    except ValueError:
        d[name] = raw
        bad.append(name)
        return None


def _int32(value: int | None) -> int | None:
    """Only values that fit an Int32 column; 0xffffffff ("no ticket") and the like become ``None``."""
    return value if value is not None and -(2**31) <= value < 2**31 else None


# Column positions: rows are built as a list and turned into a KrbRecord in one step (tuple.__new__), which costs
# about a third of a keyword call with 50 fields.
_COL: Final = {name: i for i, name in enumerate(FIELDS)}
_TEMPLATE: Final[list[Any]] = [None] * len(FIELDS)
_new_record: Final = tuple.__new__
(_TS, _SOURCE, _KIND, _RECORD_NO, _HOST, _PROVIDER, _EVENT_ID) = range(7)
_SRC_IP, _SRC_PORT = _COL["src_ip"], _COL["src_port"]
_PHASE, _ERROR_CODE, _ERROR_NAME, _NT_STATUS = _COL["phase"], _COL["error_code"], _COL["error_name"], _COL["nt_status"]
_CLIENT, _CLIENT_REALM, _CLIENT_SID = _COL["client"], _COL["client_realm"], _COL["client_sid"]
_SERVICE, _SERVICE_REALM, _SERVICE_SID = _COL["service"], _COL["service_realm"], _COL["service_sid"]
_KDC_OPTIONS, _TICKET_ETYPE, _PREAUTH_TYPE = _COL["kdc_options"], _COL["ticket_etype"], _COL["preauth_type"]
_STIME, _CTIME, _PARTIAL, _EVENT_DATA = _COL["stime"], _COL["ctime"], _COL["partial"], _COL["event_data"]


def _security(eid: int, d: dict[str, Any], bad: list[str], row: list[Any]) -> None:
    pop = d.pop
    if eid in TICKET_EVENTS or eid in LOGON_EVENTS:
        row[_SRC_IP] = _ip(pop("IpAddress", None))
        row[_SRC_PORT] = _num(d, "IpPort", bad) or None
    if eid in TICKET_EVENTS:
        row[_PHASE] = "AS" if eid in AS_EVENTS else "TGS"
        raw_user = pop("TargetUserName", None)
        user = text(raw_user)
        realm = text(pop("TargetDomainName", None))
        if user and "@" in user and eid in TGS_EVENTS:
            # 4769/4770 write the UPN form user@REALM; the original stays in event_data
            d["TargetUserName"] = raw_user
            user, _, upn_realm = user.rpartition("@")
            realm = realm or upn_realm or None
        row[_CLIENT] = user or None
        row[_CLIENT_REALM] = realm
        row[_CLIENT_SID] = _sid(pop("TargetSid", None))
        row[_SERVICE] = text(pop("ServiceName", None))
        row[_SERVICE_SID] = _sid(pop("ServiceSid", None))
        row[_KDC_OPTIONS] = _num(d, "TicketOptions", bad)
        code = _num(d, "Status", bad) if "Status" in d else _num(d, "FailureCode", bad)
        row[_ERROR_CODE] = _int32(code) or None
        row[_TICKET_ETYPE] = _int32(_num(d, "TicketEncryptionType", bad))
        row[_PREAUTH_TYPE] = _int32(_num(d, "PreAuthType", bad))
    elif eid in LOGON_EVENTS:
        row[_PHASE] = "AP"
        row[_CLIENT] = text(pop("TargetUserName", None))
        row[_CLIENT_REALM] = text(pop("TargetDomainName", None))
        row[_CLIENT_SID] = _sid(pop("TargetUserSid", None))
        if eid == 4625:
            status, sub = _num(d, "Status", bad), _num(d, "SubStatus", bad)
            row[_NT_STATUS] = sub or status or None
    elif eid == 5136:
        row[_CLIENT] = text(pop("ObjectDN", None))
    else:  # 4738 / 4742
        row[_CLIENT] = text(pop("TargetUserName", None))
        row[_CLIENT_REALM] = text(pop("TargetDomainName", None))
        row[_CLIENT_SID] = _sid(pop("TargetSid", None))


#: Where a Security-Kerberos client event names the service, best first. Event 3's fields (provider manifest):
#: LogonSession, ClientTime, ServerTime, ErrorCode, ErrorMessage, ExtendedError, ClientRealm, ClientName,
#: ServerRealm, ServerName (the SPN), TargetName (SPN@REALM), ErrorText, File, Line; event 4's: Server (the
#: server's account), TargetRealm, Targetname (the SPN the client asked for, spelt with a lower-case "n"),
#: ClientRealm. The SPN is what the diagnoses need (the duplicate or misplaced SPN of a KRB_AP_ERR_MODIFIED).
_CLIENT_EVENT_SERVICE: Final = ("ServerName", "TargetName", "Targetname", "Server")
_CLIENT_EVENT_REALM: Final = ("ServerRealm", "TargetRealm")
#: Where a KDC (System log) event names the service or principal it is about: Target (14, 16, 26, 27: "while
#: processing a request for target service ..."), Principal (3), ServiceName; event 11 (duplicate name) is Name
#: in the manifest and the first unnamed insertion string in the classic "KDC" source's events.
_KDC_SERVICE: Final = ("Target", "ServiceName", "Principal")
_KDC_DUPLICATE_NAME: Final = ("Name", "Data[0]")


def _first_named(d: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` with a value, taken out of ``d`` (the others stay in ``event_data``)."""
    for name in names:
        value = text(d.get(name))
        if value:
            del d[name]
            return value
    return None


def _kerberos_client(d: dict[str, Any], bad: list[str], row: list[Any]) -> None:
    pop = d.pop
    row[_PHASE] = "AP"
    row[_ERROR_CODE] = _int32(_num(d, "ErrorCode", bad)) or None
    row[_CLIENT] = text(pop("ClientName", None))
    row[_CLIENT_REALM] = text(pop("ClientRealm", None))
    row[_SERVICE] = _first_named(d, _CLIENT_EVENT_SERVICE)
    row[_SERVICE_REALM] = _first_named(d, _CLIENT_EVENT_REALM)
    for col, name in ((_STIME, "ServerTime"), (_CTIME, "ClientTime")):
        raw = pop(name, None)
        try:
            row[col] = parse_time(raw)
        except ValueError:
            d[name] = raw
            bad.append(name)
    row[_NT_STATUS] = _num(d, "ExtendedError", bad) or None


def event_data_json(d: dict[str, Any]) -> str:
    """The ``event_data`` JSON of the fields no column took: values normalised, keys sorted (so the text depends on
    the fields and values only, not on their order in ``d``)."""
    return orjson.dumps({k: normal_value(k, v) for k, v in d.items()}, option=orjson.OPT_SORT_KEYS).decode()


def _event_data(d: dict[str, Any], compute: Callable[[dict[str, Any]], str] = event_data_json) -> str:
    """:func:`event_data_json`, memoised: events of one kind often leave the same fields (empty certificate
    fields, constant flags). Only text, int and null values make a key: ``1 == True == 1.0`` would mix values that
    normalise differently, and lists are not hashable. ``compute`` is an equal function to compute it with
    (:func:`parsers.eventfast.event_data_text`)."""
    for v in d.values():
        if type(v) not in _MEMO_TYPES:
            return compute(d)
    key = tuple(d.items())
    out = _EVENT_DATA_MEMO.get(key)
    if out is None:
        out = compute(d)
        if len(out) <= _MEMO_TEXT and len(_EVENT_DATA_MEMO) < _MAX_MEMO:  # small entries only: bounded memory
            _EVENT_DATA_MEMO[key] = out
    return out


def to_record(ev: Event, source: str, source_kind: str) -> KrbRecord | None:
    """The timeline row of one event, or ``None`` when the event is not Kerberos-related.

    An unreadable number leaves its column null, stays in ``event_data`` and marks the row ``partial``. Raises
    ``ValueError`` for a kept event without a usable ``TimeCreated`` (it cannot be placed; callers count it).
    """
    provider = canonical_provider(ev.provider)
    eid = ev.event_id
    if eid is None or not is_kerberos(eid, provider, ev.data):
        return None
    ts = parse_time(ev.time_created)
    if ts is None:
        raise ValueError("event without TimeCreated")
    d = dict(ev.data)
    bad: list[str] = []
    row = _TEMPLATE.copy()
    if provider == SECURITY:
        _security(eid, d, bad, row)
    elif provider == KERBEROS_CLIENT:
        _kerberos_client(d, bad, row)
    elif provider == KDC:  # "The duplicate name is %1 (of type %2)" for 11
        row[_SERVICE] = _first_named(d, _KDC_DUPLICATE_NAME if eid == 11 else _KDC_SERVICE)
    code = row[_ERROR_CODE] or IMPLIED_ERRORS.get((provider or "", eid))
    row[_ERROR_CODE] = code
    row[_ERROR_NAME] = error_name(code)
    row[_TS] = ts
    row[_SOURCE] = source
    row[_KIND] = source_kind
    row[_RECORD_NO] = ev.record_id
    row[_HOST] = text(ev.computer)
    row[_PROVIDER] = provider
    row[_EVENT_ID] = eid
    if bad:
        row[_PARTIAL] = True
    if d:
        row[_EVENT_DATA] = _event_data(d)
    return _new_record(KrbRecord, row)
