"""samples/MANIFEST: what each capture must decode to, as read independently by TShark.

One TSV line per capture: ``pcap``, ``sequence`` (the ordered Kerberos messages, a KRB-ERROR as ``KRB-ERROR:code``
with the RFC 4120 §7.5.9 number, kpasswd (RFC 3244) by direction as ``KPASSWD-REQ`` / ``KPASSWD-REP``),
``transport`` (udp/tcp per message), ``carrier`` (kdc, kpasswd or http per message: what carries the
message, the timeline's ``carrier`` column), ``frames`` (frame numbers of those messages in the committed capture only;
a regenerated capture has other numbers), ``facts`` (``key=value`` items checked against TShark's fields) and
``title``. The sequence of a frame is its outermost message: TShark also lists the AP-REQ nested in a TGS-REQ's
PA-TGS-REQ or in a FAST armour, which is part of that request.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

MSG_NAMES: Final[dict[int, str]] = {
    10: "AS-REQ", 11: "AS-REP", 12: "TGS-REQ", 13: "TGS-REP", 14: "AP-REQ", 15: "AP-REP",
    20: "KRB-SAFE", 21: "KRB-PRIV", 22: "KRB-CRED", 30: "KRB-ERROR",
}  # fmt: skip
KPASSWD_PORT: Final = 464
FIELDS: Final = (
    "frame.number", "ip.src", "ipv6.src", "udp.srcport", "udp.dstport", "tcp.srcport", "tcp.dstport",
    "kerberos.msg_type", "kerberos.error_code", "kerberos.CNameString", "kerberos.SNameString", "kerberos.realm",
    "kerberos.etype", "kerberos.padata_type", "kerberos.kdc_options", "udp.payload", "http.response.code",
    "http.request.method",
)  # fmt: skip
DISPLAY: Final = "kerberos || kpasswd || http"
#: Facts derived from the capture itself (:meth:`Reading.derived`), compared by :func:`compare`.
DERIVED_KEYS: Final = ("etypes", "ip", "http")
COLUMNS: Final = ("pcap", "sequence", "transport", "carrier", "frames", "facts", "title")
HEADER: Final = (
    "# samples/MANIFEST: the Kerberos messages each capture in samples/kdc must decode to, read by TShark.\n"
    "# Regenerate (root, ~5 s): python3 -m samples.kdcgen    Check a fresh run against this file: "
    "python3 -m samples.kdcgen --check </dev/null\n"
    "# sequence: outermost message per frame, KRB-ERROR:<error-code>; transport, carrier (kdc, kpasswd, http): per "
    "message; frames: frame numbers "
    "in the committed capture; facts: key=value checked against TShark (etypes = every EncryptedData/ETYPE-INFO2 "
    "etype seen).\n"
)


class TsharkError(RuntimeError):
    """TShark is missing or could not read a capture."""


@dataclass
class Message:
    """One Kerberos message of a capture as TShark shows it."""

    frame: int
    token: str
    transport: str
    ip: int
    carrier: str


@dataclass
class Reading:
    """What TShark reads in one capture: messages in order plus the field values the facts are checked against."""

    messages: list[Message] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)
    retransmissions: list[int] = field(default_factory=list)
    http_codes: list[str] = field(default_factory=list)

    @property
    def sequence(self) -> str:
        return " ".join(m.token for m in self.messages)

    @property
    def transport(self) -> str:
        return " ".join(m.transport for m in self.messages)

    @property
    def carrier(self) -> str:
        return " ".join(m.carrier for m in self.messages)

    @property
    def frames(self) -> str:
        return " ".join(str(m.frame) for m in self.messages)

    def derived(self) -> str:
        """Facts read from the capture itself (no scenario knowledge): etypes seen and IP versions."""
        etypes = sorted({int(e) for e in self.values.get("kerberos.etype", []) if e.lstrip("-").isdigit()})
        ips = sorted({m.ip for m in self.messages})
        out = f"etypes={','.join(map(str, etypes)) or 'none'} ip={','.join(map(str, ips))}"
        if self.http_codes:
            out += f" http={','.join(self.http_codes)}"
        return out

    def facts_line(self, facts: str) -> str:
        """The manifest's ``facts`` cell: the scenario's facts, then the derived ones."""
        return f"{facts} {self.derived()}"


def tshark_rows(
    pcap: Path, fields: Sequence[str] = FIELDS, display: str = DISPLAY, options: Sequence[str] = ()
) -> list[dict[str, str]]:
    """TShark's ``fields``, one dict per frame matching the ``display`` filter (by default the frames holding
    Kerberos, kpasswd or HTTP data); ``options`` are extra TShark preferences (``-o name:value``)."""
    if not shutil.which("tshark"):
        raise TsharkError("tshark is not installed")
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", display, "-T", "fields",
            "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|", *options]  # fmt: skip
    for f in fields:
        argv += ["-e", f]
    proc = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise TsharkError(f"tshark failed on {pcap}: {proc.stderr.decode(errors='replace').strip()[-300:]}")
    rows = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        parts = line.split("\t")
        rows.append(dict(zip(fields, parts + [""] * (len(fields) - len(parts)), strict=True)))
    return rows


def _token(row: dict[str, str], kpasswd: bool, to_server: bool) -> str:
    types = [int(t) for t in row["kerberos.msg_type"].split("|") if t.isdigit()]
    codes = [c for c in row["kerberos.error_code"].split("|") if c]
    if kpasswd:
        base = "KPASSWD-REQ" if to_server else "KPASSWD-REP"
        return f"{base}:{codes[0]}" if codes else base
    name = MSG_NAMES.get(types[0], f"MSG-{types[0]}")
    return f"{name}:{codes[0]}" if types[0] == 30 and codes else name


def _first_int(value: str) -> int:
    first = value.split("|")[0]
    return int(first) if first.isdigit() else 0


def add_message(reading: Reading, row: dict[str, str], seen: set[tuple[str, str, str]], app: str | None) -> None:
    """Add the Kerberos message of one TShark row (none: nothing) to ``reading``. Its carrier is ``app`` (the
    application protocol holding it) or else kpasswd or kdc by port. A UDP datagram repeating an earlier one byte
    for byte (``seen``: a client retransmission after a slow reply, or the KDC's lookaside-cache answer to it) is
    listed apart."""
    if not row["kerberos.msg_type"]:
        return
    udp = bool(row["udp.srcport"])
    sport = _first_int(row["udp.srcport"] or row["tcp.srcport"])
    dport = _first_int(row["udp.dstport"] or row["tcp.dstport"])
    if udp and row["udp.payload"]:
        key = (row["udp.payload"], str(sport), str(dport))
        if key in seen:
            reading.retransmissions.append(int(row["frame.number"]))
            return
        seen.add(key)
    kpasswd = KPASSWD_PORT in (sport, dport)
    token = _token(row, kpasswd, dport == KPASSWD_PORT)
    ip = 6 if row["ipv6.src"] else 4
    carrier = app or ("kpasswd" if kpasswd else "kdc")
    reading.messages.append(Message(int(row["frame.number"]), token, "udp" if udp else "tcp", ip, carrier))
    for f in ("kerberos.CNameString", "kerberos.SNameString", "kerberos.realm", "kerberos.etype",
              "kerberos.padata_type", "kerberos.kdc_options"):  # fmt: skip
        reading.values.setdefault(f, []).extend(v for v in row[f].split("|") if v)


def read_pcap(pcap: Path) -> Reading:
    """The Kerberos messages of ``pcap`` by TShark (retransmitted UDP datagrams apart, see :func:`add_message`)."""
    reading = Reading()
    seen: set[tuple[str, str, str]] = set()
    for row in tshark_rows(pcap):
        if row["http.response.code"]:
            reading.http_codes.append(row["http.response.code"].split("|")[0])
        http = bool(row["http.response.code"] or row["http.request.method"])
        add_message(reading, row, seen, "http" if http else None)
    return reading


def _has_run(values: list[str], parts: list[str]) -> bool:
    # TShark flattens every PrincipalName's components into one list; a name is present when its components
    # appear consecutively.
    n = len(parts)
    return any(values[i : i + n] == parts for i in range(len(values) - n + 1))


def check_facts(facts: str, reading: Reading) -> list[str]:
    """Each ``key=value`` fact against TShark's fields; returns the ones that do not hold.

    ``client``/``realm``/``etype``/``padata``/``kdc_options`` (hex): some message carries that value;
    ``service``: some PrincipalName is that name; ``nopadata``: no message carries that PA-DATA type;
    ``transport``: the set of transports. Other keys (``etypes``, ``ip``, ``http``) are compared by
    :func:`compare`.
    """
    bad = []
    v = reading.values
    for item in facts.split():
        key, _, want = item.partition("=")
        if key == "client":
            ok = want in v.get("kerberos.CNameString", [])
        elif key == "service":
            ok = _has_run(v.get("kerberos.SNameString", []), want.split("/"))
        elif key == "realm":
            ok = want in v.get("kerberos.realm", [])
        elif key == "etype":
            ok = want in v.get("kerberos.etype", [])
        elif key == "padata":
            ok = want in v.get("kerberos.padata_type", [])
        elif key == "nopadata":
            ok = want not in v.get("kerberos.padata_type", [])
        elif key == "kdc_options":
            ok = want in v.get("kerberos.kdc_options", [])
        elif key == "transport":
            ok = sorted(set(reading.transport.split())) == sorted(want.split(","))
        else:
            continue
        if not ok:
            bad.append(f"fact {item} does not hold")
    return bad


def against_scenario(expect: str, facts: str, reading: Reading, derived_keys: Collection[str] = ()) -> list[str]:
    """Differences between a fresh capture and its scenario's definition (used when generating); facts with one of
    ``derived_keys`` must be among the capture's derived ones."""
    out = []
    if reading.sequence != expect:
        out.append(f"sequence\n      expected {expect}\n      tshark   {reading.sequence}")
    if reading.retransmissions:
        out.append(f"UDP retransmissions in frames {reading.retransmissions} (host too slow?); run again")
    derived = set(reading.derived().split())
    out += [f"fact {item} not in the capture ({' '.join(sorted(derived))})" for item in facts.split()
            if item.partition("=")[0] in derived_keys and item not in derived]  # fmt: skip
    return out + check_facts(facts, reading)


def entry(name: str, title: str, facts: str, reading: Reading) -> dict[str, str]:
    """The manifest line of one capture (its facts cell by :meth:`Reading.facts_line`)."""
    return {
        "pcap": f"{name}.pcap",
        "sequence": reading.sequence,
        "transport": reading.transport,
        "carrier": reading.carrier,
        "frames": reading.frames,
        "facts": reading.facts_line(facts),
        "title": title,
    }


class ManifestError(ValueError):
    """The manifest file is not in the format :func:`dump` writes."""


def load(path: Path) -> dict[str, dict[str, str]]:
    """The manifest's entries by scenario name (the pcap file's stem); raises :class:`ManifestError` on a
    missing header, a line with the wrong number of columns or a repeated capture."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line and not line.startswith("#")]
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise ManifestError(f"{path}: the first non-comment line must be the header {' '.join(COLUMNS)}")
    out: dict[str, dict[str, str]] = {}
    for n, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        if len(cells) != len(COLUMNS) or not cells[0].endswith(".pcap"):
            raise ManifestError(f"{path}: data line {n} has {len(cells)} columns, not {len(COLUMNS)}: {line[:80]!r}")
        name = Path(cells[0]).stem
        if name in out:
            raise ManifestError(f"{path}: {cells[0]} listed twice")
        out[name] = dict(zip(COLUMNS, cells, strict=True))
    return out


def dump(entries: dict[str, dict[str, str]], header: str = HEADER) -> str:
    """The manifest text: ``header`` (comment lines), the column names, then the entries by name. A cell holding a
    tab, a line break or a double quote raises ``csv.Error`` (no quoting in this format)."""
    buf = io.StringIO()
    buf.write(header)
    w = csv.DictWriter(buf, COLUMNS, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
    w.writeheader()
    for name in sorted(entries):
        w.writerow({c: entries[name][c] for c in COLUMNS})
    return buf.getvalue()


def compare(want: dict[str, str], reading: Reading) -> list[str]:
    """Differences between a manifest entry and a (re)generated capture; frame numbers are not compared."""
    out = []
    for col, got in (("sequence", reading.sequence), ("transport", reading.transport), ("carrier", reading.carrier)):
        if want[col] != got:
            out.append(f"{col}\n      manifest {want[col]}\n      tshark   {got}")
    return out + derived_diffs(want["facts"], reading, DERIVED_KEYS) + check_facts(want["facts"], reading)


def derived_diffs(facts: str, reading: Reading, keys: Collection[str]) -> list[str]:
    """The facts with one of ``keys`` (derived from a capture) that the capture no longer shows."""
    derived = set(reading.derived().split())
    return [f"fact {item} differs: tshark reads {' '.join(sorted(derived))}" for item in facts.split()
            if item.partition("=")[0] in keys and item not in derived]  # fmt: skip
