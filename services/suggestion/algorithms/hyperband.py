"""``hyperband``: Hyperband brackets of successive halving, with Katib's settings and state
(Katib's formulas).

Settings: ``r_l`` (maximum resource, required, > 0), ``resource_name`` (the parameter that
carries the resource, required), ``eta`` (int, <= 0 means 3, default 3), plus the optional
Sextant extra ``random_state``. Like Katib, the whole state travels in ``reply.algorithm``
(eta, s_max, r_l, b_l, r, n, current_s, current_i, resource_name, evaluating_trials) and comes
back overlaid on the experiment's settings in the next request, so a restarted service needs
nothing else.

The schedule (``s`` counts down from ``s_max = int(log r_l / log eta)`` to 0; rung ``i`` of
bracket ``s`` runs with resource ``r * eta**i`` where ``r = r_l * eta**-s``):

* rung 0 of a bracket (``evaluating_trials == 0``): as many random configurations as the
  controller asks for (Katib's "n = current_request_number"), resource ``r``;
* rung i > 0: the previous rung's trials (the last ``evaluating_trials`` trials by start time)
  must all be finished; the best ``ceil(evaluating_trials / eta)`` of those that *succeeded* are
  promoted with resource ``r * eta**i``. Failed/killed trials are skipped (Katib raises);
  when none succeeded the bracket ends early.

Differences from Katib, each forced by the exact-count contract or fixing a Katib crash:

* the reply always has exactly ``current_request_number`` assignments: when more are asked
  for than are promoted, the rest are fresh random configurations at the same rung's resource
  (they compete at the next promotion); when fewer, only the best ones are promoted;
* while the previous rung is still running the call fails with UNAVAILABLE "waiting for …" (the
  controller retries with backoff); Katib fails with an unhelpful exception instead;
* after the last bracket the answer is OUT_OF_RANGE (search space exhausted) instead of an empty
  reply the controller would reject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from sextant.api import api_pb2

from .base import Algorithm, InvalidSettings, NotReady, SearchSpaceExhausted, SuggestResult, settings_of
from .cancel import check_cancelled
from .search_space import (
    PENDING,
    SearchSpace,
    assignment_of,
    loss,
    objective_value,
)

NAME = "hyperband"
STATE_KEYS = ("eta", "s_max", "r_l", "b_l", "r", "n", "current_s", "current_i", "resource_name",
              "evaluating_trials")
NOT_STARTED = -2


class RungInProgress(NotReady):
    """The previous rung has unfinished trials: nothing can be promoted yet (retry later)."""


@dataclass(frozen=True)
class State:
    eta: int = 3
    s_max: int = 0
    r_l: float = 0.0
    b_l: float = 0.0
    r: float = 0.0
    n: int = 0
    current_s: int = NOT_STARTED
    current_i: int = 0
    resource_name: str = ""
    evaluating_trials: int = 0

    def settings(self) -> dict[str, str]:
        return {"eta": str(self.eta), "s_max": str(self.s_max), "r_l": str(self.r_l), "b_l": str(self.b_l),
                "r": str(self.r), "n": str(self.n), "current_s": str(self.current_s),
                "current_i": str(self.current_i), "resource_name": self.resource_name,
                "evaluating_trials": str(self.evaluating_trials)}

    def bracket(self, s: int) -> State:
        """The state at the start of bracket ``s`` (rung 0 not issued yet)."""
        n = int(math.ceil(int(self.b_l / self.r_l / (s + 1)) * self.eta**s))
        return replace(self, current_s=s, current_i=0, n=n, r=self.r_l * self.eta ** (-s),
                       evaluating_trials=0)


def _eta(raw: str | None) -> int:
    eta = int(float(raw)) if raw else 3  # unset or empty: the default
    return 3 if eta <= 0 else eta


def s_max_of(r_l: float, eta: int) -> int:
    # A small epsilon so that r_l = eta**k gives k even when the float division lands just below.
    return max(0, int(math.log(r_l) / math.log(eta) + 1e-9))


def parse_state(settings: dict[str, str]) -> State:
    """The state from the (overlaid) settings; starts bracket s_max when none is stored yet."""
    try:
        r_l = float(settings["r_l"])
        eta = _eta(settings.get("eta"))
        current_s = int(settings.get("current_s", NOT_STARTED))
    except (KeyError, ValueError) as exc:
        raise InvalidSettings(f"hyperband settings are not usable: {exc}") from None
    s_max = s_max_of(r_l, eta)
    base = State(eta=eta, s_max=s_max, r_l=r_l, b_l=(s_max + 1) * r_l,
                 resource_name=settings.get("resource_name", ""))
    if current_s == NOT_STARTED:
        return base.bracket(s_max)
    try:
        return replace(base, current_s=current_s,
                       current_i=int(settings.get("current_i", "0")),
                       n=int(float(settings.get("n", "0"))),
                       r=float(settings.get("r", str(r_l * eta ** (-max(current_s, 0))))),
                       evaluating_trials=int(settings.get("evaluating_trials", "0")))
    except ValueError as exc:
        raise InvalidSettings(f"hyperband state in algorithm settings is not usable: {exc}") from None


class Hyperband(Algorithm):
    name: ClassVar[str] = NAME
    invalid_settings_example: ClassVar[dict[str, str] | None] = {"r_l": "-1", "resource_name": "epochs"}
    state_settings: ClassVar[frozenset[str]] = frozenset(STATE_KEYS)

    # ---- validation (Katib's messages) ----

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        settings = settings_of(experiment)
        if "r_l" not in settings or "resource_name" not in settings:
            return ["r_l and resource_name must be set."]
        try:
            r_l = float(settings["r_l"])
        except ValueError:
            return ["r_l must be a positive float number."]
        if not (r_l > 0 and math.isfinite(r_l)):
            return ["r_l must be a positive float number."]
        try:
            eta = _eta(settings.get("eta"))
        except ValueError:
            return [f"failed to validate eta({settings.get('eta')}): eta must be an integer"]
        if eta == 1:
            return ["eta must be greater than one (or <= 0 for the default 3)"]
        # Katib's order, first problem only
        need = math.ceil(eta ** s_max_of(r_l, eta))
        if experiment.spec.parallel_trial_count < need:
            return [f"parallelTrialCount must be not less than {need}."]
        name = settings["resource_name"]
        specs = {p.name: p for p in experiment.spec.parameter_specs.parameters}
        if name not in specs:
            return ["value of resource_name setting must be in parameters."]
        # Sextant's own checks, for settings Katib accepts and then fails on
        if specs[name].parameter_type not in (api_pb2.INT, api_pb2.DOUBLE):
            return [f"resource_name {name} must name an int or double parameter"]
        rs = settings.get("random_state")
        if rs:  # set and not empty
            try:
                if int(rs) < 0:
                    return ["random_state should be great or equal than zero"]
            except ValueError as exc:
                return [f"failed to validate random_state({rs}): {exc}"]
        return []

    # ---- suggestions ----

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        settings = settings_of(experiment)
        state = parse_state(settings)
        space = self.search_space(experiment)
        seed = settings.get("random_state")
        rng = np.random.default_rng([int(seed), len(trials)] if seed else None)
        taken = self.taken_points(space, trials)
        if state.current_s < 0:
            raise SearchSpaceExhausted(f"hyperband finished all {state.s_max + 1} brackets")

        if state.evaluating_trials > 0:
            promoted, state = self._promote(experiment, trials, state, count)
        else:
            promoted = []
        if state.current_s < 0:
            raise SearchSpaceExhausted(f"hyperband finished all {state.s_max + 1} brackets")
        if state.evaluating_trials == 0:  # rung 0 of a bracket: Katib's n = current_request_number
            state = replace(state, n=count)
        resource = state.r * state.eta**state.current_i
        resource_param = space.by_name(state.resource_name)
        out: list[dict[str, str]] = []
        for point in promoted:
            point = dict(point, **{state.resource_name: resource_param.format(resource)})
            taken.add(space.key(point))
            out.append(point)
        while len(out) < count:
            check_cancelled()
            out.append(self._random(space, rng, taken, state.resource_name, resource_param.format(resource)))
        state = replace(state, evaluating_trials=len(out))
        return SuggestResult(out, algorithm_settings=state.settings())

    def _promote(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], state: State, count: int
                 ) -> tuple[list[dict[str, str]], State]:
        """The best configurations of the finished rung, and the state of the rung they start."""
        ordered = sorted(enumerate(trials), key=lambda it: (it[1].status.start_time or "\uffff", it[0]))
        rung = [t for _, t in ordered][-state.evaluating_trials:]
        running = [t.name for t in rung if t.status.condition in PENDING]
        if running:
            raise RungInProgress(f"hyperband: waiting for {len(running)} trial(s) of rung {state.current_i} "
                                 f"of bracket {state.current_s} to finish ({', '.join(running[:5])})")
        metric = experiment.spec.objective.objective_metric_name
        scored = []
        for t in rung:
            value = objective_value(t, metric)
            if value is not None:  # failed/killed/metrics-unavailable trials are simply not promoted
                scored.append((loss(experiment, value), t))
        scored.sort(key=lambda it: it[0])
        next_i = state.current_i + 1
        if next_i > state.current_s or not scored:
            return [], self._next_bracket(state)
        keep = min(math.ceil(state.evaluating_trials / state.eta), len(scored), count)
        promoted = [assignment_of(t) for _, t in scored[:keep]]
        return promoted, replace(state, current_i=next_i)

    @staticmethod
    def _next_bracket(state: State) -> State:
        s = state.current_s - 1
        if s < 0:
            return replace(state, current_s=-1, current_i=0, evaluating_trials=0)
        return state.bracket(s)

    @staticmethod
    def _random(space: SearchSpace, rng: np.random.Generator, taken: set[tuple[object, ...]], resource_name: str,
                resource: str) -> dict[str, str]:
        point: dict[str, str] = {}
        for _ in range(32):
            point = dict(space.sample(rng), **{resource_name: resource})
            if space.key(point) not in taken:
                break
        taken.add(space.key(point))
        return point
