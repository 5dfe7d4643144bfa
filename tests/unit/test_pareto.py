"""Pareto-optimal trials: the dominance filter, directions, strategies, and the status field."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.experiment_controller.trial_summary import apply_summary, summarize
from sextant.katib.pareto import front, pareto_trials
from sextant.resources.models import Experiment, Trial, to_doc


def _brute_force(rows: list[tuple[int, ...]]) -> set[int]:
    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b
    return {i for i, r in enumerate(rows) if not any(dominates(o, r) for o in rows)}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), max_size=40))
def test_front_is_exactly_the_non_dominated_rows(rows):
    # small integers: many ties and duplicates
    assert set(front(rows)) == _brute_force(rows)


def _experiment(annotation: str | None = "latency=minimize") -> Experiment:
    return Experiment.model_validate({
        "metadata": {"name": "e", "namespace": "ns",
                     "annotations": {"sextant.io/objectives": annotation} if annotation else {}},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "accuracy",
                               "additionalMetricNames": ["latency"],
                               "metricStrategies": [{"name": "accuracy", "value": "max"},
                                                    {"name": "latency", "value": "latest"}]},
                 "algorithm": {"algorithmName": "random"}, "parameters": []}})


def _trial(name: str, accuracy: str | None, latency: str | None, *, accuracy_latest: str = "0.1") -> Trial:
    metrics = []
    if accuracy is not None:
        metrics.append({"name": "accuracy", "min": "0", "max": accuracy, "latest": accuracy_latest})
    if latency is not None:
        metrics.append({"name": "latency", "min": "0", "max": "999", "latest": latency})
    return Trial.model_validate({"metadata": {"name": name, "namespace": "ns"},
                                 "spec": {"parameterAssignments": [{"name": "x", "value": name}]},
                                 "status": {"observation": {"metrics": metrics}}})


def test_directions_strategies_and_order():
    trials = [
        _trial("slow-best", "0.95", "9"),
        _trial("fast-worst", "0.70", "1"),
        _trial("middle", "0.90", "4"),
        _trial("dominated", "0.85", "5"),   # middle is more accurate and faster
        _trial("twin", "0.90", "4"),        # equal to middle: both stay
        _trial("no-latency", "0.99", None),  # lacks an objective: left out
        _trial("garbage", "0.99", "fast"),
    ]
    names = [t.metadata.name for t in pareto_trials(_experiment(), trials)]
    # accuracy is read with its max strategy (latest is 0.1 everywhere); best accuracy first
    assert names == ["slow-best", "middle", "twin", "fast-worst"]
    flipped = _experiment("latency=maximize")
    assert [t.metadata.name for t in pareto_trials(flipped, trials)] == ["slow-best"]


def test_single_objective_experiments_have_no_front():
    assert pareto_trials(_experiment(None), [_trial("a", "0.9", "1")]) is None


def test_status_keeps_the_optimal_trial_and_adds_the_front():
    exp = _experiment()
    trials = [_trial("a", "0.95", "9"), _trial("b", "0.70", "1"), _trial("c", "0.60", "2")]
    apply_summary(exp, summarize(exp, trials))
    status = to_doc(exp)["status"]
    assert status["currentOptimalTrial"]["bestTrialName"] == "a"
    assert [p["bestTrialName"] for p in status["paretoOptimalTrials"]] == ["a", "b"]
    assert status["paretoOptimalTrials"][1]["parameterAssignments"] == [{"name": "x", "value": "b"}]
    single = _experiment(None)
    apply_summary(single, summarize(single, trials))
    assert "paretoOptimalTrials" not in to_doc(single)["status"]
