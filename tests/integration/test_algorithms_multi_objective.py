"""nsga2 and mo-tpe over the Katib wire: the declared extra objectives and their directions steer
the search; trials without every objective value are not learnt from; the setting is checked."""

from __future__ import annotations

import grpc
import pytest

from sextant.api import api_pb2
from sextant.conformance import builders as b

from .suggestion_servers import get, in_process, validate

Condition = api_pb2.TrialStatus.TrialConditionType
# Two objectives of one parameter x in [-10, 10]: f1 = x^2 and f2 = (x - 2)^2. Minimising both,
# the Pareto set is 0 <= x <= 2; maximising both, it is the edges (x = -10 or x = 10).
SPACE = [b.parameter("x", "double", min="-10", max="10"), b.parameter("y", "double", min="0", max="1")]


@pytest.fixture(scope="module")
def stub():
    with in_process() as (_address, stub, _server):
        yield stub


def _experiment(name: str, algorithm: str, direction: str, settings: dict[str, str] | None = None) -> api_pb2.Experiment:
    exp = b.experiment(name, algorithm, SPACE, metric="f1", maximize=direction == "maximize",
                       settings={"random_state": "7", "sextant.io/objectives": f"f2={direction}", **(settings or {})})
    exp.spec.objective.additional_metric_names.append("f2")
    return exp


def _trial(name: str, point: dict[str, str], with_f2: bool = True) -> api_pb2.Trial:
    x = float(point["x"])
    t = b.trial(name, point, metric="f1", value=x * x)
    if with_f2:
        t.status.observation.metrics.add(name="f2", value=str((x - 2) ** 2))
    return t


def _run(stub, exp: api_pb2.Experiment, rounds: int, with_f2: bool = True) -> list[float]:
    trials: list[api_pb2.Trial] = []
    for r in range(rounds):
        for i, pa in enumerate(get(stub, exp, trials, 2).parameter_assignments):
            trials.append(_trial(f"{exp.name}-{r:03d}-{i}", b.assignment(pa), with_f2))
    return [float(b.assignment(t.spec.parameter_assignments)["x"]) for t in trials]


@pytest.mark.parametrize("algorithm, settings", [("nsga2", {"population_size": "8"}), ("mo-tpe", {})])
def test_the_declared_directions_steer_the_search(stub, algorithm, settings):
    # 60 trials; the last 30 show where the sampler is heading. A random search puts 15 % of its
    # points within 0.5 of [0, 2] and 20 % within 2 of the edges (4.5 and 6 of 30).
    low = _run(stub, _experiment(f"mo-min-{algorithm}", algorithm, "minimize", settings), 30)[-30:]
    high = _run(stub, _experiment(f"mo-max-{algorithm}", algorithm, "maximize", settings), 30)[-30:]
    assert sum(-0.5 <= x <= 2.5 for x in low) >= 10, low
    assert sum(abs(x) >= 8 for x in high) >= 10, high


def test_trials_without_every_objective_are_not_learnt_from(stub):
    # Without f2 no trial completes: mo-tpe stays in its random start-up, spread over the range.
    xs = _run(stub, _experiment("mo-missing", "mo-tpe", "minimize"), 20, with_f2=False)[-10:]
    assert sum(-0.5 <= x <= 2.5 for x in xs) < 5, xs
    assert max(xs) - min(xs) > 8


def test_validation_checks_the_objectives_against_the_collected_metrics(stub):
    exp = _experiment("mo-bad", "nsga2", "minimize")
    validate(stub, exp)  # f2 is collected: valid
    del exp.spec.objective.additional_metric_names[:]
    for call in (lambda: validate(stub, exp), lambda: get(stub, exp)):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "'f2' must be listed in spec.objective.additionalMetricNames" in err.value.details()


@pytest.mark.parametrize("algorithm, bad, message", [
    ("nsga2", {"population_size": "1"}, "population_size should be at least 2"),
    ("nsga2", {"crossover_prob": "1.5"}, "crossover_prob should be between 0 and 1"),
    ("nsga2", {"sextant.io/objectives": "f2=smaller"}, "sextant.io/objectives: entry 1 (f2): direction must be"),
    ("mo-tpe", {"n_ei_candidates": "0"}, "n_ei_candidates should be greater than zero"),
    ("mo-tpe", {"gamma": "0.1"}, "unknown setting gamma for algorithm mo-tpe"),
])
def test_bad_settings_are_invalid_argument_naming_the_setting(stub, algorithm, bad, message):
    exp = _experiment(f"mo-bad-{algorithm}-{len(str(bad))}", algorithm, "minimize", bad)
    for call in (lambda: validate(stub, exp), lambda: get(stub, exp)):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in err.value.details()
