"""The early-stopping servicer's bounds on one call (issue 21), with a stand-in gRPC context:
oversized requests are INVALID_ARGUMENT naming the field, errors quote a bounded excerpt, and
observation logs are read only while the caller waits."""

from __future__ import annotations

import grpc
import pytest

from services.suggestion.earlystopping.servicer import MAX_MESSAGE_CHARS, EarlyStoppingServicer
from sextant import limits
from sextant.api import api_pb2


class Aborted(Exception):
    pass


class Context:
    def __init__(self, active: bool = True, remaining: float | None = 30.0):
        self.active, self.remaining = active, remaining
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def abort(self, code, details):
        self.code, self.details = code, details
        raise Aborted

    def is_active(self) -> bool:
        return self.active

    def time_remaining(self):
        return self.remaining

    def invocation_metadata(self):
        return ()


def rules_request(trials: int = 3, name: str = "t", settings=(), address: str = "127.0.0.1:1",
                  metric: str = "score") -> api_pb2.GetEarlyStoppingRulesRequest:
    experiment = api_pb2.Experiment(name="e", spec=api_pb2.ExperimentSpec(
        objective=api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, objective_metric_name=metric),
        early_stopping=api_pb2.EarlyStoppingSpec(algorithm_name="medianstop", algorithm_settings=[
            api_pb2.EarlyStoppingSetting(name=n, value=v) for n, v in settings])))
    return api_pb2.GetEarlyStoppingRulesRequest(
        experiment=experiment, db_manager_address=address,
        trials=[api_pb2.Trial(name=f"{name}{i}", status=api_pb2.TrialStatus(condition=api_pb2.TrialStatus.SUCCEEDED))
                for i in range(trials)])


def call(method: str, request, context: Context):
    try:
        return getattr(EarlyStoppingServicer(), method)(request, context)
    except Aborted:
        return None


@pytest.mark.parametrize("request_, field", [
    (rules_request(trials=limits.MAX_EARLY_STOPPING_TRIALS + 1), "trials: at most"),
    (rules_request(name="x" * (limits.MAX_NAME_CHARS + 1)), "trial names are longer"),
    (rules_request(metric="m" * (limits.MAX_NAME_CHARS + 1)), "objective_metric_name: at most"),
    (rules_request(address="h" * (limits.MAX_ADDRESS_CHARS + 1)), "db_manager_address: at most"),
])
def test_oversized_requests_are_rejected_naming_the_field(request_, field):
    context = Context()
    assert call("GetEarlyStoppingRules", request_, context) is None
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT and field in context.details
    assert len(context.details) <= MAX_MESSAGE_CHARS + 40


def test_a_huge_setting_value_gets_a_short_error():
    context = Context()
    request = api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=api_pb2.EarlyStoppingSpec(
        algorithm_name="medianstop", algorithm_settings=[
            api_pb2.EarlyStoppingSetting(name="start_step", value="9" * 5000)]))
    assert call("ValidateEarlyStoppingSettings", request, context) is None
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_step" in context.details and "5000 characters" in context.details and len(context.details) < 300


@pytest.mark.parametrize("context, code", [
    (Context(active=False), grpc.StatusCode.CANCELLED),
    (Context(remaining=0.0), grpc.StatusCode.DEADLINE_EXCEEDED),
])
def test_no_observation_log_is_read_once_the_caller_is_gone(context, code):
    # The DB manager address answers nothing: a read would end UNAVAILABLE instead.
    assert call("GetEarlyStoppingRules", rules_request(), context) is None
    assert context.code == code


def test_a_waiting_caller_gets_the_db_managers_error_bounded():
    context = Context(remaining=2.0)
    assert call("GetEarlyStoppingRules", rules_request(), context) is None
    assert context.code == grpc.StatusCode.UNAVAILABLE and "GetObservationLog at 127.0.0.1:1" in context.details


def test_set_trial_status_bounds_the_name():
    context = Context()
    assert call("SetTrialStatus", api_pb2.SetTrialStatusRequest(trial_name="t" * 1000), context) is None
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT and "trial_name: at most" in context.details
