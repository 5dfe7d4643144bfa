"""Timestamps, the one place Sextant makes and reads them.

Kubernetes serialises ``metav1.Time`` with second precision (``2024-05-01T12:00:00Z``); that is
what resource status fields hold. Observation logs and job completion times carry
microseconds. Katib's DB manager reads and writes RFC 3339 with up to nanoseconds
(``RFC3339Nano``), which the strict parser and the nano formatter below follow.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# Katib's "unset" time (Go's zero ``time.Time``), e.g. the ``unavailable`` log entry's stamp.
ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    """Current UTC time, second precision, as Kubernetes serialises metav1.Time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339_micro() -> str:
    """Current UTC time with microseconds (observation logs, job start/end times)."""
    return to_rfc3339_micro(datetime.now(UTC))


def to_rfc3339_micro(value: datetime) -> str:
    """An aware datetime as UTC RFC 3339 with exactly six fractional digits and ``Z``."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp (any fractional precision, ``Z`` or offset) as aware UTC.

    Lenient: None for an empty or unreadable value, so status fields written by other tools
    never break a reconcile.
    """
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    # datetime reads at most six fractional digits; RFC3339Nano may carry nine.
    if "." in text:
        head, _, rest = text.partition(".")
        tz_at = next((i for i, ch in enumerate(rest) if not ch.isdigit()), len(rest))
        digits, tz = rest[:tz_at], rest[tz_at:]
        text = f"{head}.{digits[:6]}{tz}" if digits else f"{head}{tz}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_seconds(value: str | None) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (the GetSuggestions trial times); empty string if unset."""
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else ""


# ---------------------------------------------------------------------------------------------
# Strict RFC3339Nano, as Katib's Go DB manager accepts and writes it

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def _excerpt(text: str, limit: int = 40) -> str:
    """The input quoted in an error, cut short: a timestamp may be 100,000 characters of junk."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


class BadTimestamp(ValueError):
    """A timestamp that is not RFC 3339 (the message names the text and an example)."""


def parse_rfc3339_strict(text: str) -> datetime:
    """A naive UTC datetime (microsecond precision) from an RFC3339(Nano) string, or BadTimestamp.

    Years below 1000 are accepted (the zero time is year 1), which ``fromisoformat`` also does
    but ``strptime`` does not.
    """
    m = _RFC3339.match(text)
    if not m:
        raise BadTimestamp(f"{_excerpt(text)} is not an RFC3339 timestamp (e.g. 2024-05-01T12:00:00.5Z)")
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
        raise BadTimestamp(f"{_excerpt(text)} is not a valid RFC3339 timestamp: {err}") from err
    return value


def is_rfc3339(text: str) -> bool:
    """Whether ``text`` is a valid RFC3339(Nano) timestamp (calendar fields checked too)."""
    try:
        parse_rfc3339_strict(text)
    except BadTimestamp:
        return False
    return True


def format_rfc3339_nano(value: datetime) -> str:
    """RFC3339Nano in UTC with trailing zeros of the fraction trimmed (``…:27Z``, ``…:27.5Z``),
    as Go formats ``time.RFC3339Nano``. A naive datetime is taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S") if value.year >= 1000 else (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def human_duration(seconds: float) -> str:
    """Kubernetes' short human duration: 45s, 3m20s, 25m, 4h10m, 30h, 3d4h, 20d, 2y30d, 9y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """How long ago ``timestamp`` was, as kubectl's AGE column says it (``<unknown>`` without a
    time, or for Katib's zero time)."""
    then = parse_time(timestamp)
    if then is None or then.year <= 1:
        return "<unknown>"
    return human_duration(((now or datetime.now(UTC)) - then).total_seconds())
