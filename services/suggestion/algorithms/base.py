"""The Algorithm interface every suggestion algorithm implements.

An algorithm is a class with a ``name`` and two methods:

* ``validate(experiment) -> list[str]``: Katib's validation messages for the experiment's
  algorithm settings and search space (empty list = valid). The servicer calls it for
  ``ValidateAlgorithmSettings`` *and* before every ``GetSuggestions``; any message becomes
  gRPC INVALID_ARGUMENT (messages joined with ``"; "``).
* ``suggest(experiment, trials, count) -> SuggestResult``: exactly ``count`` new assignments,
  every value already formatted as Katib formats it (use ``SearchSpace.format`` /
  ``SearchSpace.from_unit``). The servicer checks every value against the feasible space
  before sending; a violation is a bug and answers INTERNAL (nothing is sent).

Per-experiment state
--------------------
The servicer keeps **one Algorithm instance per (experiment name, algorithm name)**, in an
LRU-bounded cache, and calls it under a per-experiment lock (so an instance never sees two
concurrent calls). The instance is replaced by a fresh one when ``fingerprint(experiment)``
changes (default: parameter specs, objective and algorithm settings). Instances may therefore
cache optimizer state (e.g. an optuna study, hyperopt Trials) and feed it only the trials they
have not seen yet, but ``suggest`` must give a valid, non-repeating answer given only the
request: a fresh instance handed the same trials (a restarted process) must work. Pending
trials (CREATED/RUNNING, see ``search_space.pending_trials``) must be taken into account so
parallel requests do not repeat points.

Algorithms that carry state in ``reply.algorithm`` (hyperband) return it in
``SuggestResult.algorithm_settings`` and should override ``fingerprint`` so their own state keys
do not reset the cache on every call.

Errors raised from ``suggest``:

* ``SearchSpaceExhausted(message)`` -> OUT_OF_RANGE (grid covered, hyperband finished).
* ``NotReady(message)`` -> UNAVAILABLE (retry later: e.g. a hyperband rung still running).
* ``InvalidSettings(message)`` (a ``ValueError``) or any ``ValueError`` -> INVALID_ARGUMENT.
* anything else -> INTERNAL (logged with a traceback).

Registering a new algorithm is one line in ``registry.py``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sextant.api import api_pb2

from .search_space import SearchSpace


class SearchSpaceExhausted(Exception):
    """No new point is left (grid fully covered, hyperband finished) -> OUT_OF_RANGE."""


class NotReady(Exception):
    """Nothing can be suggested *yet* (e.g. a hyperband rung still running) -> UNAVAILABLE,
    which the suggestion controller retries with backoff."""


class InvalidSettings(ValueError):
    """Bad algorithm settings or search space found while suggesting -> INVALID_ARGUMENT."""


@dataclass
class SuggestResult:
    """What ``suggest`` returns.

    ``assignments``: one ``{parameter name: Katib-formatted value}`` dict per new trial, in the
    order the trials should be created; exactly ``count`` of them.
    ``algorithm_settings``: settings the controller stores in Suggestion.status and overlays on
    the experiment's settings in later requests (Katib's hyperband keeps its state this way).
    ``trial_names`` / ``labels``: optional per-assignment trial-name override and extra labels
    (same length as ``assignments`` when given).
    """

    assignments: list[dict[str, str]]
    algorithm_settings: dict[str, str] | None = None
    trial_names: list[str] | None = None
    labels: list[dict[str, str]] | None = None


@dataclass
class SettingsExample:
    """An invalid settings example (for the conformance kit): settings -> must be rejected."""

    settings: dict[str, str]
    note: str = ""


@dataclass
class _SpaceCache:
    fingerprint: bytes = b""
    space: SearchSpace | None = None


class Algorithm(ABC):
    """Base class; see the module docstring for the contract."""

    name: ClassVar[str]
    #: True when the same request with the same ``random_state`` gives the same answer.
    deterministic: ClassVar[bool] = True
    #: Settings the conformance kit sends expecting INVALID_ARGUMENT (None = none declared).
    invalid_settings_example: ClassVar[dict[str, str] | None] = None
    #: Settings names whose value is the algorithm's own state (excluded from the fingerprint).
    state_settings: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._space_cache = _SpaceCache()
        self._trial_keys: dict[str, tuple[object, ...]] = {}

    def trial_key(self, space: SearchSpace, trial: api_pb2.Trial) -> tuple[object, ...]:
        """``space.key`` of a trial's assignment, cached by trial name (assignments never change)."""
        key = self._trial_keys.get(trial.name) if trial.name else None
        if key is None:
            key = space.key({a.name: a.value for a in trial.spec.parameter_assignments.assignments})
            if trial.name:
                self._trial_keys[trial.name] = key
        return key

    def taken_points(self, space: SearchSpace, trials: list[api_pb2.Trial]) -> set[tuple[object, ...]]:
        """Keys of every point already in the request (any status): never propose them again."""
        return {self.trial_key(space, t) for t in trials}

    @abstractmethod
    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        """Katib's messages for invalid settings / search space; [] when valid."""

    @abstractmethod
    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        """Exactly ``count`` (> 0) new assignments."""

    # ---- helpers shared by implementations ----

    def fingerprint(self, experiment: api_pb2.Experiment) -> bytes:
        """What must stay equal for a cached instance to be reused."""
        spec = experiment.spec
        h = hashlib.sha256()
        h.update(spec.parameter_specs.SerializeToString(deterministic=True))
        h.update(spec.objective.SerializeToString(deterministic=True))
        h.update(spec.algorithm.algorithm_name.encode())
        for name, value in sorted(settings_of(experiment).items()):
            if name not in self.state_settings:
                h.update(f"\0{name}={value}".encode())
        return h.digest()

    def search_space(self, experiment: api_pb2.Experiment) -> SearchSpace:
        """The parsed search space, cached per instance (re-parsed when the specs change)."""
        key = experiment.spec.parameter_specs.SerializeToString(deterministic=True)
        cache = self._space_cache
        if cache.space is None or cache.fingerprint != key:
            cache.space = SearchSpace.from_experiment(experiment)
            cache.fingerprint = key
            self._trial_keys.clear()
        return cache.space


def settings_of(experiment: api_pb2.Experiment) -> dict[str, str]:
    """Algorithm settings as a dict; a later duplicate name wins (Katib's overlay semantics)."""
    return {s.name: s.value for s in experiment.spec.algorithm.algorithm_settings}


def setting_pairs(experiment: api_pb2.Experiment) -> list[tuple[str, str]]:
    """Every algorithm setting as (name, value), in request order, duplicates included: the
    order Katib's services check them in."""
    return [(s.name, s.value) for s in experiment.spec.algorithm.algorithm_settings]


@dataclass
class SettingRule:
    """One setting: how to parse it and Katib's check. ``check`` returns a message or None."""

    parse: type
    check: Callable[[Any], str | None] | None = None  # gets the parsed value
    default: object = None


@dataclass
class SettingsSchema:
    """Parse + validate settings with Katib's message shapes."""

    algorithm: str
    rules: dict[str, SettingRule] = field(default_factory=dict)
    unknown_message: str = "unknown setting {name} for algorithm {algorithm}"

    def errors(self, settings: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[str]:
        """The first bad setting's message, or [] when all are valid.

        Katib's services check the settings in request order and answer with the first problem
        only (an unknown name, a value that does not parse, a value out of range); so does this,
        so a request gets Katib's exact message. Pass ``setting_pairs(experiment)`` to check
        duplicates as Katib does."""
        pairs = settings.items() if isinstance(settings, Mapping) else settings
        for name, raw in pairs:
            rule = self.rules.get(name)
            if rule is None:
                return [self.unknown_message.format(name=name, algorithm=self.algorithm)]
            try:
                value = rule.parse(raw)
            except (TypeError, ValueError) as exc:
                return [f"failed to validate {name}({raw}): {exc}"]
            if rule.check is not None:
                msg = rule.check(value)
                if msg:
                    return [msg]
        return []

    def parse(self, settings: dict[str, str]) -> dict[str, Any]:  # each value of its rule's type
        """Parsed values with defaults; unknown names ignored. Raises InvalidSettings."""
        errs = self.errors({k: v for k, v in settings.items() if k in self.rules})
        if errs:
            raise InvalidSettings("; ".join(errs))
        out = {name: rule.default for name, rule in self.rules.items()}
        for name, raw in settings.items():
            if name in self.rules:
                out[name] = self.rules[name].parse(raw)
        return out


def non_negative_int(message: str) -> Callable[[int], str | None]:
    """A check for ints >= 0 with the given message."""
    return lambda v: None if v >= 0 else message
