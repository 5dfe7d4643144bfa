"""Pareto-optimal trials of a multi-objective experiment (``sextant.objectives``).

A trial is Pareto-optimal when no other trial is at least as good on every objective and
better on one. Only trials with a numeric value for every objective (each read with its metric
strategy, as ``currentOptimalTrial`` reads the primary one) take part. Trials with equal values
on every objective are all kept: neither dominates the other. The front is listed best first on
the primary objective, ties by trial name.

The status keeps ``currentOptimalTrial`` (the best on the primary objective, Katib's field) and
adds ``paretoOptimalTrials``, a field Katib's clients do not know and skip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sextant import objectives
from sextant.observation_values import find_metric, strategy_for, value_by_strategy
from sextant.resources.models import (
    Experiment,
    ObjectiveSpec,
    ObjectiveType,
    Observation,
    OptimalTrial,
    Trial,
)


def objectives_of(experiment: Experiment) -> list[objectives.Objective] | None:
    """The primary objective then the declared extra ones; None for a single-objective
    experiment (or a declaration that does not parse: admission rejects those)."""
    text = objectives.declared(experiment.metadata.annotations)
    objective = experiment.spec.objective
    if text is None or objective is None:
        return None
    try:
        extra = objectives.parse(text)
    except objectives.ObjectivesError:
        return None
    return [objectives.Objective(objective.objective_metric_name, objective.type == ObjectiveType.MAXIMIZE), *extra]


def metric_value(objective: ObjectiveSpec | None, observation: Observation | None, name: str) -> float | None:
    """``name``'s strategy-chosen value as a finite number, else None."""
    metric = find_metric(observation, name)
    if metric is None:
        return None
    try:
        value = float(value_by_strategy(metric, strategy_for(objective, name) or "latest"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def front(losses: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated rows (every column minimised), in lexicographic row order.

    Only a row that is lexicographically smaller can dominate another, and anything dominated
    is dominated by a row of the front too, so each row is checked against the front so far.
    """
    order = sorted(range(len(losses)), key=lambda i: tuple(losses[i]))
    kept: list[int] = []
    for i in order:
        row = losses[i]
        if not any(_dominates(losses[j], row) for j in kept):
            kept.append(i)
    return kept


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_trials(experiment: Experiment, trials: Sequence[Trial]) -> list[Trial] | None:
    """The Pareto-optimal trials, best first on the primary objective; None for a
    single-objective experiment."""
    goals = objectives_of(experiment)
    if goals is None:
        return None
    scored: list[tuple[Trial, list[float]]] = []
    for trial in trials:
        loss: list[float] = []
        for goal in goals:
            value = metric_value(experiment.spec.objective, trial.status.observation, goal.name)
            if value is None:
                break
            loss.append(-value if goal.maximize else value)
        else:
            scored.append((trial, loss))
    kept = [scored[i] for i in front([loss for _, loss in scored])]
    kept.sort(key=lambda item: (item[1][0], item[0].metadata.name))
    return [trial for trial, _ in kept]


def pareto_optimal_trials(experiment: Experiment, trials: Sequence[Trial]) -> list[OptimalTrial] | None:
    """``status.paretoOptimalTrials``: each front trial as an OptimalTrial (name, assignments,
    observation); None for a single-objective experiment."""
    chosen = pareto_trials(experiment, trials)
    if chosen is None:
        return None
    return [OptimalTrial(
        best_trial_name=t.metadata.name,
        parameter_assignments=[a.model_copy() for a in t.spec.parameter_assignments],
        observation=t.status.observation.model_copy(deep=True) if t.status.observation else Observation(),
    ) for t in chosen]
