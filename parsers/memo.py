"""A bounded memo for the decoders: values that repeat across a file (realms, principals, times, etype lists, SIDs,
addresses) are decoded once and then found by a dict look-up.

``memo[key]`` computes ``read(key)`` on a miss; where the value must be read from a larger buffer (so that error
messages keep their offsets) the caller uses :meth:`Memo.span`, or looks up with ``memo.get(key)`` and stores with
``memo.keep(key, value)``.
A failure raises before anything is stored, so it is never remembered. At ``size`` entries the memo starts afresh:
memory stays bounded whatever the input, and the values that really repeat come back at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Final

__all__ = ["MEMO_SIZE", "Memo"]

#: Entries a memo holds before it starts afresh.
MEMO_SIZE: Final = 4096


class Memo(dict[Hashable, Any]):
    """A dict that fills itself from ``read`` (a pure function of the key) and never holds more than ``size``."""

    __slots__ = ("read", "size")

    def __init__(self, read: Callable[[Any], Any] | None = None, size: int = MEMO_SIZE) -> None:
        super().__init__()
        self.read = read
        self.size = size

    def __missing__(self, key: Hashable) -> Any:
        if self.read is None:
            raise KeyError(key)
        return self.keep(key, self.read(key))

    def keep(self, key: Hashable, value: Any) -> Any:
        """Remember ``value`` for ``key`` (starting afresh when full); returns ``value``."""
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value

    def span(self, buf: bytes, start: int, stop: int, read: Callable[[bytes, int, int], Any], longest: int) -> Any:
        """``read(buf, start, stop)``, remembered by the octets ``buf[start:stop]`` when there are at most
        ``longest`` of them (longer encodings are read every time, so hostile input cannot fill the memo with
        large keys). ``read`` gets the whole buffer, so that an error names the offset in the message."""
        if stop - start > longest:
            return read(buf, start, stop)
        key = buf[start:stop]
        value = self.get(key)
        if value is None:
            value = self.keep(key, read(buf, start, stop))
        return value
