"""hyperband over real gRPC on loopback: Katib's validation messages, the state carried in
reply.algorithm and overlaid by the caller (as Katib's controller does), promotions, failed
trials in a rung, a rung still running, exhaustion (OUT_OF_RANGE) and the conformance kit."""

from __future__ import annotations

import math
import uuid

import grpc
import pytest

from sextant.api import api_pb2
from sextant.conformance import Target, run_checks
from sextant.conformance import builders as b

from .suggestion_servers import get, in_process, validate

ALGO = "hyperband"
Condition = api_pb2.TrialStatus.TrialConditionType
STATE_KEYS = {"eta", "s_max", "r_l", "b_l", "r", "n", "current_s", "current_i", "resource_name",
              "evaluating_trials"}


@pytest.fixture(scope="module")
def server():
    with in_process() as (address, stub, _srv):
        yield address, stub


def _params():
    return [b.parameter("lr", "double", min="0.001", max="0.1", distribution="logUniform"),
            b.parameter("layers", "int", min="1", max="5"),
            b.parameter("epochs", "int", min="1", max="9")]


def _exp(settings=None, parallel=9, params=None):
    base = {"r_l": "9", "resource_name": "epochs", "eta": "3", "random_state": "1"}
    if settings is not None:
        base = settings
    return b.experiment(f"hb-{uuid.uuid4().hex[:8]}", ALGO, params or _params(), settings=base,
                        parallel_trial_count=parallel, metric="acc", maximize=True)


def _overlay(exp, reply):
    """What Katib's controller does: experiment settings overlaid with reply.algorithm."""
    merged = {s.name: s.value for s in exp.spec.algorithm.algorithm_settings}
    merged.update({s.name: s.value for s in reply.algorithm.algorithm_settings})
    out = api_pb2.Experiment()
    out.CopyFrom(exp)
    del out.spec.algorithm.algorithm_settings[:]
    for k, v in merged.items():
        out.spec.algorithm.algorithm_settings.add(name=k, value=v)
    return out


def _state(reply):
    return {s.name: s.value for s in reply.algorithm.algorithm_settings}


def _acc(point):
    """Higher with more epochs and an lr near 0.01: promotions are predictable."""
    return float(point["epochs"]) - abs(math.log10(float(point["lr"])) + 2) - 0.1 * int(point["layers"])


class Driver:
    """Plays the controller: requests, creates trials (with start times), completes them."""

    def __init__(self, stub, exp):
        self.stub, self.exp, self.trials, self.clock = stub, exp, [], 0

    def ask(self, count):
        reply = get(self.stub, self.exp, self.trials, count)
        self.exp = _overlay(self.exp, reply)
        points = [b.assignment(pa) for pa in reply.parameter_assignments]
        return reply, points

    def run(self, points, fail=()):
        for i, p in enumerate(points):
            self.clock += 1
            failed = i in fail
            t = b.trial(f"t{len(self.trials)}", p, metric="acc",
                        condition=Condition.FAILED if failed else Condition.SUCCEEDED,
                        value=None if failed else _acc(p))
            t.status.start_time = f"2026-01-01T00:{self.clock // 60:02d}:{self.clock % 60:02d}Z"
            self.trials.append(t)


# ---- validation ----


def test_valid_settings(server):
    _, stub = server
    validate(stub, _exp())
    validate(stub, _exp({"r_l": "9", "resource_name": "epochs"}))  # eta defaults to 3


@pytest.mark.parametrize("settings,parallel,message", [
    ({"resource_name": "epochs"}, 9, "r_l and resource_name must be set."),
    ({"r_l": "9"}, 9, "r_l and resource_name must be set."),
    ({"r_l": "-1", "resource_name": "epochs"}, 9, "r_l must be a positive float number."),
    ({"r_l": "many", "resource_name": "epochs"}, 9, "r_l must be a positive float number."),
    ({"r_l": "9", "resource_name": "epochs", "eta": "3"}, 3, "parallelTrialCount must be not less than 9."),
    ({"r_l": "27", "resource_name": "epochs", "eta": "0"}, 9, "parallelTrialCount must be not less than 27."),
    ({"r_l": "9", "resource_name": "steps"}, 9, "value of resource_name setting must be in parameters."),
])
def test_invalid_settings(server, settings, parallel, message):
    _, stub = server
    with pytest.raises(grpc.RpcError) as err:
        validate(stub, _exp(settings, parallel=parallel))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


# ---- the schedule ----


def test_state_round_trip_promotions_and_exhaustion(server):
    _, stub = server
    d = Driver(stub, _exp())
    # bracket s=2: rung 0 = 9 configs at epochs 1
    reply, rung0 = d.ask(9)
    state = _state(reply)
    assert set(state) == STATE_KEYS
    assert state["s_max"] == "2" and state["current_s"] == "2" and state["current_i"] == "0"
    assert state["evaluating_trials"] == "9" and state["resource_name"] == "epochs"
    assert {p["epochs"] for p in rung0} == {"1"}
    assert len({(p["lr"], p["layers"]) for p in rung0}) == 9
    d.run(rung0)
    # rung 1: the best ceil(9/3) = 3 at epochs 3, same lr/layers
    reply, rung1 = d.ask(3)
    best = sorted(rung0, key=_acc, reverse=True)[:3]
    assert [(p["lr"], p["layers"]) for p in rung1] == [(p["lr"], p["layers"]) for p in best]
    assert {p["epochs"] for p in rung1} == {"3"}
    assert _state(reply)["current_i"] == "1"
    d.run(rung1)
    reply, rung2 = d.ask(1)
    assert [(p["lr"], p["layers"], p["epochs"]) for p in rung2] == [
        (max(rung1, key=_acc)["lr"], max(rung1, key=_acc)["layers"], "9")]
    d.run(rung2)
    # bracket s=1 starts with fresh configs at epochs 3, then bracket s=0 at epochs 9
    reply, b1 = d.ask(3)
    assert _state(reply)["current_s"] == "1" and {p["epochs"] for p in b1} == {"3"}
    d.run(b1)
    _, b1r1 = d.ask(1)
    assert b1r1[0]["epochs"] == "9"
    d.run(b1r1)
    reply, b0 = d.ask(3)
    assert _state(reply)["current_s"] == "0" and {p["epochs"] for p in b0} == {"9"}
    d.run(b0)
    with pytest.raises(grpc.RpcError) as err:
        d.ask(3)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "finished" in err.value.details()


def test_failed_trials_in_a_rung_are_skipped(server):
    _, stub = server
    d = Driver(stub, _exp())
    _, rung0 = d.ask(9)
    d.run(rung0, fail={i for i in range(9) if i != 4 and i != 7})  # only two succeed
    _, rung1 = d.ask(2)
    assert sorted((p["lr"], p["layers"]) for p in rung1) == sorted(
        (rung0[i]["lr"], rung0[i]["layers"]) for i in (4, 7))


def test_extra_slots_are_filled_with_fresh_configs_at_the_rung_resource(server):
    _, stub = server
    d = Driver(stub, _exp())
    _, rung0 = d.ask(9)
    d.run(rung0)
    reply, rung1 = d.ask(5)
    assert len(rung1) == 5 and {p["epochs"] for p in rung1} == {"3"}
    best = {(p["lr"], p["layers"]) for p in sorted(rung0, key=_acc, reverse=True)[:3]}
    assert best <= {(p["lr"], p["layers"]) for p in rung1}
    assert _state(reply)["evaluating_trials"] == "5"


def test_running_rung_is_not_promoted(server):
    _, stub = server
    d = Driver(stub, _exp())
    _, rung0 = d.ask(9)
    d.run(rung0[:8])
    d.trials.append(b.trial("running", rung0[8], condition=Condition.RUNNING))
    with pytest.raises(grpc.RpcError) as err:
        d.ask(3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "waiting for 1 trial" in err.value.details()


def test_a_restarted_server_continues_from_the_request_alone():
    with in_process() as (_a, stub, _s):
        d = Driver(stub, _exp())
        _, rung0 = d.ask(9)
        d.run(rung0)
        saved_exp, saved_trials = d.exp, list(d.trials)  # what the controller stores
        _, first = d.ask(3)
    with in_process() as (_a, stub, _s):  # a new process: only the request
        reply = get(stub, saved_exp, saved_trials, 3)
    assert [b.assignment(pa) for pa in reply.parameter_assignments] == first


def test_conformance_kit(server):
    address, _ = server
    results = run_checks(Target(address, ALGO))
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert failed == []
