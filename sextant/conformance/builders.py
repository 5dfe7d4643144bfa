"""Katib request builders used by the conformance checks, tests and benchmarks."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from sextant.api import api_pb2

Condition = api_pb2.TrialStatus.TrialConditionType


def parameter(name: str, ptype: str, *, min: str = "", max: str = "", step: str = "",
              values: Iterable[str] = (), distribution: str = "") -> api_pb2.ParameterSpec:
    """One ParameterSpec; ``ptype`` is double/int/categorical/discrete, distribution Katib's name."""
    types = {"double": api_pb2.DOUBLE, "int": api_pb2.INT, "categorical": api_pb2.CATEGORICAL,
             "discrete": api_pb2.DISCRETE}
    dists = {"": api_pb2.DISTRIBUTION_UNSPECIFIED, "uniform": api_pb2.UNIFORM,
             "logUniform": api_pb2.LOG_UNIFORM, "normal": api_pb2.NORMAL, "logNormal": api_pb2.LOG_NORMAL}
    return api_pb2.ParameterSpec(
        name=name, parameter_type=types[ptype],
        feasible_space=api_pb2.FeasibleSpace(min=min, max=max, step=step, list=list(values),
                                             distribution=dists[distribution]))


def experiment(name: str, algorithm: str, params: Iterable[api_pb2.ParameterSpec], *,
               settings: dict[str, str] | None = None, maximize: bool = False,
               metric: str = "objective", max_trial_count: int = 0,
               parallel_trial_count: int = 0) -> api_pb2.Experiment:
    exp = api_pb2.Experiment(name=name)
    exp.spec.parameter_specs.parameters.extend(params)
    exp.spec.objective.type = api_pb2.MAXIMIZE if maximize else api_pb2.MINIMIZE
    exp.spec.objective.objective_metric_name = metric
    exp.spec.algorithm.algorithm_name = algorithm
    for k, v in (settings or {}).items():
        exp.spec.algorithm.algorithm_settings.add(name=k, value=v)
    if max_trial_count:
        exp.spec.max_trial_count = max_trial_count
    if parallel_trial_count:
        exp.spec.parallel_trial_count = parallel_trial_count
    return exp


def mixed_space() -> list[api_pb2.ParameterSpec]:
    """Five parameters of every kind: double, stepped double, log double, int, categorical."""
    return [
        parameter("lr", "double", min="0.0001", max="0.1", distribution="logUniform"),
        parameter("momentum", "double", min="0.5", max="0.99"),
        parameter("dropout", "double", min="0.0", max="0.5", step="0.05"),
        parameter("layers", "int", min="1", max="8"),
        parameter("optimizer", "categorical", values=["sgd", "adam", "ftrl"]),
    ]


def trial(name: str, assignment: dict[str, str], *, condition: api_pb2.TrialStatus.TrialConditionType = Condition.SUCCEEDED,
          metric: str = "objective", value: float | str | None = None,
          extra_metrics: dict[str, float | str] | None = None) -> api_pb2.Trial:
    """``extra_metrics``: further observed metrics (an experiment's additionalMetricNames, which
    multi-objective services optimise too)."""
    t = api_pb2.Trial(name=name)
    for k, v in assignment.items():
        t.spec.parameter_assignments.assignments.add(name=k, value=v)
    t.status.condition = condition
    if value is not None:
        t.status.observation.metrics.add(name=metric, value=str(value))
    for extra, extra_value in (extra_metrics or {}).items():
        t.status.observation.metrics.add(name=extra, value=str(extra_value))
    return t


def assignment(pa: api_pb2.GetSuggestionsReply.ParameterAssignments
               | api_pb2.TrialSpec.ParameterAssignments) -> dict[str, str]:
    """A reply's ParameterAssignments (or a Trial's) as a dict."""
    items = pa.assignments
    return {a.name: a.value for a in items}


def synthetic_value(point: dict[str, str]) -> float:
    """A deterministic objective for any point (numbers summed through sin, lists hashed)."""
    total = 0.0
    for k, v in sorted(point.items()):
        try:
            total += math.sin(float(v) * 3.1 + len(k))
        except ValueError:
            total += (sum(map(ord, v)) % 7) / 7
    return total


def random_point(params: Iterable[api_pb2.ParameterSpec], rng: random.Random) -> dict[str, str]:
    """A feasible point drawn uniformly (used to fabricate completed trials)."""
    out = {}
    for p in params:
        fs = p.feasible_space
        if p.parameter_type in (api_pb2.CATEGORICAL, api_pb2.DISCRETE):
            out[p.name] = rng.choice(list(fs.list))
        elif p.parameter_type == api_pb2.INT:
            step = int(fs.step or "1")
            n = (int(fs.max) - int(fs.min)) // step
            out[p.name] = str(int(fs.min) + step * rng.randint(0, n))
        else:
            lo, hi = float(fs.min), float(fs.max)
            if fs.step:
                fstep = float(fs.step)
                n = int(math.floor((hi - lo) / fstep + 1e-9))
                out[p.name] = str(round(lo + fstep * rng.randint(0, n), 10))
            else:
                out[p.name] = str(rng.uniform(lo, hi))
    return out


def completed_history(exp: api_pb2.Experiment, n: int, seed: int = 0) -> list[api_pb2.Trial]:
    """``n`` SUCCEEDED trials at random feasible points with a synthetic objective."""
    rng = random.Random(seed)
    params = list(exp.spec.parameter_specs.parameters)
    metric = exp.spec.objective.objective_metric_name
    out = []
    for i in range(n):
        point = random_point(params, rng)
        out.append(trial(f"{exp.name}-t{i}", point, metric=metric, value=synthetic_value(point)))
    return out
