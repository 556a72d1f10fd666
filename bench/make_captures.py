"""Build the benchmark captures, deterministically (seeded), by hand with ``struct`` (scapy would take minutes).

    python3 bench/make_captures.py [--packets 300000] [--out bench/out]

Writes two classic pcap files (Ethernet, microseconds), or with ``--pcapng`` the same frames as pcapng:

* ``mixed.pcap``: mostly non-Kerberos traffic (TCP on 443/445/80/389/135/3389 with payloads, DNS over UDP, ICMP,
  ARP; 10 % of it in 802.1Q, 15 % over IPv6) with about 2 % Kerberos frames mixed in: AS/TGS exchanges over UDP
  (a quarter of the replies IPv4-fragmented at a 576-octet MTU) and over TCP (handshake, the request's record mark
  and body in two segments, the reply segmented at 536 octets, FIN).
* ``kerberos.pcap``: the same Kerberos exchanges only (a DC-side port-88 capture).

The Kerberos messages are real MIT KDC messages (tests/data/krb5/mit_messages.tsv), each copy given its own nonce,
times and cipher octets (:func:`vary`) so that no two are alike. ``manifest.json`` records how
many packets and Kerberos messages each file holds, so bench/run.py can check that every reader found them all.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
import re
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "krb5" / "mit_messages.tsv"
T0 = 1_764_000_000_000_000
NOISE_PORTS = (443, 445, 80, 389, 135, 3389)


def _messages() -> list[tuple[bytes, bytes]]:
    """(request, reply) pairs of real messages for port 88."""
    with open(FIXTURES, newline="") as fh:
        rows = [
            r
            for r in csv.DictReader((ln for ln in fh if not ln.startswith("#")), delimiter="\t")
            if r["kpasswd"] == "0"
        ]
    msgs = [(r["kerberos.msg_type"], bytes.fromhex(r["hex"])) for r in rows]
    pairs = []
    for (ta, a), (tb, b) in itertools.pairwise(msgs):
        if ta in ("10", "12|14") and tb in ("11", "13", "30"):
            pairs.append((a, b))
    return pairs


_TIME = re.compile(rb"\x18\x0f(\d{12})(\d\d)Z")  # GeneralizedTime YYYYMMDDHHMMSSZ
_NONCE = re.compile(rb"\xa7\x06\x02\x04[\x00-\x7f]...", re.S)  # KDC-REQ-BODY nonce [7], 4 octets, positive
# EncryptedData: etype [0], kvno [1] optional, cipher [2] OCTET STRING (RFC 4120 §5.2.9)
_CIPHER = re.compile(rb"\xa0\x03\x02\x01[\x00-\x7f](?:\xa1\x03\x02\x01.)?\xa2(?:[\x00-\x7f]|\x81.|\x82..)\x04", re.S)


def vary(msg: bytes, rng: random.Random) -> bytes:
    """The message with its own nonce, seconds of every time and cipher octets, lengths unchanged: every message of
    the benchmark is then distinct, as on a real network (names and realms still repeat, as they do there), so no
    memo keyed on a message's octets can flatter the figures."""
    out = bytearray(msg)
    for m in _TIME.finditer(msg):
        out[m.start(2) : m.end(2)] = b"%02d" % rng.randrange(60)
    for m in _NONCE.finditer(msg):
        out[m.start() + 4 : m.end()] = bytes([rng.getrandbits(7)]) + rng.randbytes(3)
    for m in _CIPHER.finditer(msg):
        at = m.end()
        first = msg[at] if at < len(msg) else 0
        if first < 0x80:
            start, n = at + 1, first
        elif first == 0x81:
            start, n = at + 2, msg[at + 1]
        elif first == 0x82:
            start, n = at + 3, int.from_bytes(msg[at + 1 : at + 3], "big")
        else:
            continue
        if start + n <= len(msg):
            out[start : start + n] = rng.randbytes(n)
    return bytes(out)


def _csum(hdr: bytes) -> int:
    s = sum(struct.unpack("!10H", hdr))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


class Writer:
    def __init__(self, path: Path, pcapng: bool = False) -> None:
        self.fh = open(path, "wb")
        self.pcapng = pcapng
        if pcapng:  # Section Header Block, then one Ethernet Interface Description Block (microseconds)
            self.fh.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
            self.fh.write(struct.pack("<IIHHII", 1, 20, 1, 0, 262144, 20))
        else:
            self.fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.count = 0
        self.ts = T0
        self.ident = 0

    def frame(self, data: bytes) -> None:
        self.ts += 37
        self.count += 1
        if self.pcapng:
            pad = b"\0" * (-len(data) % 4)
            n = 32 + len(data) + len(pad)
            hdr = struct.pack("<IIIIIII", 6, n, 0, self.ts >> 32, self.ts & 0xFFFFFFFF, len(data), len(data))
            self.fh.write(hdr + data + pad + struct.pack("<I", n))
        else:
            self.fh.write(struct.pack("<IIII", self.ts // 1_000_000, self.ts % 1_000_000, len(data), len(data)) + data)

    def ipv4(self, src: int, dst: int, proto: int, l4: bytes, vlan: int = 0, frag: int = 0, ident: int = 0) -> None:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, frag, 64, proto, 0,
                          src.to_bytes(4, "big"), dst.to_bytes(4, "big"))  # fmt: skip
        hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
        eth = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01" + (struct.pack("!HH", 0x8100, vlan) if vlan else b"") + b"\x08\x00"
        self.frame(eth + hdr + l4)

    def ipv6(self, src: int, dst: int, proto: int, l4: bytes) -> None:
        hdr = struct.pack(
            "!IHBB16s16s", 0x60000000, len(l4), proto, 64, src.to_bytes(16, "big"), dst.to_bytes(16, "big")
        )
        self.frame(b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x86\xdd" + hdr + l4)

    def close(self) -> None:
        self.fh.close()


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0) + payload
    )


class Traffic:
    def __init__(self, writers: list[Writer], rng: random.Random) -> None:
        self.w = writers
        self.rng = rng
        self.krb_messages = 0

    def ip(self, *args: object, **kw: object) -> None:
        for w in self.w:
            w.ipv4(*args, **kw)  # type: ignore[arg-type]

    def krb_udp(self, client: int, kdc: int, req: bytes, rep: bytes) -> None:
        port = self.rng.randint(49152, 65000)
        self.ip(client, kdc, 17, udp(port, 88, req))
        data = udp(88, port, rep)
        self.krb_messages += 2
        if self.rng.random() < 0.25 and len(data) > 556:
            for w in self.w:
                w.ident = (w.ident + 1) & 0xFFFF
            ident = self.w[0].ident
            off = 0
            while off < len(data):
                part = data[off : off + 552]
                more = off + 552 < len(data)
                self.ip(kdc, client, 17, part, frag=(off // 8) | (0x2000 if more else 0), ident=ident)
                off += 552
        else:
            self.ip(kdc, client, 17, data)

    def krb_tcp(self, client: int, kdc: int, req: bytes, rep: bytes) -> None:
        port = self.rng.randint(49152, 65000)
        c, s = self.rng.getrandbits(32), self.rng.getrandbits(32)
        self.ip(client, kdc, 6, tcp(port, 88, c, 0, 0x02))
        self.ip(kdc, client, 6, tcp(88, port, s, c + 1, 0x12))
        self.ip(client, kdc, 6, tcp(port, 88, c + 1, s + 1, 0x10))
        r = struct.pack("!I", len(req)) + req
        self.ip(client, kdc, 6, tcp(port, 88, c + 1, s + 1, 0x18, r[:4]))
        self.ip(client, kdc, 6, tcp(port, 88, c + 5, s + 1, 0x18, r[4:]))
        p = struct.pack("!I", len(rep)) + rep
        for off in range(0, len(p), 536):
            self.ip(kdc, client, 6, tcp(88, port, s + 1 + off, c + 1 + len(r), 0x18, p[off : off + 536]))
        self.ip(client, kdc, 6, tcp(port, 88, c + 1 + len(r), s + 1 + len(p), 0x11))
        self.ip(kdc, client, 6, tcp(88, port, s + 1 + len(p), c + 2 + len(r), 0x11))
        self.krb_messages += 2


def noise(w: Writer, rng: random.Random, payloads: list[bytes]) -> None:
    r = rng.random()
    a, b = 0x0A000000 | rng.getrandbits(16), 0x0A010000 | rng.getrandbits(8)
    vlan = 42 if rng.random() < 0.10 else 0
    if r < 0.70:
        port = NOISE_PORTS[rng.randrange(len(NOISE_PORTS))]
        seg = tcp(
            rng.randint(49152, 65000),
            port,
            rng.getrandbits(32),
            rng.getrandbits(32),
            0x18,
            payloads[rng.randrange(len(payloads))],
        )
        if rng.random() < 0.15:
            w.ipv6(a, b, 6, seg)
        else:
            w.ipv4(a, b, 6, seg, vlan=vlan)
    elif r < 0.92:
        w.ipv4(a, b, 17, udp(rng.randint(49152, 65000), 53, payloads[0][:40]), vlan=vlan)
    elif r < 0.97:
        w.ipv4(a, b, 1, b"\x08\x00\x00\x00" + payloads[0][:56], vlan=vlan)
    else:
        w.frame(b"\xff" * 6 + b"\x02\0\0\0\0\x01\x08\x06" + bytes(28))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=300_000, help="frames in mixed.pcap (default 300000)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    ap.add_argument("--pcapng", action="store_true", help="write mixed.pcapng and kerberos.pcapng instead")
    ap.add_argument("--exchanges", type=int, default=20_000, help="extra exchanges in kerberos.pcap (default 20000)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261206)
    pairs = _messages()
    payloads = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (60, 200, 536, 1200, 1448)]
    ext = "pcapng" if args.pcapng else "pcap"
    mixed = Writer(args.out / f"mixed.{ext}", args.pcapng)
    krb = Writer(args.out / f"kerberos.{ext}", args.pcapng)
    both = Traffic([mixed, krb], rng)
    kdcs = [0x0A000101, 0x0A000102]
    while mixed.count < args.packets:
        if rng.random() < 0.0033:  # about 2 % of the frames end up Kerberos
            req, rep = pairs[rng.randrange(len(pairs))]
            req, rep = vary(req, rng), vary(rep, rng)
            client = 0x0A020000 | rng.getrandbits(12)
            if rng.random() < 0.5:
                both.krb_udp(client, kdcs[rng.randrange(2)], req, rep)
            else:
                both.krb_tcp(client, kdcs[rng.randrange(2)], req, rep)
        else:
            noise(mixed, rng, payloads)
    # the Kerberos-only capture gets more exchanges of its own, so that it holds enough messages to time
    only = Traffic([krb], rng)
    for _ in range(args.exchanges):
        req, rep = pairs[rng.randrange(len(pairs))]
        req, rep = vary(req, rng), vary(rep, rng)
        client = 0x0A020000 | rng.getrandbits(12)
        (only.krb_udp if rng.random() < 0.5 else only.krb_tcp)(client, kdcs[rng.randrange(2)], req, rep)
    mixed.close()
    krb.close()
    path = args.out / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    manifest[f"mixed.{ext}"] = {"packets": mixed.count, "kerberos_messages": both.krb_messages}
    manifest[f"kerberos.{ext}"] = {"packets": krb.count, "kerberos_messages": both.krb_messages + only.krb_messages}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
