"""The generated samples (samples/evtx) through both EVTX backends, against the generator's MANIFEST."""

from __future__ import annotations

import filecmp
import json
import struct
import zlib
from pathlib import Path

import pytest

from parsers import detect, iter_records
from parsers.evtx import read_evtx
from parsers.record import ParseReport
from tests.test_evtx_helpers import EVTX_SAMPLES, as_manifest, make_samples, manifest

EVTX_FILES = ("dc01-security.evtx", "dc01-system.evtx")


def _read(name: str, backend: str) -> tuple[list, ParseReport]:
    path = str(EVTX_SAMPLES / name)
    report = ParseReport(source=path)
    return list(read_evtx(path, report, backend=backend)), report


@pytest.mark.parametrize("backend", ["evtx", "python-evtx"])
@pytest.mark.parametrize("name", EVTX_FILES)
def test_sample_decodes_to_manifest(name: str, backend: str) -> None:
    rows, report = _read(name, backend)
    expected = manifest(name)
    assert expected, "MANIFEST has rows for every sample"
    assert [as_manifest(r) for r in rows] == expected
    assert not report.issues
    assert report.messages == len(expected)
    assert {r.source_kind for r in rows} == {"evtx"}


def test_security_sample_units_and_noise() -> None:
    """24 records written, 20 Kerberos rows: 4672, 4740, the NTLM 4624 and 4634 are left out."""
    rows, report = _read("dc01-security.evtx", "evtx")
    assert report.units == len(make_samples.security_story().events) == 24
    assert 1001 not in {r.record_no for r in rows}  # 4672
    assert [r.event_id for r in rows if r.event_id == 4624] == [4624]


def _normalise_python_evtx(row: object) -> object:
    """python-evtx's one known difference left after the shared mapping: TimeCreated from a float, ±2 µs."""
    return row._replace(ts=0)


@pytest.mark.parametrize("name", EVTX_FILES)
def test_backends_agree_row_for_row(name: str) -> None:
    rust, _ = _read(name, "evtx")
    python, _ = _read(name, "python-evtx")
    assert len(rust) == len(python)
    for a, b in zip(rust, python, strict=True):
        assert abs(a.ts - b.ts) <= 2
        assert _normalise_python_evtx(a) == _normalise_python_evtx(b)


def test_times_keep_microseconds_in_utc() -> None:
    rows, _ = _read("dc01-security.evtx", "evtx")
    # 2026-01-15T09:00:00.1234567Z written; the timeline keeps µs, truncated
    assert rows[0].ts == 1768467600_123456


def test_event_data_keeps_unmapped_fields() -> None:
    rows, _ = _read("dc01-security.evtx", "evtx")
    new_layout = json.loads(rows[-1].event_data)
    assert new_layout["SessionKeyEncryptionType"] == "0x12"
    assert new_layout["AccountSupportedEncryptionTypes"] == "0x1c"
    assert new_layout["ClientAdvertizedEncryptionTypes"] == "AES256-CTS-HMAC-SHA1-96\n\t\tRC4-HMAC-NT"
    uac = json.loads(next(r for r in rows if r.event_id == 4738).event_data)
    assert uac["UserAccountControl"] == ["%%2096"]
    tgs = json.loads(rows[1].event_data)
    assert tgs == {
        "LogonGuid": "{1EC715BD-2F7B-4E7E-B8A0-9D3C1A2B3C4D}",
        "TargetUserName": "alice@EXAMPLE.TEST",
        "TransmittedServices": None,
    }


def test_system_sample_clock_evidence() -> None:
    rows, _ = _read("dc01-system.evtx", "evtx")
    skew = rows[0]
    assert (skew.event_id, skew.error_code) == (3, 0x25)
    # ClientTime 9:15:00.1234, ServerTime 9:05:00 on 2026-01-15: the client is 600.1234 s ahead
    assert skew.ctime - skew.stime == 600_123_400
    assert json.loads(rows[-1].event_data) == {"TimeOffsetSeconds": "600"}
    dup = rows[2]  # KDC 11: the duplicate name is the first insertion string
    assert (dup.event_id, dup.service, json.loads(dup.event_data)) == (11, "HTTP/web.example.test", {"Data[1]": "2"})


def test_detect_and_iter_records_dispatch() -> None:
    path = EVTX_SAMPLES / "dc01-system.evtx"
    assert detect(path) == "evtx"
    report = ParseReport(source=str(path))
    assert len(list(iter_records(path, report, evtx_backend="python-evtx"))) == 5
    assert report.source_kind == "evtx"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown EVTX backend"):
        list(read_evtx(str(EVTX_SAMPLES / "dc01-system.evtx"), ParseReport(source="x"), backend="libevtx"))


def test_samples_are_reproducible(tmp_path: Path) -> None:
    make_samples.write_all(tmp_path)
    for name in (*EVTX_FILES, "dc01-security.xml", "dc01-security.jsonl", "MANIFEST"):
        assert filecmp.cmp(tmp_path / name, EVTX_SAMPLES / name, shallow=False), name


@pytest.mark.parametrize("name", EVTX_FILES)
def test_writer_checksums_are_valid(name: str) -> None:
    """File header CRC32 over bytes 0-120; chunk header CRC32 over 0-120 + 128-512; records CRC32 (MS-EVEN6)."""
    data = (EVTX_SAMPLES / name).read_bytes()
    assert data[:8] == b"ElfFile\x00" and len(data) == 4096 + 65536
    assert struct.unpack_from("<I", data, 124)[0] == zlib.crc32(data[:120])
    chunk = data[4096:]
    assert chunk[:8] == b"ElfChnk\x00"
    assert struct.unpack_from("<I", chunk, 124)[0] == zlib.crc32(chunk[:120] + chunk[128:512])
    free = struct.unpack_from("<I", chunk, 48)[0]
    assert struct.unpack_from("<I", chunk, 52)[0] == zlib.crc32(chunk[512:free])


def _json(provider: str, eid: str, guid: str = '"Guid":"54849625-5478-4994-A5BA-3E3B0328C30D"', body: str = "") -> str:
    return (
        '{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},'
        f'"System":{{"Provider":{{"#attributes":{{"Name":"{provider}",{guid}}}}},"EventID":{eid},"Version":0}}'
        f"{body}}}}}"
    )


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        (_json("Microsoft-Windows-Security-Auditing", "4769"), True),
        (_json("Microsoft-Windows-Security-Auditing", '"4771"'), True),  # EventID as text (corpus SharpHound log)
        (_json("Microsoft-Windows-Security-Auditing", "4768", '"Guid":"{54849625-5478-4994-A5BA-3E3B0328C30D}"'), True),
        (_json("Microsoft-Windows-Security-Auditing", "47681"), False),
        (_json("Microsoft-Windows-Security-Auditing", "4672"), False),
        (_json("Microsoft-Windows-Security-Auditing", "4624", body=',"AuthenticationPackageName":"NTLM"'), False),
        (_json("Microsoft-Windows-Security-Auditing", "4624", body=',"LogonProcessName":"Kerberos"'), True),
        (_json("Microsoft-Windows-Kerberos-Key-Distribution-Center", '{"#attributes":{"Q":1},"#text":11}'), True),
        (_json("KDC", "11"), True),  # classic source name
        (_json("Microsoft-Windows-Time-Service", "37"), True),
        (_json("Service Control Manager", "7036"), False),
        ('{"Event":{"System":{"Provider":{"#attributes":{"EventSourceName":"Kerberos"}},"EventID":4}}}', True),
        ('{"Event":{"System":{"EventID":4769,"Provider":{"#attributes":{"Name":"x"}}}}}', True),  # superset: kept
    ],
)
def test_prefilter(data: str, kept: bool) -> None:
    """The pre-filter never drops an event the mapping keeps (whatever the JSON layout) and skips plain noise."""
    from parsers.evtxfilter import wanted

    assert wanted(data) is kept


def test_cli_mixed_inputs_with_an_unusable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unusable log costs one line and exit code 2; the other inputs (EVTX and JSON lines) are still read."""
    from krbtrace.cli import main

    bad = tmp_path / "cut.evtx"
    bad.write_bytes((EVTX_SAMPLES / "dc01-system.evtx").read_bytes()[:1000])  # cut inside the file header
    out = tmp_path / "t.jsonl"
    code = main(
        [
            "timeline",
            str(bad),
            str(EVTX_SAMPLES / "dc01-system.evtx"),
            str(EVTX_SAMPLES / "dc01-security.jsonl"),
            "-o",
            str(out),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("cut.evtx") == 1 and "header" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 25
    assert {r["source_kind"] for r in rows} == {"evtx", "jsonl"}
