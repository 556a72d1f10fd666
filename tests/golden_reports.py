"""Golden JSON reports of ``krbtrace analyze --format json`` for every sample (tests/golden/analyze/*.json).

Regenerate after a deliberate change (run from the repository root)::

    python3 tests/golden_reports.py

Each golden file is the report object with a leading ``"regenerate"`` key naming that command (JSON has no
comments) and the sample's SHA-256: when a sample is regenerated (new times, ports, nonces), its golden report is
skipped with that reason until this command is run again. The samples are read with paths relative to the
repository root, so the reports hold no absolute paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "analyze"
REGENERATE = "python3 tests/golden_reports.py"


def sample_paths() -> list[str]:
    """The samples with a golden report, relative to the repository root."""
    caps = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "samples" / "kdc").glob("*.pcap"))
    logs = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "samples" / "evtx").glob("*.evtx"))
    return caps + logs


def report(path: str) -> dict[str, object]:
    """The JSON report of one sample as a mapping (read from the repository root)."""
    from krbtrace.analysis import analyze

    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        doc = json.loads(analyze(path).to_json())
    finally:
        os.chdir(cwd)
    digest = hashlib.sha256((ROOT / path).read_bytes()).hexdigest()
    return {"regenerate": REGENERATE, "sample_sha256": digest, **doc}


def golden_path(sample: str) -> Path:
    """Where the golden report of ``sample`` lives."""
    return GOLDEN / (Path(sample).stem + ".json")


def main() -> int:
    sys.path.insert(0, str(ROOT))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for sample in sample_paths():
        golden_path(sample).write_text(json.dumps(report(sample), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {golden_path(sample).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
