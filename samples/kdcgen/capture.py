"""tcpdump around one scenario: start, wait until it listens, stop only once the file has stopped growing.

Pitfalls (real-kdc-captures.md §7): without ``-U --immediate-mode`` packets wait in the kernel buffer and a tcpdump
stopped right after the client holds an empty file; SIGTERM does not drain the buffer, so the file size must be
stable for a while first; Debian's tcpdump drops privileges before opening ``-w`` unless ``-Z root``; SIGINT is
ignored by a backgrounded tcpdump, SIGTERM is not.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Final

#: Kerberos (88), kpasswd (464) and the HTTP service of the SPNEGO scenarios (8080).
FILTER: Final = "port 88 or port 464 or port 8080"
START_TIMEOUT: Final = 10.0


class CaptureError(RuntimeError):
    """tcpdump did not start or did not write its file."""


#: Every tcpdump still running, so an interrupted run (signal, timeout) can stop them all from its finally block.
_LIVE: set[subprocess.Popen[bytes]] = set()


def stop_all() -> None:
    """Stop every tcpdump this process started and has not stopped yet."""
    for proc in list(_LIVE):
        _terminate(proc)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    _LIVE.discard(proc)


class Capture:
    """``with Capture(path, workdir): ...`` captures loopback traffic into ``path`` for the block's duration."""

    def __init__(self, path: Path, workdir: Path) -> None:
        self.path = path
        self.err = workdir / f"tcpdump-{path.stem}.err"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Capture:
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

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._settle()
        self._kill()

    def _settle(self) -> None:
        # The last reply may still be in flight: wait until the size has not changed for 3 x 60 ms (at most 3 s).
        last, stable, deadline = -1, 0, time.monotonic() + 3.0
        while stable < 3 and time.monotonic() < deadline:
            time.sleep(0.06)
            size = self.path.stat().st_size if self.path.exists() else 0
            stable = stable + 1 if size == last else 0
            last = size

    def _kill(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)
        self.proc = None
