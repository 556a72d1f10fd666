"""TCP per-flow reassembly (RFC 9293 §3.4 sequence numbers) and the carrier extension point.

A *carrier* turns the in-order bytes of one TCP connection into Kerberos messages: :mod:`parsers.recordmark` is the
carrier of Kerberos's own TCP framing (RFC 4120 §7.2.2) on ports 88 and 464; application carriers (SMB, HTTP, LDAP,
DCE/RPC) plug in through the :class:`Carrier` / :class:`CarrierFlow` protocols below.

Reassembly rules (what Wireshark does, and what forensics needs):

* the first copy of a byte wins: retransmissions and overlapping segments only add the bytes past what was already
  delivered;
* out-of-order segments wait (bounded per direction) until the hole before them is filled; the frame that fills the
  hole is the frame that completes whatever it completes;
* a hole that is never filled (lost segment, capture started late, buffer bound reached, connection or capture
  ends) is a *gap*: it is counted as ``tcp_gap`` and the carrier is told to resynchronise. Bytes are never invented;
* a direction first seen without its SYN starts at the first segment seen (mid-stream start) and the carrier is
  told to resynchronise before the first byte;
* a carrier that raises loses its connection (counted as ``carrier_error``), never the capture.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, Protocol

from .record import ParseReport

log = logging.getLogger(__name__)

__all__ = ["Carrier", "CarrierFlow", "Completed", "Direction", "Done", "FlowTable", "TcpFlow", "server_side"]

#: Out-of-order bytes one direction may hold while it waits for a hole to be filled; past this the hole is a gap.
MAX_PENDING_BYTES: Final = 1 << 20
#: Out-of-order segments one direction may hold.
MAX_PENDING_SEGMENTS: Final = 512
#: Out-of-order bytes all flows together may hold (so memory does not grow with the number of flows); past this
#: the flow that adds more gives up its hole.
MAX_TOTAL_PENDING: Final = 64 << 20
#: TCP connections tracked at once; the oldest are forgotten first (their pending bytes counted as a gap).
MAX_FLOWS: Final = 100_000

_MOD: Final = 1 << 32
_HALF: Final = 1 << 31

#: One Kerberos message a carrier completed: (fields, ts of the completing frame, its 1-based frame number).
Completed = tuple[dict[str, object], int, int]

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
ACK: Final = 0x10


class CarrierFlow(Protocol):
    """The state of one carrier on one TCP connection."""

    def feed(self, to_server: bool, data: bytes, ts: int, frame_no: int) -> list[Completed]:
        """Take the next in-order bytes of one direction; return (fields, ts, frame_no) per Kerberos message
        completed. ``fields`` is a ``decode_message``-style dict plus ``"carrier"`` and optionally ``"app_status"``
        and ``"nt_status"``."""
        ...

    def gap(self, to_server: bool) -> None:
        """Bytes were lost in that direction; resynchronise."""
        ...


class Carrier(Protocol):
    """A kind of TCP payload that can carry Kerberos (the built-in record-mark framing, SMB, HTTP, ...)."""

    name: str

    def accepts(self, server_port: int, first: bytes, from_client: bool) -> bool:
        """Cheap decision on the first payload of a TCP flow."""
        ...

    def new_flow(self) -> CarrierFlow:
        """A fresh per-connection state."""
        ...


def _restarted(flow: TcpFlow, seq: int) -> bool:
    """A client SYN whose sequence number does not fit the connection already tracked: the ports were reused."""
    if not flow.dirs:
        return True
    nxt = flow.dirs[0].next_seq
    return nxt is not None and nxt != (seq + 1) % _MOD


def server_side(port_a: int, port_b: int) -> int:
    """Which of two ports (0 or 1) is the server's when no SYN was seen: a well-known port (< 1024) against a
    non-well-known one, otherwise the lower port."""
    if (port_a < 1024) != (port_b < 1024):
        return 0 if port_a < 1024 else 1
    return 0 if port_a <= port_b else 1


class Direction:
    """Reassembly state of one direction of a connection: the next expected sequence number and the segments
    that arrived ahead of it."""

    __slots__ = ("next_seq", "pending", "pending_bytes")

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self.pending: dict[int, tuple[bytes, int, int]] = {}  # seq -> (bytes, ts, frame_no) of the segment
        self.pending_bytes = 0


class TcpFlow:
    """One TCP connection: who is the client, its carrier state, and the reassembly of both directions."""

    __slots__ = ("client", "closed", "dirs", "handler", "key", "phase", "server_port", "watched")

    def __init__(self, key: tuple[bytes, int, bytes, int], client: tuple[bytes, int], server_port: int) -> None:
        self.key = key
        self.client = client
        self.server_port = server_port
        self.handler: CarrierFlow | None = None
        self.dirs: tuple[Direction, ...] = (Direction(), Direction())  # [0] client -> server, [1] server -> client
        self.closed = 0
        self.phase: str | None = None  # phase of the last request the client sent (for the KDC's KRB-ERROR)
        self.watched = False  # its port pair is in FlowTable.watch (the prefilter keeps all its segments)


class FlowTable:
    """Every TCP connection of a capture, keyed by its two endpoints, each fed through in-order reassembly.

    ``decide(key, server_port, first_payload, from_client)`` is called on a flow's first payload, before any state
    is kept for it, and returns the flow's :class:`CarrierFlow` or ``None``. A refused flow seen without its SYN is
    forgotten at once (a later segment, e.g. the other direction's first, is offered again); a refused flow that
    began with a SYN is remembered until it ends and skipped cheaply. Completed messages come back as
    ``(flow, from_client, fields, ts, frame_no)``.

    ``watch`` (port pair ``port_a << 16 | port_b`` -> number of flows, both orders) holds the port pairs of the
    flows kept and not refused, for a prefilter that drops the segments of every other flow before they are parsed.
    """

    def __init__(
        self,
        report: ParseReport,
        decide: Callable[[tuple[bytes, int, bytes, int], int, bytes, bool], CarrierFlow | None],
        watch: dict[int, int] | None = None,
    ) -> None:
        self.report = report
        self.decide = decide
        self.flows: dict[tuple[bytes, int, bytes, int], TcpFlow] = {}
        self.pending_total = 0  # out-of-order octets held by all flows together
        self.watch: dict[int, int] = {} if watch is None else watch

    def _watch(self, flow: TcpFlow) -> None:
        k = flow.key
        watch = self.watch
        for pair in (k[1] << 16 | k[3], k[3] << 16 | k[1]):
            watch[pair] = watch.get(pair, 0) + 1
        flow.watched = True

    def _unwatch(self, flow: TcpFlow) -> None:
        if not flow.watched:
            return
        flow.watched = False
        k = flow.key
        watch = self.watch
        for pair in (k[1] << 16 | k[3], k[3] << 16 | k[1]):
            left = watch.get(pair, 0) - 1
            if left > 0:
                watch[pair] = left
            else:
                watch.pop(pair, None)

    def _store(self, key: tuple[bytes, int, bytes, int], flow: TcpFlow) -> None:
        if len(self.flows) >= MAX_FLOWS:
            self._evict()
        self.flows[key] = flow
        self._watch(flow)

    def segment(
        self,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        seq: int,
        flags: int,
        payload: bytes,
        ts: int,
        frame_no: int,
        missing: int = 0,
    ) -> list[Done]:
        """Feed one TCP segment; return the messages this frame completed (often none). ``missing``: octets of the
        payload the capture did not keep (snaplen); they are skipped and the carrier resynchronises."""
        key = (src, sport, dst, dport) if (src, sport) <= (dst, dport) else (dst, dport, src, sport)
        flows = self.flows
        flow = flows.get(key)
        if flow is None:
            if not payload and not flags & SYN:
                return _NONE  # a bare ACK/FIN/RST of a connection never seen with data
            if flags & SYN and not flags & ACK:
                client = (src, sport)
            elif flags & SYN:
                client = (dst, dport)
            else:
                client = (src, sport) if server_side(sport, dport) == 1 else (dst, dport)
            from_client = client == (src, sport)
            server_port = dport if from_client else sport
            handler = None
            if not flags & SYN:
                # decide before keeping anything: most flows of a capture are refused, and are forgotten at once
                handler = self.decide(key, server_port, payload, from_client)
                if handler is None:
                    return _NONE
            flow = TcpFlow(key, client, server_port)
            flow.handler = handler
            self._store(key, flow)
            flows = self.flows
        elif flags & SYN and not flags & ACK and (src, sport) == flow.client and _restarted(flow, seq):
            # a new connection on the same ports (the old one's end was not captured): start afresh
            out: list[Done] = []
            self._finish(flow, frame_no, out)
            self._unwatch(flow)
            del flows[key]
            return out + self.segment(src, sport, dst, dport, seq, flags, payload, ts, frame_no, missing)
        elif flow.closed < 0:
            # a flow no carrier wanted: forget it once it is over, so a long capture keeps few of them
            if flags & RST or (flags & FIN and flow.closed == -2):
                del flows[key]
            elif flags & FIN:
                flow.closed = -2
            return _NONE
        from_client = (src, sport) == flow.client
        d = flow.dirs[0 if from_client else 1]
        if flags & SYN:
            if d.next_seq is None:
                d.next_seq = (seq + 1) % _MOD
            return _NONE
        out: list[Done] = []
        if payload:
            if flow.handler is None:
                handler = self.decide(key, flow.server_port, payload, from_client)
                if handler is None:
                    flow.closed = -1  # not a carrier: remember the flow and skip it cheaply (-2 after one FIN)
                    flow.dirs = ()
                    self._unwatch(flow)
                    return _NONE
                flow.handler = handler
            try:
                self._data(flow, from_client, d, seq, payload, ts, frame_no, out)
                if missing and d.next_seq == (seq + len(payload)) % _MOD:
                    d.next_seq = (seq + len(payload) + missing) % _MOD
                    flow.handler.gap(from_client)
                    if d.pending:
                        self._drain(flow, from_client, d, ts, frame_no, out)
            except Exception as exc:  # a carrier's bug must not end the capture: drop that flow, count it
                self._failed(flow, frame_no, exc)
                return out
        if flags & (FIN | RST):
            if flags & RST:
                flow.closed = 2
            else:
                flow.closed += 1
            if flow.closed >= 2:
                self._finish(flow, frame_no, out)
                self._unwatch(flow)
                flows.pop(key, None)
        return out

    def _data(
        self,
        flow: TcpFlow,
        from_client: bool,
        d: Direction,
        seq: int,
        payload: bytes,
        ts: int,
        frame_no: int,
        out: list[Done],
    ) -> None:
        handler = flow.handler
        assert handler is not None
        if d.next_seq is None:
            d.next_seq = seq
            handler.gap(from_client)  # mid-stream start: the first byte seen need not start a record
        rel = (seq - d.next_seq) % _MOD
        n = len(payload)
        if rel >= _HALF:  # starts before what was delivered: a retransmission or an overlap
            behind = _MOD - rel
            if behind >= n:
                return
            payload = payload[behind:]
            seq = d.next_seq
            n -= behind
            rel = 0
        if rel > 0:
            old = d.pending.get(seq)
            if old is None or len(old[0]) < n:
                grow = n - (0 if old is None else len(old[0]))
                d.pending_bytes += grow
                self.pending_total += grow
                d.pending[seq] = (payload, ts, frame_no)
            if (
                d.pending_bytes > MAX_PENDING_BYTES
                or len(d.pending) > MAX_PENDING_SEGMENTS
                or self.pending_total > MAX_TOTAL_PENDING
            ):
                self._skip_hole(flow, from_client, d, frame_no, "out-of-order buffer full")
                self._drain(flow, from_client, d, None, 0, out)
            return
        d.next_seq = (d.next_seq + n) % _MOD
        for m in handler.feed(from_client, payload, ts, frame_no):
            out.append((flow, from_client, *m))
        if d.pending:
            self._drain(flow, from_client, d, ts, frame_no, out)

    def _drain(
        self, flow: TcpFlow, from_client: bool, d: Direction, ts: int | None, frame_no: int, out: list[Done]
    ) -> None:
        """Deliver the waiting segments that now follow on (and drop those already covered). The frame that filled
        the hole (``ts``/``frame_no``) completes what they complete; with ``ts`` None each segment's own frame."""
        handler = flow.handler
        assert handler is not None
        pending = d.pending
        while pending:
            nxt = d.next_seq
            assert nxt is not None
            behind = 0
            item = pending.pop(nxt, None)  # the usual case: a segment starts exactly where the stream stands
            if item is None:
                # otherwise one that starts behind and reaches past it (an overlap); drop those wholly behind
                best: tuple[int, int] | None = None
                for s, (data, _ts, _no) in list(pending.items()):
                    rel = (s - nxt) % _MOD
                    if rel >= _HALF:
                        back = _MOD - rel
                        if back >= len(data):
                            del pending[s]
                            d.pending_bytes -= len(data)
                            self.pending_total -= len(data)
                        elif best is None or back < best[0]:
                            best = (back, s)
                if best is None:
                    return
                behind = best[0]
                item = pending.pop(best[1])
            data, seg_ts, seg_no = item
            d.pending_bytes -= len(data)
            self.pending_total -= len(data)
            chunk = data[behind:]
            d.next_seq = (nxt + len(chunk)) % _MOD
            if ts is None:
                done = handler.feed(from_client, chunk, seg_ts, seg_no)
            else:
                done = handler.feed(from_client, chunk, ts, frame_no)
            for m in done:
                out.append((flow, from_client, *m))

    def _skip_hole(self, flow: TcpFlow, from_client: bool, d: Direction, where: int | str, why: str) -> None:
        """Jump over the hole before the nearest waiting segment: count the gap, tell the carrier."""
        nxt = d.next_seq
        assert nxt is not None and flow.handler is not None
        first = min(d.pending, key=lambda s: (s - nxt) % _MOD)
        lost = (first - nxt) % _MOD
        self.report.add("tcp_gap", where, f"{lost} bytes missing ({why})")
        flow.handler.gap(from_client)
        d.next_seq = first

    def _finish(self, flow: TcpFlow, where: int | str, out: list[Done]) -> None:
        """The connection ends: segments still waiting behind a hole are delivered after counting the gap."""
        if flow.handler is None or flow.closed < 0:
            return
        try:
            for from_client, d in ((True, flow.dirs[0]), (False, flow.dirs[1])):
                while d.pending:
                    self._skip_hole(flow, from_client, d, where, "never filled")
                    self._drain(flow, from_client, d, None, 0, out)
        except Exception as exc:  # as in segment(): a carrier's bug costs its flow, not the capture
            self._failed(flow, where, exc)

    def _failed(self, flow: TcpFlow, where: int | str, exc: Exception) -> None:
        name = type(flow.handler).__name__
        self.report.add("carrier_error", where, f"{name}: {exc!r}; the rest of this connection is skipped")
        log.debug("carrier %s failed", name, exc_info=True)
        self.pending_total -= sum(d.pending_bytes for d in flow.dirs)
        flow.closed = -1
        flow.dirs = ()
        self._unwatch(flow)

    def _evict(self) -> None:
        """Forget the oldest tenth of the flows at once. (Popping the oldest one at a time would make every
        ``next(iter(dict))`` walk the dict's deleted slots: quadratic on a capture with many short flows.)"""
        items = list(self.flows.items())
        cut = max(1, len(items) // 10)
        for _key, flow in items[:cut]:
            self._finish(flow, "evicted", [])  # counted; messages behind the hole of a forgotten flow are lost
            self._unwatch(flow)
        self.flows = dict(items[cut:])

    def finish_all(self) -> list[Done]:
        """End of capture: count the holes still open and deliver the bytes after them."""
        out: list[Done] = []
        for flow in self.flows.values():
            self._finish(flow, "end", out)
        self.flows.clear()
        self.watch.clear()
        return out


#: A message completed on a flow: (flow, from_client, fields, ts, frame_no).
Done = tuple[TcpFlow, bool, dict[str, object], int, int]
_NONE: Final[list[Done]] = []
