"""Shared by the EVTX / event tests: the samples' MANIFEST and the writer, imported from samples/evtx."""

from __future__ import annotations

import csv
import sys
from typing import Any

from tests.conftest import SAMPLES

EVTX_SAMPLES = SAMPLES / "evtx"
sys.path.insert(0, str(EVTX_SAMPLES))

import evtxwriter  # noqa: E402
import make_samples  # noqa: E402

INT_COLUMNS = ("record_no", "event_id", "error_code", "src_port", "ticket_etype", "preauth_type")
HEX_COLUMNS = ("kdc_options", "nt_status")


def manifest(sample: str) -> list[dict[str, Any]]:
    """The MANIFEST rows of one sample, typed like the timeline columns ("" -> None)."""
    with open(EVTX_SAMPLES / "MANIFEST", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    rows = []
    for raw in csv.DictReader(lines, delimiter="\t"):
        if raw["sample"] != sample:
            continue
        row: dict[str, Any] = {}
        for k, v in raw.items():
            if k in ("sample", "story"):
                continue
            if v == "":
                row[k] = None
            elif k in INT_COLUMNS:
                row[k] = int(v)
            elif k in HEX_COLUMNS:
                row[k] = int(v, 16)
            else:
                row[k] = v
        rows.append(row)
    return rows


def as_manifest(record: Any) -> dict[str, Any]:
    """The MANIFEST columns of a KrbRecord."""
    return {k: getattr(record, k) for k in make_samples.MANIFEST_COLUMNS if k not in ("sample", "story")}


__all__ = ["EVTX_SAMPLES", "as_manifest", "evtxwriter", "make_samples", "manifest"]


def test_manifest_names_existing_samples() -> None:
    with open(EVTX_SAMPLES / "MANIFEST") as fh:
        assert fh.readline().startswith("# regenerate: python3 samples/evtx/make_samples.py")
    for name in ("dc01-security.evtx", "dc01-security.xml", "dc01-security.jsonl", "dc01-system.evtx"):
        assert (EVTX_SAMPLES / name).is_file()
        assert manifest(name)
    assert len(manifest("dc01-security.evtx")) == 20 and len(manifest("dc01-system.evtx")) == 5
