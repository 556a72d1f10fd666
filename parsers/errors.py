"""The parsers' small exception tree.

A file that cannot be used at all raises :class:`UnsupportedFormat` or :class:`MalformedFile`; the CLI prints it
as one line and exits 2. Inside a usable file nothing raises: bad frames and records are counted in
:class:`parsers.record.ParseReport`. :class:`KrbDecodeError` is the only error a message decoder lets out.
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every error the parsers raise on purpose."""


class UnsupportedFormat(Error):
    """The file is readable but is not a format krbtrace knows (not a capture, not an event log)."""


class MalformedFile(Error):
    """The file claims a known format but is too damaged to read anything from it."""


class KrbDecodeError(Error, ValueError):
    """A Kerberos (DER, kpasswd or GSS) structure could not be decoded: truncated, hostile or not Kerberos."""
