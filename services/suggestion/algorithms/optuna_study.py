"""A cached optuna study kept in step with Katib's trial list (shared by optuna-based algorithms).

The study lives in optuna's in-memory storage. Each call feeds it only what changed: new
completed trials are added with ``study.add_trial(create_trial(...))``, pending trials (CREATED/
RUNNING) are added as RUNNING so samplers with ``constant_liar`` steer away from them, and a
pending trial that completes is finished in place. Points this study proposed are matched to
the Katib trials that carry them (by the point, as Katib's optuna service does), so they are
not added twice. A fresh instance given the same request builds the same study: nothing is
lost on restart.

Distributions: stepped numbers are searched as an integer index k (value = min + k*step) so
every proposal is on Katib's grid; logUniform/logNormal (min > 0) use log scale; normal is
treated as uniform on the box (optuna has no normal prior); lists are categorical.
"""

from __future__ import annotations

import logging
import math

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from sextant.api import api_pb2

from .search_space import PENDING, Param, SearchSpace, assignment_of, objective_sign, objective_value

optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("optuna").setLevel(logging.WARNING)


def distribution(p: Param) -> BaseDistribution:
    if not p.numeric:
        return CategoricalDistribution(list(p.choices))
    if p.high == p.low:
        return IntDistribution(0, 0)
    if p.log_scale:
        if p.type == "int" and p.step == 1:
            return IntDistribution(int(p.low), int(p.high), log=True)
        return FloatDistribution(p.low, p.high, log=True)
    if p.step is not None:
        return IntDistribution(0, int(p.size) - 1)
    return FloatDistribution(p.low, p.high)


def to_optuna(p: Param, dist: BaseDistribution, text: str):
    if not p.numeric:
        return text
    if p.high == p.low:
        return 0
    v = float(text)
    if isinstance(dist, IntDistribution) and not dist.log:
        return int(round((v - p.low) / p.step))  # type: ignore[operator]
    if isinstance(dist, IntDistribution):
        return int(round(v))
    return min(max(v, p.low), p.high)


def from_optuna(p: Param, dist: BaseDistribution, value) -> str:
    if not p.numeric:
        return str(value)
    if p.high == p.low:
        return p.format(p.low)
    if isinstance(dist, IntDistribution) and not dist.log:
        return p.format(p.low + int(value) * p.step)  # type: ignore[operator]
    return p.format(value)


class SyncedStudy:
    """One optuna study mirroring an experiment's trials."""

    def __init__(self, space: SearchSpace, sampler: optuna.samplers.BaseSampler, maximize: bool):
        self.space = space
        self.dists = {p.name: distribution(p) for p in space.params}
        self.study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(), sampler=sampler,
            direction="maximize" if maximize else "minimize")
        self._by_name: dict[str, tuple[int, str]] = {}  # katib trial -> (optuna trial id, state)
        self._proposed: dict[tuple, int] = {}  # point key -> optuna trial id of an asked trial

    def _params(self, assignment: dict[str, str]) -> dict:
        return {p.name: to_optuna(p, self.dists[p.name], assignment[p.name]) for p in self.space.params}

    def sync(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial]) -> None:
        metric = experiment.spec.objective.objective_metric_name
        storage = self.study._storage
        names = set()
        for t in trials:
            names.add(t.name)
            known = self._by_name.get(t.name)
            if known is not None and known[1] == "done":
                continue  # finished trials never change: the common case costs one dict lookup
            value = objective_value(t, metric)
            state = "done" if value is not None else "pending" if t.status.condition in PENDING else "other"
            if known is not None:
                trial_id, old = known
                if state != "pending":
                    self._finish(trial_id, value)
                    self._by_name[t.name] = (trial_id, "done")
                continue
            if state == "other":
                continue
            assignment = assignment_of(t)
            if set(assignment) != set(self.space.names):
                continue
            try:
                params = self._params(assignment)
            except (ValueError, TypeError):
                continue  # a value outside the space (hand-made trial): cannot learn from it
            key = self.space.key(assignment)
            trial_id = self._proposed.pop(key, None)
            if trial_id is not None:  # our own proposal: adopt it
                if state == "done":
                    self._finish(trial_id, value)
                self._by_name[t.name] = (trial_id, state)
                continue
            frozen = create_trial(
                params=params, distributions=self.dists, value=value,
                state=TrialState.COMPLETE if state == "done" else TrialState.RUNNING)
            # What study.add_trial does, minus the O(n) checks, keeping the id.
            trial_id = storage.create_new_trial(self.study._study_id, template_trial=frozen)
            self._by_name[t.name] = (trial_id, state)
        # Proposals that never became trials (a lost reply) and trials gone from the request
        # must not keep acting as "running" points.
        for key, trial_id in list(self._proposed.items()):
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            del self._proposed[key]
        if len(names) != len(self._by_name) or any(n not in names for n in self._by_name):
            for name, (trial_id, state) in list(self._by_name.items()):
                if name not in names:
                    if state == "pending":
                        storage.set_trial_state_values(trial_id, TrialState.FAIL)
                    del self._by_name[name]

    def _finish(self, trial_id: int, value: float | None) -> None:
        storage = self.study._storage
        if value is None or not math.isfinite(value):
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        else:
            storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [value])

    def ask(self, taken: set[tuple], retries: int = 4) -> dict[str, str] | None:
        """A new point not in ``taken``, recorded as a running proposal; None if none found."""
        for _ in range(retries):
            trial = self.study.ask(self.dists)
            point = {p.name: from_optuna(p, self.dists[p.name], trial.params[p.name])
                     for p in self.space.params}
            key = self.space.key(point)
            if key not in taken:
                self._proposed[key] = trial._trial_id
                return point
            self.study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return None


def study_direction_maximize(experiment: api_pb2.Experiment) -> bool:
    return objective_sign(experiment) < 0
