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

NAME = "medianstop"
DEFAULT_MIN_TRIALS_REQUIRED = 3
DEFAULT_START_STEP = 4


class InvalidEarlyStoppingSettings(ValueError):
    pass


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
            value = parse_int(raw)  # Go's strconv.Atoi, as Katib's service; a bounded error
        except NumberError as exc:
            shown = raw if len(raw) <= 40 else excerpt(raw)
            return [f"failed to validate {name}({shown}): {exc}"]
        if name == "min_trials_required" and value <= 0:
            return ["min_trials_required must be greater than zero (>0)"]
        if name == "start_step" and value < 1:
            return ["start_step must be greater or equal than one (>=1)"]
    return []


def parse_settings(spec: api_pb2.EarlyStoppingSpec) -> Settings:
    errors = validation_errors(spec)
    if errors:
        raise InvalidEarlyStoppingSettings("; ".join(errors))
    values = {s.name: parse_int(s.value) for s in spec.algorithm_settings}
    return Settings(values.get("min_trials_required", DEFAULT_MIN_TRIALS_REQUIRED),
                    values.get("start_step", DEFAULT_START_STEP))


def early_value(values: Iterable[str], start_step: int) -> float | None:
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
