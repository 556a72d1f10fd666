"""The real Samba AD DC samples (samples/samba/*.pcap) against samples/samba/MANIFEST.

Truth is TShark (an independent decoder) and Samba 4.17 itself, which made the captures (``python3 -m
samples.sambagen``): each committed capture must read, in TShark, as exactly its manifest line (with the committed
keytab, so the PAC inside the tickets is seen); krbtrace's own decode (``parsers.iter_records``) must produce the
same Kerberos messages at the same frames with the same carriers (kdc, ldap, smb2), and the LDAP / SMB2 answers
TShark lists (``ldap=``, ``smb=``) must be the ``app_status`` of krbtrace's server rows. The two wrong-account
captures must make ``krbtrace.analyze`` report the ``service_cannot_decrypt`` finding for the misplaced SPN.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest
from test_samples import (
    check_agrees_with_scenarios,
    check_dump_load_round_trip,
    check_reads_as_manifest,
    run_check,
    skip_unless_root_with,
)

from samples.kdcgen import manifest as kdc_manifest
from samples.kdcgen.manifest import Message, TsharkError
from samples.sambagen import manifest
from samples.sambagen.manifest import SambaReading
from samples.sambagen.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
SAMBA = ROOT / "samples" / "samba"
MANIFEST = SAMBA / "MANIFEST"
KEYTAB = SAMBA / "samba.test.keytab"
ENTRIES = kdc_manifest.load(MANIFEST)
NAMES = sorted(ENTRIES)
HAVE_TSHARK = shutil.which("tshark") is not None
needs_tshark = pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed (apt-get install tshark)")
WRONG_ACCOUNT = {"02_ldap_spn_wrong_account": "ldap/web.samba.test", "04_smb2_spn_wrong_account": "cifs/web.samba.test"}

#: RFC 4511 §4.1.9 result codes and MS-ERREF NTSTATUS values that occur in these captures (independent of krbtrace).
LDAP_RESULTS = {"0": "success", "14": "saslBindInProgress", "49": "invalidCredentials"}
NT_STATUSES = {
    "0x00000000": "STATUS_SUCCESS", "0xc000006d": "STATUS_LOGON_FAILURE", "0xc00000e5": "STATUS_INTERNAL_ERROR",
}  # fmt: skip


def _facts(entry: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in entry["facts"].split():
        key, _, value = item.partition("=")
        out.setdefault(key, []).append(value)
    return out


def test_manifest_covers_the_committed_captures() -> None:
    assert sorted(p.stem for p in SAMBA.glob("*.pcap")) == NAMES
    assert [s.name for s in SCENARIOS] == NAMES
    text = MANIFEST.read_text()
    assert text.startswith("# samples/samba/MANIFEST") and "python3 -m samples.sambagen --check" in text
    assert KEYTAB.is_file()


def test_manifest_agrees_with_the_scenarios() -> None:
    check_agrees_with_scenarios(ENTRIES, SCENARIOS)


def test_manifest_columns() -> None:
    for name, e in ENTRIES.items():
        n = len(e["sequence"].split())
        assert n == len(e["transport"].split()) == len(e["carrier"].split()) == len(e["frames"].split()), name
        assert set(e["transport"].split()) <= {"udp", "tcp"}, name
        assert set(e["carrier"].split()) <= {"kdc", "kpasswd", "ldap", "smb2"}, name
        frames = [int(f) for f in e["frames"].split()]
        assert frames == sorted(set(frames)), name
        assert _facts(e)["pac"] == ["yes"], name  # every capture holds a ticket with an AD-WIN2K-PAC
    # The point of the samples: an AP exchange in LDAP and in SMB2, a success and a failure of each.
    assert ENTRIES["01_ldap_sasl_pac_ok"]["sequence"].endswith("AP-REQ AP-REP")
    assert ENTRIES["03_smb2_kerberos_ok"]["sequence"].endswith("AP-REQ AP-REP")
    for name in WRONG_ACCOUNT:
        assert ENTRIES[name]["sequence"].endswith("TGS-REP AP-REQ"), name  # no Kerberos answer at all


@functools.cache
def _tshark(name: str) -> SambaReading:
    return manifest.read_pcap(SAMBA / ENTRIES[name]["pcap"], KEYTAB)


@needs_tshark
@pytest.mark.parametrize("name", NAMES)
def test_committed_capture_matches_manifest_in_tshark(name: str) -> None:
    check_reads_as_manifest(ENTRIES[name], _tshark(name), manifest.compare)


@needs_tshark
def test_pac_is_seen_only_with_the_keytab() -> None:
    """pac=yes is a fact about decrypted tickets: without the keytab TShark cannot see the PAC."""
    assert manifest.read_pcap(SAMBA / "01_ldap_sasl_pac_ok.pcap", None).pac is False
    assert _tshark("01_ldap_sasl_pac_ok").pac is True


def _krbtrace(name: str) -> tuple[list, dict[str, int]]:
    from parsers import ParseReport, iter_records

    report = ParseReport(name)
    return list(iter_records(SAMBA / ENTRIES[name]["pcap"], report)), dict(report.issues)


@pytest.mark.parametrize("name", NAMES)
def test_committed_capture_matches_manifest_in_krbtrace(name: str) -> None:
    want = ENTRIES[name]
    records, issues = _krbtrace(name)
    assert not issues
    messages = [r for r in records if r.msg_type is not None]
    tokens = [f"{r.msg_type}:{r.error_code}" if r.error_code is not None else r.msg_type for r in messages]
    assert " ".join(tokens) == want["sequence"]
    assert " ".join(str(r.record_no) for r in messages) == want["frames"]
    assert " ".join(r.transport for r in messages) == want["transport"]
    assert " ".join(r.carrier for r in messages) == want["carrier"]
    # The carriers' answers, in order: AP-REP rows and the outcome rows of answers without a Kerberos token.
    facts = _facts(want)
    answers = [r for r in records if r.carrier in ("ldap", "smb2") and r.app_status is not None]
    if "ldap" in facts:
        names = [LDAP_RESULTS[code] for code in facts["ldap"][0].split(",")]
        assert [r.app_status.split(":")[0] for r in answers] == names
    if "smb" in facts:
        assert [r.app_status for r in answers] == [NT_STATUSES[s] for s in facts["smb"][0].split(",")]
    assert all(r.phase == "AP" for r in records if r.carrier in ("ldap", "smb2"))


@pytest.mark.parametrize("name", sorted(WRONG_ACCOUNT))
def test_wrong_account_ap_rows(name: str) -> None:
    """The AP-REQ names the misplaced SPN in its ticket (RC4: the user account has no AES enctypes set), and the
    answer is an outcome row without a Kerberos message, LDAP's carrying the AD diagnostic ``data 52e``."""
    records, _ = _krbtrace(name)
    ap = [r for r in records if r.msg_type == "AP-REQ"]
    assert ap and all(r.ticket_service == WRONG_ACCOUNT[name] and r.ticket_etype == 23 for r in ap)
    outcomes = [r for r in records if r.msg_type is None and r.carrier in ("ldap", "smb2")]
    assert len(outcomes) == len(ap)
    if name.startswith("02"):
        assert all("data 52e" in (r.app_status or "") for r in outcomes)
    else:
        assert [r.nt_status for r in outcomes] == [0xC000006D]


@pytest.mark.parametrize("name", sorted(WRONG_ACCOUNT))
def test_analyze_finds_service_cannot_decrypt(name: str) -> None:
    from krbtrace.analysis import analyze

    findings = analyze(SAMBA / ENTRIES[name]["pcap"]).findings
    hit = findings.filter(findings["rule"] == "service_cannot_decrypt").to_dicts()
    assert len(hit) == 1
    assert hit[0]["services"] == [WRONG_ACCOUNT[name]]
    assert hit[0]["count"] == ENTRIES[name]["sequence"].split().count("AP-REQ")
    # Samba's FAST TGS-REP names WELLKNOWN/ANONYMOUS in clear; the real client (alice) is only inside the encrypted
    # part and no AS exchange is in this capture, so no principal may be named rather than the anonymous one.
    assert hit[0]["principals"] == []


@pytest.mark.parametrize("name", ["01_ldap_sasl_pac_ok", "03_smb2_kerberos_ok"])
def test_analyze_success_has_no_finding(name: str) -> None:
    from krbtrace.analysis import analyze

    assert analyze(SAMBA / ENTRIES[name]["pcap"]).findings.height == 0


# --- damaged captures and the manifest machinery (no Samba needed) ---


@pytest.mark.parametrize("cut", [24, 100, 3000, 9000])
def test_truncated_capture_does_not_crash_krbtrace(tmp_path: Path, cut: int) -> None:
    """A Samba capture cut anywhere: krbtrace yields a prefix of the messages and counts what it lost."""
    from parsers import ParseReport, iter_records

    data = (SAMBA / "01_ldap_sasl_pac_ok.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:cut])
    report = ParseReport(str(path))
    got = [r.msg_type for r in iter_records(path, report) if r.msg_type is not None]
    want = ENTRIES["01_ldap_sasl_pac_ok"]["sequence"].split()
    assert [t.split(":")[0] for t in want[: len(got)]] == got
    assert len(got) < len(want)
    assert report.issue_total > 0 or cut == 24  # a header-only file is a valid empty capture


@needs_tshark
def test_tshark_rejects_damaged_captures(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((SAMBA / "03_smb2_kerberos_ok.pcap").read_bytes()[:5000])
    with pytest.raises(TsharkError, match="cut short"):
        manifest.read_pcap(cut, KEYTAB)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00\xff not a capture" * 20)
    with pytest.raises(TsharkError):
        manifest.read_pcap(junk)


def test_tcpdump_drop_count() -> None:
    """tcpdump's exit statistics (real text of a run that lost packets under load) refuse the capture."""
    from samples.sambagen.capture import dropped

    lost = b"tcpdump: listening on lo\n49 packets captured\n106 packets received by filter\n8 packets dropped by kernel"
    assert dropped(lost) == 8
    assert dropped(b"12 packets captured\n12 packets received by filter\n0 packets dropped by kernel\n") == 0
    assert dropped(b"1 packet dropped by kernel\n3 packets dropped by interface\n") == 4
    assert dropped(b"") == 0 and dropped(b"\xff\x00 garbage dropped by kernel") == 0


def _reading(entry: dict[str, str]) -> SambaReading:
    r = SambaReading()
    r.messages = [
        Message(int(f), t, tr, 4, c)
        for t, tr, c, f in zip(*(entry[k].split() for k in ("sequence", "transport", "carrier", "frames")), strict=True)
    ]
    facts = _facts(entry)
    r.values = {"kerberos.etype": facts["etypes"][0].split(","), "kerberos.SNameString": []}
    for spn in facts.get("service", []):
        r.values["kerberos.SNameString"] += spn.split("/")
    r.values["kerberos.CNameString"] = facts.get("client", [])
    r.values["kerberos.realm"] = facts.get("realm", [])
    r.values["kerberos.kdc_options"] = facts.get("kdc_options", [])
    r.ldap_codes = facts["ldap"][0].split(",") if "ldap" in facts else []
    r.smb_status = facts["smb"][0].split(",") if "smb" in facts else []
    r.pac = facts["pac"] == ["yes"]
    return r


def test_compare_reports_changed_outcomes() -> None:
    want = ENTRIES["02_ldap_spn_wrong_account"]
    r = _reading(want)
    assert manifest.compare(want, r) == []
    r.ldap_codes = ["0"]  # the bind succeeded after all: the SPN is no longer on the wrong account
    assert [d.split(" differs")[0] for d in manifest.compare(want, r)] == ["fact ldap=49,49"]
    r = _reading(ENTRIES["04_smb2_spn_wrong_account"])
    r.pac = False
    r.smb_status = ["0xc00000e5"]
    diff = manifest.compare(ENTRIES["04_smb2_spn_wrong_account"], r)
    assert sorted(d.split(" differs")[0] for d in diff) == ["fact pac=yes", "fact smb=0xc000006d"]


def test_against_scenario_and_entry() -> None:
    sc = SCENARIOS[3]
    r = _reading(ENTRIES[sc.name])
    assert manifest.against_scenario(sc.expect, sc.facts, r) == []
    assert manifest.entry(sc.name, sc.title, sc.facts, r)["facts"] == ENTRIES[sc.name]["facts"]
    r.smb_status = []
    assert any("smb=0xc000006d" in p for p in manifest.against_scenario(sc.expect, sc.facts, r))
    r.retransmissions = [5]
    assert any("retransmissions" in p for p in manifest.against_scenario(sc.expect, sc.facts, r))


def test_dump_load_round_trip(tmp_path: Path) -> None:
    check_dump_load_round_trip(tmp_path / "MANIFEST", MANIFEST, manifest.dump)


def test_select() -> None:
    from samples.sambagen.scenarios import select

    assert [s.name for s in select(["2", "04_smb2_spn_wrong_account"])] == NAMES[1::2]
    with pytest.raises(KeyError):
        select(["99"])


# --- a real regeneration (root, Samba, tcpdump, tshark, namespaces) ---

TOOLS = ("samba", "samba-tool", "ldbsearch", "smbclient", "kinit", "tcpdump", "tshark", "unshare", "wbinfo")


@pytest.mark.slow
def test_regenerate_against_a_tampered_manifest(tmp_path: Path) -> None:
    """--check with a real Samba DC: 02 must still match; 04, whose manifest line is altered, must fail with a diff
    naming it. Provisioning dominates: about 10 s on an idle 2-core machine."""
    skip_unless_root_with(
        TOOLS, "namespaces, mounts, tcpdump", " (apt-get install samba samba-ad-dc ... see samples/samba)"
    )
    tampered = dict(ENTRIES["04_smb2_spn_wrong_account"], sequence="TGS-REQ TGS-REP")
    text = manifest.dump({**ENTRIES, "04_smb2_spn_wrong_account": tampered})
    proc = run_check(tmp_path, "sambagen", text, ["02", "04"], timeout=240)
    if proc.returncode == 2 and "unshare -n -m is not allowed" in proc.stderr:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "04_smb2_spn_wrong_account: sequence" in proc.stderr
    assert "tshark   TGS-REQ TGS-REP AP-REQ" in proc.stderr
    assert "02_ldap_spn_wrong_account" not in proc.stderr
