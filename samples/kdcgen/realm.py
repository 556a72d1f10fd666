"""A private MIT Kerberos realm on loopback: configuration files, database, principals and daemons.

Everything lives under one run directory; the processes get ``KRB5_CONFIG`` / ``KRB5_KDC_PROFILE`` / ``KRB5CCNAME``
pointing there, so nothing under /etc is read or written. Four KDC processes share the database (MIT allows it):

* ``main`` on 127.0.0.1:88 and [::1]:88 (UDP and TCP), the one almost every scenario talks to;
* ``small`` on 127.0.0.3:88 with ``kdc_max_dgram_reply_size = 512`` so replies come back as RESPONSE_TOO_BIG
  (RFC 4120 §7.2.1) and the client retries over TCP;
* ``past`` on 127.0.0.4:88 started with ``krb5kdc -T -600``: its clock runs ten minutes behind, which is how an
  already expired TGT is made (the KDC's own expiry check allows five minutes of skew);
* ``norc4`` on 127.0.0.2:88 without ``allow_rc4`` in its libdefaults, as Debian ships it: RC4-only clients get
  ETYPE_NOSUPP there (the others allow RC4 so that the RC4-only scenario gets tickets).

``kadmind`` serves kpasswd (RFC 3244) on 127.0.0.1:464. Keys are derived from fixed passwords (``-pw``), so every
run produces the same keys and ``example.test.keytab`` decrypts every capture of every run.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .capture import terminate

log = logging.getLogger(__name__)

REALM: Final = "EXAMPLE.TEST"
OTHER_REALM: Final = "OTHER.TEST"
#: Throwaway test values for a private loopback realm.
PASSWORDS: Final[dict[str, str]] = {
    "alice": "Alice-pass1",
    "roast": "Roast-pass1",
    "disabled": "Disabled-pass1",
    "locked": "Locked-pass1",
    "pwexpired": "Expired-pass1",
    "acctexpired": "Acct-pass1",
    "aesonly": "Aesonly-pass1",
    "krbtgt/EXAMPLE.TEST": "Krbtgt-key-pass1",
    "kadmin/changepw": "Changepw-key-pass1",
    "HTTP/web.example.test": "Http-key-pass1",
    "host/client.example.test": "Host-key-pass1",
}
NEW_PASSWORD: Final = "Expired-pass2"
#: HTTP/web.example.test's key after the rotation of the kvno-mismatch scenario (kvno 2).
ROTATED_HTTP_PASSWORD: Final = "Http-key-pass2"
#: A key for HTTP/web.example.test at the right kvno that is not the KDC's (the wrong-service-key scenario).
WRONG_HTTP_PASSWORD: Final = "Not-The-Service-Key"
HTTP_PORT: Final = 8080
MASTER_PASSWORD: Final = "Master-pass1"
#: Principals whose keys go into the decryption keytab (TShark: -o kerberos.file:example.test.keytab).
KEYTAB_PRINCIPALS: Final = tuple(PASSWORDS)
ENCTYPES: Final = "aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal arcfour-hmac:normal"
START_TIMEOUT: Final = 15.0


@dataclass(frozen=True)
class Kdc:
    """One krb5kdc process: its name, listen addresses and extra options."""

    name: str
    listen: tuple[str, ...]
    extra_kdcdefaults: str = ""
    args: tuple[str, ...] = ()
    #: The krb5.conf the KDC process reads its libdefaults from (``conf/krb5-<name>.conf``).
    libdefaults: str = "main"


KDCS: Final = (
    Kdc("main", ("127.0.0.1:88", "[::1]:88")),
    Kdc("small", ("127.0.0.3:88",), "    kdc_max_dgram_reply_size = 512\n"),
    Kdc("past", ("127.0.0.4:88",), "", ("-T", "-600")),
    # Debian's current default: no allow_rc4, so no RC4 session keys (CVE-2025-3576 fix).
    Kdc("norc4", ("127.0.0.2:88",), "", (), "norc4"),
)

RC4_ONLY: Final = (
    "    default_tkt_enctypes = arcfour-hmac\n    default_tgs_enctypes = arcfour-hmac\n"
    "    permitted_enctypes = arcfour-hmac\n    allow_rc4 = true\n"
)
#: Client configuration variants: name -> (kdc address of EXAMPLE.TEST, extra [libdefaults] lines).
CLIENT_VARIANTS: Final[dict[str, tuple[str, str]]] = {
    "main": ("127.0.0.1:88", ""),
    "notimesync": ("127.0.0.1:88", "    kdc_timesync = 0\n"),
    "tcp": ("127.0.0.1:88", "    udp_preference_limit = 1\n"),
    "small": ("127.0.0.3:88", ""),
    "past": ("127.0.0.4:88", ""),
    "ipv6": ("[::1]:88", ""),
    "rc4": ("127.0.0.1:88", RC4_ONLY),
    "rc4norc4kdc": ("127.0.0.2:88", RC4_ONLY),
}


class RealmError(RuntimeError):
    """The realm could not be set up or a daemon did not start."""


def _krb5_conf(kdc: str, extra: str, allow_rc4: bool = True) -> str:
    # Complete files per variant: KRB5_CONFIG=a:b would merge multi-valued relations such as kdc.
    return (
        "[libdefaults]\n"
        f"    default_realm = {REALM}\n"
        "    dns_lookup_realm = false\n    dns_lookup_kdc = false\n    rdns = false\n"
        "    dns_canonicalize_hostname = false\n    forwardable = true\n"
        # The KDC reads its own libdefaults too: Debian's krb5 refuses RC4 session keys unless allow_rc4 is set
        # (CVE-2025-3576 fix), and the RC4-only scenario needs a KDC that still issues them.
        f"{'    allow_rc4 = true' if allow_rc4 else ''}\n"
        f"{extra}"
        "[realms]\n"
        f"    {REALM} = {{\n        kdc = {kdc}\n        admin_server = 127.0.0.1:749\n"
        "        kpasswd_server = 127.0.0.1:464\n    }\n"
        f"    {OTHER_REALM} = {{\n        kdc = 127.0.0.1:88\n    }}\n"
        "[domain_realm]\n"
        f"    .example.test = {REALM}\n    example.test = {REALM}\n    .other.test = {OTHER_REALM}\n"
    )


def _kdc_conf(run: Path, kdc: Kdc) -> str:
    listen = " ".join(kdc.listen)
    return (
        "[kdcdefaults]\n"
        f"    kdc_listen = {listen}\n    kdc_tcp_listen = {listen}\n{kdc.extra_kdcdefaults}"
        "[realms]\n"
        f"    {REALM} = {{\n"
        f"        database_name = {run}/db/principal\n        key_stash_file = {run}/db/stash\n"
        f"        acl_file = {run}/kadm5.acl\n"
        "        kadmind_listen = 127.0.0.1:749\n        kpasswd_listen = 127.0.0.1:464\n"
        "        max_life = 10h\n        max_renewable_life = 7d\n"
        f"        supported_enctypes = {ENCTYPES}\n        default_principal_flags = +preauth\n"
        "    }\n"
        "[logging]\n"
        f"    kdc = FILE:{run}/log/kdc-{kdc.name}.log\n    admin_server = FILE:{run}/log/kadmind.log\n"
    )


def _port_open(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass
class Realm:
    """The realm under ``run`` and its daemons (started by :meth:`start`, stopped by :meth:`stop`)."""

    run: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    http_keytab: str | None = None

    def __post_init__(self) -> None:
        for sub in ("db", "log", "cc", "rcache", "conf"):
            (self.run / sub).mkdir(parents=True, exist_ok=True)

    # --- environments ---

    def base_env(self) -> dict[str, str]:
        """A minimal private environment: nothing inherited but PATH."""
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C",
            "HOME": str(self.run),
            "TMPDIR": str(self.run),
            "KRB5RCACHEDIR": str(self.run / "rcache"),
            "KRB5_TRACE": "/dev/null",
            # The HTTP service and the replaying client are modules of this package.
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent.parent),
        }

    def kdc_env(self, kdc: Kdc) -> dict[str, str]:
        env = self.base_env()
        env["KRB5_CONFIG"] = str(self.run / "conf" / f"krb5-{kdc.libdefaults}.conf")
        env["KRB5_KDC_PROFILE"] = str(self.run / "conf" / f"kdc-{kdc.name}.conf")
        return env

    def client_env(self, variant: str, ccache: str) -> dict[str, str]:
        env = self.base_env()
        env["KRB5_CONFIG"] = str(self.run / "conf" / f"krb5-{variant}.conf")
        env["KRB5CCNAME"] = f"FILE:{self.run / 'cc' / ccache}"
        env["KRB5_KTNAME"] = f"FILE:{self.run / 'http.keytab'}"
        env["KRB5_CLIENT_KTNAME"] = f"FILE:{self.run / 'none.keytab'}"
        return env

    # --- setup ---

    def write_config(self) -> None:
        conf = self.run / "conf"
        for name, (kdc, extra) in CLIENT_VARIANTS.items():
            (conf / f"krb5-{name}.conf").write_text(_krb5_conf(kdc, extra))
        (conf / "krb5-norc4.conf").write_text(_krb5_conf("127.0.0.1:88", "", allow_rc4=False))
        for kdc in KDCS:
            (conf / f"kdc-{kdc.name}.conf").write_text(_kdc_conf(self.run, kdc))
        (self.run / "kadm5.acl").write_text(f"*/admin@{REALM} *\n")

    def admin(self, commands: list[str]) -> str:
        """Run ``kadmin.local`` commands (one process, commands on stdin); raises when one of them failed."""
        script = "".join(c + "\n" for c in commands)
        proc = subprocess.run(
            ["kadmin.local", "-r", REALM],
            input=script.encode(),
            env=self.kdc_env(KDCS[0]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        bad = [line for line in out.splitlines() if "while " in line or "error" in line.lower()]
        if proc.returncode != 0 or bad:
            raise RealmError(f"kadmin.local failed: {'; '.join(bad) or out[-500:]}")
        return out

    def create(self) -> None:
        """Database and principals (about one second)."""
        self.write_config()
        proc = subprocess.run(
            ["kdb5_util", "-r", REALM, "create", "-s", "-P", MASTER_PASSWORD],
            env=self.kdc_env(KDCS[0]),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise RealmError(f"kdb5_util create failed: {proc.stderr.decode(errors='replace').strip()}")
        pw = PASSWORDS
        self.admin(
            [
                "addpol -maxfailure 3 -failurecountinterval 0 -lockoutduration 1h lockout",
                # kdb5_util create sets LOCKDOWN_KEYS on krbtgt and kadmin/*; without this ktadd -norandkey refuses.
                f"modprinc -lockdown_keys krbtgt/{REALM}",
                "modprinc -lockdown_keys kadmin/changepw",
                f"cpw -pw {pw['krbtgt/EXAMPLE.TEST']} krbtgt/{REALM}",
                f"cpw -pw {pw['kadmin/changepw']} kadmin/changepw",
                f"addprinc -pw {pw['alice']} alice",
                f"addprinc -pw {pw['roast']} -requires_preauth roast",
                f"addprinc -pw {pw['disabled']} -allow_tix disabled",
                f"addprinc -pw {pw['locked']} -policy lockout locked",
                f"addprinc -pw {pw['pwexpired']} -pwexpire 2020-01-01 pwexpired",
                f"addprinc -pw {pw['acctexpired']} -expire 2020-01-01 acctexpired",
                f"addprinc -pw {pw['aesonly']} -e aes256-cts-hmac-sha1-96:normal aesonly",
                f"addprinc -pw {pw['HTTP/web.example.test']} HTTP/web.example.test",
                f"addprinc -pw {pw['host/client.example.test']} host/client.example.test",
                f"ktadd -k {self.run}/http.keytab -norandkey HTTP/web.example.test",
                f"ktadd -k {self.run}/host.keytab -norandkey host/client.example.test",
                *(f"ktadd -k {self.run}/all.keytab -norandkey {p}" for p in KEYTAB_PRINCIPALS),
            ]
        )

    # --- daemons ---

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with open(self.run / "log" / f"{name}.stderr", "wb") as err:
            self.procs[name] = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)

    def start(self) -> None:
        """Start the KDCs and kadmind as direct children and wait until they accept TCP connections."""
        for kdc in KDCS:
            for addr in kdc.listen:
                if _port_open(*_split(addr)):
                    raise RealmError(f"{addr} is already in use (another KDC?); run in a network namespace")
        for kdc in KDCS:
            self._spawn(f"kdc-{kdc.name}", ["krb5kdc", "-n", "-r", REALM, *kdc.args], self.kdc_env(kdc))
        self._spawn("kadmind", ["kadmind", "-nofork", "-r", REALM], self.kdc_env(KDCS[0]))
        wanted = [a for k in KDCS for a in k.listen] + ["127.0.0.1:464", "127.0.0.1:749"]
        deadline = time.monotonic() + START_TIMEOUT
        while wanted:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    text = (self.run / "log" / f"{name}.stderr").read_text(errors="replace")
                    raise RealmError(f"{name} exited with {proc.returncode}: {text.strip()[-400:]}")
            wanted = [a for a in wanted if not _port_open(*_split(a))]
            if wanted and time.monotonic() > deadline:
                raise RealmError(f"daemons not listening after {START_TIMEOUT:.0f} s on {', '.join(wanted)}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM every daemon, SIGKILL the ones still running after two seconds; always reaps them."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()

    # --- the HTTP service (samples.kdcgen.http) ---

    def start_http(self, keytab: str) -> None:
        """(Re)start the Negotiate HTTP service on 127.0.0.1:8080 with ``keytab`` (a file in the run folder)."""
        running = self.procs.get("http")
        if running is not None and running.poll() is None and self.http_keytab == keytab:
            return
        self.stop_one("http")
        env = self.base_env()
        env["KRB5_CONFIG"] = str(self.run / "conf" / "krb5-main.conf")
        env["KRB5_KTNAME"] = f"FILE:{self.run / keytab}"
        self._spawn("http", [sys.executable, "-m", "samples.kdcgen.http", "serve", str(HTTP_PORT)], env)
        self.http_keytab = keytab
        deadline = time.monotonic() + START_TIMEOUT
        while not _port_open("127.0.0.1", HTTP_PORT):
            proc = self.procs["http"]
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (self.run / "log" / "http.stderr").read_text(errors="replace")
                raise RealmError(f"HTTP service did not start: {text.strip()[-400:]}")
            time.sleep(0.05)

    def stop_one(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            terminate(proc, grace=2)

    def make_keytab(self, name: str, entries: list[tuple[str, int, str, str]], base: str | None = None) -> None:
        """Write keytab ``name`` from ``base`` (a keytab in the run folder, optional) plus one key per
        (principal, kvno, enctype, password), derived with the principal's default salt (ktutil, stdin)."""
        script = f"rkt {self.run / base}\n" if base else ""
        for principal, kvno, enctype, password in entries:
            script += f"addent -password -p {principal}@{REALM} -k {kvno} -e {enctype}\n{password}\n"
        script += f"wkt {self.run / name}\nq\n"
        proc = subprocess.run(
            ["ktutil"], input=script.encode(), env=self.kdc_env(KDCS[0]), capture_output=True, timeout=30, check=False
        )
        if proc.returncode != 0 or not (self.run / name).exists():
            raise RealmError(f"ktutil failed: {proc.stderr.decode(errors='replace').strip()}")

    def export_keytab(self, dest: Path) -> None:
        """The decryption keytab: every key of the realm, plus the keys two scenarios create later (kvno 2 of
        HTTP/web after the rotation, of pwexpired after the kpasswd change), so a partial run (``--only``)
        writes the same keys as a full one."""
        later = [
            (principal, 2, enctype, password)
            for principal, password in (("HTTP/web.example.test", ROTATED_HTTP_PASSWORD), ("pwexpired", NEW_PASSWORD))
            for enctype in ("aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96", "arcfour-hmac")
        ]
        self.make_keytab("export.keytab", later, base="all.keytab")
        shutil.copyfile(self.run / "export.keytab", dest)
