"""The algorithm servicer's bounds on one call (issue 21), with a stand-in gRPC context: work
stops when the caller is gone, and arithmetic or memory failures get codes with messages."""

from __future__ import annotations

from collections import namedtuple

import grpc
import pytest

from services.suggestion.algorithms import random_search
from services.suggestion.algorithms.search_space import SearchSpace
from services.suggestion.algorithms.servicer import SuggestionServicer
from sextant.api import api_pb2

Metadatum = namedtuple("Metadatum", "key value")  # what grpc's invocation_metadata() yields


class Aborted(Exception):
    pass


class Context:
    def __init__(self, active_calls: int = 10**9, remaining: float | None = 30.0, namespace: str = ""):
        self.active_calls = active_calls  # is_active() answers True this many times
        self.remaining = remaining
        self.namespace = namespace
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def abort(self, code, details):
        self.code, self.details = code, details
        raise Aborted

    def is_active(self) -> bool:
        self.active_calls -= 1
        return self.active_calls >= 0

    def time_remaining(self):
        return self.remaining

    def invocation_metadata(self):
        return (Metadatum("sextant-namespace", self.namespace),) if self.namespace else ()


def request(count: int = 50, parameters: int = 10) -> api_pb2.GetSuggestionsRequest:
    return api_pb2.GetSuggestionsRequest(current_request_number=count, total_request_number=count,
                                         experiment=api_pb2.Experiment(name="e", spec=api_pb2.ExperimentSpec(
        algorithm=api_pb2.AlgorithmSpec(algorithm_name="random"),
        objective=api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, objective_metric_name="score"),
        parameter_specs=api_pb2.ExperimentSpec.ParameterSpecs(parameters=[
            api_pb2.ParameterSpec(name=f"x{i}", parameter_type=api_pb2.DOUBLE,
                                  feasible_space=api_pb2.FeasibleSpace(min="0", max="1"))
            for i in range(parameters)]),
        max_trial_count=100, parallel_trial_count=50)))


def suggest(context: Context, req=None) -> api_pb2.GetSuggestionsReply | None:
    try:
        return SuggestionServicer(["random"]).GetSuggestions(req or request(), context)
    except Aborted:
        return None


@pytest.fixture
def draws(monkeypatch):
    counter = {"n": 0}
    original = SearchSpace.sample

    def counting(self, rng):
        counter["n"] += 1
        return original(self, rng)

    monkeypatch.setattr(SearchSpace, "sample", counting)
    return counter


def test_a_disconnected_caller_stops_the_work(draws):
    context = Context(active_calls=5)
    assert suggest(context) is None
    assert context.code == grpc.StatusCode.CANCELLED
    assert draws["n"] <= 6  # stopped at the next check, not after all 50 points


def test_a_passed_deadline_stops_the_work(draws):
    context = Context(remaining=0.0)
    assert suggest(context) is None
    assert context.code == grpc.StatusCode.DEADLINE_EXCEEDED and draws["n"] <= 1


def test_a_waiting_caller_gets_every_point(draws):
    reply = suggest(Context())
    assert reply is not None and len(reply.parameter_assignments) == 50


@pytest.mark.parametrize("error, code", [
    (MemoryError(), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (OverflowError("math range error"), grpc.StatusCode.INVALID_ARGUMENT),
])
def test_memory_and_overflow_errors_are_never_internal(monkeypatch, error, code):
    def fail(self, experiment, trials, count):
        raise error

    monkeypatch.setattr(random_search.RandomSearch, "suggest", fail)
    context = Context()
    assert suggest(context) is None
    assert context.code == code and context.details


def test_request_size_limits():
    for count, parameters in ((1001, 1), (-1, 1), (101, 100)):
        context = Context()
        assert suggest(context, request(count, parameters)) is None
        assert context.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "current_request_number" in context.details


def test_one_servicer_keeps_experiments_of_each_namespace_apart():
    """A service shared by every namespace: the same experiment name in two namespaces gets two
    optimizer states (the namespace comes from the call metadata), one namespace reuses its own."""
    made = []

    class Recorded(random_search.RandomSearch):
        def __init__(self):
            super().__init__()
            made.append(self)

    servicer = SuggestionServicer(["random"], factory=lambda name: Recorded if name == "random" else None)
    for namespace in ("team-a", "team-b", "team-a", ""):
        reply = servicer.GetSuggestions(request(2, 1), Context(namespace=namespace))
        assert len(reply.parameter_assignments) == 2
    assert len(made) == 3
