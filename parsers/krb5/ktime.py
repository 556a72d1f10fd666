"""KerberosTime (RFC 4120 §5.2.3): a DER GeneralizedTime ``YYYYMMDDHHMMSSZ`` (X.680 §46) as microseconds since the
epoch, UTC, computed without datetime objects (no time zone to get wrong, and several times faster)."""

from __future__ import annotations

from typing import Final

from ..errors import KrbDecodeError

__all__ = ["parse_gtime"]


_DAYS_BEFORE_MONTH: Final = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_DAYS_IN_MONTH: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (no datetime object, no time zone to get wrong)."""
    y = year - 1
    days = y * 365 + y // 4 - y // 100 + y // 400 + _DAYS_BEFORE_MONTH[month] + day - 1
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if leap and month > 2:
        days += 1
    return days - 719_162


def parse_gtime(raw: bytes) -> int:
    """``YYYYMMDDHHMMSS[.f*]Z`` (X.680 §46, DER form) as microseconds since the epoch, UTC.

    A time without ``Z`` would be local time of an unknown zone, so it is refused; so are impossible dates.
    """
    n = len(raw)
    if n < 15 or raw[-1] != 0x5A or not raw[:14].isdigit():
        raise KrbDecodeError(f"GeneralizedTime {raw[:32]!r} is not YYYYMMDDHHMMSSZ")
    year, month, day = int(raw[0:4]), int(raw[4:6]), int(raw[6:8])
    hour, minute, second = int(raw[8:10]), int(raw[10:12]), int(raw[12:14])
    micros = 0
    if n > 15:
        frac = raw[14:-1]
        if len(frac) < 2 or frac[0] not in b".," or not frac[1:].isdigit() or len(frac) > 32:
            raise KrbDecodeError(f"GeneralizedTime fraction {raw[:48]!r}")
        micros = int((frac[1:] + b"000000")[:6])
    if not (
        1 <= year
        and 1 <= month <= 12
        and 1 <= day <= _DAYS_IN_MONTH[month]
        and hour <= 23
        and minute <= 59
        and second <= 60
    ):
        raise KrbDecodeError(f"GeneralizedTime {raw!r} is not a valid date")
    if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        raise KrbDecodeError(f"GeneralizedTime {raw!r}: no 29 February that year")
    # A leap second (:60) is folded into the next second, as POSIX time does.
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    return seconds * 1_000_000 + micros
