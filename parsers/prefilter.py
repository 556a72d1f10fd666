"""The prefilter: per link type, a cheap test on a frame's raw octets (no slicing, no objects) of whether it may
carry Kerberos: UDP/TCP to or from a Kerberos port (88, 464), an IP fragment (whose ports only reassembly can tell),
a tunnel (:mod:`parsers.tunnels`) whose inner packet passes the same test, or - when application carriers are
active - a TCP segment ``tcp_keep`` accepts. Most frames of a mixed capture stop here; the fused loops of
:mod:`parsers.fastloop` do its common Ethernet case inside the record walk and must keep the same frames.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .ip import _FRAG6, _IPV6_EXT, _VLAN, KRB_PORTS, TCP, UDP, link_header
from .pcapfile import Prefilter
from .tunnels import MAX_TUNNELS, MPLS_TYPES, TUNNEL_PORTS, TUNNEL_PROTOS, Inner, ip_inner, mpls_inner, udp_inner

__all__ = ["prefilter_for"]


def _keep_ip(tcp_keep: Prefilter | None) -> Callable[..., bool]:
    ports = KRB_PORTS

    def keep_inner(buf: bytes, inner: Inner | None, end: int, depth: int) -> bool:
        """A tunnel's inner packet (:mod:`parsers.tunnels`), tested like an outer one."""
        if inner is None or depth >= MAX_TUNNELS:
            return inner is not None  # too deep: the full parser counts it
        kind, at = inner
        if kind == "eth":
            found = link_header(1, buf, at, end)
            if found is None:
                return False
            kind, at = found
        return keep_ip(buf, at, end, kind, depth + 1)  # type: ignore[arg-type]

    def keep_ip(buf: bytes, off: int, end: int, version: int, depth: int = 0) -> bool:
        if version == 4:
            if off + 20 > end:
                return False
            if buf[off + 6] & 0x3F or buf[off + 7]:
                return True  # a fragment: only reassembly can tell its ports
            proto = buf[off + 9]
            l4 = off + (buf[off] & 15) * 4
        elif version == 6:
            if off + 40 > end:
                return False
            proto = buf[off + 6]
            l4 = off + 40
            if proto in _IPV6_EXT or proto == _FRAG6:
                return True  # extension headers are rare: let the full parser walk them
        else:
            return False
        if proto == UDP or proto == TCP:
            if l4 + 4 > end:
                return proto == TCP and tcp_keep is not None
            sp = buf[l4] << 8 | buf[l4 + 1]
            dp = buf[l4 + 2] << 8 | buf[l4 + 3]
            if sp in ports or dp in ports:
                return True
            if proto == UDP:
                return dp in TUNNEL_PORTS and keep_inner(buf, udp_inner(dp, buf, l4, end), end, depth)
            return tcp_keep is not None and tcp_keep(buf, l4, end)
        if proto in TUNNEL_PROTOS:
            return keep_inner(buf, ip_inner(proto, buf, l4, end), end, depth)
        return False

    return keep_ip


def prefilter_for(linktype: int, tcp_keep: Prefilter | None = None) -> Prefilter | None:
    """The cheap keep-test of a link type, or None when krbtrace cannot read that link type.

    ``tcp_keep(buf, tcp_header_offset, end)`` (given when application carriers are active) decides on the TCP
    frames that are not on a Kerberos port; without it they are dropped."""
    keep_ip = _keep_ip(tcp_keep)
    ports = KRB_PORTS
    if linktype == 1:
        # Ethernet type, IPv4 version/IHL, flags/fragment offset, protocol and both ports in one unpack
        fast = struct.Struct("!12xHB5xHxB10xHH").unpack_from
        fast6 = struct.Struct("!20xB33xHH").unpack_from  # IPv6 next header and the ports behind a bare header
        fast_vlan = struct.Struct("!16xHB5xHxB10xHH").unpack_from  # one 802.1Q tag, then as ``fast``

        def keep_ethernet(buf: bytes, start: int, end: int) -> bool:
            if end - start < 38:  # too short for the unpacks below (an unpadded last fragment): the general path
                return end - start >= 14 and keep_other_ethernet(buf, start, end)
            et, vi, frag, proto, sp, dp = fast(buf, start)
            if et == 0x0800 and vi == 0x45 and not frag & 0x3FFF:
                if proto == 6:
                    return sp in ports or dp in ports or (tcp_keep is not None and tcp_keep(buf, start + 34, end))
                if proto == 17 and (sp in ports or dp in ports):
                    return True
                return (proto in TUNNEL_PROTOS or (proto == 17 and dp in TUNNEL_PORTS)) and keep_ip(
                    buf, start + 14, end, 4
                )
            size = end - start
            if et == 0x86DD and size >= 58:
                nh, sp, dp = fast6(buf, start)
                if nh == 6:
                    return sp in ports or dp in ports or (tcp_keep is not None and tcp_keep(buf, start + 54, end))
                if nh == 17 and (sp in ports or dp in ports):
                    return True
                if nh in TUNNEL_PROTOS or (nh == 17 and dp in TUNNEL_PORTS):
                    return keep_ip(buf, start + 14, end, 6)
                return nh in _IPV6_EXT or nh == _FRAG6
            if et == 0x8100 and size >= 42:
                et, vi, frag, proto, sp, dp = fast_vlan(buf, start)
                if et == 0x0800 and vi == 0x45 and not frag & 0x3FFF:
                    if proto == 6:
                        return sp in ports or dp in ports or (tcp_keep is not None and tcp_keep(buf, start + 38, end))
                    if proto == 17 and (sp in ports or dp in ports):
                        return True
                    return (proto in TUNNEL_PROTOS or (proto == 17 and dp in TUNNEL_PORTS)) and keep_ip(
                        buf, start + 18, end, 4
                    )
            return keep_other_ethernet(buf, start, end)

        def keep_other_ethernet(buf: bytes, start: int, end: int) -> bool:
            """Any Ethernet frame the common cases above do not settle: VLAN tags, MPLS, short frames."""
            off = start + 14
            et = buf[start + 12] << 8 | buf[start + 13]
            while et in _VLAN and off + 4 <= end:
                et = buf[off + 2] << 8 | buf[off + 3]
                off += 4
            if et == 0x0800:
                return keep_ip(buf, off, end, 4)
            if et == 0x86DD:
                return keep_ip(buf, off, end, 6)
            if et in MPLS_TYPES:
                inner = mpls_inner(buf, off, end)
                return inner is not None and keep_ip(buf, inner[1], end, inner[0])  # type: ignore[arg-type]
            return False

        keep_ethernet.ethernet_ports = ports  # type: ignore[attr-defined]  # lets pcapfile fuse the common case
        keep_ethernet.tcp_keep = tcp_keep  # type: ignore[attr-defined]
        return keep_ethernet
    if linktype in (101, 12, 14, 228, 229):

        def keep_raw(buf: bytes, start: int, end: int) -> bool:
            return start < end and keep_ip(buf, start, end, buf[start] >> 4)

        return keep_raw
    if linktype in (113, 276, 0, 108):

        def keep_other(buf: bytes, start: int, end: int) -> bool:
            found = link_header(linktype, buf, start, end)
            return found is not None and keep_ip(buf, found[1], end, found[0])

        return keep_other
    return None
