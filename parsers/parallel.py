"""One plain pcap / pcapng file read by several processes: the same rows, in the same order, as one process.

The file is cut into ``jobs`` byte ranges at exact record / block boundaries (:mod:`parsers.ranges`). The parent
reads range 0 with the ordinary pipeline (:class:`parsers.pipeline.Pipeline`) and passes its rows on at once. Each
later range runs in a forked child that first walks :data:`~parsers.ranges.WARMUP` octets before its range through
the whole pipeline (IP fragments, TCP reassembly, carrier decisions, UDP request phases; the replies not decoded)
and throws away what that produces, then keeps the rows and issues of its range, and stops at its end without
closing what is still open (the next range's warm-up continues it); the last range closes everything at the end of
the file, as one process does. A child appends its rows in pickled batches to an unlinked temporary file (memory
stays flat) and signals each on a pipe; the parent passes them on in order as they come, renumbering frames (a
child counts from its warm-up's start), and merges the issue counts so that the report is one process's.

Anything unusual ends in the sequential path, never in different rows: a gzip or small file, no boundary found, a
walk that does not land exactly on the next range's start (a false boundary), a pcapng block that starts a new
section or interface after the file's head, an unsupported link type, a child that fails or dies (even after some
of its rows were passed on: they are passed over). The parent then reads on itself from the last range start it can
trust, first walking quietly (rows and issues thrown away) the ranges it did not read, to rebuild its state.

A child knows nothing of what happened before its warm-up, so each range's state at its start is checked: the
process that read the range before reports :meth:`parsers.pipeline.Pipeline.state` at its end (IP datagrams waiting
for fragments; each TCP flow in the middle of something: sequence numbers, segments held, carrier buffers), the
child reports it at its start, and a range whose two differ is read by the parent instead (a TCP flow or datagram
that began before the warm-up and is still open). What the check leaves out, and so can still differ from one
process when it began more than :data:`~parsers.ranges.WARMUP` octets before a range start: an idle flow (between
two messages) whose next message a carrier would not take as a new flow's first, a KRB-ERROR whose request (hence
its phase) came that long before, a flow every carrier refused that a carrier takes mid-stream; and evictions
(100 000 flows, 65 536 UDP request pairs) happen at other moments in a child. A Kerberos exchange lasts
milliseconds; 4 MiB is tens of milliseconds of a 1 Gbit/s link, seconds of a DC's usual traffic.

POSIX only (``os.fork``); elsewhere, one process.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from typing import IO, Final

from .errors import MalformedFile
from .pcapfile import Span
from .pipeline import Pipeline
from .ranges import Plan, plan, warm_start
from .record import MAX_EXAMPLES, KrbRecord, ParseReport

log = logging.getLogger(__name__)

__all__ = ["BATCH", "Plan", "plan", "read"]

#: Rows per pickled batch in a child's spill file.
BATCH: Final = 2048
_make = KrbRecord._make


class _Gate(ParseReport):
    """A report that counts only while ``live``, keeping the first examples' frame numbers as numbers (a child's
    are relative to its range: the parent renumbers them)."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.live = True
        self.raw: dict[str, list[tuple[int | str | None, str | None]]] = {}

    def add(self, kind: str, where: int | str | None = None, detail: str | None = None, n: int = 1) -> None:
        if not self.live:
            return
        self.issues[kind] += n
        shown = self.raw.setdefault(kind, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append((where, detail))

    def take(self) -> tuple[Counter[str], dict[str, list[tuple[int | str | None, str | None]]]]:
        """The issues counted so far (and forget them)."""
        out = (self.issues, self.raw)
        self.issues, self.raw = Counter(), {}
        return out


def _transfer(
    report: ParseReport,
    issues: Counter[str] | dict[str, int],
    raw: dict[str, list[tuple[int | str | None, str | None]]],
    shift: int,
) -> None:
    for kind, n in issues.items():
        report.issues[kind] += n
        for where, detail in raw.get(kind, ()):
            report.add(kind, where + shift if type(where) is int else where, detail, n=0)


def _span(p: Plan, start: int, stop: int | None, first_frame: int, section: Span | None) -> Span:
    span = Span(start, stop, first_frame)
    if section is not None:
        span.endian, span.ifaces, span.fixed_section = section.endian, section.ifaces, True
    return span


class _Out:
    """A child's side of its channel: pickled messages appended to the spill file, one octet on the pipe for each
    (the parent reads a message only once it is whole)."""

    def __init__(self, fh: IO[bytes], notify: int) -> None:
        self.fh = fh
        self.notify = notify

    def send(self, message: tuple[object, ...]) -> None:
        pickle.dump(message, self.fh, pickle.HIGHEST_PROTOCOL)
        self.fh.flush()
        os.write(self.notify, b".")


def _child(p: Plan, i: int, out: _Out) -> None:
    """Range ``i`` (1-based among the cuts): ``("begin", state, warm-up frames)``, ``("rows", batch)``...,
    ``("end", summary)``; nothing more when the range cannot be read on its own."""
    start = p.cuts[i - 1]
    stop = p.cuts[i] if i < len(p.cuts) else None
    gate = _Gate(p.path)
    gate.live = False
    pipe = Pipeline(p.path, p.kind, p.head, gate, p.carriers)
    section = None
    if p.kind == "pcapng":
        section = Span(0, p.first)  # the head: section byte order and interfaces
        for _ in pipe.rows(section, finish=False):
            pass
        if not section.exact:
            return
    ws = warm_start(p, start)
    if ws is None:
        return
    warm = _span(p, ws, start, 0, section)
    for _ in pipe.rows(warm, finish=False, quiet=True):
        pass
    if not warm.exact or warm.broken:
        return
    pipe.forget_partial()
    gate.live = True
    out.send(("begin", pipe.state(), warm.frames))
    span = _span(p, start, stop, warm.frames, section)  # frames numbered on from the warm-up's
    batch: list[tuple[object, ...]] = []
    for row in pipe.rows(span, finish=stop is None):
        batch.append(tuple(row))
        if len(batch) >= BATCH:
            out.send(("rows", batch))
            batch = []
    if batch:
        out.send(("rows", batch))
    if (span.exact or stop is None) and not span.broken:
        issues, raw = gate.take()
        end = pipe.state() if stop is not None else b""
        out.send(("end", {"end": end, "frames": span.frames, "issues": dict(issues), "raw": raw}))


class _Worker:
    """One forked child, the spill file it writes (opened twice, then unlinked: deleted whatever happens) and the
    pipe it signals on."""

    def __init__(self, p: Plan, i: int) -> None:
        fd, name = tempfile.mkstemp(prefix="krbtrace-range-")
        try:
            self.reader = open(name, "rb")
        finally:
            os.unlink(name)
        try:
            notify_r, notify_w = os.pipe()
        except OSError:
            os.close(fd)
            self.reader.close()
            raise
        try:
            self.pid = os.fork()
        except OSError:
            for f in (fd, notify_r, notify_w):
                os.close(f)
            self.reader.close()
            raise
        if self.pid == 0:  # the child: parsers code only, and never back into the caller's stack
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                os.close(notify_r)
                with open(fd, "wb") as fh:
                    _child(p, i, _Out(fh, notify_w))
                code = 0
            finally:
                os._exit(code)
        os.close(fd)
        os.close(notify_w)  # the pipe's end of file is then the child's exit
        self.notify = notify_r
        self.ready = 0

    def messages(self) -> Iterator[tuple[object, ...]]:
        """The child's messages as each is written; ends when the child has ended (and is reaped)."""
        load = pickle.load
        while True:
            if not self.ready:
                signals = os.read(self.notify, 1 << 16)
                if not signals:
                    break
                self.ready = len(signals)
            self.ready -= 1
            yield load(self.reader)
        self.reap()

    def reap(self) -> None:
        if self.pid:
            os.waitpid(self.pid, 0)
            self.pid = 0

    def close(self) -> None:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.reap()
        if self.notify >= 0:
            os.close(self.notify)
            self.notify = -1
        self.reader.close()


def read(p: Plan, report: ParseReport) -> Iterator[KrbRecord]:
    """The rows of the planned file, in the order one process gives them; ``report`` ends as one process's.

    Range ``k``'s rows are passed on as its child writes them. A child that fails after some were (it died, or
    its range's end was not a boundary) costs nothing but time: the parent reads on from that range's start itself,
    passing over the rows already given."""
    workers: list[_Worker] = []
    t0 = time.perf_counter()
    try:
        for i in range(1, len(p.cuts) + 1):
            try:
                workers.append(_Worker(p, i))
            except OSError as exc:  # no process or temporary file to be had: the parent reads the rest
                log.debug("%s: range %d gets no process: %s", p.path, i, exc)
                break
        gate = _Gate(p.path)
        pipe = Pipeline(p.path, p.kind, p.head, gate, p.carriers)
        done = Span(0, p.cuts[0])  # the parent's pipeline state is one process's state at done.end
        messages = 0
        for row in pipe.rows(done, finish=False):
            messages += 1
            yield row
        frames = done.frames  # frames before ``pos``
        pos = done.end if not done.exact else p.cuts[0]
        issues, raw = gate.take()
        _transfer(report, issues, raw, 0)
        state = pipe.state()  # one process's state at the first cut: range 1 must start from the same
        if p.kind == "pcapng" and (done.endian != p.endian or len(done.ifaces) != p.nif):
            state = b"section"  # an interface or section after the head, before the cut: the children lack it
        log.debug("%s: range 0 read at %.3f s", p.path, time.perf_counter() - t0)
        i = 0
        given = 0  # rows of range i already passed on
        if not done.exact:
            p.fallback = f"range 0 ends at offset {done.end}, not at {p.cuts[0]}"
        while done.exact and i < len(workers):
            got = workers[i].messages()
            first = next(got, None)
            if first is None or first[0] != "begin":
                p.fallback = f"range {i + 1} (offset {p.cuts[i]}) could not be read on its own"
                break
            if first[1] != state:
                p.fallback = f"range {i + 1} (offset {p.cuts[i]}) began in another state than one process's"
                break
            shift = frames - first[2]  # type: ignore[operator]
            summary: dict[str, object] | None = None
            for kind, payload in got:
                if kind == "rows":
                    for t in payload:  # type: ignore[attr-defined]
                        given += 1
                        yield _make((*t[:3], t[3] + shift, *t[4:]))
                else:
                    summary = payload  # type: ignore[assignment]
            log.debug("%s: range %d read at %.3f s", p.path, i + 1, time.perf_counter() - t0)
            if summary is None:
                p.fallback = f"range {i + 1} (offset {p.cuts[i]}) ended early, after {given} rows"
                break
            messages += given
            given = 0
            _transfer(report, summary["issues"], summary["raw"], shift)  # type: ignore[arg-type]
            frames += summary["frames"]  # type: ignore[operator]
            state = summary["end"]  # type: ignore[assignment]
            workers[i].close()
            i += 1
            pos = p.cuts[i] if i < len(p.cuts) else p.size
        if i < len(p.cuts) or not done.exact:
            if p.fallback is None:
                p.fallback = f"range {i + 1} (offset {p.cuts[i]}) got no process"
            for w in workers[i:]:
                w.close()
            # the rest in this process: first catch up quietly from the state it has to ``pos``
            if done.end < pos:
                gate.live = False
                catch = Span(done.end, pos, done.first_frame + done.frames)
                catch.endian, catch.ifaces = done.endian, done.ifaces
                for _ in pipe.rows(catch, finish=False, quiet=True):
                    pass
                if not catch.exact or catch.first_frame + catch.frames != frames:
                    raise MalformedFile(f"parallel read of {p.path}: ranges disagree at offset {pos}")
                done = catch
                gate.live = True
            rest = Span(pos, None, frames)
            rest.endian, rest.ifaces = done.endian, done.ifaces
            for row in pipe.rows(rest, finish=True):
                messages += 1
                if given:  # passed on already by the child that failed
                    given -= 1
                    continue
                yield row
            frames += rest.frames
            issues, raw = gate.take()
            _transfer(report, issues, raw, 0)
        report.units += frames
        report.messages += messages
    finally:
        for w in workers:
            w.close()
