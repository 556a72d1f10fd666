"""Kerberos over TCP: RFC 4120 §7.2.2 record marks through per-flow reassembly (several records per segment, one
record over many segments, retransmissions, overlaps, out-of-order segments, mid-stream starts, gaps, the reserved
high bit, sequence wrap, snaplen cuts, kpasswd on 464)."""

from __future__ import annotations

from pathlib import Path

from test_capture_build import (
    AS_REP,
    AS_REQ,
    AS_REQ2,
    ERR_PREAUTH,
    ERR_S_UNKNOWN,
    KPASSWD_REP,
    KPASSWD_REQ,
    T0,
    TGS_REP,
    TGS_REQ,
    frames,
    kinds,
    msg,
    pcap,
    read,
    rm,
    tcp,
)

C = 1000  # client initial sequence number
S = 5000  # server initial sequence number


def _handshake(c: int = C, s: int = S, port: int = 88) -> list:
    return [
        tcp(b"", c, flags="S", port=port),
        tcp(b"", s, to_kdc=False, flags="SA", port=port),
        tcp(b"", c + 1, flags="A", port=port),
    ]


def test_records_per_segment_and_segments_per_record(tmp_path: Path) -> None:
    req = rm(msg(AS_REQ)) + rm(msg(AS_REQ2))  # two records in one segment
    rep = rm(msg(AS_REP))
    parts = [rep[:3], rep[3:500], rep[500:]]  # the mark itself split, then the body
    pkts = [
        *_handshake(),
        tcp(req, C + 1),
        tcp(parts[0], S + 1, to_kdc=False),
        tcp(parts[1], S + 1 + 3, to_kdc=False),
        tcp(parts[2], S + 1 + 500, to_kdc=False),
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(4, "AS-REQ"), (4, "AS-REQ"), (7, "AS-REP")]
    assert rows[2].ts == T0 + 6000 and rows[2].transport == "tcp" and rows[2].carrier == "kdc"
    assert (rows[2].src_port, rows[2].dst_port, rows[0].dst_port) == (88, 50000, 88)
    assert not report.issues and report.messages == 3


def test_retransmission_and_overlap(tmp_path: Path) -> None:
    rec = rm(msg(TGS_REQ))
    pkts = [
        *_handshake(),
        tcp(rec[:600], C + 1),
        tcp(rec[:600], C + 1),  # retransmitted
        tcp(rec[300:900], C + 1 + 300),  # overlaps, brings 300 new octets
        tcp(rec[900:], C + 1 + 900),
        tcp(rec[900:], C + 1 + 900),  # retransmitted after completion
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(7, "TGS-REQ")] and not report.issues


def test_out_of_order(tmp_path: Path) -> None:
    rec = rm(msg(TGS_REP))
    a, b, c = rec[:400], rec[400:800], rec[800:]
    pkts = [*_handshake(), tcp(c, S + 801, to_kdc=False), tcp(b, S + 401, to_kdc=False), tcp(a, S + 1, to_kdc=False)]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(6, "TGS-REP")] and rows[0].ts == T0 + 5000 and not report.issues


def test_mid_stream_start(tmp_path: Path) -> None:
    first = rm(msg(AS_REQ))
    second = rm(msg(TGS_REQ))
    # no handshake; the first segment seen holds the end of one record and then a whole one
    pkts = [tcp(first[100:] + second, C + 100), tcp(rm(msg(ERR_S_UNKNOWN)), S, to_kdc=False)]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(1, "TGS-REQ"), (2, "KRB-ERROR")]
    assert rows[1].phase == "TGS"  # answered on the same connection
    assert (rows[0].dst_port, rows[1].src_port) == (88, 88)  # the well-known port is the server's
    assert report.issues == {"tcp_resync_skipped": 1}


def test_mid_stream_start_on_a_record_boundary(tmp_path: Path) -> None:
    pkts = [tcp(rm(msg(AS_REQ)), C + 77), tcp(rm(msg(ERR_PREAUTH)), S, to_kdc=False)]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(1, "AS-REQ"), (2, "KRB-ERROR")] and rows[1].phase == "AS" and not report.issues


def test_gap_is_counted_and_the_next_record_found(tmp_path: Path) -> None:
    one = rm(msg(TGS_REQ))
    two = rm(msg(AS_REQ))
    pkts = [
        *_handshake(),
        tcp(one[:500], C + 1),
        # one[500:1000] is lost
        tcp(one[1000:] + two[:50], C + 1 + 1000),
        tcp(two[50:], C + 1 + len(one) + 50),
        tcp(b"", C + 1 + len(one) + len(two), flags="FA"),
        tcp(b"", S + 1, to_kdc=False, flags="FA"),
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    # the octets after the hole wait for it until the connection closes; then the gap is counted and the
    # record after it found (it completes on its own last segment's frame)
    assert kinds(rows) == [(6, "AS-REQ")]
    assert report.issues == {"tcp_gap": 1, "tcp_resync_skipped": 1}


def test_gap_never_filled_until_end_of_capture(tmp_path: Path) -> None:
    one = rm(msg(TGS_REQ))
    pkts = [*_handshake(), tcp(one[:500], C + 1), tcp(one[700:] + rm(msg(AS_REQ)), C + 701)]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(5, "AS-REQ")]
    assert report.issues == {"tcp_gap": 1, "tcp_resync_skipped": 1}


def test_reserved_high_bit_is_masked(tmp_path: Path) -> None:
    pkts = [*_handshake(), tcp(rm(msg(AS_REQ), high_bit=True), C + 1)]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(4, "AS-REQ")] and not report.issues


def test_sequence_wrap(tmp_path: Path) -> None:
    rec = rm(msg(TGS_REP))
    isn = (1 << 32) - 300
    pkts = [
        tcp(b"", C, flags="S"),
        tcp(b"", isn, to_kdc=False, flags="SA"),
        tcp(rec[:500], isn + 1, to_kdc=False),  # wraps inside this segment
        tcp(rec[500:], isn + 501, to_kdc=False),
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(4, "TGS-REP")] and not report.issues


def test_kpasswd_over_tcp(tmp_path: Path) -> None:
    pkts = [
        *_handshake(port=464),
        tcp(rm(msg(KPASSWD_REQ)), C + 1, port=464),
        tcp(rm(msg(KPASSWD_REP)), S + 1, to_kdc=False, port=464),
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert [(r.record_no, r.msg_type, r.carrier) for r in rows] == [
        (4, "KPASSWD-REQ", "kpasswd"),
        (5, "KPASSWD-REP", "kpasswd"),
    ]
    assert not report.issues


def test_kpasswd_mid_stream_resync(tmp_path: Path) -> None:
    rec = rm(msg(KPASSWD_REQ))
    pkts = [tcp(b"\x01\x02\x03" + rec, C, port=464)]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(1, "KPASSWD-REQ")] and report.issues == {"tcp_resync_skipped": 1}


def test_snaplen_cut_segment(tmp_path: Path) -> None:
    one = rm(msg(TGS_REQ))
    two = rm(msg(AS_REQ))
    seg = bytes(tcp(one, C + 1))
    pkts = [
        *[(T0, bytes(p)) for p in _handshake()],
        (T0 + 1, seg[:200], len(seg)),  # the capture kept 200 octets of this frame
        (T0 + 2, bytes(tcp(two, C + 1 + len(one)))),
    ]
    rows, report = read(tmp_path, pcap(pkts))
    assert kinds(rows) == [(5, "AS-REQ")] and rows[0].ts == T0 + 2
    assert report.issues == {"truncated_frame": 1}


def test_bad_record_mark_and_undecodable_record(tmp_path: Path) -> None:
    junk = b"\x00\x00\x00\x10" + b"\x6a" + b"\x00" * 15  # a record of 16 octets that is not Kerberos
    pkts = [*_handshake(), tcp(junk, C + 1), tcp(b"GET / HTTP/1.1\r\n", C + 21), tcp(rm(msg(AS_REQ)), C + 37)]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert kinds(rows) == [(6, "AS-REQ")]
    assert report.issues == {"asn1_decode_error": 1, "bad_record_mark": 1, "tcp_resync_skipped": 1}


def test_phase_of_tcp_error_and_rst(tmp_path: Path) -> None:
    pkts = [
        *_handshake(),
        tcp(rm(msg(TGS_REQ)), C + 1),
        tcp(rm(msg(ERR_S_UNKNOWN)), S + 1, to_kdc=False),
        tcp(b"", S + 1, to_kdc=False, flags="R"),
        tcp(rm(msg(TGS_REP)), S + 1, to_kdc=False),  # after the reset: a new mid-stream flow
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert [(r.msg_type, r.phase) for r in rows] == [("TGS-REQ", "TGS"), ("KRB-ERROR", "TGS"), ("TGS-REP", "TGS")]
    assert not report.issues


def test_port_reuse_starts_a_new_connection(tmp_path: Path) -> None:
    one = rm(msg(TGS_REQ))
    pkts = [
        *_handshake(),
        tcp(one[:300], C + 1),  # the rest of this connection was not captured
        *_handshake(c=77_000, s=99_000),  # same ports, new initial sequence numbers
        tcp(rm(msg(AS_REQ)), 77_001),
        tcp(rm(msg(ERR_PREAUTH)), 99_001, to_kdc=False),
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert [(r.record_no, r.msg_type, r.phase) for r in rows] == [(8, "AS-REQ", "AS"), (9, "KRB-ERROR", "AS")]
    assert not report.issues  # the lost end of the first connection is no gap: nothing waited behind a hole
