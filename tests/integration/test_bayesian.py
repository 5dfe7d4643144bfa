"""bayesianoptimization over real gRPC on loopback: Katib's validation messages, feasible and
non-repeating values with every estimator, determinism, restart equivalence, pending trials,
exhaustion of a small discrete space, and the conformance kit. Budgets are tiny on purpose."""

from __future__ import annotations

import uuid

import grpc
import pytest

from sextant.api import api_pb2
from sextant.conformance import Target, run_checks
from sextant.conformance import builders as b
from sextant.conformance.checks import value_problem

from .suggestion_servers import get, in_process, validate

ALGO = "bayesianoptimization"
Condition = api_pb2.TrialStatus.TrialConditionType


@pytest.fixture(scope="module")
def server():
    with in_process() as (address, stub, _srv):
        yield address, stub


def _exp(settings=None, params=None, *, maximize=False):
    return b.experiment(f"bo-{uuid.uuid4().hex[:8]}", ALGO, params or b.mixed_space(),
                        settings=settings or {}, maximize=maximize)


def _points(reply):
    return [b.assignment(pa) for pa in reply.parameter_assignments]


def _feasible(exp, point):
    specs = {p.name: p for p in exp.spec.parameter_specs.parameters}
    assert set(point) == set(specs)
    problems = [value_problem(specs[k], v) for k, v in point.items()]
    assert [p for p in problems if p] == []


def _key(point):
    return tuple(sorted(point.items()))


def _run(stub, exp, calls, count=1, history=()):
    """Sequential loop: suggest, evaluate with the synthetic objective, append as SUCCEEDED."""
    trials = list(history)
    for _ in range(calls):
        for point in _points(get(stub, exp, trials, count)):
            trials.append(b.trial(f"t{len(trials)}", point, value=b.synthetic_value(point)))
    return trials


# ---- validation ----


def test_valid_settings_are_accepted(server):
    _, stub = server
    validate(stub, _exp({"base_estimator": "RF", "n_initial_points": "0", "acq_func": "LCB",
                         "acq_optimizer": "sampling", "random_state": "7"}))
    validate(stub, _exp({}))


@pytest.mark.parametrize("settings,message", [
    ({"base_estimator": "SVM"}, "base_estimator SVM is not supported in Bayesian optimization"),
    ({"acq_func": "UCB"}, "acq_func UCB is not supported in Bayesian optimization"),
    ({"acq_optimizer": "adam"}, "acq_optimizer adam is not supported in Bayesian optimization"),
    ({"n_initial_points": "-1"}, "n_initial_points should be great or equal than zero"),
    ({"random_state": "-2"}, "random_state should be great or equal than zero"),
    ({"n_initial_points": "ten"}, "failed to validate n_initial_points(ten)"),
    ({"max_depth": "3"}, "unknown setting max_depth for algorithm bayesianoptimization"),
    ({"base_estimator": "RF", "acq_optimizer": "lbfgs"}, "acq_optimizer lbfgs is not supported with base_estimator RF"),
])
def test_invalid_settings_are_rejected_with_katibs_message(server, settings, message):
    _, stub = server
    with pytest.raises(grpc.RpcError) as err:
        validate(stub, _exp(settings))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()
    # GetSuggestions refuses the same experiment the same way
    with pytest.raises(grpc.RpcError) as err:
        get(stub, _exp(settings))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---- suggestions ----


@pytest.mark.parametrize("estimator", ["GP", "RF", "ET", "GBRT"])
def test_every_estimator_gives_feasible_new_points(server, estimator):
    _, stub = server
    exp = _exp({"base_estimator": estimator, "n_initial_points": "3", "random_state": "1"})
    trials = _run(stub, exp, calls=3, count=2)  # 2 random batches, then the model answers
    assert len(trials) == 6
    points = [b.assignment(t.spec.parameter_assignments) for t in trials]
    for p in points:
        _feasible(exp, p)
    assert len({_key(p) for p in points}) == len(points)


def test_all_categorical_space_uses_the_hamming_kernel(server):
    _, stub = server
    params = [b.parameter("a", "categorical", values=["x", "y", "z"]),
              b.parameter("d", "discrete", values=["1", "2", "4", "8"])]
    exp = _exp({"n_initial_points": "2", "random_state": "6"}, params)
    trials = _run(stub, exp, calls=5)
    points = [b.assignment(t.spec.parameter_assignments) for t in trials]
    assert len({_key(p) for p in points}) == 5


def test_per_second_acquisition_learns_from_trial_durations(server):
    _, stub = server
    exp = _exp({"acq_func": "EIps", "n_initial_points": "2", "random_state": "3"})
    history = b.completed_history(exp, 4, seed=5)
    for i, t in enumerate(history):
        t.status.start_time = "2026-01-01T00:00:00Z"
        t.status.completion_time = f"2026-01-01T00:0{i + 1}:00Z"
    reply = get(stub, exp, history, count=2)
    for p in _points(reply):
        _feasible(exp, p)


def test_maximize_moves_towards_larger_values(server):
    """One double, objective = x: maximizing must propose larger x than the best seen so far."""
    _, stub = server
    params = [b.parameter("x", "double", min="0", max="10")]
    exp = _exp({"n_initial_points": "0", "random_state": "0"}, params, maximize=True)
    history = [b.trial(f"h{i}", {"x": str(x)}, value=x) for i, x in enumerate([1.0, 2.0, 3.0, 4.0])]
    (point,) = _points(get(stub, exp, history))
    assert float(point["x"]) > 4.0


def test_same_random_state_same_answer_on_fresh_servers():
    exp = _exp({"n_initial_points": "3", "random_state": "11"})
    history = b.completed_history(exp, 5, seed=2)
    answers = []
    for _ in range(2):
        with in_process() as (_addr, stub, _srv):
            answers.append(_points(get(stub, exp, history, count=2)))
    assert answers[0] == answers[1]


def test_restart_equivalence_fresh_server_continues_validly():
    exp = _exp({"n_initial_points": "2", "random_state": "4"})
    with in_process() as (_addr, stub, _srv):
        trials = _run(stub, exp, calls=4)
    with in_process() as (_addr, stub, _srv):  # "restarted": knows only the request
        points = _points(get(stub, exp, trials, count=3))
    seen = {_key(b.assignment(t.spec.parameter_assignments)) for t in trials}
    for p in points:
        _feasible(exp, p)
        assert _key(p) not in seen
    assert len({_key(p) for p in points}) == 3


def test_pending_trials_are_not_proposed_again(server):
    """A 6-point space: 3 completed + 2 running leave exactly one point to propose, then none."""
    _, stub = server
    params = [b.parameter("n", "int", min="1", max="3"), b.parameter("c", "categorical", values=["a", "b"])]
    exp = _exp({"n_initial_points": "0", "random_state": "9"}, params)
    done = [b.trial(f"d{i}", p, value=float(i)) for i, p in enumerate(
        [{"n": "1", "c": "a"}, {"n": "2", "c": "a"}, {"n": "3", "c": "a"}])]
    running = [b.trial(f"r{i}", p, condition=Condition.RUNNING) for i, p in enumerate(
        [{"n": "1", "c": "b"}, {"n": "2", "c": "b"}])]
    (point,) = _points(get(stub, exp, done + running))
    assert point == {"n": "3", "c": "b"}
    with pytest.raises(grpc.RpcError) as err:
        get(stub, exp, done + running + [b.trial("r9", point, condition=Condition.CREATED)])
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE


def test_points_not_yet_in_the_request_are_not_repeated(server):
    """Two calls with the same request (the controller has not created the first batch's trials
    yet): the second batch must differ from the first."""
    _, stub = server
    exp = _exp({"n_initial_points": "2", "random_state": "5"})
    history = b.completed_history(exp, 4, seed=1)
    first = {_key(p) for p in _points(get(stub, exp, history, count=2))}
    second = {_key(p) for p in _points(get(stub, exp, history, count=2))}
    assert not first & second


def test_parallel_batch_spreads_out_with_constant_liar(server):
    _, stub = server
    params = [b.parameter("x", "double", min="0", max="1"), b.parameter("y", "double", min="0", max="1")]
    exp = _exp({"n_initial_points": "0", "random_state": "2"}, params)
    history = [b.trial(f"h{i}", {"x": str(x), "y": str(y)}, value=(x - 0.3) ** 2 + (y - 0.6) ** 2)
               for i, (x, y) in enumerate([(0.1, 0.1), (0.9, 0.9), (0.5, 0.5), (0.2, 0.8), (0.7, 0.2)])]
    points = _points(get(stub, exp, history, count=4))
    coords = [(float(p["x"]), float(p["y"])) for p in points]
    # constant liar: no two batch points collapse onto the same spot
    for i in range(len(coords)):
        for j in range(i):
            assert abs(coords[i][0] - coords[j][0]) + abs(coords[i][1] - coords[j][1]) > 1e-3


def test_conformance_kit(server):
    address, _ = server
    results = run_checks(Target(address, ALGO, settings={"n_initial_points": "3"}))
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert failed == []


# ---- the GP's fast paths ----


def test_fast_gp_predicts_what_skopts_gp_predicts():
    """Many points: the mean and std of one matrix product equal skopt's einsum loop (to
    rounding); one point with gradients is skopt's own code."""
    import numpy as np
    from skopt.learning import GaussianProcessRegressor
    from skopt.learning.gaussian_process.kernels import ConstantKernel, Matern

    from services.suggestion.algorithms.bayesian import GP_JITTER, FastGP

    rng = np.random.default_rng(5)
    x, y = rng.random((120, 4)), rng.normal(size=120)
    kernel = ConstantKernel(2.0) * Matern(length_scale=np.full(4, 0.4), nu=2.5)
    ours = FastGP(kernel=kernel, normalize_y=True, noise=GP_JITTER, optimizer=None).fit(x, y)
    theirs = GaussianProcessRegressor(kernel=kernel, normalize_y=True, noise=GP_JITTER, optimizer=None).fit(x, y)
    query = np.vstack([rng.random((300, 4)), x[:5]])  # training points too: std near 0
    for got, expected in zip(ours.predict(query, return_std=True), theirs.predict(query, return_std=True),
                             strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)
    one = query[:1]
    for got, expected in zip(ours.predict(one, return_std=True, return_mean_grad=True, return_std_grad=True),
                             theirs.predict(one, return_std=True, return_mean_grad=True, return_std_grad=True),
                             strict=True):
        np.testing.assert_array_equal(got, expected)


def test_many_trials_fit_the_kernel_on_a_subset_and_still_learn():
    """Past FIT_POINTS completed trials the kernel is fitted on a subset and then fixed; the
    proposal still lands in the good region of a bowl (well inside the best decile of trials)."""
    import numpy as np

    from services.suggestion.algorithms import bayesian

    exp = b.experiment("many", "bayesianoptimization",
                       [b.parameter(f"x{i}", "double", min="-1", max="1") for i in range(3)],
                       settings={"random_state": "2"})
    rng = np.random.default_rng(2)
    trials, values = [], []
    for k in range(bayesian.FIT_POINTS + 60):
        point = {f"x{i}": str(rng.uniform(-1, 1)) for i in range(3)}
        values.append(sum(float(v) ** 2 for v in point.values()))
        trials.append(b.trial(f"t{k}", point, value=values[-1]))
    algo = bayesian.BayesianOptimization()
    point = algo.suggest(exp, trials, 1).assignments[0]
    assert sum(float(v) ** 2 for v in point.values()) < np.quantile(values, 0.1)
    assert algo._kernel is not None and algo._kernel_n == len(trials)
