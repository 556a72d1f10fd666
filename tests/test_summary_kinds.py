"""Row kinds as people read them: messages, events, and a carrier's answer that carries no Kerberos token."""

from __future__ import annotations

from conftest import SAMPLES

from krbtrace.summary import kind_counts, kind_label
from krbtrace.timeline import frame, load
from parsers.record import KrbRecord


def test_kind_label_names_every_row():
    assert kind_label("AP-REQ", None, "ldap") == "AP-REQ"
    assert kind_label(None, 4769, None) == "event 4769"
    assert kind_label(None, None, "smb2") == "smb2 outcome"
    assert kind_label(None, None, None) == "other"


def test_kind_counts_merge_carriers_of_one_message_type():
    rows = [
        KrbRecord(ts=1, source="a", source_kind="pcap", msg_type="AP-REQ", carrier="ldap"),
        KrbRecord(ts=2, source="a", source_kind="pcap", msg_type="AP-REQ", carrier="smb2"),
        KrbRecord(ts=3, source="a", source_kind="pcap", carrier="smb2", app_status="STATUS_LOGON_FAILURE"),
        KrbRecord(ts=4, source="b", source_kind="evtx", event_id=4769),
    ]
    assert kind_counts(frame(rows)) == [("AP-REQ", 2), ("event 4769", 1), ("smb2 outcome", 1)]


def test_ldap_wrong_account_sample_shows_its_outcome_rows():
    # samples/samba/MANIFEST: two binds answered invalidCredentials (data 52e) with no Kerberos token
    counts = dict(kind_counts(load(SAMPLES / "samba" / "02_ldap_spn_wrong_account.pcap")))
    assert counts["ldap outcome"] == 2 and counts["AP-REQ"] == 2
