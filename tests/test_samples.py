"""The real-KDC samples (samples/kdc/*.pcap) against samples/MANIFEST.

Truth is TShark (an independent decoder) and the MIT KDC that made the captures: each committed capture must read,
in TShark, as exactly its manifest line; krbtrace's own capture parser must produce the same message sequence at
the same frame numbers. One test regenerates two scenarios with the real KDC (root only, a few seconds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from samples.kdcgen import manifest
from samples.kdcgen.manifest import Message, Reading
from samples.kdcgen.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
KDC = ROOT / "samples" / "kdc"
MANIFEST = ROOT / "samples" / "MANIFEST"
ENTRIES = manifest.load(MANIFEST)
NAMES = sorted(ENTRIES)
HAVE_TSHARK = shutil.which("tshark") is not None
needs_tshark = pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed (apt-get install tshark)")


def test_manifest_covers_the_committed_captures() -> None:
    committed = sorted(p.stem for p in KDC.glob("*.pcap"))
    assert committed == NAMES
    assert [s.name for s in SCENARIOS if s.name in ENTRIES] == [s.name for s in SCENARIOS]
    # The README runs `krbtrace analyze samples/kdc/02_preauth_failed.pcap`.
    assert ENTRIES["02_preauth_failed"]["sequence"].endswith("KRB-ERROR:24")
    assert MANIFEST.read_text().startswith("# samples/MANIFEST") and "python3 -m samples.kdcgen" in MANIFEST.read_text()


def test_manifest_agrees_with_the_scenarios() -> None:
    """What the generator expects of each scenario is what the committed capture showed TShark."""
    for sc in SCENARIOS:
        assert ENTRIES[sc.name]["sequence"] == sc.expect, sc.name
        assert ENTRIES[sc.name]["facts"].startswith(sc.facts), sc.name


def test_manifest_numbers_and_columns() -> None:
    numbers = [n.split("_")[0] for n in NAMES]
    assert numbers == [f"{i:02d}" for i in range(1, len(NAMES) + 1)]
    for name, e in ENTRIES.items():
        n = len(e["sequence"].split())
        assert n == len(e["transport"].split()) == len(e["frames"].split()), name
        assert set(e["transport"].split()) <= {"udp", "tcp"}, name
        frames = [int(f) for f in e["frames"].split()]
        assert frames == sorted(set(frames)), name


@needs_tshark
@pytest.mark.parametrize("name", NAMES)
def test_committed_capture_matches_manifest_in_tshark(name: str) -> None:
    want = ENTRIES[name]
    got = manifest.read_pcap(KDC / want["pcap"])
    assert got.retransmissions == []
    assert got.sequence == want["sequence"]
    assert got.transport == want["transport"]
    assert got.frames == want["frames"]
    assert manifest.compare(want, got) == []


def _krbtrace_tokens(pcap: Path) -> tuple[list[str], list[int], list[str], dict[str, int]]:
    pytest.importorskip("parsers.capture", reason="parsers.capture (the capture parser) is not on this branch yet")
    from parsers import ParseReport, iter_records

    report = ParseReport(str(pcap))
    tokens, frames, transports = [], [], []
    for rec in iter_records(pcap, report):
        token = rec.msg_type
        if rec.error_code is not None:
            token = f"{token}:{rec.error_code}"
        tokens.append(token)
        frames.append(rec.record_no)
        transports.append(rec.transport)
    return tokens, frames, transports, dict(report.issues)


@pytest.mark.parametrize("name", NAMES)
def test_committed_capture_matches_manifest_in_krbtrace(name: str) -> None:
    want = ENTRIES[name]
    tokens, frames, transports, issues = _krbtrace_tokens(KDC / want["pcap"])
    assert " ".join(tokens) == want["sequence"]
    assert " ".join(map(str, frames)) == want["frames"]
    assert " ".join(transports) == want["transport"]
    assert not issues


# --- the manifest machinery itself (no KDC needed) ---


def _reading(tokens: str, transport: str = "udp") -> Reading:
    r = Reading()
    r.messages = [Message(i + 1, t, transport, 4) for i, t in enumerate(tokens.split())]
    r.values = {"kerberos.CNameString": ["alice"], "kerberos.SNameString": ["krbtgt", "EXAMPLE.TEST", "HTTP", "web"],
                "kerberos.etype": ["18"], "kerberos.realm": ["EXAMPLE.TEST"]}  # fmt: skip
    return r


def test_dump_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "MANIFEST"
    path.write_text(manifest.dump(ENTRIES))
    assert manifest.load(path) == ENTRIES
    assert path.read_text() == MANIFEST.read_text()


def test_compare_reports_a_changed_sequence_and_fact() -> None:
    want = ENTRIES["02_preauth_failed"]
    assert manifest.compare(want, _reading(want["sequence"])) == []
    diff = manifest.compare(want, _reading("AS-REQ KRB-ERROR:25 AS-REQ AS-REP"))
    assert len(diff) == 1 and "manifest AS-REQ KRB-ERROR:25 AS-REQ KRB-ERROR:24" in diff[0]
    diff = manifest.compare(want, _reading(want["sequence"], "tcp"))
    assert [d.split("\n")[0] for d in diff] == ["transport", "fact transport=udp does not hold"]
    other = dict(want, facts="client=bob etypes=23 ip=4")
    assert len(manifest.compare(other, _reading(want["sequence"]))) == 2


def test_facts() -> None:
    r = _reading("AS-REQ")
    assert manifest.check_facts("client=alice service=HTTP/web realm=EXAMPLE.TEST etype=18 note=x", r) == []
    assert manifest.check_facts("service=krbtgt/EXAMPLE.TEST", r) == []
    # A name's components must be consecutive: EXAMPLE.TEST/HTTP spans two principals but is not one.
    assert manifest.check_facts("service=web/krbtgt", r) == ["fact service=web/krbtgt does not hold"]
    assert manifest.check_facts("transport=tcp", r) == ["fact transport=tcp does not hold"]


@needs_tshark
def test_udp_retransmission_is_listed_apart(tmp_path: Path) -> None:
    """A datagram repeated byte for byte (client retry after a slow KDC) is not a second message."""
    data = (KDC / "02_preauth_failed.pcap").read_bytes()
    assert data[:4] == bytes.fromhex("d4c3b2a1")  # tcpdump's little-endian microsecond pcap
    records, pos = [], 24
    while pos < len(data):
        size = 16 + int.from_bytes(data[pos + 8 : pos + 12], "little")
        records.append(data[pos : pos + size])
        pos += size
    (tmp_path / "dup.pcap").write_bytes(data[:24] + b"".join([*records[:3], records[2], *records[3:]]))
    got = manifest.read_pcap(tmp_path / "dup.pcap")
    assert got.sequence == ENTRIES["02_preauth_failed"]["sequence"]
    assert got.retransmissions == [4]
    assert any("retransmissions" in p for p in manifest.against_scenario(got.sequence, "", got))


def test_tshark_error_on_a_non_capture(tmp_path: Path) -> None:
    if not HAVE_TSHARK:
        pytest.skip("tshark is not installed")
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"not a capture at all")
    with pytest.raises(manifest.TsharkError):
        manifest.read_pcap(bad)


# --- a real regeneration (root, MIT KDC, tcpdump, tshark, faketime) ---

TOOLS = ("krb5kdc", "kadmind", "kdb5_util", "kadmin.local", "kinit", "tcpdump", "tshark", "faketime")


@pytest.mark.slow
def test_regenerate_two_scenarios_against_a_tampered_manifest(tmp_path: Path) -> None:
    """--check on a real KDC: 01 matches the committed manifest; 02, whose manifest line is altered, must fail with
    a diff naming it (and only it). Takes a few seconds."""
    if os.geteuid() != 0:
        pytest.skip("the generator needs root (tcpdump, KDC on port 88)")
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")
    tampered = dict(ENTRIES)
    tampered["02_preauth_failed"] = dict(ENTRIES["02_preauth_failed"], sequence="AS-REQ KRB-ERROR:25 AS-REQ AS-REP")
    path = tmp_path / "MANIFEST"
    path.write_text(manifest.dump(tampered))
    proc = subprocess.run(
        [sys.executable, "-m", "samples.kdcgen", "--check", "--only", "01", "02", "--manifest", str(path)],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "02_preauth_failed: sequence" in proc.stderr
    assert "tshark   AS-REQ KRB-ERROR:25 AS-REQ KRB-ERROR:24" in proc.stderr
    assert "01_as_tgs_ok" not in proc.stderr
