"""Turning text into metric logs: TEXT lines (StdOut and File) and JSON lines (File).

Shared by the metrics collector (which reads while the trial runs) and the local runtime's
after-exit collection (which reads a finished job's output once). Kept free of heavy imports:
the collector loads it in every trial's start-up.

Katib's rules, as its metrics collector sidecar applies them:
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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from sextant.timestamps import ZERO_TIME, is_rfc3339, to_rfc3339_micro

UNAVAILABLE = "unavailable"
# metricsCollectorSpec.collector.kind values.
KINDS = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "Push", "None")
# Kinds where the collector reads the metrics (and so reports ``unavailable`` if the objective
# never appeared); Push and None trials report their own.
COLLECTING_KINDS = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric")

COLLECTOR_FAILED_EXIT_CODE = 86
"""Exit code of a wrapped trial whose metrics source can never be read, when it runs in a pod
(``TERMINATION_LOG_ENV`` set): the Kubernetes runtime fails the Job on it at once (a pod failure
policy) instead of letting the Job retry a pod that must fail the same way."""
TERMINATION_LOG_ENV = "SEXTANT_TERMINATION_LOG"
"""The file the collector writes ``MetricsCollectorFailed: <cause>`` to in a pod (the container's
termination message, which Kubernetes keeps in the pod's status)."""


class MetricsSourceError(Exception):
    """The metrics file cannot ever be read (a directory, a path through a file, no permission)."""


def read_metrics_file(path: Path, offset: int = 0) -> bytes:
    """The bytes of the metrics file from ``offset``; b"" while it does not exist yet."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""
    except OSError as err:
        raise MetricsSourceError(f"the metrics collector cannot read {str(path)[:200]}: "
                                 f"{err.strerror or err}") from None
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


def compile_filters(patterns: Sequence[str] | None, default: str = DEFAULT_FILTER_V1BETA1) -> list[re.Pattern[str]]:
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


def parse_text_line(line: str, metrics: Iterable[str], filters: Sequence[re.Pattern[str]]) -> list[MetricLog]:
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


def filters_for(patterns: Sequence[str] | None, dialect: str = "v1beta1") -> list[re.Pattern[str]]:
    """The compiled patterns, or the dialect's default filter (FilterError if one is invalid)."""
    default = DEFAULT_FILTER_V1ALPHA3 if dialect == "v1alpha3" else DEFAULT_FILTER_V1BETA1
    return compile_filters(patterns, default)


def parse_lines(lines: Iterable[str], metrics: Sequence[str], filters: Sequence[re.Pattern[str]],
                json_lines: bool, warn: Callable[[str], None] | None = None) -> list[MetricLog]:
    """Metric logs of TEXT lines (StdOut, File TEXT) or JSON lines (File JSON; a bad line is
    skipped, and ``warn`` is told why)."""
    if not json_lines:
        return [m for line in lines for m in parse_text_line(line, metrics, filters)]
    out: list[MetricLog] = []
    for i, line in enumerate(lines):
        try:
            out.extend(parse_json_line(line, metrics, i + 1))
        except JsonLineError as err:
            if warn is not None:
                warn(str(err))
    return out
