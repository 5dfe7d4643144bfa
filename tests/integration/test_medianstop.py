"""medianstop over real gRPC on loopback.

GetEarlyStoppingRules talks to a DB manager (Katib's API): here a tiny in-test
``api.v1.beta1.DBManager`` peer serving GetObservationLog from a dict. SetTrialStatus writes to
Sextant's real resource store (the db_manager on SQLite), through ``sextant.store.client``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.suggestion.earlystopping.servicer import HEALTH_NAMES, EarlyStoppingServicer, add_to_server
from sextant.api import api_pb2, api_pb2_grpc
from sextant.config import ServerSettings
from sextant.conformance import builders as b
from sextant.server import GrpcServer

ROOT = Path(__file__).resolve().parents[2]
Condition = api_pb2.TrialStatus.TrialConditionType


class ObservationLogs(api_pb2_grpc.DBManagerServicer):
    """A Katib DBManager peer answering GetObservationLog from ``logs[trial] = [(metric, value)]``."""

    def __init__(self, logs):
        self.logs = logs
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def GetObservationLog(self, request, context):
        with self._lock:
            self.calls.append(request.trial_name)
        reply = api_pb2.GetObservationLogReply()
        for i, (metric, value) in enumerate(self.logs.get(request.trial_name, [])):
            if request.metric_name and metric != request.metric_name:
                continue
            reply.observation_log.metric_logs.add(
                time_stamp=f"2026-01-01T00:00:{i:02d}Z", metric=api_pb2.Metric(name=metric, value=value))
        return reply


@pytest.fixture
def db_logs():
    logs: dict = {}
    servicer = ObservationLogs(logs)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    api_pb2_grpc.add_DBManagerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", logs, servicer
    server.stop(0)


def _serve(servicer):
    server = GrpcServer(ServerSettings(port=0, grace_seconds=0), name="test-earlystopping",
                        health_names=HEALTH_NAMES)
    add_to_server(servicer, server)
    port = server.start()
    return server, grpc.insecure_channel(f"127.0.0.1:{port}")


@pytest.fixture
def es():
    server, channel = _serve(EarlyStoppingServicer())
    yield api_pb2_grpc.EarlyStoppingStub(channel), channel
    channel.close()
    server.stop()


def _spec(settings=None, name="medianstop"):
    spec = api_pb2.EarlyStoppingSpec(algorithm_name=name)
    for k, v in (settings or {}).items():
        spec.algorithm_settings.add(name=k, value=v)
    return spec


def _exp(settings=None, maximize=True):
    exp = b.experiment("es-exp", "random", [b.parameter("x", "double", min="0", max="1")],
                       metric="acc", maximize=maximize)
    exp.spec.early_stopping.CopyFrom(_spec(settings))
    return exp


def _rules(stub, exp, trials, address):
    return stub.GetEarlyStoppingRules(api_pb2.GetEarlyStoppingRulesRequest(
        experiment=exp, trials=trials, db_manager_address=address), timeout=30).early_stopping_rules


def _done(name, condition=Condition.SUCCEEDED):
    return b.trial(name, {"x": "0.5"}, metric="acc", condition=condition, value=0.5)


# ---- validation and health ----


def test_health_serves_empty_and_katib_names(es):
    _, channel = es
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "manager.v1beta1.EarlyStopping"):
        assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_valid_settings(es):
    stub, _ = es
    stub.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(
        early_stopping=_spec({"min_trials_required": "2", "start_step": "1"})))
    stub.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=_spec()))


@pytest.mark.parametrize("spec,message", [
    (_spec({"min_trials_required": "0"}), "min_trials_required must be greater than zero (>0)"),
    (_spec({"start_step": "0"}), "start_step must be greater or equal than one (>=1)"),
    (_spec({"start_step": "two"}), "failed to validate start_step(two): invalid literal for int() with base 10: 'two'"),
    (_spec({"patience": "3"}), "unknown setting patience for algorithm medianstop"),
    # Katib answers the first problem only, in request order
    (_spec({"start_step": "2", "min_trials_required": "-1", "patience": "3"}),
     "min_trials_required must be greater than zero (>0)"),
    (_spec(name="truncation"), "unknown algorithm name truncation"),
])
def test_invalid_settings(es, spec, message):
    """Katib's exact status and message text."""
    stub, _ = es
    with pytest.raises(grpc.RpcError) as err:
        stub.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=spec))
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


# ---- rules ----


def test_rule_is_the_median_of_early_means(es, db_logs):
    stub, _ = es
    address, logs, _ = db_logs
    # start_step 2: per-trial means of the first two values are 1, 2 and 30 -> median 2 (mean 11)
    logs["a"] = [("acc", "0.5"), ("loss", "9"), ("acc", "1.5"), ("acc", "100")]
    logs["b"] = [("acc", "2"), ("acc", "2")]
    logs["c"] = [("acc", "20"), ("acc", "40"), ("acc", "0")]
    trials = [_done("a"), _done("b"), _done("c")]
    (rule,) = _rules(stub, _exp({"min_trials_required": "3", "start_step": "2"}), trials, address)
    assert rule.name == "acc"
    assert float(rule.value) == 2.0
    assert rule.comparison == api_pb2.LESS
    assert rule.start_step == 2


def test_minimize_compares_greater_and_even_count_median(es, db_logs):
    stub, _ = es
    address, logs, _ = db_logs
    for name, v in zip("abcd", ["1", "2", "4", "100"], strict=True):
        logs[name] = [("acc", v)] * 5
    (rule,) = _rules(stub, _exp({"start_step": "4"}, maximize=False), [_done(n) for n in "abcd"], address)
    assert rule.comparison == api_pb2.GREATER
    assert float(rule.value) == 3.0
    assert rule.start_step == 4


def test_no_rule_until_enough_completed_trials(es, db_logs):
    stub, _ = es
    address, logs, servicer = db_logs
    for name in "abcd":
        logs[name] = [("acc", "1")] * 4
    trials = [_done("a"), _done("b"), _done("c", Condition.RUNNING), _done("d", Condition.FAILED)]
    assert list(_rules(stub, _exp(), trials, address)) == []  # default min_trials_required = 3
    assert sorted(servicer.calls) == ["a", "b"]  # only SUCCEEDED trials are read
    # a trial without numeric values does not count
    logs["e"] = [("acc", "unavailable")]
    assert list(_rules(stub, _exp(), trials[:2] + [_done("e")], address)) == []
    logs["f"] = [("acc", "7")]
    assert len(_rules(stub, _exp(), trials[:2] + [_done("f")], address)) == 1


def test_logs_of_a_trial_are_read_once(es, db_logs):
    stub, _ = es
    address, logs, servicer = db_logs
    for name in "abc":
        logs[name] = [("acc", "1")]
    trials = [_done(n) for n in "abc"]
    _rules(stub, _exp(), trials, address)
    _rules(stub, _exp(), trials, address)
    assert sorted(servicer.calls) == ["a", "b", "c"]


def test_unreachable_db_manager_is_unavailable(es):
    stub, _ = es
    with pytest.raises(grpc.RpcError) as err:
        _rules(stub, _exp(), [_done("a")], "127.0.0.1:1")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


# ---- SetTrialStatus against the real resource store ----


@pytest.fixture
def store(sqlite_db_manager):
    client = sqlite_db_manager.store()
    yield sqlite_db_manager.address, client
    client.close()


def _store_trial(name, namespace="default"):
    from sextant.resources.models import Trial

    return Trial.model_validate({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "acc"},
                 "parameterAssignments": [{"name": "x", "value": "0.5"}],
                 "runSpec": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                             "spec": {"template": {"spec": {"containers": [
                                 {"name": "main", "image": "x", "command": ["true"]}]}}}}},
    })


def test_set_trial_status_marks_the_trial_early_stopped(store):
    address, client = store
    client.create(_store_trial("t1"))
    server, channel = _serve(EarlyStoppingServicer(client))
    try:
        stub = api_pb2_grpc.EarlyStoppingStub(channel)
        stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="t1"), timeout=30)
        stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="t1"), timeout=30)  # idempotent
        trial = client.get("Trial", "default", "t1")
        stopped = [c for c in trial.status.conditions if c.type == "EarlyStopped"]
        assert len(stopped) == 1
        assert (stopped[0].status, stopped[0].reason, stopped[0].message) == \
            ("True", "TrialEarlyStopped", "Trial is early stopped")
        assert trial.status.conditions[-1].type == "EarlyStopped"
        with pytest.raises(grpc.RpcError) as err:
            stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="missing"), timeout=30)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        channel.close()
        server.stop()


def test_set_trial_status_without_store_is_a_precondition_failure(es):
    stub, _ = es
    with pytest.raises(grpc.RpcError) as err:
        stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="t1"), timeout=30)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_module_runs_as_a_process_with_katib_flags(store):
    address, _ = store
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "services.suggestion.earlystopping", "--algorithm",
                             "medianstop", "--port", "0", "--db-manager", address],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        channel = grpc.insecure_channel(line.split()[-1])
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="manager.v1beta1.EarlyStopping"), timeout=30).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_without_db_manager_flag_the_rules_request_address_is_used(store):
    """Sextant's DB manager serves Katib's DBManager and the resource store on one address."""
    address, client = store
    client.create(_store_trial("t2"))
    server, channel = _serve(EarlyStoppingServicer())
    try:
        stub = api_pb2_grpc.EarlyStoppingStub(channel)
        assert list(_rules(stub, _exp(), [], address)) == []
        stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="t2"), timeout=30)
        assert client.get("Trial", "default", "t2").status.conditions[-1].type == "EarlyStopped"
    finally:
        channel.close()
        server.stop()
