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

import io
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from samples.kdcgen.manifest import (
    COLUMNS,
    FIELDS,
    KPASSWD_PORT,
    Message,
    Reading,
    TsharkError,
    _token,
    check_facts,
)
from samples.kdcgen.manifest import compare as kdc_compare

__all__ = ["HEADER", "SambaReading", "compare", "dump", "read_pcap"]

SAMBA_FIELDS: Final = (
    *FIELDS, "ldap.protocolOp", "ldap.resultCode", "smb2.cmd", "smb2.nt_status", "smb2.flags.response",
    "kerberos.ad_type",
)  # fmt: skip
#: Kerberos frames plus the carriers' answers (BindResponse, SMB2 SESSION_SETUP response) that may hold none.
DISPLAY: Final = "kerberos || kpasswd || ldap.protocolOp == 1 || (smb2.cmd == 1 && smb2.flags.response == 1)"
AD_WIN2K_PAC: Final = "128"
#: Derived facts compared between the manifest and a regenerated capture.
DERIVED_KEYS: Final = ("etypes", "ip", "http", "ldap", "smb", "pac")
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


def _first_int(value: str) -> int:
    first = value.split("|")[0]
    return int(first) if first.isdigit() else 0


def tshark_rows(pcap: Path, keytab: Path | None) -> list[dict[str, str]]:
    """TShark's field values, one dict per frame of :data:`DISPLAY`; tickets decrypted when ``keytab`` exists."""
    if not shutil.which("tshark"):
        raise TsharkError("tshark is not installed")
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", DISPLAY, "-T", "fields",
            "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|"]  # fmt: skip
    if keytab is not None and keytab.is_file():
        argv += ["-o", "kerberos.decrypt:TRUE", "-o", f"kerberos.file:{keytab}"]
    for f in SAMBA_FIELDS:
        argv += ["-e", f]
    proc = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise TsharkError(f"tshark failed on {pcap}: {proc.stderr.decode(errors='replace').strip()[-300:]}")
    rows = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        parts = line.split("\t")
        rows.append(dict(zip(SAMBA_FIELDS, parts + [""] * (len(SAMBA_FIELDS) - len(parts)), strict=True)))
    return rows


def read_pcap(pcap: Path, keytab: Path | None = None) -> SambaReading:
    """The Kerberos messages of ``pcap`` by TShark, with their carriers and the carriers' answers.

    All Samba traffic is TCP except the first AS exchange, and a UDP datagram repeated byte for byte (a client's
    retransmission) is listed apart as in :func:`samples.kdcgen.manifest.read_pcap`.
    """
    reading = SambaReading()
    seen: set[tuple[str, str, str]] = set()
    for row in tshark_rows(pcap, keytab):
        if "1" in row["ldap.protocolOp"].split("|") and row["ldap.resultCode"]:
            reading.ldap_codes.append(row["ldap.resultCode"].split("|")[0])
        is_smb = bool(row["smb2.cmd"])
        if is_smb and row["smb2.nt_status"] and "1" in row["smb2.flags.response"].split("|"):
            reading.smb_status.append(row["smb2.nt_status"].split("|")[0])
        if AD_WIN2K_PAC in row["kerberos.ad_type"].split("|"):
            reading.pac = True
        if not row["kerberos.msg_type"]:
            continue
        udp = bool(row["udp.srcport"])
        sport = _first_int(row["udp.srcport"] or row["tcp.srcport"])
        dport = _first_int(row["udp.dstport"] or row["tcp.dstport"])
        if udp and row["udp.payload"]:
            key = (row["udp.payload"], str(sport), str(dport))
            if key in seen:
                reading.retransmissions.append(int(row["frame.number"]))
                continue
            seen.add(key)
        kpasswd = KPASSWD_PORT in (sport, dport)
        token = _token(row, kpasswd, dport == KPASSWD_PORT)
        carrier = "ldap" if row["ldap.protocolOp"] else "smb2" if is_smb else "kpasswd" if kpasswd else "kdc"
        ip = 6 if row["ipv6.src"] else 4
        reading.messages.append(Message(int(row["frame.number"]), token, "udp" if udp else "tcp", ip, carrier))
        for f in ("kerberos.CNameString", "kerberos.SNameString", "kerberos.realm", "kerberos.etype",
                  "kerberos.padata_type", "kerberos.kdc_options"):  # fmt: skip
            reading.values.setdefault(f, []).extend(v for v in row[f].split("|") if v)
    return reading


def compare(want: dict[str, str], reading: SambaReading) -> list[str]:
    """Differences between a manifest entry and a (re)generated capture; frame numbers are not compared."""
    out = kdc_compare(want, reading)
    derived = set(reading.derived().split())
    for item in want["facts"].split():
        key = item.partition("=")[0]
        if key in DERIVED_KEYS and key not in ("etypes", "ip", "http") and item not in derived:
            out.append(f"fact {item} differs: tshark reads {' '.join(sorted(derived))}")
    return out


def against_scenario(expect: str, facts: str, reading: SambaReading) -> list[str]:
    """Differences between a fresh capture and its scenario's definition (used when generating)."""
    out = []
    if reading.sequence != expect:
        out.append(f"sequence\n      expected {expect}\n      tshark   {reading.sequence}")
    if reading.retransmissions:
        out.append(f"UDP retransmissions in frames {reading.retransmissions} (host too slow?); run again")
    derived = set(reading.derived().split())
    out += [f"fact {item} not in the capture ({' '.join(sorted(derived))})" for item in facts.split()
            if item.partition("=")[0] in DERIVED_KEYS and item not in derived]  # fmt: skip
    return out + check_facts(facts, reading)


def entry(name: str, title: str, facts: str, reading: SambaReading) -> dict[str, str]:
    """The manifest line of one capture: the scenario's facts plus the derived ones not already among them."""
    own = facts.split()
    extra = [item for item in reading.derived().split() if item not in own]
    return {
        "pcap": f"{name}.pcap",
        "sequence": reading.sequence,
        "transport": reading.transport,
        "carrier": reading.carrier,
        "frames": reading.frames,
        "facts": " ".join([*own, *extra]),
        "title": title,
    }


def dump(entries: dict[str, dict[str, str]]) -> str:
    buf = io.StringIO()
    buf.write(HEADER)
    buf.write("\t".join(COLUMNS) + "\n")
    for name in sorted(entries):
        buf.write("\t".join(entries[name][c] for c in COLUMNS) + "\n")
    return buf.getvalue()
