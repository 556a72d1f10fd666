"""``row_from_json`` (the EVTX reader's fast path) against the general path it stands for.

The reference is ``to_record(event_from_json(obj), source, "evtx")``, run with every memo emptied, so that nothing
the fast path remembers can leak into it; the fast path runs on its own memo state (kept from example to example, so
a wrong memo entry would show on a later example), once cold and once warm. Outcomes compare whole: the row tuple,
or ``None``, or the exception's type and text (what the reader writes into its report).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import eventfast, eventmap
from parsers.eventfast import row_from_json
from parsers.eventmap import SECURITY, to_record
from parsers.eventparse import event_from_json
from tests.conftest import SAMPLES, corpus_path

SOURCE = "src.evtx"


def _memos() -> list[dict[Any, Any]]:
    """Every memo the two paths read or fill."""
    return [
        eventmap._NUMS,
        eventmap._MINUTES,
        eventmap._DAYS,
        eventmap._EVENT_DATA_MEMO,
        eventmap._PROVIDERS,
        eventmap._IPS,
        eventmap._SIDS,
        *eventfast.MEMOS,
    ]


def _outcome(fn: Callable[[Any, str], Any], obj: Any) -> tuple[Any, ...]:
    try:
        row = fn(obj, SOURCE)
    except Exception as exc:  # the type decides how the reader counts it, the text is what it reports
        return ("raises", type(exc), str(exc))
    return ("row", None if row is None else tuple(row))


def _general(obj: Any, source: str) -> Any:
    return to_record(event_from_json(obj), source, "evtx")


class Paths:
    """The reference with empty memos, the fast path with the memos it has filled itself."""

    def __init__(self) -> None:
        self.fast_state = [{} for _ in _memos()]

    def _swap(self, state: list[dict[Any, Any]]) -> list[dict[Any, Any]]:
        old = []
        for memo, saved in zip(_memos(), state, strict=True):
            old.append(dict(memo))
            memo.clear()
            memo.update(saved)
        return old

    def compare(self, obj: Any) -> tuple[Any, ...]:
        saved = self._swap([{} for _ in _memos()])
        try:
            want = _outcome(_general, copy.deepcopy(obj))
            self._swap(self.fast_state)
            cold = _outcome(row_from_json, copy.deepcopy(obj))
            warm = _outcome(row_from_json, copy.deepcopy(obj))
            self.fast_state = self._swap(saved)
        except BaseException:
            self._swap(saved)
            raise
        assert cold == want, obj
        assert warm == want, obj
        # the reader counts ValueError (EventShapeError, an unusable time, orjson's JSONDecodeError) and nothing else
        assert want[0] == "row" or issubclass(want[1], ValueError), want
        return want


def _records(path: Path) -> Iterator[str]:
    """The JSON text of every record the ``evtx`` package delivers (resuming after records it cannot read)."""
    from evtx import PyEvtxParser

    records = PyEvtxParser(str(path), number_of_threads=1).records_json()
    while True:
        try:
            for rec in records:
                yield rec["data"]
            return
        except RuntimeError:
            continue


def test_every_record_of_the_corpus_and_samples() -> None:
    """All records (not only the pre-filter's): every provider, every shape these logs have."""
    files = sorted((SAMPLES / "evtx").glob("*.evtx")) + sorted(corpus_path("evtx").rglob("*.evtx"))
    paths = Paths()
    kinds: dict[str, int] = {}
    for path in files:
        for data in _records(path):
            got = paths.compare(orjson.loads(data))
            kind = got[0] if got[0] == "raises" else ("none" if got[1] is None else "row")
            kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds.get("row", 0) > 500 and kinds.get("none", 0) > 10000


def test_every_record_of_the_samples() -> None:
    paths = Paths()
    rows = [paths.compare(orjson.loads(d)) for f in sorted((SAMPLES / "evtx").glob("*.evtx")) for d in _records(f)]
    assert sum(1 for r in rows if r[0] == "row" and r[1] is not None) >= 20


# --- generated events: the samples' Kerberos events with their values and System fields spelled oddly ---


def _base_events() -> list[dict[str, Any]]:
    out = []
    for f in sorted((SAMPLES / "evtx").glob("*.evtx")):
        for data in _records(f):
            obj = orjson.loads(data)
            if _general(obj, SOURCE) is not None:
                out.append(obj)
    return out


BASE = _base_events()
FIELD_NAMES = sorted(
    {k for obj in BASE if isinstance(obj["Event"].get("EventData"), dict) for k in obj["Event"]["EventData"]}
    | {"FailureCode", "Status", "SubStatus", "TargetSid", "PreAuthType", "#attributes", "Data", "Binary", "X"}
)
#: Spellings that test each shortcut's edge ("|"-separated: several hold spaces).
ODD_SPELLINGS = tuple(
    (
        "0x17|0x00000017| 0x12 |0X12|0x|0xZZ|0x_1f|-|| | - |17|0|00|٣|²|-5|+5|1_000|4294967295|0xffffffff|0x80000000|"
        "0x7fffffff|999999999999999999999999999999|user@REALM|@REALM|user@|a@b@C|user@realm.test|::ffff:10.0.0.1|"
        "::FFFF:10.0.0.1|::ffff:abcd|::1|10.0.0.1| 10.0.0.1|S-1-0-0|s-1-5-21-1-2-3-500|S-1-5-18|krbtgt|krbtgt/EXAMPLE|"
        "Kerberos|kerberos |NTLM|%%2096|%%2061 %%2064|true|False|\u00a0x\u00a0|a\x01b|"
        "{ed64bb93-0a48-4c4b-8f5a-54dc1c0a2a5b}|ED64BB93-0A48-4C4B-8F5A-54DC1C0A2A5B|serviceprincipalname|"
        "2026-01-15T09:00:00.000300Z|14:31:27.0000 7/30/2019 Z"
    ).split("|")
)
ODD_TEXT = st.sampled_from(ODD_SPELLINGS)
ODD_VALUE = st.one_of(
    ODD_TEXT,
    st.text(max_size=8),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.one_of(ODD_TEXT, st.none(), st.integers(0, 99)), max_size=3),
    st.fixed_dictionaries({"#text": ODD_TEXT}),
)
ODD_TIME = st.sampled_from(
    [
        *(
            "2026-01-15T09:00:00.000300Z|2026-01-15T09:00:00.0003001Z|2026-01-15T09:00:00Z|2026-01-15 09:00:00|"
            "2026-01-15T09:0x:00.000300Z|2026-01-15T09:00:+5.000300Z|2026-01-15T09:00:00. 00300Z|"
            "2026-01-15T09:00:00.00030٣Z|2026-13-15T09:00:00.000300Z|2015-08-08 09:34:46.123456+00:00||-|garbage|"
            "2026-01-15T09:59:59.999999Z|2026-01-15T24:00:00.000000Z"
        ).split("|"),
        None,
        5,
        ["2026-01-15T09:00:00.000300Z"],
    ]
)


@st.composite
def odd_events(draw: st.DrawFn) -> dict[str, Any]:
    obj = copy.deepcopy(draw(st.sampled_from(BASE)))
    event = obj["Event"]
    system, ed = event["System"], event["EventData"]
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(READ_FIELDS) if draw(st.booleans()) else st.sampled_from(FIELD_NAMES))
        action = draw(st.sampled_from(["set", "set", "set", "delete"]))
        if action == "delete":
            ed.pop(name, None)
        else:
            ed[name] = draw(ODD_TEXT if draw(st.booleans()) else ODD_VALUE)
    if draw(st.integers(0, 3)) == 0:
        part = draw(
            st.sampled_from(["EventID", "EventRecordID", "Provider", "TimeCreated", "Computer", "EventData", "Event"])
        )
        if part == "EventID":
            eid = system["EventID"]
            eid = eid["#text"] if isinstance(eid, dict) else eid
            system["EventID"] = draw(
                st.sampled_from(
                    [
                        {"#attributes": {"Qualifiers": 0}, "#text": eid},
                        {"#attributes": {"Qualifiers": 0}, "#text": str(eid)},
                        str(eid),
                        float(eid),
                        True,
                        None,
                        eid + 1,
                        *(4768, 4769, 4770, 4771, 4772, 4773, 4624, 4625, 4738, 4742, 5136, 4672),
                    ]
                )
            )
        elif part == "EventRecordID":
            system["EventRecordID"] = draw(st.sampled_from([None, "12", True, 1.5, {"#text": 3}, -1, 2**63]))
        elif part == "Provider":
            system["Provider"] = draw(
                st.sampled_from(
                    [
                        {"#attributes": {"Name": SECURITY.lower()}},
                        {"#attributes": {"EventSourceName": SECURITY}},
                        {"#attributes": {"Name": "", "EventSourceName": SECURITY}},
                        {"#attributes": {"Name": "Microsoft-Windows-Security-Kerberos"}},
                        {"#attributes": {"Name": "KDC"}},
                        {"#attributes": {}},
                        {"#attributes": "x"},
                        {"#attributes": [SECURITY]},
                        {"#attributes": {"Name": [SECURITY]}},
                        {},
                        SECURITY,
                    ]
                )
            )
        elif part == "TimeCreated":
            system["TimeCreated"] = {"#attributes": {"SystemTime": draw(ODD_TIME)}}
        elif part == "Computer":
            system["Computer"] = draw(ODD_VALUE)
        elif part == "EventData":
            event["EventData"] = draw(
                st.sampled_from([None, "text", 5, [], [ed], {"Data": ["a", "b"]}, {"Data": {"#text": "x"}}])
            )
        else:
            event[draw(st.sampled_from(["UserData", "X"]))] = {"A": {"B": "c"}}
    return obj


_PATHS = Paths()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(odd_events())
def test_odd_events_give_the_general_path_outcome(obj: dict[str, Any]) -> None:
    _PATHS.compare(obj)


#: Fields some column is read from (those the fast path reads in line, and those the general helpers read).
READ_FIELDS = (
    *("IpAddress", "IpPort", "TargetUserName", "TargetDomainName", "TargetSid", "ServiceName", "ServiceSid"),
    *("TicketOptions", "Status", "FailureCode", "TicketEncryptionType", "PreAuthType", "SubStatus", "TargetUserSid"),
    *("ObjectDN", "AuthenticationPackageName", "LogonProcessName", "AttributeLDAPDisplayName", "UserAccountControl"),
    *("ServicePrincipalNames", "AllowedToDelegateTo", "LogonGuid", "CertIssuerName", "#attributes"),
)
NAMED_VALUES = (*ODD_SPELLINGS, None, 0, 23, -1, 2**31, 2**31 - 1, 2**32 - 1, True, 1.5, ["0x17"], {"#text": "1"})


def _one_per_kind() -> list[dict[str, Any]]:
    """One sample event per (provider, EventID, EventData keys)."""
    seen: dict[Any, dict[str, Any]] = {}
    for obj in BASE:
        system, ed = obj["Event"]["System"], obj["Event"]["EventData"]
        key = (str(system["Provider"]), str(system["EventID"]), tuple(ed) if isinstance(ed, dict) else None)
        seen.setdefault(key, obj)
    return list(seen.values())


@pytest.mark.parametrize("field", READ_FIELDS)
def test_every_named_spelling_of_every_read_field(field: str) -> None:
    """Each odd spelling in each field the mapping reads, set and then removed, on one event of each kind."""
    paths = Paths()
    for base in _one_per_kind():
        obj = copy.deepcopy(base)
        ed = obj["Event"]["EventData"]
        if not isinstance(ed, dict):
            continue
        for value in NAMED_VALUES:
            ed[field] = value
            paths.compare(obj)
        del ed[field]
        paths.compare(obj)


@pytest.mark.parametrize(
    ("provider", "issues"),
    [
        ({"#attributes": "x"}, {}),  # no provider name: not a Kerberos event
        ({"#attributes": [SECURITY]}, {}),
        ({"#attributes": {"Name": [SECURITY]}}, {"json_event_error": 1}),  # a name that is not text: counted
        ({"#attributes": {"Name": 5}}, {"json_event_error": 1}),
        ({"#attributes": {"EventSourceName": {"a": 1}}}, {"json_event_error": 1}),
    ],
)
def test_provider_of_the_wrong_type_is_counted_not_raised(tmp_path: Path, provider: Any, issues: dict) -> None:
    """Found by the comparison above: both paths raised AttributeError / TypeError here, which no reader catches."""
    from parsers.events import read_events
    from parsers.record import ParseReport

    event = {
        "Event": {
            "System": {
                "Provider": provider,
                "EventID": 4768,
                "EventRecordID": 1,
                "TimeCreated": {"#attributes": {"SystemTime": "2026-01-15T09:00:00.000300Z"}},
            },
            "EventData": {"TargetUserName": "alice"},
        }
    }
    path = tmp_path / "odd.jsonl"
    path.write_bytes(orjson.dumps(event) + b"\n")
    report = ParseReport(source=str(path))
    assert list(read_events(str(path), report, "jsonl")) == []
    assert dict(report.issues) == issues
    Paths().compare(event)


def _normal_value_steps(name: str, value: Any) -> Any:
    """``normal_value`` without its shortcuts (plain text, hex number, bare GUID): the general steps, written out
    again."""
    from parsers.eventmap import _CONTROL_RE, _GUID_RE, _HEX_RE, LIST_FIELDS, split_list, text

    if name in LIST_FIELDS:
        return split_list(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    s = text(value)
    if s is None:
        return None
    if s[0] == "0" and _HEX_RE.fullmatch(s):
        return hex(int(s, 16))
    if len(s) in (36, 38) and s.count("-") == 4:
        m = _GUID_RE.fullmatch(s)
        if m:
            return "{" + m.group(1).upper() + "}"
    if s[0] in "tTfF" and s.lower() in ("true", "false"):
        return s.lower()
    return s if s.isprintable() else _CONTROL_RE.sub("", s)


@st.composite
def guid_like(draw: st.DrawFn) -> str:
    """GUIDs as producers write them, and near misses: case, braces, padding, one character changed."""
    text = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    text = draw(st.sampled_from([text, text.upper(), "{" + text + "}", "{" + text.upper() + "}"]))
    if draw(st.booleans()):
        i = draw(st.integers(0, len(text) - 1))
        text = text[:i] + draw(st.sampled_from(" \t-gx{}0\u00a0٣")) + text[i + 1 :]
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))


@settings(max_examples=800, deadline=None)
@given(
    st.sampled_from(["LogonGuid", "ObjectGUID", "UserAccountControl", "X"]),
    st.one_of(
        guid_like(),
        st.text(alphabet="0123456789abcdefABCDEF-{} x\t", max_size=40),
        st.text(alphabet="0xX123456789abcdefABCDEFg _-+\t٣", max_size=12).map(lambda t: "0x" + t),
        st.text(max_size=40),
    ),
)
def test_normal_value_shortcuts_equal_the_general_steps(name: str, value: str) -> None:
    from parsers.eventmap import normal_value

    assert normal_value(name, value) == _normal_value_steps(name, value)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.sampled_from(FIELD_NAMES), st.sampled_from(READ_FIELDS), st.text(max_size=6)),
            st.one_of(ODD_VALUE, st.text(max_size=300)),
        ),
        max_size=12,
    )
)
def test_event_data_text_equals_event_data_json(items: list[tuple[str, Any]]) -> None:
    """The pieces put together give orjson's sorted-keys text, key order (non-ASCII keys too) and escapes alike."""
    from parsers.eventfast import event_data_text
    from parsers.eventmap import event_data_json

    d = dict(items)
    want = event_data_json(d)
    assert event_data_text(d) == want
    assert event_data_text(d) == want  # from the remembered pieces


@pytest.mark.parametrize("order", [(0.0, -0.0, 0, False, None, "0"), (-0.0, 0.0, False, 0, "0", None)])
def test_equal_values_with_different_texts_stay_apart(order: tuple[Any, ...]) -> None:
    """``-0.0 == 0.0 == 0 == False``: no memo may hand one's text to another (found by the generated events)."""
    from parsers.eventfast import event_data_text
    from parsers.eventmap import event_data_json

    paths = Paths()
    base = next(obj for obj in BASE if obj["Event"]["System"]["EventID"] == 4768)
    for value in order:
        d = {"Flag": value, "X": "1"}
        assert event_data_text(d) == event_data_json(d)
        for n in (3, 20):  # short and long leftovers: the whole-object memo and the pieces
            obj = copy.deepcopy(base)
            obj["Event"]["EventData"].update({f"F{i}": value for i in range(n)})
            paths.compare(obj)
