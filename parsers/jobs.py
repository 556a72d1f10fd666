"""How many processes to read one file with, when the caller asks for "as many as make sense".

Both multi-process readers (:mod:`parsers.parallel` for captures, :mod:`parsers.evtxpool` for EVTX) take an explicit
``jobs``; the command line passes :func:`default_jobs` unless ``--jobs`` says otherwise.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["MAX_JOBS", "default_jobs"]

#: The most processes :func:`default_jobs` suggests: beyond this the parent, which merges rows in order, is the limit.
MAX_JOBS: Final = 8


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count), at most :data:`MAX_JOBS`."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(MAX_JOBS, n))
