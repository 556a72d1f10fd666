"""krbtrace: Kerberos forensics over packet captures and Windows event logs.

``load(*paths)`` reads captures and logs into one timeline (a polars DataFrame with the columns of
:data:`krbtrace.schema.TIMELINE`); ``analyze(*paths)`` also correlates it into exchanges and attempts, measures
clock offsets and diagnoses failures, returning an :class:`Analysis`; ``analyze_frame(df)`` does the same for a
timeline already loaded.
"""

from __future__ import annotations

from .analysis import Analysis, analyze, analyze_frame
from .schema import TIMELINE
from .timeline import load

__all__ = ["TIMELINE", "Analysis", "analyze", "analyze_frame", "load"]
__version__ = "0.1.0"
