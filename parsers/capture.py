"""Kerberos messages of a packet capture: pcap / pcapng (gzip too) -> :class:`~parsers.record.KrbRecord` rows.

The pipeline, cheapest test first:

1. :mod:`parsers.pcapfile` streams the frames; a per-link-type prefilter (:func:`parsers.prefilter.prefilter_for`) drops
   every frame that is not UDP/TCP on 88 or 464 (RFC 4120 §7.2.3, RFC 3244), not an IP fragment, and - only when
   application carriers are given - not TCP, before any object is built;
2. :class:`parsers.ip.Network` parses the kept frames and reassembles IPv4/IPv6 fragments;
3. UDP payloads on 88/464 are decoded directly; TCP segments go through :class:`parsers.streams.FlowTable`
   (reassembly) to a carrier: :class:`parsers.recordmark.RecordMarkFlow` on 88/464, or an application carrier that
   accepted the flow (issue 5: SMB, HTTP, LDAP, DCE/RPC).

Each row's ``ts`` and ``record_no`` are those of the frame that completed the message (its last fragment or
segment), as in Wireshark. A KDC's KRB-ERROR takes the phase of the request it answers on the same flow (UDP: the
same address/port pair), or stays null when that request is not in the capture.

Issue kinds counted here (besides those of the modules above): ``truncated_frame`` (a Kerberos-port frame cut by
the snaplen), ``bad_udp_header``, ``bad_udp_length``, ``bad_tcp_header``, ``asn1_decode_error`` (a UDP payload or
TCP record on 88/464 that is not a readable Kerberos / kpasswd message), ``partial_message`` (a row emitted with
``partial=True``), ``carrier_error`` (an application carrier raised: that flow is skipped).
"""

from __future__ import annotations

import logging
import operator
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, Final

from .errors import KrbDecodeError
from .ip import KRB_PORTS, TCP, UDP, Network
from .krb5 import decode_kpasswd, decode_message
from .pcapfile import Prefilter, iter_frames, open_capture, read_head
from .pcapfile import sniff as _sniff
from .prefilter import prefilter_for
from .record import FIELDS, KrbRecord, ParseReport
from .recordmark import RecordMarkFlow
from .streams import Carrier, CarrierFlow, FlowTable, TcpFlow, server_side
from .tunnels import TUNNEL_PORTS, TUNNEL_PROTOS

log = logging.getLogger(__name__)

__all__ = ["read_capture", "sniff"]

_TEMPLATE: dict[str, object] = dict.fromkeys(FIELDS)
_values = operator.itemgetter(*FIELDS)
_new = tuple.__new__
_TCP_HEADER = struct.Struct("!HHI4xBB").unpack_from  # ports, sequence number, data offset, flags
_UDP_HEADER = struct.Struct("!HHH").unpack_from  # ports, length
_REQUESTS = frozenset({"AS-REQ", "TGS-REQ", "AP-REQ", "KPASSWD-REQ"})
#: First octets of AS-REQ, TGS-REQ, AP-REQ ([APPLICATION 10, 12, 14], RFC 4120 §5.4.1, §5.5.1).
_REQUEST_TAGS: Final = frozenset({b"\x6a", b"\x6c", b"\x6e"})
#: UDP request phases remembered for matching KRB-ERRORs (the oldest are forgotten first).
MAX_UDP_PAIRS = 65_536


def sniff(head: bytes) -> str | None:
    """``"pcap"`` or ``"pcapng"`` when ``head`` (the first octets of a file, already un-gzipped) is a capture."""
    return _sniff(head)


def _carrier_of(port: int) -> tuple[str, Callable[[bytes], dict[str, object]]]:
    return ("kdc", decode_message) if port == 88 else ("kpasswd", decode_kpasswd)


class _Addr(dict[bytes, str]):
    """Address octets -> text, memoised (a capture has few distinct Kerberos hosts)."""

    def __missing__(self, raw: bytes) -> str:
        text = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
        self[raw] = text
        return text


def read_capture(
    path: str, report: ParseReport, carriers: Sequence[Carrier] = (), *, jobs: int = 1
) -> Iterator[KrbRecord]:
    """Every Kerberos message of a pcap/pcapng file (gzip-compressed or not), in the order they complete.

    Yields one :class:`KrbRecord` per message with ts, source (``path``), source_kind, record_no (frame number),
    carrier, transport, src/dst ip and port, and the decoded fields (see :func:`parsers.krb5.decode_message`).
    ``report.units`` counts frames, ``report.messages`` rows; problems are counted in ``report.issues``.
    ``carriers`` are application carriers offered every TCP flow that is not on 88/464.
    Raises :class:`~parsers.errors.UnsupportedFormat` / :class:`~parsers.errors.MalformedFile` at once (before
    the first row is asked for) when the file is not a usable capture; ``OSError`` when it cannot be opened.
    ``jobs`` > 1 lets a large plain file be read by that many processes (:mod:`parsers.parallel`): the same rows in
    the same order, the same report.
    """
    if jobs > 1:
        from . import parallel

        plan = parallel.plan(path, jobs, tuple(carriers))
        if plan is not None:
            report.source_kind = plan.kind
            return parallel.read(plan, report)
    fh = open_capture(path)
    watch: dict[int, int] = {}  # port pairs of the TCP flows being followed (see FlowTable)
    try:
        head = read_head(fh)
        kind = _sniff(head)
        frames = iter_frames(fh, head, report, _keep_for(carriers, watch))
    except BaseException:
        fh.close()
        raise
    report.source_kind = kind
    return _rows(fh, _Reader(path, kind or "pcap", report, tuple(carriers), watch), frames)


def _rows(fh: BinaryIO, reader: _Reader, frames: Iterator[tuple[int, int, int, bytes, int]]) -> Iterator[KrbRecord]:
    with fh:
        yield from reader.run(frames)


#: The built-in carriers' possible first payload octets. Their ``accepts`` look at a prefix of the payload only,
#: so more octets after it never turn an acceptance into a refusal: the prefilter may ask them on the frame's octets
#: (which may end with link padding). SMB's session request (0x81) compares its length with the payload's, so
#: payloads starting 0x81 are always kept. tests/test_carrier_prefilter.py checks both facts.
_LENGTH_SENSITIVE: Final = frozenset({0x81})


def _builtin_octets() -> dict[type, frozenset[int]]:
    from .carriers import DcerpcCarrier, HttpCarrier, LdapCarrier, SmbCarrier
    from .carriers.http import _FIRST_LETTERS

    return {
        SmbCarrier: frozenset({0x00, 0x81}),  # NetBIOS session message / session request (RFC 1002)
        HttpCarrier: frozenset(b[0] for b in _FIRST_LETTERS),  # a method's first letter, or HTTP/1.
        LdapCarrier: frozenset({0x30}),  # SEQUENCE of LDAPMessage (RFC 4511)
        DcerpcCarrier: frozenset({0x05}),  # rpc_vers 5
    }


def first_octets(carriers: Sequence[Carrier]) -> dict[int, tuple[Carrier, ...] | bool] | None:
    """First payload octet -> the carriers that may accept a flow starting with it (``True``: keep the frame
    whatever the carriers say), or None when a carrier is not a built-in one of exactly known behaviour (then every
    first payload is offered to the flow table)."""
    known = _builtin_octets()
    gate: dict[int, tuple[Carrier, ...] | bool] = {}
    for carrier in carriers:
        octets = known.get(type(carrier))
        if octets is None:
            return None
        for o in octets:
            had = gate.get(o, ())
            gate[o] = True if o in _LENGTH_SENSITIVE else (*had, carrier)  # type: ignore[misc]
    return gate


def _tcp_keep(watch: dict[int, int], gate: dict[int, tuple[Carrier, ...] | bool] | None) -> Prefilter:
    """The prefilter's test for a TCP frame not on 88/464 (``l4``: offset of its TCP header). Kept: SYN/FIN/RST,
    segments of a followed flow (port pair in ``watch``), and payloads a carrier accepts, asked here exactly as
    :class:`~parsers.streams.FlowTable` would ask for a flow seen without SYN. A pure ACK or a payload no carrier
    takes is dropped before any object is built."""
    head = struct.Struct("!HH8xBB").unpack_from

    def tcp_keep(buf: bytes, l4: int, end: int) -> bool:
        if l4 + 14 > end:
            return True  # let the full parser count the damaged header
        sp, dp, doff, flags = head(buf, l4)
        if flags & 0x07 or (sp << 16 | dp) in watch:
            return True
        p = l4 + (doff >> 4) * 4
        if p >= end:
            return False  # no payload: nothing to offer
        if gate is None or sp == dp:
            return True
        asked = gate.get(buf[p])
        if asked is None or asked is True:
            return asked is True
        from_client = server_side(sp, dp) == 1
        first = buf[p:end]
        server_port = dp if from_client else sp
        for carrier in asked:  # type: ignore[union-attr]
            try:
                if carrier.accepts(server_port, first, from_client):
                    return True
            except Exception:
                return True  # the flow table asks again and counts the carrier_error
        return False

    return tcp_keep


def _keep_for(carriers: Sequence[Carrier], watch: dict[int, int]) -> Callable[[int], Prefilter | None]:
    tcp_keep = _tcp_keep(watch, first_octets(carriers)) if carriers else None
    cache: dict[int, Prefilter | None] = {}

    def keep_for(linktype: int) -> Prefilter | None:
        if linktype not in cache:
            cache[linktype] = prefilter_for(linktype, tcp_keep)
        return cache[linktype]

    return keep_for


class _Reader:
    """The per-file state: fragments, TCP flows, UDP request phases."""

    def __init__(
        self, path: str, kind: str, report: ParseReport, carriers: tuple[Carrier, ...], watch: dict[int, int]
    ) -> None:
        self.path = path
        self.kind = kind
        self.report = report
        self.carriers = carriers
        self.net = Network(report, self._wanted)
        self.flows = FlowTable(report, self._decide, watch)
        self.addr = _Addr()
        self.udp_phase: dict[tuple[bytes, int, bytes, int], str | None] = {}
        self.quiet = False  # rows unwanted (Pipeline.rows): decode only the requests, whose phase is remembered

    def _wanted(self, proto: int, first: bytes) -> bool:
        """Whether a fragmented datagram is worth reassembling, from the first octets of its transport header: a
        Kerberos port, a TCP flow a carrier may want, or a tunnel (its inner packet is known only once whole: a GRE
        or VXLAN packet near the path MTU is fragmented by the tunnel end point, RFC 4459)."""
        if proto in TUNNEL_PROTOS or (proto == TCP and self.carriers):
            return True
        if proto not in (TCP, UDP) or len(first) < 4:
            return False
        sport, dport = first[0] << 8 | first[1], first[2] << 8 | first[3]
        return sport in KRB_PORTS or dport in KRB_PORTS or (proto == UDP and dport in TUNNEL_PORTS)

    def _decide(
        self, key: tuple[bytes, int, bytes, int], server_port: int, first: bytes, from_client: bool
    ) -> CarrierFlow | None:
        ports = (key[1], key[3])
        port = server_port if server_port in KRB_PORTS else next((p for p in ports if p in KRB_PORTS), 0)
        if port:
            name, decode = _carrier_of(port)
            return RecordMarkFlow(name, self._kdc if port == 88 else decode, self.report)
        for carrier in self.carriers:
            try:
                if carrier.accepts(server_port, first, from_client):
                    handler = carrier.new_flow()
                    if hasattr(handler, "report"):
                        handler.report = self.report  # the carrier counts unreadable units and tokens here
                    return handler
            except Exception as exc:
                self.report.add("carrier_error", None, f"{getattr(carrier, 'name', carrier)}: {exc!r}")
        return None

    def _kdc(self, record: bytes) -> dict[str, object]:
        if self.quiet and record[:1] not in _REQUEST_TAGS:
            raise KrbDecodeError("not decoded")  # a reply while only the state matters: its row is thrown away
        return decode_message(record)

    def run(self, frames: Iterator[tuple[int, int, int, bytes, int]], finish: bool = True) -> Iterator[KrbRecord]:
        """The rows of ``frames``; with ``finish`` (the end of the capture) then those of the flows and fragments
        still open. Without it the state stays as it is, for the frames that follow (:mod:`parsers.parallel`)."""
        report = self.report
        net = self.net
        flows = self.flows
        carriers = bool(self.carriers)
        packet, udp, segment, tcp_row = net.packet, self._udp, flows.segment, self._tcp_row  # bound once: hot loop
        for frame_no, ts, linktype, data, orig in frames:
            cut = len(data) < orig
            pkt = packet(linktype, data, frame_no, cut)
            if pkt is None:
                continue
            src, dst, proto, l4 = pkt
            if proto == UDP:
                row = udp(src, dst, l4, ts, frame_no, cut)
                if row is not None:
                    yield row
            elif proto == TCP:
                n = len(l4)
                if n < 20:
                    if not cut:
                        report.add("bad_tcp_header", frame_no, f"{n} octets")
                    continue
                sport, dport, seq, doff, tcp_flags = _TCP_HEADER(l4)
                krb = sport in KRB_PORTS or dport in KRB_PORTS
                if not krb and not carriers:
                    continue
                doff = (doff >> 4) * 4
                if doff < 20 or doff > n:
                    if not cut or doff < 20:
                        report.add("bad_tcp_header", frame_no, f"data offset {doff} of {n} octets")
                    elif krb:
                        report.add("truncated_frame", frame_no, f"{len(data)} of {orig} octets")
                    continue
                if cut and krb:
                    report.add("truncated_frame", frame_no, f"{len(data)} of {orig} octets")
                done = segment(
                    src, sport, dst, dport, seq, tcp_flags, l4[doff:], ts, frame_no, orig - len(data) if cut else 0
                )
                for flow, from_client, fields, mts, mno in done:
                    yield tcp_row(flow, from_client, fields, mts, mno)
        if not finish:
            return
        net.finish()
        for flow, from_client, fields, mts, mno in flows.finish_all():
            yield self._tcp_row(flow, from_client, fields, mts, mno)

    def _udp(self, src: bytes, dst: bytes, l4: bytes, ts: int, frame_no: int, cut: bool) -> KrbRecord | None:
        report = self.report
        n = len(l4)
        if n < 8:
            if not cut:
                report.add("bad_udp_header", frame_no, f"{n} octets")
            return None
        sport, dport, ulen = _UDP_HEADER(l4)
        if dport in KRB_PORTS:
            server_port, to_server = dport, True
        elif sport in KRB_PORTS:
            server_port, to_server = sport, False
        else:
            return None
        if self.quiet and not to_server:
            return None  # a reply while only the state matters (the requests' phases): its row is thrown away
        if ulen < 8:
            report.add("bad_udp_header", frame_no, f"UDP length {ulen}")
            return None
        if ulen > n:
            if cut:
                report.add("truncated_frame", frame_no, f"UDP datagram of {ulen} octets, {n} captured")
            else:
                report.add("bad_udp_length", frame_no, f"UDP length {ulen}, {n} octets present")
            ulen = n
        elif cut:
            report.add("truncated_frame", frame_no, "frame cut after the UDP datagram")
        name, decode = _carrier_of(server_port)
        payload = l4[8:ulen]
        try:
            fields = decode(payload)
        except KrbDecodeError as exc:
            report.add("asn1_decode_error", frame_no, f"{name} udp payload of {len(payload)} octets: {exc}")
            return None
        pair = (src, sport, dst, dport) if to_server else (dst, dport, src, sport)
        msg = fields["msg_type"]
        if to_server:
            if msg in _REQUESTS:
                phases = self.udp_phase
                phases.pop(pair, None)
                if len(phases) >= MAX_UDP_PAIRS:  # forget the oldest half at once (cheap, see streams._evict)
                    self.udp_phase = phases = dict(list(phases.items())[MAX_UDP_PAIRS // 2 :])
                phases[pair] = fields["phase"]  # type: ignore[assignment]
        elif msg == "KRB-ERROR" and fields["phase"] is None:
            fields["phase"] = self.udp_phase.get(pair)
        return self._row(fields, ts, frame_no, name, "udp", src, dst, sport, dport)

    def _tcp_row(self, flow: TcpFlow, from_client: bool, fields: dict[str, object], ts: int, fno: int) -> KrbRecord:
        client, cport = flow.client
        k = flow.key
        server, sport = (k[2], k[3]) if (k[0], k[1]) == flow.client else (k[0], k[1])
        msg = fields.get("msg_type")
        if from_client:
            if msg in _REQUESTS:
                flow.phase = fields.get("phase")  # type: ignore[assignment]
            src, dst, sp, dp = client, server, cport, sport
        else:
            if msg == "KRB-ERROR" and fields.get("phase") is None:
                fields["phase"] = flow.phase
            src, dst, sp, dp = server, client, sport, cport
        return self._row(fields, ts, fno, fields.get("carrier"), "tcp", src, dst, sp, dp)  # type: ignore[arg-type]

    def _row(
        self,
        fields: dict[str, object],
        ts: int,
        frame_no: int,
        carrier: str | None,
        transport: str,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
    ) -> KrbRecord:
        report = self.report
        report.messages += 1
        if fields.get("partial"):
            report.add("partial_message", frame_no, str(fields.get("msg_type")))
        # Every field (the template) overlaid with the message's; an application carrier's keys of its own are
        # ignored by _values, which reads exactly the KrbRecord fields in their order, in one C call.
        values = _TEMPLATE | fields
        values["ts"] = ts
        values["source"] = self.path
        values["source_kind"] = self.kind
        values["record_no"] = frame_no
        values["carrier"] = carrier
        values["transport"] = transport
        values["src_ip"] = self.addr[src]
        values["dst_ip"] = self.addr[dst]
        values["src_port"] = sport
        values["dst_port"] = dport
        return _new(KrbRecord, _values(values))
