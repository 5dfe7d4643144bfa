"""The SDK's pure parts: search helpers, the experiment tune builds, the trial runner, and the
warnings about images and resources the stack will not use."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest

from sextant.image_use import stack_unused_image_reason
from sextant.resources.admission import admit_experiment
from sextant.sdk import (
    SextantClient,
    build_tune_experiment,
    convert,
    search,
    tune,
    unapplied_resources_reason,
)
from sextant.stack import StackPaths
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
    assert "image" not in container  # runs here, in this Python, whatever runtime the stack uses
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


def test_base_image_runs_a_self_contained_program_in_that_image(tmp_path):
    def scaled(parameters):
        import math  # a program in an image carries only the function: imports inside

        return {"score": math.floor(parameters["x"] * parameters["k"] * 10) / 10}

    doc = build_tune_experiment(scaled, {"x": search.double(0, 1), "k": 3}, data_dir=tmp_path,
                                objective_metric_name="score", name="img", base_image="python:3.11-slim",
                                resources_per_trial={"cpu": "2", "memory": "1Gi", "gpu": 1})
    admit_experiment(doc)
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "python:3.11-slim"
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"},
                                      "limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"}}
    assert not (tmp_path / "tune").exists()  # nothing on this machine's disk: the image has it all
    python, unbuffered, flag, program, argument = container["command"]
    assert (python, flag, argument) == ("python3", "-c", "x=${trialParameters.x}")  # every image's name for it
    # the program needs no Sextant: run it with sextant unimportable
    proc = subprocess.run([sys.executable, "-I", "-c", program, "x=0.5"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "score=1.5" in proc.stdout


def test_katib_options_are_checked_with_clear_messages(tmp_path):
    build = functools.partial(build_tune_experiment, objective, {"x": search.double(0, 1)}, data_dir=tmp_path,
                              objective_metric_name="score")
    with pytest.raises(ValueError, match="not installed in this Python environment.*no-such-package-xyz"):
        build(name="p1", packages_to_install=["pyyaml", "no-such-package-xyz"])
    build(name="p2", packages_to_install=["pyyaml>=5"])  # installed here: accepted
    build(name="p3", packages_to_install=["no-such-package-xyz"], base_image="python:3.11")  # installed in the image
    with pytest.raises(ValueError, match="pip_index_url"):
        build(name="p4", pip_index_url="https://example.invalid/simple")
    with pytest.raises(ValueError, match=r"resources_per_trial\['cpu'\]"):
        build(name="p5", resources_per_trial={"cpu": ["2"]})
    assert build(name="p6", resources_per_trial={"limits": {"memory": "2Gi"}})["spec"]["trialTemplate"][
        "trialSpec"]["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"memory": "2Gi"}}
    with pytest.raises(ValueError, match="StdOut"):
        build(name="p7", base_image="python:3.11", metrics_collector_config={"kind": "Push"})
    with pytest.raises(ValueError, match="LLM fine-tuning"):
        tune(objective, {"x": search.double(0, 1)}, objective_metric_name="score", trainer_parameters={})
    with pytest.raises(TypeError, match="no_such_option"):
        tune(objective, {"x": search.double(0, 1)}, objective_metric_name="score", no_such_option=1)


def _stack(data_dir, runtime, docker_host=None):
    paths = StackPaths(data_dir)
    paths.state.parent.mkdir(parents=True, exist_ok=True)
    paths.state.write_text(json.dumps({"runtime": runtime, "docker_host": docker_host}))
    return paths


def test_resources_per_trial_is_said_to_be_unapplied_where_trials_are_not_containers(tmp_path):
    def not_asked():
        raise AssertionError("the stack is asked only when base_image is given")

    assert unapplied_resources_reason({"cpu": "2"}, None, not_asked) == (
        "without base_image, trials run as local processes on this machine, which Sextant does not limit")
    local = _stack(tmp_path / "local", "local")
    assert unapplied_resources_reason({"cpu": "2"}, "python:3.11", lambda: stack_unused_image_reason(local)) \
        .startswith("this stack runs trials as local processes on this machine, without the image")
    no_engine = _stack(tmp_path / "docker", "docker", docker_host=f"unix://{tmp_path}/no-engine.sock")
    assert "no Docker engine answers" in unapplied_resources_reason(
        {"memory": "1Gi"}, "python:3.11", lambda: stack_unused_image_reason(no_engine))
    assert unapplied_resources_reason({"cpu": "2"}, "python:3.11", lambda: "") == ""  # the image runs: applied
    assert unapplied_resources_reason(None, None, not_asked) == ""
    assert unapplied_resources_reason({}, None, not_asked) == ""


def test_only_a_client_of_this_machines_stack_asks_it_about_images(tmp_path):
    _stack(tmp_path, "local")
    remote = SextantClient(address="127.0.0.1:1", data_dir=tmp_path)  # the channel connects lazily
    try:
        assert remote.unused_image_reason() == ""  # a remote server decides for itself
    finally:
        remote.close()
