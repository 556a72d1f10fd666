"""Carriers of the Kerberos AP exchange over TCP (issue 5): SMB1/SMB2, HTTP, LDAP and DCE/RPC.

Each carrier implements the capture layer's :class:`parsers.streams.Carrier` interface: ``accepts(server_port, first,
from_client)`` looks at the first payload of a TCP flow (by content, never by port alone: a cheap first-octet test
then a header check, about 0.6 us per flow for all four), and ``new_flow()`` returns a
:class:`~parsers.carriers.base.CarrierFlow` fed the in-order bytes of both directions. The security blobs found are
decoded by :func:`parsers.gss.decode_gss`. :data:`DEFAULT` is what :func:`parsers.iter_records` passes to
:func:`parsers.capture.read_capture`.

Rows: ``msg_type`` AP-REQ / AP-REP / KRB-ERROR, ``phase`` ``AP``, ``carrier`` ``smb`` (SMB1), ``smb2``, ``http``,
``ldap`` or ``dcerpc``, and the ticket's ``ticket_realm``, ``ticket_service`` (also ``service``/``service_realm``),
``ticket_etype``, ``ticket_kvno``, ``ap_options`` from :func:`parsers.krb5.decode_message`. A server's answer carries
the application's own outcome in ``app_status``:

=========  ==========================================================================================================
carrier    ``app_status`` of the server's rows
=========  ==========================================================================================================
smb, smb2  NT status name: ``STATUS_SUCCESS``, ``STATUS_MORE_PROCESSING_REQUIRED`` (a normal middle step),
           ``STATUS_LOGON_FAILURE``, ... (``0xC00000XX`` when unnamed; SMB1 DOS errors ``DOS <class>/<code>``);
           ``nt_status`` holds the number unless the KRB-ERROR's own e-data gave one
http       ``HTTP <code>`` (``HTTP 200``, ``HTTP 401``)
ldap       the result code's name, then ``: <diagnosticMessage>`` when there is one: ``success``,
           ``saslBindInProgress`` (a normal middle step), ``invalidCredentials: 8009030C: LdapErr: ... data 52e, v4563``
dcerpc     the answering PDU: ``bind_ack``, ``alter_context_resp``, ``bind_nak: <reason>``, ``fault: <status>``
=========  ==========================================================================================================

A client's rows have ``app_status`` None. An answer to an AP-REQ with no Kerberos token in it gives an *outcome
row*: ``msg_type`` None, ``phase`` ``AP``, the carrier, ``app_status`` (and ``nt_status``), and the AP-REQ's service
and ticket fields (see :mod:`parsers.carriers.base`), so "HTTP 401 after an AP-REQ" is visible without a token.

Issue kinds counted in the capture's ParseReport: ``carrier_unparsable`` (bytes that are not the protocol; the flow
resynchronises), ``carrier_unit_too_large`` (a unit over 1 MiB that should hold a security blob),
``gss_malformed_token`` and ``gss_krb5_decode_error`` (:mod:`parsers.gss`), ``smb_bad_security_buffer``,
``http_bad_base64``, ``http_bad_headers``, ``ldap_bad_bind``. Lost TCP bytes are the capture layer's ``tcp_gap``.
"""

from __future__ import annotations

from typing import Final

from .dcerpc import DcerpcCarrier
from .http import HttpCarrier
from .ldap import LdapCarrier
from .smb import SmbCarrier

__all__ = ["DEFAULT", "DcerpcCarrier", "HttpCarrier", "LdapCarrier", "SmbCarrier"]

#: The carriers offered every TCP flow that is not on 88/464, in the order they are asked.
DEFAULT: Final = (SmbCarrier(), HttpCarrier(), LdapCarrier(), DcerpcCarrier())
