"""decode_message / decode_kpasswd against independent truth.

* Real MIT krb5 messages (tests/data/krb5/mit_messages.tsv, made by make_mit_messages.py with a throwaway realm):
  TShark's reading of each frame, plus what each scenario of the generator was set up to produce (users,
  services, error codes).
* The corpus captures (../shared/corpus/pcap): every Kerberos message against the capture's ``*.tshark.tsv``.
* Hand-built variants for what the captures lack (KERB-EXT-ERROR, PA-FOR-USER, kpasswd framing errors).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import corpus_path
from krb5_samples import CORPUS_PCAPS, HANDMADE, compare_with_tshark, corpus_messages, mit_fixtures, truth, tshark_view

from parsers.errors import KrbDecodeError
from parsers.krb5 import decode_kpasswd, decode_message, looks_like_kerberos
from parsers.krb5.messages import KEYS
from parsers.record import FIELDS, KrbRecord

MIT = mit_fixtures()
REALM = "EXAMPLE.TEST"


def _decode(raw: bytes, kpasswd: bool) -> dict[str, object]:
    return decode_kpasswd(raw) if kpasswd else decode_message(raw)


def test_keys_are_record_fields() -> None:
    assert set(KEYS) <= set(FIELDS)
    r = decode_message(MIT[0][1])
    assert set(r) == set(KEYS)


_TYPES: dict[str, tuple[type, ...]] = {
    "req_etypes": (tuple,), "pa_types": (tuple,), "salts": (tuple,), "salt_etypes": (tuple,), "fast": (bool,),
    "partial": (bool,), "pac_request": (bool,),
}  # fmt: skip


def test_every_value_fits_the_record() -> None:
    """Every decoded message builds a KrbRecord with the column types of the README (ints, strs, tuples, bools)."""
    msgs = [(raw, row["kpasswd"] == "1") for _label, raw, row in MIT if row["kerberos.msg_type"]]
    msgs += [(raw, False) for raw, _want in HANDMADE.values()]
    for raw, kp in msgs:
        r = _decode(raw, kp)
        KrbRecord(ts=0, source="x", source_kind="pcap", **r)  # type: ignore[arg-type]
        for key, value in r.items():
            if value is None:
                continue
            want = _TYPES.get(key, (str,) if key in _STR_KEYS else (int,))
            assert isinstance(value, want) and (key in _TYPES or not isinstance(value, bool)), (key, value)
            if isinstance(value, tuple):
                assert all(v is None or isinstance(v, str if key == "salts" else int) for v in value), (key, value)


_STR_KEYS = frozenset({"msg_type", "phase", "error_name", "e_text", "client", "client_realm", "service",
                       "service_realm", "ticket_realm", "ticket_service", "s4u_user"})  # fmt: skip


@pytest.mark.parametrize(("label", "raw", "row"), MIT, ids=[m[0] for m in MIT])
def test_mit_message_matches_tshark(label: str, raw: bytes, row: dict[str, str]) -> None:
    kp = row["kpasswd"] == "1"
    if not row["kerberos.msg_type"]:
        pytest.skip("TShark reads no Kerberos message here (kpasswd probes: test_mit_kpasswd_probes)")
    r = _decode(raw, kp)
    assert r["partial"] is False, label
    assert compare_with_tshark([tshark_view(r)], row) == []
    enctype = row["kerberos.ENCTYPE"]
    assert r["req_etypes"] == (tuple(int(x) for x in enctype.split("|")) if enctype else None)
    salts = row["kerberos.info2_salt"]
    if salts:
        assert r["salts"] == tuple(salts.split("|"))
    pac = row["kerberos.include_pac"]
    assert r["pac_request"] == (None if not pac else pac.split("|")[0] in ("1", "True"))
    if row["kerberos.armor_type"]:
        assert r["fast"] is True
    if kp:
        assert row["kpasswd.version"] in ("0x0001", "0xff80", "")
        result = row["kpasswd.result"]
        assert r["kpasswd_result"] == (int(result, 0) if result else None)


# What each scenario of make_mit_messages.py was set up to produce (its users, services and failure).
SCENARIO_ERRORS = {
    "01_as_tgs_ok": {25},
    "02_preauth_failed": {25, 24},
    "03_client_unknown": {6},
    "04_server_unknown_fast_error": {25, 7},
    "05_clock_skew_as": {25, 37},
    "08_client_revoked_disabled": {18},
    "10_account_expired": {1},
    "11_password_expired_kpasswd": {23, 25},
    "12_asrep_roast_no_preauth": set(),
    "21_rc4_only_kdc_refuses": {14},
    "22_rc4_only_user_without_rc4_key": {25},
    "26_fast_armored": {25, 24},
}


@pytest.mark.parametrize("scenario", sorted(SCENARIO_ERRORS))
def test_mit_scenario_errors(scenario: str) -> None:
    msgs = [(raw, row) for label, raw, row in MIT if label.split("#")[0] == scenario]
    assert msgs
    codes = {r["error_code"] for raw, row in msgs if (r := _decode(raw, row["kpasswd"] == "1"))["error_code"]}
    assert codes == SCENARIO_ERRORS[scenario]


def _scenario(name: str) -> list[dict[str, object]]:
    return [_decode(raw, row["kpasswd"] == "1") for label, raw, row in MIT if label.split("#")[0] == name]


def test_mit_as_exchange_values() -> None:
    req, err, req2, rep = _scenario("01_as_tgs_ok")[:4]
    assert (req["client"], req["client_realm"], req["service"]) == ("alice", REALM, f"krbtgt/{REALM}")
    assert req["preauth_type"] is None and req2["preauth_type"] == 2 and req2["etype"] == 18
    assert err["error_name"] == "KDC_ERR_PREAUTH_REQUIRED" and err["e_text"] == "NEEDED_PREAUTH"
    assert err["salts"] == (f"{REALM}alice",) and err["salt_etypes"] == (18,)
    assert err["fast"] is False  # MIT only advertises FAST (empty PA-FX-FAST) in METHOD-DATA
    assert rep["ticket_service"] == f"krbtgt/{REALM}" and rep["client"] == "alice"


def test_mit_tgs_carries_tgt() -> None:
    tgs = next(r for r in _scenario("01_as_tgs_ok") if r["msg_type"] == "TGS-REQ")
    assert tgs["service"] == "HTTP/web.example.test"
    assert (tgs["ticket_realm"], tgs["ticket_service"], tgs["ticket_etype"]) == (REALM, f"krbtgt/{REALM}", 18)
    assert tgs["ticket_kvno"] == 1 and tgs["client"] is None
    assert tgs["fast"] is True  # MIT armours every TGS-REQ implicitly with the TGT


def test_mit_fast_armored_as() -> None:
    msgs = _scenario("26_fast_armored")
    fast_as = [r for r in msgs if r["msg_type"] == "AS-REQ" and r["fast"]]
    assert fast_as, "kinit -T sends armoured AS-REQs"
    for r in fast_as:
        # The armour TGT is the host's (kinit -k host/client.example.test): it identifies the machine.
        assert r["ticket_service"] == f"krbtgt/{REALM}"
    errors = [r for r in msgs if r["msg_type"] == "KRB-ERROR"]
    assert errors and all(r["error_code"] is not None for r in errors)


def test_mit_s4u() -> None:
    msgs = _scenario("29_s4u_self_proxy")
    users = {r["s4u_user"] for r in msgs if r["s4u_user"]}
    assert users == {f"alice@{REALM}"}
    proxy = [r for r in msgs if r["additional_tickets"]]
    assert proxy and all(r["additional_tickets"] == 1 for r in proxy)
    assert any(r["service"] == "host/client.example.test" for r in proxy)


def test_mit_user_to_user() -> None:
    msgs = _scenario("30_user_to_user")
    u2u = [r for r in msgs if r["msg_type"] == "TGS-REQ" and r["additional_tickets"]]
    assert u2u and u2u[0]["kdc_options"] & 0x8  # enc-tkt-in-skey
    assert u2u[0]["service"] == "alice"


def test_mit_rc4_only_client() -> None:
    """rc4legacy.conf allows only arcfour-hmac (23) on the client: the request lists 23 alone, the reply is
    encrypted with the user's RC4 key while the TGT stays in the KDC's AES key (18)."""
    msgs = _scenario("20_rc4_only_legacy_kdc")
    assert {r["req_etypes"] for r in msgs if r["msg_type"] in ("AS-REQ", "TGS-REQ")} == {(23,)}
    rep = next(r for r in msgs if r["msg_type"] == "AS-REP")
    assert (rep["etype"], rep["ticket_etype"], rep["salt_etypes"]) == (23, 18, (23,))
    refused = _scenario("21_rc4_only_kdc_refuses")[-1]
    assert refused["error_name"] == "KDC_ERR_ETYPE_NOSUPP"


def test_mit_no_pac_and_renew() -> None:
    no_pac = [r for r in _scenario("13_tcp_only_no_pac") if r["msg_type"] == "AS-REQ"]
    assert no_pac and {r["pac_request"] for r in no_pac} == {False}
    msgs = _scenario("14_request_pac_renew")
    assert {r["pac_request"] for r in msgs if r["msg_type"] == "AS-REQ"} == {True}
    renew = [r for r in msgs if r["msg_type"] == "TGS-REQ"]
    assert renew and renew[-1]["kdc_options"] & 0x2  # renew
    assert any(r["rtime"] for r in msgs if r["msg_type"] == "AS-REQ")


def test_mit_kpasswd() -> None:
    msgs = [r for r in _scenario("11_password_expired_kpasswd") if r["phase"] == "KPASSWD"]
    assert [r["msg_type"] for r in msgs] == ["KPASSWD-REQ", "KPASSWD-REP"]
    req, rep = msgs
    assert (req["ticket_service"], req["service"]) == ("kadmin/changepw", "kadmin/changepw")
    assert rep["kpasswd_result"] is None  # the result is inside the encrypted KRB-PRIV


def test_mit_kpasswd_probes() -> None:
    """make_mit_messages.py's scenario 31 sent hostile requests (bad version, 4 octets, broken AP-REQ) that must be
    refused, replayed a real request, then one with a ciphertext octet flipped, which kadmind answered with a
    KRB-ERROR whose e-data holds result code 3 (KRB5_KPASSWD_AUTHERROR) in clear (RFC 3244 §2)."""
    rows = [(label, raw) for label, raw, _row in MIT if label.startswith("31_kpasswd_errors#")]
    for label in ("31_kpasswd_errors#1", "31_kpasswd_errors#2", "31_kpasswd_errors#3"):
        with pytest.raises(KrbDecodeError):
            decode_kpasswd(dict(rows)[label])
    err = decode_kpasswd(rows[-1][1])
    assert (err["msg_type"], err["error_code"], err["kpasswd_result"]) == ("KPASSWD-REP", 60, 3)
    assert err["service"] == "kadmin/changepw" and err["partial"] is False


def test_mit_all_looks_like_kerberos() -> None:
    for _label, raw, row in MIT:
        if row["kpasswd"] == "0":
            assert looks_like_kerberos(raw)


# --- corpus ---


#: Frames where TShark legitimately reads less than the decoder, with the independent truth used instead.
KNOWN_DIFFERENCES = {
    # Synthetic KRB-ERROR without its mandatory stime/susec: TShark gives up on the whole message, the decoder
    # keeps the fields it can read (partial); Arkime's expectation file (arkime_synthetic.test) names the error
    # KDC_ERR_C_PRINCIPAL_UNKNOWN.
    ("arkime/arkime_synthetic.pcap", 559): ("error_code", 6),
}


@pytest.mark.parametrize("rel", CORPUS_PCAPS)
def test_corpus_matches_tshark(rel: str) -> None:
    path: Path = corpus_path("pcap", rel)
    rows = truth(path)
    by_frame: dict[int, list[dict[str, object]]] = {}
    for m in corpus_messages(path):
        r = _decode(m.raw, m.kpasswd)
        by_frame.setdefault(m.frame, []).append(r)
        if not m.kpasswd and not r["partial"]:
            assert looks_like_kerberos(m.raw), (m.frame, r["msg_type"])
    problems: dict[int, list[str]] = {}
    for frame, row in rows.items():
        if frame not in by_frame and "GSS-token" not in row["krbtrace.top_level_msgs"]:
            problems[frame] = [f"TShark has {row['krbtrace.top_level_msgs']}, the extractor found nothing"]
    for frame, recs in by_frame.items():
        row = rows.get(frame)
        if row is None:
            continue  # a frame TShark does not dissect (retransmission, truncated): compared in the capture tests
        want = [x for x in row["krbtrace.top_level_msgs"].split("|") if x]
        got = [str(r["msg_type"]) for r in recs]
        if got != want:
            problems[frame] = [f"messages {got} tshark {want}"]
            continue
        if (rel, frame) in KNOWN_DIFFERENCES:
            field, value = KNOWN_DIFFERENCES[rel, frame]
            assert recs[0][field] == value and recs[0]["partial"] is True
            continue
        diff = compare_with_tshark([tshark_view(r) for r in recs], row)
        if diff:
            problems[frame] = diff
    assert problems == {}


def test_corpus_totals() -> None:
    """The corpus MANIFEST's totals: 8 KRB-ERRORs with codes 25 x4, 13, 52, 37 and one synthetic error whose code
    TShark does not decode; TGS-REQ 46, AS-REQ 16, AP-REQ 57 (plus two in DCE/RPC frames TShark leaves undissected)."""
    counts: Counter[str] = Counter()
    codes: Counter[int | None] = Counter()
    for rel in CORPUS_PCAPS:
        for m in corpus_messages(corpus_path("pcap", rel)):
            try:
                r = _decode(m.raw, m.kpasswd)
            except KrbDecodeError:
                counts["undecodable"] += 1
                continue
            counts[str(r["msg_type"])] += 1
            if r["msg_type"] == "KRB-ERROR":
                codes[r["error_code"]] += 1  # type: ignore[index]
    assert codes == Counter({25: 4, 13: 1, 52: 1, 37: 1, 6: 1})  # 6: the synthetic one, named as Arkime does
    assert counts["undecodable"] == 0  # arkime_synthetic's cut AS-REQ (frame 298) is kept as partial
    assert counts["AP-REQ"] >= 57 and counts["TGS-REQ"] == 46 and counts["AS-REQ"] == 16


# --- hand-made messages: what the captures lack (KERB-EXT-ERROR, PA-FOR-USER, KRB-CRED, KRB-SAFE, ETYPE-INFO) ---


@pytest.mark.parametrize("name", sorted(HANDMADE))
def test_handmade(name: str) -> None:
    raw, want = HANDMADE[name]
    r = decode_message(raw)
    assert r["partial"] is False
    assert {k: r[k] for k in want} == want


def test_trailing_bytes_ignored() -> None:
    raw, want = HANDMADE["krb_cred"]
    r = decode_message(raw + b"\x00\x00garbage")
    assert r["partial"] is False and r["ticket_service"] == want["ticket_service"]


def test_truncated_message_is_partial() -> None:
    """A message cut short (snaplen, a synthetic sample) keeps the fields before the cut and says partial."""
    _label, raw, _row = next(m for m in MIT if m[2]["kerberos.msg_type"] == "10")
    full = decode_message(raw)
    cut = decode_message(raw[: len(raw) - 20])  # the etype list at the end of req-body is lost
    assert cut["partial"] is True and cut["msg_type"] == "AS-REQ" and cut["req_etypes"] is None
    for key in ("pa_types", "client", "client_realm", "service", "kdc_options", "till", "nonce"):
        assert cut[key] == full[key] is not None, key


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x6a", b"\x30\x03\x02\x01\x05", b"\x6a\x05\x30\x03\x02\x01\x05", b"\x6b\x0a\x30\x08\xa0\x03\x02\x01\x05"
     b"\xa1\x01\x00", bytes.fromhex("6a0a3008a103020105a2030201" + "0b")],
)  # fmt: skip
def test_unrecognisable_raises(raw: bytes) -> None:
    with pytest.raises(KrbDecodeError):
        decode_message(raw)
