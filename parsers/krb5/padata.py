"""PA-DATA, e-data and the shared pieces of the message reader (RFC 4120 §5.2.7, §5.2.9, §5.3, §5.9.1; MS-KILE
§2.2.1-2; MS-SFU §2.2.1-2; RFC 6113 §5.4.2).

Split from :mod:`parsers.krb5.messages`: what a request's, a reply's or an error's PA-DATA reveals (the TGT of a
PA-TGS-REQ, the FAST armour ticket, PAC request, S4U user, ETYPE-INFO2 salts, the Windows extended error), plus the
EncryptedData and Ticket readers both modules use. Everything here raises only what :data:`DECODE_ERRORS` lists;
the callers turn that into ``partial``.
"""

from __future__ import annotations

import logging
import struct
from typing import Final

from ..memo import Memo
from . import constants as c
from .der import (
    TAG_INTEGER,
    TAG_SEQUENCE,
    KrbDecodeError,
    boolean,
    decode_text,
    expect,
    fields,
    integer,
    octets,
    principal,
    seq_items,
    text,
    tlv,
    uint32,
)

log = logging.getLogger(__name__)

__all__ = ["DECODE_ERRORS", "apply_padata", "e_data", "encdata", "padata_entries", "put_etype", "put_ticket"]

#: Everything a reader may raise on hostile bytes (KrbDecodeError and UnicodeDecodeError are ValueErrors).
DECODE_ERRORS: Final = (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error)

Record = dict[str, object]
Ranges = dict[int, tuple[int, int]]


def _element(buf: bytes, p: int, e: int, tag: int) -> int:
    """End of the element carrying ``tag`` (short, 0x81 or 0x82 length form) at ``p`` if it fits in ``e``, else -1."""
    if e - p < 2 or buf[p] != tag:
        return -1
    n = buf[p + 1]
    if n < 0x80:
        q = p + 2 + n
    elif n == 0x81 and e - p >= 3:
        q = p + 3 + buf[p + 2]
    elif n == 0x82 and e - p >= 4:
        q = p + 4 + (buf[p + 2] << 8 | buf[p + 3])
    else:
        return -1
    return q if q <= e else -1


def encdata(buf: bytes, start: int, stop: int) -> tuple[int, int | None]:
    """EncryptedData (RFC 4120 §5.2.9) -> (etype, kvno or None)."""
    s, e = expect(buf, start, stop, TAG_SEQUENCE)
    # Fast path for the usual layout, [0] one-octet etype, optional short [1] kvno, then [2] cipher ending the
    # SEQUENCE: it gives what fields() gives for that layout; any other layout takes the general path below.
    if e - s >= 7 and buf[s] == 0xA0 and buf[s + 1] == 3 and buf[s + 2] == TAG_INTEGER and buf[s + 3] == 1:
        p = s + 5
        kvno = None
        if buf[p] == 0xA1 and buf[p + 1] < 0x80 and p + 2 + buf[p + 1] <= e:
            q = p + 2 + buf[p + 1]
            kvno = uint32(buf, p + 2, q)
            p = q
        if _element(buf, p, e, 0xA2) == e:
            v = buf[s + 4]
            return (v - 256 if v & 0x80 else v), kvno
    f = fields(buf, s, e)
    kvno = f.get(1)
    return integer(buf, *f[0]), None if kvno is None else uint32(buf, *kvno)


def _ticket(buf: bytes, start: int, stop: int) -> tuple[str, str, int, int | None]:
    """Ticket (RFC 4120 §5.3, [APPLICATION 1]) -> (realm, sname, enc-part etype, kvno)."""
    s, e = expect(buf, *expect(buf, start, stop, 0x61), TAG_SEQUENCE)
    # Fast path: [0] [1] [2] [3] once each, in order, nothing after (every encoder's layout); the ranges are those
    # fields() gives for it. Each header's own length decides where the next one starts, as in fields().
    p1 = _element(buf, s, e, 0xA0)
    p2 = _element(buf, p1, e, 0xA1) if p1 > 0 else -1
    p3 = _element(buf, p2, e, 0xA2) if p2 > 0 else -1
    if p3 > 0 and _element(buf, p3, e, 0xA3) == e:
        n = buf[p3 + 1]
        etype, kvno = encdata(buf, p3 + (2 if n < 0x80 else 3 if n == 0x81 else 4), e)
        n1, n2 = buf[p1 + 1], buf[p2 + 1]
        realm = text(buf, p1 + (2 if n1 < 0x80 else 3 if n1 == 0x81 else 4), p2)
        return realm, principal(buf, p2 + (2 if n2 < 0x80 else 3 if n2 == 0x81 else 4), p3), etype, kvno
    f = fields(buf, s, e)
    etype, kvno = encdata(buf, *f[3])
    return text(buf, *f[1]), principal(buf, *f[2]), etype, kvno


def put_ticket(r: Record, buf: bytes, rng: tuple[int, int], service_too: bool) -> None:
    realm, sname, etype, kvno = _ticket(buf, *rng)
    r["ticket_realm"], r["ticket_service"], r["ticket_etype"], r["ticket_kvno"] = realm, sname, etype, kvno
    if service_too:
        r["service"], r["service_realm"] = sname, realm


def put_etype(r: Record, buf: bytes, rng: tuple[int, int]) -> None:
    r["etype"] = encdata(buf, *rng)[0]


def ap_req_parts(buf: bytes, start: int, stop: int) -> Ranges:
    """The components of an AP-REQ ([APPLICATION 14]) whose TLV spans ``[start, stop)``."""
    return fields(buf, *expect(buf, *expect(buf, start, stop, 0x6E), TAG_SEQUENCE))


# --- PA-DATA and e-data (RFC 4120 §5.2.7, MS-KILE §2.2, MS-SFU §2.2, RFC 6113 §5.4.2) ---


def padata_entries(buf: bytes, start: int, stop: int) -> list[tuple[int, int, int]]:
    """SEQUENCE OF PA-DATA -> [(padata-type, value_start, value_stop)]. PA-DATA tags start at [1]."""
    out = []
    p, end = expect(buf, start, stop, TAG_SEQUENCE)
    while p < end:  # seq_items() inlined: one list fewer per message
        tag, s, e = tlv(buf, p, end)
        p = e
        if tag != TAG_SEQUENCE:
            raise KrbDecodeError(f"PA-DATA with tag 0x{tag:02x}")
        # Fast path for the shape every encoder sends: exactly [1] (short form) then [2] ending the entry. Its
        # result is the one fields() gives for that shape; any other shape takes the general path below.
        if e - s >= 4 and buf[s] == 0xA1 and buf[s + 1] < 0x80:
            a = s + 2 + buf[s + 1]
            if a + 2 <= e and buf[a] == 0xA2:
                n = buf[a + 1]
                cs = a + 2 if n < 0x80 else a + 3 if n == 0x81 else a + 4 if n == 0x82 else 0
                if (
                    cs
                    and cs <= e
                    and cs + (n if n < 0x80 else buf[a + 2] if n == 0x81 else buf[a + 2] << 8 | buf[a + 3]) == e
                ):
                    vs, ve = octets(buf, cs, e)
                    out.append((integer(buf, s + 2, a), vs, ve))
                    continue
        f = fields(buf, s, e)
        vs, ve = octets(buf, *f[2]) if 2 in f else (s, s)
        out.append((integer(buf, *f[1]), vs, ve))
    return out


#: ETYPE-INFO(2) values by their encoding: a KDC sends a principal the same salts every time.
_ETYPE_INFO = Memo()
_MEMO_KEY_MAX: Final = 512  # longer encodings are decoded every time, so the memo stays small on hostile input


def _etype_info(buf: bytes, start: int, stop: int) -> tuple[tuple[str | None, ...], tuple[int, ...]]:
    """ETYPE-INFO2 or ETYPE-INFO entries -> (salts, etypes), remembered by their octets when short."""
    return _ETYPE_INFO.span(buf, start, stop, _read_etype_info, _MEMO_KEY_MAX)


def _read_etype_info(buf: bytes, start: int, stop: int) -> tuple[tuple[str | None, ...], tuple[int, ...]]:
    """ETYPE-INFO2 or ETYPE-INFO entries -> (salts, etypes); an entry without salt gives ``None``."""
    salts: list[str | None] = []
    etypes: list[int] = []
    for tag, s, e in seq_items(buf, start, stop):
        if tag != TAG_SEQUENCE:
            raise KrbDecodeError(f"ETYPE-INFO entry with tag 0x{tag:02x}")
        f = fields(buf, s, e)
        etypes.append(integer(buf, *f[0]))
        salts.append(text(buf, *f[1]) if 1 in f else None)
    return tuple(salts), tuple(etypes)


def _kerb_ext_error(raw: bytes) -> int | None:
    """NTSTATUS of a KERB-EXT-ERROR (MS-KILE §2.2.1: status, reserved, flags, all little-endian)."""
    if len(raw) < 4:
        raise KrbDecodeError(f"KERB-EXT-ERROR of {len(raw)} octets")
    return int(struct.unpack_from("<I", raw)[0])


def _looks_ext_error(raw: bytes) -> bool:
    """Windows puts KERB-EXT-ERROR into a PA-PW-SALT (3) entry of an error's METHOD-DATA; Wireshark recognises it
    by shape (12 octets, reserved 0, flags 0 or 1), and so do we: a real PW-SALT is the realm+name text."""
    if len(raw) != 12:
        return False
    _status, reserved, flag_bits = struct.unpack("<III", raw)
    return reserved == 0 and flag_bits & 0xFFFFFFFE == 0


def _pa_for_user(buf: bytes, start: int, stop: int) -> str:
    """PA-FOR-USER (MS-SFU §2.2.1): userName [0], userRealm [1] -> ``name@realm``."""
    f = fields(buf, *expect(buf, start, stop, TAG_SEQUENCE))
    return f"{principal(buf, *f[0])}@{text(buf, *f[1])}"


def _pa_s4u_x509_user(buf: bytes, start: int, stop: int) -> str:
    """PA-S4U-X509-USER (MS-SFU §2.2.2): user-id [0] S4UUserID { cname [1] OPTIONAL, crealm [2] }."""
    f = fields(buf, *expect(buf, start, stop, TAG_SEQUENCE))
    u = fields(buf, *expect(buf, *f[0], TAG_SEQUENCE))
    realm = text(buf, *u[2])
    return f"{principal(buf, *u[1])}@{realm}" if 1 in u else f"@{realm}"


def _fast_armor_ticket(buf: bytes, start: int, stop: int) -> tuple[int, int] | None:
    """The armour AP-REQ's ticket range inside PA-FX-FAST-REQUEST (RFC 6113 §5.4.2), if any.

    PA-FX-FAST-REQUEST ::= CHOICE { armored-data [0] KrbFastArmoredReq { armor [0] KrbFastArmor OPTIONAL, ... } };
    KrbFastArmor { armor-type [0] (1 = AP-REQ), armor-value [1] OCTET STRING }.
    """
    choice, cs, ce = tlv(buf, start, stop)
    if choice != 0xA0:
        return None
    req = fields(buf, *expect(buf, cs, ce, TAG_SEQUENCE))
    if 0 not in req:
        return None
    armor = fields(buf, *expect(buf, *req[0], TAG_SEQUENCE))
    if integer(buf, *armor[0]) != 1:
        return None
    vs, ve = octets(buf, *armor[1])
    return ap_req_parts(buf, vs, ve).get(3)


#: The padata-types apply_padata() reads something from.
_HANDLED: Final = frozenset(
    {
        c.PA_TGS_REQ,
        c.PA_ENC_TIMESTAMP,
        c.PA_PAC_REQUEST,
        c.PA_FOR_USER,
        c.PA_FOR_X509_USER,
        c.PA_FX_FAST,
        c.PA_ETYPE_INFO2,
        c.PA_ETYPE_INFO,
        c.PA_PW_SALT,
    }
)


def apply_padata(r: Record, buf: bytes, pas: list[tuple[int, int, int]], msg: int) -> None:
    """Fill what the PA-DATA entries of a request, reply or error's METHOD-DATA reveal."""
    # An empty PA-FX-FAST is only an advertisement (MIT lists it in every PREAUTH_REQUIRED METHOD-DATA); FAST is in
    # use when the entry carries an armoured request or an armoured reply (RFC 6113 §5.4.2, §5.4.3).
    fast = False
    seen = []
    for t, vs, ve in pas:  # plain loops, not generator expressions: this runs for most messages
        seen.append(t)
        if t == c.PA_FX_FAST and ve > vs:
            fast = True
    r["pa_types"] = types = tuple(seen)
    r["fast"] = fast
    if msg == 10:
        r["preauth_type"] = None
        for t in c.PREAUTH_TYPES:
            if t in types:
                r["preauth_type"] = t
                break
    salt_kind = 0
    for ptype, vs, ve in pas:
        if ptype not in _HANDLED:
            continue  # most entries (FX-COOKIE, REQ-ENC-PA-REP, PAC-OPTIONS, ...): no need to walk the chain below
        try:
            if ptype == c.PA_TGS_REQ and msg == 12:
                ap = ap_req_parts(buf, vs, ve)
                put_ticket(r, buf, ap[3], service_too=False)
                r["etype"] = encdata(buf, *ap[4])[0]
            elif ptype == c.PA_ENC_TIMESTAMP and msg == 10 and ve > vs:
                r["etype"] = encdata(buf, vs, ve)[0]
            elif ptype == c.PA_PAC_REQUEST and ve > vs:
                r["pac_request"] = boolean(buf, *fields(buf, *expect(buf, vs, ve, TAG_SEQUENCE))[0])
            elif ptype == c.PA_FOR_USER and ve > vs:
                r["s4u_user"] = _pa_for_user(buf, vs, ve)
            elif ptype == c.PA_FOR_X509_USER and ve > vs and r["s4u_user"] is None:
                r["s4u_user"] = _pa_s4u_x509_user(buf, vs, ve)
            elif ptype == c.PA_FX_FAST and msg in (10, 12) and ve > vs and r["ticket_realm"] is None:
                # The armour TGT of a FAST AS-REQ names the machine that armoured it (RFC 6113 §5.4.1.1).
                rng = _fast_armor_ticket(buf, vs, ve)
                if rng is not None:
                    put_ticket(r, buf, rng, service_too=False)
            elif ptype == c.PA_ETYPE_INFO2 and salt_kind < 3:
                r["salts"], r["salt_etypes"] = _etype_info(buf, vs, ve)
                salt_kind = 3
            elif ptype == c.PA_ETYPE_INFO and salt_kind < 2:
                r["salts"], r["salt_etypes"] = _etype_info(buf, vs, ve)
                salt_kind = 2
            elif ptype == c.PA_PW_SALT:
                raw = buf[vs:ve]
                if msg == 30 and _looks_ext_error(raw):
                    r["nt_status"] = _kerb_ext_error(raw)
                elif salt_kind < 1:
                    # PW-SALT (RFC 4120 §5.2.7.3) carries no etype, so salt_etypes stays unknown.
                    r["salts"], r["salt_etypes"] = (decode_text(raw),), None
                    salt_kind = 1
        except DECODE_ERRORS as exc:
            log.debug("padata %s: %s", ptype, exc)
            r["partial"] = True


def e_data(r: Record, buf: bytes, start: int, stop: int) -> None:
    """KRB-ERROR e-data, told apart BY STRUCTURE (never by error code: MIT sends METHOD-DATA with any code when the
    client used FAST): METHOD-DATA = SEQUENCE OF PA-DATA {[1], [2]}; TYPED-DATA = SEQUENCE OF {[0], [1]};
    KERB-ERROR-DATA = SEQUENCE {data-type [1], data-value [2]}. Anything that is not a SEQUENCE (kpasswd's result
    code, RFC 3244 §2) is left to the kpasswd decoder."""
    s, e = octets(buf, start, stop)
    if e == s or buf[s] != TAG_SEQUENCE:
        return
    cs, ce = expect(buf, s, e, TAG_SEQUENCE)
    if ce == cs:
        r["pa_types"] = ()
        return
    first = buf[cs]
    if first == TAG_SEQUENCE:
        _tag, is_, ie = tlv(buf, cs, ce)
        if is_ < ie and buf[is_] == 0xA0:
            return  # TYPED-DATA (PKINIT TD-* hints): nothing for the timeline
        apply_padata(r, buf, padata_entries(buf, s, e), 30)
    elif first == 0xA1:
        f = fields(buf, cs, ce)
        dtype = integer(buf, *f[1])
        if dtype == 3 and 2 in f:  # KERB_ERR_TYPE_EXTENDED
            vs, ve = octets(buf, *f[2])
            r["nt_status"] = _kerb_ext_error(buf[vs:ve])
    else:
        raise KrbDecodeError(f"e-data starting 30 {first:02x}")
