"""``sobol``: a scrambled Sobol sequence (scipy.stats.qmc) over the unit cube of the space.

The n-th suggestion of an experiment is the n-th point of the sequence, where n is the number
of trials already in the request: restart-equivalent and deterministic without any state.
Points that land on a point already in the request (possible for int/list parameters) are
skipped. Setting ``random_state`` (int >= 0) picks the scrambling; without it the scrambling is
derived from the experiment name, so every replica of the service agrees. Katib's (Goptuna)
sobol takes no settings and ignores unknown names; so does this one.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
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

SCHEMA = SettingsSchema("sobol", {
    "random_state": SettingRule(int, non_negative_int("random_state should be greate or equal than zero")),
})
LOOKAHEAD = 64  # extra sequence points tried when proposals collide with existing ones


class Sobol(Algorithm):
    name = "sobol"
    invalid_settings_example = {"random_state": "-1"}

    def __init__(self) -> None:
        super().__init__()
        self._engine: qmc.Sobol | None = None
        self._engine_key: tuple[int, int] | None = None

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        return SCHEMA.errors((k, v) for k, v in setting_pairs(experiment) if k in SCHEMA.rules)

    def _seed(self, experiment: api_pb2.Experiment) -> int:
        settings = SCHEMA.parse({k: v for k, v in settings_of(experiment).items() if k in SCHEMA.rules})
        if settings["random_state"] is not None:
            return int(settings["random_state"])
        return int.from_bytes(hashlib.sha256(experiment.name.encode()).digest()[:4], "big")

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        space = self.search_space(experiment)
        key = (len(space), self._seed(experiment))
        if self._engine is None or self._engine_key != key:
            self._engine = qmc.Sobol(d=len(space), scramble=True, seed=key[1])
            self._engine_key = key
        engine = self._engine
        engine.reset()
        if trials:
            engine.fast_forward(len(trials))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "balance properties" warning for non-powers of 2
            block = engine.random(count + LOOKAHEAD)
        taken = self.taken_points(space, trials)
        out: list[dict[str, str]] = []
        for row in block:
            point = space.from_unit(row)
            k = space.key(point)
            if k in taken:
                continue
            taken.add(k)
            out.append(point)
            if len(out) == count:
                break
        rng = np.random.default_rng([key[1], len(trials)])
        while len(out) < count:  # a small discrete space: fall back to random draws
            check_cancelled()
            point = space.sample_untaken(rng, taken)
            taken.add(space.key(point))
            out.append(point)
        return SuggestResult(out)
