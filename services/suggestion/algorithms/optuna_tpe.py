"""optuna's multivariate TPE (constant liar) evaluated on numpy rows instead of a Study.

``TPESampler(multivariate=True, constant_liar=True)`` asked through a Study re-reads every trial
on each ask: it copies the trial list, re-converts every parameter of every trial to its
internal representation and splits the trials with per-trial Python calls -- O(n) Python work
that is most of the time at hundreds of trials. Here the trials are kept as rows in optuna's
internal representation (``trial_history``) and each ask runs exactly the sampler's steps
(``TPESampler._sample``) on arrays:

1. fewer than ``n_startup_trials`` completed trials: a uniform draw over the distributions,
   as optuna's RandomSampler does (``_SearchSpaceTransform`` bounds);
2. otherwise the completed trials are ranked by loss, the best ``default_gamma(n)`` are
   "below", the rest plus the running trials (the constant liar) are "above", each group in
   trial order (the ``default_weights`` ramp forgets the oldest);
3. optuna's ``_ParzenEstimator`` is built on each group, ``n_ei_candidates`` points are drawn
   from "below", and the one maximising log l(x) - log g(x) wins.

Pinned to optuna 5.0.0: tests/integration/test_algorithms_tpe.py compares this with
``TPESampler._sample`` on the same study and random state, so a change of those internals fails.
"""

from __future__ import annotations

import numpy as np
from optuna._transform import _SearchSpaceTransform
from optuna.distributions import BaseDistribution
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.sampler import default_gamma, default_weights


class OptunaTPE:
    """One experiment's multivariate TPE over ``dists`` (name -> optuna distribution, in row order)."""

    def __init__(self, dists: dict[str, BaseDistribution], n_startup_trials: int, n_ei_candidates: int) -> None:
        self.dists = dists
        self.names = list(dists)
        # single-valued distributions are not searched (optuna leaves them out too)
        self.columns = [j for j, name in enumerate(self.names) if not dists[name].single()]
        self.search = {self.names[j]: dists[self.names[j]] for j in self.columns}
        self.n_startup_trials = n_startup_trials
        self.n_ei_candidates = n_ei_candidates
        # TPESampler's defaults (prior_weight 1, magic clip, no endpoints, default weights)
        self.parameters = _ParzenEstimatorParameters(
            prior_weight=1.0, consider_magic_clip=True, consider_endpoints=False,
            weights=default_weights, multivariate=True)
        self._transform = _SearchSpaceTransform(self.search) if self.search else None

    def encode(self, params: dict) -> list[float]:
        """optuna parameter values -> one row (internal representation)."""
        row = []
        for name in self.names:
            dist = self.dists[name]
            internal = dist.to_internal_repr(params[name])
            if not dist._contains(internal):
                raise ValueError(f"{name}={params[name]!r} is outside {dist}")
            row.append(float(internal))
        return row

    def _external(self, values: dict) -> dict:
        """Searched values (external representation) plus the single-valued ones."""
        return {name: values[name] if name in values else _only_value(self.dists[name]) for name in self.names}

    def ask(self, x: np.ndarray, loss: np.ndarray, rng: np.random.RandomState) -> dict:
        """One point. ``x``: rows in trial order; ``loss``: minimised, NaN for running trials."""
        complete = ~np.isnan(loss)
        n = int(complete.sum())
        if self._transform is None:  # nothing to search
            return self._external({})
        if n < self.n_startup_trials:
            bounds = self._transform.bounds
            return self._external(self._transform.untransform(rng.uniform(bounds[:, 0], bounds[:, 1])))
        done = np.flatnonzero(complete)
        # sorted() in optuna is stable: ties keep trial order, so use a stable sort too
        ranked = done[np.argsort(loss[done], kind="stable")]
        n_below = min(default_gamma(n), n)
        below = np.sort(ranked[:n_below])
        above = np.sort(np.concatenate([ranked[n_below:], np.flatnonzero(~complete)]))
        mpe_below = _ParzenEstimator(self._observations(x, below), self.search, self.parameters)
        mpe_above = _ParzenEstimator(self._observations(x, above), self.search, self.parameters)
        samples = mpe_below.sample(rng, self.n_ei_candidates)
        score = mpe_below.log_pdf(samples) - mpe_above.log_pdf(samples)
        best = int(np.argmax(score))
        return self._external({name: dist.to_external_repr(samples[name][best].item())
                               for name, dist in self.search.items()})

    def _observations(self, x: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {self.names[j]: x[rows, j] for j in self.columns}


def _only_value(dist: BaseDistribution):
    if hasattr(dist, "choices"):
        return dist.choices[0]
    return dist.low
