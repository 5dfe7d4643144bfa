"""RFC3339Nano timestamps as Katib's Go code reads and writes them.

Input: ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)``, converted to UTC and truncated to
microseconds (the database keeps microseconds). Output: UTC with ``Z`` and the fraction's
trailing zeros trimmed, as Go's ``time.RFC3339Nano`` formatting does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sextant.resources.numbers import excerpt

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


class BadTimestamp(ValueError):
    pass


def parse_rfc3339(text: str) -> datetime:
    """A naive UTC datetime (microsecond precision) from an RFC3339(Nano) string."""
    m = _RFC3339.match(text)
    if not m:
        raise BadTimestamp(f"{excerpt(text)} is not an RFC3339 timestamp (e.g. 2024-05-01T12:00:00.5Z)")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "0").ljust(9, "0")[:6])
    try:
        value = datetime(year, month, day, hour, minute, second, micro)
        if m.group(9):
            offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
            if offset >= timedelta(hours=24):
                raise ValueError("offset out of range")
            value = value - offset if m.group(9) == "+" else value + offset
    except (ValueError, OverflowError) as err:
        raise BadTimestamp(f"{excerpt(text)} is not a valid RFC3339 timestamp: {err}") from err
    return value


def format_rfc3339(value: datetime) -> str:
    """RFC3339Nano in UTC with trailing zeros of the fraction trimmed (``…:27Z``, ``…:27.5Z``)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S") if value.year >= 1000 else (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def now_rfc3339() -> str:
    return format_rfc3339(datetime.now(UTC))
