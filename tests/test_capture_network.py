"""Network and UDP layers: IPv4 options, IPv4 fragment reassembly (in order, out of order, duplicated, incomplete),
IPv6 extension headers and fragments, UDP on 88 and 464, KRB-ERROR phases, truncated and undecodable datagrams."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, UDP, IPOption_RR, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from test_capture_build import (
    AS_REQ,
    CLIENT,
    ERR_PREAUTH,
    ERR_S_UNKNOWN,
    KDC,
    KPASSWD_REP,
    KPASSWD_REQ,
    MAC_A,
    MAC_B,
    T0,
    TGS_REP,
    TGS_REQ,
    frames,
    kinds,
    msg,
    pcap,
    read,
    udp,
)


def test_ipv4_options(tmp_path: Path) -> None:
    pkt = Ether(src=MAC_A, dst=MAC_B) / IP(src=CLIENT, dst=KDC, options=[IPOption_RR(routers=["1.2.3.4", "5.6.7.8"])])
    pkt = pkt / UDP(sport=50000, dport=88) / Raw(msg(AS_REQ))
    assert IP(bytes(pkt)[14:]).ihl > 5
    rows, report = read(tmp_path, pcap(frames([pkt])))
    assert kinds(rows) == [(1, "AS-REQ")] and not report.issues


def _frags(payload: bytes, to_kdc: bool = False, size: int = 400, ident: int = 77) -> list:
    src, dst = (CLIENT, KDC) if to_kdc else (KDC, CLIENT)
    s, d = (50000, 88) if to_kdc else (88, 50000)
    pkt = IP(src=src, dst=dst, id=ident) / UDP(sport=s, dport=d) / Raw(payload)
    return [Ether(src=MAC_A, dst=MAC_B) / f for f in fragment(pkt, fragsize=size)]


def test_ipv4_fragments_in_order(tmp_path: Path) -> None:
    parts = _frags(msg(TGS_REP))
    assert len(parts) == 3
    rows, report = read(tmp_path, pcap(frames([udp(msg(TGS_REQ)), *parts])))
    assert kinds(rows) == [(1, "TGS-REQ"), (4, "TGS-REP")]  # the frame of the last fragment, as Wireshark
    assert rows[1].ts == T0 + 3000 and rows[1].src_port == 88 and rows[1].dst_port == 50000
    assert rows[1].client == "alice" and not report.issues


def test_ipv4_fragments_out_of_order_and_duplicated(tmp_path: Path) -> None:
    a, b, c = _frags(msg(TGS_REP))
    rows, report = read(tmp_path, pcap(frames([c, a, a, b])))
    assert kinds(rows) == [(4, "TGS-REP")] and not report.issues
    # the datagram completes on the frame that fills the last hole, even if that is the first fragment
    rows, _ = read(tmp_path, pcap(frames([b, c, a])))
    assert kinds(rows) == [(3, "TGS-REP")]


def test_ipv4_fragments_incomplete_and_interleaved(tmp_path: Path) -> None:
    a, _b, c = _frags(msg(TGS_REP), ident=1)
    x, y, z = _frags(msg(TGS_REP), ident=2)
    rows, report = read(tmp_path, pcap(frames([a, x, y, c, z])))
    assert kinds(rows) == [(5, "TGS-REP")]
    assert report.issues == {"ip_fragments_incomplete": 1}


def test_fragmented_non_kerberos_is_not_counted(tmp_path: Path) -> None:
    pkt = IP(src=CLIENT, dst=KDC, id=9) / UDP(sport=5353, dport=5353) / Raw(b"x" * 3000)
    parts = [Ether(src=MAC_A, dst=MAC_B) / f for f in fragment(pkt, fragsize=1000)]
    rows, report = read(tmp_path, pcap(frames(parts[:-1])))  # last fragment missing, first says port 5353
    assert rows == [] and not report.issues


def test_ipv6_extension_headers(tmp_path: Path) -> None:
    pkt = (
        Ether()
        / IPv6(src="2001:db8::5", dst="2001:db8::1")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / UDP(sport=50000, dport=88)
        / Raw(msg(AS_REQ))
    )
    rows, report = read(tmp_path, pcap(frames([pkt])))
    assert kinds(rows) == [(1, "AS-REQ")] and rows[0].src_ip == "2001:db8::5" and not report.issues


def test_ipv6_fragments(tmp_path: Path) -> None:
    pkt = (
        IPv6(src="2001:db8::1", dst="2001:db8::5")
        / IPv6ExtHdrFragment(id=5)
        / UDP(sport=88, dport=50000)
        / Raw(msg(TGS_REP))
    )
    parts = [Ether(src=MAC_A, dst=MAC_B) / f for f in fragment6(pkt, 400)]
    assert len(parts) == 3
    rows, report = read(tmp_path, pcap(frames([parts[1], parts[2], parts[0]])))
    assert kinds(rows) == [(3, "TGS-REP")] and rows[0].dst_ip == "2001:db8::5" and not report.issues


def test_udp_phases_of_errors(tmp_path: Path) -> None:
    pkts = [
        udp(msg(AS_REQ)),
        udp(msg(ERR_PREAUTH), to_kdc=False),
        udp(msg(TGS_REQ), sport=50001),
        udp(msg(ERR_S_UNKNOWN), to_kdc=False, sport=50001),
        udp(msg(ERR_S_UNKNOWN), to_kdc=False, sport=50002),  # its request is not in the capture
    ]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert [(r.msg_type, r.phase, r.error_code) for r in rows] == [
        ("AS-REQ", "AS", None),
        ("KRB-ERROR", "AS", 25),
        ("TGS-REQ", "TGS", None),
        ("KRB-ERROR", "TGS", 7),
        ("KRB-ERROR", None, 7),
    ]
    assert not report.issues


def test_udp_kpasswd(tmp_path: Path) -> None:
    pkts = [udp(msg(KPASSWD_REQ), port=464), udp(msg(KPASSWD_REP), to_kdc=False, port=464)]
    rows, report = read(tmp_path, pcap(frames(pkts)))
    assert [(r.msg_type, r.phase, r.carrier, r.dst_port) for r in rows] == [
        ("KPASSWD-REQ", "KPASSWD", "kpasswd", 464),
        ("KPASSWD-REP", "KPASSWD", "kpasswd", 50000),
    ]
    assert not report.issues


def test_undecodable_and_truncated_udp(tmp_path: Path) -> None:
    full = bytes(udp(msg(AS_REQ)))
    pkts = [
        (T0, bytes(udp(b"\x00garbage on port 88"))),
        (T0, bytes(udp(b"", port=464))),
        (T0, full[:-40], len(full)),  # cut by the snaplen: the readable part is kept, marked partial
        (T0, full[:30], len(full)),  # cut inside the UDP header: nothing to say
        (T0, bytes(udp(b"\x6a\x03\x02\x01\x05"))),  # an AS-REQ start too short to recognise
    ]
    rows, report = read(tmp_path, pcap(pkts))
    assert kinds(rows) == [(3, "AS-REQ")] and rows[0].partial is True
    assert report.issues == {"asn1_decode_error": 3, "truncated_frame": 1, "partial_message": 1}


def test_bad_udp_and_ip_lengths(tmp_path: Path) -> None:
    good = bytearray(bytes(udp(msg(AS_REQ))))
    bad_udp = bytearray(good)
    bad_udp[14 + 20 + 4 : 14 + 20 + 6] = (3).to_bytes(2, "big")  # UDP length below its header
    long_udp = bytearray(good)
    long_udp[14 + 20 + 4 : 14 + 20 + 6] = (len(good)).to_bytes(2, "big")  # longer than the datagram, not cut
    bad_ihl = bytearray(good)
    bad_ihl[16:18] = (10).to_bytes(2, "big")  # IPv4 total length below the header length
    rows, report = read(tmp_path, pcap([(T0, bytes(b)) for b in (bad_udp, long_udp, bad_ihl, good)]))
    assert kinds(rows) == [(2, "AS-REQ"), (4, "AS-REQ")]
    assert report.issues == {"bad_udp_header": 1, "bad_udp_length": 1, "bad_ip_header": 1}


def test_too_many_fragments(tmp_path: Path) -> None:
    a, b, c = _frags(msg(TGS_REP))
    from parsers import ip

    rows, report = read(tmp_path, pcap(frames([a] + [b] * (ip.MAX_FRAGMENTS + 5) + [c])))
    assert rows == [] and report.issues == {"bad_ip_fragment": 1}


def test_ipv6_fragment_with_extension_header_inside(tmp_path: Path) -> None:
    pkt = (
        IPv6(src="2001:db8::1", dst="2001:db8::5")
        / IPv6ExtHdrFragment(id=6)
        / IPv6ExtHdrDestOpt()
        / UDP(sport=88, dport=50000)
        / Raw(msg(TGS_REP))
    )
    parts = [Ether(src=MAC_A, dst=MAC_B) / f for f in fragment6(pkt, 400)]
    rows, report = read(tmp_path, pcap(frames(parts)))
    assert kinds(rows) == [(len(parts), "TGS-REP")] and not report.issues
