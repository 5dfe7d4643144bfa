"""``multivariate-tpe``: optuna's TPESampler with multivariate=True and constant_liar=True, with
a sharpened good-trial density (``optuna_tpe.Sharpening``) and a scrambled Sobol start-up design.

Settings (Katib's): ``n_startup_trials``, ``n_ei_candidates``, ``random_state`` (each an int
>= 0); optuna's defaults otherwise (10 startup trials, 24 EI candidates). Any other setting name
is rejected.

State: the trials are kept per experiment as rows in optuna's internal representation
(``trial_history``: a trial is re-read only when new or its condition changed) and the sampler's
steps run on those rows (``optuna_tpe``), instead of re-reading an optuna Study on each ask.
Pending trials (CREATED/RUNNING) and the points already proposed in the same batch are the
constant liar's running trials. The random state of a call is derived from ``random_state`` and
the number of trials in the request, so the same request gives the same answer, from a cached
instance or a fresh one (after a restart).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import qmc

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
from .optuna_study import distribution, from_optuna, to_optuna
from .optuna_tpe import OptunaTPE
from .search_space import SearchSpace
from .trial_history import TrialHistory

RETRIES = 4
MAX_DESIGN = 4096  # start-up points taken from the Sobol design at most


def _int_rule(name: str, default: int | None = None) -> SettingRule:
    return SettingRule(int, non_negative_int(f"{name} should be greate or equal than zero"), default)


SCHEMA = SettingsSchema("multivariate-tpe", {
    "n_startup_trials": _int_rule("n_startup_trials", 10),
    "n_ei_candidates": _int_rule("n_ei_candidates", 24),
    "random_state": _int_rule("random_state"),
})


class MultivariateTPE(Algorithm):
    name = "multivariate-tpe"
    invalid_settings_example = {"n_startup_trials": "-1"}
    deterministic = True

    def __init__(self) -> None:
        super().__init__()
        self._space: SearchSpace | None = None
        self._history: TrialHistory | None = None
        self._model: OptunaTPE | None = None
        self._model_key: tuple[object, ...] = ()
        self._rng = np.random.RandomState(0)  # re-seeded on every call
        self._design_key: tuple[int | None, int, int] | None = None
        self._design: NDArray[np.float64] = np.empty((0, 0))

    def _startup_point(self, random_state: int | None, model: OptunaTPE, loss: NDArray[np.float64],
                       index: int) -> NDArray[np.float64] | None:
        """Point ``index`` of the experiment's start-up design, while the model is in start-up:
        a scrambled Sobol sequence, so the start-up trials cover the space evenly instead of
        clumping as uniform draws do. Seeded by random_state; without one, scrambled afresh by
        each instance (a restarted service goes on with another design: the points stay valid,
        only the even cover of that experiment's start-up is partly lost). None past the
        design's end (pending trials can push the index beyond it)."""
        if not model.in_startup(loss) or model.n_dims == 0:
            return None
        key = (random_state, model.n_dims, model.n_startup_trials)
        if self._design_key != key:
            size = min(max(2, model.n_startup_trials), MAX_DESIGN)  # a huge setting: uniform past it
            seed = None if random_state is None else int(random_state)
            self._design = qmc.Sobol(model.n_dims, scramble=True, seed=seed).random_base2(
                math.ceil(math.log2(size)))
            self._design_key = key
        return self._design[index] if index < len(self._design) else None

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        return SCHEMA.errors(setting_pairs(experiment))

    def _encoder(self, space: SearchSpace, model: OptunaTPE) -> Callable[[dict[str, str]], list[float]]:
        dists = model.dists
        return lambda a: model.encode({p.name: to_optuna(p, dists[p.name], a[p.name]) for p in space.params})

    def settings(self, experiment: api_pb2.Experiment) -> dict[str, Any]:
        """The parsed settings, with defaults."""
        return SCHEMA.parse(settings_of(experiment))

    def model_key(self, settings: dict[str, Any]) -> tuple[object, ...]:
        """The settings the model is built from: a change rebuilds it."""
        return settings["n_startup_trials"], settings["n_ei_candidates"]

    def new_model(self, space: SearchSpace, settings: dict[str, Any]) -> OptunaTPE:
        return OptunaTPE({p.name: distribution(p) for p in space.params},
                         settings["n_startup_trials"], settings["n_ei_candidates"])

    def ask(self, model: OptunaTPE, x: NDArray[np.float64], loss: NDArray[np.float64],
            rng: np.random.RandomState, startup_point: NDArray[np.float64] | None) -> dict[str, Any]:
        """One point (optuna's external values) from the model."""
        return model.ask(x, loss, rng, startup_point)

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        settings = self.settings(experiment)
        space = self.search_space(experiment)
        model = self._model
        key = self.model_key(settings)
        if model is None or self._space is not space or self._model_key != key:
            model = self.new_model(space, settings)
            if self._space is not space or self._history is None:
                self._history = TrialHistory(space, self._encoder(space, model))
            self._model, self._space, self._model_key = model, space, key
        history = self._history
        assert history is not None
        history.sync(experiment, trials)
        x, loss = history.usable()
        taken = set(history.taken)
        random_state = settings["random_state"]
        entropy = None if random_state is None else [int(random_state), len(trials)]
        seeds = np.random.SeedSequence(entropy).generate_state(2)
        # Re-seeding one RandomState gives the stream a new RandomState(seed) gives, without
        # the ~0.1 ms a new instance spends drawing OS entropy it then throws away.
        rng = self._rng
        rng.seed(seeds[0])
        fallback: np.random.Generator | None = None
        encode = self._encoder(space, model)
        out: list[dict[str, str]] = []
        for i in range(count):
            check_cancelled()
            point = None
            design = self._startup_point(random_state, model, loss, len(trials) + i)
            for attempt in range(RETRIES):
                params = self.ask(model, x, loss, rng, design if attempt == 0 else None)
                candidate = {p.name: from_optuna(p, model.dists[p.name], params[p.name]) for p in space.params}
                if space.key(candidate) not in taken:
                    point = candidate
                    break
            if point is None:  # the sampler keeps hitting taken points (a small space): random
                if fallback is None:
                    fallback = np.random.default_rng(seeds[1])
                point = space.sample_untaken(fallback, taken)
            taken.add(space.key(point))
            try:  # the new point is running for the rest of the batch (constant liar)
                x = np.vstack([x, encode(point)])
                loss = np.append(loss, np.nan)
            except (ValueError, TypeError):
                pass
            out.append(point)
        return SuggestResult(out)
