"""The Samba client scenarios: one capture each, with the message sequence each must show.

Tokens are the manifest's (:mod:`samples.sambagen.manifest`). Clients are MIT ``kinit`` and Samba's own ``ldbsearch``
(LDAP SASL GSS-SPNEGO bind, MS-ADTS §5.1.1.1) and ``smbclient`` (SMB2 SESSION_SETUP with SPNEGO, MS-SMB2 §3.2.5.3),
all with ``--use-kerberos=required`` and a private credential cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from samples.kdcgen.scenarios import Scenario as KdcScenario
from samples.kdcgen.scenarios import ScenarioError, run_logged

from .dc import DC_FQDN, PASSWORDS, WEB_FQDN, Dc

CLIENT_TIMEOUT: Final = 60.0

#: Samba's KDC answers the pre-authenticated AS-REQ over UDP with RESPONSE_TOO_BIG (the AS-REP with its PAC does
#: not fit), and MIT kinit asks again over TCP.
AS_OK: Final = "AS-REQ KRB-ERROR:25 AS-REQ KRB-ERROR:52 AS-REQ AS-REP"


@dataclass
class Client:
    """Runs client tools for one scenario with the domain's private environment and this scenario's ccache."""

    dc: Dc
    ccache: str
    log: list[str] = field(default_factory=list)

    def run(self, argv: Sequence[str], stdin: str = "") -> int:
        """Run one client command; returns its exit status (failures are often the point of the scenario)."""
        return run_logged(argv, self.dc.env(self.ccache), self.log, stdin=stdin, timeout=CLIENT_TIMEOUT, tail=800)

    @property
    def _ccache_opt(self) -> str:
        return f"--use-krb5-ccache=FILE:{self.dc.run / 'cc' / self.ccache}"

    def kinit(self, user: str) -> int:
        return self.run(["kinit", user], stdin=PASSWORDS[user] + "\n")

    def ldap(self, host: str) -> int:
        """A SASL GSS-SPNEGO bind to ``ldap://host`` (service ticket for ``ldap/host``), then a rootDSE read."""
        return self.run(
            ["ldbsearch", f"--configfile={self.dc.client_conf}", "-H", f"ldap://{host}", "--use-kerberos=required",
             self._ccache_opt, "-b", "", "-s", "base", "dnsHostName"]
        )  # fmt: skip

    def smb(self, host: str) -> int:
        """An SMB2 session set up with Kerberos (service ticket for ``cifs/host``) on IPC$, nothing else."""
        return self.run(
            ["smbclient", "-s", str(self.dc.client_conf), "--use-kerberos=required", self._ccache_opt,
             f"//{host}/IPC$", "-c", "exit"]
        )  # fmt: skip


#: One capture (kdcgen's scenario record; ``prepare`` gets the TGT before the capture, ``keytab`` is not used).
Scenario = KdcScenario[Client]


def _tgt(c: Client) -> None:
    if c.kinit("alice") != 0:
        raise ScenarioError(f"kinit alice failed before the capture: {c.log[-1]}")


def _ldap_ok(c: Client) -> None:
    c.kinit("alice")
    c.ldap(DC_FQDN)


SCENARIOS: Final = (
    Scenario("01_ldap_sasl_pac_ok",
             "kinit, then an LDAP SASL GSS-SPNEGO bind to the DC: PAC-bearing TGT, ldap/ ticket, a forwarded TGT "
             "(the DC account is trusted for delegation), AP-REQ in the BindRequest, AP-REP in the success "
             "BindResponse",
             f"{AS_OK} TGS-REQ TGS-REP TGS-REQ TGS-REP AP-REQ AP-REP",
             f"client=alice service=ldap/{DC_FQDN} service=krbtgt/SAMBA.TEST kdc_options=60800000 realm=SAMBA.TEST "
             "ldap=0 pac=yes", _ldap_ok),
    Scenario("02_ldap_spn_wrong_account",
             f"ldap/{WEB_FQDN} registered on the user websvc while the DC answers for {WEB_FQDN}: the DC cannot "
             "decrypt the RC4 ticket, BindResponse invalidCredentials (data 52e) and no Kerberos error token; "
             "ldbsearch tries twice",
             "TGS-REQ TGS-REP AP-REQ TGS-REQ TGS-REP AP-REQ",
             f"service=ldap/{WEB_FQDN} etype=23 ldap=49,49", lambda c: c.ldap(WEB_FQDN), _tgt),
    Scenario("03_smb2_kerberos_ok",
             "SMB2 SESSION_SETUP with Kerberos to the DC: cifs/ ticket, a forwarded TGT, AP-REQ in the request, "
             "AP-REP in the STATUS_SUCCESS response",
             "TGS-REQ TGS-REP TGS-REQ TGS-REP AP-REQ AP-REP",
             f"service=cifs/{DC_FQDN} kdc_options=60800000 smb=0x00000000", lambda c: c.smb(DC_FQDN), _tgt),
    Scenario("04_smb2_spn_wrong_account",
             f"cifs/{WEB_FQDN} registered on the user websvc while the DC answers for {WEB_FQDN}: SMB2 "
             "SESSION_SETUP fails with STATUS_LOGON_FAILURE and no Kerberos error token",
             "TGS-REQ TGS-REP AP-REQ",
             f"service=cifs/{WEB_FQDN} etype=23 smb=0xc000006d", lambda c: c.smb(WEB_FQDN), _tgt),
)  # fmt: skip


def select(names: Sequence[str]) -> list[Scenario]:
    """The scenarios named (by full name or number prefix), in their defined order; all when ``names`` is empty."""
    if not names:
        return list(SCENARIOS)
    chosen = set()
    for n in names:
        hits = {s.name for s in SCENARIOS if s.name == n or s.name.split("_")[0] == n.zfill(2)}
        if not hits:
            raise KeyError(f"no scenario {n!r}; known: {', '.join(s.name for s in SCENARIOS)}")
        chosen |= hits
    return [s for s in SCENARIOS if s.name in chosen]
