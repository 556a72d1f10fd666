"""A Kerberos-protected HTTP service and a replaying client, for the AP-phase captures (RFC 4559, RFC 4178).

``python3 -m samples.kdcgen.http serve PORT`` answers ``GET`` with ``401 WWW-Authenticate: Negotiate`` until the
request carries ``Authorization: Negotiate <SPNEGO token>``; the token goes to a python-gssapi acceptor (keytab from
``KRB5_KTNAME``). Success is ``200`` with the acceptor's output token (the AP-REP of mutual authentication); failure
is ``401`` with the error token, so the KRB-ERROR the acceptor made (SKEW, REPEAT, BAD_INTEGRITY, BADKEYVER)
reaches the wire. python-gssapi raises on a failed accept and hands that token over in ``GSSError.token``.

``python3 -m samples.kdcgen.http replay URL HOST`` makes one SPNEGO initiator token for ``HTTP@HOST`` and sends
the same token twice: the second is a replay the service's replay cache must refuse (KRB_AP_ERR_REPEAT).
"""

from __future__ import annotations

import base64
import http.client
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import gssapi
import gssapi.exceptions

SPNEGO = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")


class NegotiateHandler(BaseHTTPRequestHandler):
    """One GET, one fresh acceptor context (a single-leg Kerberos SPNEGO exchange)."""

    creds: ClassVar[gssapi.Credentials | None] = None

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Negotiate "):
            self._reply(401, "Negotiate", b"authentication required\n")
            return
        try:
            token = base64.b64decode(auth[len("Negotiate ") :].strip(), validate=True)
        except ValueError:
            self._reply(400, None, b"bad token\n")
            return
        ctx = gssapi.SecurityContext(usage="accept", creds=self.creds)
        try:
            out = ctx.step(token)
            ok = ctx.complete
        except gssapi.exceptions.GSSError as exc:
            out, ok = getattr(exc, "token", None), False
        header = f"Negotiate {base64.b64encode(out).decode()}" if out else "Negotiate"
        if ok:
            self._reply(200, header, f"hello {ctx.initiator_name}\n".encode())
        else:
            self._reply(401, header, b"denied\n")

    def _reply(self, code: int, authenticate: str | None, body: bytes) -> None:
        self.send_response(code)
        if authenticate:
            self.send_header("WWW-Authenticate", authenticate)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")
        sys.stderr.flush()


def make_server(port: int) -> HTTPServer:
    """The service on 127.0.0.1:``port`` (0: any free port) with acceptor credentials from ``KRB5_KTNAME``."""
    NegotiateHandler.creds = gssapi.Credentials(usage="accept")
    return HTTPServer(("127.0.0.1", port), NegotiateHandler)


def serve(port: int) -> None:
    make_server(port).serve_forever()


def replay(url_host: str, port: int, host: str) -> int:
    """Send one initiator token twice; exit 0 when the service accepted it once and refused the replay."""
    name = gssapi.Name(f"HTTP@{host}", gssapi.NameType.hostbased_service)
    ctx = gssapi.SecurityContext(
        name=name, usage="initiate", mech=SPNEGO, flags=[gssapi.RequirementFlag.mutual_authentication]
    )
    token = base64.b64encode(ctx.step()).decode()
    codes = []
    for _ in range(2):
        conn = http.client.HTTPConnection(url_host, port, timeout=10)
        conn.request("GET", "/", headers={"Host": f"{host}:{port}", "Authorization": f"Negotiate {token}"})
        resp = conn.getresponse()
        resp.read()
        codes.append(resp.status)
        conn.close()
    print(f"replay: HTTP {codes}")
    return 0 if codes == [200, 401] else 1


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "serve":
        serve(int(argv[1]))
        return 0
    if len(argv) == 4 and argv[0] == "replay":
        return replay(argv[1], int(argv[2]), argv[3])
    print("usage: python3 -m samples.kdcgen.http serve PORT | replay ADDR PORT HOST", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
