"""Parameter importance from an Optuna evaluator, on an in-memory study built from the trials.

Only trials with an objective value that counts (succeeded or early-stopped) enter the study;
a value outside the experiment's search space (the space was edited, or a trial was created
by hand) would make Optuna refuse the trial, so such trials are left out rather than failing.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import MeanDecreaseImpurityImportanceEvaluator, get_param_importances

from sextant.katib import trial_status
from sextant.resources.models import Distribution, Experiment, ParameterSpec, ParameterType

MIN_TRIALS = 2  # Optuna needs at least two completed trials to compare


def _distribution(p: ParameterSpec) -> BaseDistribution | None:
    space = p.feasible_space
    log = space.distribution in (Distribution.LOG_UNIFORM, Distribution.LOG_NORMAL)
    try:
        if p.parameter_type == ParameterType.DOUBLE:
            low, high = float(space.min or "nan"), float(space.max or "nan")
            return FloatDistribution(low, high, log=log and low > 0)
        if p.parameter_type == ParameterType.INT:
            return IntDistribution(int(float(space.min or "nan")), int(float(space.max or "nan")),
                                   log=log and float(space.min or 0) > 0)
    except (ValueError, OverflowError):
        return None
    if space.list_:
        return CategoricalDistribution(list(space.list_))
    return None


def _value(raw: Any, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return str(raw) if str(raw) in dist.choices else _nearest_choice(raw, dist)
    if raw is None:
        return None
    number = float(raw)
    if isinstance(dist, IntDistribution):
        return int(round(number))
    return number


def _nearest_choice(raw: Any, dist: CategoricalDistribution) -> Any:
    # Discrete lists are stored as strings ("1", "2.0"); the trial may spell a value differently.
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    for choice in dist.choices:
        try:
            if math.isclose(float(choice), number):
                return choice
        except (TypeError, ValueError):
            continue
    return None


def parameter_importance(exp: Experiment, table: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """``{"importance": {param: share}, "trials": n, "method": ...}`` or a ``reason`` why not."""
    distributions = {p.name: d for p in exp.spec.parameters if (d := _distribution(p)) is not None}
    varying = {name: d for name, d in distributions.items() if not d.single()}
    if not varying:
        return {"importance": {}, "trials": 0, "reason": "no parameter with more than one value"}
    maximize = exp.spec.objective is not None and str(exp.spec.objective.type) == "maximize"
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(direction="maximize" if maximize else "minimize")
    used = 0
    for i, value in enumerate(table["objective"]):
        if value is None or table["status"][i] not in (trial_status.SUCCEEDED, trial_status.EARLY_STOPPED):
            continue
        params = {}
        for name, dist in varying.items():
            v = _value(table["parameters"][name][i], dist)
            if v is None or not dist._contains(dist.to_internal_repr(v)):
                break
            params[name] = v
        else:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=varying, value=value))
            used += 1
    if used < MIN_TRIALS:
        return {"importance": {}, "trials": used,
                "reason": f"needs at least {MIN_TRIALS} finished trials with an objective value"}
    if len(varying) == 1:
        return {"importance": {next(iter(varying)): 1.0}, "trials": used, "method": "single parameter"}
    # Optuna's random-forest impurity evaluator: it ranks like fANOVA (Optuna's default) on
    # Sextant's benchmark study but takes 0.4 s for 2,000 trials where fANOVA took 20 s for 300.
    importance = get_param_importances(study, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=seed))
    return {"importance": {k: float(v) for k, v in importance.items()}, "trials": used,
            "method": "random-forest impurity decrease (Optuna)"}
