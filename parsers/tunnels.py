"""Tunnels that carry whole IP packets or Ethernet frames: where the inner header starts.

Captures from a SPAN session exported over ERSPAN, from cloud traffic mirroring (AWS VPC Traffic Mirroring sends
VXLAN, AWS Gateway Load Balancer Geneve) or from a site-to-site tunnel hold the Kerberos traffic one layer down.
Read here, without slicing, on the octets of the outer transport payload:

* IP in IP: protocol 4 (IPv4, RFC 2003) and 41 (IPv6, RFC 4213);
* GRE, protocol 47 (RFC 2784 with the key and sequence number fields of RFC 2890): IPv4 (0x0800), IPv6 (0x86DD),
  transparent Ethernet bridging (0x6558), ERSPAN type I/II (0x88BE; type II has an 8-octet header, present when the
  GRE sequence bit is set) and type III (0x22EB; a 12-octet header, plus an 8-octet platform sub-header when its
  O bit is set). GRE version 1 (PPTP) carries PPP, not IP, and is not read;
* VXLAN, UDP port 4789 (RFC 7348): an 8-octet header with the I flag, then an Ethernet frame;
* Geneve, UDP port 6081 (RFC 8926): an 8-octet header plus its options, then the frame its protocol type names;
* VXLAN-GPE, UDP port 4790 (draft-ietf-nvo3-vxlan-gpe): an 8-octet header with the P flag whose next-protocol
  octet names IPv4 (1), IPv6 (2), Ethernet (3) or MPLS (5);
* MPLS (RFC 3032; Ethernet types 0x8847 / 0x8848, also as a GRE or Geneve payload, RFC 4023): 4-octet label stack
  entries down to the one with the bottom-of-stack bit, then an IPv4 or IPv6 header (told by its version
  nibble). An Ethernet pseudowire (RFC 4448, a control word starting with a 0 nibble) is not read: its payload
  cannot be told from other pseudowire types without the signalling.

A UDP datagram to or from a Kerberos port is never taken for a tunnel (an old Windows client may use 4789 as its
ephemeral port).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_TUNNELS", "MPLS_TYPES", "TUNNEL_PORTS", "TUNNEL_PROTOS", "Inner", "ip_inner", "mpls_inner", "udp_inner"]

IPIP: Final = 4
IPV6_IN_IP: Final = 41
GRE: Final = 47
VXLAN_PORT: Final = 4789
GENEVE_PORT: Final = 6081
VXLAN_GPE_PORT: Final = 4790
TUNNEL_PROTOS: Final = frozenset({IPIP, IPV6_IN_IP, GRE})
TUNNEL_PORTS: Final = frozenset({VXLAN_PORT, GENEVE_PORT, VXLAN_GPE_PORT})
#: Tunnels inside tunnels followed at most (a hostile capture could nest them without end).
MAX_TUNNELS: Final = 4

#: Ethernet types of an MPLS label stack (unicast, multicast), and the most labels followed (real stacks hold a few;
#: a hostile frame could repeat entries without the bottom bit).
MPLS_TYPES: Final = frozenset({0x8847, 0x8848})
MAX_LABELS: Final = 8

#: What follows a tunnel header: ``4`` or ``6`` (an IP header) or ``"eth"`` (an Ethernet frame), and its offset.
Inner = tuple[int | str, int]

_ETHER_TYPES: Final[dict[int, int | str]] = {0x0800: 4, 0x86DD: 6, 0x6558: "eth"}
#: VXLAN-GPE next protocols: IPv4, IPv6, Ethernet (4, NSH, is not read; 5, MPLS, is).
_GPE_NEXT: Final[dict[int, int | str]] = {1: 4, 2: 6, 3: "eth"}
_GPE_MPLS: Final = 5
_ERSPAN_2: Final = 0x88BE
_ERSPAN_3: Final = 0x22EB


def ip_inner(proto: int, buf: bytes, off: int, end: int) -> Inner | None:
    """The header inside IP protocol ``proto`` whose payload is ``buf[off:end]``; None when it is not a tunnel this
    module reads or its header does not fit."""
    if proto == IPIP:
        return (4, off) if off < end else None
    if proto == IPV6_IN_IP:
        return (6, off) if off < end else None
    if proto != GRE or off + 4 > end:
        return None
    flags = buf[off]
    if buf[off + 1] & 0x07 or flags & 0x40:  # version 1 is PPTP's enhanced GRE; source routing is obsolete
        return None
    ptype = buf[off + 2] << 8 | buf[off + 3]
    at = off + 4 + (4 if flags & 0x80 else 0) + (4 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    if ptype == _ERSPAN_2:
        at += 8 if flags & 0x10 else 0  # type I (no sequence number) has no ERSPAN header
        kind: int | str = "eth"
    elif ptype == _ERSPAN_3:
        if at + 12 > end:
            return None
        at += 20 if buf[at + 11] & 0x01 else 12
        kind = "eth"
    elif ptype in MPLS_TYPES:
        return mpls_inner(buf, at, end)
    else:
        found = _ETHER_TYPES.get(ptype)
        if found is None:
            return None
        kind = found
    return (kind, at) if at < end else None


def mpls_inner(buf: bytes, off: int, end: int) -> Inner | None:
    """The IP header under the MPLS label stack at ``off``; None when the stack does not end within
    :data:`MAX_LABELS` entries or inside ``end``, or what it carries is not IPv4 or IPv6."""
    for _ in range(MAX_LABELS):
        if off + 4 > end:
            return None
        bottom = buf[off + 2] & 0x01
        off += 4
        if bottom:
            version = buf[off] >> 4 if off < end else 0
            return (version, off) if version in (4, 6) else None
    return None


def udp_inner(dport: int, buf: bytes, off: int, end: int) -> Inner | None:
    """The frame inside a VXLAN, VXLAN-GPE or Geneve datagram whose UDP header starts at ``off``; None otherwise."""
    at = off + 8
    if at + 8 > end:
        return None
    if dport == VXLAN_PORT and buf[at] & 0x08:
        return ("eth", at + 8) if at + 8 < end else None
    if dport == VXLAN_GPE_PORT and buf[at] & 0x04 and not buf[at] & 0x30:  # P flag, version 0
        if buf[at + 3] == _GPE_MPLS:
            return mpls_inner(buf, at + 8, end)
        kind = _GPE_NEXT.get(buf[at + 3])
        return (kind, at + 8) if kind is not None and at + 8 < end else None
    if dport == GENEVE_PORT and not buf[at] & 0xC0:  # version 0
        ptype = buf[at + 2] << 8 | buf[at + 3]
        inner = at + 8 + (buf[at] & 0x3F) * 4
        if ptype in MPLS_TYPES:
            return mpls_inner(buf, inner, end)
        kind = _ETHER_TYPES.get(ptype)
        return (kind, inner) if kind is not None and inner < end else None
    return None
