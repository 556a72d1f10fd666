"""Differential test against a live TShark: a small capture from bench/make_captures.py (noise, 802.1Q, IPv6,
Kerberos over UDP with IPv4 fragments and over segmented TCP) must give, frame by frame, the messages TShark
dissects. Skipped when tshark is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from parsers.capture import read_capture
from parsers.record import ParseReport

ROOT = Path(__file__).resolve().parent.parent
NAMES = {"10": "AS-REQ", "11": "AS-REP", "12": "TGS-REQ", "13": "TGS-REP", "30": "KRB-ERROR"}


def _tshark(path: Path) -> dict[int, list[str]]:
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-Y", "kerberos", "-T", "fields", "-e", "frame.number", "-e",
         "kerberos.msg_type"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    frames: dict[int, list[str]] = {}
    for line in out.splitlines():
        number, types = line.split("\t")
        msgs, prev = [], ""
        for t in types.split(","):
            if not (t == "14" and prev in ("10", "12")):  # the AP-REQ inside PA-TGS-REQ is no message of its own
                msgs.append(NAMES[t])
            prev = t
        frames[int(number)] = msgs
    return frames


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_generated_capture_matches_tshark(tmp_path: Path, fmt: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "make_captures.py"), "--packets", "4000", "--exchanges", "30",
         "--out", str(tmp_path), *(["--pcapng"] if fmt == "pcapng" else [])],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    for name in (f"mixed.{fmt}", f"kerberos.{fmt}"):
        path = tmp_path / name
        report = ParseReport(str(path))
        ours: dict[int, list[str]] = defaultdict(list)
        for row in read_capture(str(path), report):
            ours[row.record_no].append(row.msg_type)  # type: ignore[index,arg-type]
        theirs = _tshark(path)
        assert theirs, name
        assert dict(ours) == theirs, name
        assert not report.issues
