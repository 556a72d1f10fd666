"""The carrier extension point (parsers.streams.Carrier / CarrierFlow), exercised with a small fake carrier: which
flows are offered, once, with the client/server roles right; in-order bytes, the completing frame's time and
number, gaps reported to the carrier; and the FlowTable reassembly rules on their own."""

from __future__ import annotations

from pathlib import Path

from test_capture_build import AS_REQ, T0, frames, kinds, msg, pcap, read, rm, tcp

from parsers.krb5 import decode_message
from parsers.record import ParseReport
from parsers.streams import Completed, FlowTable, server_side


class FakeFlow:
    """Lines of ``KRB <hex>``; each completed line is a decoded Kerberos message."""

    def __init__(self, log: list[tuple[str, bool]]) -> None:
        self.buf = {True: b"", False: b""}
        self.log = log

    def feed(self, to_server: bool, data: bytes, ts: int, frame_no: int) -> list[Completed]:
        self.buf[to_server] += data
        out: list[Completed] = []
        while b"\n" in self.buf[to_server]:
            line, self.buf[to_server] = self.buf[to_server].split(b"\n", 1)
            if line.startswith(b"KRB "):
                fields = decode_message(bytes.fromhex(line[4:].decode()))
                fields["carrier"] = "fake"
                fields["app_status"] = "OK"
                out.append((fields, ts, frame_no))
        return out

    def gap(self, to_server: bool) -> None:
        self.log.append(("gap", to_server))
        self.buf[to_server] = b""


class FakeCarrier:
    name = "fake"

    def __init__(self) -> None:
        self.asked: list[tuple[int, bytes, bool]] = []
        self.log: list[tuple[str, bool]] = []

    def accepts(self, server_port: int, first: bytes, from_client: bool) -> bool:
        self.asked.append((server_port, first[:4], from_client))
        return server_port == 7777 and first.startswith(b"HELO")

    def new_flow(self) -> FakeFlow:
        return FakeFlow(self.log)


def _line(label: str) -> bytes:
    return b"KRB " + msg(label).hex().encode() + b"\n"


def test_fake_carrier_end_to_end(tmp_path: Path) -> None:
    line = _line(AS_REQ)
    pkts = [
        tcp(b"", 100, flags="S", port=7777),
        tcp(b"", 900, to_kdc=False, flags="SA", port=7777),
        tcp(b"HELO\n" + line[:40], 101, port=7777),
        tcp(line[40:], 101 + 5 + 40, port=7777),  # completes the message: frame 4
        tcp(line, 901, to_kdc=False, port=7777),  # server to client
        tcp(b"other protocol", 1, sport=40000, port=9999),  # refused flow seen without SYN: forgotten at once,
        tcp(b"still other", 15, sport=40000, port=9999),  # so its next segment is offered again
        tcp(rm(msg(AS_REQ)), 1, sport=40001, port=88),  # port 88 is never offered to carriers
    ]
    carrier = FakeCarrier()
    rows, report = read(tmp_path, pcap(frames(pkts)), carriers=[carrier])
    assert kinds(rows) == [(4, "AS-REQ"), (5, "AS-REQ"), (8, "AS-REQ")]
    assert [r.carrier for r in rows] == ["fake", "fake", "kdc"]
    assert rows[0].ts == T0 + 3000 and rows[0].app_status == "OK"
    assert (rows[0].src_port, rows[0].dst_port, rows[1].src_port, rows[1].dst_port) == (50000, 7777, 7777, 50000)
    assert carrier.asked == [(7777, b"HELO", True), (9999, b"othe", True), (9999, b"stil", True)]
    assert carrier.log == [] and not report.issues


def test_fake_carrier_sees_gaps_and_mid_stream(tmp_path: Path) -> None:
    line = _line(AS_REQ)
    pkts = [
        tcp(b"HELO\n", 101, port=7777),  # no SYN: mid-stream start, the client has the higher port
        tcp(line[:30], 106, port=7777),
        # 20 octets lost
        tcp(line[50:], 156, port=7777),
        tcp(line, 156 + len(line) - 50, port=7777),
    ]
    carrier = FakeCarrier()
    rows, report = read(tmp_path, pcap(frames(pkts)), carriers=[carrier])
    assert kinds(rows) == [(4, "AS-REQ")]  # after the gap is given up at the end of the capture
    assert carrier.asked == [(7777, b"HELO", True)]
    assert carrier.log == [("gap", True), ("gap", True)]  # mid-stream start, then the hole
    assert report.issues == {"tcp_gap": 1}


def test_server_side_without_syn() -> None:
    assert server_side(88, 50000) == 0
    assert server_side(50000, 445) == 1
    assert server_side(5000, 6000) == 0
    assert server_side(6000, 5000) == 1


class Collect:
    def __init__(self) -> None:
        self.data = {True: b"", False: b""}
        self.gaps: list[bool] = []

    def feed(self, to_server: bool, data: bytes, ts: int, frame_no: int) -> list[Completed]:
        self.data[to_server] += data
        return [({"len": len(self.data[to_server])}, ts, frame_no)]

    def gap(self, to_server: bool) -> None:
        self.gaps.append(to_server)


def _table() -> tuple[FlowTable, Collect, ParseReport]:
    report = ParseReport("t")
    sink = Collect()

    def decide(key: object, server_port: int, first: bytes, from_client: bool) -> Collect:
        return sink

    return FlowTable(report, decide), sink, report


A, B = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"


def test_flowtable_overlaps_first_copy_wins() -> None:
    table, sink, report = _table()
    table.segment(A, 5000, B, 80, 0, 0x02, b"", 0, 1)  # SYN, ISN 0
    table.segment(A, 5000, B, 80, 1, 0x18, b"abcd", 0, 2)
    table.segment(A, 5000, B, 80, 3, 0x18, b"XXef", 0, 3)  # overlap: "cd" already delivered, keep it
    table.segment(A, 5000, B, 80, 9, 0x18, b"ij", 0, 4)  # ahead: waits
    table.segment(A, 5000, B, 80, 7, 0x18, b"gh", 0, 5)  # fills the hole, releases "ij"
    assert sink.data[True] == b"abcdefghij" and not sink.gaps and not report.issues


def test_flowtable_pending_bound_makes_a_gap() -> None:
    from parsers import streams

    table, sink, report = _table()
    table.segment(A, 5000, B, 80, 0, 0x02, b"", 0, 1)
    for i in range(streams.MAX_PENDING_SEGMENTS + 1):
        table.segment(A, 5000, B, 80, 100 + i, 0x18, b"z", 0, 2 + i)  # octets 1..99 never come
    assert report.issues == {"tcp_gap": 1} and sink.gaps == [True]
    assert sink.data[True] == b"z" * (streams.MAX_PENDING_SEGMENTS + 1)


def test_refused_flows_are_forgotten_when_they_end() -> None:
    """A refused flow that began with a SYN is remembered (asked once) until its FINs or RST."""
    report = ParseReport("t")
    asked = []

    def decide(key: object, server_port: int, first: bytes, from_client: bool) -> None:
        asked.append(first)
        return None

    table = FlowTable(report, decide)
    for i in range(3):
        table.segment(A, 6000 + i, B, 80, 0, 0x02, b"", 0, 1)  # SYN
        table.segment(A, 6000 + i, B, 80, 1, 0x18, b"data", 0, 1)
        table.segment(A, 6000 + i, B, 80, 5, 0x18, b"more", 0, 2)  # not asked again
    assert len(table.flows) == 3 and asked == [b"data"] * 3
    assert table.watch == {}  # refused: the prefilter may drop their segments
    table.segment(A, 6000, B, 80, 9, 0x11, b"", 0, 3)
    table.segment(B, 80, A, 6000, 1, 0x11, b"", 0, 4)
    table.segment(B, 80, A, 6001, 1, 0x14, b"", 0, 5)  # RST
    assert list(table.flows) == [(A, 6002, B, 80)] and not report.issues


def test_refused_flow_without_syn_is_offered_again() -> None:
    """A flow first seen mid-stream and refused leaves no state: the next segment (here the other direction's
    first, which starts a unit) is offered again and can be accepted; a refusal costs no memory."""
    report = ParseReport("t")
    sink = Collect()
    asked: list[tuple[int, bytes, bool]] = []

    def decide(key: object, server_port: int, first: bytes, from_client: bool) -> Collect | None:
        asked.append((server_port, first, from_client))
        return sink if first.startswith(b"HELO") else None

    table = FlowTable(report, decide)
    for port in range(6000, 6100):
        table.segment(A, port, B, 80, 7, 0x18, b"tail of something", 0, 1)
    assert table.flows == {} and table.watch == {} and len(asked) == 100
    table.segment(A, 7000, B, 80, 7, 0x18, b"tail", 0, 2)  # client's middle: refused
    table.segment(B, 80, A, 7000, 90, 0x18, b"HELO back", 0, 3)  # server's first unit: accepted
    assert asked[-2:] == [(80, b"tail", True), (80, b"HELO back", False)]
    assert list(table.flows) == [(A, 7000, B, 80)]
    assert table.watch == {7000 << 16 | 80: 1, 80 << 16 | 7000: 1}
    assert sink.data[False] == b"HELO back" and sink.gaps == [False]  # mid-stream start: resynchronise first
    table.segment(A, 7000, B, 80, 11, 0x11, b"", 0, 4)
    table.segment(B, 80, A, 7000, 99, 0x11, b"", 0, 5)
    assert table.flows == {} and table.watch == {}


class BrokenCarrier(FakeCarrier):
    def new_flow(self) -> FakeFlow:
        flow = FakeFlow(self.log)

        def feed(to_server: bool, data: bytes, ts: int, frame_no: int) -> list[Completed]:
            raise RuntimeError("carrier bug")

        flow.feed = feed  # type: ignore[method-assign]
        return flow


def test_a_failing_carrier_costs_its_flow_not_the_capture(tmp_path: Path) -> None:
    pkts = [
        tcp(b"HELO\n", 101, port=7777),
        tcp(_line(AS_REQ), 106, port=7777),  # skipped: the flow was dropped
        tcp(rm(msg(AS_REQ)), 1, sport=40001, port=88),
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)), carriers=[BrokenCarrier()])
    assert kinds(rows) == [(3, "AS-REQ")]
    assert report.issues == {"carrier_error": 1}


def test_flow_table_bound(monkeypatch) -> None:
    from parsers import streams

    monkeypatch.setattr(streams, "MAX_FLOWS", 50)
    table, _sink, report = _table()
    table.segment(A, 1, B, 80, 0, 0x02, b"", 0, 1)
    table.segment(A, 1, B, 80, 1, 0x18, b"ab", 0, 2)
    table.segment(A, 1, B, 80, 9, 0x18, b"zz", 0, 3)  # waits behind a hole
    for port in range(2, 200):
        table.segment(A, port, B, 80, 1, 0x18, b"x", 0, 3 + port)
        assert len(table.flows) <= 50
    assert (A, 199, B, 80) in table.flows and (A, 1, B, 80) not in table.flows
    assert report.issues == {"tcp_gap": 1}  # the evicted flow's hole is counted


def test_out_of_order_budget_over_all_flows(monkeypatch) -> None:
    from parsers import streams

    monkeypatch.setattr(streams, "MAX_TOTAL_PENDING", 100)
    table, sink, report = _table()
    for port in (1, 2, 3):
        table.segment(A, port, B, 80, 0, 0x02, b"", 0, 1)
        table.segment(A, port, B, 80, 11, 0x18, b"y" * 40, 0, 2)  # octets 1..10 missing: waits
    # the third flow pushed the total past 100: it gives up its own hole at once
    assert report.issues == {"tcp_gap": 1} and table.pending_total == 80
    held = sum(d.pending_bytes for f in table.flows.values() for d in f.dirs)
    assert held == table.pending_total
    table.finish_all()
    assert table.pending_total == 0 and report.issues == {"tcp_gap": 3}
    assert sink.data[True] == b"y" * 120
