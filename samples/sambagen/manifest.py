"""samples/samba/MANIFEST: what each Samba capture must decode to, as read independently by TShark.

Same format and comparison as ``samples/MANIFEST`` (:mod:`samples.kdcgen.manifest`): one TSV line per capture with
the ordered Kerberos messages (outermost per frame, ``KRB-ERROR:code``), their transport and carrier, the frame
numbers in the committed capture, facts and a title. The carriers here are ``kdc``, ``kpasswd``, ``ldap`` (a
BindRequest/BindResponse with a SASL GSS-SPNEGO token) and ``smb2`` (SESSION_SETUP security buffers). Only frames
holding a Kerberos message are in the sequence, so whatever else LDAP or SMB say (searches, tree connects) does not
make a regenerated capture differ.

Facts derived from the capture besides ``etypes`` and ``ip``: ``ldap=`` the resultCode of every BindResponse in order
(0 success, 14 saslBindInProgress, 49 invalidCredentials), ``smb=`` the NT status of every SMB2 SESSION_SETUP
response in order (0x00000000 success, 0xc000006d STATUS_LOGON_FAILURE), and ``pac=`` whether a ticket decrypted with
the run's keytab holds an AD-WIN2K-PAC (authorization-data type 128, MS-PAC) -- ``yes`` or ``no``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from samples.kdcgen.manifest import DERIVED_KEYS as KDC_DERIVED_KEYS
from samples.kdcgen.manifest import FIELDS, Reading, add_message, derived_diffs, entry, tshark_rows
from samples.kdcgen.manifest import against_scenario as kdc_against_scenario
from samples.kdcgen.manifest import compare as kdc_compare
from samples.kdcgen.manifest import dump as kdc_dump

__all__ = ["HEADER", "SambaReading", "against_scenario", "compare", "dump", "entry", "read_pcap"]

SAMBA_FIELDS: Final = (
    *FIELDS, "ldap.protocolOp", "ldap.resultCode", "smb2.cmd", "smb2.nt_status", "smb2.flags.response",
    "kerberos.ad_type",
)  # fmt: skip
#: Kerberos frames plus the carriers' answers (BindResponse, SMB2 SESSION_SETUP response) that may hold none.
DISPLAY: Final = "kerberos || kpasswd || ldap.protocolOp == 1 || (smb2.cmd == 1 && smb2.flags.response == 1)"
AD_WIN2K_PAC: Final = "128"
#: Derived facts compared between the manifest and a regenerated capture: kdcgen's and the carriers' outcomes.
DERIVED_KEYS: Final = (*KDC_DERIVED_KEYS, "ldap", "smb", "pac")
HEADER: Final = (
    "# samples/samba/MANIFEST: the Kerberos messages each capture in samples/samba must decode to, read by TShark.\n"
    "# Regenerate (root, ~10 s): python3 -m samples.sambagen    Check a fresh run against this file: "
    "python3 -m samples.sambagen --check </dev/null\n"
    "# sequence: outermost Kerberos message per frame, KRB-ERROR:<error-code>; transport, carrier (kdc, kpasswd, "
    "ldap, smb2): per message; frames: frame numbers in the committed capture; facts: key=value checked against "
    "TShark (etypes = every EncryptedData/ETYPE-INFO2 etype seen; ldap = BindResponse resultCodes; smb = SMB2 "
    "SESSION_SETUP response statuses; pac = a ticket decrypted with samba.test.keytab holds a PAC).\n"
)


@dataclass
class SambaReading(Reading):
    """A :class:`Reading` plus the carriers' own outcomes and whether a decrypted ticket held a PAC."""

    ldap_codes: list[str] = field(default_factory=list)
    smb_status: list[str] = field(default_factory=list)
    pac: bool = False

    def derived(self) -> str:
        out = super().derived()
        if self.ldap_codes:
            out += f" ldap={','.join(self.ldap_codes)}"
        if self.smb_status:
            out += f" smb={','.join(self.smb_status)}"
        return f"{out} pac={'yes' if self.pac else 'no'}"

    def facts_line(self, facts: str) -> str:
        """The scenario's facts plus the derived ones not already among them (scenarios name ``ldap=``, ``pac=``)."""
        own = facts.split()
        return " ".join([*own, *(item for item in self.derived().split() if item not in own)])


def read_pcap(pcap: Path, keytab: Path | None = None) -> SambaReading:
    """The Kerberos messages of ``pcap`` by TShark, with their carriers and the carriers' answers; tickets are
    decrypted when ``keytab`` exists.

    All Samba traffic is TCP except the first AS exchange, and a UDP datagram repeated byte for byte (a client's
    retransmission) is listed apart as in :func:`samples.kdcgen.manifest.read_pcap`.
    """
    options = []
    if keytab is not None and keytab.is_file():
        options = ["-o", "kerberos.decrypt:TRUE", "-o", f"kerberos.file:{keytab}"]
    reading = SambaReading()
    seen: set[tuple[str, str, str]] = set()
    for row in tshark_rows(pcap, SAMBA_FIELDS, DISPLAY, options):
        if "1" in row["ldap.protocolOp"].split("|") and row["ldap.resultCode"]:
            reading.ldap_codes.append(row["ldap.resultCode"].split("|")[0])
        is_smb = bool(row["smb2.cmd"])
        if is_smb and row["smb2.nt_status"] and "1" in row["smb2.flags.response"].split("|"):
            reading.smb_status.append(row["smb2.nt_status"].split("|")[0])
        if AD_WIN2K_PAC in row["kerberos.ad_type"].split("|"):
            reading.pac = True
        add_message(reading, row, seen, "ldap" if row["ldap.protocolOp"] else "smb2" if is_smb else None)
    return reading


def compare(want: dict[str, str], reading: SambaReading) -> list[str]:
    """Differences between a manifest entry and a (re)generated capture; frame numbers are not compared."""
    own = tuple(k for k in DERIVED_KEYS if k not in KDC_DERIVED_KEYS)
    return kdc_compare(want, reading) + derived_diffs(want["facts"], reading, own)


def against_scenario(expect: str, facts: str, reading: SambaReading) -> list[str]:
    """Differences between a fresh capture and its scenario's definition (used when generating)."""
    return kdc_against_scenario(expect, facts, reading, DERIVED_KEYS)


def dump(entries: dict[str, dict[str, str]]) -> str:
    return kdc_dump(entries, HEADER)
