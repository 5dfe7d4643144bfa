"""``tpe``: hyperopt's Tree-structured Parzen Estimator (Katib's settings).

Settings: ``gamma`` (0 < x < 1), ``prior_weight`` (> 0), ``n_EI_candidates`` (> 0),
``random_state`` (>= 0); hyperopt's defaults otherwise.

Search space: stepped numbers are searched as an integer index k (value = min + k*step), so
every proposal lies on Katib's grid (hyperopt's own ``quniform`` rounds to multiples of the step
and ignores ``min``); logUniform/normal/logNormal use hyperopt's matching priors and are clipped
into [min, max]; list parameters are ``hp.choice``.

State: per experiment, the hyperopt Domain with its TPE posterior graph (built once per
setting) and the trials as numpy rows (``trial_history``: a trial is re-read only when new or
its condition changed). Each call evaluates hyperopt's posterior with those rows -- the same
memo ``tpe.suggest`` builds from its trial documents, without rebuilding documents, graph or
the per-label grouping each time (see ``_Posterior``); for the same request and seed the
answer is the one ``tpe.suggest`` gives, and a fresh instance gives the same answer. Pending
trials count with loss +inf, as hyperopt counts documents without a result: the next
proposals move away from points already being evaluated. A batch is proposed one point at a
time, each added as pending before the next.

Seeds: proposal k of an experiment (k = trials so far) is seeded like hyperopt's ``fmin`` seeds
its k-th call, from one generator seeded with ``random_state`` (``_call_seeds``), so driven one
trial at a time a tpe experiment proposes what ``fmin(tpe.suggest, rstate=default_rng(seed))``
proposes, trial for trial.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hyperopt import hp, pyll, tpe
from hyperopt.base import Domain
from hyperopt.tpe import DEFAULT_LF
from numpy.typing import NDArray

from sextant.api import api_pb2

from .base import Algorithm, SettingRule, SettingsSchema, SuggestResult, non_negative_int, settings_of
from .cancel import check_cancelled
from .search_space import (
    LOG_NORMAL,
    NORMAL,
    Param,
    SearchSpace,
)
from .trial_history import TrialHistory

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


def _expr(p: Param) -> Any:  # a hyperopt pyll.Apply node (untyped)
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
        return float(round((v - p.low) / p.step))  # type: ignore[operator]  # _uses_index: step is set
    return v


def _from_hyperopt(p: Param, v: float) -> str:
    if not p.numeric:
        return p.choices[int(v)]
    if _uses_index(p):
        k = min(max(round(v), 0), int(p.size) - 1)
        return p.format(p.low + k * p.step)  # type: ignore[operator]  # _uses_index: step is set
    return p.format(v)


class _Posterior:
    """hyperopt's TPE posterior for one domain and setting, evaluated on arrays.

    ``tpe.suggest`` rebuilds the pyll posterior graph, walks every trial document and regroups
    them (``miscs_to_idxs_vals``) on each call: O(n) Python work that dominates at hundreds of
    trials. This builds the graph once (``tpe.build_posterior_wrapper``) and evaluates it with
    the observations given as arrays, exactly the memo ``tpe.suggest`` would build: trial ids in
    first-seen order, losses with +inf for pending trials, one value per trial and label.
    Startup (fewer than ``n_startup_jobs`` trials, pending ones included, as in hyperopt)
    samples the prior like ``hyperopt.rand.suggest``. Pinned to hyperopt 0.3.0
    (tests/integration/test_algorithms_tpe.py checks the internals it relies on).
    """

    def __init__(self, domain: Domain, labels: list[str], prior_weight: float, gamma: float,
                 n_ei_candidates: int, n_startup_jobs: int) -> None:
        self.domain = domain
        self.labels = labels
        self.prior_weight = prior_weight
        self.n_ei_candidates = n_ei_candidates
        self.n_startup_jobs = n_startup_jobs
        self.int_labels = {label for label, node in domain.params.items() if node.name == "randint"}
        # hyperopt shifts two-argument randint samples by their lower bound after evaluation
        self.offsets = {label: node.pos_args[0].obj for label, node in domain.params.items()
                        if node.name == "randint" and len(node.pos_args) == 2}
        self.gamma = gamma
        self._graph: tuple[Any, Any, Any, dict[object, str]] | None = None  # built on first use: startup never needs it

    @property
    def graph(self) -> tuple[Any, Any, Any, dict[object, str]]:
        """(observed, observed_loss, posterior, splits) for this domain and setting."""
        if self._graph is None:
            observed, observed_loss, posterior = tpe.build_posterior_wrapper(
                self.domain, self.prior_weight, self.gamma)
            # The below/above split nodes, one per label. hyperopt's ap_split_trials regroups
            # with Python loops over every trial; with every label observed on every trial (our
            # spaces have no conditional parameters) its result is one boolean mask shared by
            # all labels, so we compute it once with numpy and hand it over through the memo.
            splits: dict[object, str] = {}
            for node in pyll.dfs(pyll.as_apply(posterior)):
                if node.name == "ap_split_trials":
                    splits[node] = node.pos_args[1].pos_args[1].obj  # getitem(observed vals, label)
            self._graph = (observed, observed_loss, posterior, splits)
        return self._graph

    def suggest(self, x: NDArray[np.float64], losses: NDArray[np.float64], seed: int) -> dict[str, float]:
        """One point (label -> hyperopt value); ``x`` columns follow ``labels``."""
        domain = self.domain
        n = len(losses)
        rng = np.random.default_rng(seed)
        if n < self.n_startup_jobs:
            idxs, vals = pyll.rec_eval(domain.s_idxs_vals, memo={domain.s_new_ids: [n], domain.s_rng: rng})
            return {label: vals[label][0] for label in self.labels}
        observed, observed_loss, posterior, splits = self.graph
        tids = np.arange(n)
        fake_id_0 = n + 2  # max(max(tids), new id n) + 2, as hyperopt picks it
        fake_ids = list(range(fake_id_0, fake_id_0 + self.n_ei_candidates))
        memo: dict[Any, Any] = {domain.s_new_ids: fake_ids, domain.s_rng: rng,
                observed_loss["idxs"]: tids, observed_loss["vals"]: losses,
                observed["idxs"]: {label: tids for label in self.labels},
                observed["vals"]: {label: x[:, j].astype(int) if label in self.int_labels else x[:, j]
                                        for j, label in enumerate(self.labels)}}
        below = _below_mask(losses, self.gamma)
        for node, label in splits.items():
            obs = memo[observed["vals"]][label]
            memo[node] = (_nonempty(obs[below]), _nonempty(obs[~below]))
        idxs, vals = pyll.rec_eval(posterior, memo=memo, print_node_on_error=False)
        out = {}
        for label in self.labels:
            pos = list(idxs[label]).index(fake_ids[0])
            out[label] = vals[label][pos] + self.offsets.get(label, 0)
        return out


def _call_seeds(random_state: int | None, n_trials: int, count: int) -> NDArray[np.int64]:
    """The seeds of the next ``count`` proposals after ``n_trials`` trials.

    hyperopt's ``fmin(rstate=np.random.default_rng(random_state))`` seeds its k-th call to
    ``tpe.suggest`` with the k-th ``rstate.integers(2**31 - 1)``; proposal k here gets that same
    number (k = trials so far, then +1 per point of a batch), so a tpe experiment driven one
    trial at a time proposes exactly what hyperopt's own loop proposes with that seed. It is a
    function of (random_state, number of trials) only: a fresh process given the same request
    answers the same. Seeds of different experiments and calls are draws of one generator,
    not overlapping ranges: ``random_state + n_trials``, used before, gave experiment s+1 the
    seeds of experiment s shifted by one call (the same 20 startup points, one off), so
    experiments meant to be independent repeated each other. Array draws equal successive
    scalar draws (tests/integration/test_algorithms_tpe.py checks it); ~30 us for 1,000 trials.
    """
    if random_state is None:
        return np.random.default_rng().integers(2**31 - 1, size=count)
    return np.random.default_rng(int(random_state)).integers(2**31 - 1, size=n_trials + count)[n_trials:]


def _retry_seed(seed: int, attempt: int) -> int:
    # another independent stream for the same proposal when the first one was already taken
    return int(np.random.default_rng([int(seed), attempt]).integers(2**31 - 1))


def _below_mask(losses: NDArray[np.float64], gamma: float) -> NDArray[np.bool_]:
    """Which trials hyperopt's ``ap_split_trials`` puts below gamma (same n_below, same sort)."""
    n_below = min(int(np.ceil(gamma * np.sqrt(len(losses)))), DEFAULT_LF)
    mask = np.zeros(len(losses), dtype=bool)
    mask[np.argsort(losses)[:n_below]] = True
    return mask


def _nonempty(values: np.ndarray) -> np.ndarray:
    # ap_split_trials returns np.asarray([]) (float) for an empty group, whatever the label
    return values if len(values) else np.asarray([])


class TPE(Algorithm):
    name = "tpe"
    invalid_settings_example = {"gamma": "1.5"}

    def __init__(self) -> None:
        super().__init__()
        self._space: SearchSpace | None = None
        self._history: TrialHistory | None = None
        self._posterior: _Posterior | None = None
        self._posterior_key: tuple[float, float, int] | None = None

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        return SCHEMA.errors(settings_of(experiment))

    def _state_for(self, space: SearchSpace, settings: dict[str, Any]) -> tuple[TrialHistory, _Posterior]:
        key = (settings["prior_weight"], settings["gamma"], settings["n_EI_candidates"])
        if self._space is not space or self._history is None:
            self._space = space
            self._history = TrialHistory(space, lambda a: [_to_hyperopt(p, a[p.name]) for p in space.params])
            self._posterior = None
        if self._posterior is None or self._posterior_key != key:
            expr = {p.name: _expr(p) for p in space.params}
            domain = Domain(lambda _: 0.0, expr, pass_expr_memo_ctrl=False)
            self._posterior = _Posterior(domain, list(space.names), settings["prior_weight"], settings["gamma"],
                                         settings["n_EI_candidates"], N_STARTUP)
            self._posterior_key = key
        return self._history, self._posterior

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        settings = SCHEMA.parse(settings_of(experiment))
        space = self.search_space(experiment)
        history, posterior = self._state_for(space, settings)
        history.sync(experiment, trials)
        x, losses = history.usable()
        losses = np.where(np.isnan(losses), np.inf, losses)  # pending = infinitely bad (constant liar)
        seen = set(history.taken)
        seeds = _call_seeds(settings["random_state"], len(trials), count)
        out: list[dict[str, str]] = []
        for i in range(count):
            check_cancelled()
            point = None
            for attempt in range(RETRIES):
                seed = int(seeds[i]) if attempt == 0 else _retry_seed(seeds[i], attempt)
                vals = posterior.suggest(x, losses, seed)
                candidate = {p.name: _from_hyperopt(p, vals[p.name]) for p in space.params}
                if space.key(candidate) not in seen:
                    point = candidate
                    break
            if point is None:  # TPE keeps proposing taken points: fall back to a fresh random one
                rng = np.random.default_rng([int(seeds[i]), RETRIES])
                point = space.sample_untaken(rng, seen)
            seen.add(space.key(point))
            # the new point is pending for the rest of the batch
            x = np.vstack([x, [_to_hyperopt(p, point[p.name]) for p in space.params]])
            losses = np.append(losses, np.inf)
            out.append(point)
        return SuggestResult(out)
