"""``tpe``: univariate Tree-structured Parzen Estimator -- optuna's ``TPESampler(multivariate=False,
constant_liar=True)`` evaluated on the request's trials, with Katib's settings.

Every parameter gets its own pair of Parzen estimators (good trials / the rest), as in hyperopt,
which Katib's ``tpe`` service runs; users who want one joint model pick ``multivariate-tpe``.
Why optuna's sampler rather than hyperopt's (measured in BENCHMARKS.md, "tpe: univariate TPE
study"): optuna's TPE reaches lower regret than hyperopt's over the suite, mainly through its
larger good group (the best 10 % of the trials instead of ``0.25 * sqrt(n)``: 3 of 100 trials).
As in ``multivariate-tpe``, Sextant sharpens the good density (``SHARPEN``); the sampler is
otherwise optuna's (checked proposal for proposal without the sharpening in
tests/integration/test_algorithms_tpe.py).

Settings (Katib's names and meanings):

* ``gamma`` (0 < x < 1): the size of the good group as hyperopt defines it,
  ``ceil(gamma * sqrt(n))`` of n completed trials (at most 25). Unset: optuna's split, the best
  ``ceil(n / 10)`` (at most 25).
* ``prior_weight`` (> 0): the weight of the prior in each Parzen mixture (default 1).
* ``n_EI_candidates`` (> 0): candidates drawn from the good density per parameter; the one with
  the best ratio good/rest wins (default 24).
* ``random_state`` (>= 0): the seed.

Start-up: the first ``N_STARTUP`` trials come from a scrambled Sobol design (as in
``multivariate-tpe``). Pending trials (CREATED/RUNNING) and the points earlier in the same batch
count as running trials: they join the "rest" group (optuna's constant liar), so parallel
requests spread out. The random state of a call is derived from ``random_state`` and the number
of trials in the request: a fresh instance (a restarted service) answers the same request the
same way. State, kept for speed only: the trials as rows (``trial_history``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from optuna.samplers._tpe.sampler import default_gamma

from sextant.api import api_pb2

from .base import SettingRule, SettingsSchema, non_negative_int, setting_pairs, settings_of
from .multivariate_tpe import MultivariateTPE
from .optuna_study import distribution
from .optuna_tpe import OptunaTPE, Sharpening
from .search_space import SearchSpace

SCHEMA = SettingsSchema("tpe", {
    "random_state": SettingRule(int, non_negative_int("random_state should be great or equal than zero")),
    "gamma": SettingRule(float, lambda v: None if 0 < v < 1 else "gamma should be in the range of (0, 1)"),
    "prior_weight": SettingRule(float, lambda v: None if v > 0 else "prior_weight should be great than zero", 1.0),
    "n_EI_candidates": SettingRule(int, lambda v: None if v > 0 else "n_EI_candidates should be great than zero",
                                   24),
})
#: Trials proposed from the start-up design before the model is used.
N_STARTUP = 10
#: The good density sharpened: each good trial's kernel half as wide as optuna's (weights
#: unchanged). Chosen on the tuning seeds over rank weights too, which lowered the average
#: regret a little more but lost to Katib's service on more problems and budgets
#: (BENCHMARKS.md, "tpe: univariate TPE study").
SHARPEN = Sharpening(rank_power=0, bandwidth=0.5)
#: hyperopt caps its good group at its linear-forgetting horizon, 25 trials.
MAX_BELOW = 25


def hyperopt_gamma(gamma: float) -> Callable[[int], int]:
    """hyperopt's good-group size for ``gamma``: ceil(gamma * sqrt(n)), at most 25."""
    return lambda n: min(math.ceil(gamma * math.sqrt(n)), MAX_BELOW)


class TPE(MultivariateTPE):
    name = "tpe"
    invalid_settings_example = {"gamma": "1.5"}

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        return SCHEMA.errors(setting_pairs(experiment))

    def settings(self, experiment: api_pb2.Experiment) -> dict[str, Any]:
        return SCHEMA.parse(settings_of(experiment))

    def model_key(self, settings: dict[str, Any]) -> tuple[object, ...]:
        return settings["gamma"], settings["prior_weight"], settings["n_EI_candidates"]

    def new_model(self, space: SearchSpace, settings: dict[str, Any]) -> OptunaTPE:
        gamma = default_gamma if settings["gamma"] is None else hyperopt_gamma(settings["gamma"])
        return OptunaTPE({p.name: distribution(p) for p in space.params}, N_STARTUP, settings["n_EI_candidates"],
                         sharpen=SHARPEN, prior_weight=settings["prior_weight"], gamma=gamma)

    def ask(self, model: OptunaTPE, x: NDArray[np.float64], loss: NDArray[np.float64],
            rng: np.random.RandomState, startup_point: NDArray[np.float64] | None) -> dict[str, Any]:
        return model.ask_univariate(x, loss, rng, startup_point)
