"""Finding severities, most severe first (no polars here: the CLI's option parser imports this)."""

from __future__ import annotations

from typing import Final

SEVERITIES: Final = ("critical", "high", "medium", "low", "info")
SEVERITY_RANK: Final[dict[str, int]] = {s: i for i, s in enumerate(SEVERITIES)}
