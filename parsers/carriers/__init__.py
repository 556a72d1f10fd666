"""Carriers of the Kerberos AP exchange over TCP: SMB1/SMB2, HTTP, LDAP and DCE/RPC (see :mod:`.base`)."""

from __future__ import annotations

from .dcerpc import DcerpcCarrier
from .http import HttpCarrier
from .ldap import LdapCarrier
from .smb import SmbCarrier

DEFAULT = [SmbCarrier(), HttpCarrier(), LdapCarrier(), DcerpcCarrier()]
