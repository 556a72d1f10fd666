"""krbtrace: Kerberos forensics over packet captures and Windows event logs.

``load(*paths)`` reads captures and logs into one timeline (a polars DataFrame with the columns of
:data:`krbtrace.schema.TIMELINE`); ``analyze(*paths)`` also correlates it into exchanges and attempts, measures
clock offsets and diagnoses failures, returning an :class:`Analysis`; ``analyze_frame(df)`` does the same for a
timeline already loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import Analysis, analyze, analyze_frame
    from .schema import TIMELINE
    from .timeline import load

__all__ = ["TIMELINE", "Analysis", "analyze", "analyze_frame", "load"]
__version__ = "0.1.0"

# The public names are loaded on first use: `krbtrace timeline` (and --help) never pays for polars, the rules and
# yaml unless it needs them.
_HOME = {
    "Analysis": "analysis",
    "analyze": "analysis",
    "analyze_frame": "analysis",
    "TIMELINE": "schema",
    "load": "timeline",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
