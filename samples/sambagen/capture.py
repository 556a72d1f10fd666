"""tcpdump around one Samba scenario: :class:`samples.kdcgen.capture.Capture` (end marker, marker cut) with the
ports of the Samba carriers (LDAP 389, SMB 445) besides Kerberos (88) and kpasswd (464)."""

from __future__ import annotations

import subprocess
import time
from typing import Final

from samples.kdcgen.capture import _LIVE, MARKER_PORT, START_TIMEOUT, Capture, CaptureError

FILTER: Final = f"port 88 or port 464 or port 389 or port 445 or (udp and dst port {MARKER_PORT})"


class SambaCapture(Capture):
    """``with SambaCapture(path, workdir): ...`` captures the Samba scenario's loopback traffic into ``path``."""

    def __enter__(self) -> SambaCapture:
        self.path.unlink(missing_ok=True)
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                ["tcpdump", "-i", "lo", "-n", "-s", "0", "-U", "--immediate-mode", "-Z", "root",
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
