"""Bad algorithm settings get Katib's exact answer, algorithm by algorithm, over real gRPC.

Each row is one request's settings, in request order, and the status and message text the
Katib service for that algorithm answers (hyperopt's for random/tpe, optuna's for grid,
multivariate-tpe and cmaes, scikit-optimize's for bayesianoptimization, Katib's own hyperband;
Goptuna's sobol ignores names it does not know). Katib's services check the settings in order
and answer with the first problem only, so the message must equal Katib's, not just contain it.
ValidateAlgorithmSettings and GetSuggestions answer alike (Sextant validates on both).
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from sextant.api import api_pb2
from sextant.conformance import builders as b

from .suggestion_servers import get, in_process, validate

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_INT = "invalid literal for int() with base 10: '{}'"
NOT_FLOAT = "could not convert string to float: '{}'"

GRID_SPACE = [b.parameter("lr", "double", min="0.01", max="0.05", step="0.01"),  # 5 values
              b.parameter("layers", "int", min="1", max="6"),  # 6 values
              b.parameter("opt", "categorical", values=["sgd", "adam"])]  # 2 values: 60 points
ONE_CONTINUOUS = [b.parameter("x", "double", min="0", max="1"), b.parameter("c", "categorical", values=["a", "b"])]
HYPERBAND_SPACE = [b.parameter("lr", "double", min="0.01", max="0.1"),
                   b.parameter("epochs", "int", min="1", max="9")]

# (algorithm, settings in request order, message); every row answers INVALID_ARGUMENT
ROWS: list[tuple[str, list[tuple[str, str]], str]] = [
    # random: Katib's hyperopt service
    ("random", [("random_state", "-1")], "random_state should be great or equal than zero"),
    ("random", [("random_state", "x")], "failed to validate random_state(x): " + NOT_INT.format("x")),
    ("random", [("seed", "1")], "unknown setting seed for algorithm random"),
    ("random", [("random_state", "2"), ("gamma", "0.5"), ("random_state", "-1")],
     "unknown setting gamma for algorithm random"),
    # tpe: Katib's hyperopt service
    ("tpe", [("gamma", "1")], "gamma should be in the range of (0, 1)"),
    ("tpe", [("gamma", "0")], "gamma should be in the range of (0, 1)"),
    ("tpe", [("gamma", "nan")], "gamma should be in the range of (0, 1)"),
    ("tpe", [("gamma", "quarter")], "failed to validate gamma(quarter): " + NOT_FLOAT.format("quarter")),
    ("tpe", [("prior_weight", "0")], "prior_weight should be great than zero"),
    ("tpe", [("prior_weight", "-2.5")], "prior_weight should be great than zero"),
    ("tpe", [("n_EI_candidates", "0")], "n_EI_candidates should be great than zero"),
    ("tpe", [("n_EI_candidates", "2.5")], "failed to validate n_EI_candidates(2.5): " + NOT_INT.format("2.5")),
    ("tpe", [("random_state", "-5")], "random_state should be great or equal than zero"),
    ("tpe", [("n_startup_trials", "5")], "unknown setting n_startup_trials for algorithm tpe"),
    ("tpe", [("gamma", "0.5"), ("prior_weight", "-1"), ("n_EI_candidates", "0")],
     "prior_weight should be great than zero"),
    # multivariate-tpe: Katib's optuna service (its "greate" spelling)
    ("multivariate-tpe", [("n_startup_trials", "-1")], "n_startup_trials should be greate or equal than zero"),
    ("multivariate-tpe", [("n_ei_candidates", "-3")], "n_ei_candidates should be greate or equal than zero"),
    ("multivariate-tpe", [("random_state", "1.5")], "failed to validate random_state(1.5): " + NOT_INT.format("1.5")),
    ("multivariate-tpe", [("gamma", "0.1")], "unknown setting gamma for algorithm multivariate-tpe"),
    ("multivariate-tpe", [("seed", "1")], "unknown setting seed for algorithm multivariate-tpe"),
    # cmaes: Katib's optuna service
    ("cmaes", [("invalid", "1")], "unknown setting invalid for algorithm cmaes"),
    ("cmaes", [("restart_strategy", "always")], "restart_strategy always is not supported in CMAES optimization"),
    ("cmaes", [("sigma", "-0.1")], "sigma should be greate or equal than zero"),
    ("cmaes", [("sigma", "wide")], "failed to validate sigma(wide): " + NOT_FLOAT.format("wide")),
    ("cmaes", [("random_state", "-1")], "random_state should be greate or equal than zero"),
    ("cmaes", [("sigma", "0.2"), ("popsize", "8"), ("sigma", "-1")], "unknown setting popsize for algorithm cmaes"),
    # grid: Katib's optuna service
    ("grid", [("step", "0.1")], "unknown setting step for algorithm grid"),
    ("grid", [("random_state", "x")], "failed to validate random_state(x): " + NOT_INT.format("x")),
    # (Katib answers a negative random_state with an empty message; Sextant says what is wrong)
    ("grid", [("random_state", "-1")], "random_state should be greate or equal than zero"),
    # bayesianoptimization: Katib's scikit-optimize service
    ("bayesianoptimization", [("base_estimator", "XGB")], "base_estimator XGB is not supported in Bayesian optimization"),
    ("bayesianoptimization", [("n_initial_points", "-1")], "n_initial_points should be great or equal than zero"),
    ("bayesianoptimization", [("n_initial_points", "ten")],
     "failed to validate n_initial_points(ten): " + NOT_INT.format("ten")),
    ("bayesianoptimization", [("acq_func", "UCB")], "acq_func UCB is not supported in Bayesian optimization"),
    ("bayesianoptimization", [("acq_optimizer", "adam")], "acq_optimizer adam is not supported in Bayesian optimization"),
    ("bayesianoptimization", [("random_state", "-2")], "random_state should be great or equal than zero"),
    ("bayesianoptimization", [("kappa", "1.96")], "unknown setting kappa for algorithm bayesianoptimization"),
    ("bayesianoptimization", [("acq_func", "EI"), ("base_estimator", "SVM"), ("kappa", "1")],
     "base_estimator SVM is not supported in Bayesian optimization"),
]

# hyperband: Katib's own service; (settings, parallel trial count, message)
HYPERBAND_ROWS: list[tuple[list[tuple[str, str]], int, str]] = [
    ([("resource_name", "epochs")], 9, "r_l and resource_name must be set."),
    ([("r_l", "9")], 9, "r_l and resource_name must be set."),
    ([("r_l", ""), ("resource_name", "epochs")], 9, "r_l must be a positive float number."),
    ([("r_l", "-1"), ("resource_name", "epochs")], 9, "r_l must be a positive float number."),
    ([("r_l", "nine"), ("resource_name", "epochs")], 9, "r_l must be a positive float number."),
    ([("r_l", "9"), ("resource_name", "epochs"), ("eta", "3")], 3, "parallelTrialCount must be not less than 9."),
    ([("r_l", "27"), ("resource_name", "epochs"), ("eta", "0")], 9, "parallelTrialCount must be not less than 27."),
    ([("r_l", "9"), ("resource_name", "steps")], 9, "value of resource_name setting must be in parameters."),
    # both wrong: Katib answers the parallelism first
    ([("r_l", "9"), ("resource_name", "steps")], 2, "parallelTrialCount must be not less than 9."),
]


# pbt: Katib's own service; every row also carries the other required settings unless noted
PBT_DIR = ("suggestion_trial_dir", "/var/log/katib/checkpoints/")
PBT_ROWS: list[tuple[list[tuple[str, str]], str]] = [
    ([("n_population", "8")], "Required params missing: suggestion_trial_dir, truncation_threshold"),
    ([PBT_DIR, ("n_population", "4"), ("truncation_threshold", "0.2")], "Param(n_population) should be >= 5"),
    ([PBT_DIR, ("n_population", "8"), ("truncation_threshold", "1.5")],
     "Param(truncation_threshold) should be between 0 and 1, inclusive"),
    ([PBT_DIR, ("n_population", "8"), ("truncation_threshold", "0.2"), ("resample_probability", "2")],
     "Param(resample_probability) should be null to perturb at 0.8 or 1.2, or be between 0 and 1, inclusive, "
     "to resample"),
    # both wrong: Katib answers the population first
    ([PBT_DIR, ("n_population", "2"), ("truncation_threshold", "-1")], "Param(n_population) should be >= 5"),
]


@pytest.fixture(scope="module")
def stub():
    with in_process() as (_address, stub, _server):
        yield stub


def _experiment(algorithm: str, settings: list[tuple[str, str]], space=None, **kwargs) -> api_pb2.Experiment:
    if space is None:
        space = GRID_SPACE if algorithm == "grid" else b.mixed_space()
    exp = b.experiment(f"{algorithm}-{uuid.uuid4().hex[:6]}", algorithm, space, **kwargs)
    for name, value in settings:  # in order, duplicates kept
        exp.spec.algorithm.algorithm_settings.add(name=name, value=value)
    return exp


def _assert_rejected(stub, exp, message: str) -> None:
    for call in (lambda: validate(stub, exp), lambda: get(stub, exp)):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert (err.value.code(), err.value.details()) == (INVALID, message)


@pytest.mark.parametrize("algorithm, settings, message", ROWS)
def test_bad_setting_gets_katibs_status_and_message(stub, algorithm, settings, message):
    _assert_rejected(stub, _experiment(algorithm, settings), message)


@pytest.mark.parametrize("settings, parallel, message", HYPERBAND_ROWS)
def test_bad_hyperband_setting_gets_katibs_message(stub, settings, parallel, message):
    _assert_rejected(stub, _experiment("hyperband", settings, HYPERBAND_SPACE, parallel_trial_count=parallel),
                     message)


@pytest.mark.parametrize("settings, message", PBT_ROWS)
def test_bad_pbt_setting_gets_katibs_message(stub, settings, message):
    space = [b.parameter("lr", "double", min="0.01", max="0.1", step="0.01")]
    _assert_rejected(stub, _experiment("pbt", settings, space), message)


@pytest.mark.parametrize("settings", [[], [("random_state", "3")], [("sigma", "0.1"), ("random_state", "1")]])
def test_cmaes_needs_two_continuous_parameters_once_the_settings_are_valid(stub, settings):
    _assert_rejected(stub, _experiment("cmaes", settings, ONE_CONTINUOUS),
                     "cmaes only supports two or more dimensional continuous search space.")


def test_cmaes_reports_a_bad_setting_before_the_space(stub):
    _assert_rejected(stub, _experiment("cmaes", [("restart", "ipop")], ONE_CONTINUOUS),
                     "unknown setting restart for algorithm cmaes")


def test_grid_max_trial_count_above_the_combinations(stub):
    _assert_rejected(stub, _experiment("grid", [], max_trial_count=61),
                     "Max Trial Count: 61 > all possible search combinations: 60")
    validate(stub, _experiment("grid", [], max_trial_count=60))


@pytest.mark.parametrize("algorithm, settings", [
    ("sobol", [("anything", "1"), ("scramble", "no")]),  # Goptuna's sobol ignores what it does not know
    ("hyperband", [("r_l", "9"), ("resource_name", "epochs"), ("extra", "x")]),  # so does Katib's hyperband
    ("cmaes", [("restart_strategy", "None"), ("restart_strategy", "none"), ("sigma", "0")]),
    ("tpe", [("gamma", "0.999"), ("prior_weight", "1e-3"), ("n_EI_candidates", "1"), ("random_state", "0")]),
])
def test_settings_katib_accepts_are_accepted(stub, algorithm, settings):
    exp = _experiment(algorithm, settings, HYPERBAND_SPACE if algorithm == "hyperband" else None,
                      parallel_trial_count=9)
    validate(stub, exp)
    assert len(get(stub, exp, count=1).parameter_assignments) == 1
