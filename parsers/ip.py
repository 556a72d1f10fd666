"""Link and network layers: the link types of tcpdump.org/linktypes.html, IPv4 (RFC 791) with options and fragment
reassembly, IPv6 (RFC 8200) with extension headers and fragments.

The cheap per-frame test that runs before this module (most frames of a mixed capture stop there) is
:func:`parsers.prefilter.prefilter_for`. :class:`Network` parses a kept frame down to the transport header, through
tunnels (:mod:`parsers.tunnels`), reassembling fragments, and counts what it cannot read: ``bad_ip_header``,
``bad_ip_length`` (IPv4 total / IPv6 payload length longer than the frame although the frame was not cut by the
snaplen), ``bad_ip_fragment`` (a fragment past 64 KiB, or more than :data:`MAX_FRAGMENTS` in one datagram),
``ip_fragments_incomplete`` (a datagram some fragments of which never arrived; only datagrams whose first fragment
was Kerberos or never seen are counted), ``bad_tunnel_header`` (a tunnel header too short for its fields, or more
than :data:`~parsers.tunnels.MAX_TUNNELS` tunnels inside each other).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Final

from .record import ParseReport
from .tunnels import MAX_TUNNELS, MPLS_TYPES, TUNNEL_PORTS, TUNNEL_PROTOS, ip_inner, mpls_inner, udp_inner

log = logging.getLogger(__name__)

__all__ = ["KRB_PORTS", "Network", "Packet", "link_header"]

#: Kerberos KDC (RFC 4120 §7.2.3) and kpasswd (RFC 3244) ports.
KRB_PORTS: Final = frozenset({88, 464})
TCP: Final = 6
UDP: Final = 17
_VLAN: Final = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})
_IPV6_EXT: Final = frozenset({0, 43, 60, 51, 135, 139, 140})  # hop-by-hop, routing, dest-opts, AH, mobility, HIP, shim6
_FRAG6: Final = 44
_NULL_IPV6: Final = frozenset({24, 28, 30})  # AF_INET6 on NetBSD/OpenBSD, FreeBSD, macOS
#: Fragmented datagrams waiting for their other fragments.
MAX_DATAGRAMS: Final = 4096
MAX_EXT_HEADERS: Final = 16
#: Fragments one datagram may have (a 64 KiB datagram at a 576-octet MTU needs about 120).
MAX_FRAGMENTS: Final = 512

_ETH_IPV4: Final = struct.Struct("!12xHBxH2xHxB2x4s4s").unpack_from

#: (source address, destination address, IP protocol, transport header and payload); addresses are 4 or 16 octets.
Packet = tuple[bytes, bytes, int, bytes]


def link_header(linktype: int, buf: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(IP version, offset of the IP header) of a frame, or None when it is not IP or too short."""
    if linktype == 1:
        if end - start < 14:
            return None
        et = buf[start + 12] << 8 | buf[start + 13]
        off = start + 14
    elif linktype == 113:  # Linux cooked v1: protocol at 14 of a 16-octet header
        if end - start < 16:
            return None
        et = buf[start + 14] << 8 | buf[start + 15]
        off = start + 16
    elif linktype == 276:  # Linux cooked v2: protocol first in a 20-octet header
        if end - start < 20:
            return None
        et = buf[start] << 8 | buf[start + 1]
        off = start + 20
    elif linktype in (0, 108):  # BSD loopback: address family in host order (0) or network order (108)
        if end - start < 4:
            return None
        le = int.from_bytes(buf[start : start + 4], "little")
        be = int.from_bytes(buf[start : start + 4], "big")
        fam = be if linktype == 108 else (le if le < 256 else be)
        if fam == 2:
            return 4, start + 4
        if fam in _NULL_IPV6:
            return 6, start + 4
        return None
    elif linktype in (101, 12, 14, 228, 229):
        if start >= end:
            return None
        return buf[start] >> 4, start
    else:
        return None
    while et in _VLAN and off + 4 <= end:
        et = buf[off + 2] << 8 | buf[off + 3]
        off += 4
    if et == 0x0800:
        return 4, off
    if et == 0x86DD:
        return 6, off
    if et in MPLS_TYPES:
        return mpls_inner(buf, off, end)  # type: ignore[return-value]  # the version is 4 or 6 there
    return None


def _tunneled(udp: bytes) -> bool:
    """A UDP datagram to a tunnel port, and not to or from a Kerberos port."""
    if len(udp) < 16:
        return False
    dp = udp[2] << 8 | udp[3]
    return dp in TUNNEL_PORTS and (udp[0] << 8 | udp[1]) not in KRB_PORTS


class _Datagram:
    __slots__ = ("frags", "ignored", "total")

    def __init__(self) -> None:
        self.frags: list[tuple[int, bytes]] = []
        self.total: int | None = None
        self.ignored = False


class Network:
    """Parses kept frames to the transport layer and reassembles IP fragments.

    ``wanted(proto, first_octets)`` decides, on a datagram's first fragment, whether the datagram is worth
    reassembling (its ports are Kerberos, a carrier might want the TCP flow, or it carries a tunnel).
    """

    def __init__(self, report: ParseReport, wanted: Callable[[int, bytes], bool]) -> None:
        self.report = report
        self.wanted = wanted
        self.pending: dict[tuple[bytes, bytes, int, int], _Datagram] = {}

    def packet(self, linktype: int, data: bytes, frame_no: int, cut: bool) -> Packet | None:
        """The frame's (src, dst, protocol, transport octets), or None (not IP, unreadable, or a fragment of a
        datagram not yet complete). ``cut``: the frame was shortened by the snaplen. A tunnel
        (:mod:`parsers.tunnels`) gives its inner packet."""
        if linktype == 1 and len(data) >= 34:
            # the usual case at once: Ethernet, IPv4 without options, not a fragment, length consistent
            et, vi, total, frag, proto, src, dst = _ETH_IPV4(data)
            if et == 0x0800 and vi == 0x45 and not frag & 0x3FFF and 20 <= total <= len(data) - 14:
                pkt = src, dst, proto, data[34 : 14 + total]
                return (
                    pkt if proto == TCP or (proto == UDP and not _tunneled(pkt[3])) else self._inner(pkt, frame_no, cut)
                )
        pkt = self._outer(linktype, data, frame_no, cut)
        if pkt is None or pkt[2] == TCP or (pkt[2] == UDP and not _tunneled(pkt[3])):
            return pkt
        return self._inner(pkt, frame_no, cut)

    def _inner(self, pkt: Packet, frame_no: int, cut: bool) -> Packet | None:
        """The packet inside tunnels, or ``pkt`` itself when it is not a tunnel."""
        for _ in range(MAX_TUNNELS):
            proto, l4 = pkt[2], pkt[3]
            if proto == UDP:
                if not _tunneled(l4):
                    return pkt
                inner = udp_inner(l4[2] << 8 | l4[3], l4, 0, len(l4))
            elif proto in TUNNEL_PROTOS:
                inner = ip_inner(proto, l4, 0, len(l4))
            else:
                return pkt
            if inner is None:
                if not cut:
                    self.report.add("bad_tunnel_header", frame_no, f"IP protocol {proto}: no inner packet")
                return None
            kind, at = inner
            if kind == "eth":
                found = link_header(1, l4, at, len(l4))
                if found is None:
                    return None  # an inner frame that is not IP
                kind, at = found
            got = self._ipv4(l4, at, frame_no, cut) if kind == 4 else self._ipv6(l4, at, frame_no, cut)
            if got is None:
                return None
            pkt = got
        if pkt[2] in TUNNEL_PROTOS or (pkt[2] == UDP and _tunneled(pkt[3])):
            self.report.add("bad_tunnel_header", frame_no, f"more than {MAX_TUNNELS} tunnels inside each other")
            return None
        return pkt

    def _outer(self, linktype: int, data: bytes, frame_no: int, cut: bool) -> Packet | None:
        found = link_header(linktype, data, 0, len(data))
        if found is None:
            return None
        version, off = found
        if version == 4:
            return self._ipv4(data, off, frame_no, cut)
        if version == 6:
            return self._ipv6(data, off, frame_no, cut)
        self.report.add("bad_ip_header", frame_no, f"IP version {version}")
        return None

    def _ipv4(self, data: bytes, off: int, frame_no: int, cut: bool) -> Packet | None:
        n = len(data)
        if n - off < 20:
            if not cut:
                self.report.add("bad_ip_header", frame_no, "IPv4 header cut short")
            return None
        ihl = (data[off] & 15) * 4
        total = data[off + 2] << 8 | data[off + 3]
        if ihl < 20 or off + ihl > n:
            if not cut or ihl < 20:
                self.report.add("bad_ip_header", frame_no, f"IPv4 header length {ihl}")
            return None
        if total == 0:  # TCP segmentation offload: the NIC fills the length in later
            total = n - off
        elif total < ihl:
            self.report.add("bad_ip_header", frame_no, f"IPv4 total length {total} below header length {ihl}")
            return None
        elif off + total > n:
            if not cut:
                self.report.add("bad_ip_length", frame_no, f"IPv4 total length {total}, {n - off} octets present")
            total = n - off
        proto = data[off + 9]
        src = data[off + 12 : off + 16]
        dst = data[off + 16 : off + 20]
        frag = (data[off + 6] << 8 | data[off + 7]) & 0x3FFF
        payload = data[off + ihl : off + total]
        if frag:
            ident = data[off + 4] << 8 | data[off + 5]
            key = (src, dst, proto, ident)
            whole = self._fragment(key, (frag & 0x1FFF) * 8, bool(frag & 0x2000), payload, frame_no)
            if whole is None:
                return None
            payload = whole
        return src, dst, proto, payload

    def _ipv6(self, data: bytes, off: int, frame_no: int, cut: bool) -> Packet | None:
        n = len(data)
        if n - off < 40:
            if not cut:
                self.report.add("bad_ip_header", frame_no, "IPv6 header cut short")
            return None
        plen = data[off + 4] << 8 | data[off + 5]
        end = off + 40 + plen
        if plen == 0:  # a jumbogram (RFC 2675) or offload: take what is there
            end = n
        elif end > n:
            if not cut:
                self.report.add("bad_ip_length", frame_no, f"IPv6 payload length {plen}, {n - off - 40} present")
            end = n
        src = data[off + 8 : off + 24]
        dst = data[off + 24 : off + 40]
        nh = data[off + 6]
        pos = off + 40
        for _ in range(MAX_EXT_HEADERS):
            if nh == _FRAG6:
                if pos + 8 > end:
                    self.report.add("bad_ip_header", frame_no, "IPv6 fragment header cut short")
                    return None
                inner = data[pos]
                fo = data[pos + 2] << 8 | data[pos + 3]
                ident = int.from_bytes(data[pos + 4 : pos + 8], "big")
                key = (src, dst, inner, ident)
                whole = self._fragment(key, fo & 0xFFF8, bool(fo & 1), data[pos + 8 : end], frame_no)
                if whole is None:
                    return None
                return self._after_ext(src, dst, inner, whole, frame_no)
            if nh not in _IPV6_EXT:
                return src, dst, nh, data[pos:end]
            if pos + 2 > end:
                self.report.add("bad_ip_header", frame_no, f"IPv6 extension header {nh} cut short")
                return None
            step = (data[pos + 1] + 2) * 4 if nh == 51 else (data[pos + 1] + 1) * 8
            nh = data[pos]
            pos += step
        self.report.add("bad_ip_header", frame_no, "more than 16 IPv6 extension headers")
        return None

    def _after_ext(self, src: bytes, dst: bytes, nh: int, data: bytes, frame_no: int) -> Packet | None:
        """Skip the extension headers at the front of a reassembled IPv6 fragmentable part."""
        pos = 0
        for _ in range(MAX_EXT_HEADERS):
            if nh not in _IPV6_EXT:
                return src, dst, nh, data[pos:]
            if pos + 2 > len(data):
                break
            step = (data[pos + 1] + 2) * 4 if nh == 51 else (data[pos + 1] + 1) * 8
            nh = data[pos]
            pos += step
        self.report.add("bad_ip_header", frame_no, "unreadable IPv6 extension headers after reassembly")
        return None

    def _fragment(
        self, key: tuple[bytes, bytes, int, int], offset: int, more: bool, payload: bytes, frame_no: int
    ) -> bytes | None:
        """Add one fragment; return the whole datagram's payload when this fragment completes it."""
        if offset + len(payload) > 65535:
            self.report.add("bad_ip_fragment", frame_no, f"fragment at {offset} of {len(payload)} octets")
            return None
        pending = self.pending
        dg = pending.get(key)
        if dg is None:
            if len(pending) >= MAX_DATAGRAMS:
                for old in list(pending)[: max(1, len(pending) // 10)]:  # the oldest tenth at once (see streams)
                    self._drop(old, "evicted")
                self.pending = pending = dict(pending)  # a fresh dict without the deleted slots
            dg = pending[key] = _Datagram()
        if dg.ignored:
            if not more:
                del pending[key]
            return None
        if offset == 0:
            proto = key[2]
            # the transport header tells (ports, a tunnel protocol); an IPv6 extension header first cannot tell yet
            if proto not in _IPV6_EXT and not self.wanted(proto, payload[:4]):
                dg.ignored = True
                dg.frags = []
                return None
        if len(dg.frags) >= MAX_FRAGMENTS:
            self.report.add("bad_ip_fragment", frame_no, f"more than {MAX_FRAGMENTS} fragments in one datagram")
            dg.ignored = True
            dg.frags = []
            return None
        dg.frags.append((offset, payload))
        if not more:
            dg.total = offset + len(payload)
        if dg.total is None:
            return None
        frags = sorted(dg.frags, key=lambda f: f[0])
        out = bytearray()
        for off, part in frags:
            have = len(out)
            if off > have:
                return None  # still a hole
            if off + len(part) > have:
                out += part[have - off :]
        if len(out) < dg.total:
            return None
        del pending[key]
        return bytes(out[: dg.total])

    def _drop(self, key: tuple[bytes, bytes, int, int], why: str) -> None:
        dg = self.pending.pop(key)
        if not dg.ignored:
            self.report.add("ip_fragments_incomplete", why, f"{len(dg.frags)} fragments of datagram {key[3]}")

    def finish(self) -> None:
        """End of capture: count the datagrams still missing fragments."""
        for key in list(self.pending):
            self._drop(key, "end")
