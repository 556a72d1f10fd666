"""Event XML exports and event JSON lines -> Kerberos :class:`KrbRecord` rows (same mapping as ``.evtx``).

* ``xml``: what ``wevtutil qe <log> /f:xml`` prints (a stream of ``<Event>`` elements without a root) and what
  Event Viewer's "Save as XML" / ``wevtutil epl``-and-render tools write (one ``<Events>`` document). Each
  ``<Event>...</Event>`` is cut out of the text and parsed on its own, so one malformed event costs that event
  only (``xml_event_error``); text between events that is not markup (``xml_garbage``) and an event cut off at
  the end of the file (``xml_truncated_event``) are counted too.
* ``jsonl``: one event per line as ``evtx_dump -o jsonl`` writes it (``{"Event": {...}}``), or the ``evtx``
  package's record dicts (``{"event_record_id": ..., "data": ...}``) dumped one per line. A line that is not JSON
  is ``json_line_error``; JSON that is not an event is ``json_event_error``.

Schema: ``http://schemas.microsoft.com/win/2004/08/events/event`` (see :mod:`parsers.eventparse`).
"""

from __future__ import annotations

import codecs
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Final

import orjson

from .errors import UnsupportedFormat
from .eventmap import _CONTROL_RE, to_record
from .eventparse import event_from_json, event_from_xml
from .record import KrbRecord, ParseReport

log = logging.getLogger(__name__)

_EVENT_START: Final = re.compile(r"<Event[\s>/]")
_EVENT_END: Final = "</Event>"
#: Markup allowed between events: declarations, comments, the <Events> wrapper.
_BETWEEN: Final = re.compile(r"\s*(?:(?:<\?[^>]*\?>|<!--.*?-->|</?Events(?:\s[^>]*)?>)\s*)*", re.S)
_READ_SIZE: Final = 1 << 20
_MAX_EVENT: Final = 16 << 20  # an "event" longer than this is garbage, not a record


def _decode_head(head: bytes) -> str:
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return head.decode("utf-16", errors="replace")
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def sniff(head: bytes) -> str | None:
    """``"xml"`` for event XML, ``"jsonl"`` for event JSON lines, else ``None`` (judged on the first bytes)."""
    text = _decode_head(head).lstrip()
    if text.startswith("<"):
        body = _BETWEEN.match(text)
        rest = text[body.end() if body else 0 :]
        if _EVENT_START.match(rest) or (rest == "" and re.search(r"<Events[\s>]", text)):
            return "xml"
        return None
    if text.startswith("{"):
        first = text.split("\n", 1)[0]
        if '"Event"' in first or '"event_record_id"' in first:
            return "jsonl"
    return None


def read_events(path: str, report: ParseReport, kind: str) -> Iterator[KrbRecord]:
    """Kerberos rows of one event XML (``kind="xml"``) or JSON-lines (``kind="jsonl"``) file, in file order.

    ``report.units`` counts the events (or lines) read, ``report.messages`` the rows emitted. Malformed events and
    lines are counted per event / line and skipped.
    """
    if kind == "jsonl":
        rows = _read_jsonl(path, report)
    elif kind == "xml":
        rows = _read_xml(path, report)
    else:
        raise UnsupportedFormat(f"not an event text format: {kind!r}")
    for row in rows:
        report.messages += 1
        yield row


def _read_jsonl(path: str, report: ParseReport) -> Iterator[KrbRecord]:
    source = report.source or path
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if lineno == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            if not line.strip():
                continue
            report.units += 1
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                report.add("json_line_error", lineno, str(exc))
                continue
            try:
                if isinstance(obj, dict) and isinstance(obj.get("data"), str):
                    obj = orjson.loads(obj["data"])  # an evtx record dict with its data still as JSON text
                row = to_record(event_from_json(obj), source, "jsonl")
            except (orjson.JSONDecodeError, ValueError) as exc:  # EventShapeError, an unusable time
                report.add("json_event_error", lineno, str(exc))
                continue
            if row is not None:
                yield row


def _text_chunks(path: str) -> Iterator[str]:
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        encoding = "utf-16" if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        while True:
            block = fh.read(_READ_SIZE)
            text = decoder.decode(block, final=not block)
            if text:
                yield text
            if not block:
                return


def _read_xml(path: str, report: ParseReport) -> Iterator[KrbRecord]:
    source = report.source or path
    buf = ""
    line = 1  # line number of buf[0]
    for text in _text_chunks(path):
        buf += text
        pos = 0
        while True:
            m = _EVENT_START.search(buf, pos)
            if m is None:
                if len(buf) - pos > _READ_SIZE:  # a long stretch without events: judge it now, keep memory flat
                    cut = len(buf) - 64
                    _check_between(buf, pos, cut, line, report)
                    pos = cut
                break
            end = buf.find(_EVENT_END, m.start())
            if end == -1:
                if len(buf) - m.start() > _MAX_EVENT:
                    report.add("xml_event_error", line + buf.count("\n", 0, m.start()), "event too long")
                    pos = m.end()
                    continue
                break
            _check_between(buf, pos, m.start(), line, report)
            end += len(_EVENT_END)
            at = line + buf.count("\n", 0, m.start())
            row = _xml_row(buf[m.start() : end], at, source, report)
            if row is not None:
                yield row
            pos = end
        line += buf.count("\n", 0, pos)
        buf = buf[pos:]
    m = _EVENT_START.search(buf)
    if m is not None:
        _check_between(buf, 0, m.start(), line, report)
        report.units += 1
        report.add("xml_truncated_event", line + buf.count("\n", 0, m.start()), "no </Event> before end of file")
    else:
        _check_between(buf, 0, len(buf), line, report)


def _check_between(buf: str, start: int, end: int, line: int, report: ParseReport) -> None:
    gap = buf[start:end]
    m = _BETWEEN.match(gap)
    if m is not None and m.end() != len(gap):
        report.add("xml_garbage", line + buf.count("\n", 0, start + m.end()), gap[m.end() : m.end() + 40].strip())


def _xml_row(text: str, line: int, source: str, report: ParseReport) -> KrbRecord | None:
    report.units += 1
    try:
        return to_record(event_from_xml(ET.fromstring(_CONTROL_RE.sub("", text))), source, "xml")
    except (ET.ParseError, ValueError) as exc:  # EventShapeError, an unusable time
        report.add("xml_event_error", line, str(exc))
        return None
