"""tcpdump around one scenario: start, wait until it listens, stop only once everything sent has been written.

Pitfalls (real-kdc-captures.md §7): without ``-U --immediate-mode`` packets wait in the kernel buffer and a tcpdump
stopped right after the client holds an empty file; SIGTERM does not drain the buffer, and under load tcpdump can
lag by far more than a "stable file size" wait allows (seen: the last AS exchange missing at load average 6).
So the end is marked: after the client, one UDP datagram with a unique payload goes to the discard port; tcpdump
writes packets in order, so once the marker is in the file every earlier packet is too. The marker record is then
cut from the file (pcap format: 24-octet file header, 16-octet record headers). Also: Debian's tcpdump drops
privileges before opening ``-w`` unless ``-Z root``; SIGINT is ignored by a backgrounded tcpdump, SIGTERM is not.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

#: The end-of-capture marker goes to the discard port (nothing listens; the ICMP reply does not match the filter).
MARKER_PORT: Final = 9
#: Kerberos (88), kpasswd (464), the HTTP service of the SPNEGO scenarios (8080) and the end marker.
FILTER: Final = f"port 88 or port 464 or port 8080 or (udp and dst port {MARKER_PORT})"
START_TIMEOUT: Final = 10.0
#: libpcap buffer in KiB (``-B``): with ``--immediate-mode`` the default 2 MiB ring holds about eight loopback
#: packets of ``-s 0`` and tcpdump dropped packets from the middle of captures under load; 64 MiB gives 256 slots.
BUFFER_KIB: Final = 65536
DROPPED: Final = re.compile(rb"(\d+) packets? dropped by (?:kernel|interface)")
END_TIMEOUT: Final = 20.0
#: pcap magics (microsecond and nanosecond, both byte orders) -> byte order of the record headers.
PCAP_MAGICS: Final[dict[bytes, Literal["little", "big"]]] = {
    b"\xd4\xc3\xb2\xa1": "little", b"\x4d\x3c\xb2\xa1": "little",
    b"\xa1\xb2\xc3\xd4": "big", b"\xa1\xb2\x3c\x4d": "big",
}  # fmt: skip


class CaptureError(RuntimeError):
    """tcpdump did not start or did not write its file."""


#: Every tcpdump still running, so an interrupted run (signal, timeout) can stop them all from its finally block.
_LIVE: set[subprocess.Popen[bytes]] = set()


def stop_all() -> None:
    """Stop every tcpdump this process started and has not stopped yet."""
    for proc in list(_LIVE):
        _terminate(proc)


def terminate(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM ``proc`` if it still runs, SIGKILL it when it has not ended ``grace`` seconds later; reaps it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    terminate(proc)
    _LIVE.discard(proc)


class Capture:
    """``with Capture(path, workdir): ...`` captures loopback traffic into ``path`` for the block's duration."""

    #: tcpdump's capture filter (a subclass widens it for other carriers).
    filter: str = FILTER

    def __init__(self, path: Path, workdir: Path) -> None:
        self.path = path
        self.err = workdir / f"tcpdump-{path.stem}.err"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Capture:
        self.path.unlink(missing_ok=True)
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                ["tcpdump", "-i", "lo", "-n", "-s", "0", "-B", str(BUFFER_KIB), "-U", "--immediate-mode", "-Z", "root",
                 "-w", str(self.path), self.filter],
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
        if exc_type is not None:
            self._kill()
            return
        marker = f"kdcgen-end-{uuid.uuid4().hex}".encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(marker, ("127.0.0.1", MARKER_PORT))
        deadline = time.monotonic() + END_TIMEOUT
        while marker not in (self.path.read_bytes() if self.path.exists() else b""):
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                self._kill()
                raise CaptureError(f"the end marker never reached {self.path} (tcpdump stopped or too slow)")
            time.sleep(0.02)
        self._kill()
        self.path.write_bytes(without_records(self.path.read_bytes(), marker))
        lost = dropped(self.err.read_bytes())
        if lost:
            raise CaptureError(f"tcpdump dropped {lost} packets of {self.path.name} (host too busy?); run again")

    def _kill(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)
        self.proc = None


def dropped(stderr: bytes) -> int:
    """Packets tcpdump says it lost, from the statistics it prints when stopped."""
    return sum(int(n) for n in DROPPED.findall(stderr))


def without_records(data: bytes, needle: bytes) -> bytes:
    """A pcap file without the records whose packet contains ``needle`` (a cut-short last record is kept)."""
    order = PCAP_MAGICS.get(data[:4])
    if order is None:
        raise CaptureError("tcpdump did not write a pcap file")
    out, pos = [data[:24]], 24
    while pos + 16 <= len(data):
        size = int.from_bytes(data[pos + 8 : pos + 12], order)
        record = data[pos : pos + 16 + size]
        if needle not in record[16:]:
            out.append(record)
        pos += 16 + size
    out.append(data[pos:])
    return b"".join(out)
