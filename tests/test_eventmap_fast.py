"""The EVTX reader's fast paths give exactly what the general code gives (issue 3's speed work keeps the rows)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.eventmap import _num, parse_int
from parsers.evtxfilter import (
    KEEP,
    LOGON,
    REJECT,
    SECURITY_HEAD,
    SECURITY_HEAD_AT,
    VERDICT_END,
    logon_kerberos,
    security_verdict,
    wanted,
)

#: Characters that make number spellings interesting: hex prefixes, signs, separators, white space (ASCII and
#: Unicode), non-ASCII digits (str.isdigit() is true for "٣" and "²", int() accepts the first and not the second).
_ALPHABET = "0123456789abcdefxX-+_ \t\n\x00\u00a0\u0663\u00b2"


def _general(raw: Any) -> tuple[int | None, bool]:
    """What ``_num`` must return: parse_int's value, or None and the name marked bad when parse_int raises."""
    try:
        return parse_int(raw), False
    except ValueError:
        return None, True


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(alphabet=_ALPHABET, max_size=12), st.none(), st.integers(), st.booleans()))
def test_num_fast_path_equals_parse_int(raw: Any) -> None:
    d: dict[str, Any] = {"F": raw}
    bad: list[str] = []
    value, is_bad = _general(raw)
    assert _num(d, "F", bad) == value
    assert bad == (["F"] if is_bad else [])
    assert d == ({"F": raw} if is_bad else {})  # an unreadable value stays for event_data


@pytest.mark.parametrize("raw", ["0x17", "0X17", "0x00000017", " 0x17", "0x17 ", "0x", "0x_1f", "-", "", "50020", "٣"])
def test_num_named_spellings(raw: str) -> None:
    d = {"F": raw}
    bad: list[str] = []
    assert (_num(d, "F", bad), bool(bad)) == _general(raw)


def _security_json(event_id: str, body: str = "") -> str:
    return (
        '{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},'
        '"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing",'
        f'"Guid":"54849625-5478-4994-A5BA-3E3B0328C30D"}}}},"EventID":{event_id},"Version":0}},'
        f'"EventData":{{"X":"1"{body}}}}}}}'
    )


def _loop_rejects(data: str) -> bool:
    """What the record loop (``rust_rows``) decides from the cached verdict, as ``wanted`` would decide."""
    verdict = security_verdict(data[SECURITY_HEAD_AT:VERDICT_END])
    if verdict == LOGON:
        return not logon_kerberos(data)
    if verdict is None:
        return not wanted(data)
    return verdict == REJECT


@pytest.mark.parametrize(
    "event_id",
    [
        *(str(i) for i in range(4600, 4800)),
        *("5136", "5137", "51360", "47680", '"4768"', '"4672"', "4"),
        '{"#attributes":{"Qualifiers":0},"#text":4769}',
        '{"#attributes":{"Qualifiers":0},"#text":"4624"}',
        '{"#attributes":{"Qualifiers":0},"#text":4672}',
    ],
)
def test_inline_reject_only_drops_what_the_prefilter_drops(event_id: str) -> None:
    """The layout the evtx package writes puts EventID at a fixed offset; the cached verdict must agree with it."""
    data = _security_json(event_id, ',"AuthenticationPackageName":"Kerberos"')
    assert data.startswith(SECURITY_HEAD, SECURITY_HEAD_AT)
    assert _loop_rejects(data) == (not wanted(data))
    verdict = security_verdict(data[SECURITY_HEAD_AT:VERDICT_END])
    if verdict == KEEP:
        assert wanted(data)
    kept_ids = {str(i) for i in (4768, 4769, 4770, 4771, 4772, 4773, 4624, 4625, 4738, 4742, 5136)}
    if event_id.strip('"') in kept_ids or event_id.endswith(("4769}", '"4624"}')):
        assert not _loop_rejects(data) and wanted(data)
    if event_id.endswith("4672}") or event_id.strip('"') in {"4672", "47680", "51360", "4"}:
        assert not wanted(data)


@pytest.mark.parametrize(
    "data",
    [
        _security_json("4672")[:-40],  # short records and other layouts: the verdict defers to wanted
        _security_json("46"),
        '{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing"}},"EventID":4672}}}',
        _security_json("4672").replace("Auditing", "Kerberos"),
    ],
)
def test_verdict_is_only_given_for_the_security_layout(data: str) -> None:
    verdict = security_verdict(data[SECURITY_HEAD_AT:VERDICT_END])
    assert verdict is None or (verdict == REJECT and not wanted(data))
    if "Kerberos" in data[:300]:
        assert verdict is None


def _parse_time_unmemoised(value: str) -> int | None:
    """The evtx-form fast path of ``parse_time`` as it was before the minute memo (the reference)."""
    from datetime import datetime

    from parsers.record import from_datetime

    day = from_datetime(datetime.fromisoformat(value[:10] + "T00:00:00+00:00"))
    hms = int(value[11:13]) * 3600 + int(value[14:16]) * 60 + int(value[17:19])
    return day + hms * 1_000_000 + int(value[20:26])


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["2026-01-15", "2019-07-30", "1999-12-31"]),
    st.text(alphabet="0123459 +-٣", min_size=2, max_size=2),
    st.text(alphabet="0123459 +-٣", min_size=2, max_size=2),
    st.text(alphabet="0123459 +-٣", min_size=2, max_size=2),
    st.text(alphabet="0123459 ", min_size=6, max_size=6),
)
def test_parse_time_minute_memo_equals_the_direct_computation(day: str, hh: str, mm: str, ss: str, us: str) -> None:
    from parsers.eventmap import parse_time

    value = f"{day}T{hh}:{mm}:{ss}.{us}Z"
    try:
        expected: Any = _parse_time_unmemoised(value)
    except ValueError:
        expected = None  # the fast path gives way to the general parser
    for _ in range(2):  # the second call reads the memo
        try:
            got: Any = parse_time(value)
        except ValueError:
            got = "error"
        if expected is not None:
            assert got == expected


@pytest.mark.parametrize("order", [(True, 1, 1.0, "1"), ("1", 1.0, 1, True), (1, True, "1", 1.0)])
def test_event_data_memo_keeps_types_apart(order: tuple[Any, ...]) -> None:
    """``1 == True == 1.0`` in a dict key: the memo must not hand one's event_data to another."""
    from parsers.eventmap import SECURITY, Event, to_record

    def want(value: Any) -> str:  # (not a dict: True, 1 and 1.0 are one key there too)
        if type(value) is bool:
            return '{"Flag":"true"}'
        return '{"Flag":"1.0"}' if type(value) is float else '{"Flag":"1"}'

    for value in order:
        ev = Event(1, 4768, SECURITY, "2026-01-15T09:00:00.000300Z", "dc", {"TargetUserName": "a", "Flag": value})
        row = to_record(ev, "src", "evtx")
        assert row is not None
        assert row.event_data == want(value)
