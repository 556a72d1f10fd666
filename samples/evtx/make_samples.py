"""Generate the Windows event-log samples and their MANIFEST: ``python3 samples/evtx/make_samples.py``.

A domain controller (``dc01.example.test``, AD domain EXAMPLE.TEST, NetBIOS EXAMPLE) whose Security log tells the
capture samples' stories (``docs/real-kdc-captures.md`` §5: alice, roast, locked, disabled, HTTP/web.example.test on
127.0.0.1) the way Windows audits them (Microsoft's event-4768/4769/4770/4771 pages): success 4768 -> 4769, wrong
password 4771 0x18, clock skew 4771/4769 0x25 and a 4625 0xC0000133, lockout (three 4771 0x18 then 4768 0x12),
disabled account 4768 0x12, unknown user 4768 0x6, unknown SPN 4769 0x7, an AS-REP roastable account (4738 %%2096,
then 4768 PreAuthType 0 with RC4), an RC4 service ticket (4769 0x17), a renewal (4770), a 4624 Kerberos logon, an
SPN added (5136), and one 4769 in the newer layout (Version 1, extra encryption fields). Non-Kerberos events (4634,
4672, 4740, an NTLM 4624, Service Control Manager 7036) are mixed in and must NOT reach the timeline.

The System log holds a Security-Kerberos 3 (KRB_AP_ERR_SKEW with client and server time), a Security-Kerberos 4
(KRB_AP_ERR_MODIFIED), KDC 11 (duplicate SPN) and Time-Service 52 / 36 clock evidence.

Outputs next to this file: ``dc01-security.evtx``, ``dc01-system.evtx``, the Security log again as an event XML
export (``dc01-security.xml``) and as ``evtx_dump -o jsonl`` JSON lines (``dc01-security.jsonl``), and ``MANIFEST``
(tab-separated; one line per row each sample must decode to, written from the stories below, not from a parser).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evtxwriter import EventSpec, EvtxWriter
from renderers import to_json, to_xml

HERE = Path(__file__).resolve().parent
DC = "dc01.example.test"
SEC = "Microsoft-Windows-Security-Auditing"
SEC_GUID = "54849625-5478-4994-A5BA-3E3B0328C30D"
DOMAIN_SID = "S-1-5-21-3623811015-3361044348-30300820"
SIDS = {"alice": 1104, "roast": 1105, "locked": 1106, "disabled": 1107, "websvc": 1108, "admin": 500, "krbtgt": 502}
#: The error names of the codes used, from RFC 4120 §7.5.9 (written here, not taken from the parser's tables).
NAMES = {
    0x6: "KDC_ERR_C_PRINCIPAL_UNKNOWN",
    0x7: "KDC_ERR_S_PRINCIPAL_UNKNOWN",
    0x8: "KDC_ERR_PRINCIPAL_NOT_UNIQUE",
    0x12: "KDC_ERR_CLIENT_REVOKED",
    0x18: "KDC_ERR_PREAUTH_FAILED",
    0x25: "KRB_AP_ERR_SKEW",
    0x29: "KRB_AP_ERR_MODIFIED",
}
#: 2026-01-15T09:00:00Z in 100 ns units since 1970 (Windows keeps 7 fraction digits).
T0 = int(datetime(2026, 1, 15, 9, 0, tzinfo=UTC).timestamp()) * 10_000_000
MANIFEST_COLUMNS = (
    "sample record_no event_id provider phase error_code error_name client client_realm service src_ip src_port "
    "kdc_options ticket_etype preauth_type nt_status story"
).split()


def sid(name: str) -> str:
    return f"{DOMAIN_SID}-{SIDS[name]}"


def at(seconds: float, ticks: int = 1234567) -> int:
    """A time ``seconds`` after T0 with a 7-digit fraction (so truncation to µs is exercised)."""
    return T0 + int(seconds) * 10_000_000 + ticks


class Story:
    """Collects events in log order and, for those krbtrace must keep, the row they must decode to."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.events: list[EventSpec] = []
        self.expect: list[dict[str, Any]] = []

    def add(self, ev: EventSpec, expect: dict[str, Any] | None = None, story: str = "") -> None:
        ev.record_id = 1000 + len(self.events)
        self.events.append(ev)
        if expect is not None:
            row = {"record_no": ev.record_id, "event_id": ev.event_id, "provider": ev.provider, "story": story}
            row.update(expect)
            self.expect.append(row)


def sec(event_id: int, t: int, data: list[tuple[str, Any, str]], **kw: Any) -> EventSpec:
    failure = kw.pop("failure", False)
    return EventSpec(
        provider=SEC,
        provider_guid=SEC_GUID,
        event_id=event_id,
        time=t,
        computer=kw.pop("computer", DC),
        data=data,
        channel="Security",
        keywords=0x8010000000000000 if failure else 0x8020000000000000,
        process_id=668,
        thread_id=2120,
        **kw,
    )


def tgt(t: int, user: str, status: int, ip: str = "::ffff:127.0.0.1", port: int = 51000, **kw: Any) -> EventSpec:
    """4768 in the classic layout (Version 0); a failure has the NULL SID and no ticket (event-4768.md)."""
    ok = status == 0
    return sec(
        4768,
        t,
        [
            ("TargetUserName", user, "str"),
            ("TargetDomainName", "EXAMPLE.TEST" if ok else "EXAMPLE", "str"),
            ("TargetSid", sid(user) if ok and user in SIDS else "S-1-0-0", "sid"),
            ("ServiceName", "krbtgt" if ok else "krbtgt/EXAMPLE", "str"),
            ("ServiceSid", sid("krbtgt") if ok else "S-1-0-0", "sid"),
            ("TicketOptions", kw.pop("opts", 0x40810010), "hex32"),
            ("Status", status, "hex32"),
            ("TicketEncryptionType", kw.pop("etype", 0x12) if ok else 0xFFFFFFFF, "hex32"),
            ("PreAuthType", str(kw.pop("preauth", 2)) if ok else "-", "str"),
            ("IpAddress", ip, "str"),
            ("IpPort", str(port), "str"),
            ("CertIssuerName", "", "str"),
            ("CertSerialNumber", "", "str"),
            ("CertThumbprint", "", "str"),
        ],
        task=14339,
        failure=not ok,
        **kw,
    )


def preauth_failed(t: int, user: str, status: int, port: int) -> EventSpec:
    """4771 (event-4771.md): ServiceName krbtgt/DOMAIN, PreAuthType 2, certificate fields empty."""
    return sec(
        4771,
        t,
        [
            ("TargetUserName", user, "str"),
            ("TargetSid", sid(user), "sid"),
            ("ServiceName", "krbtgt/EXAMPLE.TEST", "str"),
            ("TicketOptions", 0x40810010, "hex32"),
            ("Status", status, "hex32"),
            ("PreAuthType", "2", "str"),
            ("IpAddress", "::ffff:127.0.0.1", "str"),
            ("IpPort", str(port), "str"),
            ("CertIssuerName", "", "str"),
            ("CertSerialNumber", "", "str"),
            ("CertThumbprint", "", "str"),
        ],
        task=14339,
        failure=True,
    )


def service_ticket(
    t: int, user: str | None, service: str | None, status: int, etype: int, port: int, **kw: Any
) -> EventSpec:
    """4769; Version 1 (the newer layout) appends the encryption-detail fields (Kerberos-Crypto's script)."""
    ok = status == 0
    data: list[tuple[str, Any, str]] = [
        ("TargetUserName", f"{user}@EXAMPLE.TEST" if user else "", "str"),
        ("TargetDomainName", "EXAMPLE.TEST" if user else "", "str"),
        ("ServiceName", service or "", "str"),
        ("ServiceSid", sid(service) if ok and service in SIDS else "S-1-0-0", "sid"),
        ("TicketOptions", kw.pop("opts", 0x40810000), "hex32"),
        ("TicketEncryptionType", etype if ok else 0xFFFFFFFF, "hex32"),
        ("IpAddress", "::ffff:127.0.0.1", "str"),
        ("IpPort", str(port), "str"),
        ("Status", status, "hex32"),
        ("LogonGuid", kw.pop("guid", "00000000-0000-0000-0000-000000000000"), "guid"),
        ("TransmittedServices", "-", "str"),
    ]
    version = kw.pop("version", 0)
    if version:
        data += [
            ("RequestTicketHash", "-", "str"),
            ("ResponseTicketHash", "-", "str"),
            ("AccountSupportedEncryptionTypes", "0x1c", "str"),
            ("AccountAvailableKeys", "AES-SHA1, RC4", "str"),
            ("ServiceSupportedEncryptionTypes", "0x1c", "str"),
            ("ServiceAvailableKeys", "AES-SHA1, RC4", "str"),
            ("DCSupportedEncryptionTypes", "0x1c", "str"),
            ("DCAvailableKeys", "AES-SHA1, RC4", "str"),
            ("ClientAdvertizedEncryptionTypes", "\n\t\tAES256-CTS-HMAC-SHA1-96\n\t\tRC4-HMAC-NT", "str"),
            ("SessionKeyEncryptionType", 0x12, "hex32"),
        ]
    return sec(4769, t, data, task=14337, failure=not ok, version=version, **kw)


def row(**kw: Any) -> dict[str, Any]:
    status = kw.pop("status", None)
    if status is not None:
        kw["error_code"] = status or None
        kw["error_name"] = NAMES.get(status) if status else None
    return kw


def security_story() -> Story:
    s = Story("Security")
    as_row = {"phase": "AS", "src_ip": "127.0.0.1", "client_realm": "EXAMPLE"}
    # 01: success, TGT then service ticket
    s.add(
        tgt(at(0), "alice", 0, port=50001),
        row(
            **as_row | {"client_realm": "EXAMPLE.TEST"},
            status=0,
            client="alice",
            service="krbtgt",
            src_port=50001,
            kdc_options=0x40810010,
            ticket_etype=0x12,
            preauth_type=2,
        ),
        "01 as_tgs_ok: TGT issued",
    )
    s.add(sec(4672, at(0, 2000000), [("SubjectUserSid", sid("alice"), "sid"), ("PrivilegeList", "-", "str")]))
    guid = "1EC715BD-2F7B-4E7E-B8A0-9D3C1A2B3C4D"
    s.add(
        service_ticket(at(1), "alice", "websvc", 0, 0x12, 50002, guid=guid),
        row(
            phase="TGS",
            status=0,
            client="alice",
            client_realm="EXAMPLE.TEST",
            service="websvc",
            src_ip="127.0.0.1",
            src_port=50002,
            kdc_options=0x40810000,
            ticket_etype=0x12,
        ),
        "01 as_tgs_ok: service ticket for HTTP/web.example.test (account websvc)",
    )
    # 02: wrong password
    s.add(
        preauth_failed(at(60), "alice", 0x18, 50010),
        row(
            **as_row | {"client_realm": None},
            status=0x18,
            client="alice",
            service="krbtgt/EXAMPLE.TEST",
            src_port=50010,
            kdc_options=0x40810010,
            preauth_type=2,
        ),
        "02 preauth_failed: wrong password",
    )
    # 03: unknown user
    s.add(
        tgt(at(120), "nosuchuser", 0x6, port=50020),
        row(
            **as_row, status=0x6, client="nosuchuser", service="krbtgt/EXAMPLE", src_port=50020, kdc_options=0x40810010
        ),
        "03 client_unknown",
    )
    # 04: unknown SPN
    s.add(
        service_ticket(at(180), "alice", "HTTP/nosuch.example.test", 0x7, 0, 50030),
        row(
            phase="TGS",
            status=0x7,
            client="alice",
            client_realm="EXAMPLE.TEST",
            service="HTTP/nosuch.example.test",
            src_ip="127.0.0.1",
            src_port=50030,
            kdc_options=0x40810000,
        ),
        "04 server_unknown: no account holds the SPN",
    )
    # 05/06: clock skew at AS and TGS (the corpus 4769 0x25 has empty names, as here)
    s.add(
        preauth_failed(at(240), "alice", 0x25, 50040),
        row(
            **as_row | {"client_realm": None},
            status=0x25,
            client="alice",
            service="krbtgt/EXAMPLE.TEST",
            src_port=50040,
            kdc_options=0x40810010,
            preauth_type=2,
        ),
        "05 clock_skew_as: client clock 10 min ahead",
    )
    s.add(
        service_ticket(at(300), None, None, 0x25, 0, 50050),
        row(phase="TGS", status=0x25, src_ip="127.0.0.1", src_port=50050, kdc_options=0x40810000),
        "06 clock_skew_tgs",
    )
    s.add(
        sec(
            4625,
            at(301),
            [
                ("SubjectUserSid", "S-1-0-0", "sid"),
                ("TargetUserSid", "S-1-0-0", "sid"),
                ("TargetUserName", "alice", "str"),
                ("TargetDomainName", "EXAMPLE", "str"),
                ("Status", 0xC0000133, "hex32"),
                ("FailureReason", "%%2304", "str"),
                ("SubStatus", 0x0, "hex32"),
                ("LogonType", "3", "str"),
                ("LogonProcessName", "Kerberos", "str"),
                ("AuthenticationPackageName", "Kerberos", "str"),
                ("IpAddress", "127.0.0.1", "str"),
                ("IpPort", "50051", "str"),
            ],
            task=12544,
            failure=True,
        ),
        row(
            phase="AP", client="alice", client_realm="EXAMPLE", src_ip="127.0.0.1", src_port=50051, nt_status=0xC0000133
        ),
        "06 clock_skew_tgs: the logon the skew broke (STATUS_TIME_DIFFERENCE_AT_DC)",
    )
    # 09: lockout: three wrong passwords, then the account is revoked
    for i in range(3):
        s.add(
            preauth_failed(at(400 + i), "locked", 0x18, 50060 + i),
            row(
                **as_row | {"client_realm": None},
                status=0x18,
                client="locked",
                service="krbtgt/EXAMPLE.TEST",
                src_port=50060 + i,
                kdc_options=0x40810010,
                preauth_type=2,
            ),
            f"09 client_revoked_lockout: wrong password {i + 1} of 3",
        )
    s.add(sec(4740, at(402, 5000000), [("TargetUserName", "locked", "str"), ("TargetSid", sid("locked"), "sid")]))
    s.add(
        tgt(at(403), "locked", 0x12, port=50063),
        row(**as_row, status=0x12, client="locked", service="krbtgt/EXAMPLE", src_port=50063, kdc_options=0x40810010),
        "09 client_revoked_lockout: locked out",
    )
    # 08: disabled account
    s.add(
        tgt(at(460), "disabled", 0x12, port=50070),
        row(**as_row, status=0x12, client="disabled", service="krbtgt/EXAMPLE", src_port=50070, kdc_options=0x40810010),
        "08 client_revoked_disabled",
    )
    # 12: AS-REP roasting: pre-auth switched off, then a TGT without pre-authentication, RC4
    s.add(
        sec(
            4738,
            at(500),
            [
                ("Dummy", "-", "str"),
                ("TargetUserName", "roast", "str"),
                ("TargetDomainName", "EXAMPLE", "str"),
                ("TargetSid", sid("roast"), "sid"),
                ("SubjectUserSid", sid("admin"), "sid"),
                ("SubjectUserName", "Administrator", "str"),
                ("OldUacValue", 0x210, "hex32"),
                ("NewUacValue", 0x10210, "hex32"),
                ("UserAccountControl", "\n\t\t%%2096", "str"),
            ],
            task=13824,
        ),
        row(client="roast", client_realm="EXAMPLE"),
        "12 asrep_roast: 'Do not require Kerberos preauthentication' set",
    )
    s.add(
        tgt(at(540), "roast", 0, port=50080, opts=0x40800010, etype=0x17, preauth=0),
        row(
            **as_row | {"client_realm": "EXAMPLE.TEST"},
            status=0,
            client="roast",
            service="krbtgt",
            src_port=50080,
            kdc_options=0x40800010,
            ticket_etype=0x17,
            preauth_type=0,
        ),
        "12 asrep_roast_no_preauth: TGT without pre-authentication (AS-REP roastable)",
    )
    # 20: RC4 service ticket (Kerberoast-style)
    s.add(
        service_ticket(at(600), "alice", "websvc", 0, 0x17, 50090),
        row(
            phase="TGS",
            status=0,
            client="alice",
            client_realm="EXAMPLE.TEST",
            service="websvc",
            src_ip="127.0.0.1",
            src_port=50090,
            kdc_options=0x40810000,
            ticket_etype=0x17,
        ),
        "20 rc4_only_legacy: RC4 service ticket",
    )
    # 19: renewal
    s.add(
        sec(
            4770,
            at(660),
            [
                ("TargetUserName", "alice@EXAMPLE.TEST", "str"),
                ("TargetDomainName", "EXAMPLE.TEST", "str"),
                ("ServiceName", "krbtgt", "str"),
                ("ServiceSid", sid("krbtgt"), "sid"),
                ("TicketOptions", 0x2, "hex32"),
                ("TicketEncryptionType", 0x12, "hex32"),
                ("IpAddress", "::ffff:127.0.0.1", "str"),
                ("IpPort", "50100", "str"),
            ],
            task=14337,
        ),
        row(
            phase="TGS",
            client="alice",
            client_realm="EXAMPLE.TEST",
            service="krbtgt",
            src_ip="127.0.0.1",
            src_port=50100,
            kdc_options=0x2,
            ticket_etype=0x12,
        ),
        "19 renew",
    )
    # 15: the service host's view of an AP exchange, and an NTLM logon that must be ignored
    logon = [
        ("SubjectUserSid", "S-1-0-0", "sid"),
        ("TargetUserSid", sid("alice"), "sid"),
        ("TargetUserName", "alice", "str"),
        ("TargetDomainName", "EXAMPLE.TEST", "str"),
        ("TargetLogonId", 0x3E7A21, "hex64"),
        ("LogonType", "3", "str"),
        ("LogonProcessName", "Kerberos", "str"),
        ("AuthenticationPackageName", "Kerberos", "str"),
        ("LogonGuid", guid, "guid"),
        ("IpAddress", "127.0.0.1", "str"),
        ("IpPort", "50110", "str"),
    ]
    s.add(
        sec(4624, at(700), logon, task=12544, version=2),
        row(phase="AP", client="alice", client_realm="EXAMPLE.TEST", src_ip="127.0.0.1", src_port=50110),
        "15 http_spnego_ok: Kerberos network logon (LogonGuid matches the 4769)",
    )
    ntlm = [
        (k, {"LogonProcessName": "NtLmSsp ", "AuthenticationPackageName": "NTLM"}.get(k, v), t) for k, v, t in logon
    ]
    s.add(sec(4624, at(701), ntlm, task=12544, version=2))
    s.add(sec(4634, at(760), [("TargetUserName", "alice", "str"), ("LogonType", "3", "str")], task=12545))
    # SPN added to websvc (Kerberoasting preparation / SPN hygiene context)
    s.add(
        sec(
            5136,
            at(800),
            [
                ("OpCorrelationID", "C41EADE4-162A-4D70-8488-F92F6AF8FF49", "guid"),
                ("SubjectUserName", "Administrator", "str"),
                ("DSName", "example.test", "str"),
                ("ObjectDN", "CN=websvc,CN=Users,DC=example,DC=test", "str"),
                ("ObjectClass", "user", "str"),
                ("AttributeLDAPDisplayName", "servicePrincipalName", "str"),
                ("AttributeValue", "HTTP/web.example.test", "str"),
                ("OperationType", "%%14674", "str"),
            ],
            task=14081,
        ),
        row(client="CN=websvc,CN=Users,DC=example,DC=test"),
        "SPN HTTP/web.example.test added to websvc",
    )
    # newer 4769 layout (Windows Server 2025 / January 2025 update): extra fields go to event_data
    s.add(
        service_ticket(at(900), "alice", "websvc", 0, 0x12, 50120, version=1),
        row(
            phase="TGS",
            status=0,
            client="alice",
            client_realm="EXAMPLE.TEST",
            service="websvc",
            src_ip="127.0.0.1",
            src_port=50120,
            kdc_options=0x40810000,
            ticket_etype=0x12,
        ),
        "01 as_tgs_ok on an updated DC: Version 1 layout",
    )
    return s


def system_story() -> Story:
    s = Story("System")
    kerb = {
        "provider": "Microsoft-Windows-Security-Kerberos",
        "provider_guid": "98E6CFCB-EE0A-41E0-A57B-622D4E1B30B1",
        "source_name": "Kerberos",
        "channel": "System",
        "keywords": 0x80000000000000,
        "process_id": 668,
    }
    s.add(
        EventSpec(
            provider="Service Control Manager",
            provider_guid="555908D1-A6D7-4695-8E1E-26931D2012F4",
            source_name="Service Control Manager",
            qualifiers=16384,
            event_id=7036,
            time=at(5),
            computer=DC,
            channel="System",
            data=[("param1", "Windows Time", "str"), ("param2", "running", "str")],
        )
    )
    s.add(
        EventSpec(
            event_id=3,
            qualifiers=16384,
            time=at(300, 5000000),
            computer="client.example.test",
            level=2,
            data=[
                ("LogonSession", "EXAMPLE\\alice", "str"),
                ("ClientTime", "9:15:00.1234 1/15/2026 Z", "str"),
                ("ServerTime", "9:05:00.0000 1/15/2026 Z", "str"),
                ("ErrorCode", 0x25, "hex32"),
                ("ErrorMessage", "KRB_AP_ERR_SKEW", "str"),
                ("ExtendedError", "", "str"),
                ("ClientRealm", "", "str"),
                ("ClientName", "", "str"),
                ("ServerRealm", "EXAMPLE.TEST", "str"),
                ("ServerName", "krbtgt/EXAMPLE.TEST", "str"),
                ("TargetName", "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST", "str"),
                ("ErrorText", "", "str"),
                ("File", "9", "str"),
                ("Line", "f09", "str"),
            ],
            **kerb,
        ),
        row(phase="AP", status=0x25, service="krbtgt/EXAMPLE.TEST"),
        "06 clock_skew: client receives KRB_AP_ERR_SKEW (client 10 min ahead of the KDC)",
    )
    s.add(
        EventSpec(
            event_id=4,
            qualifiers=49152,
            time=at(1000),
            computer="client.example.test",
            level=2,
            # the event's fields as Windows names them (Targetname with a lower-case n): the server's account,
            # the target realm, the SPN the client asked for, the client realm
            data=[
                ("Server", "web$", "str"),
                ("TargetRealm", "EXAMPLE.TEST", "str"),
                ("Targetname", "HTTP/web.example.test", "str"),
                ("ClientRealm", "EXAMPLE.TEST", "str"),
            ],
            **kerb,
        ),
        row(phase="AP", status=0x29, service="HTTP/web.example.test", client_realm="EXAMPLE.TEST"),
        "18 ap_wrong_service_key: KRB_AP_ERR_MODIFIED from HTTP/web.example.test",
    )
    s.add(
        EventSpec(
            provider="Microsoft-Windows-Kerberos-Key-Distribution-Center",
            provider_guid="3FD9DA1A-5A54-46C5-9A26-9BD7C0685056",
            source_name="KDC",
            qualifiers=49152,
            event_id=11,
            time=at(1001),
            computer=DC,
            channel="System",
            level=2,
            keywords=0x80000000000000,
            process_id=668,
            data=[(None, "HTTP/web.example.test", "str"), (None, "2", "str")],
        ),
        row(status=0x8, service="HTTP/web.example.test"),
        "duplicate SPN HTTP/web.example.test (websvc and web$)",
    )
    tsvc = {
        "provider": "Microsoft-Windows-Time-Service",
        "provider_guid": "06EDCFEB-0FD0-4E53-ACCA-A6F8BBF81BCB",
        "channel": "System",
        "keywords": 0x8000000000000000,
        "computer": DC,
        "process_id": 1012,
    }
    s.add(
        EventSpec(event_id=36, time=at(1100), level=3, data=[("UnsynchronizedTimeSeconds", "86400", "str")], **tsvc),
        row(),
        "clock: not synchronised for a day",
    )
    s.add(
        EventSpec(event_id=52, time=at(1200), level=3, data=[("TimeOffsetSeconds", "600", "str")], **tsvc),
        row(),
        "clock: set back by 600 s",
    )
    return s


def _manifest_lines(sample: str, story: Story) -> Iterator[str]:
    for exp in story.expect:
        cells = []
        for col in MANIFEST_COLUMNS:
            v = sample if col == "sample" else exp.get(col)
            cells.append("" if v is None else hex(v) if col in ("kdc_options", "nt_status") else str(v))
        yield "\t".join(cells)


def write_all(out: Path = HERE) -> None:
    """Write every sample and the MANIFEST into ``out``."""
    security, system = security_story(), system_story()
    for name, story in (("dc01-security.evtx", security), ("dc01-system.evtx", system)):
        with EvtxWriter(str(out / name)) as w:
            for ev in story.events:
                w.add(ev)
    xml = "".join(to_xml(ev) + "\n" for ev in security.events)
    (out / "dc01-security.xml").write_text(f"<?xml version='1.0' encoding='utf-8'?>\n<Events>\n{xml}</Events>\n")
    (out / "dc01-security.jsonl").write_text("".join(json.dumps(to_json(ev)) + "\n" for ev in security.events))
    lines = ["# regenerate: python3 samples/evtx/make_samples.py (rows each sample must decode to; empty = null)"]
    lines.append("\t".join(MANIFEST_COLUMNS))
    for sample, story in (
        ("dc01-security.evtx", security),
        ("dc01-security.xml", security),
        ("dc01-security.jsonl", security),
        ("dc01-system.evtx", system),
    ):
        lines += _manifest_lines(sample, story)
    (out / "MANIFEST").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write_all()
