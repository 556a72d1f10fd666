"""File formats and link layers: pcap (micro/nano, both byte orders), pcapng (several interfaces, link types and
timestamp resolutions, several sections), gzip; Ethernet, 802.1Q, QinQ, Linux SLL/SLL2, raw IP, BSD loopback."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Raw
from test_capture_build import (
    AS_REQ,
    CLIENT,
    ERR_PREAUTH,
    KDC,
    MAC_A,
    MAC_B,
    T0,
    epb,
    frames,
    idb,
    kinds,
    msg,
    pcap,
    read,
    shb,
    spb,
    udp,
)

from parsers import detect
from parsers.capture import sniff


def _udp_ip(payload: bytes, v6: bool = False) -> bytes:
    ip = IPv6(src="2001:db8::5", dst="2001:db8::1") if v6 else IP(src=CLIENT, dst=KDC)
    return bytes(ip / UDP(sport=50000, dport=88) / Raw(payload))


@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcap_resolutions_and_byte_orders(tmp_path: Path, nano: bool, endian: str) -> None:
    data = pcap(frames([udp(msg(AS_REQ)), udp(msg(ERR_PREAUTH), to_kdc=False)], step=1234567), nano=nano, endian=endian)
    if nano:  # a nanosecond part below one microsecond is truncated, as Wireshark shows microseconds
        data = data[: 24 + 4] + struct.pack(endian + "I", 999) + data[24 + 8 :]
    rows, report = read(tmp_path, data)
    assert kinds(rows) == [(1, "AS-REQ"), (2, "KRB-ERROR")]
    assert rows[0].ts == T0 - T0 % 1_000_000 + (0 if nano else T0 % 1_000_000)
    assert rows[1].ts == T0 + 1234567
    assert (rows[0].src_ip, rows[0].dst_ip, rows[0].src_port, rows[0].dst_port) == (CLIENT, KDC, 50000, 88)
    assert (rows[1].src_ip, rows[1].dst_ip, rows[1].src_port, rows[1].dst_port) == (KDC, CLIENT, 88, 50000)
    assert rows[0].source_kind == "pcap" and rows[0].source == str(tmp_path / "c.pcap")
    assert rows[0].carrier == "kdc" and rows[0].transport == "udp"
    assert rows[1].phase == "AS" and rows[1].error_code == 25
    assert report.units == 2 and report.messages == 2 and not report.issues


def test_pcapng_interfaces_resolutions_sections(tmp_path: Path) -> None:
    eth = bytes(udp(msg(AS_REQ)))
    raw4 = _udp_ip(msg(AS_REQ))
    raw6 = _udp_ip(msg(ERR_PREAUTH), v6=True)
    data = (
        shb()
        + idb(1)  # default resolution: microseconds
        + idb(101, tsresol=9)  # nanoseconds
        + idb(228, tsresol=0x80 | 10, tsoffset=100)  # 2^-10 s, 100 s offset
        + epb(0, T0, eth)
        + block_nrb()
        + epb(1, T0 * 1000 + 1999, raw4)
        + epb(2, 5 * 1024 + 512, raw4)
        + spb(eth)  # simple packet block: interface 0, no time stamp
        # a second section in big-endian order: interface numbers restart
        + shb(">")
        + idb(229, endian=">")
        + epb(0, T0 + 7, raw6, endian=">")
    )
    rows, report = read(tmp_path, data, "c.pcapng")
    assert kinds(rows) == [(1, "AS-REQ"), (2, "AS-REQ"), (3, "AS-REQ"), (4, "AS-REQ"), (5, "KRB-ERROR")]
    assert [r.ts for r in rows[:3]] == [T0, T0 + 1, 100_000_000 + 5_500_000]
    assert rows[3].ts == 0  # a simple packet block has no time stamp: Wireshark shows the epoch too
    assert rows[4].ts == T0 + 7 and rows[4].src_ip == "2001:db8::5" and rows[4].dst_port == 88
    assert all(r.source_kind == "pcapng" for r in rows)
    assert report.units == 5 and not report.issues


def block_nrb() -> bytes:
    """A Name Resolution Block (type 4): not a frame, must not be numbered."""
    from test_capture_build import block

    return block(4, struct.pack("<HH", 0, 0))


@pytest.mark.parametrize("name", ["c.pcap", "c.pcapng"])
def test_gzip(tmp_path: Path, name: str) -> None:
    pkt = bytes(udp(msg(AS_REQ)))
    data = pcap([(T0, pkt)]) if name == "c.pcap" else shb() + idb(1) + epb(0, T0, pkt)
    rows, report = read(tmp_path, data, name + ".gz", gz=True)
    assert kinds(rows) == [(1, "AS-REQ")] and rows[0].ts == T0
    assert report.source_kind == name.split(".")[1]
    assert detect(tmp_path / (name + ".gz")) == name.split(".")[1]


def test_sniff() -> None:
    assert sniff(b"\xd4\xc3\xb2\xa1" + b"\0" * 20) == "pcap"
    assert sniff(b"\xa1\xb2\x3c\x4d" + b"\0" * 20) == "pcap"
    assert sniff(shb()) == "pcapng"
    assert sniff(shb(">")) == "pcapng"
    assert sniff(b"\x0a\x0d\x0d\x0a" + b"\0" * 20) is None  # no byte-order magic
    assert sniff(b"") is None
    assert sniff(b"<?xml version") is None


LINKS = {
    "ethernet": (1, Ether(src=MAC_A, dst=MAC_B) / IP(src=CLIENT, dst=KDC)),
    "vlan": (1, Ether(src=MAC_A, dst=MAC_B) / Dot1Q(vlan=300) / IP(src=CLIENT, dst=KDC)),
    "qinq": (1, Ether(src=MAC_A, dst=MAC_B) / Dot1AD(vlan=10) / Dot1Q(vlan=300) / IP(src=CLIENT, dst=KDC)),
    "sll": (113, CookedLinux(proto=0x0800) / IP(src=CLIENT, dst=KDC)),
    "sll_vlan": (113, CookedLinux(proto=0x8100) / Dot1Q(vlan=5) / IP(src=CLIENT, dst=KDC)),
    "sll2": (276, CookedLinuxV2(proto=0x0800) / IP(src=CLIENT, dst=KDC)),
    "raw": (101, IP(src=CLIENT, dst=KDC)),
    "raw_ipv4": (228, IP(src=CLIENT, dst=KDC)),
    "raw_ipv6": (229, IPv6(src="2001:db8::5", dst="2001:db8::1")),
    "raw_v6_in_101": (101, IPv6(src="2001:db8::5", dst="2001:db8::1")),
    "null_le": (0, Loopback(type=2) / IP(src=CLIENT, dst=KDC)),
    "ethernet_ipv6": (1, Ether(src=MAC_A, dst=MAC_B) / IPv6(src="2001:db8::5", dst="2001:db8::1")),
}


@pytest.mark.parametrize("link", sorted(LINKS))
def test_link_layers(tmp_path: Path, link: str) -> None:
    linktype, head = LINKS[link]
    pkt = bytes(head / UDP(sport=50000, dport=88) / Raw(msg(AS_REQ)))
    rows, report = read(tmp_path, pcap([(T0, pkt)], linktype=linktype))
    assert kinds(rows) == [(1, "AS-REQ")], link
    assert rows[0].src_ip in (CLIENT, "2001:db8::5") and rows[0].dst_port == 88
    assert rows[0].client == "alice" and not report.issues


@pytest.mark.parametrize(
    ("linktype", "family", "order"), [(0, 2, "<"), (0, 30, "<"), (0, 24, ">"), (108, 2, ">"), (108, 28, ">")]
)
def test_bsd_loopback_families(tmp_path: Path, linktype: int, family: int, order: str) -> None:
    ip = IP(src=CLIENT, dst=KDC) if family == 2 else IPv6(src="::1", dst="::1")
    pkt = struct.pack(order + "I", family) + bytes(ip / UDP(sport=50000, dport=88) / Raw(msg(AS_REQ)))
    rows, report = read(tmp_path, pcap([(T0, pkt)], linktype=linktype))
    assert kinds(rows) == [(1, "AS-REQ")] and not report.issues


def test_non_ip_and_unsupported_link(tmp_path: Path) -> None:
    arp = bytes(Ether(src=MAC_A, dst=MAC_B, type=0x0806) / Raw(b"\0" * 28))
    rows, report = read(tmp_path, pcap([(T0, arp), (T0, bytes(udp(msg(AS_REQ))))]))
    assert kinds(rows) == [(2, "AS-REQ")] and not report.issues and report.units == 2
    rows, report = read(tmp_path, pcap([(T0, b"\0" * 60)] * 3, linktype=127))  # 802.11 radiotap
    assert rows == [] and report.issues == {"unsupported_link_type": 3} and report.units == 3


def test_mapped_windows_agree_with_streamed_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain file is memory-mapped and walked window by window; a gzip file is read in chunks: same rows."""
    from scapy.layers.inet import TCP

    from parsers import pcapfile

    noise = [
        Ether(src=MAC_A, dst=MAC_B) / IP(src="10.9.9.9", dst="10.8.8.8") / TCP(sport=443, dport=40000) / Raw(b"n" * n)
        for n in range(0, 1400, 97)
    ]
    pkts = []
    for i in range(40):
        pkts += noise[i % 5 : i % 5 + 3]
        pkts.append(udp(msg(AS_REQ) if i % 2 else msg(ERR_PREAUTH), to_kdc=bool(i % 2)))
        pkts.append(
            Ether(src=MAC_A, dst=MAC_B)
            / Dot1Q(vlan=7)
            / IP(src=CLIENT, dst=KDC)
            / UDP(sport=50001, dport=88)
            / Raw(msg(AS_REQ))
        )
    data = pcap(frames(pkts))
    monkeypatch.setattr(pcapfile, "_WINDOW", 4096)
    mapped, r1 = read(tmp_path, data, "m.pcap")
    streamed, r2 = read(tmp_path, data, "s.pcap.gz", gz=True)
    assert len(mapped) == 80 and [x[3:] for x in mapped] == [x[3:] for x in streamed]
    assert [x.record_no for x in mapped] == [x.record_no for x in streamed]
    assert r1.units == r2.units == len(pkts) and not r1.issues and not r2.issues


def test_pcapng_fast_path_agrees_with_pcap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pcapng with only Ethernet interfaces takes a fused loop over Enhanced Packet Blocks; a pcap of the same
    frames, and the same pcapng gzip-compressed, give the same rows."""
    from scapy.layers.inet import TCP

    from parsers import pcapfile

    pkts = []
    for i in range(30):
        pkts.append(
            Ether(src=MAC_A, dst=MAC_B)
            / IP(src="10.9.9.9", dst="10.8.8.8")
            / TCP(sport=443, dport=40000)
            / Raw(b"n" * (i * 41))
        )
        pkts.append(udp(msg(AS_REQ) if i % 2 else msg(ERR_PREAUTH), to_kdc=bool(i % 2)))
        pkts.append(
            Ether(src=MAC_A, dst=MAC_B)
            / IPv6(src="2001:db8::5", dst="2001:db8::1")
            / UDP(sport=50001, dport=88)
            / Raw(msg(AS_REQ))
        )
    timed = frames(pkts)
    ng = (
        shb()
        + idb(1)
        + idb(1, tsresol=9)
        + b"".join(epb(i % 2, ts * (1000 if i % 2 else 1), d) for i, (ts, d) in enumerate(timed))
    )
    monkeypatch.setattr(pcapfile, "_WINDOW", 4096)
    a, ra = read(tmp_path, ng, "a.pcapng")
    b, rb = read(tmp_path, ng, "b.pcapng.gz", gz=True)
    c, rc = read(tmp_path, pcap(timed), "c.pcap")
    assert len(a) == 60
    assert [x[3:] for x in a] == [x[3:] for x in b] == [x[3:] for x in c]
    assert [x.ts for x in a] == [x.ts for x in c]
    assert ra.units == rb.units == rc.units == 90 and not ra.issues and not rb.issues
