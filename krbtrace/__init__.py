"""krbtrace: Kerberos forensics over packet captures and Windows event logs.

``load(*paths)`` reads captures and logs into one timeline (a polars DataFrame with the columns of
:data:`krbtrace.schema.TIMELINE`).
"""

from __future__ import annotations

from .schema import TIMELINE
from .timeline import load

__all__ = ["TIMELINE", "load"]
__version__ = "0.1.0"
