"""System-log Kerberos events with the field names Windows writes.

The truth here is published, not ours: the EventData of Security-Kerberos event 3 as Microsoft's troubleshooting
article prints it (``client2016rs1.contoso.com``, a KRB_AP_ERR_MUST_USE_USER2USER) and as a lab domain controller
logged it (the detection-wiki page of the provider's manifest: ``ServerTime`` "23:4:2.0000 3/13/2026 Z", single-digit
minute and second); the field names of Security-Kerberos 4 (``Server``, ``TargetRealm``, ``Targetname`` with a
lower-case n, ``ClientRealm``: NXLog's and Chronicle's field mapping) and of the KDC provider's events 11 (``Name``,
``Type``) and 14 (``Target``, ``Account``, ``ID``, ``RequestedEtypes``, ``AvailableEtypes``, ``AccountToReset``)
from the provider manifests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parsers.events import read_events
from parsers.record import KrbRecord, ParseReport, from_datetime

NS = "http://schemas.microsoft.com/win/2004/08/events/event"
KERBEROS = '<Provider Name="Microsoft-Windows-Security-Kerberos" Guid="{98E6CFCB-EE0A-41E0-A57B-622D4E1B30B1}" '
KERBEROS += 'EventSourceName="Kerberos"/>'
KDC = '<Provider Name="Microsoft-Windows-Kerberos-Key-Distribution-Center" '
KDC += 'Guid="{3FD9DA1A-5A54-46C5-9A26-9BD7C0685056}" EventSourceName="KDC"/>'


def _event(provider: str, event_id: int, computer: str, data: list[tuple[str | None, str | None]]) -> str:
    items = []
    for name, value in data:
        attr = f' Name="{name}"' if name is not None else ""
        items.append(f"<Data{attr}/>" if value is None else f"<Data{attr}>{value}</Data>")
    return (
        f'<Event xmlns="{NS}"><System>{provider}<EventID Qualifiers="32768">{event_id}</EventID><Version>0</Version>'
        "<Level>2</Level><Task>0</Task><Opcode>0</Opcode><Keywords>0x80000000000000</Keywords>"
        '<TimeCreated SystemTime="2026-03-13T23:04:02.6206760Z"/><EventRecordID>12251</EventRecordID><Correlation/>'
        f'<Execution ProcessID="0" ThreadID="0"/><Channel>System</Channel><Computer>{computer}</Computer>'
        f"<Security/></System><EventData>{''.join(items)}</EventData></Event>"
    )


def _row(tmp_path: Path, xml: str) -> KrbRecord:
    path = tmp_path / "system.xml"
    path.write_text(f"<Events>{xml}</Events>", encoding="utf-8")
    report = ParseReport(source=str(path))
    rows = list(read_events(str(path), report, "xml"))
    assert not report.issues and len(rows) == 1
    return rows[0]


def _at(*args: int) -> int:
    return from_datetime(datetime(*args, tzinfo=UTC))


def test_kerberos_3_as_microsoft_prints_it(tmp_path: Path) -> None:
    row = _row(
        tmp_path,
        _event(
            KERBEROS,
            3,
            "client2016rs1.contoso.com",
            [
                ("LogonSession", None),
                ("ClientTime", None),
                ("ServerTime", "6:6:33.0000 4/8/2017 Z"),
                ("ErrorCode", "0x1b"),
                ("ErrorMessage", "Unknown Error"),
                ("ExtendedError", None),
                ("ClientRealm", None),
                ("ClientName", None),
                ("ServerRealm", "CONTOSO.COM"),
                ("ServerName", "Administrator"),
                ("TargetName", "Administrator@CONTOSO.COM"),
                ("ErrorText", None),
                ("File", "9"),
                ("Line", "11b8"),
            ],
        ),
    )
    assert (row.phase, row.error_code, row.error_name) == ("AP", 0x1B, "KDC_ERR_MUST_USE_USER2USER")
    assert (row.service, row.service_realm, row.client, row.client_realm) == (
        "Administrator",
        "CONTOSO.COM",
        None,
        None,
    )
    assert row.stime == _at(2017, 4, 8, 6, 6, 33) and row.ctime is None and not row.partial
    assert json.loads(row.event_data)["TargetName"] == "Administrator@CONTOSO.COM"


def test_kerberos_3_single_digit_minute_and_second(tmp_path: Path) -> None:
    row = _row(
        tmp_path,
        _event(
            KERBEROS,
            3,
            "LAB-DC01.ludus.domain",
            [
                ("LogonSession", "LUDUS.DOMAIN\\domainadmin"),
                ("ClientTime", ""),
                ("ServerTime", "23:4:2.0000 3/13/2026 Z"),
                ("ErrorCode", "0x19"),
                ("ErrorMessage", "KDC_ERR_PREAUTH_REQUIRED"),
                ("ServerRealm", "ludus"),
                ("ServerName", "krbtgt/ludus"),
                ("TargetName", "krbtgt/ludus@ludus"),
            ],
        ),
    )
    assert row.stime == _at(2026, 3, 13, 23, 4, 2) and not row.partial
    assert (row.error_code, row.service, row.service_realm) == (0x19, "krbtgt/ludus", "ludus")


def test_kerberos_4_names_the_spn_not_the_server_account(tmp_path: Path) -> None:
    row = _row(
        tmp_path,
        _event(
            KERBEROS,
            4,
            "client.example.test",
            [
                ("Server", "web$"),
                ("TargetRealm", "EXAMPLE.TEST"),
                ("Targetname", "HTTP/web.example.test"),
                ("ClientRealm", "EXAMPLE.TEST"),
            ],
        ),
    )
    assert (row.error_code, row.error_name) == (0x29, "KRB_AP_ERR_MODIFIED")
    assert row.service == "HTTP/web.example.test"
    assert (row.service_realm, row.client_realm) == ("EXAMPLE.TEST", "EXAMPLE.TEST")
    assert json.loads(row.event_data) == {"Server": "web$"}


@pytest.mark.parametrize(
    "data",
    [[("Name", "HTTP/web.example.test"), ("Type", "2")], [(None, "HTTP/web.example.test"), (None, "2")]],
    ids=["manifest", "classic"],
)
def test_kdc_11_duplicate_name_in_either_form(tmp_path: Path, data: list[tuple[str | None, str | None]]) -> None:
    row = _row(tmp_path, _event(KDC, 11, "dc01.example.test", data))
    assert (row.phase, row.error_code, row.service) == (None, 0x8, "HTTP/web.example.test")


def test_kdc_14_names_the_target(tmp_path: Path) -> None:
    row = _row(
        tmp_path,
        _event(
            KDC,
            14,
            "dc01.example.test",
            [
                ("Target", "krbtgt/EXAMPLE.TEST"),
                ("Account", "legacy"),
                ("ID", "0x17"),
                ("RequestedEtypes", "23"),
                ("AvailableEtypes", "18 17"),
                ("AccountToReset", "legacy"),
            ],
        ),
    )
    assert (row.error_code, row.error_name, row.service) == (0xE, "KDC_ERR_ETYPE_NOSUPP", "krbtgt/EXAMPLE.TEST")
    extra = json.loads(row.event_data)
    assert (extra["Account"], extra["RequestedEtypes"], extra["AvailableEtypes"]) == ("legacy", "23", "18 17")
