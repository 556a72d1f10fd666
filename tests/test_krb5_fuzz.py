"""Hostile input for every krb5 decoder: only KrbDecodeError may come out, never another exception.

Seeds are the committed MIT messages and the hand-made ones. Every prefix and every single-octet inversion of each
seed is tried exhaustively with the fast decoders; hypothesis adds random multi-bit flips, splices and random bytes
(also behind a Kerberos application tag, to get past the first check) for all four entry points, including the
pyasn1 oracle. Hypothesis' deadline is only a hang detector (one second), not a speed goal: speed lives in bench/.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from krb5_samples import HANDMADE, mit_fixtures

from parsers.errors import KrbDecodeError
from parsers.krb5 import decode_kpasswd, decode_message, full_decode, looks_like_kerberos
from parsers.krb5.messages import KEYS

SEEDS: list[bytes] = [raw for _label, raw, _row in mit_fixtures()] + [raw for raw, _want in HANDMADE.values()]
DECODERS: list[Callable[[bytes], object]] = [decode_message, decode_kpasswd, full_decode]
FUZZ = settings(
    max_examples=300, deadline=timedelta(seconds=1), suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _run(decoder: Callable[[bytes], object], data: bytes) -> None:
    try:
        out = decoder(data)
    except KrbDecodeError:
        return
    assert isinstance(out, dict)
    if decoder is not full_decode:
        assert set(out) == set(KEYS)


def _check_all(data: bytes) -> None:
    assert looks_like_kerberos(data) in (True, False)
    for decoder in DECODERS:
        _run(decoder, data)


@pytest.mark.parametrize("decoder", [decode_message, decode_kpasswd], ids=["message", "kpasswd"])
def test_every_prefix_and_octet_inversion(decoder: Callable[[bytes], object]) -> None:
    for seed in SEEDS:
        for n in range(len(seed)):
            _run(decoder, seed[:n])
        flipped = bytearray(seed)
        for i in range(len(seed)):
            flipped[i] ^= 0xFF
            _run(decoder, bytes(flipped))
            flipped[i] ^= 0xFF


@FUZZ
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_bit_flips(seed: bytes, data: st.DataObject) -> None:
    buf = bytearray(seed)
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(buf) - 1), st.integers(0, 7)), min_size=1, max_size=8))
    for pos, bit in flips:
        buf[pos] ^= 1 << bit
    _check_all(bytes(buf))


@FUZZ
@given(seed=st.sampled_from(SEEDS), data=st.data())
def test_truncate_and_splice(seed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(seed)))
    tail = data.draw(st.binary(max_size=64))
    _check_all(seed[:cut] + tail)


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _check_all(data)


APP_FIRST = [0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x74, 0x75, 0x76, 0x7E]


@FUZZ
@given(first=st.sampled_from(APP_FIRST), body=st.binary(max_size=400))
def test_random_body_behind_an_application_tag(first: int, body: bytes) -> None:
    n = len(body)
    length = bytes((n,)) if n < 0x80 else bytes((0x82,)) + n.to_bytes(2, "big")
    _check_all(bytes((first,)) + length + body)
    _check_all(bytes((first,)) + length + b"\x30" + length + body)


@FUZZ
@given(seed=st.sampled_from(SEEDS), pos=st.integers(0, 10_000), length=st.sampled_from([0x84, 0x83, 0x80, 0x85]))
def test_hostile_length_octets(seed: bytes, pos: int, length: int) -> None:
    """A length octet replaced by a long form claiming up to 4 GiB, indefinite, or five octets."""
    i = pos % len(seed)
    _check_all(seed[:i] + bytes((length, 0xFF, 0xFF, 0xFF, 0xFF)) + seed[i + 1 :])


def test_corpus_fuzzed_packet() -> None:
    """ndpi/kerberos_fuzz.pcapng: one fuzzer-made TCP/88 segment (TShark finds no Kerberos in it). Every offset of
    its payload, with or without a record mark, goes through every decoder."""
    from conftest import corpus_path
    from scapy.layers.inet import TCP
    from scapy.utils import PcapNgReader

    with PcapNgReader(str(corpus_path("pcap", "ndpi", "kerberos_fuzz.pcapng"))) as reader:
        payloads = [bytes(p[TCP].payload) for p in reader if p.haslayer(TCP)]
    assert payloads and payloads[0]
    for payload in payloads:
        for i in range(len(payload)):
            _check_all(payload[i:])
