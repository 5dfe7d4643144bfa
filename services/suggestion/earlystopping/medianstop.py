"""The medianstop rule, without any I/O (Katib's median-stop rule).

Settings: ``min_trials_required`` (int > 0, default 3) and ``start_step`` (int >= 1, default 4),
validated with Katib's messages. For every completed trial the mean of its first ``start_step``
reported objective values is taken; once at least ``min_trials_required`` trials have one, the
rule is "stop a running trial whose best value so far after ``start_step`` reports is worse than
the *median* of those means". Katib computes the arithmetic mean and calls it the median; this
is the real median.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from sextant.api import api_pb2
from sextant.resources.numbers import NumberError, excerpt, parse_int

from .base import InvalidEarlyStoppingSettings, ReadValues

NAME = "medianstop"
DEFAULT_MIN_TRIALS_REQUIRED = 3
DEFAULT_START_STEP = 4


@dataclass(frozen=True)
class Settings:
    min_trials_required: int = DEFAULT_MIN_TRIALS_REQUIRED
    start_step: int = DEFAULT_START_STEP


def validation_errors(spec: api_pb2.EarlyStoppingSpec) -> list[str]:
    """Katib's messages for a bad EarlyStoppingSpec; [] when valid."""
    if spec.algorithm_name != NAME:
        return [f"unknown algorithm name {spec.algorithm_name}"]
    # in request order, first problem only, as Katib's service answers
    for setting in spec.algorithm_settings:
        name, raw = setting.name, setting.value
        if name not in ("min_trials_required", "start_step"):
            return [f"unknown setting {name if len(name) <= 40 else excerpt(name)} for algorithm {NAME}"]
        try:
            value = _setting_int(raw)
        except NumberError as exc:  # long input: the bounded parser says why, quoting an excerpt
            return [f"failed to validate {name}({excerpt(raw)}): {exc}"]
        except ValueError as exc:  # Katib's int() message, which quotes the (short) value
            return [f"failed to validate {name}({raw}): {exc}"]
        if name == "min_trials_required" and value <= 0:
            return ["min_trials_required must be greater than zero (>0)"]
        if name == "start_step" and value < 1:
            return ["start_step must be greater or equal than one (>=1)"]
    return []


def _setting_int(raw: str) -> int:
    """Katib's medianstop service reads its settings with Python's int(), and so does Sextant's
    (its error text is part of the answer); long input goes through the bounded parser instead,
    so that no error echoes it whole and no 5,000-digit string reaches int()."""
    return int(raw) if len(raw) <= 40 else parse_int(raw)


def parse_settings(spec: api_pb2.EarlyStoppingSpec) -> Settings:
    errors = validation_errors(spec)
    if errors:
        raise InvalidEarlyStoppingSettings("; ".join(errors))
    values = {s.name: _setting_int(s.value) for s in spec.algorithm_settings}
    return Settings(values.get("min_trials_required", DEFAULT_MIN_TRIALS_REQUIRED),
                    values.get("start_step", DEFAULT_START_STEP))


def early_value(values: Iterable[str | float], start_step: int) -> float | None:
    """Mean of the first ``start_step`` numeric values (non-numbers such as "unavailable" skipped)."""
    numbers: list[float] = []
    for text in values:
        try:
            v = float(text)
        except ValueError:
            continue
        if math.isfinite(v):
            numbers.append(v)
            if len(numbers) == start_step:
                break
    return statistics.fmean(numbers) if numbers else None


def rule(objective: api_pb2.ObjectiveSpec, per_trial: list[float],
         settings: Settings) -> api_pb2.EarlyStoppingRule | None:
    """The rule once enough trials are known, else None."""
    if len(per_trial) < settings.min_trials_required:
        return None
    comparison = api_pb2.LESS if objective.type == api_pb2.MAXIMIZE else api_pb2.GREATER
    return api_pb2.EarlyStoppingRule(name=objective.objective_metric_name,
                                     value=str(statistics.median(per_trial)),
                                     comparison=comparison, start_step=settings.start_step)


class MedianStop:
    name = NAME

    def validation_errors(self, spec: api_pb2.EarlyStoppingSpec) -> list[str]:
        return validation_errors(spec)

    def rules(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial],
              read: ReadValues) -> list[api_pb2.EarlyStoppingRule]:
        settings = parse_settings(experiment.spec.early_stopping)
        completed = [t.name for t in trials if t.status.condition == api_pb2.TrialStatus.SUCCEEDED and t.name]
        if not completed:
            return []
        per_trial = [early_value(v, settings.start_step) for v in read(completed).values()]
        found = rule(experiment.spec.objective, [v for v in per_trial if v is not None], settings)
        return [] if found is None else [found]
