"""The capture prefilter's TCP test with application carriers on (parsers.capture.first_octets / _tcp_keep): a
frame it drops must be one no carrier would have taken. Checked three ways: each built-in carrier's ``accepts``
refuses every first octet outside its declared set; more octets after a payload never turn an acceptance into a
refusal (the prefilter asks on the frame's octets, which may end with link padding); and reading real captures
with the prefilter gives the same rows and issues as offering every payload to the flow table."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import corpus_path
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.capture import first_octets, read_capture
from parsers.carriers import DEFAULT
from parsers.record import ParseReport
from parsers.streams import CarrierFlow

# real openings of each protocol, so the rest of the header check passes and only the first octet decides
_OPENINGS = [
    b"\x00\x00\x00\x54\xfeSMB" + bytes(80),
    b"\x00\x00\x00\x54\xffSMB" + bytes(80),
    b"\x81\x00\x00\x44" + bytes(0x44),
    b"GET / HTTP/1.1\r\n\r\n",
    b"POST /x HTTP/1.1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\n",
    b"PROPFIND / HTTP/1.1\r\n\r\n",
    bytes.fromhex("3084000000200201016084000000170201030400a3840000000c040a4753532d53504e45474f"),
    bytes.fromhex("05000b0310000000a000000002000000"),
]


def test_builtin_carriers_declare_their_first_octets() -> None:
    octets = first_octets(DEFAULT)
    assert octets is not None and {0x00, 0x81, 0x30, 0x05, ord("G"), ord("H"), ord("P")} <= octets.keys()
    assert octets[0x81] is True and octets[0x30] == (DEFAULT[2],)
    for opening in _OPENINGS:  # each opening is accepted by some carrier, through its declared octet
        assert opening[0] in octets
        assert any(c.accepts(445, opening, True) or c.accepts(80, opening, False) for c in DEFAULT)


class _Anonymous:
    """A carrier that declares nothing: its first payloads are never filtered."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]

    def accepts(self, server_port: int, first: bytes, from_client: bool) -> bool:
        return self.inner.accepts(server_port, first, from_client)  # type: ignore[attr-defined]

    def new_flow(self) -> CarrierFlow:
        return self.inner.new_flow()  # type: ignore[attr-defined]


def test_a_carrier_without_first_octets_turns_the_octet_test_off() -> None:
    assert first_octets([*DEFAULT, _Anonymous(DEFAULT[0])]) is None


@settings(max_examples=300, deadline=None)
@given(
    opening=st.sampled_from(_OPENINGS),
    cut=st.integers(0, 40),
    tail=st.binary(max_size=64),
    port=st.sampled_from([80, 135, 389, 445, 49152]),
    from_client=st.booleans(),
)
def test_trailing_octets_never_turn_an_acceptance_into_a_refusal(
    opening: bytes, cut: int, tail: bytes, port: int, from_client: bool
) -> None:
    first = opening[: max(1, len(opening) - cut)]
    if first[0] == 0x81:  # length-sensitive: the prefilter always keeps these
        return
    for c in DEFAULT:
        if c.accepts(port, first, from_client):
            assert c.accepts(port, first + tail, from_client), (c.name, first[:16], tail)


@settings(max_examples=300, deadline=None)
@given(
    octet=st.integers(0, 255),
    opening=st.sampled_from(_OPENINGS),
    tail=st.binary(max_size=64),
    port=st.sampled_from([80, 88, 135, 139, 389, 445, 3268, 5985, 49152]),
    from_client=st.booleans(),
)
def test_accepts_refuses_every_undeclared_first_octet(
    octet: int, opening: bytes, tail: bytes, port: int, from_client: bool
) -> None:
    octets = first_octets(DEFAULT)
    assert octets is not None
    if octet in octets:
        return
    for first in (bytes([octet]) + opening[1:], bytes([octet]) + tail):
        assert not any(c.accepts(port, first, from_client) for c in DEFAULT), (octet, first[:16])


def _rows(path: Path, carriers: list[object]) -> tuple[list[object], dict[str, int], int]:
    report = ParseReport(str(path))
    rows = list(read_capture(str(path), report, carriers))  # type: ignore[arg-type]
    return rows, dict(report.issues), report.units


@pytest.mark.parametrize("folder", ["ndpi", "arkime", "otrf", "scapy"])
def test_octet_prefilter_keeps_every_row(folder: str) -> None:
    base = corpus_path("pcap", folder)
    files = sorted(
        p for p in base.rglob("*") if p.name.endswith((".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz"))
    )
    assert files
    for path in files:
        fast = _rows(path, list(DEFAULT))
        plain = _rows(path, [_Anonymous(c) for c in DEFAULT])
        assert fast == plain, path
