"""The labelled Kerberos files of mdecrevoisier/EVTX-to-MITRE-Attack yield the findings their names announce.

The author names each file after what it holds ("ID4738-Do not require Kerberos preauthentication"): that label is
the truth for which rule must fire. Names in the findings are checked against the events themselves, read here
with the ``evtx`` package (the ``evtx_dump`` JSON), independently of krbtrace's parser.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from evtx import PyEvtxParser

from krbtrace.analysis import analyze
from tests.conftest import corpus_path

BASE = ("evtx", "mdecrevoisier__EVTX-to-MITRE-Attack")
PERSISTENCE = (*BASE, "TA0003-Persistence", "T1098.xxx-Account manipulation")
BRUTE = (*BASE, "TA0006-Credential Access", "T1110.xxx-Brut force")
TICKETS = (*BASE, "TA0006-Credential Access", "T1558-Steal or Forge Kerberos Tickets")
#: The rules of account changes (krbtrace/correlate_changes.py).
CHANGE_RULES = {
    "preauth_disabled",
    "des_only_enabled",
    "unconstrained_delegation",
    "protocol_transition_enabled",
    "constrained_delegation_set",
    "rbcd_set",
    "spn_on_user",
}


def _events(path: Path, event_id: int) -> list[tuple[datetime, dict[str, Any]]]:
    """(TimeCreated, EventData) of every ``event_id`` event, as the ``evtx`` package's JSON gives them."""
    out = []
    for rec in PyEvtxParser(str(path)).records_json():
        event = orjson.loads(rec["data"])["Event"]
        eid = event["System"]["EventID"]
        eid = eid["#text"] if isinstance(eid, dict) else eid
        if int(eid) == event_id:
            when = event["System"]["TimeCreated"]["#attributes"]["SystemTime"]
            out.append((datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(UTC), event["EventData"]))
    return out


def _findings(path: Path) -> dict[str, list[dict[str, Any]]]:
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for f in analyze(str(path)).findings.iter_rows(named=True):
        by_rule.setdefault(f["rule"], []).append(f)
    return by_rule


def _cn(dn: str) -> str:
    return dn.split(",", 1)[0].split("=", 1)[1]


def _second(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def test_preauth_disabled_then_required_again():
    path = corpus_path(*PERSISTENCE, "ID4738-Do not require Kerberos preauthentication.evtx")
    events = _events(path, 4738)
    [(t_off, off)] = [(t, d) for t, d in events if "%%2096" in d["UserAccountControl"]]
    [(t_on, on)] = [(t, d) for t, d in events if "%%2064" in d["UserAccountControl"]]
    found = _findings(path)
    # Re-enabling is no finding of its own: the one finding says the change was undone, when and by whom.
    assert set(found) == {"preauth_disabled"}
    [f] = found["preauth_disabled"]
    assert f["severity"] == "high" and f["count"] == 1
    assert f["principals"] == [off["TargetUserName"]] == ["hack1"]
    assert f"{off['SubjectDomainName']}\\{off['SubjectUserName']} switched off" in f["explanation"]
    assert f"for {off['TargetUserName']}" in f["explanation"] and _second(t_off) in f["explanation"]
    assert f"undone at {_second(t_on)} by {on['SubjectDomainName']}\\{on['SubjectUserName']}" in f["explanation"]
    assert f"Set-ADAccountControl -Identity {off['TargetUserName']} -DoesNotRequirePreAuth $false" in f["remedy"]


def test_des_only_enabled():
    path = corpus_path(*PERSISTENCE, "ID4738-Use only Kerberos DES encryption types.evtx")
    [(_t, on)] = [(t, d) for t, d in _events(path, 4738) if "%%2095" in d["UserAccountControl"]]
    found = _findings(path)
    assert set(found) == {"des_only_enabled"}
    [f] = found["des_only_enabled"]
    assert on["SubjectUserName"] in f["explanation"] and on["TargetUserName"] in f["explanation"]
    assert f"-Identity {on['TargetUserName']} -UseDESKeyOnly $false" in f["remedy"]


DELEGATION = {
    "ID4742,5136-Enable Trust this computer for delegation (to any service, Kerberos only).evtx": {
        "unconstrained_delegation"
    },
    "ID4742,5136-Enable Trust this computer for delegation (to specified service, Kerberos only).evtx": {
        "constrained_delegation_set"
    },
    "ID4742,5136-Enable Trust this computer for delegation (to specified service, any protocol).evtx": {
        "constrained_delegation_set",
        "protocol_transition_enabled",
    },
}


@pytest.mark.parametrize("name", sorted(DELEGATION))
def test_delegation_changes(name: str):
    path = corpus_path(*PERSISTENCE, name)
    [(_t, change)] = _events(path, 4742)
    dn = {d["ObjectDN"] for _t, d in _events(path, 5136)}
    found = _findings(path)
    assert set(found) == DELEGATION[name]
    for rule in DELEGATION[name]:
        [f] = found[rule]  # the 4742 and the 5136 events of one change are one finding
        assert f["severity"] == ("high" if rule == "unconstrained_delegation" else "medium")
        assert f"{change['SubjectDomainName']}\\{change['SubjectUserName']}" in f["explanation"]
        assert change["TargetUserName"] in f["explanation"] and change["TargetUserName"] in f["remedy"]
        assert f["principals"] == [change["TargetUserName"]]
    # the 5136 events' object is the same computer account (its CN plus "$"), listed once above, not by its DN
    assert {d.split(",")[0].split("=")[1].lower() + "$" for d in dn} == {change["TargetUserName"].lower()}
    if "constrained_delegation_set" in found:
        targets = change["AllowedToDelegateTo"].split()
        text = found["constrained_delegation_set"][0]["explanation"]
        assert targets and all(t in text for t in targets)


def test_spn_on_user_account():
    path = corpus_path(*PERSISTENCE, "ID4738,5136-SPN set on user account.evtx")
    added = [d for _t, d in _events(path, 5136) if d["AttributeLDAPDisplayName"] == "servicePrincipalName"]
    assert {d["ObjectClass"] for d in added} == {"user"}
    found = _findings(path)
    assert set(found) == {"spn_on_user"}
    [f] = found["spn_on_user"]
    assert f["severity"] == "medium" and f["count"] == len(added) == 2
    for d in added:
        assert d["AttributeValue"] in f["explanation"] and d["AttributeValue"] in f["remedy"]
        assert f"{d['SubjectDomainName']}\\{d['SubjectUserName']} added the SPN" in f["explanation"]
        assert f"user account {_cn(d['ObjectDN'])}" in f["explanation"]


def test_spn_on_a_computer_account_is_no_finding():
    path = corpus_path(*PERSISTENCE, "ID4742,5136-SPN set on computer account.evtx")
    assert any(d.get("ServicePrincipalNames") not in (None, "-") for _t, d in _events(path, 4742))
    assert not (CHANGE_RULES | {"dcshadow_spn"}) & set(_findings(path))


def test_dcshadow_spn():
    path = corpus_path(*PERSISTENCE, "ID4742-SPN set on computer account (DCshadow).evtx")
    lists = [(t, d, d["ServicePrincipalNames"].split()) for t, d in _events(path, 4742)]
    # The second list adds the DRS replication SPN (MS-DRSR DRS_SPN_CLASS) to the list of the first.
    [(t_add, d_add, spn)] = [
        (t, d, s)
        for (t, d, now), (_t0, _d0, before) in zip(lists[1:], lists, strict=False)
        for s in now
        if s not in before
    ]
    assert spn.upper().startswith("E3514235-4B06-11D1-AB04-00C04FC2DCD2/")
    found = _findings(path)
    assert set(found) == {"dcshadow_spn"}
    [f] = found["dcshadow_spn"]
    assert f["severity"] == "high" and f["principals"] == [d_add["TargetUserName"]]
    assert f"{d_add['SubjectDomainName']}\\{d_add['SubjectUserName']} gave the computer account" in f["explanation"]
    assert spn in f["explanation"] and _second(t_add) in f["explanation"]


def test_rbcd_set():
    path = corpus_path(*PERSISTENCE, "ID5136-Computer account set for RBCD delegation.evtx")
    [d] = [
        d
        for _t, d in _events(path, 5136)
        if d["AttributeLDAPDisplayName"] == "msDS-AllowedToActOnBehalfOfOtherIdentity"
    ]
    found = _findings(path)
    assert set(found) == {"rbcd_set"}
    [f] = found["rbcd_set"]
    assert f"{d['SubjectDomainName']}\\{d['SubjectUserName']} wrote" in f["explanation"]
    assert f"on {_cn(d['ObjectDN'])}$ (computer account" in f["explanation"]
    assert f"Get-ADComputer {_cn(d['ObjectDN'])}$ -Properties PrincipalsAllowedToDelegateToAccount" in f["remedy"]


def test_brute_force_with_valid_user():
    path = corpus_path(*BRUTE, "ID4771-Kerberos brutforce with valid user.evtx")
    users = {d["TargetUserName"] for _t, d in _events(path, 4771) if d["Status"] == "0x18"}
    found = _findings(path)
    [f] = found["brute_force"]
    assert f["principals"] == sorted(users) == ["admin-hacker"]


def test_user_enumeration_with_non_existing_users():
    path = corpus_path(*BRUTE, "ID4768-4771-Kerberos brutforce with non existing users.evtx")
    unknown = {d["TargetUserName"] for _t, d in _events(path, 4768) if d["Status"] == "0x6"}
    found = _findings(path)
    [f] = found["user_enumeration"]
    assert set(f["principals"]) == unknown and len(unknown) >= 20


def test_kerbrute_run_is_a_password_spray():
    # The file is labelled "user enumeration (Kerbrute)", but its events are 4771 0x18 (wrong password) for 22
    # existing accounts and 4768 0x12 (revoked) for 15 more, all from one address: by the evidence a password
    # spray over valid names, which is what krbtrace reports.
    path = corpus_path(*BRUTE, "ID4768-4771-Kerberos user enumeration (Kerbrute).evtx")
    wrong = {d["TargetUserName"] for _t, d in _events(path, 4771) if d["Status"] == "0x18"}
    revoked = {d["TargetUserName"] for _t, d in _events(path, 4768) if d["Status"] == "0x12"}
    sources = {d["IpAddress"] for t in (4768, 4771) for _t, d in _events(path, t) if d["Status"] in ("0x18", "0x12")}
    assert (len(wrong), len(revoked), len(sources)) == (22, 15, 1)
    found = _findings(path)
    [f] = found["password_spraying"]
    assert wrong <= set(f["principals"])


def test_asrep_roasting():
    path = corpus_path(*TICKETS, "ID4768-Kerberos AS-REP Roasting.evtx")
    roasted = {d["TargetUserName"] for _t, d in _events(path, 4768) if d["PreAuthType"] == "0" and d["Status"] == "0x0"}
    found = _findings(path)
    [f] = found["asrep_roastable"]
    assert set(f["principals"]) == roasted == {"admin-test"}


def test_kerberoast_ticket_with_low_encryption():
    path = corpus_path(*TICKETS, "ID4769-Kerberoast ticket with low encryption.evtx")
    rc4 = [d for _t, d in _events(path, 4769) if d["TicketEncryptionType"] == "0x17" and d["Status"] == "0x0"]
    found = _findings(path)
    [f] = found["rc4_service_ticket"]
    assert {d["ServiceName"] for d in rc4} <= set(f["services"]) and rc4


def test_dcshadow_attack_global():
    path = corpus_path(
        *BASE, "EVTX_full_APT_attack_steps", "ID4742,4935,4662,4661,5137-DCshadow attack (GLOBAL) failed.evtx"
    )
    lists = [d["ServicePrincipalNames"].split() for _t, d in _events(path, 4742)]
    new = [s for now, before in zip(lists[1:], lists, strict=False) for s in now if s not in before]
    dir_added = [d for _t, d in _events(path, 5136) if d["OperationType"] == "%%14674"]
    dir_removed = [(t, d) for t, d in _events(path, 5136) if d["OperationType"] == "%%14675"]
    assert new[0].upper().startswith("E3514235-4B06-11D1-AB04-00C04FC2DCD2/")
    assert [d["AttributeValue"] for d in dir_added] == ["GC/jump01.offsec.lan/offsec.lan"]
    [f] = _findings(path)["dcshadow_spn"]
    assert all(s in f["explanation"] for s in new) and dir_added[0]["AttributeValue"] in f["explanation"]
    assert f"{dir_added[0]['SubjectDomainName']}\\{dir_added[0]['SubjectUserName']} gave" in f["explanation"]
    assert f"computer account {_cn(dir_added[0]['ObjectDN'])}$" in f["explanation"]
    [(t_rm, rm)] = dir_removed
    assert f"The SPN {rm['AttributeValue']} was removed at {_second(t_rm)}" in f["explanation"]
