"""``tpe``: hyperopt's Tree-structured Parzen Estimator (facts §7.2).

Settings: ``gamma`` (0 < x < 1), ``prior_weight`` (> 0), ``n_EI_candidates`` (> 0),
``random_state`` (>= 0); hyperopt's defaults otherwise.

Search space: stepped numbers are searched as an integer index k (value = min + k*step), so
every proposal lies on Katib's grid (hyperopt's own ``quniform`` rounds to multiples of the step
and ignores ``min``); logUniform/normal/logNormal use hyperopt's matching priors and are clipped
into [min, max]; list parameters are ``hp.choice``.

State: the hyperopt Domain (the expensive pyll graph) and one trial document per Katib trial
are cached per experiment; each call only converts trials it has not seen (or whose status
changed) and then hands hyperopt exactly the trials in the request, so a fresh instance gives
the same answer. Pending trials go in as documents without a result, which hyperopt's TPE
counts as infinitely bad: the next proposals move away from points already being evaluated.
A batch is proposed one point at a time, each added as pending before the next.
"""

from __future__ import annotations

import math

import numpy as np
from hyperopt import STATUS_OK, Trials, hp, tpe
from hyperopt.base import JOB_STATE_DONE, JOB_STATE_RUNNING, Domain

from sextant.api import api_pb2

from .base import Algorithm, SettingRule, SettingsSchema, SuggestResult, non_negative_int, settings_of
from .search_space import (
    LOG_NORMAL,
    NORMAL,
    Param,
    SearchSpace,
    assignment_of,
    completed_trials,
    objective_sign,
    pending_trials,
)

SCHEMA = SettingsSchema("tpe", {
    "random_state": SettingRule(int, non_negative_int("random_state should be great or equal than zero")),
    "gamma": SettingRule(float, lambda v: None if 0 < v < 1 else "gamma should be in the range of (0, 1)",
                         tpe._default_gamma),
    "prior_weight": SettingRule(float, lambda v: None if v > 0 else "prior_weight should be great than zero",
                                tpe._default_prior_weight),
    "n_EI_candidates": SettingRule(int, lambda v: None if v > 0 else "n_EI_candidates should be great than zero",
                                   tpe._default_n_EI_candidates),
})
N_STARTUP = tpe._default_n_startup_jobs
RETRIES = 4


def _expr(p: Param):
    """The hyperopt prior for one parameter (label = parameter name)."""
    if not p.numeric:
        return hp.choice(p.name, list(range(len(p.choices))))
    lo, hi = p.low, p.high
    if p.distribution == NORMAL:
        return hp.normal(p.name, (lo + hi) / 2, max((hi - lo) / 6, 1e-12))
    if p.distribution == LOG_NORMAL and lo > 0:
        llo, lhi = math.log(lo), math.log(hi)
        return hp.lognormal(p.name, (llo + lhi) / 2, max((lhi - llo) / 6, 1e-12))
    if p.log_scale and hi > lo:
        return hp.loguniform(p.name, math.log(lo), math.log(hi))
    if p.step is not None:
        # Index space k in {0..n-1}, modelled as continuous and rounded by us: hyperopt's
        # quantised priors evaluate their likelihood in a Python loop (~20x slower).
        return hp.uniform(p.name, -0.5, p.size - 0.5)
    return hp.uniform(p.name, lo, hi if hi > lo else lo + 1e-12)


def _uses_index(p: Param) -> bool:
    return p.numeric and p.step is not None and p.distribution not in (NORMAL,) \
        and not (p.distribution == LOG_NORMAL and p.low > 0) and not (p.log_scale and p.high > p.low)


def _to_hyperopt(p: Param, text: str) -> float:
    if not p.numeric:
        return p.choices.index(text) if text in p.choices else 0
    v = float(text)
    if _uses_index(p):
        return float(round((v - p.low) / p.step))  # type: ignore[operator]
    return v


def _from_hyperopt(p: Param, v: float) -> str:
    if not p.numeric:
        return p.choices[int(v)]
    if _uses_index(p):
        k = min(max(round(v), 0), int(p.size) - 1)
        return p.format(p.low + k * p.step)  # type: ignore[operator]
    return p.format(v)


class TPE(Algorithm):
    name = "tpe"
    invalid_settings_example = {"gamma": "1.5"}

    def __init__(self) -> None:
        super().__init__()
        self._domain: Domain | None = None
        self._space: SearchSpace | None = None
        self._docs: dict[str, dict] = {}  # trial name -> hyperopt doc
        self._doc_state: dict[str, tuple] = {}  # trial name -> (condition, loss) the doc reflects
        self._next_tid = 0

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        return SCHEMA.errors(settings_of(experiment))

    def _domain_for(self, space: SearchSpace) -> Domain:
        if self._domain is None or self._space is not space:
            expr = {p.name: _expr(p) for p in space.params}
            self._domain = Domain(lambda _: 0.0, expr, pass_expr_memo_ctrl=False)
            self._space = space
            self._docs.clear()
            self._doc_state.clear()
        return self._domain

    def _doc(self, trials: Trials, domain: Domain, space: SearchSpace, assignment: dict[str, str],
             loss: float | None) -> dict:
        tid = self._next_tid
        self._next_tid += 1
        misc = {"tid": tid, "cmd": domain.cmd, "workdir": domain.workdir,
                "idxs": {p.name: [tid] for p in space.params},
                "vals": {p.name: [_to_hyperopt(p, assignment[p.name])] for p in space.params}}
        doc = trials.new_trial_docs([tid], [None], [{"status": "new"}], [misc])[0]
        _set_loss(doc, loss)
        return doc

    def suggest(self, experiment, trials, count) -> SuggestResult:
        settings = SCHEMA.parse(settings_of(experiment))
        space = self.search_space(experiment)
        domain = self._domain_for(space)
        holder = Trials()
        sign = objective_sign(experiment)
        losses = {t.name: sign * v for t, v in completed_trials(experiment, trials)}
        pending = {t.name for t in pending_trials(trials)}
        docs: list[dict] = []
        seen: set[tuple] = set()
        for t in trials:
            seen.add(self.trial_key(space, t))
            if t.name not in losses and t.name not in pending:
                continue  # failed/killed: neither information nor a point being evaluated
            state = (t.status.condition, losses.get(t.name))
            doc = self._docs.get(t.name)
            if doc is None:
                assignment = assignment_of(t)
                if set(assignment) != set(space.names):
                    continue  # not a point of this space (a hand-made trial): nothing to learn
                doc = self._doc(holder, domain, space, assignment, losses.get(t.name))
                self._docs[t.name] = doc
            elif self._doc_state.get(t.name) != state:
                _set_loss(doc, losses.get(t.name))
            self._doc_state[t.name] = state
            docs.append(doc)
        random_state = settings["random_state"]
        base_seed = (int(random_state) + len(trials)) if random_state is not None \
            else int(np.random.default_rng().integers(2**31))
        out: list[dict[str, str]] = []
        for i in range(count):
            point = None
            for attempt in range(RETRIES):
                holder._trials = docs
                seed = (base_seed + 7919 * i + 104729 * attempt) % (2**31)
                new = tpe.suggest([self._next_tid], domain, holder, seed,
                                  prior_weight=settings["prior_weight"],
                                  n_startup_jobs=N_STARTUP,
                                  n_EI_candidates=settings["n_EI_candidates"],
                                  gamma=settings["gamma"], verbose=False)
                vals = new[0]["misc"]["vals"]
                candidate = {p.name: _from_hyperopt(p, vals[p.name][0]) for p in space.params}
                if space.key(candidate) not in seen:
                    point = candidate
                    break
            if point is None:  # TPE keeps proposing taken points: fall back to a fresh random one
                rng = np.random.default_rng(base_seed + i)
                point = space.sample(rng)
                for _ in range(32):
                    if space.key(point) not in seen:
                        break
                    point = space.sample(rng)
            seen.add(space.key(point))
            docs = docs + [self._doc(holder, domain, space, point, None)]
            out.append(point)
        return SuggestResult(out)


def _set_loss(doc: dict, loss: float | None) -> None:
    if loss is None:
        doc["result"] = {"status": "new"}
        doc["state"] = JOB_STATE_RUNNING
    else:
        doc["result"] = {"status": STATUS_OK, "loss": loss}
        doc["state"] = JOB_STATE_DONE
