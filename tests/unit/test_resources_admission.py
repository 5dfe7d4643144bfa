"""Admission details: v1alpha3 conversion, defaults, update rules, the registry in validation."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from sextant.algorithm_registry import Registry
from sextant.resources.admission import admit_experiment, format_path, validate_file
from sextant.resources.defaults import apply_defaults
from sextant.resources.models import Condition, Experiment, to_doc
from sextant.resources.v1alpha3 import (
    CONVERSION_NOTES_ANNOTATION,
    ORIGINAL_API_VERSION_ANNOTATION,
    RAW_TEMPLATE_ANNOTATION,
    convert_experiment,
    is_v1alpha3_experiment,
    raw_template,
)
from sextant.store.interface import Invalid

VALID = Path(__file__).resolve().parents[1] / "data" / "experiments" / "valid"


def load(name: str) -> dict:
    return yaml.safe_load((VALID / name).read_text())


def errors_of(doc, **kw) -> list[str]:
    with pytest.raises(Invalid) as err:
        admit_experiment(doc, **kw)
    return err.value.errors


def fields(errors: list[str]) -> set[str]:
    return {e.split(": ", 1)[0] for e in errors}


def test_seed_random_example_converts_without_losing_anything():
    doc = load("v1alpha3-random-example.yaml")
    original = copy.deepcopy(doc)
    exp = admit_experiment(doc)
    assert doc == original  # the input is not modified
    assert exp.api_version == "kubeflow.org/v1beta1"
    assert is_v1alpha3_experiment(exp)
    assert exp.metadata.annotations[ORIGINAL_API_VERSION_ANNOTATION] == "kubeflow.org/v1alpha3"
    assert raw_template(exp) == doc["spec"]["trialTemplate"]["goTemplate"]["rawTemplate"]
    assert exp.metadata.annotations[RAW_TEMPLATE_ANNOTATION] == raw_template(exp)
    assert "{{- range .}}" in raw_template(exp)
    assert [p.name for p in exp.spec.parameters] == ["--lr", "--num-layers", "--optimizer"]
    assert exp.spec.parameters[2].feasible_space.list_ == ["sgd", "adam", "ftrl"]
    assert exp.spec.resume_policy == "LongRunning"
    assert (exp.spec.max_trial_count, exp.spec.max_failed_trial_count, exp.spec.parallel_trial_count) == (12, 3, 3)
    assert exp.spec.objective.goal == 0.99
    assert exp.spec.trial_template.trial_spec is None and exp.spec.trial_template.config_map is None


def test_v1alpha3_conversion_is_pure_and_drops_status():
    doc = load("v1alpha3-random-example.yaml")
    doc["status"] = {"currentOptimalTrial": {"observation": {"metrics": [{"name": "a", "value": 0.5}]}}}
    out = convert_experiment(doc)
    assert "status" not in out and "status" in doc
    assert out["spec"]["trialTemplate"]["trialParameters"] == []


def test_v1alpha3_early_stopping_is_dropped_with_a_note():
    doc = load("v1alpha3-random-example.yaml")
    doc["spec"]["algorithm"]["earlyStopping"] = {"earlyStoppingAlgorithmName": "median"}
    exp = admit_experiment(doc)
    assert exp.spec.early_stopping is None
    assert "dropped" in exp.metadata.annotations[CONVERSION_NOTES_ANNOTATION]


def test_v1alpha3_round_trips_through_the_stored_shape():
    """What the store keeps (to_doc) re-admits to the same experiment."""
    exp = admit_experiment(load("v1alpha3-random-example.yaml"))
    again = admit_experiment(to_doc(exp))
    assert to_doc(again) == to_doc(exp)
    assert raw_template(again) == raw_template(exp)


def test_defaults_follow_katib_for_additional_metrics():
    doc = load("random-basic.yaml")
    doc["spec"]["objective"].update(type="minimize", additionalMetricNames=["a", "b"])
    exp = admit_experiment(doc)
    assert [(s.name, s.value.value) for s in exp.spec.objective.metric_strategies] == [
        ("Validation-accuracy", "min"), ("a", "min"), ("b", "min")]


def test_defaults_are_idempotent_on_the_model():
    exp = admit_experiment(load("random-basic.yaml"))
    before = to_doc(exp)
    assert to_doc(apply_defaults(exp)) == before


def test_all_errors_are_reported_together():
    doc = load("random-basic.yaml")
    doc["metadata"]["name"] = "Bad"
    doc["spec"]["maxTrialCount"] = 0
    doc["spec"]["parameters"][0]["feasibleSpace"] = {"min": "1", "max": "0"}
    doc["spec"]["parameters"][1]["parameterType"] = "float"
    doc["spec"]["objective"]["type"] = "best"
    errors = errors_of(doc)
    assert {"metadata.name", "spec.maxTrialCount", "spec.parameters[0].feasibleSpace.min",
            "spec.parameters[1].parameterType", "spec.objective.type"} <= fields(errors)
    assert "spec.maxTrialCount: must be greater than 0" in errors


def test_name_regex_is_anchored():
    doc = load("random-basic.yaml")
    for bad in ("a_b", "ab-", "a.b", "aB"):
        doc["metadata"]["name"] = bad
        assert "metadata.name" in fields(errors_of(doc)), bad
    doc["metadata"]["name"] = "a" * 40
    admit_experiment(doc)


def test_registry_decides_which_algorithms_exist(tmp_path):
    registry = Registry.from_dict({"suggestions": [{"algorithmName": "my-algo", "command": ["x"]}]})
    doc = load("random-basic.yaml")
    assert "spec.algorithm.algorithmName" in fields(errors_of(doc, registry=registry))
    doc["spec"]["algorithm"]["algorithmName"] = "my-algo"
    assert admit_experiment(doc, registry=registry).spec.algorithm.algorithm_name == "my-algo"
    doc["spec"]["earlyStopping"] = {"algorithmName": "medianstop"}
    assert "spec.earlyStopping.algorithmName" in fields(errors_of(doc, registry=registry))


def stored(doc: dict, *, trials: int = 0, condition: tuple[str, str] | None = None) -> Experiment:
    exp = admit_experiment(doc)
    exp.status.trials = trials
    if condition:
        exp.status.conditions.append(Condition(type=condition[0], status="True", reason=condition[1]))
    return exp


def test_update_only_counts_are_editable():
    doc = load("random-basic.yaml")
    old = stored(doc, trials=4)
    changed = copy.deepcopy(doc)
    changed["spec"]["maxTrialCount"] = 20
    changed["spec"]["parallelTrialCount"] = 5
    assert admit_experiment(changed, old=old).spec.max_trial_count == 20
    changed["spec"]["algorithm"]["algorithmName"] = "tpe"
    errors = errors_of(changed, old=old)
    assert any(e.startswith("spec: only spec.parallelTrialCount") and "spec.algorithm" in e for e in errors)


def test_update_max_trial_count_must_exceed_trials():
    doc = load("random-basic.yaml")
    old = stored(doc, trials=10)
    changed = copy.deepcopy(doc)
    changed["spec"]["maxTrialCount"] = 10
    assert fields(errors_of(changed, old=old)) == {"spec.maxTrialCount"}
    unchanged = copy.deepcopy(doc)
    admit_experiment(unchanged, old=old)  # no spec change: no update rule applies


def test_update_of_completed_experiment_needs_restartable_state():
    doc = load("random-basic.yaml")  # resumePolicy Never
    old = stored(doc, trials=12, condition=("Succeeded", "ExperimentMaxTrialsReached"))
    changed = copy.deepcopy(doc)
    changed["spec"]["maxTrialCount"] = 20
    assert "spec.resumePolicy" in fields(errors_of(changed, old=old))
    long_running = copy.deepcopy(doc)
    long_running["spec"]["resumePolicy"] = "LongRunning"
    old = stored(long_running, trials=12, condition=("Succeeded", "ExperimentMaxTrialsReached"))
    long_running["spec"]["maxTrialCount"] = 20
    assert admit_experiment(long_running, old=old).spec.max_trial_count == 20
    goal_reached = copy.deepcopy(long_running)
    goal_reached["spec"]["maxTrialCount"] = 12
    old = stored(goal_reached, trials=5, condition=("Succeeded", "ExperimentGoalReached"))
    assert "spec.resumePolicy" in fields(errors_of(long_running, old=old))


def test_validate_file_handles_streams_and_unreadable_paths(tmp_path):
    good = (VALID / "random-basic.yaml").read_text()
    path = tmp_path / "two.yaml"
    path.write_text(good + "---\n" + good.replace("name: random-basic", "name: Bad"))
    first, second = validate_file(path)
    assert isinstance(first, Experiment) and isinstance(second, Invalid)
    (missing,) = validate_file(tmp_path / "nope.yaml")
    assert isinstance(missing, Invalid) and "cannot read" in missing.errors[0]


def test_format_path():
    assert format_path(("spec", "parameters", 0, "feasibleSpace", "min")) == "spec.parameters[0].feasibleSpace.min"
    assert format_path(()) == "document"


def test_prometheus_port_may_be_a_digit_string():
    doc = load("random-basic.yaml")
    doc["spec"]["metricsCollectorSpec"] = {"collector": {"kind": "PrometheusMetric"},
                                           "source": {"httpGet": {"port": "9090", "path": "/m"}}}
    admit_experiment(doc)
    doc["spec"]["metricsCollectorSpec"]["source"]["httpGet"]["port"] = "http"
    assert fields(errors_of(doc)) == {"spec.metricsCollectorSpec.source.httpGet.port"}


def test_registry_may_be_given_as_a_path(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("suggestions:\n- algorithmName: only-this\n  command: [x]\n")
    doc = load("random-basic.yaml")
    assert "spec.algorithm.algorithmName" in fields(errors_of(doc, registry=str(path)))
