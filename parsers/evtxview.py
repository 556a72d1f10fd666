"""An EVTX file as a backend should see it: the file header, then a run of whole chunks (ELFFILE header, 64 KiB
chunks), zero-filled where the file was cut. The sequential reader uses it for a truncated file, the parallel one
(:mod:`parsers.evtxpool`) for each batch of chunks."""

from __future__ import annotations

import io
import os
from typing import Any, Final

__all__ = ["CHUNK_SIZE", "FILE_MAGIC", "HEADER_SIZE", "ChunkView", "sniff"]

HEADER_SIZE: Final = 4096
CHUNK_SIZE: Final = 65536
FILE_MAGIC: Final = b"ElfFile\x00"


def sniff(head: bytes) -> str | None:
    """``"evtx"`` when ``head`` starts with the EVTX file magic, else ``None``."""
    return "evtx" if head[:8] == FILE_MAGIC else None


class ChunkView(io.RawIOBase):
    """The file header followed by chunks ``first .. first + count - 1``, read straight from the file (``os.pread``:
    one copy of each block, where reading the batch into a ``BytesIO`` made three), zero-filled past the end of a
    truncated file so that a backend still reads a cut chunk."""

    def __init__(self, path: str, first: int, count: int) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._base = first * CHUNK_SIZE  # where the view's first chunk sits, counted from the end of the header
        self._size = HEADER_SIZE + count * CHUNK_SIZE
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = max(0, (0, self._pos, self._size)[whence] + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        pos = self._pos
        n = self._size - pos if size is None or size < 0 else min(size, self._size - pos)
        if n <= 0:
            return b""
        out = b""
        if pos < HEADER_SIZE:  # the file header, then the batch's chunks
            out = os.pread(self._fd, min(n, HEADER_SIZE - pos), pos)
            if len(out) == n:
                self._pos += n
                return out
            n -= len(out)
            pos = HEADER_SIZE
        data = os.pread(self._fd, n, HEADER_SIZE + self._base + pos - HEADER_SIZE)
        if len(data) < n:
            data += bytes(n - len(data))
        self._pos = pos + n
        return out + data if out else data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer)[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
