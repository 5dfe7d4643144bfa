"""Turning text into metric logs: TEXT lines (StdOut and File) and JSON lines (File).

Katib's rules (facts §8.2, §8.3):
* TEXT: a line counts only if it contains one of the wanted metric names; every match of a
  filter whose group 1 is a wanted name gives a log with group 2 as the value (not checked to
  be numeric). The timestamp is the first word of the line if it parses as RFC3339, verbatim;
  otherwise the zero time ``0001-01-01T00:00:00Z``.
* JSON: one object per line; the wanted keys become logs; ``timestamp`` gives the time.

Deliberate differences from Katib, both documented in the user docs:
* JSON numbers are accepted as values (Katib silently ignores them, only strings count).
* A numeric JSON ``timestamp`` is read as epoch seconds with a real fractional part
  (``1638422847.28721`` → ``2021-12-02T05:27:27.28721Z``); Katib reads the digits after the
  dot as a count of nanoseconds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import namedtuple
from collections.abc import Iterable, Sequence

from sextant.timestamps import ZERO_TIME, is_rfc3339, to_rfc3339_micro

UNAVAILABLE = "unavailable"
DEFAULT_FILTER_V1BETA1 = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
DEFAULT_FILTER_V1ALPHA3 = r"([\w|-]+)\s*=\s*((-?\d+)(\.\d+)?)"



# A named tuple, not a dataclass: importing dataclasses (and inspect with it) costs several ms
# of every trial's start-up.
class MetricLog(namedtuple("MetricLog", ["time", "name", "value"])):
    __slots__ = ()

    def to_dict(self) -> dict[str, str]:
        return {"time": self.time, "name": self.name, "value": self.value}


class FilterError(ValueError):
    pass


def compile_filters(patterns: Sequence[str] | None, default: str = DEFAULT_FILTER_V1BETA1) -> list[re.Pattern]:
    """Compiles user filters (each needs two groups: name, value), or the default one."""
    out = []
    for i, pattern in enumerate(patterns or [default]):
        try:
            rx = re.compile(pattern)
        except re.error as err:
            raise FilterError(f"filter[{i}] {pattern!r}: not a valid regular expression ({err})") from err
        if rx.groups < 2:
            raise FilterError(f"filter[{i}] {pattern!r}: needs at least two capture groups "
                              "(metric name, value)")
        out.append(rx)
    return out


def parse_text_line(line: str, metrics: Iterable[str], filters: Sequence[re.Pattern]) -> list[MetricLog]:
    wanted = [m for m in metrics if m and m in line]
    if not wanted:
        return []
    first = line.strip().split(" ", 1)[0]
    stamp = first if is_rfc3339(first) else ZERO_TIME
    out = []
    for rx in filters:
        for match in rx.finditer(line):
            name, value = (match.group(1) or "").strip(), (match.group(2) or "").strip()
            if name in wanted:
                out.append(MetricLog(stamp, name, value))
    return out


def _epoch_to_rfc3339(seconds: float) -> str:
    return to_rfc3339_micro(dt.datetime.fromtimestamp(seconds, dt.UTC))


class JsonLineError(ValueError):
    pass


def parse_json_line(line: str, metrics: Iterable[str], lineno: int = 0) -> list[MetricLog]:
    text = line.strip()
    if not text:
        return []
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise JsonLineError(f"line {lineno}: not a JSON object ({err.msg})") from err
    if not isinstance(obj, dict):
        raise JsonLineError(f"line {lineno}: expected a JSON object, got {type(obj).__name__}")
    raw = obj.get("timestamp")
    if isinstance(raw, str) and is_rfc3339(raw):
        stamp = raw
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        stamp = _epoch_to_rfc3339(float(raw))
    else:
        stamp = ZERO_TIME
    out = []
    for name in metrics:
        if name not in obj:
            continue
        value = obj[name]
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            continue
        out.append(MetricLog(stamp, name, value if isinstance(value, str) else repr(value)))
    return out
