"""Kerberos V5 messages (RFC 4120 §5.4-§5.9, RFC 6113 §5.4, MS-KILE §2.2, MS-SFU §2.2) -> timeline fields.

:func:`decode_message` reads one DER message with the bounded reader of :mod:`parsers.krb5.der` and returns the
:class:`~parsers.record.KrbRecord` fields it can fill (see the README's column table for each one's meaning). It
reads only what a timeline needs and skips ciphertext. Each component is decoded under its own guard, so one bad
field marks the result ``partial=True`` instead of losing the rest of the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from ..memo import Memo
from . import constants as c
from .der import (
    TAG_INTEGER,
    TAG_SEQUENCE,
    KrbDecodeError,
    expect,
    fields_prefix,
    flags,
    gtime,
    integer,
    principal,
    seq_items,
    text,
    tlv,
    uint32,
)
from .padata import DECODE_ERRORS, Ranges, Record, apply_padata, e_data, padata_entries, put_etype, put_ticket

log = logging.getLogger(__name__)

__all__ = ["DECODE_ERRORS", "KEYS", "decode_message"]


#: The KrbRecord fields a decoded message can fill, all ``None`` until decoded.
KEYS: Final[tuple[str, ...]] = (
    "msg_type", "phase", "error_code", "error_name", "e_text", "nt_status", "client", "client_realm", "service",
    "service_realm", "nonce", "kdc_options", "req_etypes", "etype", "ticket_etype", "ticket_kvno", "pa_types",
    "preauth_type", "till", "rtime", "stime", "ctime", "salts", "salt_etypes", "fast", "partial", "ticket_realm",
    "ticket_service", "ap_options", "pac_request", "s4u_user", "additional_tickets", "kpasswd_result",
)  # fmt: skip
_TEMPLATE: Final = dict.fromkeys(KEYS)

#: First octet ([APPLICATION n], constructed) -> msg-type number.
APP_TAGS: Final[dict[int, int]] = {0x60 | n: n for n in (10, 11, 12, 13, 14, 15)} | {
    0x60 | n: n for n in (20, 21, 22, 30)
}
_KDC_REQ: Final = frozenset({10, 12})  # KDC-REQ numbers its components from [1]

Reader = Callable[[bytes, int, int], object]


#: Etype lists by their encoding: a client sends the same list in every request.
_ETYPE_LISTS = Memo()
_MEMO_KEY_MAX: Final = 256  # longer encodings are decoded every time, so the memo stays small on hostile input


def _ints(buf: bytes, start: int, stop: int) -> tuple[int, ...]:
    """SEQUENCE OF INTEGER (an etype list) -> the values, remembered by their octets when the list is short."""
    return _ETYPE_LISTS.span(buf, start, stop, _read_ints, _MEMO_KEY_MAX)


def _read_ints(buf: bytes, start: int, stop: int) -> tuple[int, ...]:
    """SEQUENCE OF INTEGER -> the values; one-octet INTEGERs (almost all) read inline."""
    s, e = expect(buf, start, stop, TAG_SEQUENCE)
    out = []
    while s < e:
        if e - s >= 3 and buf[s] == TAG_INTEGER and buf[s + 1] == 1:
            v = buf[s + 2]
            out.append(v - 256 if v & 0x80 else v)
            s += 3
        else:
            ce = tlv(buf, s, e)[2]
            out.append(integer(buf, s, ce))
            s = ce
    return tuple(out)


def _tagged(buf: bytes, start: int, stop: int) -> list[tuple[int, int, int]]:
    """SEQUENCE OF items as (tag, tlv_start, tlv_stop), ready for the typed readers that re-read the tag."""
    s, e = expect(buf, start, stop, TAG_SEQUENCE)
    items = []
    while s < e:
        tag = buf[s]  # tlv()'s short-form fast path inlined (etype lists, tickets' neighbours)
        n = buf[s + 1] if e - s >= 2 else 0x80
        if n < 0x80 and tag & 0x1F != 0x1F and s + 2 + n <= e:
            ce = s + 2 + n
        else:
            tag, _cs, ce = tlv(buf, s, e)
        items.append((tag, s, ce))
        s = ce
    return items


def _fill(r: Record, buf: bytes, f: Ranges, spec: tuple[tuple[int, str, Reader], ...]) -> None:
    """Decode each ``[tag] -> key`` of ``spec`` present in ``f``; a component that fails marks ``r`` partial."""
    for tag, key, reader in spec:
        rng = f.get(tag)
        if rng is not None:
            try:
                r[key] = reader(buf, rng[0], rng[1])
            except DECODE_ERRORS as exc:
                log.debug("field %s: %s", key, exc)
                r["partial"] = True


def _try(r: Record, fn: Callable[..., None], *args: object) -> None:
    """Run one decoding step; if it fails, mark ``r`` partial and carry on with the next step."""
    try:
        fn(*args)
    except DECODE_ERRORS as exc:
        log.debug("%s: %s", getattr(fn, "__name__", fn), exc)
        r["partial"] = True


# --- the messages ---


_BODY_REQUIRED: Final = frozenset({0, 2, 5, 7, 8})


def _kdc_req(r: Record, buf: bytes, f: Ranges, msg: int) -> None:
    """KDC-REQ (§5.4.1): [1] pvno, [2] msg-type, [3] padata, [4] req-body, numbered from 1."""
    r["fast"] = False
    rng = f.get(4)
    if rng is None:
        r["partial"] = True
    else:
        try:
            _req_body(r, buf, rng, msg)
        except DECODE_ERRORS as exc:
            _bad(r, "req-body", exc)
    rng = f.get(3)
    if rng is not None:
        try:
            apply_padata(r, buf, padata_entries(buf, *rng), msg)
        except DECODE_ERRORS as exc:
            _bad(r, "padata", exc)


def _bad(r: Record, what: str, exc: Exception) -> None:
    log.debug("%s: %s", what, exc)
    r["partial"] = True


def _req_body(r: Record, buf: bytes, rng: tuple[int, int], msg: int) -> None:
    """KDC-REQ-BODY (§5.4.1): [0] kdc-options [1] cname [2] realm [3] sname [4] from [5] till [6] rtime [7] nonce
    [8] etype [9] addresses [10] enc-authorization-data [11] additional-tickets.

    Written out component by component (no table of readers): this runs for every request, and each component
    still has its own guard, so one bad component marks the row partial and the others are kept."""
    # A req-body cut short (the last component of a truncated message) still gives the components before the cut.
    body, complete = fields_prefix(buf, *_outer(buf, *rng)[1:3])
    if not complete or not _BODY_REQUIRED <= body.keys():
        r["partial"] = True  # kdc-options, realm, till, nonce and etype are not OPTIONAL (RFC 4120 §5.4.1)
    get = body.get
    if (x := get(0)) is not None:
        try:
            r["kdc_options"] = flags(buf, x[0], x[1])
        except DECODE_ERRORS as exc:
            _bad(r, "kdc_options", exc)
    if (x := get(3)) is not None:
        try:
            r["service"] = principal(buf, x[0], x[1])
        except DECODE_ERRORS as exc:
            _bad(r, "service", exc)
    if (x := get(5)) is not None:
        try:
            r["till"] = gtime(buf, x[0], x[1])
        except DECODE_ERRORS as exc:
            _bad(r, "till", exc)
    if (x := get(6)) is not None:
        try:
            r["rtime"] = gtime(buf, x[0], x[1])
        except DECODE_ERRORS as exc:
            _bad(r, "rtime", exc)
    if (x := get(7)) is not None:
        try:
            r["nonce"] = uint32(buf, x[0], x[1])
        except DECODE_ERRORS as exc:
            _bad(r, "nonce", exc)
    if (x := get(8)) is not None:
        try:
            r["req_etypes"] = _ints(buf, x[0], x[1])
        except DECODE_ERRORS as exc:
            _bad(r, "req_etypes", exc)
    if (x := get(11)) is not None:
        try:
            r["additional_tickets"] = len(seq_items(buf, x[0], x[1])) or None  # an empty list says nothing
        except DECODE_ERRORS as exc:
            _bad(r, "additional_tickets", exc)
    if (x := get(2)) is not None:
        try:
            r["service_realm"] = text(buf, x[0], x[1])
        except DECODE_ERRORS as exc:
            _bad(r, "service_realm", exc)
    if msg == 10:
        r["client_realm"] = r["service_realm"]
        if (x := get(1)) is not None:
            try:
                r["client"] = principal(buf, x[0], x[1])
            except DECODE_ERRORS as exc:
                _bad(r, "client", exc)


def _padata_into(r: Record, buf: bytes, rng: tuple[int, int], msg: int) -> None:
    apply_padata(r, buf, padata_entries(buf, *rng), msg)


def _kdc_rep(r: Record, buf: bytes, f: Ranges, msg: int) -> None:
    """KDC-REP (§5.4.2): [2] padata, [3] crealm, [4] cname, [5] ticket, [6] enc-part."""
    r["fast"] = False
    _fill(r, buf, f, ((3, "client_realm", text), (4, "client", principal)))
    if 5 in f:
        _try(r, put_ticket, r, buf, f[5], True)
    if 6 in f:
        _try(r, put_etype, r, buf, f[6])
    if 2 in f:
        _try(r, _padata_into, r, buf, f[2], msg)
    if not (3 in f and 4 in f and 5 in f and 6 in f):
        r["partial"] = True


def _ap_req(r: Record, buf: bytes, f: Ranges, msg: int) -> None:
    """AP-REQ (§5.5.1): [2] ap-options, [3] ticket, [4] authenticator."""
    _fill(r, buf, f, ((2, "ap_options", flags),))
    if 3 in f:
        _try(r, put_ticket, r, buf, f[3], True)
    if 4 in f:
        _try(r, put_etype, r, buf, f[4])
    if not (2 in f and 3 in f and 4 in f):
        r["partial"] = True


def _enc_part_at(tag: int) -> Callable[[Record, bytes, Ranges, int], None]:
    """AP-REP (§5.5.2, enc-part [2]), KRB-PRIV (§5.7.1, enc-part [3]: there is no [2])."""

    def decode(r: Record, buf: bytes, f: Ranges, msg: int) -> None:
        if tag not in f:
            r["partial"] = True
            return
        put_etype(r, buf, f[tag])

    return decode


def _krb_safe(r: Record, buf: bytes, f: Ranges, msg: int) -> None:
    """KRB-SAFE (§5.6.1): [2] safe-body, [3] cksum; nothing encrypted and nothing the timeline shows."""
    if not (2 in f and 3 in f):
        r["partial"] = True


def _krb_cred(r: Record, buf: bytes, f: Ranges, msg: int) -> None:
    """KRB-CRED (§5.8.1): [2] tickets, [3] enc-part; the first ticket names what was forwarded."""
    if 2 in f:
        tickets = _tagged(buf, *f[2])
        if tickets:
            _try(r, put_ticket, r, buf, tickets[0][1:], False)
    if 3 in f:
        _try(r, put_etype, r, buf, f[3])
    if not (2 in f and 3 in f):
        r["partial"] = True


_ERROR_FIELDS: Final = (
    (6, "error_code", integer),
    (11, "e_text", text),
    (7, "client_realm", text),
    (8, "client", principal),
    (9, "service_realm", text),
    (10, "service", principal),
)


def _krb_error(r: Record, buf: bytes, f: Ranges, msg: int) -> None:
    """KRB-ERROR (§5.9.1): [2] ctime [3] cusec [4] stime [5] susec [6] error-code [7] crealm [8] cname [9] realm
    [10] sname [11] e-text [12] e-data."""
    r["fast"] = False
    _fill(r, buf, f, _ERROR_FIELDS)
    if r["error_code"] is not None:
        r["error_name"] = c.error_name(r["error_code"])  # type: ignore[arg-type]
    for key, t_tag, us_tag in (("stime", 4, 5), ("ctime", 2, 3)):
        if t_tag in f:
            try:
                value = gtime(buf, *f[t_tag])
                if us_tag in f:
                    usec = integer(buf, *f[us_tag])
                    if not 0 <= usec <= 999_999:
                        raise KrbDecodeError(f"microseconds {usec}")
                    value += usec
                r[key] = value
            except DECODE_ERRORS:
                r["partial"] = True
    if 12 in f:
        _try(r, e_data, r, buf, *f[12])
    if not (4 in f and 5 in f and 6 in f and 9 in f and 10 in f):
        r["partial"] = True


_DECODERS: Final[dict[int, Callable[[Record, bytes, Ranges, int], None]]] = {
    10: _kdc_req,
    12: _kdc_req,
    11: _kdc_rep,
    13: _kdc_rep,
    14: _ap_req,
    15: _enc_part_at(2),
    20: _krb_safe,
    21: _enc_part_at(3),
    22: _krb_cred,
    30: _krb_error,
}


def _outer(buf: bytes, pos: int, end: int) -> tuple[int, int, int, bool]:
    """Like :func:`tlv`, but a length running past ``end`` (a truncated frame, a synthetic test message) is cut
    to what is there: ``(tag, start, stop, whole?)``, so the fields before the cut still decode (partial)."""
    try:
        tag, s, e = tlv(buf, pos, end)
    except KrbDecodeError:
        if end - pos < 2 or buf[pos] & 0x1F == 0x1F:
            raise
        n = buf[pos + 1]
        k = 0 if n < 0x80 else n & 0x7F
        if n == 0x80 or k > 4 or end - pos - 2 < k:
            raise
        return buf[pos], pos + 2 + k, end, False
    return tag, s, e, True


def decode_message(data: bytes | bytearray | memoryview) -> dict[str, object]:
    """Decode one Kerberos message (AS/TGS-REQ/REP, AP-REQ/REP, KRB-ERROR, KRB-SAFE/PRIV/CRED).

    Returns a dict with every key of :data:`KEYS` (the KrbRecord fields: msg_type, phase, error_code, error_name,
    e_text, nt_status, client, client_realm, service, service_realm, nonce, kdc_options, req_etypes, etype,
    ticket_etype, ticket_kvno, pa_types, preauth_type, till, rtime, stime, ctime, salts, salt_etypes, fast, partial,
    ticket_realm, ticket_service, ap_options, pac_request, s4u_user, additional_tickets, kpasswd_result); ``None``
    where the message says nothing. Times are microseconds since the epoch, lists are tuples. ``partial`` is True
    when the message was recognised (outer [APPLICATION n] and a matching msg-type) but some part failed to decode.
    Bytes after the message are ignored. Raises :class:`KrbDecodeError` when nothing is recognisable.
    """
    buf = data if type(data) is bytes else bytes(data)
    tag, s, e, whole = _outer(buf, 0, len(buf))
    msg = APP_TAGS.get(tag)
    if msg is None:
        raise KrbDecodeError(f"not a Kerberos message: first octet 0x{buf[0]:02x}")
    try:
        _seq, ss, se, whole_seq = _outer(buf, s, e)
        if _seq != TAG_SEQUENCE:
            raise KrbDecodeError(f"tag 0x{_seq:02x} where the message SEQUENCE was expected")
        f, complete = fields_prefix(buf, ss, se)
        complete = complete and whole and whole_seq
        inner = integer(buf, *f[2 if msg in _KDC_REQ else 1])
    except DECODE_ERRORS as exc:
        raise KrbDecodeError(f"[APPLICATION {msg}] without a readable msg-type: {exc}") from None
    if inner != msg:
        raise KrbDecodeError(f"msg-type {inner} inside [APPLICATION {msg}]")
    r = _TEMPLATE.copy()
    name = c.MSG_TYPES[msg]
    r["msg_type"] = name
    r["phase"] = c.MSG_PHASE.get(name)
    r["partial"] = not complete
    try:
        _DECODERS[msg](r, buf, f, msg)
    except DECODE_ERRORS as exc:
        log.debug("%s partly decoded: %s", name, exc)
        r["partial"] = True
    return r
