"""``random``: independent draws honouring each parameter's distribution and step.

Setting (Katib's): ``random_state`` (int >= 0). With a seed the answer depends only on the
seed and the number of trials in the request, so a restarted service repeats it exactly.
Draws avoid points already in the request (any status) and earlier in the same batch while the
space has room, so parallel requests do not repeat points.
"""

from __future__ import annotations

import numpy as np

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

SCHEMA = SettingsSchema("random", {
    "random_state": SettingRule(int, non_negative_int("random_state should be great or equal than zero")),
})
MAX_REDRAWS = 32


def seeded_rng(random_state: int | None, *salt: int) -> np.random.Generator:
    """A generator fixed by (random_state, salt) when seeded, else fresh entropy."""
    if random_state is None:
        return np.random.default_rng()
    return np.random.default_rng([int(random_state), *salt])


class RandomSearch(Algorithm):
    name = "random"
    invalid_settings_example = {"random_state": "-1"}

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        return SCHEMA.errors(setting_pairs(experiment))

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        settings = SCHEMA.parse(settings_of(experiment))
        space = self.search_space(experiment)
        rng = seeded_rng(settings["random_state"], len(trials))
        seen = self.taken_points(space, trials)
        room = space.grid_size - len(seen)
        out: list[dict[str, str]] = []
        for _ in range(count):
            point = space.sample(rng)
            if room > 0:
                for _ in range(MAX_REDRAWS):
                    if space.key(point) not in seen:
                        break
                    point = space.sample(rng)
            key = space.key(point)
            if key not in seen:
                seen.add(key)
                room -= 1
            out.append(point)
        return SuggestResult(out)
