"""``cmaes``: CMA-ES (the ``cmaes`` package) in the unit cube of the search space.

Settings (Katib's): ``restart_strategy`` ``ipop`` / ``bipop`` / ``none`` (``None`` too),
``sigma`` (initial step size in the unit cube, float >= 0, 0 = default 1/6), ``random_state``
(int >= 0). Any other name is rejected ("unknown setting <name> for algorithm cmaes"), as
Katib's optuna-based cmaes does; its default (Goptuna) service ignores unknown names and answers
bad values with INTERNAL, which Katib's controller takes as valid. Needs at least two DOUBLE/INT
parameters. List parameters ride along as equal-width bins.

State: the CMA optimizer is cached per experiment; completed trials are told in generations of
``population_size`` as they appear (a fresh instance replays all of them in request order, so a
restart keeps what was learnt). The sampling rng is reseeded from (random_state, number of
trials) on each call, so the same request gives the same answer. Proposals equal to a point
already in the request (pending included) are re-drawn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from cmaes import CMA
from numpy.typing import NDArray

from sextant.api import api_pb2

from .base import (
    Algorithm,
    SettingRule,
    SettingsSchema,
    SuggestResult,
    non_negative_int,
    setting_pairs,
    settings_of,
)
from .cancel import check_cancelled
from .search_space import SpaceError, assignment_of, objective_sign, objective_value

RESTARTS = {"ipop": "ipop", "bipop": "bipop", "none": "none", "None": "none"}


def _restart(value: str) -> str:
    if value not in RESTARTS:
        raise ValueError(f"restart_strategy {value} is not supported in CMAES optimization")
    return RESTARTS[value]


SCHEMA = SettingsSchema("cmaes", {
    "restart_strategy": SettingRule(str, lambda v: None if v in RESTARTS else
                                    f"restart_strategy {v} is not supported in CMAES optimization", "none"),
    "sigma": SettingRule(float, lambda v: None if v >= 0 and math.isfinite(v) else
                         "sigma should be greate or equal than zero", 0.0),
    "random_state": SettingRule(int, non_negative_int("random_state should be greate or equal than zero")),
})
DIM_MESSAGE = "cmaes only supports two or more dimensional continuous search space."
REDRAWS = 16


class CMAES(Algorithm):
    name = "cmaes"
    invalid_settings_example = {"restart_strategy": "sometimes"}

    def __init__(self) -> None:
        super().__init__()
        self._cma: CMA | None = None
        self._told: set[str] = set()
        self._buffer: list[tuple[NDArray[np.float64], float]] = []
        self._restarts = 0
        self._base_popsize = 0
        self._small_budget_turn = False

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        errors = SCHEMA.errors(setting_pairs(experiment))
        if errors:  # Katib checks the settings first and stops at the first problem
            return errors
        try:
            space = self.search_space(experiment)
        except SpaceError as exc:
            return [str(exc)]
        if sum(1 for p in space.params if p.numeric) < 2:  # DOUBLE and INT parameters
            return [DIM_MESSAGE]
        return []

    def _new_cma(self, dim: int, settings: dict[str, Any], popsize: int | None = None) -> CMA:
        sigma = settings["sigma"] or 1.0 / 6.0
        seed = settings["random_state"]
        seed = None if seed is None else int(seed) + 1009 * self._restarts
        bounds = np.array([[0.0, 1.0]] * dim)
        return CMA(mean=np.full(dim, 0.5), sigma=sigma, bounds=bounds, seed=seed, population_size=popsize)

    def _maybe_restart(self, dim: int, settings: dict[str, Any]) -> None:
        cma = self._cma
        assert cma is not None
        strategy = settings["restart_strategy"]
        if strategy == "none" or not cma.should_stop():
            return
        self._restarts += 1
        if strategy == "ipop":
            popsize = self._base_popsize * 2 ** self._restarts
        else:  # bipop, simplified: alternate a doubled large population and a small random one
            self._small_budget_turn = not self._small_budget_turn
            large = self._base_popsize * 2 ** ((self._restarts + 1) // 2)
            if self._small_budget_turn:
                rng = np.random.default_rng([settings["random_state"] or 0, self._restarts])
                popsize = max(self._base_popsize, int(self._base_popsize * (0.5 * large / self._base_popsize)
                                                      ** (rng.uniform() ** 2)))
            else:
                popsize = large
        self._cma = self._new_cma(dim, settings, popsize)
        self._buffer.clear()

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        settings = {k: v for k, v in settings_of(experiment).items() if k in SCHEMA.rules}
        parsed = SCHEMA.parse(settings)
        parsed["restart_strategy"] = _restart(str(parsed["restart_strategy"]))
        space = self.search_space(experiment)
        dim = len(space)
        if self._cma is None:
            self._cma = self._new_cma(dim, parsed)
            self._base_popsize = self._cma.population_size
        sign = objective_sign(experiment)
        metric = experiment.spec.objective.objective_metric_name
        for t in trials:
            if t.name in self._told:
                continue
            value = objective_value(t, metric)
            if value is None:
                continue
            self._told.add(t.name)
            assignment = assignment_of(t)
            if set(assignment) != set(space.names):
                continue
            self._buffer.append((np.array(space.to_unit(assignment)), sign * value))
            if len(self._buffer) == self._cma.population_size:
                self._cma.tell(self._buffer)
                self._buffer = []
                self._maybe_restart(dim, parsed)
        seed = parsed["random_state"]
        rng = np.random.RandomState(None if seed is None else [int(seed), len(trials)])
        self._cma._rng = rng  # reseed so the answer depends on the request, not on call history
        taken = self.taken_points(space, trials)
        out = []
        for _ in range(count):
            check_cancelled()
            point = None
            for _ in range(REDRAWS):
                candidate = space.from_unit(self._cma.ask())
                if space.key(candidate) not in taken:
                    point = candidate
                    break
            if point is None:
                gen = np.random.default_rng(rng.randint(2**31))
                point = space.sample_untaken(gen, taken)
            taken.add(space.key(point))
            out.append(point)
        return SuggestResult(out)
