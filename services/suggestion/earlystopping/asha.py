"""``asha``: asynchronous successive halving as early-stopping rules, without any I/O.

Settings (all optional):

* ``min_resource`` (int >= 1, default 1): reports of the objective a trial makes before its
  first rung.
* ``reduction_factor`` (int >= 2, default 3): only the best ``1/reduction_factor`` of the trials
  at a rung go on.
* ``min_early_stopping_rate`` (int >= 0, default 0): the rung is at
  ``min_resource * reduction_factor ** min_early_stopping_rate`` reports (raising it judges
  trials later, with more evidence).

At every rule request the rung's value of each trial that has reached it is taken: the best
objective value among its first R reports (the collector compares the best value so far, so
this is the value it will compare). Finished, early-stopped and running trials all count, so
the cut-off follows the whole population, as in asynchronous successive halving. Once at least
``reduction_factor`` trials have a rung value, each new trial gets one rule: stop at report R
if its best value so far is worse than the ``floor(n / reduction_factor)``-th best rung value.

Katib's rule protocol ANDs the rules of a trial (the trial stops only when all of them are
met), so a trial cannot be judged at several rungs by one rule set; each trial is judged at
the one rung above, with the cut-off known when it was created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sextant.api import api_pb2
from sextant.resources.numbers import excerpt

from .base import FINISHED, InvalidEarlyStoppingSettings, ReadValues

NAME = "asha"
DEFAULTS = {"min_resource": 1, "reduction_factor": 3, "min_early_stopping_rate": 0}
MINIMUM = {"min_resource": 1, "reduction_factor": 2, "min_early_stopping_rate": 0}
# Bounds that keep the rung computation small; the rung itself must be at most MAX_RUNG reports.
MAXIMUM = {"min_resource": 1_000_000, "reduction_factor": 1000, "min_early_stopping_rate": 64}
MAX_RUNG = 1_000_000
# Rung values are read for these trials; running ones have their logs in the database because
# a trial with rules reports its metrics while it runs.
COUNTED = FINISHED | {api_pb2.TrialStatus.RUNNING}


@dataclass(frozen=True)
class Settings:
    min_resource: int = 1
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0

    @property
    def rung(self) -> int:
        """The report number at which a trial is judged."""
        return int(self.min_resource * self.reduction_factor ** self.min_early_stopping_rate)


def validation_errors(spec: api_pb2.EarlyStoppingSpec) -> list[str]:
    """One message per bad setting, naming the setting and the rule; [] when valid."""
    if spec.algorithm_name != NAME:
        return [f"unknown algorithm name {spec.algorithm_name}"]
    errors = []
    for setting in spec.algorithm_settings:
        name, raw = setting.name, setting.value
        if name not in DEFAULTS:
            errors.append(f"unknown setting {name} for algorithm {NAME}")
            continue
        shown = repr(raw) if len(raw) <= 40 else excerpt(raw)
        if not re.fullmatch(r"[+-]?[0-9]{1,20}", raw.strip()):
            errors.append(f"{name} must be an integer, got {shown}")
            continue
        value = int(raw)
        if value < MINIMUM[name]:
            errors.append(f"{name} must be greater or equal than {MINIMUM[name]} (>={MINIMUM[name]}), got {value}")
        elif value > MAXIMUM[name]:
            errors.append(f"{name} must be at most {MAXIMUM[name]}, got {value}")
    if not errors:
        settings = _settings(spec)
        if settings.rung > MAX_RUNG:
            errors.append(f"min_resource * reduction_factor ** min_early_stopping_rate must be at most {MAX_RUNG} "
                          f"reports, got {settings.rung}")
    return errors


def _settings(spec: api_pb2.EarlyStoppingSpec) -> Settings:
    values = {**DEFAULTS, **{s.name: int(s.value) for s in spec.algorithm_settings}}
    return Settings(**values)


def parse_settings(spec: api_pb2.EarlyStoppingSpec) -> Settings:
    errors = validation_errors(spec)
    if errors:
        raise InvalidEarlyStoppingSettings("; ".join(errors))
    return _settings(spec)


def rung_value(values: list[float], rung: int, maximize: bool) -> float | None:
    """The best of the first ``rung`` values, or None before the trial reached the rung."""
    if len(values) < rung:
        return None
    first = values[:rung]
    return max(first) if maximize else min(first)


def cutoff(rung_values: list[float], reduction_factor: int, maximize: bool) -> float | None:
    """The worst value that still goes on: the ``n // reduction_factor``-th best; None if too few."""
    keep = len(rung_values) // reduction_factor
    if keep < 1:
        return None
    ranked = sorted(rung_values, reverse=maximize)
    return ranked[keep - 1]


def rule(objective: api_pb2.ObjectiveSpec, rung_values: list[float],
         settings: Settings) -> api_pb2.EarlyStoppingRule | None:
    maximize = objective.type == api_pb2.MAXIMIZE
    threshold = cutoff(rung_values, settings.reduction_factor, maximize)
    if threshold is None:
        return None
    # The collector checks a rule from report start_step + 1 on and compares the best value so
    # far, which only improves: the rule can only be met at report R itself.
    return api_pb2.EarlyStoppingRule(name=objective.objective_metric_name, value=repr(threshold),
                                     comparison=api_pb2.LESS if maximize else api_pb2.GREATER,
                                     start_step=settings.rung - 1)


class Asha:
    name = NAME

    def validation_errors(self, spec: api_pb2.EarlyStoppingSpec) -> list[str]:
        return validation_errors(spec)

    def rules(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial],
              read: ReadValues) -> list[api_pb2.EarlyStoppingRule]:
        settings = parse_settings(experiment.spec.early_stopping)
        names = [t.name for t in trials if t.name and t.status.condition in COUNTED]
        if len(names) < settings.reduction_factor:
            return []
        maximize = experiment.spec.objective.type == api_pb2.MAXIMIZE
        values = [rung_value(v, settings.rung, maximize) for v in read(names).values()]
        found = rule(experiment.spec.objective, [v for v in values if v is not None], settings)
        return [] if found is None else [found]
