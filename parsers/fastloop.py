"""The hot loops of :mod:`parsers.pcapfile` for Ethernet captures (most captures): one ``struct`` unpack per frame
reads the record or block header together with the prefilter's common case (Ethernet, IPv4 without options or
fragmentation, UDP/TCP ports), in the file's byte order, so nothing is sliced or called for the frames that cannot
carry Kerberos. The network-order constants are byte-swapped instead of the fields. Every frame the fused test cannot
decide goes to the ordinary prefilter of :func:`parsers.prefilter.prefilter_for`, so both paths keep the same frames.

Each loop yields the kept frames of one window of the file, then ``pos << 32 | frame_no`` where it stopped (the end
of the window, or a record or block it leaves to the general code of :mod:`parsers.pcapfile`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

from .tunnels import TUNNEL_PORTS, TUNNEL_PROTOS

if TYPE_CHECKING:
    from .pcapfile import Frame, Prefilter, _Interface

__all__ = ["FUSED_NG_SPAN", "FUSED_SPAN", "fused_epb", "fused_ethernet"]

#: Record header + Ethernet + IPv4 header + the two ports.
FUSED_SPAN: Final = 16 + 38


def _swap16(v: int) -> int:
    return (v & 0xFF) << 8 | v >> 8


def fused_ethernet(
    keep: Prefilter | None, endian: str, nano: bool, stamp: Callable[..., tuple[int, int]]
) -> Callable[[bytes, int, int, int], Iterator[Frame | int]] | None:
    """A loop over the pcap records of one window that does the prefilter's common case (Ethernet, IPv4 without
    options or fragmentation, UDP/TCP ports) in the same ``unpack`` as the record header, in the file's byte order:
    the network-order constants are byte-swapped instead of the fields. Other frames go to ``keep``. Yields the kept
    frames, then ``pos << 32 | frame_no`` where the window ends."""
    ports = getattr(keep, "ethernet_ports", None)
    if keep is None or ports is None:
        return None
    tcp_keep = getattr(keep, "tcp_keep", None)
    rec = struct.Struct(endian + "8xII12xHB5xHxB10xHH").unpack_from
    swap = _swap16 if endian == "<" else int
    ipv4 = swap(0x0800)
    frag_mask = swap(0x3FFF)
    wanted = frozenset(swap(p) for p in ports)
    tunnel_ports = frozenset(swap(p) for p in TUNNEL_PORTS)  # VXLAN, Geneve: the general test looks inside
    div = 1000 if nano else 1

    def fused(buf: bytes, pos: int, n: int, frame_no: int) -> Iterator[Frame | int]:
        limit = n - FUSED_SPAN
        while pos <= limit:
            incl, orig, et, vi, frag, proto, sp, dp = rec(buf, pos)
            end = pos + 16 + incl
            if end > n:
                break
            frame_no += 1
            if et == ipv4 and vi == 0x45 and incl >= 38 and not frag & frag_mask:
                if (
                    (proto == 17 or proto == 6)
                    and (
                        sp in wanted
                        or dp in wanted
                        or (proto == 6 and tcp_keep is not None and tcp_keep(buf, pos + 50, end))
                    )
                ) or (
                    proto != 6
                    and (proto in TUNNEL_PROTOS or (proto == 17 and dp in tunnel_ports))
                    and keep(buf, pos + 16, end)
                ):
                    sec, frac = stamp(buf, pos)
                    yield frame_no, sec * 1_000_000 + frac // div, 1, buf[pos + 16 : end], orig
            elif keep(buf, pos + 16, end):
                sec, frac = stamp(buf, pos)
                yield frame_no, sec * 1_000_000 + frac // div, 1, buf[pos + 16 : end], orig
            pos = end
        yield pos << 32 | frame_no

    return fused


#: Enhanced Packet Block header + Ethernet + IPv4 header + the two ports.
FUSED_NG_SPAN: Final = 28 + 38


def fused_epb(ifaces: list[_Interface], endian: str) -> Callable[[bytes, int, int, int], Iterator[Frame | int]] | None:
    """Like :func:`fused_ethernet`, for Enhanced Packet Blocks when every interface of the section is Ethernet:
    block header, interface, captured length and the Ethernet/IPv4/port fields in one unpack. Anything unusual (another
    block type, a length that needs checking, another link layer) ends the loop, and the general code takes over."""
    if not ifaces or any(i.linktype != 1 or getattr(i.keep, "ethernet_ports", None) is None for i in ifaces):
        return None
    keep = ifaces[0].keep
    assert keep is not None
    ports: frozenset[int] = keep.ethernet_ports  # type: ignore[attr-defined]
    tcp_keep = keep.tcp_keep  # type: ignore[attr-defined]
    rec = struct.Struct(endian + "III8xI4x12xHB5xHxB10xHH").unpack_from
    trailer = struct.Struct(endian + "I").unpack_from
    stamp = struct.Struct(endian + "4xIIII").unpack_from
    swap = _swap16 if endian == "<" else int
    ipv4 = swap(0x0800)
    frag_mask = swap(0x3FFF)
    wanted = frozenset(swap(p) for p in ports)
    tunnel_ports = frozenset(swap(p) for p in TUNNEL_PORTS)
    nif = len(ifaces)

    def fused(buf: bytes, pos: int, n: int, frame_no: int) -> Iterator[Frame | int]:
        limit = n - FUSED_NG_SPAN
        while pos <= limit:
            btype, blen, iface_id, caplen, et, vi, frag, proto, sp, dp = rec(buf, pos)
            end = pos + blen
            if btype != 6 or end > n or blen & 3 or caplen > blen - 32 or iface_id >= nif:
                break
            if trailer(buf, end - 4)[0] != blen:
                break
            frame_no += 1
            if et == ipv4 and vi == 0x45 and caplen >= 38 and not frag & frag_mask:
                hit = (
                    (proto == 17 or proto == 6)
                    and (
                        sp in wanted
                        or dp in wanted
                        or (proto == 6 and tcp_keep is not None and tcp_keep(buf, pos + 62, pos + 28 + caplen))
                    )
                ) or (
                    proto != 6
                    and (proto in TUNNEL_PROTOS or (proto == 17 and dp in tunnel_ports))
                    and keep(buf, pos + 28, pos + 28 + caplen)
                )
            else:
                hit = keep(buf, pos + 28, pos + 28 + caplen)
            if hit:
                hi, lo, _caplen, orig = stamp(buf, pos + 8)
                iface = ifaces[iface_id]
                ts = ((hi << 32 | lo) * iface.mul) // iface.div + iface.offset
                yield frame_no, ts, 1, buf[pos + 28 : pos + 28 + caplen], orig
            pos = end
        yield pos << 32 | frame_no

    return fused
