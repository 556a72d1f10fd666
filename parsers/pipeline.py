"""The capture pipeline of :mod:`parsers.capture` walked range by range, for :mod:`parsers.parallel`: the same
reader, fed one byte range of a plain file at a time, and a digest of the state it carries from one range to the
next.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from typing import Final

from .capture import _keep_for, _Reader
from .pcapfile import Span, iter_frames
from .record import KrbRecord, ParseReport
from .streams import Carrier

__all__ = ["Pipeline"]


class Pipeline:
    """The whole pipeline over one plain capture file, walked range by range (:mod:`parsers.parallel`): the state
    (fragments, flows, request phases) carries over from one range to the next one walked."""

    def __init__(self, path: str, kind: str, head: bytes, report: ParseReport, carriers: tuple[Carrier, ...]) -> None:
        self.path = path
        self.head = head
        self.report = report
        watch: dict[int, int] = {}
        self.keep_for = _keep_for(carriers, watch)
        self.reader = _Reader(path, kind, report, carriers, watch)

    def rows(self, span: Span, finish: bool, quiet: bool = False) -> Iterator[KrbRecord]:
        """The rows of the frames in ``span`` (``finish``: and of what is still open at its end). ``quiet``: only
        the state matters (the caller throws the rows and issues away), so the KDC's replies are not decoded."""
        self.reader.quiet = quiet
        try:
            with open(self.path, "rb") as fh:
                yield from self.reader.run(iter_frames(fh, self.head, self.report, self.keep_for, span), finish)
        finally:
            self.reader.quiet = False

    def forget_partial(self) -> None:
        """After a warm-up: forget the IP datagrams whose first fragment came before it. One process has them
        complete already, or still waiting with that fragment (then :meth:`state` differs: the check tells)."""
        pending = self.reader.net.pending
        for key in [k for k, dg in pending.items() if not dg.ignored and all(off for off, _ in dg.frags)]:
            del pending[key]

    def state(self) -> bytes:
        """:meth:`state_parts` as a digest."""
        return hashlib.blake2b(repr(self.state_parts()).encode(), digest_size=16).digest()

    def state_parts(self) -> tuple[list[object], list[object]]:
        """What decides the rows of later frames: the IP datagrams waiting for fragments, and every TCP flow
        followed or waiting for its first payload (ends, sequence numbers, segments held, carrier buffers). Two
        pipelines with the same state at the same offset give the same rows from there on, but for what it leaves
        out: flows refused by every carrier (remembered until they end only to skip them), idle flows (a carrier
        between two messages: nothing buffered, no segment held, no count kept), and the UDP request phases (a
        KRB-ERROR's phase when its request came long before)."""
        flows: list[object] = []
        for key, f in self.reader.flows.flows.items():
            if f.closed < 0:
                continue
            handler = _shape(f.handler)
            if f.handler is not None and not any(d.pending for d in f.dirs) and _idle(handler):
                continue  # between two messages: what follows starts a message, offered as a new flow's would be
            dirs = tuple(
                (d.next_seq, tuple((seq, len(b), zlib.crc32(b), ts) for seq, (b, ts, _no) in d.pending.items()))
                for d in f.dirs
            )
            flows.append((key, f.client, f.server_port, f.closed, f.phase, handler, dirs))
        flows.sort()  # type: ignore[call-overload]
        frags: list[object] = sorted(  # type: ignore[type-var]
            (key, dg.total, dg.ignored, tuple((off, len(b), zlib.crc32(b)) for off, b in dg.frags))
            for key, dg in self.reader.net.pending.items()
        )
        return flows, frags


def _idle(shape: object) -> bool:
    """Whether a carrier's :func:`_shape` holds nothing: every buffer empty, every count zero (flags aside)."""
    if type(shape) is int:
        return shape == 0
    if isinstance(shape, tuple):
        return all(_idle(x) for x in shape)
    return True  # names, flags, None


#: Attributes left out of a carrier's state: where it reports, its current frame (numbered per range), decoders.
_NOT_STATE: Final = frozenset({"report", "_frame", "issues", "decode"})


def _shape(v: object, depth: int = 0) -> object:
    """A comparable description of a carrier's state (buffers by length and CRC)."""
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, bytes | bytearray | memoryview):
        return (len(v), zlib.crc32(v))
    if depth > 5 or callable(v):
        return type(v).__name__
    if isinstance(v, list | tuple):
        return tuple(_shape(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return tuple((_shape(k, depth + 1), _shape(x, depth + 1)) for k, x in v.items())
    if isinstance(v, set | frozenset):
        return tuple(sorted(repr(x) for x in v))
    attrs = dict(getattr(v, "__dict__", {}))
    for cls in type(v).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(v, name):
                attrs[name] = getattr(v, name)
    return (type(v).__name__, tuple((k, _shape(x, depth + 1)) for k, x in sorted(attrs.items()) if k not in _NOT_STATE))
