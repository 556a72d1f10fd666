"""Kerberos inside tunnels (parsers/tunnels.py): IP in IP, GRE (Ethernet, IP, MPLS, key and sequence fields, ERSPAN
II and III), VXLAN, VXLAN-GPE, Geneve and MPLS label stacks, behind IPv4, IPv6 and 802.1Q, in pcap and pcapng.

The real-KDC samples are wrapped frame by frame; the rows must be the samples' own (the inner endpoints), and TShark,
which dissects these tunnels itself, must find the same Kerberos messages in the same frames. Tunnel headers are
built here from the RFC layouts with ``struct``, not by the code under test."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw
from test_capture_build import epb, idb, pcap, shb

from parsers import ParseReport, iter_records
from parsers.record import KrbRecord
from parsers.tunnels import MAX_TUNNELS

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "kdc"
# UDP exchanges, TCP with record marks over several segments, IPv6
CAPTURES = ("01_as_tgs_ok.pcap", "13_tcp_only.pcap", "15_ipv6.pcap")
OUTER_A, OUTER_B = "192.0.2.10", "198.51.100.20"


def _outer_ether() -> Ether:  # explicit addresses: scapy would otherwise resolve them (slow for IPv6)
    return Ether(src="02:00:00:00:aa:01", dst="02:00:00:00:aa:02")


TSHARK = ("tshark", "-n", "-Y", "kerberos", "-T", "fields", "-e", "frame.number", "-e", "kerberos.msg_type", "-r")
MSG_TYPES = {"AS-REQ": 10, "AS-REP": 11, "TGS-REQ": 12, "TGS-REP": 13, "AP-REQ": 14, "AP-REP": 15, "KRB-ERROR": 30}


def _frames(path: Path) -> list[tuple[int, bytes]]:
    """(ts in µs, Ethernet frame) of a little-endian microsecond pcap."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1" and struct.unpack_from("<I", data, 20)[0] == 1
    out, pos = [], 24
    while pos + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", data, pos)
        out.append((sec * 1_000_000 + usec, data[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    return out


def _gre(ptype: int, key: int | None = None, seq: int | None = None, csum: bool = False) -> bytes:
    """RFC 2784 / RFC 2890 header: C, K, S flags, version 0."""
    flags = (0x80 if csum else 0) | (0x20 if key is not None else 0) | (0x10 if seq is not None else 0)
    out = struct.pack("!BBH", flags, 0, ptype)
    if csum:
        out += b"\x00\x00\x00\x00"  # checksum + reserved
    if key is not None:
        out += struct.pack("!I", key)
    if seq is not None:
        out += struct.pack("!I", seq)
    return out


def _erspan2() -> bytes:
    return struct.pack("!HHI", 0x1000 | 5, 0x0000 | 7, 0)  # ver 1, VLAN 5, session 7, index 0


def _erspan3(platform: bool) -> bytes:
    head = struct.pack("!HHIHH", 0x2000, 7, 123456, 0, 0x0001 if platform else 0)  # ver 2; O bit last
    return head + (struct.pack("!II", 0x0C000000, 99) if platform else b"")


def _vxlan(vni: int = 42) -> bytes:
    return struct.pack("!BxxxI", 0x08, vni << 8)


def _vxlan_gpe(next_protocol: int, vni: int = 42) -> bytes:
    """draft-ietf-nvo3-vxlan-gpe: flags (I and P set, version 0), reserved, next protocol, VNI, reserved."""
    return struct.pack("!BHB", 0x0C, 0, next_protocol) + struct.pack("!I", vni << 8)


def _geneve(ptype: int, options: bytes = b"") -> bytes:
    assert len(options) % 4 == 0
    return struct.pack("!BBH3sx", len(options) // 4, 0, ptype, b"\x00\x00\x07") + options


def _labels(*labels: int) -> bytes:
    """RFC 3032 label stack entries: label (20 bits), traffic class, bottom-of-stack bit on the last, TTL 64."""
    return b"".join(
        struct.pack("!I", label << 12 | (0x100 if i == len(labels) - 1 else 0) | 64) for i, label in enumerate(labels)
    )


def _mpls_eth(frame: bytes, *labels: int, vlan: bool = False) -> bytes:
    """The sample frame's IP packet under a label stack, in a new Ethernet (and 802.1Q) frame of type 0x8847."""
    eth = bytes(_outer_ether())[:12] + (b"\x81\x00" + struct.pack("!HH", 20, 0x8847) if vlan else b"\x88\x47")
    return eth + _labels(*labels) + frame[14:]


def _ip4(proto: int, payload: bytes) -> bytes:
    return bytes(_outer_ether() / IP(src=OUTER_A, dst=OUTER_B, proto=proto) / Raw(payload))


def _udp4(dport: int, payload: bytes) -> bytes:
    return bytes(_outer_ether() / IP(src=OUTER_A, dst=OUTER_B) / UDP(sport=54321, dport=dport) / Raw(payload))


Wrap = Callable[[bytes], bytes]
WRAPS: dict[str, Wrap] = {
    "ipip": lambda f: _ip4(4, f[14:]) if f[12:14] == b"\x08\x00" else _ip4(41, f[14:]),
    "gre_eth": lambda f: _ip4(47, _gre(0x6558) + f),
    "gre_ip_key_seq_csum": lambda f: _ip4(47, _gre(struct.unpack("!H", f[12:14])[0], key=7, seq=1, csum=True) + f[14:]),
    "erspan1": lambda f: _ip4(47, _gre(0x88BE) + f),
    "erspan2": lambda f: _ip4(47, _gre(0x88BE, seq=3) + _erspan2() + f),
    "erspan3": lambda f: _ip4(47, _gre(0x22EB, seq=3) + _erspan3(platform=False) + f),
    "erspan3_platform": lambda f: _ip4(47, _gre(0x22EB, seq=3) + _erspan3(platform=True) + f),
    "vxlan": lambda f: _udp4(4789, _vxlan() + f),
    "geneve_options": lambda f: _udp4(6081, _geneve(0x6558, b"\x01\x02\x03\x01\xaa\xbb\xcc\xdd") + f),
    "vlan_vxlan": lambda f: bytes(
        _outer_ether() / Dot1Q(vlan=10) / IP(src=OUTER_A, dst=OUTER_B) / UDP(sport=1, dport=4789) / Raw(_vxlan() + f)
    ),
    "ipv6_vxlan": lambda f: bytes(
        _outer_ether() / IPv6(src="2001:db8::a", dst="2001:db8::b") / UDP(sport=1, dport=4789) / Raw(_vxlan() + f)
    ),
    "gre_in_vxlan": lambda f: _udp4(4789, _vxlan() + _ip4(47, _gre(0x6558) + f)),
    "mpls": lambda f: _mpls_eth(f, 1000),
    "mpls_vlan_two_labels": lambda f: _mpls_eth(f, 16, 2000, vlan=True),
    "gre_mpls": lambda f: _ip4(47, _gre(0x8847) + _labels(3000) + f[14:]),
    "vxlan_mpls": lambda f: _udp4(4789, _vxlan() + _mpls_eth(f, 17, 18)),
    "vxlan_gpe_eth": lambda f: _udp4(4790, _vxlan_gpe(3) + f),
    "vxlan_gpe_ip": lambda f: _udp4(4790, _vxlan_gpe(1 if f[12:14] == b"\x08\x00" else 2) + f[14:]),
    "vxlan_gpe_mpls": lambda f: _udp4(4790, _vxlan_gpe(5) + _labels(40) + f[14:]),
}


def _rows(path: Path, **kw: object) -> tuple[list[KrbRecord], ParseReport]:
    report = ParseReport(str(path))
    return list(iter_records(path, report, **kw)), report  # type: ignore[arg-type]


def _same(rows: list[KrbRecord]) -> list[tuple[object, ...]]:
    return [r._replace(source="", source_kind="") for r in rows]


def _wrapped(tmp_path: Path, capture: str, wrap: Wrap, pcapng: bool = False) -> Path:
    frames = [(ts, wrap(f)) for ts, f in _frames(SAMPLES / capture)]
    out = tmp_path / (capture + (".pcapng" if pcapng else ".pcap"))
    if pcapng:
        out.write_bytes(shb() + idb(1) + b"".join(epb(0, ts, f) for ts, f in frames))
    else:
        out.write_bytes(pcap(frames))
    return out


@pytest.mark.parametrize("capture", CAPTURES)
@pytest.mark.parametrize("how", sorted(WRAPS))
def test_tunneled_rows_are_the_samples_rows(tmp_path: Path, capture: str, how: str) -> None:
    want, _ = _rows(SAMPLES / capture)
    got, report = _rows(_wrapped(tmp_path, capture, WRAPS[how]))
    assert want and _same(got) == _same(want)
    assert not report.issues


@pytest.mark.parametrize("how", ["gre_eth", "vxlan", "ipip"])
def test_pcapng_too(tmp_path: Path, how: str) -> None:
    want, _ = _rows(SAMPLES / "01_as_tgs_ok.pcap")
    got, report = _rows(_wrapped(tmp_path, "01_as_tgs_ok.pcap", WRAPS[how], pcapng=True))
    assert _same(got) == _same(want) and not report.issues


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("how", sorted(WRAPS))
def test_tshark_sees_the_same_messages(tmp_path: Path, how: str) -> None:
    path = tmp_path / "all.pcap"  # the three captures one after the other: one TShark run per kind of tunnel
    path.write_bytes(pcap([(ts, WRAPS[how](f)) for capture in CAPTURES for ts, f in _frames(SAMPLES / capture)]))
    out = subprocess.run(
        [*TSHARK, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    # the outermost message of each frame (a TGS-REQ also lists the AP-REQ inside it)
    theirs = [(int(n), int(t.split(",")[0])) for n, t in (line.split("\t") for line in out.splitlines())]
    ours = [(r.record_no, MSG_TYPES[r.msg_type]) for r in _rows(path)[0]]  # type: ignore[index]
    assert ours == theirs and len(theirs) >= 15


def _fragmented_outer(frame: bytes, size: int) -> list[bytes]:
    """A wrapped frame whose outer IPv4 packet is cut into fragments of ``size`` octets (as a tunnel end point does
    with a packet over the path MTU), each in its own Ethernet frame."""
    outer = Ether(frame)
    return [bytes(_outer_ether() / part) for part in fragment(outer[IP], fragsize=size)]


@pytest.mark.parametrize("how", ["gre_eth", "vxlan", "gre_mpls"])
def test_fragmented_outer_packets_are_reassembled(tmp_path: Path, how: str) -> None:
    """The tunnel is known only once the outer datagram is whole; TShark reassembles it too. Some last fragments
    are frames shorter than Ethernet's 60-octet minimum (unpadded, as captured on the sending host): kept too."""
    frames = _frames(SAMPLES / "13_tcp_only.pcap") + _frames(SAMPLES / "01_as_tgs_ok.pcap")
    out: list[tuple[int, bytes]] = []
    for ts, f in frames:
        out += [(ts, part) for part in _fragmented_outer(WRAPS[how](f), 256)]
    path = tmp_path / "frag.pcap"
    path.write_bytes(pcap(out))
    rows, report = _rows(path)
    want = _rows(SAMPLES / "13_tcp_only.pcap")[0] + _rows(SAMPLES / "01_as_tgs_ok.pcap")[0]
    assert [r.msg_type for r in rows] == [r.msg_type for r in want] and not report.issues
    strip = ("source", "source_kind", "record_no", "ts")
    assert [r._replace(**dict.fromkeys(strip)) for r in rows] == [r._replace(**dict.fromkeys(strip)) for r in want]
    if shutil.which("tshark") is not None:
        got = subprocess.run([*TSHARK, str(path)], capture_output=True, text=True, check=True, timeout=120).stdout
        assert [int(line.split("\t")[0]) for line in got.splitlines()] == [r.record_no for r in rows]


def test_a_kerberos_reply_to_port_4789_is_not_a_tunnel(tmp_path: Path) -> None:
    # an old Windows client may take 4789 as its ephemeral port: the KDC's reply is Kerberos, not VXLAN
    frames = _frames(SAMPLES / "01_as_tgs_ok.pcap")
    moved = []
    for ts, f in frames:
        pkt = Ether(f)
        udp = pkt[UDP]
        if udp.sport == 88:
            udp.dport = 4789
        else:
            udp.sport = 4789
        del pkt[IP].chksum, udp.chksum
        moved.append((ts, bytes(pkt)))
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap(moved))
    rows, report = _rows(path)
    assert [r.msg_type for r in rows] == [r.msg_type for r in _rows(SAMPLES / "01_as_tgs_ok.pcap")[0]]
    assert {r.src_port for r in rows if r.dst_port == 88} == {4789} and not report.issues


def test_hostile_tunnels_are_counted_not_followed(tmp_path: Path) -> None:
    ts, f = _frames(SAMPLES / "01_as_tgs_ok.pcap")[0]
    deep = f
    for _ in range(MAX_TUNNELS + 2):
        deep = _ip4(47, _gre(0x6558) + deep)
    cut_gre = _ip4(47, _gre(0x6558, key=1)[:6])  # the key field cut short: no inner packet
    pptp = _ip4(47, struct.pack("!BBHHH", 0x30, 0x81, 0x880B, 0, 0) + f)  # GRE version 1 (PPTP): not IP
    short_vxlan = _udp4(4789, _vxlan() + f[:10])  # an inner frame too short for Ethernet + IP
    endless_labels = bytes(_outer_ether())[:12] + b"\x88\x47" + struct.pack("!I", 5 << 12 | 64) * 40 + f[14:]
    pseudowire = bytes(_outer_ether())[:12] + b"\x88\x47" + _labels(7) + bytes(4) + f  # RFC 4448 control word
    gre_endless = _ip4(47, _gre(0x8847) + struct.pack("!I", 5 << 12 | 64) * 40 + f[14:])
    path = tmp_path / "c.pcap"
    frames = [deep, cut_gre, pptp, short_vxlan, endless_labels, pseudowire, gre_endless, f]
    path.write_bytes(pcap([(ts + i, frame) for i, frame in enumerate(frames)]))
    rows, report = _rows(path)
    assert [(r.record_no, r.msg_type) for r in rows] == [(8, "AS-REQ")]
    # The nesting is counted (frame 1). The cut GRE header, the short VXLAN frame, label stacks without a bottom
    # entry (frames 5 and 7) and an Ethernet pseudowire say nothing about Kerberos: the prefilter drops them like any
    # unreadable non-Kerberos header; PPTP's GRE carries PPP, not IP.
    assert report.issues == {"bad_tunnel_header": 1}
    assert report.examples["bad_tunnel_header"] == [f"#1: more than {MAX_TUNNELS} tunnels inside each other"]
