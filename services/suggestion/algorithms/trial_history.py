"""An experiment's trials as numpy rows, kept in step with the request incrementally.

The model-based algorithms (``tpe``, ``multivariate-tpe``) need, on every call, the encoded
point and the loss of every completed trial and the point of every pending one. Rebuilding
that from 1,000 protobuf trials each call (parsing values, reading metrics) costs more than the
model itself, so this keeps one row per Katib trial, in the order trials were first seen, and
on each call only looks at a trial's condition: a trial is re-read only when it is new or its
condition changed. A trial that disappears from the request (rare: deleted trials) makes the
whole history rebuild from the request, so the rows are always exactly "the trials of this
request, in request order" -- what a fresh instance after a restart builds too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from sextant.api import api_pb2

from .search_space import LEARN_FROM, PENDING, SearchSpace, assignment_of, objective_value

DONE, RUNNING, OTHER = 0, 1, 2  # row states: learn from / being evaluated / ignore (failed...)

Encoder = Callable[[dict[str, str]], Sequence[float] | None]


class _Entry:
    __slots__ = ("condition", "slot", "state")

    def __init__(self, condition: int, slot: int, state: int) -> None:
        self.condition = condition
        self.slot = slot  # row index, -1 when the point is not one the model can use
        self.state = state


class TrialHistory:
    """Rows ``x`` (encoded points), ``loss`` (sign * objective; NaN unless DONE), ``state``.

    ``encode(assignment)`` maps a Katib assignment to one float per parameter (the model's own
    representation), or None when the point cannot be used (hand-made value outside the space).
    ``taken`` holds ``space.key`` of every trial in the request, whatever its status.
    """

    def __init__(self, space: SearchSpace, encode: Encoder) -> None:
        self.space = space
        self._encode = encode
        self._names = set(space.names)
        self._reset()

    def _reset(self) -> None:
        d = len(self.space.params)
        self._entries: dict[str, _Entry] = {}
        self._x = np.empty((64, d))
        self._loss = np.full(64, np.nan)
        self._state = np.full(64, OTHER, dtype=np.int8)
        self._n = 0
        self.taken: set[tuple[object, ...]] = set()

    # ---- views ----

    @property
    def x(self) -> NDArray[np.float64]:
        return self._x[: self._n]

    @property
    def loss(self) -> NDArray[np.float64]:
        return self._loss[: self._n]

    @property
    def state(self) -> NDArray[np.int8]:
        return self._state[: self._n]

    def usable(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(x, loss) of DONE and RUNNING rows in first-seen order; RUNNING rows have NaN loss."""
        keep = self.state != OTHER
        return self.x[keep], self.loss[keep]

    # ---- sync ----

    def sync(self, experiment: api_pb2.Experiment, trials: Sequence[api_pb2.Trial]) -> None:
        metric = experiment.spec.objective.objective_metric_name
        sign = -1.0 if experiment.spec.objective.type == api_pb2.MAXIMIZE else 1.0
        self._sync(trials, metric, sign)
        if len(self._entries) != len(trials):
            # Fewer distinct names than trials is fine (duplicates); names we hold that the
            # request no longer has are not: start again from the request alone.
            present = {t.name or f"\0{i}" for i, t in enumerate(trials)}
            if any(name not in present for name in self._entries):
                self._reset()
                self._sync(trials, metric, sign)

    def _sync(self, trials: Sequence[api_pb2.Trial], metric: str, sign: float) -> None:
        entries = self._entries
        for i, t in enumerate(trials):
            name = t.name or f"\0{i}"
            condition = t.status.condition
            entry = entries.get(name)
            if entry is not None and entry.condition == condition and \
                    (entry.state != OTHER or condition not in LEARN_FROM):
                # Unchanged. (A SUCCEEDED trial without a usable value is re-read: its
                # observation may still arrive.)
                continue
            value = objective_value(t, metric)
            state = DONE if value is not None else RUNNING if condition in PENDING else OTHER
            if entry is None:
                assignment = assignment_of(t)
                self.taken.add(self.space.key(assignment))
                row = None
                if set(assignment) == self._names:
                    try:
                        row = self._encode(assignment)
                    except (ValueError, TypeError):
                        row = None
                entry = _Entry(condition, self._append(row) if row is not None else -1, state)
                entries[name] = entry
            entry.condition = condition
            entry.state = state
            if entry.slot >= 0:
                self._state[entry.slot] = state
                self._loss[entry.slot] = sign * value if value is not None else np.nan

    def _append(self, row: Sequence[float]) -> int:
        if self._n == len(self._loss):
            grow = len(self._loss)
            self._x = np.concatenate([self._x, np.empty((grow, self._x.shape[1]))])
            self._loss = np.concatenate([self._loss, np.full(grow, np.nan)])
            self._state = np.concatenate([self._state, np.full(grow, OTHER, dtype=np.int8)])
        slot = self._n
        self._x[slot] = row
        self._n += 1
        return slot
