#!/usr/bin/env python3
"""Regenerate tests/data/krb5/mit_messages.tsv: real MIT krb5 messages with TShark's reading of each frame.

Run as root from the repository root:  python tests/data/krb5/make_mit_messages.py
Needs MIT krb5 (krb5kdc, kadmind, kadmin.local, kinit, kvno, kpasswd), tcpdump, tshark, faketime and unshare.

The script re-executes itself in a private network namespace (``unshare -n``), creates a throwaway realm
EXAMPLE.TEST in a temporary directory (nothing under /etc is read or written: KRB5_CONFIG / KRB5_KDC_PROFILE point
into it), captures one pcap per scenario on the loopback, then extracts every Kerberos / kpasswd message with the
test helper's scapy-based extractor and asks TShark for its own reading of the same frame. The TSV is the fixture:
the raw message in hex next to TShark's fields, so tests compare the decoder with TShark, never with itself.
Passwords below are throwaway values of a private loopback realm. The recipe follows
docs/real-kdc-captures.md (MIT part).
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
OUT = HERE / "mit_messages.tsv"
#: One step of a scenario: a shell command (or a callable), its standard input, extra environment.
Step = tuple[str | Callable[[], None], str | None, dict[str, str] | None]
REALM = "EXAMPLE.TEST"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
TIME_FIELDS = ("kerberos.till", "kerberos.rtime", "kerberos.ctime", "kerberos.stime")

TSHARK_FIELDS = (
    "kerberos.msg_type", "kerberos.error_code", "kerberos.e_text", "kerberos.realm", "kerberos.crealm",
    "kerberos.CNameString", "kerberos.SNameString", "kerberos.etype", "kerberos.kvno", "kerberos.padata_type",
    "kerberos.kdc_options", "kerberos.ap_options", "kerberos.till", "kerberos.rtime", "kerberos.nonce",
    "kerberos.ctime", "kerberos.cusec", "kerberos.stime", "kerberos.susec", "kerberos.ENCTYPE",
    "kerberos.info2_salt", "kerberos.include_pac", "kerberos.additional_tickets", "kerberos.armor_type",
    "kpasswd.version", "kpasswd.result", "kpasswd.ap_req_len",
)  # fmt: skip

KRB5_CONF = """[libdefaults]
    default_realm = EXAMPLE.TEST
    dns_lookup_realm = false
    dns_lookup_kdc = false
    rdns = false
    dns_canonicalize_hostname = false
    forwardable = true
{extra}
[realms]
    EXAMPLE.TEST = {{
        kdc = {kdc}
        admin_server = 127.0.0.1:749
        kpasswd_server = 127.0.0.1:464
    }}
[domain_realm]
    .example.test = EXAMPLE.TEST
    example.test = EXAMPLE.TEST
"""

KDC_CONF = """[kdcdefaults]
    kdc_listen = {listen}
    kdc_tcp_listen = {listen}
[realms]
    EXAMPLE.TEST = {{
        database_name = {run}/principal
        key_stash_file = {run}/stash
        acl_file = {run}/kadm5.acl
        kadmind_listen = 127.0.0.1:749
        kpasswd_listen = 127.0.0.1:464
        max_life = 10h
        max_renewable_life = 7d
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal arcfour-hmac:normal
        default_principal_flags = +preauth
    }}
{libdefaults}
[logging]
    kdc = FILE:{run}/kdc-{name}.log
    admin_server = FILE:{run}/kadmind.log
"""


class Lab:
    """The throwaway realm, its daemons and the per-scenario captures."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.pcaps = run / "pcaps"
        self.pcaps.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = dict(os.environ, KRB5_CONFIG=str(run / "krb5.conf"), KRB5_KDC_PROFILE=str(run / "kdc-main.conf"),
                        KRB5RCACHEDIR=str(run / "rcache"), KRB5CCNAME=f"FILE:{run}/cc/default")  # fmt: skip
        (run / "rcache").mkdir()
        (run / "cc").mkdir()
        confs = {
            "krb5.conf": ("", "127.0.0.1:88"),
            "tcp.conf": ("    udp_preference_limit = 1", "127.0.0.1:88"),
            "notimesync.conf": ("    kdc_timesync = 0", "127.0.0.1:88"),
            "rc4.conf": ("    default_tkt_enctypes = arcfour-hmac\n    default_tgs_enctypes = arcfour-hmac\n"
                         "    permitted_enctypes = arcfour-hmac\n    allow_rc4 = true", "127.0.0.1:88"),
            "rc4legacy.conf": ("    default_tkt_enctypes = arcfour-hmac\n    default_tgs_enctypes = arcfour-hmac\n"
                               "    permitted_enctypes = arcfour-hmac\n    allow_rc4 = true", "127.0.0.2:88"),
        }  # fmt: skip
        for name, (extra, kdc) in confs.items():
            (run / name).write_text(KRB5_CONF.format(extra=extra, kdc=kdc))
        for name, listen, libdefaults in (
            ("main", "127.0.0.1:88", ""),
            ("legacy", "127.0.0.2:88", "[libdefaults]\n    allow_rc4 = true\n"),
        ):
            (run / f"kdc-{name}.conf").write_text(
                KDC_CONF.format(listen=listen, run=run, name=name, libdefaults=libdefaults)
            )
        (run / "kadm5.acl").write_text("*/admin@EXAMPLE.TEST *\n")

    def sh(self, cmd: str, stdin: str | None = None, env: dict[str, str] | None = None, check: bool = False) -> None:
        full = dict(self.env, **(env or {}))
        res = subprocess.run(cmd, shell=True, input=stdin, text=True, env=full, capture_output=True, check=False)
        if check and res.returncode:
            raise SystemExit(f"failed: {cmd}\n{res.stdout}{res.stderr}")

    def admin(self, query: str) -> None:
        self.sh(f"kadmin.local -q '{query}'", check=True)

    def start(self, args: list[str], ready_port: tuple[str, int]) -> None:
        env = dict(self.env)
        self.procs.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(ready_port) == 0:
                    return
            time.sleep(0.05)
        raise SystemExit(f"{args[0]} did not start")

    def setup(self) -> None:
        run = self.run
        self.sh(f"kdb5_util create -s -r {REALM} -P master-pass-1", check=True)
        self.admin("addpol -maxfailure 3 -failurecountinterval 0 -lockoutduration 1h lockout")
        self.admin("addprinc -pw Alice-pass1 alice")
        self.admin("addprinc -pw Roast-pass1 -requires_preauth roast")
        self.admin("addprinc -pw Disabled-pass1 -allow_tix disabled")
        self.admin("addprinc -pw Expired-pass1 -pwexpire 2020-01-01 pwexpired")
        self.admin("addprinc -pw Acct-pass1 -expire 2020-01-01 acctexpired")
        self.admin("addprinc -pw Aesonly-pass1 -e aes256-cts-hmac-sha1-96:normal aesonly")
        self.admin("addprinc -randkey +ok_to_auth_as_delegate HTTP/web.example.test")
        self.admin("addprinc -randkey host/client.example.test")
        self.admin(f"ktadd -k {run}/http.keytab HTTP/web.example.test")
        self.admin(f"ktadd -k {run}/host.keytab host/client.example.test")
        self.sh("ip link set lo up", check=True)
        self.start(["krb5kdc", "-n"], ("127.0.0.1", 88))
        legacy = dict(KRB5_KDC_PROFILE=str(run / "kdc-legacy.conf"))
        self.procs.append(subprocess.Popen(["krb5kdc", "-n"], env=dict(self.env, **legacy),
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        self.start(["kadmind", "-nofork"], ("127.0.0.1", 749))
        time.sleep(0.3)

    def capture(self, name: str, steps: list[Step]) -> Path:
        pcap = self.pcaps / f"{name}.pcap"
        err = self.run / "tcpdump.err"
        dump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-Z", "root", "-w", str(pcap),
             "port 88 or port 464"], stdout=subprocess.DEVNULL, stderr=open(err, "w"),
        )  # fmt: skip
        for _ in range(200):
            if "listening on" in err.read_text():
                break
            time.sleep(0.05)
        cc = f"FILE:{self.run}/cc/{name}"
        for cmd, stdin, env in steps:
            if callable(cmd):
                cmd()
            else:
                self.sh(cmd, stdin=stdin, env=dict({"KRB5CCNAME": cc}, **(env or {})))
        last, stable = -1, 0
        while stable < 3:
            time.sleep(0.05)
            size = pcap.stat().st_size if pcap.exists() else 0
            stable = stable + 1 if size == last else 0
            last = size
        dump.terminate()
        dump.wait()
        return pcap

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()


def kpasswd_probe(payloads: list[bytes]) -> None:
    """Send kpasswd requests over UDP (kadmind answers bad ones with a KRB-ERROR carrying a result code)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        for p in payloads:
            s.sendto(p, ("127.0.0.1", 464))
            try:
                s.recvfrom(4096)
            except TimeoutError:
                pass


def replay_of(pcap: Path, flip: bool = False) -> bytes:
    """The first kpasswd request of a capture, to send again; with ``flip``, one octet in the middle of the AP-REQ
    (inside the ticket's ciphertext) is inverted, so kadmind fails to read it and answers with a KRB-ERROR."""
    from krb5_samples import corpus_messages

    raw = bytearray(next(m.raw for m in corpus_messages(pcap) if m.kpasswd))
    if flip:
        ap_len = int.from_bytes(raw[4:6], "big")
        raw[6 + ap_len // 2] ^= 0xFF
    return bytes(raw)


def scenarios(lab: Lab) -> list[Path]:
    r = lab.run
    tcp = {"KRB5_CONFIG": str(r / "tcp.conf")}
    cc = lambda n: f"FILE:{r}/cc/{n}"  # noqa: E731
    out = [
        lab.capture("01_as_tgs_ok", [("kinit alice", "Alice-pass1\n", None),
                                     ("kvno HTTP/web.example.test", None, None)]),
        lab.capture("02_preauth_failed", [("kinit alice", "Wrong-pass\n", None)]),
        lab.capture("03_client_unknown", [("kinit nosuchuser", "x\n", None)]),
        lab.capture("04_server_unknown_fast_error", [("kinit alice", "Alice-pass1\n", None),
                                                    ("kvno HTTP/nosuch.example.test", None, None)]),
        lab.capture("05_clock_skew_as", [("faketime -f +10m kinit alice", "Alice-pass1\n",
                                          {"KRB5_CONFIG": str(r / "notimesync.conf")})]),
        lab.capture("08_client_revoked_disabled", [("kinit disabled", "Disabled-pass1\n", None)]),
        lab.capture("10_account_expired", [("kinit acctexpired", "Acct-pass1\n", None)]),
        lab.capture("11_password_expired_kpasswd",
                    [("kinit pwexpired", "Expired-pass1\nNew-pass-12345\nNew-pass-12345\n", None)]),
        lab.capture("12_asrep_roast_no_preauth", [("kinit roast", "Roast-pass1\n", None)]),
        lab.capture("13_tcp_only_no_pac", [("kinit --no-request-pac alice", "Alice-pass1\n", tcp),
                                           ("kvno HTTP/web.example.test", None, tcp)]),
        lab.capture("14_request_pac_renew", [("kinit --request-pac -l 1h -r 1d alice", "Alice-pass1\n", None),
                                             ("kinit -R", None, None)]),
        lab.capture("20_rc4_only_legacy_kdc", [("kinit alice", "Alice-pass1\n",
                                                {"KRB5_CONFIG": str(r / "rc4legacy.conf")}),
                                               ("kvno HTTP/web.example.test", None,
                                                {"KRB5_CONFIG": str(r / "rc4legacy.conf")})]),
        lab.capture("21_rc4_only_kdc_refuses", [("kinit alice", "Alice-pass1\n",
                                                 {"KRB5_CONFIG": str(r / "rc4.conf")})]),
        lab.capture("22_rc4_only_user_without_rc4_key", [("kinit aesonly", "Aesonly-pass1\n",
                                                          {"KRB5_CONFIG": str(r / "rc4legacy.conf")})]),
        lab.capture("26_fast_armored", [(f"kinit -k -t {r}/host.keytab -c {cc('armor')} host/client.example.test",
                                         None, None),
                                        (f"kinit -T {cc('armor')} alice", "Alice-pass1\n", None),
                                        (f"kinit -T {cc('armor')} alice", "Wrong-pass\n", None)]),
        lab.capture("29_s4u_self_proxy", [(f"kinit -k -t {r}/http.keytab HTTP/web.example.test", None, None),
                                          ("kvno -U alice HTTP/web.example.test", None, None),
                                          ("kvno -U alice -P HTTP/web.example.test host/client.example.test",
                                           None, None)]),
        lab.capture("30_user_to_user", [("kinit alice", "Alice-pass1\n", None),
                                        (f"kinit -c {cc('bob')} alice", "Alice-pass1\n", None),
                                        (f"kvno --u2u {cc('bob')} alice", None, None)]),
        lab.capture("31_kpasswd_errors", [(lambda: kpasswd_probe([
            bytes.fromhex("000a0002000000000000"),  # version 2: bad version
            bytes.fromhex("00060001"),  # truncated request
            bytes.fromhex("000c000100046e02300000000000"),  # a broken AP-REQ
            replay_of(lab.pcaps / "11_password_expired_kpasswd.pcap"),  # the real request again
            replay_of(lab.pcaps / "11_password_expired_kpasswd.pcap", flip=True),  # a ciphertext byte flipped
        ]), None, None)]),
    ]  # fmt: skip
    return out


def tshark_rows(pcap: Path) -> dict[int, dict[str, str]]:
    cmd = ["tshark", "-n", "-r", str(pcap), "-Y", "kerberos || kpasswd", "-T", "fields", "-E", "header=y",
           "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number"]  # fmt: skip
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ, TZ="UTC"))
    rows = csv.DictReader(res.stdout.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    out = {}
    for row in rows:
        for f in TIME_FIELDS:
            row[f] = "|".join(iso(v) for v in row[f].split("|")) if row[f] else ""
        out[int(row["frame.number"])] = row
    return out


def iso(value: str) -> str:
    """TShark's ``Nov 26, 2026 11:00:13.000000000 UTC`` as ``2026-11-26T11:00:13Z`` (the corpus TSVs' form)."""
    stamp = datetime.strptime(" ".join(value.split()).split(".")[0], "%b %d, %Y %H:%M:%S").replace(tzinfo=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    if os.environ.get("KRBTRACE_NETNS") != "1":
        os.execvpe("unshare", ["unshare", "-n", sys.executable, __file__], dict(os.environ, KRBTRACE_NETNS="1"))
    from krb5_samples import corpus_messages

    run = Path(tempfile.mkdtemp(prefix="krbtrace-mit-"))
    lab = Lab(run)
    try:
        lab.setup()
        pcaps = scenarios(lab)
    finally:
        lab.stop()
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "krb5-kdc"], capture_output=True, text=True)
    with open(OUT, "w", newline="") as fh:
        fh.write(
            "# Regenerate (root): python tests/data/krb5/make_mit_messages.py  -- real MIT krb5 "
            f"{version.stdout.strip() or '?'} messages from a throwaway loopback realm, with TShark's fields\n"
        )
        w = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerow(["pcap", "frame", "kpasswd", *TSHARK_FIELDS, "hex"])
        for pcap in pcaps:
            truth = tshark_rows(pcap)
            for m in corpus_messages(pcap):
                row = truth.get(m.frame, {})
                w.writerow([pcap.stem, m.frame, int(m.kpasswd), *(row.get(f, "") for f in TSHARK_FIELDS), m.raw.hex()])
    shutil.rmtree(run, ignore_errors=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
