"""Reading a trial's observation: the value a metric strategy picks (Katib's rules for the
optimal trial and the GetSuggestions request).

A trial observation holds, per metric, ``min``, ``max`` and ``latest`` as strings, with the
literal ``unavailable`` for "never reported". Which one counts is the metric's strategy from
``objective.metricStrategies``; min/max fall back to latest when they are unavailable.
"""

from __future__ import annotations

from sextant.resources.models import Metric, ObjectiveSpec, Observation

UNAVAILABLE = "unavailable"


def strategy_for(objective: ObjectiveSpec | None, metric_name: str) -> str | None:
    """``min``/``max``/``latest`` for ``metric_name``, or None when it has no strategy."""
    if objective is None:
        return None
    for strategy in objective.metric_strategies:
        if strategy.name == metric_name:
            return str(strategy.value)
    return None


def find_metric(observation: Observation | None, name: str) -> Metric | None:
    if observation is None:
        return None
    for metric in observation.metrics:
        if metric.name == name:
            return metric
    return None


def value_by_strategy(metric: Metric, strategy: str | None) -> str:
    """The value handed on for one metric; empty string when the metric has no strategy."""
    if strategy == "min":
        return metric.latest if metric.min == UNAVAILABLE else metric.min
    if strategy == "max":
        return metric.latest if metric.max == UNAVAILABLE else metric.max
    if strategy == "latest":
        return metric.latest
    return ""


def objective_value(objective: ObjectiveSpec | None, observation: Observation | None) -> str | None:
    """The objective metric's strategy-chosen value; None when absent or ``unavailable``.

    A metric without a strategy (not possible after defaulting) is read as ``latest``.
    """
    if objective is None:
        return None
    metric = find_metric(observation, objective.objective_metric_name)
    if metric is None:
        return None
    value = value_by_strategy(metric, strategy_for(objective, metric.name) or "latest")
    if value in ("", UNAVAILABLE):
        return None
    return value


def is_observation_available(objective: ObjectiveSpec | None, observation: Observation | None) -> bool:
    """Katib's IsObservationAvailable: the objective metric is present with latest ≠ unavailable."""
    if objective is None or not objective.objective_metric_name:
        return False
    metric = find_metric(observation, objective.objective_metric_name)
    return metric is not None and metric.latest != UNAVAILABLE
