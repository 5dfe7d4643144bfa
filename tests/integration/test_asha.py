"""asha over real gRPC on loopback, reading logs from an in-test Katib DBManager peer."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from services.metrics_collector.early_stopping import EarlyStopper, StopRule
from services.suggestion.earlystopping.servicer import EarlyStoppingServicer
from sextant.api import api_pb2, api_pb2_grpc
from sextant.conformance import builders as b
from sextant.metric_lines import MetricLog
from tests.integration.test_medianstop import ObservationLogs, _serve

Condition = api_pb2.TrialStatus.TrialConditionType


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


@pytest.fixture
def es():
    server, channel = _serve(EarlyStoppingServicer(algorithm="asha"))
    yield api_pb2_grpc.EarlyStoppingStub(channel)
    channel.close()
    server.stop()


def _spec(settings=None, name="asha"):
    spec = api_pb2.EarlyStoppingSpec(algorithm_name=name)
    for k, v in (settings or {}).items():
        spec.algorithm_settings.add(name=k, value=v)
    return spec


def _exp(settings=None, maximize=True):
    exp = b.experiment("asha-exp", "random", [b.parameter("x", "double", min="0", max="1")],
                       metric="acc", maximize=maximize)
    exp.spec.early_stopping.CopyFrom(_spec(settings))
    return exp


def _trial(name, condition=Condition.SUCCEEDED):
    return b.trial(name, {"x": "0.5"}, metric="acc", condition=condition, value=0.5)


def _rules(stub, exp, trials, address):
    return list(stub.GetEarlyStoppingRules(api_pb2.GetEarlyStoppingRulesRequest(
        experiment=exp, trials=trials, db_manager_address=address), timeout=30).early_stopping_rules)


def test_valid_settings(es):
    es.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=_spec()))
    es.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(early_stopping=_spec(
        {"min_resource": "2", "reduction_factor": "4", "min_early_stopping_rate": "1"})))


@pytest.mark.parametrize("settings,name,message", [
    ({"min_resource": "0"}, "asha", "min_resource must be greater or equal than 1 (>=1), got 0"),
    ({"reduction_factor": "1"}, "asha", "reduction_factor must be greater or equal than 2 (>=2), got 1"),
    ({"min_early_stopping_rate": "-1"}, "asha", "min_early_stopping_rate must be greater or equal than 0"),
    ({"reduction_factor": "three"}, "asha", "reduction_factor must be an integer, got 'three'"),
    ({"grace_period": "3"}, "asha", "unknown setting grace_period for algorithm asha"),
    ({"min_resource": "1000", "min_early_stopping_rate": "20"}, "asha", "must be at most 1000000 reports"),
    ({"min_early_stopping_rate": "9" * 18}, "asha", "min_early_stopping_rate must be at most 64"),
    ({"min_resource": "9" * 5000}, "asha", "min_resource must be an integer, got '99999"),
    ({}, "medianstop", "unknown algorithm name medianstop"),
])
def test_invalid_settings_name_the_setting(es, settings, name, message):
    with pytest.raises(grpc.RpcError) as err:
        es.ValidateEarlyStoppingSettings(api_pb2.ValidateEarlyStoppingSettingsRequest(
            early_stopping=_spec(settings, name)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    exp = _exp(settings)
    exp.spec.early_stopping.algorithm_name = name
    with pytest.raises(grpc.RpcError) as err:  # the same answer when rules are asked for
        _rules(es, exp, [], "127.0.0.1:1")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cutoff_is_the_top_third_at_the_rung(es, db_logs):
    address, logs, _ = db_logs
    # rung = 1 * 3 ** 1 = 3 reports; rung values (best of the first three): a 3, b 5, c 4, d 9, e 1, f 2
    logs["a"] = [("acc", "1"), ("acc", "3"), ("acc", "2"), ("acc", "50")]
    logs["b"] = [("acc", "5"), ("loss", "7"), ("acc", "unavailable"), ("acc", "0"), ("acc", "0")]
    logs["c"] = [("acc", "4"), ("acc", "4"), ("acc", "4")]
    logs["d"] = [("acc", "9"), ("acc", "9"), ("acc", "9")]
    logs["e"] = [("acc", "1"), ("acc", "1"), ("acc", "1")]
    logs["f"] = [("acc", "2"), ("acc", "2"), ("acc", "2")]
    logs["g"] = [("acc", "100"), ("acc", "100")]  # running, not at the rung yet
    logs["h"] = [("acc", "100")] * 3  # failed: not counted
    trials = [_trial("a"), _trial("b", Condition.EARLYSTOPPED), _trial("c", Condition.RUNNING), _trial("d"),
              _trial("e", Condition.EARLYSTOPPED), _trial("f"), _trial("g", Condition.RUNNING),
              _trial("h", Condition.FAILED)]
    (rule,) = _rules(es, _exp({"min_early_stopping_rate": "1"}), trials, address)
    # six rung values, 6 // 3 = 2 go on: the cut-off is the second best, 5
    assert (rule.name, float(rule.value), rule.comparison, rule.start_step) == ("acc", 5.0, api_pb2.LESS, 2)


def test_minimize_and_too_few_trials(es, db_logs):
    address, logs, _ = db_logs
    for name, v in zip("abcd", ["4", "1", "3", "2"], strict=True):
        logs[name] = [("acc", v)] * 2
    settings = {"min_resource": "2", "reduction_factor": "2"}
    assert _rules(es, _exp(settings, maximize=False), [_trial("a")], address) == []
    (rule,) = _rules(es, _exp(settings, maximize=False), [_trial(n) for n in "abcd"], address)
    assert (float(rule.value), rule.comparison, rule.start_step) == (2.0, api_pb2.GREATER, 1)


def test_finished_logs_read_once_running_logs_every_time_and_a_restart_answers_the_same(es, db_logs):
    address, logs, servicer = db_logs
    for name in "abc":
        logs[name] = [("acc", str(ord(name)))] * 3
    trials = [_trial("a"), _trial("b", Condition.EARLYSTOPPED), _trial("c", Condition.RUNNING)]
    first = _rules(es, _exp({"min_resource": "3"}), trials, address)
    assert _rules(es, _exp({"min_resource": "3"}), trials, address) == first
    assert sorted(servicer.calls) == ["a", "b", "c", "c"]
    server, channel = _serve(EarlyStoppingServicer(algorithm="asha"))  # a restarted service
    try:
        assert _rules(api_pb2_grpc.EarlyStoppingStub(channel), _exp({"min_resource": "3"}), trials,
                      address) == first
    finally:
        channel.close()
        server.stop()


def test_the_collector_stops_a_trial_only_when_it_is_below_the_cutoff_at_the_rung():
    rule = api_pb2.EarlyStoppingRule(name="acc", value="5.0", comparison=api_pb2.LESS, start_step=2)
    text = f"{rule.name};{rule.value};less;{rule.start_step}"

    def stopped_at(values):
        stopper = EarlyStopper([StopRule.parse(text)], "acc", "maximize")
        for i, v in enumerate(values, 1):
            if stopper.observe(MetricLog("2026-01-01T00:00:00Z", "acc", v)):
                return i
        return None

    assert stopped_at(["1", "2", "3", "9", "9"]) == 3  # worse at the rung (report 3): stopped there
    assert stopped_at(["1", "2", "6", "0", "0"]) is None  # good enough at the rung: runs to the end
    assert stopped_at(["9", "0", "0", "0"]) is None  # the best so far counts
