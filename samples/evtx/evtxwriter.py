"""A small writer of valid ``.evtx`` files (MS-EVEN6 binary XML), for samples, tests and benchmarks.

Layout as Windows writes it (libyal's "Windows XML Event Log (EVTX) format"): a 4 KiB file header (``ElfFile``,
CRC32 of bytes 0-120 at 124), then 64 KiB chunks (``ElfChnk``; first/last record numbers and identifiers at
8/16/24/32, last-record and free-space offsets at 44/48, CRC32 of the records at 52, header CRC32 over bytes 0-120
and 128-512 at 124, 64 common-string and 32 template hash buckets at 128 and 384). Each record (``**\\0\\0``, size,
identifier, FILETIME, BinXML, size again) is a fragment holding one template instance: the first record of a
chunk that uses a template shape carries the template definition inline, later ones point back at it, and names
(element and attribute) are stored once per chunk, as Windows does. Values travel in the substitution array with
their Windows types (HexInt32 for ``Status``, SID, GUID, FILETIME, ...), so both the ``evtx`` package and
python-evtx render them with their usual differences.

Usage::

    with EvtxWriter("out.evtx") as w:
        w.add(EventSpec(provider="Microsoft-Windows-Security-Auditing", event_id=4768, time=..., data=[...]))

Only the standard library is used: the generators and the benchmark import this file directly.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import BinaryIO, Final

HEADER_SIZE: Final = 4096
CHUNK_SIZE: Final = 65536
RECORDS_START: Final = 512
#: Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
EPOCH_DELTA_S: Final = 11_644_473_600
EVENT_NS: Final = "http://schemas.microsoft.com/win/2004/08/events/event"

# BinXML value types (MS-EVEN6 §2.2.13 / libyal)
T_NULL, T_STR, T_U8, T_U16, T_U32, T_U64 = 0x00, 0x01, 0x04, 0x06, 0x08, 0x0A
T_GUID, T_FILETIME, T_SID, T_HEX32, T_HEX64 = 0x0F, 0x11, 0x13, 0x14, 0x15
TYPE_NAMES: Final[dict[str, int]] = {
    "str": T_STR,
    "u8": T_U8,
    "u16": T_U16,
    "u32": T_U32,
    "u64": T_U64,
    "guid": T_GUID,
    "filetime": T_FILETIME,
    "sid": T_SID,
    "hex32": T_HEX32,
    "hex64": T_HEX64,
}
_SID_RE: Final = re.compile(r"S-1-(\d+)((?:-\d+)*)")


@dataclass
class EventSpec:
    """One event to write. ``time`` is in 100 ns units since 1970-01-01 UTC (Windows' own precision).

    ``data`` lists ``(name, value, type)``: ``name`` ``None`` writes an unnamed ``<Data>`` (classic providers),
    ``value`` ``None`` writes a null substitution (an empty element), ``type`` is a key of :data:`TYPE_NAMES`.
    """

    provider: str
    event_id: int
    time: int
    computer: str
    data: list[tuple[str | None, str | int | None, str]] = field(default_factory=list)
    provider_guid: str | None = None
    source_name: str | None = None  # classic providers: EventSourceName attribute
    qualifiers: int | None = None  # classic providers: EventID Qualifiers attribute
    channel: str = "Security"
    version: int = 0
    level: int = 0
    task: int = 0
    opcode: int = 0
    keywords: int = 0x8020000000000000
    process_id: int = 4
    thread_id: int = 0
    record_id: int | None = None  # default: the writer's next number


def name_hash(name: str) -> int:
    """The 16-bit hash Windows stores with each name (hash * 65599 + UTF-16 code unit, low 16 bits)."""
    h = 0
    for unit in struct.unpack(f"<{len(name)}H", name.encode("utf-16-le")):
        h = (h * 65599 + unit) & 0xFFFFFFFF
    return h & 0xFFFF


def encode_value(value: str | int | None, kind: int) -> bytes:
    """The bytes of one substitution value of BinXML type ``kind``."""
    if value is None or kind == T_NULL:
        return b""
    if kind == T_STR:
        return str(value).encode("utf-16-le")
    if kind in (T_U8, T_U16, T_U32, T_U64, T_HEX32, T_HEX64, T_FILETIME):
        fmt = {T_U8: "<B", T_U16: "<H", T_U32: "<I", T_HEX32: "<I"}.get(kind, "<Q")
        return struct.pack(fmt, int(value))
    if kind == T_GUID:
        return uuid.UUID(str(value)).bytes_le
    if kind == T_SID:
        m = _SID_RE.fullmatch(str(value))
        if not m:
            raise ValueError(f"not a SID: {value!r}")
        subs = [int(x) for x in m.group(2).split("-")[1:]]
        return (
            struct.pack(">BBQ", 1, len(subs), int(m.group(1)))[:2]
            + int(m.group(1)).to_bytes(6, "big")
            + (struct.pack(f"<{len(subs)}I", *subs))
        )
    raise ValueError(f"unsupported BinXML type 0x{kind:02x}")


class _Chunk:
    """One chunk being filled: its records area and the per-chunk name and template tables."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.names: dict[str, int] = {}
        self.templates: dict[tuple, tuple[int, int]] = {}  # shape -> (definition offset, template id)
        self.string_buckets = [0] * 64
        self.template_buckets = [0] * 32
        self.first_id: int | None = None
        self.last_id = 0
        self.last_offset = 0

    @property
    def pos(self) -> int:
        return RECORDS_START + len(self.body)


class _Builder:
    """BinXML bytes for a record whose first byte will sit at chunk offset ``base``."""

    def __init__(self, chunk: _Chunk, base: int) -> None:
        self.chunk = chunk
        self.base = base
        self.buf = bytearray()
        self.new_names: dict[str, int] = {}
        self.string_buckets = list(chunk.string_buckets)

    @property
    def pos(self) -> int:
        return self.base + len(self.buf)

    def name(self, name: str) -> None:
        """A name reference (u32 offset), with the name itself inline on its first use in the chunk."""
        known = self.chunk.names.get(name, self.new_names.get(name))
        if known is not None:
            self.buf += struct.pack("<I", known)
            return
        here = self.pos + 4
        h = name_hash(name)
        bucket = h % 64
        self.buf += struct.pack("<IIHH", here, self.string_buckets[bucket], h, len(name))
        self.buf += name.encode("utf-16-le") + b"\x00\x00"
        self.string_buckets[bucket] = here
        self.new_names[name] = here

    def element(self, name: str, attrs: list[tuple[str, bytes]], content: list[bytes] | None) -> None:
        """An element with attribute value tokens and content tokens (None = empty element)."""
        start = len(self.buf)
        self.buf += bytes([0x41 if attrs else 0x01]) + struct.pack("<HI", 0xFFFF, 0)
        size_at = len(self.buf) - 4
        self.name(name)
        if attrs:
            list_at = len(self.buf)
            self.buf += b"\x00\x00\x00\x00"
            for i, (aname, value) in enumerate(attrs):
                self.buf += bytes([0x46 if i < len(attrs) - 1 else 0x06])
                self.name(aname)
                self.buf += value
            struct.pack_into("<I", self.buf, list_at, len(self.buf) - list_at - 4)
        if content is None:
            self.buf += b"\x03"
        else:
            self.buf += b"\x02"
            for part in content:
                if callable(part):
                    part()
                else:
                    self.buf += part
            self.buf += b"\x04"
        struct.pack_into("<I", self.buf, size_at, len(self.buf) - size_at - 4)
        del start


def _text(value: str) -> bytes:
    return b"\x05\x01" + struct.pack("<H", len(value)) + value.encode("utf-16-le")


def _sub(index: int, kind: int, optional: bool = False) -> bytes:
    return bytes([0x0E if optional else 0x0D]) + struct.pack("<HB", index, kind)


def _system_values(ev: EventSpec, record_id: int) -> list[tuple[str | int | None, int]]:
    values: list[tuple[str | int | None, int]] = [(ev.provider, T_STR)]
    if ev.provider_guid:
        values.append((ev.provider_guid, T_GUID))
    if ev.source_name:
        values.append((ev.source_name, T_STR))
    values.append((ev.event_id, T_U16))
    if ev.qualifiers is not None:
        values.append((ev.qualifiers, T_U16))
    filetime = ev.time + EPOCH_DELTA_S * 10_000_000
    values += [
        (ev.version, T_U8),
        (ev.level, T_U8),
        (ev.task, T_U16),
        (ev.opcode, T_U8),
        (ev.keywords, T_HEX64),
        (filetime, T_FILETIME),
        (record_id, T_U64),
        (ev.process_id, T_U32),
        (ev.thread_id, T_U32),
        (ev.channel, T_STR),
        (ev.computer, T_STR),
    ]
    return values


def _shape(ev: EventSpec) -> tuple:
    return (
        bool(ev.provider_guid),
        bool(ev.source_name),
        ev.qualifiers is not None,
        tuple((name, TYPE_NAMES[kind]) for name, _, kind in ev.data),
    )


def _template_body(b: _Builder, ev: EventSpec) -> None:
    """The template: the Event/System/EventData tree with a substitution for every value."""
    n = 0

    def sub(kind: int, optional: bool = False) -> bytes:
        nonlocal n
        n += 1
        return _sub(n - 1, kind, optional)

    b.buf += b"\x0f\x01\x01\x00"
    ns = _text(EVENT_NS)

    def system() -> None:
        attrs = [("Name", sub(T_STR))]
        if ev.provider_guid:
            attrs.append(("Guid", sub(T_GUID)))
        if ev.source_name:
            attrs.append(("EventSourceName", sub(T_STR)))
        b.element("Provider", attrs, None)
        eid = sub(T_U16)
        b.element("EventID", [("Qualifiers", sub(T_U16))] if ev.qualifiers is not None else [], [eid])
        for tag, kind in (("Version", T_U8), ("Level", T_U8), ("Task", T_U16), ("Opcode", T_U8)):
            b.element(tag, [], [sub(kind)])
        b.element("Keywords", [], [sub(T_HEX64)])
        b.element("TimeCreated", [("SystemTime", sub(T_FILETIME))], None)
        b.element("EventRecordID", [], [sub(T_U64)])
        b.element("Correlation", [], None)
        b.element("Execution", [("ProcessID", sub(T_U32)), ("ThreadID", sub(T_U32))], None)
        b.element("Channel", [], [sub(T_STR)])
        b.element("Computer", [], [sub(T_STR)])
        b.element("Security", [], None)

    def event_data() -> None:
        for name, _, kind in ev.data:
            attrs = [("Name", _text(name))] if name is not None else []
            b.element("Data", attrs, [sub(TYPE_NAMES[kind], optional=True)])

    b.element(
        "Event",
        [("xmlns", ns)],
        [lambda: b.element("System", [], [system]), lambda: b.element("EventData", [], [event_data])],
    )
    b.buf += b"\x00"


class EvtxWriter:
    """Writes events to an ``.evtx`` file, chunk by chunk (memory: one chunk)."""

    def __init__(self, path: str, first_record_id: int = 1) -> None:
        self._fh: BinaryIO = open(path, "wb")
        self._fh.write(b"\x00" * HEADER_SIZE)
        self._chunk = _Chunk()
        self._chunks = 0
        self.next_id = first_record_id
        self.records = 0
        #: (record id, chunk index, offset in the chunk, size) of every record written, for damage tests
        self.placed: list[tuple[int, int, int, int]] = []

    def __enter__(self) -> EvtxWriter:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def add(self, ev: EventSpec) -> int:
        """Append one event; returns its EventRecordID."""
        record_id = ev.record_id if ev.record_id is not None else self.next_id
        rec = self._record(ev, record_id)
        if rec is None:
            self._flush()
            rec = self._record(ev, record_id)
            if rec is None:
                raise ValueError("event too large for one chunk")
        self.next_id = max(self.next_id, record_id + 1)
        self.records += 1
        return record_id

    def _record(self, ev: EventSpec, record_id: int) -> bool | None:
        ch = self._chunk
        start = ch.pos
        b = _Builder(ch, start + 24)
        shape = _shape(ev)
        b.buf += b"\x0f\x01\x01\x00"
        known = ch.templates.get(shape)
        new_template = None
        if known is None:
            tid = zlib.crc32(repr(shape).encode())
            def_at = b.pos + 10
            b.buf += b"\x0c\x01" + struct.pack("<II", tid, def_at)
            head_at = len(b.buf)
            bucket = tid % 32
            b.buf += struct.pack("<I", ch.template_buckets[bucket]) + struct.pack("<I", tid) + b"\x00" * 12
            b.buf += b"\x00\x00\x00\x00"
            body_at = len(b.buf)
            _template_body(b, ev)
            struct.pack_into("<I", b.buf, head_at + 20, len(b.buf) - body_at)
            new_template = (shape, def_at, tid, bucket)
        else:
            def_at, tid = known
            b.buf += b"\x0c\x01" + struct.pack("<II", tid, def_at)
        values = _system_values(ev, record_id) + [
            (value, T_NULL if value is None else TYPE_NAMES[kind]) for _, value, kind in ev.data
        ]
        encoded = [encode_value(v, k) for v, k in values]
        b.buf += struct.pack("<I", len(values))
        for (_, kind), raw in zip(values, encoded, strict=True):
            b.buf += struct.pack("<HBB", len(raw), kind, 0)
        for raw in encoded:
            b.buf += raw
        size = 24 + len(b.buf) + 4
        size += -size % 8  # Windows keeps records 8-byte aligned; the slack sits before the trailing size
        if start + size > CHUNK_SIZE:
            return None
        filetime = ev.time + EPOCH_DELTA_S * 10_000_000
        rec = struct.pack("<4sIQQ", b"**\x00\x00", size, record_id, filetime) + b.buf
        rec += b"\x00" * (size - 4 - len(rec)) + struct.pack("<I", size)
        ch.body += rec
        ch.names.update(b.new_names)
        ch.string_buckets = b.string_buckets
        if new_template is not None:
            shape_, def_at, tid, bucket = new_template
            ch.templates[shape_] = (def_at, tid)
            ch.template_buckets[bucket] = def_at
        if ch.first_id is None:
            ch.first_id = record_id
        ch.last_id = record_id
        ch.last_offset = start
        self.placed.append((record_id, self._chunks, start, size))
        return True

    def _flush(self) -> None:
        ch = self._chunk
        if ch.first_id is None:
            return
        data = bytearray(CHUNK_SIZE)
        free = ch.pos
        struct.pack_into(
            "<8sQQQQIII",
            data,
            0,
            b"ElfChnk\x00",
            ch.first_id,
            ch.last_id,
            ch.first_id,
            ch.last_id,
            128,
            ch.last_offset,
            free,
        )
        struct.pack_into("<64I", data, 128, *ch.string_buckets)
        struct.pack_into("<32I", data, 384, *ch.template_buckets)
        data[RECORDS_START:free] = ch.body
        struct.pack_into("<I", data, 52, zlib.crc32(data[RECORDS_START:free]))
        struct.pack_into("<I", data, 124, zlib.crc32(data[128:512], zlib.crc32(data[:120])))
        self._fh.write(data)
        self._chunks += 1
        self._chunk = _Chunk()

    def close(self) -> None:
        """Write the last chunk and the file header."""
        if self._fh.closed:
            return
        self._flush()
        header = bytearray(HEADER_SIZE)
        struct.pack_into(
            "<8sQQQIHHHH",
            header,
            0,
            b"ElfFile\x00",
            0,
            max(self._chunks - 1, 0),
            self.next_id,
            128,
            1,
            3,
            HEADER_SIZE,
            self._chunks,
        )
        struct.pack_into("<I", header, 124, zlib.crc32(header[:120]))
        self._fh.seek(0)
        self._fh.write(header)
        self._fh.close()
