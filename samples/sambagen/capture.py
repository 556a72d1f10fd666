"""tcpdump around one Samba scenario: :class:`samples.kdcgen.capture.Capture` (end marker, marker cut, a 64 MiB
kernel buffer and a check of tcpdump's own drop count) with the ports of the Samba carriers (LDAP 389, SMB 445)
besides Kerberos (88) and kpasswd (464).
"""

from __future__ import annotations

from typing import Final

from samples.kdcgen.capture import MARKER_PORT, Capture, dropped

__all__ = ["FILTER", "SambaCapture", "dropped"]

FILTER: Final = f"port 88 or port 464 or port 389 or port 445 or (udp and dst port {MARKER_PORT})"


class SambaCapture(Capture):
    """``with SambaCapture(path, workdir): ...`` captures the Samba scenario's loopback traffic into ``path``."""

    filter = FILTER
