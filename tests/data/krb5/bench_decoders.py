#!/usr/bin/env python3
"""Benchmark (not a test): decode_message against full_decode on every corpus and MIT fixture message, as a ratio,
and the slowest decode_message time on bit-flipped messages.

Run from the repository root:  python tests/data/krb5/bench_decoders.py
Times are the best of three passes (the machine is shared); the ratio is what matters.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from krb5_samples import CORPUS_PCAPS, corpus_messages, mit_fixtures  # noqa: E402

from parsers.errors import KrbDecodeError  # noqa: E402
from parsers.krb5 import decode_message, full_decode  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "pcap"


def _decodable(raw: bytes) -> bool:
    try:
        full_decode(raw)
    except KrbDecodeError:
        return False
    return True


def _per_message(fn: Callable[[bytes], object], msgs: list[bytes], reps: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            for m in msgs:
                fn(m)
        best = min(best, (time.perf_counter() - t0) / (reps * len(msgs)))
    return best


def _worst_flipped(msgs: list[bytes], n: int) -> float:
    rng = random.Random(4120)
    worst = 0.0
    for _ in range(n):
        buf = bytearray(rng.choice(msgs))
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        data = bytes(buf)
        best = float("inf")
        for _ in range(3):  # best of three: a scheduler pause is not the decoder's time
            t0 = time.perf_counter()
            try:
                decode_message(data)
            except KrbDecodeError:
                pass
            best = min(best, time.perf_counter() - t0)
        worst = max(worst, best)
    return worst


def main() -> None:
    msgs = [m.raw for rel in CORPUS_PCAPS if (CORPUS / rel).exists() for m in corpus_messages(CORPUS / rel)
            if not m.kpasswd]  # fmt: skip
    corpus = len(msgs)
    msgs += [raw for _label, raw, row in mit_fixtures() if row["kpasswd"] == "0"]
    msgs = [m for m in msgs if _decodable(m)]
    fast = _per_message(decode_message, msgs, 20)
    full = _per_message(full_decode, msgs, 1)
    print(f"{len(msgs)} messages ({corpus} from the corpus), {sum(map(len, msgs)) / len(msgs):.0f} octets on average")
    print(f"decode_message {fast * 1e6:.1f} us/message, full_decode {full * 1e6:.1f} us/message: {full / fast:.1f}x")
    print(f"slowest decode_message of 20000 bit-flipped messages: {_worst_flipped(msgs, 20_000) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
