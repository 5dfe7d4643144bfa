"""One generic ``api.v1.beta1.Suggestion`` servicer for any Algorithm.

It enforces Katib's contract around the algorithm:

* ``current_request_number`` 0 -> an empty reply, the algorithm is not called; negative or
  above ``sextant.limits.MAX_REQUEST_NUMBER`` -> INVALID_ARGUMENT (Sextant's bound on the work
  of one call);
* unknown algorithm name -> INVALID_ARGUMENT ("unknown algorithm name <name>");
* the experiment is validated on every GetSuggestions too (INVALID_ARGUMENT);
* the reply has exactly ``current_request_number`` assignments, every value feasible and
  formatted as Katib does; an algorithm breaking this is a bug -> INTERNAL, nothing sent;
* ``SearchSpaceExhausted`` -> OUT_OF_RANGE.
* ``NotReady`` -> UNAVAILABLE.
* the caller gone or out of time -> the algorithm stops at its next ``check_cancelled`` and the
  call ends CANCELLED / DEADLINE_EXCEEDED;
* ``OverflowError`` (a search space too wide for double arithmetic) -> INVALID_ARGUMENT and
  ``MemoryError`` -> RESOURCE_EXHAUSTED, each with a message, never INTERNAL;
* messages are cut to ``MAX_MESSAGE_CHARS``: they may quote user input.

Many experiments are served at once: one Algorithm instance per (namespace, experiment,
algorithm), LRU-bounded, each behind its own lock, replaced when the experiment's fingerprint
changes. The namespace comes from the call's ``sextant-namespace`` metadata (Katib's messages
carry only the experiment's name); a caller that sends none shares the "" namespace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from sextant import limits
from sextant.api import api_pb2, api_pb2_grpc

from ..call_context import namespace_of, still_wanted
from . import algorithm_classes
from .base import Algorithm, InvalidSettings, NotReady, SearchSpaceExhausted, SuggestResult
from .cancel import Cancelled, serving
from .search_space import SearchSpace, SpaceError

if TYPE_CHECKING:
    from sextant.server import GrpcServer

log = logging.getLogger("sextant.suggestion")

SERVICE_NAME = "api.v1.beta1.Suggestion"
MAX_MESSAGE_CHARS = 1000
HEALTH_NAMES = ("", "manager.v1beta1.Suggestion")


def bounded(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """An error message cut to ``limit`` characters (it may quote user input)."""
    return message if len(message) <= limit else message[:limit] + f"... ({len(message)} characters)"


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    context.abort(code, bounded(message))


class ContractViolation(Exception):
    """The algorithm produced an answer the servicer must not send."""


@dataclass
class _Entry:
    fingerprint: bytes
    algorithm: Algorithm
    lock: threading.Lock = field(default_factory=threading.Lock)
    validated: bytes = b""  # spec bytes last validated OK (validation is skipped while unchanged)


class AlgorithmCache:
    """(namespace, experiment, algorithm) -> Algorithm instance, LRU-bounded, one lock per entry."""

    def __init__(self, factory: Callable[[str], type[Algorithm] | None], capacity: int = 256):
        self._factory = factory
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, experiment: api_pb2.Experiment, namespace: str = "") -> _Entry:
        algo_name = experiment.spec.algorithm.algorithm_name
        cls = self._factory(algo_name)
        if cls is None:
            raise InvalidSettings(f"unknown algorithm name {algo_name}")
        key = (namespace, experiment.name, algo_name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                algorithm = cls()
                entry = _Entry(algorithm.fingerprint(experiment), algorithm)
                self._entries[key] = entry
                while len(self._entries) > self._capacity:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            return entry

    def __len__(self) -> int:
        return len(self._entries)


def validation_errors(algorithm: Algorithm, experiment: api_pb2.Experiment) -> list[str]:
    """Search-space errors first (the algorithm cannot work without a space), then settings."""
    try:
        SearchSpace.from_experiment(experiment)
    except SpaceError as exc:
        return [str(exc)]
    return algorithm.validate(experiment)


def check_result(result: SuggestResult, space: SearchSpace, count: int) -> None:
    """Raises ContractViolation unless ``result`` is a sendable answer for ``count``."""
    if len(result.assignments) != count:
        raise ContractViolation(f"returned {len(result.assignments)} assignments, {count} requested")
    for i, assignment in enumerate(result.assignments):
        problems = space.check(assignment)
        if problems:
            raise ContractViolation(f"assignment {i}: {'; '.join(problems)}")
    for name, values in (("trial_names", result.trial_names), ("labels", result.labels)):
        if values is not None and len(values) != count:
            raise ContractViolation(f"{name} has {len(values)} entries, {count} expected")


def build_reply(result: SuggestResult, space: SearchSpace) -> api_pb2.GetSuggestionsReply:
    reply = api_pb2.GetSuggestionsReply()
    for i, assignment in enumerate(result.assignments):
        pa = reply.parameter_assignments.add()
        for name in space.names:  # stable, spec order
            pa.assignments.add(name=name, value=assignment[name])
        if result.trial_names:
            pa.trial_name = result.trial_names[i]
        if result.labels:
            pa.labels.update(result.labels[i])
    if result.algorithm_settings:
        for name, value in result.algorithm_settings.items():
            reply.algorithm.algorithm_settings.add(name=name, value=str(value))
    return reply


class SuggestionServicer(api_pb2_grpc.SuggestionServicer):
    """Serves ``algorithms`` (names), or every registered algorithm when None."""

    def __init__(self, algorithms: list[str] | None = None, capacity: int = 256,
                 factory: Callable[[str], type[Algorithm] | None] | None = None):
        self._allowed = set(algorithms) if algorithms else None
        base_factory = factory or algorithm_classes.load
        self._cache = AlgorithmCache(self._gate(base_factory), capacity)

    def _gate(self, factory: Callable[[str], type[Algorithm] | None]) -> Callable[[str], type[Algorithm] | None]:
        def gated(name: str) -> type[Algorithm] | None:
            if self._allowed is not None and name not in self._allowed:
                return None
            return factory(name)

        return gated

    # ---- RPCs ----

    def ValidateAlgorithmSettings(self, request: api_pb2.ValidateAlgorithmSettingsRequest,
                                  context: grpc.ServicerContext) -> api_pb2.ValidateAlgorithmSettingsReply:
        experiment = request.experiment
        try:
            entry = self._cache.entry(experiment, namespace_of(context))
        except InvalidSettings as exc:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            with entry.lock:
                errors = validation_errors(entry.algorithm, experiment)
        except (OverflowError, ValueError) as exc:
            errors = [f"the search space cannot be used: {exc}"]
        except Exception as exc:  # a bug in a validator: report it, keep serving
            log.exception("validation failed", extra={"experiment": experiment.name})
            _abort(context, grpc.StatusCode.INTERNAL, f"validating the settings failed: {exc!r}")
        if errors:
            log.info("settings rejected", extra={"experiment": experiment.name, "errors": bounded("; ".join(errors))})
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "; ".join(errors))
        return api_pb2.ValidateAlgorithmSettingsReply()

    def GetSuggestions(self, request: api_pb2.GetSuggestionsRequest,
                       context: grpc.ServicerContext) -> api_pb2.GetSuggestionsReply:
        count = request.current_request_number
        if count == 0:
            return api_pb2.GetSuggestionsReply()
        if not 0 < count <= limits.MAX_REQUEST_NUMBER:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                   f"current_request_number: must be between 0 and {limits.MAX_REQUEST_NUMBER}, got {count}")
        experiment = request.experiment
        parameters = len(experiment.spec.parameter_specs.parameters)
        if count * parameters > limits.MAX_REQUEST_VALUES:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                   f"current_request_number: {count} assignments x {parameters} parameters is more than "
                   f"{limits.MAX_REQUEST_VALUES} values per call; ask for fewer at once")
        algorithm_name = bounded(experiment.spec.algorithm.algorithm_name, 100)
        started = time.perf_counter()
        try:
            with serving(lambda: still_wanted(context)):
                reply = self._suggest(experiment, list(request.trials), count, namespace_of(context))
        except Cancelled:
            gone = not context.is_active()
            log.info("suggest cancelled", extra={"experiment": experiment.name, "disconnected": gone})
            _abort(context, grpc.StatusCode.CANCELLED if gone else grpc.StatusCode.DEADLINE_EXCEEDED,
                   "the caller went away or its deadline passed; the work was stopped")
        except InvalidSettings as exc:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except SearchSpaceExhausted as exc:
            log.info("search space exhausted", extra={"experiment": experiment.name, "reason": bounded(str(exc))})
            _abort(context, grpc.StatusCode.OUT_OF_RANGE, str(exc) or "search space exhausted")
        except NotReady as exc:
            _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc) or "not ready, retry later")
        except ContractViolation as exc:
            log.error("algorithm broke the contract", extra={"experiment": experiment.name, "error": bounded(str(exc))})
            _abort(context, grpc.StatusCode.INTERNAL, f"algorithm {algorithm_name}: {exc}")
        except OverflowError as exc:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                   f"algorithm {algorithm_name}: the search space is too wide for double arithmetic ({exc})")
        except MemoryError:
            log.error("suggest ran out of memory", extra={"experiment": experiment.name, "count": count})
            _abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED,
                   f"algorithm {algorithm_name}: out of memory for {count} assignments over "
                   f"{len(request.trials)} trials; ask for fewer at once")
        except ValueError as exc:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Exception as exc:  # a bug in an algorithm: report it, keep serving
            log.exception("suggest failed", extra={"experiment": experiment.name})
            _abort(context, grpc.StatusCode.INTERNAL, f"algorithm {algorithm_name} failed: {exc!r}")
        log.debug("suggested", extra={"experiment": experiment.name, "count": count,
                                      "trials": len(request.trials),
                                      "ms": round((time.perf_counter() - started) * 1000, 3)})
        return reply

    def _suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial],
                 count: int, namespace: str = "") -> api_pb2.GetSuggestionsReply:
        entry = self._cache.entry(experiment, namespace)
        with entry.lock:
            fingerprint = entry.algorithm.fingerprint(experiment)
            if fingerprint != entry.fingerprint:
                # The spec changed under the same name (e.g. deleted and re-created): start over.
                entry.algorithm = type(entry.algorithm)()
                entry.fingerprint = fingerprint
                entry.validated = b""
            spec_bytes = experiment.spec.SerializeToString(deterministic=True)
            if spec_bytes != entry.validated:
                errors = validation_errors(entry.algorithm, experiment)
                if errors:
                    raise InvalidSettings("; ".join(errors))
                entry.validated = spec_bytes
            space = entry.algorithm.search_space(experiment)
            result = entry.algorithm.suggest(experiment, trials, count)
            check_result(result, space, count)
            return build_reply(result, space)


def add_to_server(servicer: SuggestionServicer, server: GrpcServer) -> None:
    """Registers the servicer on a ``sextant.server.GrpcServer``."""
    api_pb2_grpc.add_SuggestionServicer_to_server(servicer, server.grpc)
    server.add_service_names(SERVICE_NAME)
