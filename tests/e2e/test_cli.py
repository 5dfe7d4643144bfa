"""The CLI end to end against a real local stack: output shape, exit codes, errors."""

from __future__ import annotations

import json

import pytest

from tests.e2e.local_stack import GROUP, local_stack_fixture  # noqa: F401 - the local_stack fixture
from tests.experiments import small_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(GROUP)]

def experiment(name: str, code: str = "print('score=${trialParameters.x}')", max_trials: int = 2,
               parallel: int = 2) -> str:
    return small_experiment(name, ["python", "-c", code], goal=5.0, max_trials=max_trials, parallel=parallel,
                            max_failed=1, parameters=[("x", "double", "0.1", "0.9")])


def test_apply_get_describe_wait_delete(local_stack, tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(experiment("cli-basic"))
    applied = local_stack.sextant("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "experiment.kubeflow.org/cli-basic created"
    again = local_stack.sextant("apply", "-f", str(path))
    assert again.stdout.strip() == "experiment.kubeflow.org/cli-basic unchanged"

    waited = local_stack.sextant("wait", "experiment", "cli-basic", "--for=condition=Succeeded", "--timeout=4m")
    assert waited.returncode == 0, waited.stdout + waited.stderr

    listing = local_stack.sextant("get", "experiments")
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "TRIALS", "SUCCEEDED", "BEST", "AGE"]
    row = next(line.split() for line in lines[1:] if line.startswith("cli-basic "))
    assert row[1] == "Succeeded" and row[2] == "2" and row[3] == "2"
    assert 0.1 <= float(row[4]) <= 0.9

    doc = json.loads(local_stack.sextant("get", "exp", "cli-basic", "-o", "json").stdout)
    assert doc["kind"] == "Experiment" and doc["status"]["trials"] == 2
    best = doc["status"]["currentOptimalTrial"]

    trials = local_stack.sextant("get", "trials", "-e", "cli-basic", "-o", "wide")
    trial_lines = trials.stdout.splitlines()
    assert trial_lines[0].split() == ["NAME", "EXPERIMENT", "STATUS", "OBJECTIVE", "AGE", "PARAMETERS"]
    assert len(trial_lines) == 3 and all(" Succeeded " in line for line in trial_lines[1:])

    suggestions = local_stack.sextant("get", "suggestions", "cli-basic")
    assert suggestions.returncode == 0 and suggestions.stdout.splitlines()[1].startswith("cli-basic ")

    described = local_stack.sextant("describe", "experiment", "cli-basic")
    assert described.returncode == 0
    for fragment in ("Name:        cli-basic", "Status:      Succeeded", "Conditions",
                     f"Optimal trial: {best['bestTrialName']}", "trials 2, succeeded 2", "ExperimentCreated"):
        assert fragment in described.stdout, fragment

    deleted = local_stack.sextant("delete", "experiment", "cli-basic")
    assert deleted.returncode == 0 and '"cli-basic" deleted' in deleted.stdout
    gone = local_stack.sextant("get", "experiment", "cli-basic")
    assert gone.returncode == 1 and "not found" in gone.stderr and "Traceback" not in gone.stderr


def test_wait_exits_1_when_the_experiment_fails(local_stack, tmp_path):
    path = tmp_path / "fail.yaml"
    path.write_text(experiment("cli-fails", code="import sys; sys.exit(3)  # ${trialParameters.x}", max_trials=3))
    assert local_stack.sextant("apply", "-f", str(path)).returncode == 0
    waited = local_stack.sextant("wait", "experiment", "cli-fails", "--timeout=4m")
    assert waited.returncode == 1
    assert "failed" in waited.stderr and "Traceback" not in waited.stderr
    local_stack.sextant("delete", "experiment", "cli-fails")


def test_wait_times_out_with_exit_1(local_stack, tmp_path):
    path = tmp_path / "slow.yaml"
    path.write_text(experiment("cli-slow", code="import time; time.sleep(60)  # ${trialParameters.x}", max_trials=2))
    assert local_stack.sextant("apply", "-f", str(path)).returncode == 0
    waited = local_stack.sextant("wait", "experiment", "cli-slow", "--timeout=1s")
    assert waited.returncode == 1 and "timed out" in waited.stderr
    assert local_stack.sextant("delete", "experiment", "cli-slow").returncode == 0


def test_bad_files_and_names_exit_2_or_1(local_stack, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(experiment("cli-bad", max_trials=-1))
    result = local_stack.sextant("apply", "-f", str(bad))
    assert result.returncode == 2 and "spec.maxTrialCount" in result.stderr
    assert local_stack.sextant("apply", "-f", str(tmp_path / "missing.yaml")).returncode == 2
    missing = local_stack.sextant("describe", "experiment", "no-such-experiment")
    assert missing.returncode == 1 and "not found" in missing.stderr
    assert local_stack.sextant("get", "experiments", "-n", "empty-ns").returncode == 0
    assert local_stack.sextant("logs", "no-such-trial").returncode == 1


def test_apply_from_stdin_with_two_documents(local_stack):
    text = experiment("cli-stdin-a", max_trials=1, parallel=1) + "---\n" + experiment("cli-stdin-b", max_trials=1,
                                                                                      parallel=1)
    result = local_stack.sextant("apply", "-f", "-", input=text)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["experiment.kubeflow.org/cli-stdin-a created",
                                          "experiment.kubeflow.org/cli-stdin-b created"]
    for name in ("cli-stdin-a", "cli-stdin-b"):
        assert local_stack.sextant("delete", "experiment", name).returncode == 0


def test_run_follows_to_the_end_and_prints_the_optimal_trial(local_stack, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(experiment("cli-run", max_trials=3))
    result = local_stack.sextant("run", "-f", str(path), "--timeout", "4m")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "experiment.kubeflow.org/cli-run created" in out
    assert "3/3 trials finished" in out and "experiment cli-run succeeded" in out
    assert "optimal trial: cli-run-" in out and "sextant describe experiment cli-run" in out
    # running a finished experiment again shows its result instead of failing
    again = local_stack.sextant("run", "-f", str(path))
    assert again.returncode == 0 and "already exists and has finished" in again.stdout
    # with the stack running, the server admits what run sends: a bad file is still bad input
    bad = tmp_path / "bad.yaml"
    bad.write_text(experiment("cli-run-bad", max_trials=-1))
    refused = local_stack.sextant("run", "-f", str(bad))
    assert refused.returncode == 2 and f"{bad}" in refused.stderr and "maxTrialCount" in refused.stderr
    trial = json.loads(local_stack.sextant("get", "trials", "-e", "cli-run", "-o", "json").stdout)["items"][0]
    local_stack.sextant("delete", "experiment", "cli-run")
    assert trial["metadata"]["labels"]["katib.kubeflow.org/experiment"] == "cli-run"


def test_run_exits_1_when_the_experiment_fails(local_stack, tmp_path):
    path = tmp_path / "run-fail.yaml"
    path.write_text(experiment("cli-run-fail", code="raise SystemExit(1)  # ${trialParameters.x}", max_trials=3))
    result = local_stack.sextant("run", "-f", str(path), "--timeout", "4m")
    assert result.returncode == 1 and "experiment cli-run-fail failed" in result.stdout
    local_stack.sextant("delete", "experiment", "cli-run-fail")
