"""The EVTX reader's pre-filter: which records' JSON may hold a Kerberos event, judged on the raw text.

It runs on every record of a log, before ``orjson`` decodes anything, so it has to cost less than the Rust
parser's own work per record (about 2 µs). It reads the provider name and EventID where the ``evtx`` package always
writes them (right after a fixed prefix, :data:`_JSON_PREFIX`) instead of searching for them, and the record loop
(:func:`parsers.evtx.rust_rows`) caches a verdict per distinct head of the JSON (:func:`security_verdict`). Every
test here is a superset of :func:`parsers.eventmap.is_kerberos`: a record it drops is one the mapping drops too.
"""

from __future__ import annotations

from typing import Final

from .eventmap import LOGON_EVENTS, SECURITY, SECURITY_EVENTS, SYSTEM_PROVIDERS, canonical_provider

#: How much of a record's JSON the pre-filter looks at: System (provider, EventID) comes first.
_PREFILTER_HEAD: Final = 640
_SECURITY_IDS: Final = frozenset(str(i) for i in SECURITY_EVENTS)
_LOGON_IDS: Final = frozenset(str(i) for i in LOGON_EVENTS)
_JSON_PREFIX: Final = (
    '{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},'
    '"System":{"Provider":{"#attributes":{"Name":"'
)
_JSON_PREFIX_LEN: Final = len(_JSON_PREFIX)
_JSON_PREFIX_TAIL: Final = _JSON_PREFIX[-40:]
_SECURITY_QUOTED: Final = SECURITY + '"'
_SECURITY_END: Final = _JSON_PREFIX_LEN + len(_SECURITY_QUOTED)
#: The Security-Auditing provider GUID is fixed, so in the usual layout EventID's value sits at a fixed offset.
SECURITY_HEAD: Final = _JSON_PREFIX_TAIL + SECURITY + '","Guid":"54849625-5478-4994-A5BA-3E3B0328C30D"}},"EventID":'
SECURITY_HEAD_AT: Final = _JSON_PREFIX_LEN - 40
SECURITY_EID_AT: Final = SECURITY_HEAD_AT + len(SECURITY_HEAD)
_SECURITY_EID_KEYS: Final = frozenset(f"{i}," for i in SECURITY_EVENTS)
#: How an EventID value that is not a plain number starts: text, or an object with Qualifiers and #text.
_ID_OPENERS: Final = ('"', "{")
VERDICT_END: Final = SECURITY_EID_AT + 5
_LPN_KEY: Final = '"LogonProcessName":'
_APN_KEY: Final = '"AuthenticationPackageName":'
#: The usual network logon over NTLM as the evtx package writes it (Windows pads "NtLmSsp" with a space).
_NTLM_PAIR: Final = '"LogonProcessName":"NtLmSsp ","AuthenticationPackageName":"NTLM"'
_NTLM_PAIR_AT: Final = len('"LogonProcessName":"NtLmSsp ",')
MAX_VERDICTS: Final = 4096
REJECT, KEEP, LOGON = 0, 1, 2  # see security_verdict


def wanted(data: str) -> bool:
    """Whether a record's JSON may hold an event :func:`parsers.eventmap.is_kerberos` keeps (a superset).

    This runs on every record of the log and has to cost less than the Rust parser's own work per record, so it
    reads the provider name where the ``evtx`` package always writes it (right after a fixed prefix) instead of
    searching for it; logons (4624/4625) pass only when their logon process or authentication package value holds
    "kerberos" in any letter case (:func:`logon_kerberos`).
    """
    if data.startswith(SECURITY_HEAD, SECURITY_HEAD_AT):
        # the bulk of a Security log: one comparison in C, one 5-character slice
        eid = data[SECURITY_EID_AT : SECURITY_EID_AT + 5]
        if eid in _SECURITY_EID_KEYS:
            return eid[:4] not in _LOGON_IDS or logon_kerberos(data)
        if not eid.startswith(_ID_OPENERS):
            return False
    # comparing the prefix's last characters is enough to know the layout; startswith at an offset copies nothing
    if not data.startswith(_JSON_PREFIX_TAIL, _JSON_PREFIX_LEN - 40):
        return _wanted_anywhere(data)
    if data.startswith(_SECURITY_QUOTED, _JSON_PREFIX_LEN):
        # ","Guid":"<36 or 38 characters>"}},"EventID": follows; str.find costs more than these direct checks
        k = _SECURITY_END + 9 + (38 if data.startswith("{", _SECURITY_END + 9) else 36)
        if data.startswith('"}},"EventID":', k):
            return _security_id_wanted(data, k + 4)
        i = data.find('"EventID":', _SECURITY_END, _PREFILTER_HEAD)
        return i != -1 and _security_id_wanted(data, i)
    end = data.find('"', _JSON_PREFIX_LEN)
    return canonical_provider(data[_JSON_PREFIX_LEN:end]) in SYSTEM_PROVIDERS


def security_verdict(head: str) -> int | None:
    """What the head of a record's JSON (``data[SECURITY_HEAD_AT:VERDICT_END]``) says about the record.

    ``REJECT``: a Security-Auditing event in the evtx package's layout (the provider's fixed prefix, then EventID)
    whose number the mapping never keeps; ``KEEP``: one whose number it keeps whatever the content; ``LOGON``: a
    4624/4625, kept when :func:`logon_kerberos` says so; ``None``: any other head, :func:`wanted` decides. The head
    holds the whole provider object and the EventID's first five characters, so the answer depends on nothing else
    and the reader keeps it per distinct head (a log has a few hundred distinct event numbers at most).
    """
    if not head.startswith(SECURITY_HEAD):
        return None
    eid = head[len(SECURITY_HEAD) :]
    if eid in _SECURITY_EID_KEYS:
        return LOGON if eid[:4] in _LOGON_IDS else KEEP
    if len(eid) < 5 or eid.startswith(_ID_OPENERS):
        return None
    return REJECT


def _security_id_wanted(data: str, i: int) -> bool:
    j = i + 10
    if data.startswith("{", j):  # {"#attributes":{"Qualifiers":...},"#text":4769}
        t = data.find('"#text":', j, j + 160)
        if t == -1:
            return False
        j = t + 8
    if data.startswith('"', j):  # some logs give the number as text
        j += 1
    eid = data[j : j + 4]
    if eid in _SECURITY_IDS and not data[j + 4 : j + 5].isdigit():
        return eid not in _LOGON_IDS or logon_kerberos(data)
    return False


def logon_kerberos(data: str) -> bool:
    """Whether a 4624/4625's JSON may name Kerberos as its authentication package or logon process, in any letter
    case (a superset of :func:`parsers.eventmap.is_kerberos`, which compares the stripped value case-blind).

    Each key's last occurrence is read, as the event dict keeps the last one. The usual NTLM network logon, both
    values side by side in the evtx package's layout, is rejected after one backward search.
    """
    k = data.rfind(_APN_KEY)
    if k != -1 and data.startswith(_NTLM_PAIR, k - _NTLM_PAIR_AT):
        if data.find(_LPN_KEY, k) == -1:  # no later LogonProcessName overrides the pair's (a short search)
            return False
    i = data.rfind(_LPN_KEY)
    start = min(i, k) if i != -1 and k != -1 else max(i, k)
    # both values lie after the earlier of the two keys: one case-blind search there (the tail of the event is
    # short and lowering it costs less than cutting the values out one by one)
    return start != -1 and "kerberos" in data[start:].lower()


def _wanted_anywhere(data: str) -> bool:
    """The pre-filter for JSON of another shape: search the head for the EventID and the provider spellings."""
    i = data.find('"EventID":', 0, _PREFILTER_HEAD)
    if i != -1 and _security_id_wanted(data, i):
        return True
    # provider names compare case-blind (canonical_provider), so the head does too; this shape is rare
    head = data[:_PREFILTER_HEAD].lower()
    return "kerberos" in head or "time-service" in head or "w32time" in head or "kdc" in head
