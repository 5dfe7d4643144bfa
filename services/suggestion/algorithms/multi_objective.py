"""``nsga2`` and ``mo-tpe``: optuna's multi-objective samplers, driven from the request's trials.

The objectives are the experiment's primary objective (``objectiveMetricName`` and its type)
followed by the extra ones the experiment declares (``sextant.objectives``), which reach the
algorithm as the setting ``sextant.io/objectives``. Without that setting both algorithms
optimise the primary objective alone.

* ``nsga2``: ``optuna.samplers.NSGAIISampler``. Settings: ``population_size`` (int >= 2,
  default 20: optuna's 50 leaves only two or three generations in a budget of 100-200
  trials), ``crossover_prob`` and ``mutation_prob`` (0..1; optuna's defaults 0.9 and
  1/parameters), ``random_state``.
* ``mo-tpe``: ``optuna.samplers.TPESampler`` with several directions (optuna's MOTPE),
  multivariate, with the constant liar so pending trials push new points away. Settings:
  ``n_startup_trials`` (default 10), ``n_ei_candidates`` (default 24), ``random_state``.

State: none kept between calls. Each call builds an in-memory optuna study from the request:
every trial with all objective values is a COMPLETE trial, every CREATED/RUNNING trial a RUNNING
one, the rest are left out (their points are still never proposed again). NSGA-II's generations
are the completed trials in request order, ``population_size`` at a time, so a fresh instance
(a restarted service) rebuilds the same generations. The sampler is seeded from
``random_state`` and the number of trials in the request: the same request gives the same
answer. A proposal equal to a point already in the request or the batch is asked again, then
replaced by a random untaken point.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, NSGAIISampler, TPESampler
from optuna.trial import FrozenTrial, TrialState, create_trial

from sextant import objectives
from sextant.api import api_pb2

from .base import (
    Algorithm,
    InvalidSettings,
    SettingRule,
    SettingsSchema,
    SuggestResult,
    non_negative_int,
    settings_of,
)
from .cancel import check_cancelled
from .optuna_study import distribution, from_optuna, to_optuna
from .search_space import PENDING, SearchSpace, assignment_of, objective_value

RETRIES = 4


def _probability(name: str) -> SettingRule:
    return SettingRule(float, lambda v: None if 0.0 <= v <= 1.0 else f"{name} should be between 0 and 1")


def _seed_rule() -> SettingRule:
    return SettingRule(int, non_negative_int("random_state should be greate or equal than zero"))


def _objectives_rule() -> SettingRule:
    def check(text: str) -> str | None:
        try:
            objectives.parse(text)
        except objectives.ObjectivesError as exc:
            return f"{objectives.SETTING}: {exc}"
        return None
    return SettingRule(str, check)


class MultiObjective(Algorithm):
    """Shared driver: subclasses give the schema and build the sampler."""

    schema: ClassVar[SettingsSchema]

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        settings = settings_of(experiment)
        errors = self.schema.errors(settings)
        text = settings.get(objectives.SETTING)
        if text is not None and not errors:
            objective = experiment.spec.objective
            errors += [f"{objectives.SETTING}: {problem}" for problem in objectives.check(
                text, objective.objective_metric_name, list(objective.additional_metric_names))]
        return errors

    def sampler(self, settings: dict[str, Any], seed: int | None) -> BaseSampler:
        raise NotImplementedError

    def trial_attrs(self, settings: dict[str, Any], index: int) -> dict[str, Any]:
        """System attributes of the ``index``-th completed trial (request order)."""
        return {}

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        settings = self.schema.parse(settings_of(experiment))
        goals = objectives_of(experiment, settings.get(objectives.SETTING))
        space = self.search_space(experiment)
        dists = {p.name: distribution(p) for p in space.params}
        random_state = settings["random_state"]
        seeds = np.random.SeedSequence(None if random_state is None else [int(random_state), len(trials)])
        seed, fallback_seed = (int(s) for s in seeds.generate_state(2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # optuna's experimental-feature warnings
            study = optuna.create_study(directions=[o.direction for o in goals],
                                        sampler=self.sampler(settings, seed))
            study.add_trials(self._frozen(space, dists, goals, settings, trials))
            taken = self.taken_points(space, trials)
            out: list[dict[str, str]] = []
            fallback: np.random.Generator | None = None
            for _ in range(count):
                check_cancelled()
                point = None
                for _ in range(RETRIES):
                    asked = study.ask(dists)
                    candidate = {p.name: from_optuna(p, dists[p.name], asked.params[p.name]) for p in space.params}
                    if space.key(candidate) not in taken:
                        point = candidate  # stays RUNNING: the rest of the batch sees it
                        break
                    study.tell(asked, state=TrialState.FAIL)
                if point is None:  # the sampler keeps hitting taken points (a small space)
                    if fallback is None:
                        fallback = np.random.default_rng(fallback_seed)
                    point = space.sample_untaken(fallback, taken)
                taken.add(space.key(point))
                out.append(point)
        return SuggestResult(out)

    def _frozen(self, space: SearchSpace, dists: dict[str, BaseDistribution], goals: list[objectives.Objective],
                settings: dict[str, Any], trials: list[api_pb2.Trial]) -> list[FrozenTrial]:
        out: list[FrozenTrial] = []
        completed = 0
        for t in trials:
            params = _params(space, dists, assignment_of(t))
            if params is None:
                continue
            values = [objective_value(t, o.name) for o in goals]
            if all(v is not None for v in values):
                out.append(create_trial(params=params, distributions=dists, values=values,  # type: ignore[arg-type]
                                        system_attrs=self.trial_attrs(settings, completed)))
                completed += 1
            elif t.status.condition in PENDING:
                out.append(create_trial(params=params, distributions=dists, state=TrialState.RUNNING))
        return out


def objectives_of(experiment: api_pb2.Experiment, declared: str | None) -> list[objectives.Objective]:
    """The primary objective, then the declared extra ones."""
    objective = experiment.spec.objective
    primary = objectives.Objective(objective.objective_metric_name, objective.type == api_pb2.MAXIMIZE)
    try:
        extra = objectives.parse(declared) if declared else []
    except objectives.ObjectivesError as exc:
        raise InvalidSettings(f"{objectives.SETTING}: {exc}") from None
    return [primary, *extra]


def _params(space: SearchSpace, dists: dict[str, BaseDistribution], assignment: dict[str, str]
            ) -> dict[str, Any] | None:
    """A Katib assignment as optuna parameter values, or None when it is not a point of the
    space (a missing parameter, a hand-made value outside it)."""
    params: dict[str, Any] = {}
    for p in space.params:
        text = assignment.get(p.name)
        if text is None:
            return None
        dist = dists[p.name]
        try:
            value = to_optuna(p, dist, text)
            if not dist._contains(dist.to_internal_repr(value)):
                return None
        except (ValueError, TypeError):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        params[p.name] = value
    return params


class NSGA2(MultiObjective):
    name = "nsga2"
    invalid_settings_example = {"population_size": "1"}
    schema = SettingsSchema("nsga2", {
        "population_size": SettingRule(int, lambda v: None if v >= 2 else "population_size should be at least 2", 20),
        "crossover_prob": _probability("crossover_prob"),
        "mutation_prob": _probability("mutation_prob"),
        "random_state": _seed_rule(),
        objectives.SETTING: _objectives_rule(),
    })

    def sampler(self, settings: dict[str, Any], seed: int | None) -> BaseSampler:
        extra: dict[str, Any] = {}
        if settings["crossover_prob"] is not None:
            extra["crossover_prob"] = settings["crossover_prob"]
        return NSGAIISampler(population_size=settings["population_size"], mutation_prob=settings["mutation_prob"],
                             seed=seed, **extra)

    def trial_attrs(self, settings: dict[str, Any], index: int) -> dict[str, Any]:
        return {NSGAIISampler._get_generation_key(): index // settings["population_size"]}


class MOTPE(MultiObjective):
    name = "mo-tpe"
    invalid_settings_example = {"n_startup_trials": "-1"}
    schema = SettingsSchema("mo-tpe", {
        "n_startup_trials": SettingRule(int, non_negative_int("n_startup_trials should be greate or equal than zero"),
                                        10),
        "n_ei_candidates": SettingRule(int, lambda v: None if v > 0 else "n_ei_candidates should be greater than zero",
                                       24),
        "random_state": _seed_rule(),
        objectives.SETTING: _objectives_rule(),
    })

    def sampler(self, settings: dict[str, Any], seed: int | None) -> BaseSampler:
        return TPESampler(n_startup_trials=settings["n_startup_trials"], n_ei_candidates=settings["n_ei_candidates"],
                          multivariate=True, constant_liar=True, seed=seed)

