"""``sextant.timestamps.parse_time``: RFC 3339 with any fraction and any offset, as aware UTC."""

from datetime import UTC, datetime

import pytest

from sextant.timestamps import parse_time


@pytest.mark.parametrize("text,expected", [
    ("2026-01-01T00:00:01Z", datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)),
    ("2026-01-01T00:00:01.5Z", datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)),
    ("2026-01-01T01:00:01.5+01:00", datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)),
    ("2025-12-31T23:30:01.25-00:30", datetime(2026, 1, 1, 0, 0, 1, 250000, tzinfo=UTC)),
    ("2026-01-01T00:00:01.123456789Z", datetime(2026, 1, 1, 0, 0, 1, 123456, tzinfo=UTC)),
    ("2026-01-01T00:00:01", datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)),
])
def test_parses_fractions_and_offsets(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["", None, "yesterday", "2026-13-01T00:00:00Z"])
def test_rejects_what_is_not_a_time(text):
    assert parse_time(text) is None
