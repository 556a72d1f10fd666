"""Carriers of the Kerberos AP exchange over TCP: SMB1/SMB2, HTTP, LDAP and DCE/RPC (see :mod:`.base`)."""

from __future__ import annotations

from .smb import SmbCarrier

DEFAULT = [SmbCarrier()]
