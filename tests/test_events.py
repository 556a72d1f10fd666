"""Event XML exports and JSON lines (samples/evtx/dc01-security.xml / .jsonl) and their malformed variants."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from parsers import UnsupportedFormat, detect, iter_records
from parsers.events import read_events, sniff
from parsers.evtx import read_evtx
from parsers.record import ParseReport
from tests.test_evtx_helpers import EVTX_SAMPLES, as_manifest, manifest

XML = EVTX_SAMPLES / "dc01-security.xml"
JSONL = EVTX_SAMPLES / "dc01-security.jsonl"


def _read(path: Path, kind: str | None = None) -> tuple[list, ParseReport]:
    report = ParseReport(source=str(path))
    rows = list(read_events(str(path), report, kind or detect(path)))
    return rows, report


@pytest.mark.parametrize("path", [XML, JSONL])
def test_text_sample_decodes_to_manifest(path: Path) -> None:
    rows, report = _read(path)
    assert [as_manifest(r) for r in rows] == manifest(path.name)
    assert report.units == 24 and report.messages == 20 and not report.issues
    assert {r.source_kind for r in rows} == {path.suffix[1:]}


@pytest.mark.parametrize("path", [XML, JSONL])
def test_text_formats_agree_with_the_evtx_rows(path: Path) -> None:
    """Same generator, three renderings: every column equal but source and source_kind."""
    evtx_rows = list(read_evtx(str(EVTX_SAMPLES / "dc01-security.evtx"), ParseReport(source="x")))
    rows, _ = _read(path)
    strip = {"source": "", "source_kind": ""}
    assert [r._replace(**strip) for r in rows] == [r._replace(**strip) for r in evtx_rows]


def test_detect_by_content_not_name(tmp_path: Path) -> None:
    renamed = tmp_path / "export.evtx"  # an XML export with a misleading extension
    renamed.write_bytes(XML.read_bytes())
    assert detect(renamed) == "xml"
    lines = tmp_path / "events.xml"
    lines.write_bytes(JSONL.read_bytes())
    assert detect(lines) == "jsonl"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"<?xml version='1.0'?>\r\n<Events>\r\n<Event xmlns='x'>", "xml"),
        (b"\xef\xbb\xbf<Event xmlns='x'><System>", "xml"),
        (b"<!-- wevtutil --><Event>", "xml"),
        (b"<Events></Events>", "xml"),
        ("<Events><Event>".encode("utf-16"), "xml"),
        (b'{"Event":{"System":{}}}\n', "jsonl"),
        (b'{"event_record_id": 1, "data": "{}"}\n', "jsonl"),
        (b"<html><body>", None),
        (b'{"name": "not an event"}\n', None),
        (b"ElfFile\x00", None),
        (b"", None),
    ],
)
def test_sniff(head: bytes, kind: str | None) -> None:
    assert sniff(head) == kind


def test_stream_of_event_elements(tmp_path: Path) -> None:
    """wevtutil qe /f:xml prints <Event> elements without a root: the same rows."""
    text = XML.read_text()
    body = text.split("<Events>\n", 1)[1].rsplit("</Events>", 1)[0]
    stream = tmp_path / "stream.xml"
    stream.write_text(body.replace("\n", "\r\n"))
    rows, report = _read(stream)
    assert [as_manifest(r) for r in rows] == manifest("dc01-security.xml")
    assert not report.issues


def test_utf16_export(tmp_path: Path) -> None:
    path = tmp_path / "utf16.xml"
    path.write_text(XML.read_text().replace("encoding='utf-8'", "encoding='utf-16'"), encoding="utf-16")
    rows, report = _read(path)
    assert len(rows) == 20 and not report.issues


def _events(text: str) -> list[str]:
    return re.findall(r"<Event .*?</Event>", text, re.S)  # values may hold newlines (4738 UserAccountControl)


def test_malformed_xml_events_counted_each(tmp_path: Path) -> None:
    events = _events(XML.read_text())
    events[0] = events[0].replace("<Computer>", "<Computer><bad>", 1)  # unclosed element: not XML
    events[5] = events[5].replace("<System>", "<Nothing>", 1).replace("</System>", "</Nothing>", 1)  # no System
    events[7] = events[7].replace("SystemTime='2026", "SystemTime='not-a-", 1)  # no usable time
    body = "<Events>\n" + "\n".join(events[:10]) + "\nthis is not markup\n" + "\n".join(events[10:])
    path = tmp_path / "bad.xml"
    path.write_text(body + "\n" + events[2][:200])  # the last event is cut off
    rows, report = _read(path)
    assert dict(report.issues) == {"xml_event_error": 3, "xml_garbage": 1, "xml_truncated_event": 1}
    assert report.examples["xml_garbage"] == ["#12: this is not markup"]
    assert report.examples["xml_event_error"][0].startswith("#2: ")
    lost = {1000, 1005, 1007}  # record numbers of events 0, 5, 7
    expected = [m for m in manifest("dc01-security.xml") if m["record_no"] not in lost]
    assert [as_manifest(r) for r in rows] == expected
    assert report.units == 25


def test_malformed_json_lines_counted_each(tmp_path: Path) -> None:
    lines = JSONL.read_text().splitlines()
    lines[0] = lines[0][:-5]  # cut: not JSON
    lines[3] = '{"Event": {"EventData": {}}}'  # no System
    lines[4] = "[1, 2, 3]"
    record = json.loads(lines[8])
    lines[8] = json.dumps({"event_record_id": 1009, "timestamp": "x", "data": json.dumps(record)})  # evtx record dict
    lines.insert(6, "")
    lines.insert(6, "\x00\x01garbage")
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rows, report = _read(path)
    assert dict(report.issues) == {"json_line_error": 2, "json_event_error": 2}
    assert report.examples["json_line_error"][0].startswith("#1: ")
    assert report.examples["json_line_error"][1].startswith("#7: ")
    lost = {1000, 1003, 1004}
    assert [as_manifest(r) for r in rows] == [m for m in manifest("dc01-security.jsonl") if m["record_no"] not in lost]
    assert report.units == 25


def test_empty_and_blank_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_text("<Events></Events>\n")
    rows, report = _read(empty)
    assert rows == [] and not report.issues
    blank = tmp_path / "blank.jsonl"
    blank.write_text("")
    with pytest.raises(UnsupportedFormat):
        detect(blank)
    rows, report = _read(blank, "jsonl")
    assert rows == [] and report.units == 0


def test_iter_records_dispatches_text_formats() -> None:
    report = ParseReport(source=str(JSONL))
    assert len(list(iter_records(JSONL, report))) == 20
    assert report.source_kind == "jsonl"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(UnsupportedFormat):
        list(read_events(str(XML), ParseReport(source="x"), "csv"))


def test_long_garbage_between_events_keeps_memory_flat(tmp_path: Path) -> None:
    """Megabytes of text without events are judged block by block (one xml_garbage per block), not buffered."""
    events = _events(XML.read_text())
    path = tmp_path / "long.xml"
    path.write_text("<Events>\n" + events[0] + "\n" + "garbage " * 400_000 + "\n" + events[2] + "\n</Events>\n")
    rows, report = _read(path)
    assert [r.record_no for r in rows] == [1000, 1002]
    assert 1 <= report.issues["xml_garbage"] <= 4 and set(report.issues) == {"xml_garbage"}
