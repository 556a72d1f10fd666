"""What every carrier flow shares: per-direction buffers, skipping, resynchronisation and the AP outcome row.

A carrier flow (:class:`CarrierFlow`) sees the in-order bytes of both directions of one TCP connection. Its
subclass cuts them into protocol data units with :meth:`CarrierFlow._next`; units that cannot hold a security blob
are skipped without being buffered (an SMB2 READ of 8 MiB costs a counter, not memory), units that can are buffered
up to :data:`MAX_PDU` bytes and handed to :meth:`CarrierFlow._unit`. After a gap (bytes lost in a direction) the flow
looks for the next plausible unit start with :meth:`CarrierFlow._resync`, keeping at most :data:`KEEP` bytes while it
searches.

**The AP outcome row.** A server often answers an AP-REQ with no Kerberos token at all: SMB2 STATUS_LOGON_FAILURE,
HTTP 401, LDAP invalidCredentials, a DCE/RPC bind_nak. So the failure is not lost, the answer to an AP-REQ (paired by
the protocol's own key: SMB MessageId/MID, LDAP messageID, DCE/RPC call_id, HTTP request order) that carries no
Kerberos message yields one row with ``msg_type`` = ``None``, ``phase`` = ``"AP"``, the carrier, ``app_status`` (and
``nt_status`` for SMB), and the AP-REQ's ``service``, ``service_realm``, ``ticket_realm``, ``ticket_service``,
``ticket_etype`` and ``ticket_kvno`` copied, so the correlator can attach it to that AP-REQ without a join. An answer
that does carry a Kerberos message (AP-REP, KRB-ERROR) puts ``app_status`` on that row instead.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from typing import Final

from ..krb5.messages import KEYS
from ..record import ParseReport

log = logging.getLogger(__name__)

#: One decoded message or outcome: the decode_message keys plus ``carrier`` and ``app_status``.
Fields = dict[str, object]
#: What :meth:`CarrierFlow.feed` returns per completed message: ``(fields, ts, frame_no)``.
Emitted = tuple[Fields, int, int]

#: Largest unit a flow buffers (security blobs are a few KiB; an LDAP bind or SMB SESSION_SETUP never nears this).
MAX_PDU: Final = 1 << 20
#: Unanswered AP-REQs remembered per flow (a client waits for each answer; more means answers were not captured).
MAX_PENDING: Final = 16
#: Bytes kept while searching for a unit start after a gap.
KEEP: Final = 64

#: The AP-REQ fields an outcome row repeats.
_CARRIED: Final = ("service", "service_realm", "ticket_realm", "ticket_service", "ticket_etype", "ticket_kvno")
_TEMPLATE: Final = dict.fromkeys((*KEYS, "carrier", "app_status"))

#: What a unit's parser may raise on hostile bytes (struct.error is not a ValueError).
_UNIT_ERRORS: Final = (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error)

NEED: Final = 0  # _next: more bytes are needed
TAKE: Final = 1  # _next: the first n bytes are one unit to decode
SKIP: Final = 2  # _next: the next n bytes (possibly not yet received) carry nothing
LOST: Final = 3  # _next: the bytes do not parse; resynchronise

#: Issue kinds, counted in ``flow.issues`` (and in ``flow.report`` when the capture layer sets one). Lost bytes
#: themselves are the capture layer's ``tcp_gap``; a carrier counts only what it could not read.
ISSUE_UNPARSABLE: Final = "carrier_unparsable"
ISSUE_TOO_LARGE: Final = "carrier_unit_too_large"


def outcome_row(carrier: str, app_status: str | None, nt_status: int | None, ap_req: Fields) -> Fields:
    """The AP outcome row (see the module docstring) for an answer without a Kerberos message."""
    r = _TEMPLATE.copy()
    r["phase"] = "AP"
    r["carrier"] = carrier
    r["app_status"] = app_status
    r["nt_status"] = nt_status
    for key in _CARRIED:
        r[key] = ap_req.get(key)
    return r


class CarrierFlow:
    """Base class of the carrier flows: implements ``feed`` and ``gap`` of the capture layer's interface."""

    carrier: str = "?"

    def __init__(self) -> None:
        self.issues: Counter[str] = Counter()
        self._buf = (bytearray(), bytearray())  # [0] server -> client, [1] client -> server
        self._skip = [0, 0]
        self._synced = [True, True]
        self._held: list[list[Fields]] = [[], []]  # rows waiting for the end of their unit (an HTTP body)
        self._late: list[Fields] = []  # held rows released by a gap: they leave with the next fed bytes
        #: AP-REQs not yet answered, by request key, with the frame that completed each (oldest first).
        self._pending: dict[object, tuple[Fields, int]] = {}
        self._frame = 0  # the frame being fed
        #: Set by the capture layer: issues then go to the file's report, with the frame that revealed them.
        self.report: ParseReport | None = None

    # --- the interface -------------------------------------------------------------------------------------

    def feed(self, to_server: bool, data: bytes, ts: int, frame_no: int) -> list[Emitted]:
        """In-order bytes of one direction; returns ``(fields, ts, frame_no)`` of each message completed."""
        d = 1 if to_server else 0
        self._frame = frame_no
        rows: list[Fields] = self._late
        self._late = []
        view = memoryview(data)
        skip = self._skip[d]
        if skip:
            n = min(skip, len(view))
            self._skip[d] = skip - n
            view = view[n:]
            if self._skip[d] == 0 and self._held[d]:
                rows += self._held[d]
                self._held[d] = []
        buf = self._buf[d]
        if len(view):
            buf += view
            if not self._synced[d]:
                off = self._resync(buf, to_server, 0)
                if off is None:
                    del buf[: max(0, len(buf) - KEEP)]
                else:
                    del buf[:off]
                    self._synced[d] = True
            if self._synced[d]:
                self._drain(d, to_server, buf, rows)
        if self.issues and self.report is not None:
            for kind, n in self.issues.items():
                self.report.add(kind, frame_no, self.carrier, n)
            self.issues.clear()
        return [(r, ts, frame_no) for r in rows]

    def gap(self, to_server: bool) -> None:
        """Bytes were lost in that direction: forget the partial unit and look for the next one."""
        d = 1 if to_server else 0
        self._buf[d].clear()
        self._skip[d] = 0
        self._synced[d] = False
        if self._held[d]:
            self._late += self._held[d]
            self._held[d] = []
        self._after_gap(to_server)

    # --- for subclasses --------------------------------------------------------------------------------------

    def _next(self, buf: bytearray, to_server: bool) -> tuple[int, int]:
        """``(NEED|TAKE|SKIP|LOST, n)`` for the unit at the start of ``buf``."""
        raise NotImplementedError

    def _unit(self, unit: bytes, to_server: bool) -> list[Fields]:
        """Rows of one whole unit."""
        raise NotImplementedError

    def _resync(self, buf: bytearray, to_server: bool, start: int) -> int | None:
        """Offset (``>= start``) of the next plausible unit start in ``buf`` after a gap, or ``None``."""
        return None

    def _after_gap(self, to_server: bool) -> None:
        """Reset protocol state after a gap (e.g. an HTTP body in progress)."""

    def hold(self, to_server: bool, rows: list[Fields], body: int) -> list[Fields]:
        """Keep ``rows`` until the next ``body`` bytes of that direction have passed (they belong to its end)."""
        if body <= 0 or not rows:
            self.skip(to_server, body)
            return rows
        d = 1 if to_server else 0
        self._held[d] += self.tag(rows)
        self.skip(to_server, body)
        return []

    def skip(self, to_server: bool, n: int) -> None:
        """Skip the next ``n`` bytes of that direction (from the buffer first)."""
        if n <= 0:
            return
        d = 1 if to_server else 0
        buf = self._buf[d]
        k = min(n, len(buf))
        del buf[:k]
        self._skip[d] += n - k
        if self._skip[d] == 0 and self._held[d]:
            self._late += self._held[d]
            self._held[d] = []

    def answered(
        self, rows: list[Fields], app_status: str | None, nt_status: int | None = None, key: object = None
    ) -> list[Fields]:
        """A server answer: ``app_status`` on its Kerberos rows, or the outcome row when it has none.

        ``key`` pairs it with its request (SMB MessageId, LDAP messageID, DCE/RPC call_id, HTTP order): the
        outcome row answers the AP-REQ sent under the same key, never one sent after the answer's frame.
        """
        pending = self._pending.pop(key, None)
        if rows:
            for r in rows:
                r["app_status"] = app_status
                if nt_status is not None and r.get("nt_status") is None:
                    r["nt_status"] = nt_status
            return rows
        if pending is not None:
            ap_req, frame = pending
            # (an answer delivered late from behind a TCP hole can come after a later request: it answers not that)
            if self._frame >= frame:
                return [outcome_row(self.carrier, app_status, nt_status, ap_req)]
            self._pending[key] = pending
        return rows

    def requested(self, rows: list[Fields], key: object = None) -> list[Fields]:
        """A client request's rows: remember its AP-REQ under ``key`` so that the answer can be tied to it."""
        for r in rows:
            if r["msg_type"] == "AP-REQ":
                if len(self._pending) >= MAX_PENDING:
                    del self._pending[next(iter(self._pending))]
                self._pending.pop(key, None)
                self._pending[key] = (r, self._frame)
        return rows

    def tag(self, rows: list[Fields]) -> list[Fields]:
        """Set ``carrier`` on ``rows`` (and ``app_status`` where it is missing)."""
        for r in rows:
            if r.get("carrier") is None:  # rows of a nested carrier (DCE/RPC on an SMB pipe) keep theirs
                r["carrier"] = self.carrier
            r.setdefault("app_status", None)
        return rows

    # --- internals ------------------------------------------------------------------------------------------

    def _drain(self, d: int, to_server: bool, buf: bytearray, rows: list[Fields]) -> None:
        while buf and self._skip[d] == 0 and self._synced[d]:
            try:
                action, n = self._next(buf, to_server)
            except _UNIT_ERRORS as exc:
                log.debug("%s unit not parsed: %s", self.carrier, exc)
                action, n = LOST, 0
            if action == NEED:
                if len(buf) <= MAX_PDU:
                    return
                self.issues[ISSUE_TOO_LARGE] += 1
                self._lose(d, buf)
            if action == SKIP:
                self.skip(to_server, n)
                if self._late:
                    rows += self._late
                    self._late = []
            elif action == TAKE:
                if n > MAX_PDU:
                    self.issues[ISSUE_TOO_LARGE] += 1
                    self.skip(to_server, n)
                    continue
                if len(buf) < n:
                    return
                unit = bytes(buf[:n])
                del buf[:n]
                try:
                    got = self._unit(unit, to_server)
                except _UNIT_ERRORS as exc:
                    log.debug("%s unit not decoded: %s", self.carrier, exc)
                    self.issues[ISSUE_UNPARSABLE] += 1
                    got = []
                rows += self.tag(got)
                if self._late:
                    rows += self._late
                    self._late = []
            else:
                self.issues[ISSUE_UNPARSABLE] += 1
                self._lose(d, buf)  # the loop goes on when the flow found its footing again

    def _lose(self, d: int, buf: bytearray) -> None:
        self._synced[d] = False
        to_server = d == 1
        self._after_gap(to_server)
        off = self._resync(buf, to_server, 1)
        if off is not None:
            del buf[:off]
            self._synced[d] = True
        else:
            del buf[: max(0, len(buf) - KEEP)]
