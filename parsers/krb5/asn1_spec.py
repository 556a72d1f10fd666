"""The RFC 4120 ASN.1 module (§5, Appendix A) as pyasn1 types, plus the PA-DATA and e-data types a trace meets:
ETYPE-INFO/ETYPE-INFO2 (§5.2.7.4-5), KERB-PA-PAC-REQUEST, PA-PAC-OPTIONS and KERB-ERROR-DATA (MS-KILE §2.2),
PA-FOR-USER and PA-S4U-X509-USER (MS-SFU §2.2.1-2), PA-FX-FAST request/reply (RFC 6113 §5.4.2-3), TYPED-DATA
(§5.9.1). Component names are the RFC's. The module's default tagging is EXPLICIT; KDC-REQ and PA-DATA number
their components from [1]. Extension markers (``...``) are left out: pyasn1 has no use for them when decoding.

Used by :mod:`parsers.krb5.asn1` (the complete decoder); nothing on the timeline's hot path imports it.
"""

from __future__ import annotations

from typing import Any, Final

from pyasn1.type import char, namedtype, tag, univ, useful

__all__ = ["MESSAGES", "PA_SPECS"]


def _x(n: int, t: Any) -> Any:
    """``[n]`` EXPLICIT (RFC 4120 §5: the module's default tagging)."""
    return t.subtype(explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatSimple, n))


def _req(name: str, n: int, t: Any) -> namedtype.NamedType:
    return namedtype.NamedType(name, _x(n, t))


def _opt(name: str, n: int, t: Any) -> namedtype.OptionalNamedType:
    return namedtype.OptionalNamedType(name, _x(n, t))


def _app(n: int) -> tag.TagSet:
    return univ.Sequence.tagSet.tagExplicitly(tag.Tag(tag.tagClassApplication, tag.tagFormatConstructed, n))


class KerberosString(char.GeneralString):
    pass


class KerberosTime(useful.GeneralizedTime):
    pass


class PrincipalName(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("name-type", 0, univ.Integer()),
        _req("name-string", 1, univ.SequenceOf(componentType=KerberosString())),
    )


class EncryptedData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("etype", 0, univ.Integer()),
        _opt("kvno", 1, univ.Integer()),
        _req("cipher", 2, univ.OctetString()),
    )


class Checksum(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("cksumtype", 0, univ.Integer()), _req("checksum", 1, univ.OctetString()))


class HostAddress(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("addr-type", 0, univ.Integer()), _req("address", 1, univ.OctetString()))


class PAData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("padata-type", 1, univ.Integer()), _req("padata-value", 2, univ.OctetString())
    )


class MethodData(univ.SequenceOf):
    componentType = PAData()


class Ticket(univ.Sequence):
    tagSet = _app(1)
    componentType = namedtype.NamedTypes(
        _req("tkt-vno", 0, univ.Integer()),
        _req("realm", 1, KerberosString()),
        _req("sname", 2, PrincipalName()),
        _req("enc-part", 3, EncryptedData()),
    )


class KdcReqBody(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("kdc-options", 0, univ.BitString()),
        _opt("cname", 1, PrincipalName()),
        _req("realm", 2, KerberosString()),
        _opt("sname", 3, PrincipalName()),
        _opt("from", 4, KerberosTime()),
        _req("till", 5, KerberosTime()),
        _opt("rtime", 6, KerberosTime()),
        _req("nonce", 7, univ.Integer()),
        _req("etype", 8, univ.SequenceOf(componentType=univ.Integer())),
        _opt("addresses", 9, univ.SequenceOf(componentType=HostAddress())),
        _opt("enc-authorization-data", 10, EncryptedData()),
        _opt("additional-tickets", 11, univ.SequenceOf(componentType=Ticket())),
    )


def _kdc_req(n: int) -> type[univ.Sequence]:
    class KdcReq(univ.Sequence):
        tagSet = _app(n)
        componentType = namedtype.NamedTypes(
            _req("pvno", 1, univ.Integer()),
            _req("msg-type", 2, univ.Integer()),
            _opt("padata", 3, MethodData()),
            _req("req-body", 4, KdcReqBody()),
        )

    return KdcReq


def _kdc_rep(n: int) -> type[univ.Sequence]:
    class KdcRep(univ.Sequence):
        tagSet = _app(n)
        componentType = namedtype.NamedTypes(
            _req("pvno", 0, univ.Integer()),
            _req("msg-type", 1, univ.Integer()),
            _opt("padata", 2, MethodData()),
            _req("crealm", 3, KerberosString()),
            _req("cname", 4, PrincipalName()),
            _req("ticket", 5, Ticket()),
            _req("enc-part", 6, EncryptedData()),
        )

    return KdcRep


class ApReq(univ.Sequence):
    tagSet = _app(14)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()),
        _req("msg-type", 1, univ.Integer()),
        _req("ap-options", 2, univ.BitString()),
        _req("ticket", 3, Ticket()),
        _req("authenticator", 4, EncryptedData()),
    )


class ApRep(univ.Sequence):
    tagSet = _app(15)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()), _req("msg-type", 1, univ.Integer()), _req("enc-part", 2, EncryptedData())
    )


class KrbSafeBody(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("user-data", 0, univ.OctetString()),
        _opt("timestamp", 1, KerberosTime()),
        _opt("usec", 2, univ.Integer()),
        _opt("seq-number", 3, univ.Integer()),
        _req("s-address", 4, HostAddress()),
        _opt("r-address", 5, HostAddress()),
    )


class KrbSafe(univ.Sequence):
    tagSet = _app(20)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()),
        _req("msg-type", 1, univ.Integer()),
        _req("safe-body", 2, KrbSafeBody()),
        _req("cksum", 3, Checksum()),
    )


class KrbPriv(univ.Sequence):
    tagSet = _app(21)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()), _req("msg-type", 1, univ.Integer()), _req("enc-part", 3, EncryptedData())
    )


class KrbCred(univ.Sequence):
    tagSet = _app(22)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()),
        _req("msg-type", 1, univ.Integer()),
        _req("tickets", 2, univ.SequenceOf(componentType=Ticket())),
        _req("enc-part", 3, EncryptedData()),
    )


class KrbError(univ.Sequence):
    tagSet = _app(30)
    componentType = namedtype.NamedTypes(
        _req("pvno", 0, univ.Integer()),
        _req("msg-type", 1, univ.Integer()),
        _opt("ctime", 2, KerberosTime()),
        _opt("cusec", 3, univ.Integer()),
        _req("stime", 4, KerberosTime()),
        _req("susec", 5, univ.Integer()),
        _req("error-code", 6, univ.Integer()),
        _opt("crealm", 7, KerberosString()),
        _opt("cname", 8, PrincipalName()),
        _req("realm", 9, KerberosString()),
        _req("sname", 10, PrincipalName()),
        _opt("e-text", 11, KerberosString()),
        _opt("e-data", 12, univ.OctetString()),
    )


# --- PA-DATA values and e-data ---


class EtypeInfo2Entry(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("etype", 0, univ.Integer()), _opt("salt", 1, KerberosString()), _opt("s2kparams", 2, univ.OctetString())
    )


class EtypeInfoEntry(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("etype", 0, univ.Integer()), _opt("salt", 1, univ.OctetString()))


class PacRequest(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("include-pac", 0, univ.Boolean()))


class PaForUser(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("userName", 0, PrincipalName()),
        _req("userRealm", 1, KerberosString()),
        _req("cksum", 2, Checksum()),
        _req("auth-package", 3, KerberosString()),
    )


class S4UUserId(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("nonce", 0, univ.Integer()),
        _opt("cname", 1, PrincipalName()),
        _req("crealm", 2, KerberosString()),
        _opt("subject-certificate", 3, univ.OctetString()),
        _opt("options", 4, univ.BitString()),
    )


class PaS4UX509User(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("user-id", 0, S4UUserId()), _req("checksum", 1, Checksum()))


class KrbFastArmor(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("armor-type", 0, univ.Integer()), _req("armor-value", 1, univ.OctetString())
    )


class KrbFastArmoredReq(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _opt("armor", 0, KrbFastArmor()), _req("req-checksum", 1, Checksum()), _req("enc-fast-req", 2, EncryptedData())
    )


class KrbFastArmoredRep(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("enc-fast-rep", 0, EncryptedData()))


class PaFxFastRequest(univ.Choice):
    componentType = namedtype.NamedTypes(_req("armored-data", 0, KrbFastArmoredReq()))


class PaFxFastReply(univ.Choice):
    componentType = namedtype.NamedTypes(_req("armored-data", 0, KrbFastArmoredRep()))


class PacOptions(univ.Sequence):
    componentType = namedtype.NamedTypes(_req("options", 0, univ.BitString()))


class TypedDataEntry(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("data-type", 0, univ.Integer()), _opt("data-value", 1, univ.OctetString())
    )


class KerbErrorData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        _req("data-type", 1, univ.Integer()), _opt("data-value", 2, univ.OctetString())
    )


#: msg-type -> (name, spec). The application tag of the first octet selects it.
MESSAGES: Final[dict[int, tuple[str, Any]]] = {
    10: ("AS-REQ", _kdc_req(10)),
    11: ("AS-REP", _kdc_rep(11)),
    12: ("TGS-REQ", _kdc_req(12)),
    13: ("TGS-REP", _kdc_rep(13)),
    14: ("AP-REQ", ApReq),
    15: ("AP-REP", ApRep),
    20: ("KRB-SAFE", KrbSafe),
    21: ("KRB-PRIV", KrbPriv),
    22: ("KRB-CRED", KrbCred),
    30: ("KRB-ERROR", KrbError),
}


#: padata-type -> the spec of its padata-value (1, 3 and 136 depend on context: see asn1._pa_value).
PA_SPECS: Final[dict[int, Any]] = {
    2: EncryptedData(),
    11: univ.SequenceOf(componentType=EtypeInfoEntry()),
    19: univ.SequenceOf(componentType=EtypeInfo2Entry()),
    128: PacRequest(),
    129: PaForUser(),
    130: PaS4UX509User(),
    167: PacOptions(),
}
