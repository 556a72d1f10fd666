"""Property tests (hypothesis) of TCP reassembly + record marks: however a stream of Kerberos records is cut into
segments, reordered, duplicated or overlapped, every message comes out exactly once, in order; when one segment is
lost, exactly the records it touched are lost, one ``tcp_gap`` is counted, and everything after is found again."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st
from test_capture_build import AS_REP, AS_REQ, AS_REQ2, ERR_PREAUTH, TGS_REP, TGS_REQ, msg, rm

from parsers.krb5 import decode_message
from parsers.record import ParseReport
from parsers.recordmark import RecordMarkFlow
from parsers.streams import FlowTable

A, B = b"\x0a\x00\x00\x05", b"\x0a\x00\x00\x01"
LABELS = [AS_REQ, ERR_PREAUTH, AS_REQ2, AS_REP, TGS_REQ, TGS_REP]


def _run(segments: list[tuple[int, bytes]], isn: int) -> tuple[list[int | None], ParseReport]:
    """Feed client->server segments (offset in the stream, octets) after a SYN; return the nonces of the
    messages (a per-message fingerprint) in the order they came out."""
    report = ParseReport("t")

    def decide(key: object, server_port: int, first: bytes, from_client: bool) -> RecordMarkFlow:
        return RecordMarkFlow("kdc", decode_message, report)

    table = FlowTable(report, decide)
    table.segment(A, 50000, B, 88, isn, 0x02, b"", 0, 0)
    out = []
    for i, (off, data) in enumerate(segments, start=1):
        out += table.segment(A, 50000, B, 88, (isn + 1 + off) % (1 << 32), 0x18, data, i, i)
    out += table.finish_all()
    return [fields["msg_type"] + str(fields["nonce"] or fields["error_code"]) for _f, _c, fields, _t, _n in out], report  # type: ignore[operator,misc]


def _stream(order: list[int]) -> tuple[bytes, list[str], list[tuple[int, int]]]:
    raws = [msg(LABELS[i]) for i in order]
    spans, pos = [], 0
    for raw in raws:
        spans.append((pos, pos + 4 + len(raw)))
        pos += 4 + len(raw)
    want = []
    for raw in raws:
        f = decode_message(raw)
        want.append(str(f["msg_type"]) + str(f["nonce"] or f["error_code"]))
    return b"".join(rm(r) for r in raws), want, spans


def _cut(stream: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    points = sorted({0, len(stream), *(c % len(stream) for c in cuts)})
    return [(a, stream[a:b]) for a, b in itertools.pairwise(points)]


records = st.lists(st.integers(0, len(LABELS) - 1), min_size=1, max_size=6)
cuts = st.lists(st.integers(0, 20_000), max_size=25)


@settings(max_examples=120, deadline=None)
@given(order=records, cuts=cuts, isn=st.integers(0, (1 << 32) - 1), data=st.data())
def test_any_segmentation_reordering_and_duplication(
    order: list[int], cuts: list[int], isn: int, data: st.DataObject
) -> None:
    stream, want, _spans = _stream(order)
    segs = _cut(stream, cuts)
    # out of order within a bounded window, some duplicated, some overlapping their neighbour
    segs = data.draw(st.permutations(segs)) if len(segs) <= 8 else segs[::-1]
    extra = data.draw(st.lists(st.sampled_from(segs), max_size=3))
    overlaps = [(a, stream[a : a + len(d) + 7]) for a, d in data.draw(st.lists(st.sampled_from(segs), max_size=2))]
    got, report = _run(segs + extra + overlaps, isn)
    assert got == want
    assert not report.issues


@settings(max_examples=120, deadline=None)
@given(order=records, cuts=cuts, isn=st.integers(0, (1 << 32) - 1), data=st.data())
def test_one_lost_segment(order: list[int], cuts: list[int], isn: int, data: st.DataObject) -> None:
    stream, want, spans = _stream(order)
    segs = _cut(stream, cuts)
    if len(segs) < 2:
        return
    lost = data.draw(st.integers(0, len(segs) - 2))  # not the last: a lost tail is no gap anyone can see
    a, d = segs[lost]
    b = a + len(d)
    kept = [w for w, (s, e) in zip(want, spans, strict=True) if e <= a or s >= b]
    got, report = _run(segs[:lost] + segs[lost + 1 :], isn)
    assert got == kept
    assert report.issues["tcp_gap"] == 1
    assert set(report.issues) <= {"tcp_gap", "tcp_resync_skipped"}


@settings(max_examples=80, deadline=None)
@given(size=st.integers(8, 120).map(lambda n: n * 8), data=st.data())
def test_ipv4_fragments_any_order_and_duplicates(size: int, data: st.DataObject) -> None:
    """Whatever the fragment size, order and duplicates, the datagram is rebuilt exactly once, on the frame of the
    fragment that completed it."""
    from scapy.layers.inet import IP, UDP, fragment
    from scapy.packet import Raw

    from parsers.ip import Network

    payload = msg(TGS_REP)
    pkt = IP(src="10.0.0.1", dst="10.0.0.5", id=4242) / UDP(sport=88, dport=50000) / Raw(payload)
    frags = [bytes(f) for f in fragment(pkt, fragsize=size)]
    order = data.draw(st.permutations(frags))
    assert len(frags) >= 2
    # duplicates, but never a second full set (that would be a second datagram)
    order = order + data.draw(st.lists(st.sampled_from(frags[1:]), max_size=3))
    report = ParseReport("t")
    net = Network(report, lambda proto, first: True)
    done = []
    seen: set[bytes] = set()
    for i, f in enumerate(order):
        got = net.packet(101, f, i, False)
        seen.add(f)
        if got is not None:
            done.append((i, got))
            assert len(seen) == len(frags)  # not before every fragment was there
    assert len(done) == 1
    _i, (src, dst, proto, l4) = done[0]
    assert (src, dst, proto) == (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 5]), 17) and l4[8:] == payload
    assert not report.issues
