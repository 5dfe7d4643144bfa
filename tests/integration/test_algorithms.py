"""Every built-in algorithm over real gRPC on loopback: validation, feasibility, determinism,
many experiments, pending trials, exhaustion, and the servicer's contract enforcement."""

from __future__ import annotations

import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.suggestion.algorithms.base import Algorithm, SuggestResult
from services.suggestion.algorithms.servicer import SuggestionServicer
from sextant.api import api_pb2
from sextant.conformance import builders as b
from sextant.conformance.checks import assignment_problems

from .suggestion_servers import BUILTIN, get, in_process, validate

Condition = api_pb2.TrialStatus.TrialConditionType


@pytest.fixture(scope="module")
def stub():
    with in_process() as (_address, stub, _server):
        yield stub


def space_for(algorithm: str):
    if algorithm == "grid":
        return [b.parameter("lr", "double", min="0.01", max="0.05", step="0.01"),
                b.parameter("layers", "int", min="1", max="6"),
                b.parameter("opt", "categorical", values=["sgd", "adam"])]
    return b.mixed_space()


def points(reply) -> list[dict[str, str]]:
    return [b.assignment(pa) for pa in reply.parameter_assignments]


def completed(exp, reply, prefix: str) -> list[api_pb2.Trial]:
    return [b.trial(f"{exp.name}-{prefix}-{i}", p, value=b.synthetic_value(p)) for i, p in enumerate(points(reply))]


def _unique(name: str) -> str:
    import uuid

    return f"{name}-{uuid.uuid4().hex[:6]}"


# ---- health and basic contract ----


def test_health_serves_katib_name_and_empty_name():
    with in_process() as (address, _stub, _server):
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(address))
        for name in ("manager.v1beta1.Suggestion", ""):
            assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == \
                health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("algorithm", BUILTIN)
def test_zero_request_gets_an_empty_reply_and_negative_is_invalid(stub, algorithm):
    exp = b.experiment(_unique("zero"), algorithm, space_for(algorithm))
    assert len(get(stub, exp, count=0).parameter_assignments) == 0
    # A negative count is a caller's bug: it used to be answered OK with nothing, which hid it.
    with pytest.raises(grpc.RpcError) as err:
        get(stub, exp, count=-2)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "current_request_number" in err.value.details()


def test_unknown_algorithm_is_invalid_argument(stub):
    exp = b.experiment(_unique("unknown"), "simulated-annealing", b.mixed_space())
    for call in (lambda: validate(stub, exp), lambda: get(stub, exp)):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unknown algorithm name simulated-annealing" in err.value.details()


# ---- validation: Katib's messages ----

# Bad settings and Katib's exact messages: test_algorithms_settings.py
VALID = {
    "random": {"random_state": "10"},
    "grid": {"random_state": "0"},
    "tpe": {"gamma": "0.3", "prior_weight": "2", "n_EI_candidates": "10", "random_state": "3"},
    "multivariate-tpe": {"n_startup_trials": "5", "n_ei_candidates": "12", "random_state": "1"},
    "cmaes": {"restart_strategy": "ipop", "sigma": "0.2", "random_state": "4"},
    "sobol": {"random_state": "9"},
    "nsga2": {"population_size": "4", "crossover_prob": "0.8", "mutation_prob": "0.2", "random_state": "5"},
    "mo-tpe": {"n_startup_trials": "3", "n_ei_candidates": "8", "random_state": "2"},
}


@pytest.mark.parametrize("algorithm", BUILTIN)
def test_valid_settings_are_accepted(stub, algorithm):
    exp = b.experiment(_unique("valid"), algorithm, space_for(algorithm), settings=VALID[algorithm])
    validate(stub, exp)
    assert len(get(stub, exp, count=2).parameter_assignments) == 2


def test_cmaes_needs_two_continuous_dimensions(stub):
    exp = b.experiment(_unique("cma1d"), "cmaes", [b.parameter("x", "double", min="0", max="1"),
                                                     b.parameter("c", "categorical", values=["a", "b"])])
    with pytest.raises(grpc.RpcError) as err:
        validate(stub, exp)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cmaes only supports two or more dimensional continuous search space." in err.value.details()


def test_grid_double_needs_step_and_max_trial_count_fits(stub):
    no_step = b.experiment(_unique("g1"), "grid", [b.parameter("x", "double", min="0", max="1")])
    with pytest.raises(grpc.RpcError) as err:
        validate(stub, no_step)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "x" in err.value.details()
    too_many = b.experiment(_unique("g2"), "grid", [b.parameter("n", "int", min="1", max="3"),
                                                    b.parameter("c", "categorical", values=["a", "b"])],
                            max_trial_count=7)
    with pytest.raises(grpc.RpcError) as err:
        validate(stub, too_many)
    assert "Max Trial Count: 7 > all possible search combinations: 6" in err.value.details()
    too_many.spec.max_trial_count = 6
    validate(stub, too_many)


def test_bad_search_space_is_invalid_argument_naming_the_parameter(stub):
    exp = b.experiment(_unique("badspace"), "random", [b.parameter("lr", "double", min="1", max="0.1")])
    with pytest.raises(grpc.RpcError) as err:
        get(stub, exp)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "lr" in err.value.details()


# ---- feasibility over many requests (hypothesis) ----

_params = st.lists(st.one_of(
    st.builds(lambda lo, w, step, dist: ("double", dict(min=repr(lo), max=repr(lo + w), step=step,
                                                        distribution=dist)),
              st.floats(-10, 10), st.floats(0.5, 20), st.sampled_from(["", "0.5"]),
              st.sampled_from(["", "logUniform", "normal", "logNormal"])),
    st.builds(lambda lo, w, step, dist: ("int", dict(min=str(lo), max=str(lo + w), step=step, distribution=dist)),
              st.integers(-5, 20), st.integers(1, 30), st.sampled_from(["", "2"]),
              st.sampled_from(["", "logUniform"])),
    st.builds(lambda vals: ("categorical", dict(values=vals)),
              st.lists(st.sampled_from(["a", "b", "c", "0.5", "x y"]), min_size=1, max_size=4, unique=True)),
), min_size=2, max_size=5)


def _build_space(algorithm, spec):
    params = []
    for i, (ptype, kw) in enumerate(spec):
        if algorithm == "grid" and ptype == "double" and not kw.get("step"):
            kw = dict(kw, step="0.5")
        params.append(b.parameter(f"p{i}", ptype, **kw))
    if algorithm == "cmaes" and sum(1 for p in params if p.parameter_type != api_pb2.CATEGORICAL) < 2:
        params += [b.parameter("extra1", "double", min="0", max="1"), b.parameter("extra2", "int", min="0", max="9")]
    return params


@pytest.mark.parametrize("algorithm", BUILTIN)
def test_feasible_and_formatted_over_many_requests(stub, algorithm):
    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(spec=_params, maximize=st.booleans(), counts=st.lists(st.integers(1, 4), min_size=2, max_size=4))
    def run(spec, maximize, counts):
        exp = b.experiment(_unique("hyp"), algorithm, _build_space(algorithm, spec), maximize=maximize)
        trials: list[api_pb2.Trial] = []
        for r, count in enumerate(counts):
            try:
                reply = get(stub, exp, trials, count)
            except grpc.RpcError as err:
                # only grid may run out, and only with OUT_OF_RANGE
                assert algorithm == "grid" and err.code() == grpc.StatusCode.OUT_OF_RANGE, err.details()
                return
            got = points(reply)
            assert len(got) == count
            for p in got:
                assert assignment_problems(exp, p) == []
            trials += completed(exp, reply, f"r{r}")

    run()


# ---- determinism, pending trials, many experiments ----


@pytest.mark.parametrize("algorithm", BUILTIN)
def test_same_request_and_random_state_gives_the_same_answer(stub, algorithm):
    settings_ = {"random_state": "42"}
    exp_a = b.experiment(_unique("det"), algorithm, space_for(algorithm), settings=settings_)
    history = b.completed_history(exp_a, 25, seed=1)
    exp_b = api_pb2.Experiment()
    exp_b.CopyFrom(exp_a)
    exp_b.name = _unique("det")  # a second experiment = a fresh algorithm instance
    first = points(get(stub, exp_a, history, 3))
    second = points(get(stub, exp_b, history, 3))
    assert first == second


@pytest.mark.parametrize("algorithm", BUILTIN)
def test_pending_trials_are_not_proposed_again(stub, algorithm):
    exp = b.experiment(_unique("pend"), algorithm, space_for(algorithm), settings={"random_state": "5"})
    history = b.completed_history(exp, 12, seed=2)
    first = points(get(stub, exp, history, 4))
    pending = [b.trial(f"{exp.name}-p{i}", p, condition=Condition.RUNNING if i % 2 else Condition.CREATED)
               for i, p in enumerate(first)]
    trials = history + pending
    second = points(get(stub, exp, trials, 6))
    space_keys = {tuple(sorted(b.assignment(t.spec.parameter_assignments).items())) for t in trials}
    proposed = [tuple(sorted(p.items())) for p in second]
    assert len(set(proposed)) == len(proposed)
    assert not space_keys & set(proposed)


@pytest.mark.parametrize("algorithm", BUILTIN)
def test_many_experiments_concurrently_without_cross_talk(stub, algorithm):
    errors: list[str] = []

    def drive(i: int) -> None:
        params = space_for(algorithm)
        for p in params:
            p.name = f"{p.name}_{i}"  # each experiment has its own parameter names
        exp = b.experiment(f"{_unique('multi')}-{i}", algorithm, params, maximize=bool(i % 2))
        trials: list[api_pb2.Trial] = []
        for r in range(4):
            reply = get(stub, exp, trials, 2)
            for p in points(reply):
                problems = assignment_problems(exp, p)
                if problems:
                    errors.append(f"{exp.name}: {problems}")
            trials += completed(exp, reply, f"r{r}")

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_same_name_with_a_new_spec_starts_over(stub):
    name = _unique("respec")
    exp1 = b.experiment(name, "tpe", [b.parameter("a", "double", min="0", max="1"),
                                      b.parameter("b", "int", min="0", max="3")])
    get(stub, exp1, b.completed_history(exp1, 5), 1)
    exp2 = b.experiment(name, "tpe", [b.parameter("z", "categorical", values=["u", "v"]),
                                      b.parameter("y", "int", min="10", max="12")])
    for p in points(get(stub, exp2, [], 2)):
        assert assignment_problems(exp2, p) == []


# ---- grid coverage and exhaustion ----


def test_grid_covers_the_grid_without_repeats_then_out_of_range(stub):
    exp = b.experiment(_unique("gridall"), "grid", [b.parameter("n", "int", min="1", max="3"),
                                                    b.parameter("c", "discrete", values=["1", "2"])])
    trials: list[api_pb2.Trial] = []
    seen = []
    for r in range(3):
        reply = get(stub, exp, trials, 2)
        seen += points(reply)
        # a mix of statuses: every one of them occupies its grid point
        trials += [b.trial(f"t{r}{i}", p, condition=[Condition.SUCCEEDED, Condition.FAILED][i], value=1.0)
                   for i, p in enumerate(points(reply))]
    assert sorted((p["n"], p["c"]) for p in seen) == [(n, c) for n in "123" for c in "12"]
    with pytest.raises(grpc.RpcError) as err:
        get(stub, exp, trials, 1)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "exhausted" in err.value.details()


def test_grid_asking_more_than_is_left_is_out_of_range(stub):
    exp = b.experiment(_unique("gridmore"), "grid", [b.parameter("c", "categorical", values=["a", "b", "c"])])
    with pytest.raises(grpc.RpcError) as err:
        get(stub, exp, [], 4)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE


def test_grid_reoffers_a_point_whose_reply_was_lost(stub):
    exp = b.experiment(_unique("gridlost"), "grid", [b.parameter("c", "categorical", values=["a", "b"])])
    assert points(get(stub, exp, [], 1)) == [{"c": "a"}]
    # the controller never created trial "a"; later requests must still cover the whole grid
    assert points(get(stub, exp, [], 1)) == [{"c": "b"}]
    assert points(get(stub, exp, [b.trial("tb", {"c": "b"}, condition=Condition.RUNNING)], 1)) == [{"c": "a"}]


# ---- the servicer guards the contract ----


class _Broken(Algorithm):
    name = "broken"
    mode = "count"

    def validate(self, experiment):
        return []

    def suggest(self, experiment, trials, count):
        if self.mode == "count":
            return SuggestResult([{"x": "0.5"}] * (count + 1))
        if self.mode == "range":
            return SuggestResult([{"x": "7.0"}] * count)
        if self.mode == "format":
            return SuggestResult([{"x": "0.5", "n": "2.0"}] * count)
        raise RuntimeError("boom")


@pytest.mark.parametrize("mode, fragment", [("count", "returned 3 assignments, 2 requested"),
                                            ("range", "outside"), ("format", "n='2.0' is not an integer"),
                                            ("crash", "boom")])
def test_a_broken_algorithm_answers_internal_and_nothing_is_sent(mode, fragment):
    cls = type(f"Broken_{mode}", (_Broken,), {"mode": mode})
    with in_process(SuggestionServicer(factory=lambda name: cls if name == "broken" else None)) as (_, stub_, _s):
        exp = b.experiment("e", "broken", [b.parameter("x", "double", min="0", max="1"),
                                           b.parameter("n", "int", min="0", max="3")])
        if mode == "count":
            exp.spec.parameter_specs.parameters.pop()
        with pytest.raises(grpc.RpcError) as err:
            get(stub_, exp, [], 2)
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert fragment in err.value.details()


def test_a_single_algorithm_server_refuses_other_names():
    with in_process(SuggestionServicer(["random"])) as (_, stub_, _s):
        get(stub_, b.experiment("ok", "random", b.mixed_space()))
        with pytest.raises(grpc.RpcError) as err:
            get(stub_, b.experiment("no", "tpe", b.mixed_space()))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
