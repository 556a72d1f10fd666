"""The client scenarios: one capture each, with the message sequence each must show.

Sequences use the manifest's tokens (:mod:`samples.kdcgen.manifest`): ``AS-REQ``, ``TGS-REP``, ``KRB-ERROR:25``,
``KPASSWD-REQ``... Error numbers are RFC 4120 §7.5.9: 6 C_PRINCIPAL_UNKNOWN, 7 S_PRINCIPAL_UNKNOWN, 1 NAME_EXP,
18 CLIENT_REVOKED, 23 KEY_EXPIRED, 24 PREAUTH_FAILED, 25 PREAUTH_REQUIRED, 32 TKT_EXPIRED, 37 SKEW,
52 RESPONSE_TOO_BIG. MIT clients send a failing TGS-REQ twice (with and without canonicalisation), hence the pairs.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Generic, TypeVar

from .realm import HTTP_PORT, NEW_PASSWORD, PASSWORDS, ROTATED_HTTP_PASSWORD, WRONG_HTTP_PASSWORD, Realm

CLIENT_TIMEOUT: Final = 30.0
WEB: Final = "HTTP/web.example.test"

AS_OK: Final = "AS-REQ KRB-ERROR:25 AS-REQ AS-REP"
TGS_OK: Final = "TGS-REQ TGS-REP"
AS_BAD_PW: Final = "AS-REQ KRB-ERROR:25 AS-REQ KRB-ERROR:24"


class ScenarioError(RuntimeError):
    """A client command could not run at all (not: a Kerberos failure the scenario wants)."""


def run_logged(
    argv: Sequence[str],
    env: dict[str, str],
    log: list[str],
    *,
    stdin: str = "",
    timeout: float = CLIENT_TIMEOUT,
    tail: int | None = None,
) -> int:
    """Run one client command and add it to ``log`` with its exit status and output (the last ``tail`` characters
    when given); returns the status, as failures are often the point of a scenario. Raises :class:`ScenarioError`
    when the command cannot run or does not finish within ``timeout`` seconds."""
    try:
        proc = subprocess.run(list(argv), input=stdin.encode(), env=env, capture_output=True, timeout=timeout,
                              check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise ScenarioError(f"{' '.join(argv)} did not finish in {timeout:.0f} s") from exc
    except FileNotFoundError as exc:
        raise ScenarioError(f"{argv[0]} is not installed") from exc
    out = (proc.stdout + proc.stderr).decode(errors="replace").strip().replace("\n", " | ")
    shown = out if tail is None else out[-tail:]
    log.append(f"$ {' '.join(argv)} -> {proc.returncode}: {shown}")
    return proc.returncode


@dataclass
class Client:
    """Runs the MIT client tools for one scenario with a private environment and credential cache."""

    realm: Realm
    ccache: str
    log: list[str] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        variant: str = "main",
        stdin: str = "",
        faketime: str | None = None,
        ccache: str | None = None,
    ) -> int:
        """Run one client command; returns its exit status (failures are often the point of the scenario)."""
        env = self.realm.client_env(variant, ccache or self.ccache)
        # faketime works through LD_PRELOAD, so it wraps only this client process, never a daemon.
        full = ["faketime", "-f", faketime, *argv] if faketime else list(argv)
        return run_logged(full, env, self.log, stdin=stdin)

    def kinit(self, principal: str, password: str | None = None, *args: str, **kw: str) -> int:
        pw = PASSWORDS.get(principal.split("@")[0], "") if password is None else password
        return self.run(["kinit", *args, principal], stdin=pw + "\n", **kw)

    def kvno(self, service: str, **kw: str) -> int:
        return self.run(["kvno", service], **kw)

    def curl(self, **kw: str) -> int:
        """``curl --negotiate`` to the HTTP service (SPNEGO, RFC 4559); prints the status codes in the log."""
        host = f"web.example.test:{HTTP_PORT}"
        return self.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}\\n", "--negotiate", "-u", ":",
             "--resolve", f"{host}:127.0.0.1", f"http://{host}/"],
            **kw,
        )  # fmt: skip

    def replay(self) -> int:
        argv = [sys.executable, "-m", "samples.kdcgen.http", "replay", "127.0.0.1", str(HTTP_PORT), "web.example.test"]
        return self.run(argv)


#: The client type a scenario's actions get (:class:`Client` here, the Samba generator's own client there).
C = TypeVar("C")


@dataclass(frozen=True)
class Scenario(Generic[C]):
    """One capture: file stem, what it shows, the expected sequence, key facts, and the client actions.

    ``prepare`` runs before the capture starts (e.g. getting an armour TGT), ``act`` while it runs; ``keytab``
    names the keytab kdcgen's HTTP service must run with (``None``: no HTTP service needed).
    """

    name: str
    title: str
    expect: str
    facts: str
    act: Callable[[C], object]
    prepare: Callable[[C], object] | None = None
    keytab: str | None = None


def _as_tgs_ok(c: Client) -> None:
    c.kinit("alice")
    c.kvno(WEB)


def _skew_as(c: Client) -> None:
    # kdc_timesync = 0: otherwise kinit adopts the KDC time from the PREAUTH_REQUIRED error and the skew heals.
    c.kinit("alice", variant="notimesync", faketime="+10m")


def _skew_tgs(c: Client) -> None:
    c.kinit("alice")
    c.kvno(WEB, faketime="+10m")


def _expired_prepare(c: Client) -> None:
    # The "past" KDC runs 10 min behind; a client 10 min behind gets a 1-minute TGT that is long expired in real
    # time but still valid on the client's clock, so the client presents it instead of refusing it locally.
    c.kinit("alice", None, "-l", "1m", variant="past", faketime="-10m")


def _expired(c: Client) -> None:
    c.kvno(WEB, faketime="-10m")


def _lockout(c: Client) -> None:
    for _ in range(3):
        c.kinit("locked", "Wrong-pass1")
    c.kinit("locked")


def _pwexpired(c: Client) -> None:
    pw = PASSWORDS["pwexpired"]
    c.run(["kinit", "pwexpired"], stdin=f"{pw}\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n")


def _fast_prepare(c: Client) -> None:
    keytab = str(c.realm.run / "host.keytab")
    c.run(["kinit", "-k", "-t", keytab, "host/client.example.test"], ccache="armor")


def _fast(c: Client) -> None:
    armor = f"FILE:{c.realm.run / 'cc' / 'armor'}"
    c.kinit("alice", None, "-T", armor)
    c.kinit("alice", "Wrong-pass1", "-T", armor)


def _renew(c: Client) -> None:
    c.kinit("alice", None, "-l", "1h", "-r", "1d")
    c.run(["kinit", "-R"])


def _wrong_key_prepare(c: Client) -> None:
    c.realm.make_keytab("wrong.keytab", [(WEB, 1, "aes256-cts-hmac-sha1-96", WRONG_HTTP_PASSWORD)])
    c.kinit("alice")


def _rotate_prepare(c: Client) -> None:
    # The service key is changed in the KDC (kvno 2) while the service keeps its kvno-1 keytab (the decryption
    # keytab always holds the kvno-2 key). Keep this scenario last: it changes the realm for everything after it.
    c.realm.admin([f"cpw -pw {ROTATED_HTTP_PASSWORD} {WEB}"])
    c.kinit("alice")


def _http_skew(c: Client) -> None:
    c.kvno(WEB)
    c.curl(faketime="+10m")


SCENARIOS: Final = (
    Scenario("01_as_tgs_ok", "AS and TGS success: PREAUTH_REQUIRED, pre-auth retry, service ticket",
             f"{AS_OK} {TGS_OK}", f"client=alice service={WEB} etype=18 padata=2 transport=udp", _as_tgs_ok),
    Scenario("02_preauth_failed", "wrong password: PREAUTH_FAILED after the pre-auth retry",
             AS_BAD_PW, "client=alice transport=udp", lambda c: c.kinit("alice", "Wrong-pass1")),
    Scenario("03_client_unknown", "unknown client principal",
             "AS-REQ KRB-ERROR:6", "client=nosuchuser", lambda c: c.kinit("nosuchuser", "x")),
    Scenario("04_server_unknown", "unknown SPN: the TGS answers S_PRINCIPAL_UNKNOWN (MIT retries once)",
             f"{AS_OK} TGS-REQ KRB-ERROR:7 TGS-REQ KRB-ERROR:7", "client=alice service=HTTP/nosuch.example.test",
             lambda c: (c.kinit("alice"), c.kvno("HTTP/nosuch.example.test"))),
    Scenario("05_clock_skew_as", "client clock 10 min ahead, kdc_timesync off: SKEW on the pre-auth retry",
             "AS-REQ KRB-ERROR:25 AS-REQ KRB-ERROR:37", "client=alice", _skew_as),
    Scenario("06_clock_skew_tgs", "TGT fine, then the client clock 10 min ahead: SKEW in the TGS (twice)",
             f"{AS_OK} TGS-REQ KRB-ERROR:37 TGS-REQ KRB-ERROR:37", f"client=alice service={WEB}",
             _skew_tgs),
    Scenario("07_tgt_expired", "an expired TGT presented to the TGS: TKT_EXPIRED (twice)",
             "TGS-REQ KRB-ERROR:32 TGS-REQ KRB-ERROR:32", f"service={WEB}", _expired, _expired_prepare),
    Scenario("08_client_disabled", "disabled account (-allow_tix): CLIENT_REVOKED",
             "AS-REQ KRB-ERROR:18", "client=disabled", lambda c: c.kinit("disabled")),
    Scenario("09_client_locked_out", "three wrong passwords lock the account (policy maxfailure 3), then the "
             "right one gets CLIENT_REVOKED", f"{AS_BAD_PW} {AS_BAD_PW} {AS_BAD_PW} AS-REQ KRB-ERROR:18",
             "client=locked", _lockout),
    Scenario("10_account_expired", "expired account: NAME_EXP",
             "AS-REQ KRB-ERROR:1", "client=acctexpired", lambda c: c.kinit("acctexpired")),
    Scenario("11_password_expired_kpasswd", "expired password: KEY_EXPIRED, kadmin/changepw ticket, kpasswd change "
             "on port 464, new TGT", f"AS-REQ KRB-ERROR:23 {AS_OK} KPASSWD-REQ KPASSWD-REP {AS_OK}",
             "client=pwexpired service=kadmin/changepw", _pwexpired),
    Scenario("12_asrep_roast_no_preauth", "account without pre-authentication: AS-REP at once (AS-REP roastable)",
             "AS-REQ AS-REP", "client=roast nopadata=2", lambda c: c.kinit("roast")),
    Scenario("13_tcp_only", "client with udp_preference_limit = 1: everything over TCP",
             f"{AS_OK} {TGS_OK}", f"client=alice service={WEB} transport=tcp",
             lambda c: (c.kinit("alice", variant="tcp"), c.kvno(WEB, variant="tcp"))),
    Scenario("14_response_too_big", "KDC with kdc_max_dgram_reply_size 512: RESPONSE_TOO_BIG, then the same "
             "request over TCP (AS and TGS)",
             "AS-REQ KRB-ERROR:25 AS-REQ KRB-ERROR:52 AS-REQ AS-REP TGS-REQ KRB-ERROR:52 TGS-REQ TGS-REP",
             f"client=alice service={WEB} transport=udp,tcp",
             lambda c: (c.kinit("alice", variant="small"), c.kvno(WEB, variant="small"))),
    Scenario("15_ipv6", "AS and TGS success over IPv6 (::1)", f"{AS_OK} {TGS_OK}",
             f"client=alice service={WEB}",
             lambda c: (c.kinit("alice", variant="ipv6"), c.kvno(WEB, variant="ipv6"))),
    Scenario("16_fast_armor", "FAST (kinit -T with a host armour TGT): right password, then a wrong one",
             f"{AS_OK} {AS_BAD_PW}", "client=alice padata=136 nopadata=2", _fast, _fast_prepare),
    Scenario("17_renew", "renewable TGT, then kinit -R: TGS-REQ with the renew option for krbtgt",
             f"{AS_OK} {TGS_OK}", "client=alice service=krbtgt/EXAMPLE.TEST kdc_options=40800002", _renew),
    Scenario("18_rc4_only", "RC4-only client (permitted_enctypes arcfour-hmac): etype 23 everywhere",
             f"{AS_OK} {TGS_OK}", f"client=alice service={WEB} etype=23",
             lambda c: (c.kinit("alice", variant="rc4"), c.kvno(WEB, variant="rc4"))),
    Scenario("19_wrong_realm", "client asks this KDC for a realm it does not serve (OTHER.TEST)",
             "AS-REQ KRB-ERROR:6", "client=alice realm=OTHER.TEST", lambda c: c.kinit("alice@OTHER.TEST")),
    # AP phase in HTTP Negotiate (SPNEGO); the TGT is obtained before the capture, the TGS exchange is captured.
    Scenario("20_http_ok", "HTTP Negotiate success with mutual authentication: AP-REQ, 200 with the AP-REP",
             f"{TGS_OK} AP-REQ AP-REP", f"service={WEB}", lambda c: c.curl(),
             lambda c: c.kinit("alice"), "http.keytab"),
    Scenario("21_http_skew", "service ticket fine, client clock 10 min ahead at the HTTP service: SKEW token, 401",
             f"{TGS_OK} AP-REQ KRB-ERROR:37", f"service={WEB}", _http_skew, lambda c: c.kinit("alice"),
             "http.keytab"),
    Scenario("22_http_replay", "the same SPNEGO token sent twice: 200, then REPEAT from the replay cache",
             f"{TGS_OK} AP-REQ AP-REP AP-REQ KRB-ERROR:34", f"service={WEB}", lambda c: c.replay(),
             lambda c: c.kinit("alice"), "http.keytab"),
    Scenario("23_http_wrong_key", "HTTP service keytab with the right SPN and kvno but another key: BAD_INTEGRITY",
             f"{TGS_OK} AP-REQ KRB-ERROR:31", f"service={WEB}", lambda c: c.curl(), _wrong_key_prepare,
             "wrong.keytab"),
    Scenario("24_http_kvno_mismatch", "service key rotated in the KDC (kvno 2), the service keeps kvno 1: BADKEYVER",
             f"{TGS_OK} AP-REQ KRB-ERROR:44", f"service={WEB}", lambda c: c.curl(), _rotate_prepare, "http.keytab"),
    # Later additions (after 24, which changed HTTP/web's key; none of these uses it).
    Scenario("25_rc4_kdc_refuses", "RC4-only client against a KDC without allow_rc4 (Debian's default): ETYPE_NOSUPP",
             "AS-REQ KRB-ERROR:14", "client=alice", lambda c: c.kinit("alice", variant="rc4norc4kdc")),
    Scenario("26_rc4_user_without_rc4_key", "RC4-only client, user with only an AES key: PREAUTH_REQUIRED offers no "
             "ETYPE-INFO2 at all and the client gives up (no retry on the wire)", "AS-REQ KRB-ERROR:25",
             "client=aesonly nopadata=19 nopadata=2", lambda c: c.kinit("aesonly", variant="rc4")),
    Scenario("27_no_cross_realm_trust", "service in a realm this KDC has no trust with: S_PRINCIPAL_UNKNOWN",
             f"{AS_OK} TGS-REQ KRB-ERROR:7", "client=alice service=krbtgt/OTHER.TEST",
             lambda c: (c.kinit("alice"), c.kvno("HTTP/web.other.test@OTHER.TEST"))),
)  # fmt: skip

BY_NAME: Final = {s.name: s for s in SCENARIOS}


def select(names: Sequence[str]) -> list[Scenario]:
    """The scenarios named (by full name, file name or leading number), in definition order; all when empty."""
    if not names:
        return list(SCENARIOS)
    wanted = set()
    for n in names:
        hits = {s.name for s in SCENARIOS if s.name == n or s.name.split("_")[0] == n or s.name == Path(n).stem}
        if not hits:
            raise KeyError(f"unknown scenario {n!r}; known: {', '.join(BY_NAME)}")
        wanted |= hits
    # Always in the defined order: later scenarios may change the realm (key rotation).
    return [s for s in SCENARIOS if s.name in wanted]
