"""``krbtrace analyze --plot DIR --html FILE`` on the real-KDC samples, checked against samples/MANIFEST.

MANIFEST (written from TShark's reading of each capture) is the truth: how many messages, which KRB-ERROR codes.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from conftest import SAMPLES
from PIL import Image
from test_html_report import Doc
from test_plot import by_gid, error_points, lane_labels

import krbtrace
from krbtrace import plot
from krbtrace.cli import main

#: The error-code numbers the figures name (RFC 4120 §7.5.9).
NAMES = {7: "KDC_ERR_S_PRINCIPAL_UNKNOWN", 25: "KDC_ERR_PREAUTH_REQUIRED", 37: "KRB_AP_ERR_SKEW"}


def manifest(pcap: str) -> list[str]:
    """The message sequence of one capture (``AS-REQ``, ``KRB-ERROR:25``, ...)."""
    path = SAMPLES / "MANIFEST"
    if not (path.exists() and (SAMPLES / "kdc" / pcap).exists()):
        pytest.skip(f"samples/kdc/{pcap} or samples/MANIFEST is absent on this branch")
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    for row in csv.DictReader(lines, delimiter="\t"):
        if row["pcap"] == pcap:
            return row["sequence"].split()
    pytest.fail(f"{pcap} is not in samples/MANIFEST")


def test_analyze_writes_figures_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seq = manifest("04_server_unknown.pcap")
    pcap = SAMPLES / "kdc" / "04_server_unknown.pcap"
    figs, page = tmp_path / "figs", tmp_path / "report.html"
    rc = main(["analyze", str(pcap), "--plot", str(figs), "--html", str(page), "--no-progress", "--fail-on", "never"])
    assert rc == 0
    err = capsys.readouterr().err
    assert f"wrote 5 figures to {figs}" in err and f"wrote {page}" in err
    assert sorted(p.name for p in figs.iterdir()) == sorted(f"{n}.png" for n in plot.FIGURES)
    for p in figs.iterdir():
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width > 600
    doc = Doc(page.read_text(encoding="utf-8"))
    rows = [a for a in doc.find("tr") if a.get("data-row") is not None]
    assert len(rows) == len(seq)  # one table row per Kerberos message of the capture
    errors = Counter(int(m.split(":")[1]) for m in seq if m.startswith("KRB-ERROR:"))
    assert sum(1 for a in rows if a["data-error"] == "1") == sum(errors.values())
    text = "".join(doc.text)
    assert text.count("KDC_ERR_S_PRINCIPAL_UNKNOWN") >= errors[7]
    assert [a["data-rule"] for a in doc.find("article")], "the unknown SPN is diagnosed"


def test_swimlane_of_a_real_capture_marks_its_errors() -> None:
    seq = manifest("04_server_unknown.pcap")
    a = krbtrace.analyze(SAMPLES / "kdc" / "04_server_unknown.pcap")
    fig = plot.swimlane(a)
    assert lane_labels(fig) == ["alice"]  # MANIFEST: client=alice
    # the two S_PRINCIPAL_UNKNOWN answers are failures; the PREAUTH_REQUIRED step of the logon is not
    failed = [m for m in seq if m.startswith("KRB-ERROR:") and m != "KRB-ERROR:25"]
    assert len(error_points(fig)) == len(failed) == 2
    labels = [t.get_text() for t in by_gid(fig, "error-label")]
    assert labels == [f"{NAMES[7]} ×2"]
    assert not any(NAMES[25] in t for t in labels)
    # the expected PREAUTH_REQUIRED exchange is drawn, grey, as an AS circle
    assert [len(c.get_offsets()) for c in by_gid(fig, "exchanges:AS:expected")] == [seq.count("KRB-ERROR:25")]


def test_clock_offsets_of_the_skewed_client() -> None:
    manifest("05_clock_skew_as.pcap")
    a = krbtrace.analyze(SAMPLES / "kdc" / "05_clock_skew_as.pcap")
    ax = plot.clock_offsets(a).axes[0]
    offset_bars = [p for p in ax.patches if p.get_gid() == "offset-bar"]
    bars = {t.get_text(): b.get_width() for t, b in zip(ax.get_yticklabels(), offset_bars, strict=True)}
    # the generator ran the client under faketime 10 minutes ahead (MANIFEST title)
    client = [w for label, w in bars.items() if "(client)" in label]
    assert len(client) == 1 and abs(client[0] - 600) < 5
    assert "1 of" in ax.get_title() and "outside tolerance" in ax.get_title()


def test_unwritable_outputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest("04_server_unknown.pcap")
    pcap = str(SAMPLES / "kdc" / "04_server_unknown.pcap")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["analyze", pcap, "--plot", str(blocker), "--no-progress", "--fail-on", "never"]) == 2
    assert main(["analyze", pcap, "--html", str(tmp_path / "no" / "such" / "dir.html"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(blocker) in err and "dir.html" in err
