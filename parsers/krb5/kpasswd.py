"""placeholder"""
from __future__ import annotations


def decode_kpasswd(data: bytes) -> dict[str, object]:
    raise NotImplementedError
