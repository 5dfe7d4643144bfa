"""`sextant logs TRIAL` after the trial has ended and its job directory was removed (retainRun
false): the output log is kept in <data_dir>/logs/trials/<ns>/<trial>.log until the trial is
deleted."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.local_stack import GROUP, local_stack_fixture  # noqa: F401 - the local_stack fixture
from tests.experiments import small_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(GROUP)]

EXPERIMENT = small_experiment("kept-logs", [
    "python", "-c", "import sys; print('hello from x=' + sys.argv[1]); print('score=' + sys.argv[1])",
    "${trialParameters.x}"])


def test_logs_of_a_finished_trial_outlive_its_job_directory(local_stack):
    run = local_stack.sextant("run", "-f", "-", "--timeout", "2m", input=EXPERIMENT, timeout=150)
    try:
        assert run.returncode == 0, run.stdout + run.stderr
        trials = json.loads(local_stack.sextant("get", "trials", "-e", "kept-logs", "-o", "json").stdout)["items"]
        assert len(trials) == 2
        for trial in trials:
            name = trial["metadata"]["name"]
            x = next(a["value"] for a in trial["spec"]["parameterAssignments"] if a["name"] == "x")
            assert not (local_stack.data_dir / "jobs" / "default" / name).exists()  # retainRun false
            kept = local_stack.data_dir / "logs" / "trials" / "default" / f"{name}.log"
            assert kept.is_file()
            logs = local_stack.sextant("logs", name)
            assert logs.returncode == 0, logs.stderr
            assert f"hello from x={x}" in logs.stdout and f"score={x}" in logs.stdout
    finally:
        local_stack.sextant("delete", "experiment", "kept-logs")
    # Deleting the experiment deletes its trials, and with them the kept logs.
    deadline = time.monotonic() + 60
    for trial in trials:
        kept = local_stack.data_dir / "logs" / "trials" / "default" / f"{trial['metadata']['name']}.log"
        while kept.exists():
            assert time.monotonic() < deadline, f"{kept} was not removed with its trial"
            time.sleep(0.2)
        gone = local_stack.sextant("logs", trial["metadata"]["name"])
        assert gone.returncode == 1 and "no local log" in gone.stderr
