"""The ``"python-evtx"`` backend of :func:`parsers.evtx.read_evtx`: the pure-Python ``Evtx`` module, chunk by chunk.

It reads every chunk slot :func:`parsers.evtx.scan` found readable (python-evtx's own iterator trusts a dirty file
header and silently reads only part of the file, python-evtx issue #85) and parses each record's ``Record.xml()``
with ElementTree, through the same mapping as the Rust backend (:mod:`parsers.eventmap`).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from .eventmap import _CONTROL_RE, to_record
from .eventparse import event_from_xml
from .evtx import Layout, Tally
from .evtxview import CHUNK_SIZE
from .record import KrbRecord, ParseReport

log = logging.getLogger(__name__)


def read_python(path: str, report: ParseReport, layout: Layout, tally: Tally) -> Iterator[KrbRecord]:
    from Evtx.Evtx import ChunkHeader

    source = report.source or path
    with open(path, "rb") as fh:
        for ch in layout.chunks:
            fh.seek(ch.offset)
            buf = fh.read(CHUNK_SIZE).ljust(CHUNK_SIZE, b"\x00")
            chunk = ChunkHeader(buf, 0)
            try:
                for record in chunk.records():
                    size = record.size()
                    if size < 28 or record.offset() + size > CHUNK_SIZE or record.size2() != size:
                        # python-evtx walks on by the size field alone; a bad one means the chain is broken (the
                        # evtx package stops the chunk there too)
                        break
                    try:
                        text = record.xml()
                        record_id = record.record_num()
                    except Exception as exc:  # python-evtx raises many types on bad BinXML
                        log.debug("%s: python-evtx record at %d: %r", source, record.offset(), exc)
                        continue
                    if record_id in layout.cut:
                        continue
                    report.units += 1
                    tally.see(record_id)
                    row = _python_row(text, record_id, source, report)
                    if row is not None:
                        yield row
            except Exception as exc:  # a chunk whose record chain breaks
                log.debug("%s: python-evtx chunk at %d: %r", source, ch.offset, exc)


def _python_row(text: str, record_id: int, source: str, report: ParseReport) -> KrbRecord | None:
    try:
        return to_record(event_from_xml(ET.fromstring(_CONTROL_RE.sub("", text))), source, "evtx")
    except (ET.ParseError, ValueError) as exc:  # EventShapeError, an unusable time
        report.add("evtx_event_error", record_id, str(exc))
        return None
