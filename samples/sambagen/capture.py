"""tcpdump around one Samba scenario: :class:`samples.kdcgen.capture.Capture` (end marker, marker cut) with the
ports of the Samba carriers (LDAP 389, SMB 445) besides Kerberos (88) and kpasswd (464), a larger kernel buffer, and
a check of tcpdump's own drop count.

Why the buffer: with ``--immediate-mode`` libpcap's ring has one slot per snapshot length (256 KiB for ``-s 0``), so
the default 2 MiB buffer holds eight packets; under load (three generators at once on two cores) tcpdump reported
"8 packets dropped by kernel" and a TGS-REQ or the AP-REQ went missing from the middle of a capture. ``-B 65536``
(KiB) gives 256 slots. A capture that still lost packets is refused (:class:`CaptureError`, run again) instead of
being written or compared with a hole.
"""

from __future__ import annotations

import re
import subprocess
import time
from types import TracebackType
from typing import Final

from samples.kdcgen.capture import _LIVE, MARKER_PORT, START_TIMEOUT, Capture, CaptureError

FILTER: Final = f"port 88 or port 464 or port 389 or port 445 or (udp and dst port {MARKER_PORT})"
#: libpcap buffer in KiB (``-B``).
BUFFER_KIB: Final = 65536
DROPPED: Final = re.compile(rb"(\d+) packets? dropped by (?:kernel|interface)")


class SambaCapture(Capture):
    """``with SambaCapture(path, workdir): ...`` captures the Samba scenario's loopback traffic into ``path``."""

    def __enter__(self) -> SambaCapture:
        self.path.unlink(missing_ok=True)
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                ["tcpdump", "-i", "lo", "-n", "-s", "0", "-B", str(BUFFER_KIB), "-U", "--immediate-mode", "-Z", "root",
                 "-w", str(self.path), FILTER],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
        _LIVE.add(self.proc)
        deadline = time.monotonic() + START_TIMEOUT
        while b"listening on" not in self.err.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._kill()
                raise CaptureError(f"tcpdump did not start: {self.err.read_text(errors='replace').strip()}")
            time.sleep(0.02)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        if exc_type is None:
            lost = dropped(self.err.read_bytes())
            if lost:
                raise CaptureError(f"tcpdump dropped {lost} packets of {self.path.name} (host too busy?); run again")


def dropped(stderr: bytes) -> int:
    """Packets tcpdump says it lost, from the statistics it prints when stopped."""
    return sum(int(n) for n in DROPPED.findall(stderr))
