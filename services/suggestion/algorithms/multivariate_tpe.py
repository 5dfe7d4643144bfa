"""``multivariate-tpe``: optuna's TPESampler with multivariate=True and constant_liar=True.

Settings (facts §7.4): ``n_startup_trials``, ``n_ei_candidates``, ``random_state`` (each an int
>= 0); optuna's defaults otherwise (10 startup trials, 24 EI candidates). Any other setting name
is rejected. The study is cached per experiment and fed only new trials (``optuna_study``).
"""

from __future__ import annotations

import numpy as np
import optuna

from sextant.api import api_pb2

from .base import Algorithm, SettingRule, SettingsSchema, SuggestResult, non_negative_int, settings_of
from .optuna_study import SyncedStudy, study_direction_maximize


def _int_rule(name: str, default=None) -> SettingRule:
    return SettingRule(int, non_negative_int(f"{name} should be greate or equal than zero"), default)


SCHEMA = SettingsSchema("multivariate-tpe", {
    "n_startup_trials": _int_rule("n_startup_trials", 10),
    "n_ei_candidates": _int_rule("n_ei_candidates", 24),
    "random_state": _int_rule("random_state"),
})


class OptunaAlgorithm(Algorithm):
    """Common flow: keep a SyncedStudy, sync it with the request, ask ``count`` points."""

    schema: SettingsSchema

    def __init__(self) -> None:
        super().__init__()
        self._study: SyncedStudy | None = None

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        return self.schema.errors(settings_of(experiment))

    def make_sampler(self, settings: dict, experiment: api_pb2.Experiment) -> optuna.samplers.BaseSampler:
        raise NotImplementedError

    def suggest(self, experiment, trials, count):
        settings = self.schema.parse(settings_of(experiment))
        space = self.search_space(experiment)
        if self._study is None or self._study.space is not space:
            self._study = SyncedStudy(space, self.make_sampler(settings, experiment),
                                      study_direction_maximize(experiment))
        self._study.sync(experiment, trials)
        taken = self.taken_points(space, trials)
        out = []
        fallback = np.random.default_rng(
            None if settings.get("random_state") is None else [settings["random_state"], len(trials)])
        for _ in range(count):
            point = self._study.ask(taken)
            if point is None:  # the sampler keeps hitting taken points (a small space): random
                point = space.sample(fallback)
                for _ in range(32):
                    if space.key(point) not in taken:
                        break
                    point = space.sample(fallback)
            taken.add(space.key(point))
            out.append(point)
        return SuggestResult(out)


class MultivariateTPE(OptunaAlgorithm):
    name = "multivariate-tpe"
    schema = SCHEMA
    invalid_settings_example = {"n_startup_trials": "-1"}
    # optuna's ask order depends on the study's history, which a fresh instance rebuilds the
    # same way only when the request is the same; same request + seed -> same answer.
    deterministic = True

    def make_sampler(self, settings, experiment):
        return optuna.samplers.TPESampler(
            multivariate=True, constant_liar=True, seed=settings["random_state"],
            n_startup_trials=settings["n_startup_trials"], n_ei_candidates=settings["n_ei_candidates"])
