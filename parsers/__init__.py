"""Layer 1 of krbtrace: decoders only. Bytes in, :class:`KrbRecord` rows out.

This package never imports ``krbtrace`` or polars. Formats are recognised by their first bytes (the magic of each
format is declared next to its reader), never by file name:

* captures (:mod:`parsers.capture`): pcap in both byte orders and both time resolutions, pcapng, and either one
  gzip-compressed;
* Windows event logs (:mod:`parsers.evtx`, :mod:`parsers.events`): ``.evtx`` files, event XML exports and JSON
  lines.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from .errors import Error, KrbDecodeError, MalformedFile, UnsupportedFormat
from .record import FIELDS, KrbRecord, ParseReport

__all__ = [
    "FIELDS",
    "Error",
    "KrbDecodeError",
    "KrbRecord",
    "MalformedFile",
    "ParseReport",
    "UnsupportedFormat",
    "detect",
    "iter_records",
]

HEAD_BYTES = 4096


def _sniff(head: bytes) -> str | None:
    # Imported here, and one at a time: a reader's module (and what it imports) loads only when a file may be its
    # kind, so reading one log does not import the capture stack and the other way round (tens of ms a start).
    from . import evtxview, pcapfile

    kind = pcapfile.sniff(head) or evtxview.sniff(head)
    if kind is not None:
        return kind
    from . import events

    return events.sniff(head)


def detect(path: str | Path) -> str:
    """The format of ``path`` by content: ``pcap``, ``pcapng``, ``evtx``, ``xml`` or ``jsonl``.

    A gzip-compressed capture reports the format inside. Raises :class:`UnsupportedFormat` for anything else and
    ``OSError`` when the file cannot be read.
    """
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head:
        raise UnsupportedFormat("empty file")
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as gz:
                inner = gz.read(HEAD_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            raise MalformedFile(f"damaged gzip data: {exc}") from exc
        kind = _sniff(inner)
        if kind in ("pcap", "pcapng"):
            return kind
        raise UnsupportedFormat("gzip file that does not hold a pcap or pcapng capture")
    kind = _sniff(head)
    if kind is None:
        raise UnsupportedFormat("not a pcap, pcapng, EVTX, event XML or JSON-lines file")
    return kind


def iter_records(
    path: str | Path, report: ParseReport, *, evtx_backend: str = "evtx", jobs: int = 1
) -> Iterator[KrbRecord]:
    """Kerberos records of one file, in file order, streaming.

    Problems inside a usable file are counted in ``report`` and never raised. A file that cannot be used at all
    raises :class:`UnsupportedFormat` or :class:`MalformedFile` (or ``OSError``) before or while reading.
    ``evtx_backend`` selects the EVTX reader: ``"evtx"`` (Rust, default) or ``"python-evtx"``. ``jobs`` > 1 lets
    a large plain capture be read by that many processes (:mod:`parsers.parallel`; the same rows and report).
    """
    kind = detect(path)
    report.source_kind = kind
    if kind in ("pcap", "pcapng"):
        from .capture import read_capture
        from .carriers import DEFAULT

        return read_capture(str(path), report, DEFAULT, jobs=jobs)
    if kind == "evtx":
        from .evtx import read_evtx

        return read_evtx(str(path), report, backend=evtx_backend, jobs=jobs)
    from .events import read_events

    return read_events(str(path), report, kind)
