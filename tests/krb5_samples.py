"""Test helper: raw Kerberos messages from the corpus captures and from the committed MIT fixtures.

An oracle independent of ``parsers.capture``: scapy reads the frames, this module reassembles TCP by sequence
number, strips RFC 4120 §7.2.2 record marks on ports 88/464, and finds GSS-carried messages (SMB, LDAP, HTTP
base64, DCE/RPC) by the unmistakable start of every Kerberos message: ``[APPLICATION n] SEQUENCE { [0] pvno 5,
[1] msg-type n }`` (``[1]``/``[2]`` for KDC-REQ). Each message is attributed to the frame that delivered its last
byte, as Wireshark does, so it lines up with the corpus ``*.tshark.tsv`` ground truth.
"""

from __future__ import annotations

import base64
import binascii
import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from parsers.errors import KrbDecodeError
from parsers.krb5.der import tlv

DATA = Path(__file__).resolve().parent / "data" / "krb5"

#: Corpus captures holding Kerberos (relative to corpus/pcap), the ones the manifest lists with messages.
CORPUS_PCAPS = (
    "otrf/covenant_dcsync_dcerpc_drsuapi_DsGetNCChanges_2020-08-05020926.cap",
    "otrf/covenant_ldap_searchrequest_domainuser.cap",
    "otrf/covenant_psremoting_command_2020-08-06115603.cap",
    "otrf/empire_getsession_dcerpc_smb_srvsvc_NetSessEnum_2020-09-22034513.cap",
    "otrf/empire_powerview_ldap_ntsecuritydescriptor_2020-09-21130944.cap",
    "otrf/empire_shell_dcerpc_smb_service_dll_hijack_2020-09-21232839.cap",
    "otrf/empire_shell_rubeus_asktgt_createnetonly_2020-09-21230246.cap",
    "otrf/empire_shell_rubeus_asktgt_ptt_2020-09-21223848.cap",
    "otrf/empire_wmi_dcerpc_wmi_IWbemServices_ExecMethod_WORKSTATION5_2020-09-21001437.cap",
    "otrf/purplesharp_ad_playbook_I_2020-10-22042947.cap",
    "otrf/schtask_create_2020-12-1907003032.pcapng",
    "ndpi/kerberos-error.pcap",
    "ndpi/kerberos-login.pcap",
    "ndpi/kerberos.pcap",
    "ndpi/smb_frags.pcap",
    "arkime/arkime_synthetic.pcap",
    "arkime/krb5-tcp.pcap",
    "arkime/krb5-udp.pcap",
    "scapy/dcerpc_privacy_krb.pcapng.gz",
)

_APP = frozenset({0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x74, 0x75, 0x76, 0x7E})
#: pvno 5 followed by the msg-type tag: ``[0] 5 [1]`` for most messages, ``[1] 5 [2]`` for KDC-REQ.
_SIGNATURE = re.compile(rb"\xa0\x03\x02\x01\x05\xa1\x03\x02\x01|\xa1\x03\x02\x01\x05\xa2\x03\x02\x01")
_NEGOTIATE = re.compile(rb"(?:Negotiate|Kerberos) ([A-Za-z0-9+/=]{16,})")


@dataclass(frozen=True)
class Message:
    """One top-level Kerberos message found in a capture."""

    frame: int
    raw: bytes
    kpasswd: bool = False  # carried on port 464: kpasswd framing (RFC 3244), not a bare message


def scan(data: bytes) -> list[tuple[int, int]]:
    """``(start, stop)`` of every outermost Kerberos message in ``data`` (nested ones, e.g. PA-TGS-REQ, dropped)."""
    found: list[tuple[int, int]] = []
    for m in _SIGNATURE.finditer(data):
        hit = m.start()
        msg_type = data[m.end()] if m.end() < len(data) else -1
        for back in range(4, 13):
            st = hit - back
            if st < 0 or data[st] != 0x60 | msg_type or data[st] not in _APP:
                continue
            try:
                _tag, s, e = tlv(data, st, len(data))
                seq, ss, _se = tlv(data, s, e)
            except KrbDecodeError:
                continue
            if seq == 0x30 and ss == hit:
                found.append((st, e))
                break
    outer: list[tuple[int, int]] = []
    for st, e in sorted(found, key=lambda x: (x[0], -x[1])):
        if outer and st < outer[-1][1]:
            continue
        outer.append((st, e))
    return outer


class _Stream:
    """One direction of a TCP connection: payload placed by sequence number, first copy of each byte wins."""

    def __init__(self) -> None:
        self.base: int | None = None
        self.segments: list[tuple[int, bytes, int]] = []

    def add(self, seq: int, payload: bytes, frame: int) -> None:
        if self.base is None:
            self.base = seq
        off = (seq - self.base) % (1 << 32)
        if off > 1 << 31:  # segment before the first one seen: ignore
            return
        self.segments.append((off, payload, frame))

    def assemble(self) -> tuple[bytes, list[int]]:
        """The bytes from offset 0 and, per byte, the frame that delivered it; a gap (lost or uncaptured segment)
        becomes zero bytes from frame 0, which no Kerberos message can straddle unnoticed."""
        data = bytearray()
        frames: list[int] = []
        for off, payload, frame in sorted(self.segments, key=lambda s: (s[0], s[2])):
            if off > len(data):
                if off - len(data) > 1 << 20:
                    break
                frames += [0] * (off - len(data))
                data += bytes(off - len(data))
            new = payload[len(data) - off :]
            data += new
            frames += [frame] * len(new)
        return bytes(data), frames


def _read_frames(path: Path) -> list[tuple[int, object]]:
    from scapy.utils import PcapReader

    frames = []
    with PcapReader(str(path)) as reader:
        for no, pkt in enumerate(reader, 1):
            frames.append((no, pkt))
    return frames


@cache
def corpus_messages(path: Path) -> tuple[Message, ...]:
    """Every top-level Kerberos message of a capture, in frame order."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    out: list[Message] = []
    streams: dict[tuple[object, ...], _Stream] = {}
    for no, pkt in _read_frames(path):
        ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)  # type: ignore[attr-defined]
        if ip is None:
            continue
        if ip.haslayer(UDP):
            udp = ip[UDP]
            payload = bytes(udp.payload)
            if 88 in (udp.sport, udp.dport):
                out.append(Message(no, payload))
            elif 464 in (udp.sport, udp.dport):
                out.append(Message(no, payload, kpasswd=True))
            else:
                out += [Message(no, payload[s:e]) for s, e in scan(payload)]
        elif ip.haslayer(TCP):
            tcp = ip[TCP]
            payload = bytes(tcp.payload)
            if isinstance(ip, IP) and ip.len:  # drop Ethernet padding after a short IP datagram
                payload = payload[: max(0, ip.len - ip.ihl * 4 - tcp.dataofs * 4)]
            key = (ip.src, tcp.sport, ip.dst, tcp.dport)
            stream = streams.setdefault(key, _Stream())
            if tcp.flags.S:
                stream.base = tcp.seq + 1
            if payload:
                stream.add(tcp.seq, payload, no)
    for (_src, sport, _dst, dport), stream in streams.items():
        data, frames = stream.assemble()
        if not data:
            continue
        if {88, 464} & {sport, dport}:
            pos = 0
            while len(data) - pos >= 4:
                n = int.from_bytes(data[pos : pos + 4], "big") & 0x7FFFFFFF
                if n == 0 or len(data) - pos - 4 < n:
                    break
                out.append(Message(frames[pos + 3 + n], data[pos + 4 : pos + 4 + n], kpasswd=464 in (sport, dport)))
                pos += 4 + n
            continue
        for s, e in scan(data):
            out.append(Message(frames[e - 1], data[s:e]))
        for m in _NEGOTIATE.finditer(data):
            try:
                blob = base64.b64decode(m.group(1) + b"=" * (-len(m.group(1)) % 4))
            except binascii.Error:
                continue
            out += [Message(frames[m.end() - 1], blob[s:e]) for s, e in scan(blob)]
    return tuple(sorted(out, key=lambda m: m.frame))


def truth(path: Path) -> dict[int, dict[str, str]]:
    """The capture's ``.tshark.tsv`` ground truth: frame number -> {column: value}."""
    tsv = path.with_name(path.name + ".tshark.tsv")
    with open(tsv, newline="") as fh:
        rows = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {int(row["frame.number"]): row for row in rows}


def mit_fixtures() -> list[tuple[str, bytes, dict[str, str]]]:
    """The committed MIT KDC messages: (scenario/frame label, raw message, tshark truth of that frame)."""
    path = DATA / "mit_messages.tsv"
    out = []
    with open(path, newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    for row in csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE):
        out.append((f"{row['pcap']}#{row['frame']}", bytes.fromhex(row["hex"]), row))
    return out


# --- TShark's view of a decoded message, to compare with the ground-truth TSVs ---

#: TShark columns compared in order (values of a frame's messages concatenated in tree order).
ORDERED = (
    "kerberos.msg_type", "kerberos.error_code", "kerberos.e_text", "kerberos.realm", "kerberos.crealm",
    "kerberos.CNameString", "kerberos.SNameString", "kerberos.padata_type", "kerberos.kdc_options",
    "kerberos.ap_options", "kerberos.till", "kerberos.rtime", "kerberos.nonce", "kerberos.ctime", "kerberos.cusec",
    "kerberos.stime", "kerberos.susec",
)  # fmt: skip
#: TShark columns that list more than the timeline keeps (every EncryptedData's etype and kvno, ETYPE-INFO2
#: entries): the decoded values must be contained in them, as a multiset.
CONTAINED = ("kerberos.etype", "kerberos.kvno")

#: KRB-ERROR codes whose e-data TShark 4.0 dissects as METHOD-DATA.
TSHARK_METHOD_DATA_CODES = frozenset({24, 25})

_MSG_NO = {"AS-REQ": 10, "AS-REP": 11, "TGS-REQ": 12, "TGS-REP": 13, "AP-REQ": 14, "AP-REP": 15, "KRB-SAFE": 20,
           "KRB-PRIV": 21, "KRB-CRED": 22, "KRB-ERROR": 30}  # fmt: skip


def _iso(us: int | None) -> list[str]:
    if us is None:
        return []
    from datetime import UTC, datetime

    return [datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]


def _name(value: object) -> list[str]:
    return [] if value is None else str(value).split("/")


def _one(value: object) -> list[str]:
    return [] if value is None else [str(value)]


def tshark_view(r: dict[str, object], kpasswd_reply_error: bool = False) -> dict[str, list[str]]:
    """The values TShark prints for the message decoded as ``r``, column by column, in tree order.

    Built from the RFC 4120 field order: a KDC-REQ's padata (the PA-TGS-REQ or FAST armour AP-REQ with its ticket)
    comes before its req-body; a KDC-REP's crealm/cname before its ticket; a KRB-ERROR's ctime, stime, crealm,
    cname, realm, sname in that order.
    """
    m = str(r["msg_type"])
    v: dict[str, list[str]] = {k: [] for k in ORDERED + CONTAINED}
    nested_ticket = r["ticket_realm"] is not None
    if m in ("KPASSWD-REQ", "KPASSWD-REP"):
        if r["error_code"] is not None:
            m = "KRB-ERROR"
        else:
            v["kerberos.msg_type"] = ["14", "21"] if m == "KPASSWD-REQ" else ["15", "21"]
            if m == "KPASSWD-REQ":
                v["kerberos.realm"] = _one(r["ticket_realm"])
                v["kerberos.SNameString"] = _name(r["ticket_service"])
                v["kerberos.ap_options"] = [f"{r['ap_options']:08x}"]
            v["kerberos.etype"] = [str(x) for x in (r["ticket_etype"], r["etype"]) if x is not None]
            v["kerberos.kvno"] = _one(r["ticket_kvno"])
            return v
    no = _MSG_NO[m]
    v["kerberos.msg_type"] = [str(no)]
    if no in (10, 12):
        if nested_ticket:
            v["kerberos.msg_type"].append("14")
            v["kerberos.realm"] = _one(r["ticket_realm"])
            v["kerberos.SNameString"] = _name(r["ticket_service"])
        v["kerberos.padata_type"] = [str(x) for x in r["pa_types"] or ()]
        v["kerberos.kdc_options"] = [f"{r['kdc_options']:08x}"] if r["kdc_options"] is not None else []
        if no == 10:
            v["kerberos.CNameString"] = _name(r["client"])
        pas = r["pa_types"] or ()
        s4u_realm = [str(r["s4u_user"]).rpartition("@")[2]] if r["s4u_user"] else []
        if 129 in pas:  # PA-FOR-USER's userRealm is a kerberos.realm (its userName a name_string)
            v["kerberos.realm"] += s4u_realm
        if 130 in pas:  # PA-S4U-X509-USER: crealm, and a nonce repeating the request's
            v["kerberos.crealm"] = s4u_realm
        v["kerberos.realm"] += _one(r["service_realm"])
        v["kerberos.SNameString"] += _name(r["service"])
        v["kerberos.till"] = _iso(r["till"])  # type: ignore[arg-type]
        v["kerberos.rtime"] = _iso(r["rtime"])  # type: ignore[arg-type]
        v["kerberos.nonce"] = _one(r["nonce"]) * (2 if 130 in pas else 1)
        if r["additional_tickets"]:
            # The additional tickets' realm and sname follow; the timeline only counts them.
            v["kerberos.realm"].append("...")
            v["kerberos.SNameString"].append("...")
        v["kerberos.ap_options"] = ["?"]  # the nested AP-REQ's options are not a timeline column: not compared
    elif no in (11, 13):
        v["kerberos.padata_type"] = [str(x) for x in r["pa_types"] or ()]
        v["kerberos.crealm"] = _one(r["client_realm"])
        v["kerberos.CNameString"] = _name(r["client"])
        v["kerberos.realm"] = _one(r["ticket_realm"])
        v["kerberos.SNameString"] = _name(r["ticket_service"])
    elif no in (14, 22):
        v["kerberos.realm"] = _one(r["ticket_realm"])
        v["kerberos.SNameString"] = _name(r["ticket_service"])
        if no == 14:
            v["kerberos.ap_options"] = [f"{r['ap_options']:08x}"]
    elif no == 30:
        ctime, stime = r["ctime"], r["stime"]
        v["kerberos.ctime"] = _iso(ctime)  # type: ignore[arg-type]
        v["kerberos.cusec"] = [] if ctime is None else [str(int(ctime) % 1_000_000)]  # type: ignore[call-overload]
        v["kerberos.stime"] = _iso(stime)  # type: ignore[arg-type]
        v["kerberos.susec"] = [] if stime is None else [str(int(stime) % 1_000_000)]  # type: ignore[call-overload]
        v["kerberos.error_code"] = _one(r["error_code"])
        v["kerberos.e_text"] = _one(r["e_text"])
        v["kerberos.crealm"] = _one(r["client_realm"])
        v["kerberos.CNameString"] = _name(r["client"])
        v["kerberos.realm"] = _one(r["service_realm"])
        v["kerberos.SNameString"] = _name(r["service"])
        v["kerberos.padata_type"] = [str(x) for x in r["pa_types"] or ()]
        if r["error_code"] not in TSHARK_METHOD_DATA_CODES:
            # Named difference: TShark 4.0 picks the e-data type by error code and leaves other codes' e-data
            # undissected, e.g. MIT's FAST-wrapped KDC_ERR_S_PRINCIPAL_UNKNOWN with METHOD-DATA [136].
            v["kerberos.padata_type"] = ["?"]
    etypes = [r["ticket_etype"], r["etype"], *(r["salt_etypes"] or ())]  # type: ignore[misc]
    v["kerberos.etype"] = [str(x) for x in etypes if x is not None]
    v["kerberos.kvno"] = _one(r["ticket_kvno"])
    return v


def compare_with_tshark(views: list[dict[str, list[str]]], row: dict[str, str]) -> list[str]:
    """Differences between the concatenated views of a frame's messages and TShark's row (empty when they agree)."""
    from collections import Counter

    problems = []
    for col in ORDERED:
        if col not in row:
            continue
        if any(v[col] == ["?"] for v in views):
            continue
        want = row[col].split("|") if row[col] else []
        got = [x for v in views for x in v[col]]
        if got[-1:] == ["..."]:
            got, want = got[:-1], want[: len(got) - 1]
        if got != want:
            problems.append(f"{col}: decoded {got} tshark {want}")
    for col in CONTAINED:
        if col not in row:
            continue
        have = Counter(row[col].split("|") if row[col] else [])
        got = Counter(x for v in views for x in v[col])
        if got - have:
            problems.append(f"{col}: decoded {sorted(got.elements())} not within tshark {row[col]}")
    return problems


# --- a tiny DER builder for hand-made messages (values set here are the truth) ---


def der(tag: int, content: bytes) -> bytes:
    """One DER element: ``tag``, definite length, ``content``."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(body))) + body + content


def seq(*items: bytes) -> bytes:
    return der(0x30, b"".join(items))


def ctx(n: int, inner: bytes) -> bytes:
    """``[n]`` EXPLICIT."""
    return der(0xA0 | n, inner)


def app(n: int, inner: bytes) -> bytes:
    """``[APPLICATION n]``."""
    return der(0x60 | n, inner)


def integer(v: int) -> bytes:
    return der(0x02, v.to_bytes(max(1, (v + (v < 0)).bit_length() // 8 + 1), "big", signed=True))


def gstr(s: str | bytes, tag: int = 0x1B) -> bytes:
    return der(tag, s.encode() if isinstance(s, str) else s)


def octs(b: bytes) -> bytes:
    return der(0x04, b)


def gtime(s: str) -> bytes:
    return der(0x18, s.encode())


def kflags(v: int) -> bytes:
    return der(0x03, b"\x00" + v.to_bytes(4, "big"))


def boolean(v: bool) -> bytes:
    return der(0x01, b"\xff" if v else b"\x00")


def pname(*parts: str, name_type: int = 1) -> bytes:
    return seq(ctx(0, integer(name_type)), ctx(1, seq(*(gstr(p) for p in parts))))


def encdata(etype: int, kvno: int | None = None, cipher: bytes = b"\x00" * 16) -> bytes:
    kv = ctx(1, integer(kvno)) if kvno is not None else b""
    return seq(ctx(0, integer(etype)), kv, ctx(2, octs(cipher)))


def ticket(realm: str, *sname: str, etype: int = 18, kvno: int | None = 2) -> bytes:
    return app(1, seq(ctx(0, integer(5)), ctx(1, gstr(realm)), ctx(2, pname(*sname, name_type=2)),
                      ctx(3, encdata(etype, kvno))))  # fmt: skip


def padata(ptype: int, value: bytes) -> bytes:
    return seq(ctx(1, integer(ptype)), ctx(2, octs(value)))


def _us(text: str) -> int:
    from datetime import UTC, datetime

    stamp = datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    return int(stamp.timestamp()) * 1_000_000


def _krb_error(code: int, e_data: bytes | None, ctime: bool = False) -> bytes:
    parts = [ctx(0, integer(5)), ctx(1, integer(30))]
    if ctime:
        parts += [ctx(2, gtime("20261125110000Z")), ctx(3, integer(123))]
    parts += [ctx(4, gtime("20261125110001Z")), ctx(5, integer(456789)), ctx(6, integer(code)),
              ctx(7, gstr("WIN.TEST")), ctx(8, pname("bob")), ctx(9, gstr("WIN.TEST")),
              ctx(10, pname("krbtgt", "WIN.TEST", name_type=2))]  # fmt: skip
    if e_data is not None:
        parts.append(ctx(12, octs(e_data)))
    return app(30, seq(*parts))


def _ap_req(options: int, tkt: bytes, etype: int) -> bytes:
    return app(14, seq(ctx(0, integer(5)), ctx(1, integer(14)), ctx(2, kflags(options)), ctx(3, tkt),
                       ctx(4, encdata(etype))))  # fmt: skip


def _handmade() -> dict[str, tuple[bytes, dict[str, object]]]:
    import struct

    stime = _us("20261125110001Z") + 456789
    ext = struct.pack("<III", 0xC0000072, 0, 1)
    tgt = ticket("WIN.TEST", "krbtgt", "WIN.TEST", etype=23, kvno=5)
    cksum = seq(ctx(0, integer(-138)), ctx(1, octs(b"\x11" * 16)))
    for_user = seq(ctx(0, pname("bob", name_type=10)), ctx(1, gstr("WIN.TEST")), ctx(2, cksum),
                   ctx(3, gstr("Kerberos")))  # fmt: skip
    body = seq(ctx(0, kflags(0x40810000)), ctx(2, gstr("WIN.TEST")), ctx(3, pname("svc$")),
               ctx(5, gtime("20370913024805Z")), ctx(7, integer(-5)), ctx(8, seq(integer(23), integer(-128))),
               ctx(11, seq(ticket("WIN.TEST", "svc$", etype=18, kvno=7))))  # fmt: skip
    tgs = app(12, seq(ctx(1, integer(5)), ctx(2, integer(12)),
                      ctx(3, seq(padata(1, _ap_req(0, tgt, 23)), padata(129, for_user),
                                 padata(128, seq(ctx(0, boolean(False)))))),
                      ctx(4, body)))  # fmt: skip
    as_rep = app(11, seq(ctx(0, integer(5)), ctx(1, integer(11)),
                         ctx(2, seq(padata(11, seq(seq(ctx(0, integer(3)), ctx(1, octs(b"WIN.TESTbob"))))))),
                         ctx(3, gstr("WIN.TEST")), ctx(4, pname("bob")), ctx(5, tgt),
                         ctx(6, encdata(3, 2))))  # fmt: skip
    safe_body = seq(ctx(0, octs(b"hello")), ctx(1, gtime("20261125110002Z")), ctx(2, integer(7)),
                    ctx(4, seq(ctx(0, integer(2)), ctx(1, octs(b"\x7f\x00\x00\x01")))))  # fmt: skip
    return {
        "krb_error_kerb_ext_error": (
            _krb_error(18, seq(ctx(1, integer(3)), ctx(2, octs(ext))), ctime=True),
            {"msg_type": "KRB-ERROR", "error_code": 18, "error_name": "KDC_ERR_CLIENT_REVOKED", "nt_status": 0xC0000072,
             "stime": stime, "ctime": _us("20261125110000Z") + 123, "client": "bob", "client_realm": "WIN.TEST",
             "service": "krbtgt/WIN.TEST", "service_realm": "WIN.TEST", "pa_types": None, "fast": False},
        ),
        "krb_error_windows_method_data": (
            _krb_error(24, seq(padata(19, seq(seq(ctx(0, integer(18)), ctx(1, gstr("WIN.TESTbob"))),
                                              seq(ctx(0, integer(23))))),
                               padata(3, struct.pack("<III", 0xC000006A, 0, 1)))),
            {"error_code": 24, "pa_types": (19, 3), "salts": ("WIN.TESTbob", None), "salt_etypes": (18, 23),
             "nt_status": 0xC000006A, "stime": stime, "ctime": None},
        ),
        "krb_error_typed_data": (
            _krb_error(62, seq(seq(ctx(0, integer(104)), ctx(1, octs(b"x"))))),
            {"error_code": 62, "pa_types": None, "nt_status": None, "salts": None},
        ),
        "krb_cred": (
            app(22, seq(ctx(0, integer(5)), ctx(1, integer(22)), ctx(2, seq(tgt)), ctx(3, encdata(0)))),
            {"msg_type": "KRB-CRED", "ticket_realm": "WIN.TEST", "ticket_service": "krbtgt/WIN.TEST",
             "ticket_etype": 23, "ticket_kvno": 5, "etype": 0, "service": None},
        ),
        "krb_safe": (
            app(20, seq(ctx(0, integer(5)), ctx(1, integer(20)), ctx(2, safe_body), ctx(3, cksum))),
            {"msg_type": "KRB-SAFE", "phase": None, "etype": None},
        ),
        "tgs_req_s4u_proxy_for_user": (
            tgs,
            {"msg_type": "TGS-REQ", "s4u_user": "bob@WIN.TEST", "pac_request": False, "nonce": 0xFFFFFFFB,
             "req_etypes": (23, -128), "additional_tickets": 1, "ticket_realm": "WIN.TEST",
             "ticket_service": "krbtgt/WIN.TEST", "ticket_etype": 23, "ticket_kvno": 5, "etype": 23,
             "service": "svc$", "client": None, "pa_types": (1, 129, 128), "kdc_options": 0x40810000,
             "till": _us("20370913024805Z"), "fast": False},
        ),
        "as_rep_etype_info": (
            as_rep,
            {"msg_type": "AS-REP", "salts": ("WIN.TESTbob",), "salt_etypes": (3,), "etype": 3, "ticket_etype": 23,
             "client": "bob", "service": "krbtgt/WIN.TEST"},
        ),
        "ap_req_u2u_mutual": (
            _ap_req(0x60000000, tgt, 23),
            {"msg_type": "AP-REQ", "ap_options": 0x60000000, "service": "krbtgt/WIN.TEST", "etype": 23},
        ),
    }  # fmt: skip


#: Hand-made messages: name -> (DER, the fields they were built with).
HANDMADE = _handmade()
