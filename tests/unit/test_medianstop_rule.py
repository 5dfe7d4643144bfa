"""medianstop's pure logic: settings, per-trial early value, the median rule."""

from __future__ import annotations

from services.suggestion.earlystopping import medianstop
from sextant.api import api_pb2


def _spec(**settings):
    spec = api_pb2.EarlyStoppingSpec(algorithm_name="medianstop")
    for k, v in settings.items():
        spec.algorithm_settings.add(name=k, value=str(v))
    return spec


def test_defaults_and_parsing():
    assert medianstop.parse_settings(_spec()) == medianstop.Settings(3, 4)
    assert medianstop.parse_settings(_spec(min_trials_required=5, start_step=1)) == medianstop.Settings(5, 1)


def test_the_first_problem_in_request_order_is_the_answer():
    """As Katib's service answers: one message, for the first bad setting of the request."""
    assert medianstop.validation_errors(_spec(min_trials_required=-1, start_step=0, foo=1)) == [
        "min_trials_required must be greater than zero (>0)"]
    assert medianstop.validation_errors(_spec(foo=1, start_step=0)) == ["unknown setting foo for algorithm medianstop"]
    assert medianstop.validation_errors(_spec(start_step="x" * 100))[0].startswith("failed to validate start_step(")
    assert len(medianstop.validation_errors(_spec(start_step="x" * 1000))[0]) < 300


def test_early_value_is_the_mean_of_the_first_numeric_values():
    assert medianstop.early_value(["1", "unavailable", "3", "100"], 2) == 2.0
    assert medianstop.early_value(["5"], 4) == 5.0
    assert medianstop.early_value(["nan", "x"], 4) is None


def test_rule_uses_the_median_not_the_mean():
    objective = api_pb2.ObjectiveSpec(type=api_pb2.MAXIMIZE, objective_metric_name="acc")
    rule = medianstop.rule(objective, [0.1, 0.2, 0.9], medianstop.Settings(3, 2))
    assert rule is not None and float(rule.value) == 0.2 and rule.comparison == api_pb2.LESS
    assert medianstop.rule(objective, [0.1, 0.2], medianstop.Settings(3, 2)) is None
    objective.type = api_pb2.MINIMIZE
    assert medianstop.rule(objective, [1, 2, 3, 4], medianstop.Settings(1, 2)).comparison == api_pb2.GREATER
