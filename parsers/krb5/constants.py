"""Kerberos constant tables: message types, error codes, PA-DATA types, etypes, name types, option bits, NTSTATUS.

Sources: RFC 4120 §5, §7.5 (core registries), RFC 4556 (PKINIT), RFC 6113 (FAST), RFC 8636, RFC 3244 (kpasswd),
MS-KILE §2.2, MS-SFU §2.2, MS-ERREF (NTSTATUS). Every table keeps both the number and the name, as Zeek's
``consts.zeek`` does, so a report can show either.
"""

from __future__ import annotations

from typing import Final

#: RFC 4120 §5.10: msg-type number -> krbtrace message name (also the DER APPLICATION tag number).
MSG_TYPES: Final[dict[int, str]] = {
    10: "AS-REQ",
    11: "AS-REP",
    12: "TGS-REQ",
    13: "TGS-REP",
    14: "AP-REQ",
    15: "AP-REP",
    20: "KRB-SAFE",
    21: "KRB-PRIV",
    22: "KRB-CRED",
    30: "KRB-ERROR",
}

#: The phase a message type belongs to when it travels on its own (KRB-ERROR depends on what it answers).
MSG_PHASE: Final[dict[str, str]] = {
    "AS-REQ": "AS",
    "AS-REP": "AS",
    "TGS-REQ": "TGS",
    "TGS-REP": "TGS",
    "AP-REQ": "AP",
    "AP-REP": "AP",
    "KPASSWD-REQ": "KPASSWD",
    "KPASSWD-REP": "KPASSWD",
}

#: RFC 4120 §7.5.9, RFC 4556 §3.1.3, RFC 6113 §5.4.3, RFC 8636, MS-KILE: error-code -> name.
ERROR_NAMES: Final[dict[int, str]] = {
    0: "KDC_ERR_NONE",
    1: "KDC_ERR_NAME_EXP",
    2: "KDC_ERR_SERVICE_EXP",
    3: "KDC_ERR_BAD_PVNO",
    4: "KDC_ERR_C_OLD_MAST_KVNO",
    5: "KDC_ERR_S_OLD_MAST_KVNO",
    6: "KDC_ERR_C_PRINCIPAL_UNKNOWN",
    7: "KDC_ERR_S_PRINCIPAL_UNKNOWN",
    8: "KDC_ERR_PRINCIPAL_NOT_UNIQUE",
    9: "KDC_ERR_NULL_KEY",
    10: "KDC_ERR_CANNOT_POSTDATE",
    11: "KDC_ERR_NEVER_VALID",
    12: "KDC_ERR_POLICY",
    13: "KDC_ERR_BADOPTION",
    14: "KDC_ERR_ETYPE_NOSUPP",
    15: "KDC_ERR_SUMTYPE_NOSUPP",
    16: "KDC_ERR_PADATA_TYPE_NOSUPP",
    17: "KDC_ERR_TRTYPE_NOSUPP",
    18: "KDC_ERR_CLIENT_REVOKED",
    19: "KDC_ERR_SERVICE_REVOKED",
    20: "KDC_ERR_TGT_REVOKED",
    21: "KDC_ERR_CLIENT_NOTYET",
    22: "KDC_ERR_SERVICE_NOTYET",
    23: "KDC_ERR_KEY_EXPIRED",
    24: "KDC_ERR_PREAUTH_FAILED",
    25: "KDC_ERR_PREAUTH_REQUIRED",
    26: "KDC_ERR_SERVER_NOMATCH",
    27: "KDC_ERR_MUST_USE_USER2USER",
    28: "KDC_ERR_PATH_NOT_ACCEPTED",
    29: "KDC_ERR_SVC_UNAVAILABLE",
    31: "KRB_AP_ERR_BAD_INTEGRITY",
    32: "KRB_AP_ERR_TKT_EXPIRED",
    33: "KRB_AP_ERR_TKT_NYV",
    34: "KRB_AP_ERR_REPEAT",
    35: "KRB_AP_ERR_NOT_US",
    36: "KRB_AP_ERR_BADMATCH",
    37: "KRB_AP_ERR_SKEW",
    38: "KRB_AP_ERR_BADADDR",
    39: "KRB_AP_ERR_BADVERSION",
    40: "KRB_AP_ERR_MSG_TYPE",
    41: "KRB_AP_ERR_MODIFIED",
    42: "KRB_AP_ERR_BADORDER",
    43: "KRB_AP_ERR_ILL_CR_TKT",
    44: "KRB_AP_ERR_BADKEYVER",
    45: "KRB_AP_ERR_NOKEY",
    46: "KRB_AP_ERR_MUT_FAIL",
    47: "KRB_AP_ERR_BADDIRECTION",
    48: "KRB_AP_ERR_METHOD",
    49: "KRB_AP_ERR_BADSEQ",
    50: "KRB_AP_ERR_INAPP_CKSUM",
    51: "KRB_AP_PATH_NOT_ACCEPTED",
    52: "KRB_ERR_RESPONSE_TOO_BIG",
    60: "KRB_ERR_GENERIC",
    61: "KRB_ERR_FIELD_TOOLONG",
    62: "KDC_ERROR_CLIENT_NOT_TRUSTED",
    63: "KDC_ERROR_KDC_NOT_TRUSTED",
    64: "KDC_ERROR_INVALID_SIG",
    65: "KDC_ERR_KEY_TOO_WEAK",
    66: "KDC_ERR_CERTIFICATE_MISMATCH",
    67: "KRB_AP_ERR_NO_TGT",
    68: "KDC_ERR_WRONG_REALM",
    69: "KRB_AP_ERR_USER_TO_USER_REQUIRED",
    70: "KDC_ERR_CANT_VERIFY_CERTIFICATE",
    71: "KDC_ERR_INVALID_CERTIFICATE",
    72: "KDC_ERR_REVOKED_CERTIFICATE",
    73: "KDC_ERR_REVOCATION_STATUS_UNKNOWN",
    74: "KDC_ERR_REVOCATION_STATUS_UNAVAILABLE",
    75: "KDC_ERR_CLIENT_NAME_MISMATCH",
    76: "KDC_ERR_KDC_NAME_MISMATCH",
    77: "KDC_ERR_INCONSISTENT_KEY_PURPOSE",
    78: "KDC_ERR_DIGEST_IN_CERT_NOT_ACCEPTED",
    79: "KDC_ERR_PA_CHECKSUM_MUST_BE_INCLUDED",
    80: "KDC_ERR_DIGEST_IN_SIGNED_DATA_NOT_ACCEPTED",
    81: "KDC_ERR_PUBLIC_KEY_ENCRYPTION_NOT_SUPPORTED",
    85: "KRB_AP_ERR_IAKERB_KDC_NOT_FOUND",
    86: "KRB_AP_ERR_IAKERB_KDC_NO_RESPONSE",
    90: "KDC_ERR_PREAUTH_EXPIRED",
    91: "KDC_ERR_MORE_PREAUTH_DATA_REQUIRED",
    92: "KDC_ERR_PREAUTH_BAD_AUTHENTICATION_SET",
    93: "KDC_ERR_UNKNOWN_CRITICAL_FAST_OPTIONS",
    100: "KDC_ERR_NO_ACCEPTABLE_KDF",
}

#: One-line meaning of each error code, for reports when no specific diagnosis applies (RFC 4120 §7.5.9 wording,
#: MS-KILE and Microsoft's event documentation for the Windows causes).
ERROR_MEANINGS: Final[dict[int, str]] = {
    1: "client's entry in the database has expired",
    2: "server's entry in the database has expired",
    3: "requested protocol version number not supported",
    4: "client's key encrypted in an old master key",
    5: "server's key encrypted in an old master key",
    6: "client not found in the Kerberos database",
    7: "server (SPN) not found in the Kerberos database",
    8: "multiple principal entries in the database (duplicate SPN)",
    9: "the client or server has a null key (reset the password)",
    10: "ticket not eligible for postdating",
    11: "requested start time is later than end time (usually a clock problem)",
    12: "KDC policy rejects the request (logon restrictions, authentication policy)",
    13: "KDC cannot accommodate the requested option",
    14: "KDC has no support for the encryption type",
    15: "KDC has no support for the checksum type",
    16: "KDC has no support for the pre-authentication data type",
    17: "KDC has no support for the transited type",
    18: "client's credentials have been revoked (disabled, expired or locked-out account)",
    19: "credentials for the server have been revoked",
    20: "TGT has been revoked",
    21: "client not yet valid; try again later",
    22: "server not yet valid; try again later",
    23: "password has expired; change the password to reset",
    24: "pre-authentication information was invalid (wrong password)",
    25: "additional pre-authentication required (normal first step of a password logon)",
    26: "requested server and ticket don't match",
    27: "server principal valid for user-to-user only",
    28: "KDC policy rejects the transited path",
    29: "a service is not available",
    31: "integrity check on decrypted field failed (wrong key)",
    32: "ticket expired",
    33: "ticket not yet valid",
    34: "request is a replay",
    35: "the ticket isn't for us",
    36: "ticket and authenticator don't match",
    37: "clock skew too great",
    38: "incorrect net address",
    39: "protocol version mismatch",
    40: "invalid message type",
    41: "message stream modified (the service could not decrypt the ticket)",
    42: "message out of order",
    43: "illegal cross-realm ticket",
    44: "specified version of key is not available (kvno mismatch)",
    45: "service key not available",
    46: "mutual authentication failed",
    47: "incorrect message direction",
    48: "alternative authentication method required",
    49: "incorrect sequence number in message",
    50: "inappropriate type of checksum in message",
    51: "policy rejects transited path",
    52: "response too big for UDP; retry with TCP",
    60: "generic error (see e-text)",
    61: "field is too long for this implementation",
    62: "client certificate is not trusted",
    63: "KDC certificate is not trusted",
    64: "invalid signature",
    65: "key parameters not accepted (too weak)",
    66: "certificate does not match the principal",
    67: "no TGT available to validate user-to-user",
    68: "wrong realm (referral or realm mapping)",
    69: "user-to-user authentication required",
    70: "certificate cannot be verified",
    71: "invalid certificate",
    72: "revoked certificate",
    73: "revocation status unknown",
    74: "revocation status unavailable",
    75: "client name does not match the certificate",
    76: "KDC name does not match the certificate",
    77: "inconsistent key purpose",
    78: "digest in certificate not accepted",
    79: "PA checksum must be included",
    80: "digest in signed data not accepted",
    81: "public key encryption not supported",
    85: "IAKERB proxy could not find a KDC",
    86: "IAKERB proxy got no response from the KDC",
    90: "pre-authentication expired",
    91: "more pre-authentication data required",
    92: "bad pre-authentication set",
    93: "unknown critical FAST options",
    100: "no acceptable key derivation function",
}

#: IANA Kerberos pre-authentication registry (RFC 4120 §7.5.2 and later RFCs, MS-KILE, MS-SFU).
PA_TYPES: Final[dict[int, str]] = {
    1: "PA-TGS-REQ",
    2: "PA-ENC-TIMESTAMP",
    3: "PA-PW-SALT",
    11: "PA-ETYPE-INFO",
    14: "PA-PK-AS-REQ_OLD",
    15: "PA-PK-AS-REP_OLD",
    16: "PA-PK-AS-REQ",
    17: "PA-PK-AS-REP",
    19: "PA-ETYPE-INFO2",
    20: "PA-SVR-REFERRAL-INFO",
    128: "PA-PAC-REQUEST",
    129: "PA-FOR-USER",
    130: "PA-FOR-X509-USER",
    131: "PA-FOR-CHECK_DUPS",
    132: "PA-AS-CHECKSUM",
    133: "PA-FX-COOKIE",
    134: "PA-AUTHENTICATION-SET",
    135: "PA-AUTH-SET-SELECTED",
    136: "PA-FX-FAST",
    137: "PA-FX-ERROR",
    138: "PA-ENCRYPTED-CHALLENGE",
    141: "PA-OTP-CHALLENGE",
    142: "PA-OTP-REQUEST",
    143: "PA-OTP-CONFIRM",
    144: "PA-OTP-PIN-CHANGE",
    147: "PA-PKINIT-KX",
    149: "PA-REQ-ENC-PA-REP",
    150: "PA-AS-FRESHNESS",
    151: "PA-SPAKE",
    161: "KERB-KEY-LIST-REQ",
    162: "KERB-KEY-LIST-REP",
    165: "PA-SUPPORTED-ENCTYPES",
    166: "PA-EXTENDED-ERROR",
    167: "PA-PAC-OPTIONS",
    170: "KERB-SUPERSEDED-BY-USER",
    171: "KERB-DMSA-KEY-PACKAGE",
}

PA_TGS_REQ: Final = 1
PA_ENC_TIMESTAMP: Final = 2
PA_PW_SALT: Final = 3
PA_ETYPE_INFO: Final = 11
PA_PK_AS_REQ_OLD: Final = 14
PA_PK_AS_REQ: Final = 16
PA_ETYPE_INFO2: Final = 19
PA_PAC_REQUEST: Final = 128
PA_FOR_USER: Final = 129
PA_FOR_X509_USER: Final = 130
PA_FX_FAST: Final = 136
PA_FX_ERROR: Final = 137
PA_ENCRYPTED_CHALLENGE: Final = 138

#: PA-DATA types that prove the client pre-authenticated, in the order a timeline prefers them.
PREAUTH_TYPES: Final[tuple[int, ...]] = (PA_ENC_TIMESTAMP, PA_ENCRYPTED_CHALLENGE, PA_PK_AS_REQ, PA_PK_AS_REQ_OLD, 151)

#: Encryption types (RFC 3961 §8, RFC 3962, RFC 4757, RFC 6803, RFC 8009, Windows private values).
ETYPES: Final[dict[int, str]] = {
    1: "des-cbc-crc",
    2: "des-cbc-md4",
    3: "des-cbc-md5",
    5: "des3-cbc-md5",
    7: "des3-cbc-sha1",
    16: "des3-cbc-sha1-kd",
    17: "aes128-cts-hmac-sha1-96",
    18: "aes256-cts-hmac-sha1-96",
    19: "aes128-cts-hmac-sha256-128",
    20: "aes256-cts-hmac-sha384-192",
    23: "rc4-hmac",
    24: "rc4-hmac-exp",
    25: "camellia128-cts-cmac",
    26: "camellia256-cts-cmac",
    -128: "rc4-hmac-old",
    -133: "rc4-md4",
    -135: "rc4-hmac-old-exp",
}

#: Etypes a report should call weak (DES, RC4 and the Windows RC4 variants): Suricata's and Microsoft's view.
WEAK_ETYPES: Final[frozenset[int]] = frozenset({1, 2, 3, 5, 7, 16, 23, 24, -128, -133, -135})

#: RFC 4120 §6.2 name types, plus RFC 6806 and Microsoft's negative values.
NAME_TYPES: Final[dict[int, str]] = {
    0: "NT-UNKNOWN",
    1: "NT-PRINCIPAL",
    2: "NT-SRV-INST",
    3: "NT-SRV-HST",
    4: "NT-SRV-XHST",
    5: "NT-UID",
    6: "NT-X500-PRINCIPAL",
    7: "NT-SMTP-NAME",
    10: "NT-ENTERPRISE",
    -128: "NT-MS-PRINCIPAL",
    -129: "NT-MS-PRINCIPAL-AND-ID",
    -130: "NT-ENT-PRINCIPAL-AND-ID",
}

#: KDC options (RFC 4120 §5.4.1; MS-SFU; RFC 6806): bit number -> name. Bit 0 is the MSB of the first octet,
#: so the mask of bit n in the 32-bit value is ``0x80000000 >> n``.
KDC_OPTION_BITS: Final[dict[int, str]] = {
    0: "reserved",
    1: "forwardable",
    2: "forwarded",
    3: "proxiable",
    4: "proxy",
    5: "allow-postdate",
    6: "postdated",
    8: "renewable",
    11: "opt-hardware-auth",
    14: "cname-in-addl-tkt",
    15: "canonicalize",
    16: "request-anonymous",
    26: "disable-transited-check",
    27: "renewable-ok",
    28: "enc-tkt-in-skey",
    30: "renew",
    31: "validate",
}

OPT_FORWARDABLE: Final = 0x40000000
OPT_FORWARDED: Final = 0x20000000
OPT_RENEWABLE: Final = 0x00800000
OPT_CNAME_IN_ADDL_TKT: Final = 0x00020000
OPT_CANONICALIZE: Final = 0x00010000
OPT_ENC_TKT_IN_SKEY: Final = 0x00000008
OPT_RENEW: Final = 0x00000002
OPT_VALIDATE: Final = 0x00000001

#: AP options (RFC 4120 §5.5.1).
AP_OPTION_BITS: Final[dict[int, str]] = {0: "reserved", 1: "use-session-key", 2: "mutual-required"}
AP_USE_SESSION_KEY: Final = 0x40000000
AP_MUTUAL_REQUIRED: Final = 0x20000000


def option_names(value: int | None, bits: dict[int, str] = KDC_OPTION_BITS) -> list[str]:
    """Names of the flags set in a 32-bit KerberosFlags value (bit 0 = most significant bit)."""
    if value is None:
        return []
    return [name for bit, name in bits.items() if value & (0x80000000 >> bit)]


#: kpasswd result codes (RFC 3244 §2, MS-KILE §2.2.9 for 7).
KPASSWD_RESULTS: Final[dict[int, str]] = {
    0: "KRB5_KPASSWD_SUCCESS",
    1: "KRB5_KPASSWD_MALFORMED",
    2: "KRB5_KPASSWD_HARDERROR",
    3: "KRB5_KPASSWD_AUTHERROR",
    4: "KRB5_KPASSWD_SOFTERROR",
    5: "KRB5_KPASSWD_ACCESSDENIED",
    6: "KRB5_KPASSWD_BAD_VERSION",
    7: "KRB5_KPASSWD_INITIAL_FLAG_NEEDED",
}

#: NTSTATUS values Kerberos-related errors and logon events carry (MS-ERREF §2.3; Microsoft's 4625 page).
NTSTATUS_NAMES: Final[dict[int, str]] = {
    0x00000000: "STATUS_SUCCESS",
    0xC000006D: "STATUS_LOGON_FAILURE",
    0xC000006A: "STATUS_WRONG_PASSWORD",
    0xC0000064: "STATUS_NO_SUCH_USER",
    0xC000006E: "STATUS_ACCOUNT_RESTRICTION",
    0xC000006F: "STATUS_INVALID_LOGON_HOURS",
    0xC0000070: "STATUS_INVALID_WORKSTATION",
    0xC0000071: "STATUS_PASSWORD_EXPIRED",
    0xC0000072: "STATUS_ACCOUNT_DISABLED",
    0xC0000133: "STATUS_TIME_DIFFERENCE_AT_DC",
    0xC000015B: "STATUS_LOGON_TYPE_NOT_GRANTED",
    0xC000018C: "STATUS_TRUSTED_DOMAIN_FAILURE",
    0xC0000192: "STATUS_NETLOGON_NOT_STARTED",
    0xC0000193: "STATUS_ACCOUNT_EXPIRED",
    0xC0000224: "STATUS_PASSWORD_MUST_CHANGE",
    0xC0000234: "STATUS_ACCOUNT_LOCKED_OUT",
    0xC0000413: "STATUS_AUTHENTICATION_FIREWALL_FAILED",
    0xC00000DC: "STATUS_INVALID_SERVER_STATE",
    0xC0000016: "STATUS_MORE_PROCESSING_REQUIRED",
    0xC000005E: "STATUS_NO_LOGON_SERVERS",
    0xC0000022: "STATUS_ACCESS_DENIED",
    0xC00000BB: "STATUS_NOT_SUPPORTED",
    0xC0000225: "STATUS_NOT_FOUND",
    0xC0000388: "STATUS_DOWNGRADE_DETECTED",
    0xC000A2A1: "STATUS_KDC_CERT_EXPIRED",
    0x00000103: "STATUS_PENDING",
    0x80090311: "SEC_E_NO_AUTHENTICATING_AUTHORITY",
    0x8009030C: "SEC_E_LOGON_DENIED",
    0x80090322: "SEC_E_WRONG_PRINCIPAL",
    0x80090324: "SEC_E_TIME_SKEW",
}

#: The default tolerance for clock differences: MIT ``clockskew`` and AD's "Maximum tolerance for computer clock
#: synchronization" are both five minutes.
DEFAULT_SKEW_SECONDS: Final = 300


def error_name(code: int | None) -> str | None:
    """RFC 4120 / MS-KILE name of an error code, ``ERR_<n>`` for an unknown one, ``None`` for ``None``."""
    if code is None:
        return None
    return ERROR_NAMES.get(code, f"ERR_{code}")
