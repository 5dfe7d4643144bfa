"""``grid``: every combination once, in a fixed order, then OUT_OF_RANGE.

Setting (Katib's): ``random_state`` (int >= 0; accepted for compatibility, the order is
deterministic anyway). Validation: each DOUBLE needs a step, and ``maxTrialCount`` must not
exceed the number of combinations (Katib's message).

The next points are the first grid points (first parameter varies slowest) not present in the
request's trials, whatever their status, so pending trials are never repeated and a restarted
service continues where the old one stopped. The position is cached per experiment so a call
costs O(new trials + count), not a walk over the grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sextant.api import api_pb2

from .base import (
    Algorithm,
    SearchSpaceExhausted,
    SettingRule,
    SettingsSchema,
    SuggestResult,
    non_negative_int,
    setting_pairs,
)
from .cancel import check_cancelled
from .search_space import Param, SearchSpace, SpaceError, assignment_of

SCHEMA = SettingsSchema("grid", {
    "random_state": SettingRule(int, non_negative_int("random_state should be greate or equal than zero")),
})


class GridSearch(Algorithm):
    name = "grid"
    invalid_settings_example = {"random_state": "-1"}

    def __init__(self) -> None:
        super().__init__()
        self._cursor = 0  # grid index below which every point is known to be taken
        self._taken: set[tuple[object, ...]] = set()
        self._seen_trials: set[str] = set()
        self._proposed: set[tuple[object, ...]] = set()  # proposed by this instance, maybe not trials yet

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        errors = SCHEMA.errors(setting_pairs(experiment))
        if errors:  # Katib checks the settings first and stops at the first problem
            return errors
        try:
            space = self.search_space(experiment)
            for p in space.params:
                if p.numeric and p.step is None and p.type == "double" and p.high > p.low:
                    raise SpaceError(f"failed to get all combinations: parameter {p.name} is a double "
                                     "without feasibleSpace.step")
        except SpaceError as exc:
            return errors + [str(exc)]
        size = space.grid_size
        max_trials = experiment.spec.max_trial_count
        if max_trials and max_trials > size:
            errors.append(f"Max Trial Count: {max_trials} > all possible search combinations: {int(size)}")
        return errors

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        space = self.search_space(experiment)
        for t in trials:
            # A trial's assignment never changes, so each named trial is read once.
            if not t.name or t.name not in self._seen_trials:
                self._seen_trials.add(t.name)
                self._taken.add(space.key(assignment_of(t)))
        out = self._walk(space, count, self._taken | self._proposed)
        if len(out) < count:
            # Points proposed earlier may never have become trials (a lost reply): the request
            # alone is the truth, so offer them again before declaring the grid exhausted.
            out = self._walk(space, count, self._taken)
        if len(out) < count:
            raise SearchSpaceExhausted(
                f"grid search space exhausted: all {int(space.grid_size)} combinations have been "
                f"suggested, {len(out)} left for {count} requested")
        self._proposed.update(space.key(p) for p in out)
        return SuggestResult(out)

    def _walk(self, space: SearchSpace, count: int, excluded: set[tuple[object, ...]]) -> list[dict[str, str]]:
        # Values are computed per point: a stepped parameter may have 2^53 of them.
        columns = space.params
        radix = [p.grid_count() for p in columns]
        size = math.prod(radix)
        out: list[dict[str, str]] = []
        batch: set[tuple[object, ...]] = set()
        index = self._cursor
        prefix_taken = True
        while len(out) < count and index < size:
            if index % 256 == 0:
                check_cancelled()
            point = _point_at(index, columns, radix, space.names)
            key = space.key(point)
            if key in self._taken and prefix_taken:
                self._cursor = index + 1  # every point before here is a trial: skip next time
            else:
                prefix_taken = False
                if key not in excluded and key not in batch:
                    out.append(point)
                    batch.add(key)
            index += 1
        return out


def _point_at(index: int, columns: Sequence[Param], radix: list[int], names: list[str]) -> dict[str, str]:
    """The index-th grid point in itertools.product order (last parameter varies fastest)."""
    values = []
    for col, r in zip(reversed(columns), reversed(radix), strict=True):
        index, digit = divmod(index, r)
        values.append(col.grid_value(digit))
    return dict(zip(names, reversed(values), strict=True))

