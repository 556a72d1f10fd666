"""Progress while inputs are read: a callback type, a counting wrapper over rows, and a one-line terminal display.

Imports nothing heavy, so ``krbtrace timeline`` can show progress without polars.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Final, TextIO, TypeVar

#: ``progress(stage, done, total)``: ``stage`` is ``read`` (done = timeline rows so far, total = None) or a later
#: step (done of total).
Progress = Callable[[str, int, int | None], None]
#: Rows between two ``read`` calls.
PROGRESS_EVERY: Final = 20_000

T = TypeVar("T")


def counted(rows: Iterable[T], progress: Progress) -> Iterator[T]:
    """``rows`` unchanged, with ``progress("read", n, None)`` every :data:`PROGRESS_EVERY` rows and at the end."""
    n = 0
    for n, row in enumerate(rows, 1):
        if n % PROGRESS_EVERY == 0:
            progress("read", n, None)
        yield row
    progress("read", n, None)


class ProgressLine:
    """A one-line progress display on a terminal: rows read, then the later steps (at most 10 updates/s)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = 0.0
        self.shown = False

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and stage == "read":
            return
        self.last = now
        text = f"read {done:,} timeline rows" if stage == "read" else f"{stage} ({done}/{total})"
        self.stream.write(f"\r\x1b[Kkrbtrace: {text}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        """Clear the line (when anything was drawn), so that what follows starts on a clean line."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def terminal_progress(stream: TextIO, wanted: bool = True) -> ProgressLine | None:
    """A :class:`ProgressLine` on ``stream`` when it is a terminal and progress is ``wanted``, else ``None``."""
    return ProgressLine(stream) if wanted and stream.isatty() else None
