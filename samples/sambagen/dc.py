"""A throwaway Samba AD DC (realm SAMBA.TEST) on loopback: provision, start, accounts, stop.

Everything lives under one run directory: ``samba-tool domain provision --targetdir`` writes the database, keys and
``etc/smb.conf`` there (an empty ``--configfile`` stops it from copying the host's smb.conf globals), clients get a
private ``client.conf`` and ``krb5.conf``. The caller (``samples.sambagen.__main__``) has already entered private
network and mount namespaces, so this module may mount over ``/etc/hosts`` (the DC's names), ``/run/samba`` (the
compiled-in winbindd socket directory: libwbclient ignores smb.conf, and smbd needs winbindd to map the PAC's SIDs
to Unix ids, else SMB2 SESSION_SETUP answers STATUS_INTERNAL_ERROR) and ``/var/{lib,log,cache}/samba`` (smbd and
winbindd create files there at start-up): those mounts vanish with the namespace, the host's files are untouched.

Real Samba behaviour worth knowing (real-kdc-captures.md §6): with ``--dns-backend=NONE`` the ``dns`` service must
not run; without the ``dnsupdate`` service the DC's ``ldap/`` SPNs exist only after ``samba_spnupdate``. Users'
keys come from fixed passwords; krbtgt's and the DC account's are random per provision, which is why the exported
keytab belongs to one run's captures.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

REALM: Final = "SAMBA.TEST"
DOMAIN: Final = "SAMBA"
DNS_DOMAIN: Final = "samba.test"
DC_HOST: Final = "dc"
DC_FQDN: Final = f"{DC_HOST}.{DNS_DOMAIN}"
#: A second name of the DC's address whose SPNs the scenarios register on a user account (the wrong account).
WEB_FQDN: Final = f"web.{DNS_DOMAIN}"
ADDRESS: Final = "127.0.0.1"
#: Throwaway test values for a private loopback domain.
ADMIN_PASSWORD: Final = "Adm1n-Passw0rd"
PASSWORDS: Final[dict[str, str]] = {"alice": "Alice-Passw0rd1", "websvc": "Websvc-Passw0rd1"}
#: SPNs put on the user ``websvc`` although the DC (same address) runs the services: the wrong account.
WRONG_ACCOUNT_SPNS: Final = (f"ldap/{WEB_FQDN}", f"cifs/{WEB_FQDN}")
#: Ports whose listening sockets mean the DC is up: Kerberos, LDAP, SMB.
PORTS: Final = (88, 389, 445)
START_TIMEOUT: Final = 60.0
TOOL_TIMEOUT: Final = 60.0
#: Folders Samba writes to outside its configuration, hidden behind a tmpfs in the mount namespace.
HOST_DIRS: Final = ("/run/samba", "/var/lib/samba", "/var/log/samba", "/var/cache/samba")
SERVICES: Final = "s3fs rpc ldap cldap kdc drepl winbindd"


class DcError(RuntimeError):
    """The domain could not be provisioned, configured or started."""


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((ADDRESS, port)) == 0


def krb5_conf() -> str:
    return (
        "[libdefaults]\n"
        f"    default_realm = {REALM}\n"
        "    dns_lookup_realm = false\n    dns_lookup_kdc = false\n    rdns = false\n"
        "    dns_canonicalize_hostname = false\n    forwardable = true\n"
        "[realms]\n"
        f"    {REALM} = {{\n        kdc = {ADDRESS}:88\n        kpasswd_server = {ADDRESS}:464\n    }}\n"
        "[domain_realm]\n"
        f"    .{DNS_DOMAIN} = {REALM}\n    {DNS_DOMAIN} = {REALM}\n"
    )


@dataclass
class Dc:
    """The domain under ``run`` and its ``samba`` process (started by :meth:`start`, stopped by :meth:`stop`)."""

    run: Path
    proc: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for sub in ("cc", "rcache", "client"):
            (self.run / sub).mkdir(parents=True, exist_ok=True)

    @property
    def smb_conf(self) -> Path:
        return self.run / "dc" / "etc" / "smb.conf"

    @property
    def client_conf(self) -> Path:
        return self.run / "client.conf"

    def env(self, ccache: str | None = None) -> dict[str, str]:
        """A minimal private environment (nothing inherited but PATH) for the daemon, samba-tool and clients."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C",
            "HOME": str(self.run),
            "TMPDIR": str(self.run),
            "KRB5_CONFIG": str(self.run / "krb5.conf"),
            "KRB5RCACHEDIR": str(self.run / "rcache"),
        }
        if ccache is not None:
            env["KRB5CCNAME"] = f"FILE:{self.run / 'cc' / ccache}"
        return env

    def tool(self, argv: list[str], stdin: str = "") -> str:
        """Run an administration command that must succeed; returns its output."""
        try:
            proc = subprocess.run(
                argv, input=stdin.encode(), env=self.env(), capture_output=True, timeout=TOOL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise DcError(f"{' '.join(argv[:3])} did not finish in {TOOL_TIMEOUT:.0f} s") from exc
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        if proc.returncode != 0:
            raise DcError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {out.strip()[-600:]}")
        return out

    def _timed(self, what: str, t0: float) -> None:
        self.timings[what] = round(time.monotonic() - t0, 2)
        log.info("%s: %.1f s", what, self.timings[what])

    # --- set-up ---

    def isolate(self) -> None:
        """Mounts private to this mount namespace: the DC's names in /etc/hosts, tmpfs over Samba's host folders."""
        hosts = self.run / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n{ADDRESS} {DC_FQDN} {DC_HOST}\n{ADDRESS} {WEB_FQDN}\n")
        self._mount(["--bind", str(hosts), "/etc/hosts"])
        if not Path("/run/samba").is_dir():
            # libwbclient's socket path is compiled in; a private /run gives it a place without touching the host.
            self._mount(["-t", "tmpfs", "tmpfs", "/run"])
            Path("/run/samba").mkdir()
        for folder in HOST_DIRS:
            if Path(folder).is_dir():
                self._mount(["-t", "tmpfs", "tmpfs", folder])

    @staticmethod
    def _mount(args: list[str]) -> None:
        proc = subprocess.run(["mount", *args], capture_output=True, check=False)
        if proc.returncode != 0:
            raise DcError(f"mount {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")

    def provision(self) -> None:
        (self.run / "krb5.conf").write_text(krb5_conf())
        client = self.run / "client"
        self.client_conf.write_text(
            "[global]\n"
            f"    workgroup = {DOMAIN}\n    realm = {REALM}\n    interfaces = lo\n    client min protocol = SMB2\n"
            f"    log file = {client}/log.%m\n    lock directory = {client}\n    state directory = {client}\n"
            f"    cache directory = {client}\n    private dir = {client}\n    ncalrpc dir = {client}\n"
        )
        empty = self.run / "empty.conf"
        empty.write_text("")
        dc = self.run / "dc"
        t0 = time.monotonic()
        self.tool(
            ["samba-tool", "domain", "provision", f"--configfile={empty}", "--use-rfc2307",
             f"--realm={REALM}", f"--domain={DOMAIN}", "--server-role=dc", "--dns-backend=NONE",
             f"--adminpass={ADMIN_PASSWORD}", f"--host-name={DC_HOST}", f"--host-ip={ADDRESS}", f"--targetdir={dc}",
             "--option=interfaces=lo", "--option=bind interfaces only=yes",
             f"--option=log file={dc}/log.%m", f"--option=pid directory={dc}/run",
             f"--option=ncalrpc dir={dc}/run/ncalrpc", f"--option=ntp signd socket directory={dc}/run/ntp_signd",
             f"--option=server services={SERVICES}"]
        )  # fmt: skip
        self._timed("provision", t0)

    def start(self) -> None:
        t0 = time.monotonic()
        with open(self.run / "samba.out", "wb") as err:
            # Its own session, so stop() can signal smbd and winbindd (samba's children) with it.
            self.proc = subprocess.Popen(
                ["samba", "-s", str(self.smb_conf), "-i", "-M", "single"],
                env=self.env(), stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while not all(_port_open(p) for p in PORTS) or not self._winbind_up():
            if self.proc.poll() is not None:
                raise DcError(f"samba exited ({self.proc.returncode}): {self._tail('samba.out')}")
            if time.monotonic() > deadline:
                raise DcError(f"samba not listening on {PORTS} after {START_TIMEOUT:.0f} s: {self._tail('samba.out')}")
            time.sleep(0.1)
        self._timed("start", t0)

    def _winbind_up(self) -> bool:
        return subprocess.run(["wbinfo", "--ping"], env=self.env(), capture_output=True, check=False).returncode == 0

    def _tail(self, name: str) -> str:
        path = self.run / name
        return path.read_text(errors="replace").strip()[-600:] if path.exists() else ""

    def accounts(self) -> None:
        """The DC's own SPNs, the users, and the SPNs on the wrong account."""
        t0 = time.monotonic()
        conf = f"--configfile={self.smb_conf}"
        self.tool(["samba_spnupdate", "-s", str(self.smb_conf)])
        for user, password in PASSWORDS.items():
            self.tool(["samba-tool", "user", "create", user, password, conf])
        for spn in WRONG_ACCOUNT_SPNS:
            self.tool(["samba-tool", "spn", "add", spn, "websvc", conf])
        self._timed("accounts", t0)

    def export_keytab(self, dest: Path) -> None:
        """Every key of the domain (krbtgt, DC$, users), so TShark decrypts tickets and PACs of this run."""
        dest.unlink(missing_ok=True)
        self.tool(["samba-tool", "domain", "exportkeytab", str(dest), f"--configfile={self.smb_conf}"])
        dest.chmod(0o644)  # throwaway keys of a loopback domain; tests may run as another user

    def stop(self) -> None:
        """SIGTERM samba's process group, SIGKILL it after five seconds; always reaps samba."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
