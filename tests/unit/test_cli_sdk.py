"""The SDK's pure parts: search helpers, the experiment tune builds, and the trial runner."""

from __future__ import annotations

import json

import pytest

from sextant.resources.admission import admit_experiment
from sextant.sdk import build_tune_experiment, convert, search
from sextant.tune_runner import call, load_function
from sextant.tune_runner import main as run_trial


def objective(parameters):
    return parameters["x"] * 2


def test_search_helpers_build_katib_parameter_specs():
    assert search.double(0.1, 0.5, step=0.1) == {"parameterType": "double",
                                                 "feasibleSpace": {"min": "0.1", "max": "0.5", "step": "0.1"}}
    assert search.int(1, 4)["feasibleSpace"] == {"min": "1", "max": "4"}
    assert search.categorical(["a", 3]) == {"parameterType": "categorical", "feasibleSpace": {"list": ["a", "3"]}}


def test_tune_experiment_is_admissible(tmp_path):
    doc = build_tune_experiment(objective, {"x": search.double(0, 1), "fixed": 7}, data_dir=tmp_path,
                                objective_metric_name="score", name="t1", max_trial_count=3)
    exp = admit_experiment(doc)
    assert [p.name for p in exp.spec.parameters] == ["x"]
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["python", "-m", "sextant.tune_runner"]
    assert container["command"][-1] == "x=${trialParameters.x}"
    spec = json.loads((tmp_path / "tune" / "default" / "t1" / "trial.json").read_text())
    assert spec["module"] == __name__ and spec["fixed"] == {"fixed": 7}
    with pytest.raises(ValueError):
        build_tune_experiment(objective, {"fixed": 1}, data_dir=tmp_path, objective_metric_name="s")


def test_local_function_is_shipped_as_source_and_runs(tmp_path, capsys):
    def inner(parameters):
        print(f"score={parameters['x'] + parameters['n']}")

    build_tune_experiment(inner, {"x": search.double(0, 1), "n": search.int(1, 3)}, data_dir=tmp_path,
                          objective_metric_name="score", name="t2")
    spec_path = tmp_path / "tune" / "default" / "t2" / "trial.json"
    spec = json.loads(spec_path.read_text())
    assert spec["function"] == "inner" and spec["source"].endswith("objective.py")
    assert run_trial(["--spec", str(spec_path), "x=0.25", "n=2"]) == 0
    assert "score=2.25" in capsys.readouterr().out
    assert load_function(spec).__name__ == "inner"


def test_returned_values_are_printed_for_the_stdout_collector(tmp_path, capsys):
    build_tune_experiment(objective, {"x": search.double(0, 1)}, data_dir=tmp_path,
                          objective_metric_name="score", name="t3")
    run_trial(["--spec", str(tmp_path / "tune" / "default" / "t3" / "trial.json"), "x=0.5"])
    assert "score=1.0" in capsys.readouterr().out


def test_call_conventions_and_conversion():
    assert call(lambda parameters: parameters["a"], {"a": 1}) == 1
    assert call(lambda a, b: a + b, {"a": 1, "b": 2}) == 3
    assert convert("3", "int") == 3 and convert("0.5", "double") == 0.5
    assert convert("adam", "categorical") == "adam" and convert("2", "discrete") == 2
