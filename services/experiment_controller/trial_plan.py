"""How many assignments to ask for, and which trials to drop when parallelism shrinks (Katib's arithmetic).

Pure arithmetic over the experiment spec, its trial summary and its trials.

Differences from Katib, on purpose:
* MetricsUnavailable trials count as completed here too (Katib leaves them out of this sum,
  which lets an experiment start more than maxTrialCount trials).
* Lowering parallelTrialCount deletes the newest *active* trials (Katib picks the newest of
  all trials, which can delete a finished trial and its results while leaving the extra
  running ones alive).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sextant.katib.condition_list import has_condition
from sextant.observation_values import is_observation_available
from sextant.resources.models import Experiment, Suggestion, Trial, TrialAssignment, TrialConditionType
from sextant.timestamps import parse_time

from .trial_summary import (
    EARLY_STOPPED,
    KILLED,
    METRICS_UNAVAILABLE,
    PENDING,
    RUNNING,
    TrialSummary,
    classify,
)


@dataclass
class TrialPlan:
    """What one reconcile should do about the number of trials."""

    requests: int | None = None  # the Suggestion's new spec.requests (None: leave it)
    add_count: int = 0  # how many new trials are wanted now
    delete: list[str] = field(default_factory=list)  # active trials to remove (lowered parallelism)


def completed_count(summary: TrialSummary) -> int:
    return summary.completed


def incomplete_early_stopped(experiment: Experiment, trials: Iterable[Trial]) -> int:
    """EarlyStopped trials whose objective has not arrived yet (Katib subtracts them)."""
    objective = experiment.spec.objective
    return sum(
        1
        for t in trials
        if has_condition(t.status.conditions, TrialConditionType.EARLY_STOPPED)
        and not is_observation_available(objective, t.status.observation)
    )


def _creation_order(trial: Trial) -> tuple[float, str]:
    created = parse_time(trial.metadata.creation_timestamp)
    return (created.timestamp() if created else 0.0, trial.metadata.name)


def plan_trials(experiment: Experiment, summary: TrialSummary, trials: list[Trial]) -> TrialPlan:
    spec = experiment.spec
    parallel = spec.parallel_trial_count if spec.parallel_trial_count is not None else 3
    active = summary.active
    if active > parallel:
        actives = [t for t in trials if classify(t) in (PENDING, RUNNING)]
        newest = sorted(actives, key=_creation_order, reverse=True)[: active - parallel]
        return TrialPlan(delete=[t.metadata.name for t in newest])
    if active == parallel:
        return TrialPlan()
    completed = completed_count(summary)
    required = parallel if spec.max_trial_count is None else min(parallel, spec.max_trial_count - completed)
    add = max(0, required - active)
    if add == 0:
        return TrialPlan()
    requests = len(trials) + add - incomplete_early_stopped(experiment, trials)
    return TrialPlan(requests=requests, add_count=add)


def new_assignments(suggestion: Suggestion, trial_names: set[str]) -> list[TrialAssignment]:
    """Recorded assignments that have no trial yet, in the order they were recorded."""
    return [a for a in suggestion.status.suggestions if a.name not in trial_names]


def without_assignments(suggestion: Suggestion, names: set[str]) -> list[TrialAssignment]:
    return [a for a in suggestion.status.suggestions if a.name not in names]


__all__ = [
    "KILLED",
    "EARLY_STOPPED",
    "METRICS_UNAVAILABLE",
    "TrialPlan",
    "incomplete_early_stopped",
    "new_assignments",
    "plan_trials",
    "without_assignments",
]
