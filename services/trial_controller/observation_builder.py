"""Building a trial's ``status.observation`` from its observation logs (Katib's rules).

For every metric that has a strategy in ``objective.metricStrategies``: min, max and latest
start as ``unavailable``; the first value that parses as a number sets min and max, later ones
replace min if strictly smaller, else max if strictly larger; ``latest`` is the value with the
greatest timestamp, ties going to the later entry (the DB manager returns rows ordered by time,
insertion order within equal times). Non-numeric values (``unavailable``) can be latest but
never min/max. A timestamp that does not parse fails the whole update.
"""

from __future__ import annotations

from collections.abc import Iterable

from sextant.resources.models import Metric, ObjectiveSpec, Observation
from sextant.timestamps import BadTimestamp, parse_time

UNAVAILABLE = "unavailable"


def metric_names(objective: ObjectiveSpec | None) -> list[str]:
    """Metrics that get an observation entry: those with a strategy, objective first."""
    if objective is None:
        return []
    names = [s.name for s in objective.metric_strategies]
    if objective.objective_metric_name in names:
        names.remove(objective.objective_metric_name)
        names.insert(0, objective.objective_metric_name)
    return names


def build_metric(name: str, logs: Iterable[tuple[str, str]]) -> Metric:
    """``logs`` = (timestamp, value) pairs of one metric, in the DB manager's order."""
    metric = Metric(name=name, min=UNAVAILABLE, max=UNAVAILABLE, latest=UNAVAILABLE)
    low = high = None
    latest_time = None
    for stamp, value in logs:
        when = parse_time(stamp)
        if when is None:
            raise BadTimestamp(f"metric {name}: timestamp {stamp!r} is not RFC3339")
        if latest_time is None or when >= latest_time:
            latest_time = when
            metric.latest = value
        try:
            number = float(value)
        except ValueError:
            continue
        if low is None:
            low = high = number
            metric.min = metric.max = value
        elif number < low:
            low, metric.min = number, value
        elif high is not None and number > high:
            high, metric.max = number, value
    return metric


def logs_in_store_order(logs: Iterable[dict[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Reported logs (``{"time", "name", "value"}``) by metric, in the order the DB manager
    returns them: by time (UTC, microseconds), reporting order within equal times; logs without
    a time are dropped, as the DB manager drops them. Raises BadTimestamp for a bad time."""
    timed = []
    for i, item in enumerate(logs):
        if not item["time"]:
            continue
        when = parse_time(item["time"])
        if when is None:
            raise BadTimestamp(f"metric {item['name']}: timestamp {item['time']!r} is not RFC3339")
        timed.append((when, i, item))
    out: dict[str, list[tuple[str, str]]] = {}
    for _, _, item in sorted(timed, key=lambda t: (t[0], t[1])):
        out.setdefault(item["name"], []).append((item["time"], item["value"]))
    return out


def build_observation(objective: ObjectiveSpec | None,
                      logs_by_metric: dict[str, list[tuple[str, str]]]) -> Observation:
    return Observation(metrics=[build_metric(name, logs_by_metric.get(name, []))
                                for name in metric_names(objective)])


def objective_available(objective: ObjectiveSpec | None, observation: Observation | None) -> bool:
    if objective is None or observation is None:
        return False
    for metric in observation.metrics:
        if metric.name == objective.objective_metric_name:
            return metric.latest != UNAVAILABLE
    return False
