"""Kerberos in HTTP Negotiate authentication (RFC 4559 §4, RFC 9110 §11, RFC 9112 §6; WinRM on 5985, MS-WSMV).

Requests carry ``Authorization: Negotiate <base64>`` (SPNEGO, or a raw Kerberos GSS token) or ``Kerberos <base64>``
(WinRM's raw Kerberos scheme); responses carry ``WWW-Authenticate: Negotiate|Kerberos <base64>``. The
``Proxy-Authorization`` / ``Proxy-Authenticate`` pair is read the same way. Every response's status becomes
``app_status`` (``"HTTP 401"``); a response to an AP-REQ without a token gives the outcome row of
:mod:`parsers.carriers.base`, so a 401 after an AP-REQ is visible even when the server sends nothing back.

Message framing (RFC 9112 §6.3): the body is skipped by Content-Length or chunked coding without being buffered; a
response with neither is read until the connection closes (nothing after it is parsed); HEAD, 1xx, 204 and 304
responses have no body. As Wireshark does, a message's Kerberos rows are reported at the frame that completes the
message (its body), not the one that completes its headers.
"""

from __future__ import annotations

import binascii
import re
from collections import deque
from typing import Final

from ..gss import decode_gss
from .base import NEED, SKIP, TAKE, CarrierFlow, Fields

__all__ = ["HttpCarrier", "HttpFlow"]

#: Largest header block read (RFC 9112 leaves it to the server; IIS refuses above 64 KiB by default).
MAX_HEADERS: Final = 65536
#: "Until close" as a skip count.
_FOREVER: Final = 1 << 62
_METHODS: Final = (
    b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"TRACE ", b"CONNECT ",
    b"PROPFIND ", b"PROPPATCH ", b"MKCOL ", b"COPY ", b"MOVE ", b"LOCK ", b"UNLOCK ", b"REPORT ", b"SEARCH ",
    b"RPC_IN_DATA ", b"RPC_OUT_DATA ",
)  # fmt: skip
_FIRST_LETTERS: Final = frozenset(m[:1] for m in _METHODS) | {b"H"}
_AUTH_HEADERS: Final = (b"authorization", b"proxy-authorization", b"www-authenticate", b"proxy-authenticate")
#: ``Negotiate <token>`` / ``Kerberos <token>`` inside a header value (which may list several challenges).
_SCHEME: Final = re.compile(rb"(?:^|,)\s*(negotiate|kerberos)\s+([^\s,]+)\s*(?=,|$)", re.IGNORECASE)
_STATUS: Final = re.compile(rb"HTTP/\d\.\d (\d{3})")
_CHUNK: Final = re.compile(rb"([0-9A-Fa-f]{1,16})[^\r\n]*\r\n")
_RESYNC: Final = re.compile(rb"HTTP/1\.[01] \d{3} |(?:" + b"|".join(m.rstrip() for m in _METHODS) + rb") \S+ HTTP/1\.")

ISSUE_BASE64: Final = "http_bad_base64"
ISSUE_HEADERS: Final = "http_bad_headers"


def _b64(token: bytes) -> bytes | None:
    """Lenient base64 (missing padding tolerated, URL-safe alphabet accepted); ``None`` when it is not base64."""
    token = token.replace(b"-", b"+").replace(b"_", b"/").rstrip(b"=")
    if len(token) % 4 == 1:
        return None
    try:
        return binascii.a2b_base64(token + b"=" * (-len(token) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


class HttpFlow(CarrierFlow):
    """One HTTP/1.x connection; pipelined requests are matched to responses in order (for HEAD)."""

    carrier = "http"

    def __init__(self) -> None:
        super().__init__()
        self._methods: deque[bytes] = deque(maxlen=64)
        self._sent = 0  # requests seen; responses answer them in order (RFC 9112 §9.3.2), so order is the key
        self._answered = 0
        self._chunked = [False, False]  # a chunked body is being read in that direction
        self._rows: list[list[Fields]] = [[], []]  # rows waiting for the end of a chunked body

    def _next(self, buf: bytearray, to_server: bool) -> tuple[int, int]:
        d = 1 if to_server else 0
        if self._chunked[d]:
            return self._chunk(buf, d, to_server)
        end = buf.find(b"\r\n\r\n", 0, MAX_HEADERS + 4)
        if end < 0:
            if len(buf) > MAX_HEADERS:
                raise ValueError("HTTP header block too long")
            if buf[:1] in (b"\r", b"\n"):
                return SKIP, 1  # a stray CRLF between messages (RFC 9112 §2.2)
            return NEED, 0
        return TAKE, end + 4

    def _chunk(self, buf: bytearray, d: int, to_server: bool) -> tuple[int, int]:
        m = _CHUNK.match(buf)
        if m is None:
            if len(buf) > 1024 or b"\n" in buf or buf[:1] not in b"0123456789abcdefABCDEF":
                raise ValueError("bad chunk header")
            return NEED, 0
        size = int(m.group(1), 16)
        if size:
            return SKIP, m.end() + size + 2
        # the last chunk: optional trailer fields, then an empty line
        pos = m.end()
        if len(buf) - pos < 2:
            return NEED, 0
        if buf[pos : pos + 2] == b"\r\n":
            end = pos + 2
        else:
            idx = buf.find(b"\r\n\r\n", pos)
            if idx < 0:
                return NEED, 0
            end = idx + 4
        self._chunked[d] = False
        rows, self._rows[d] = self._rows[d], []
        self._late += self.tag(rows)
        return SKIP, end

    def _resync(self, buf: bytearray, to_server: bool, start: int) -> int | None:
        m = _RESYNC.search(buf, start)
        return None if m is None else m.start()

    def _after_gap(self, to_server: bool) -> None:
        d = 1 if to_server else 0
        self._chunked[d] = False
        # Lost bytes may hold requests or responses: the order no longer pairs them, so forget what is outstanding
        # (an outcome lost is better than one attached to the wrong AP-REQ).
        self._methods.clear()
        self._pending.clear()
        self._answered = self._sent
        if self._rows[d]:
            self._late += self._rows[d]
            self._rows[d] = []

    def _unit(self, unit: bytes, to_server: bool) -> list[Fields]:
        d = 1 if to_server else 0
        lines = unit[:-4].split(b"\r\n")
        start = lines[0]
        if to_server:
            if not start.startswith(_METHODS):
                raise ValueError("not an HTTP request line")
            method = start.split(b" ", 1)[0]
            self._methods.append(method)
            status = None
        else:
            m = _STATUS.match(start)
            if m is None:
                raise ValueError("not an HTTP status line")
            status = int(m.group(1))
            method = self._methods.popleft() if status >= 200 and self._methods else b""
        headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                self.issues[ISSUE_HEADERS] += 1
                continue
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        rows: list[Fields] = []
        for name in _AUTH_HEADERS:
            for value in headers.get(name, ()):
                for m in _SCHEME.finditer(value):
                    blob = _b64(m.group(2))
                    if blob is None:
                        self.issues[ISSUE_BASE64] += 1
                        continue
                    rows += decode_gss(blob, self.issues)
        self.tag(rows)
        if to_server:
            self._sent += 1
            rows = self.requested(rows, self._sent)
        elif status is not None and status >= 200:
            key = None  # a response to a request not seen (the capture started after it) answers nothing
            if self._answered < self._sent:
                self._answered += 1
                key = self._answered
            rows = self.answered(rows, f"HTTP {status}", key=key)
        body = self._body(headers, status, method)
        if body == -1:
            self._chunked[d] = True
            self._rows[d] += rows
            return []
        if body == _FOREVER:
            self.skip(to_server, body)
            return rows
        return self.hold(to_server, rows, body)

    def _body(self, headers: dict[bytes, list[bytes]], status: int | None, method: bytes) -> int:
        """Body length in bytes; -1 for chunked coding; :data:`_FOREVER` for a response read until close."""
        if status is not None and (status < 200 or status in (204, 304) or method == b"HEAD"):
            return 0
        coding = b",".join(headers.get(b"transfer-encoding", ())).lower()
        if coding:
            if coding.rstrip().endswith(b"chunked"):
                return -1
            return 0 if status is None else _FOREVER
        lengths = headers.get(b"content-length")
        if lengths:
            value = lengths[0].split(b",")[0].strip()
            if not value.isdigit() or len(value) > 18:
                raise ValueError("bad Content-Length")
            return int(value)
        return 0 if status is None else _FOREVER


class HttpCarrier:
    """HTTP/1.x on any port: a request line or a status line at the start of the stream."""

    name = "http"

    def accepts(self, server_port: int, first: bytes, from_client: bool) -> bool:
        """The stream starts with an HTTP method and a space, or ``HTTP/1.``."""
        if first[:1] not in _FIRST_LETTERS:  # one set lookup rejects almost every other stream
            return False
        if from_client:
            return first.startswith(_METHODS)
        return first.startswith(b"HTTP/1.")

    def new_flow(self) -> HttpFlow:
        return HttpFlow()
