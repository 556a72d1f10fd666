"""The fast reader (decode_message) against the pyasn1 RFC 4120 module (full_decode), field by field.

Every Kerberos message of the corpus captures and of the MIT fixtures (kpasswd ones split into their inner
AP-REQ/AP-REP/KRB-PRIV/KRB-ERROR) is decoded by both. :func:`oracle_fields` derives the timeline fields from the
complete nested decode with its own reading of the README column table, so the two share no decoding code.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus_path
from krb5_samples import CORPUS_PCAPS, HANDMADE, corpus_messages, mit_fixtures

from parsers.errors import KrbDecodeError
from parsers.krb5 import constants as c
from parsers.krb5 import decode_kpasswd, decode_message, full_decode
from parsers.krb5.messages import KEYS


def _name(p: dict[str, Any] | None) -> str | None:
    return None if p is None else "/".join(p["name-string"])


def _salt(entry: dict[str, Any]) -> str | None:
    salt = entry.get("salt")
    if isinstance(salt, bytes):
        try:
            return salt.decode("utf-8")
        except UnicodeDecodeError:
            return salt.decode("latin-1")
    return salt


def _ticket(r: dict[str, Any], t: dict[str, Any], service_too: bool) -> None:
    r["ticket_realm"], r["ticket_service"] = t["realm"], _name(t["sname"])
    r["ticket_etype"], r["ticket_kvno"] = t["enc-part"]["etype"], t["enc-part"].get("kvno")
    if service_too:
        r["service"], r["service_realm"] = r["ticket_service"], r["ticket_realm"]


def _padata(r: dict[str, Any], pas: list[dict[str, Any]], msg: str) -> None:
    types = [pa["padata-type"] for pa in pas]
    r["pa_types"] = tuple(types)
    r["fast"] = any(pa["padata-type"] == 136 and pa["padata-value"] for pa in pas)
    if msg == "AS-REQ":
        r["preauth_type"] = next((t for t in c.PREAUTH_TYPES if t in types), None)
    info2 = info = pw = None
    for pa in pas:
        t, v = pa["padata-type"], pa.get("value")
        if v is None:
            continue
        if t == 1 and msg == "TGS-REQ":
            _ticket(r, v["ticket"], service_too=False)
            r["etype"] = v["authenticator"]["etype"]
        elif t == 2 and msg == "AS-REQ":
            r["etype"] = v["etype"]
        elif t == 128:
            r["pac_request"] = v["include-pac"]
        elif t == 129:
            r["s4u_user"] = f"{_name(v['userName'])}@{v['userRealm']}"
        elif t == 130 and r["s4u_user"] is None:
            uid = v["user-id"]
            r["s4u_user"] = f"{_name(uid.get('cname')) or ''}@{uid['crealm']}"
        elif t == 136 and msg in ("AS-REQ", "TGS-REQ") and r["ticket_realm"] is None:
            armor = v["armored-data"].get("armor", {}).get("armor-value-decoded")
            if armor:
                _ticket(r, armor["ticket"], service_too=False)
        elif t == 19 and info2 is None:
            info2 = v
        elif t == 11 and info is None:
            info = v
        elif t == 3:
            if msg == "KRB-ERROR" and len(v) == 12 and struct.unpack("<III", v)[1:] in ((0, 0), (0, 1)):
                r["nt_status"] = struct.unpack("<I", v[:4])[0]
            elif pw is None:
                pw = v
    if info2 is not None or info is not None:
        entries = info2 if info2 is not None else info
        r["salts"] = tuple(_salt(e) for e in entries)
        r["salt_etypes"] = tuple(e["etype"] for e in entries)
    elif pw is not None:
        r["salts"] = (_salt({"salt": pw}),)


def oracle_fields(d: dict[str, Any]) -> dict[str, Any]:
    """The timeline fields of a message, read from full_decode's nested values."""
    r: dict[str, Any] = dict.fromkeys(KEYS)
    msg = d["message"]
    r["msg_type"], r["phase"], r["partial"] = msg, c.MSG_PHASE.get(msg), False
    if msg in ("AS-REQ", "TGS-REQ"):
        body = d["req-body"]
        r["fast"] = False
        r["kdc_options"], r["nonce"] = body["kdc-options"], body["nonce"]
        r["service"], r["service_realm"] = _name(body.get("sname")), body["realm"]
        r["req_etypes"] = tuple(body["etype"])
        r["till"], r["rtime"] = body["till"], body.get("rtime")
        r["additional_tickets"] = len(body.get("additional-tickets", ())) or None
        if msg == "AS-REQ":
            r["client"], r["client_realm"] = _name(body.get("cname")), body["realm"]
        if "padata" in d:
            _padata(r, d["padata"], msg)
    elif msg in ("AS-REP", "TGS-REP"):
        r["fast"] = False
        r["client"], r["client_realm"] = _name(d["cname"]), d["crealm"]
        _ticket(r, d["ticket"], service_too=True)
        r["etype"] = d["enc-part"]["etype"]
        if "padata" in d:
            _padata(r, d["padata"], msg)
    elif msg == "AP-REQ":
        r["ap_options"] = d["ap-options"]
        _ticket(r, d["ticket"], service_too=True)
        r["etype"] = d["authenticator"]["etype"]
    elif msg in ("AP-REP", "KRB-PRIV", "KRB-CRED"):
        r["etype"] = d["enc-part"]["etype"]
        if msg == "KRB-CRED" and d["tickets"]:
            _ticket(r, d["tickets"][0], service_too=False)
    elif msg == "KRB-ERROR":
        r["fast"] = False
        r["error_code"] = d["error-code"]
        r["error_name"] = c.error_name(d["error-code"])
        r["e_text"] = d.get("e-text")
        r["client"], r["client_realm"] = _name(d.get("cname")), d.get("crealm")
        r["service"], r["service_realm"] = _name(d["sname"]), d["realm"]
        r["stime"] = d["stime"] + d["susec"]
        if "ctime" in d:
            r["ctime"] = d["ctime"] + d.get("cusec", 0)
        e = d.get("e-data-value")
        if e is not None and e["kind"] == "METHOD-DATA":
            _padata(r, e["value"], msg)
        elif e is not None and e["kind"] == "KERB-ERROR-DATA" and e["value"]["data-type"] == 3:
            r["nt_status"] = struct.unpack("<I", e["value"]["data-value"][:4])[0]
    return r


def _inner_kpasswd(raw: bytes) -> list[bytes]:
    """The messages inside a kpasswd request or reply (RFC 3244 framing), independent of decode_kpasswd."""
    if raw[:1] == b"\x7e":
        return [raw]
    if len(raw) < 6:
        return []
    length, _version, ap_len = struct.unpack(">HHH", raw[:6])
    out = [raw[6 : 6 + ap_len]] if ap_len else []
    return [*out, raw[6 + ap_len : length]]


def _all_messages() -> list[tuple[str, bytes]]:
    out = []
    for label, raw, row in mit_fixtures():
        parts = _inner_kpasswd(raw) if row["kpasswd"] == "1" else [raw]
        out += [(f"{label}.{i}", p) for i, p in enumerate(parts) if p]
    return out + [(name, raw) for name, (raw, _want) in HANDMADE.items()]


def _corpus_messages(rel: str) -> list[tuple[str, bytes]]:
    out = []
    for m in corpus_messages(corpus_path("pcap", rel)):
        parts = _inner_kpasswd(m.raw) if m.kpasswd else [m.raw]
        out += [(f"{rel}#{m.frame}.{i}", p) for i, p in enumerate(parts) if p]
    return out


def _agree(label: str, raw: bytes) -> list[str]:
    try:
        full = full_decode(raw)
    except KrbDecodeError:
        # The complete decoder refuses it: the fast one must refuse it too, or flag what it kept as partial.
        try:
            fast = decode_message(raw)
        except KrbDecodeError:
            return []
        return [] if fast["partial"] else [f"{label}: full_decode fails, decode_message complete"]
    want = oracle_fields(full)
    got = decode_message(raw)
    return [f"{label} {k}: fast {got[k]!r} oracle {want[k]!r}" for k in KEYS if got[k] != want[k]]


def test_oracle_mit() -> None:
    msgs = _all_messages()
    assert len(msgs) > 100
    problems = [p for label, raw in msgs for p in _agree(label, raw)]
    assert problems == []


@pytest.mark.parametrize("rel", CORPUS_PCAPS)
def test_oracle_corpus(rel: str) -> None:
    msgs = _corpus_messages(rel)
    assert msgs
    problems = [p for label, raw in msgs for p in _agree(label, raw)]
    assert problems == []


SAMPLES = sorted((Path(__file__).resolve().parent.parent / "samples" / "kdc").glob("*.pcap"))


@pytest.mark.parametrize("pcap", SAMPLES or [None], ids=[p.stem for p in SAMPLES] or ["none"])
def test_oracle_samples(pcap: Path | None) -> None:
    """The real-KDC samples of samples/kdc (made by the samples generator), when they are in the checkout."""
    if pcap is None:
        pytest.skip("no samples/kdc/*.pcap in this checkout")
    msgs = []
    for m in corpus_messages(pcap):
        parts = _inner_kpasswd(m.raw) if m.kpasswd else [m.raw]
        msgs += [(f"{pcap.stem}#{m.frame}.{i}", p) for i, p in enumerate(parts) if p]
    assert msgs
    problems = [p for label, raw in msgs for p in _agree(label, raw)]
    assert problems == []
    assert all(not decode_message(raw)["partial"] for _label, raw in msgs)


def test_oracle_kpasswd() -> None:
    """decode_kpasswd's fields are those of the AP-REQ / AP-REP / KRB-ERROR it carries, plus the kpasswd framing's
    msg_type, phase and (in an error's e-data, first two octets) result code."""
    checked = 0
    for label, raw, row in mit_fixtures():
        if row["kpasswd"] != "1" or not row["kerberos.msg_type"]:
            continue
        inner = _inner_kpasswd(raw)
        want = oracle_fields(full_decode(inner[0]))
        full = full_decode(inner[-1])
        if full["message"] == "KRB-ERROR":
            want["kpasswd_result"] = int.from_bytes(full["e-data"][:2], "big")
        else:
            assert full["message"] == "KRB-PRIV"
        want["msg_type"] = "KPASSWD-REQ" if want["msg_type"] == "AP-REQ" else "KPASSWD-REP"
        want["phase"] = "KPASSWD"
        got = decode_kpasswd(raw)
        assert {k: got[k] for k in KEYS} == want, label
        checked += 1
    assert checked >= 5


def test_full_decode_shape() -> None:
    """A few values of the nested decode itself, against TShark's reading in the MIT fixture."""
    _label, raw, row = next(m for m in mit_fixtures() if m[2]["kerberos.msg_type"] == "30")
    d = full_decode(raw)
    assert d["message"] == "KRB-ERROR" and d["trailing"] == 0 and d["pvno"] == 5
    assert str(d["error-code"]) == row["kerberos.error_code"]
    assert str(d["susec"]) == row["kerberos.susec"]
    assert d["e-data-value"]["kind"] == "METHOD-DATA"
    assert "|".join(str(pa["padata-type"]) for pa in d["e-data-value"]["value"]) == row["kerberos.padata_type"]


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x30\x00", b"\x6a\x00", b"\x6a\x84\xff\xff\xff\xff\x30", b"\x6a" + b"\x30\x80" * 40, b"\x7e\x03\x30\x01"],
)
def test_full_decode_refuses(raw: bytes) -> None:
    with pytest.raises(KrbDecodeError):
        full_decode(raw)


def test_full_decode_deep_nesting_is_refused_before_pyasn1() -> None:
    deep = b""
    for _ in range(2000):
        deep = b"\x30" + _len(len(deep)) + deep
    with pytest.raises(KrbDecodeError, match="nesting"):
        full_decode(b"\x6a" + _len(len(deep)) + deep)


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body
