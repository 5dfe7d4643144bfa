"""`sextant down` also stops the algorithm services the suggestion controller started locally
(they are not the supervisor's children), so nothing is left running after it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sextant.runtime import process
from tests.e2e.local_stack import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sextant-stack-down")]

EXPERIMENT = """
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: left-running}
spec:
  objective: {type: maximize, objectiveMetricName: score}
  algorithm: {algorithmName: random}
  parallelTrialCount: 1
  maxTrialCount: 5
  parameters:
    - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"}}
  trialTemplate:
    primaryContainerName: main
    trialParameters: [{name: x, reference: x}]
    trialSpec:
      apiVersion: batch/v1
      kind: Job
      spec:
        template:
          spec:
            containers:
              - name: main
                image: none
                command: [python, -c, "import sys, time; time.sleep(3); print('score=' + sys.argv[1])",
                          "${trialParameters.x}"]
"""


def sextant(data_dir: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sextant.cli.main", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, input=input,
                          env={k: v for k, v in os.environ.items() if k != "SEXTANT_STACK_MODULES"})


def _service(data_dir: Path) -> process.ProcessId | None:
    state = process.read_json(data_dir / "services" / "default" / "left-running-random" / "state.json")
    return process.ProcessId.from_dict((state or {}).get("main"))


def test_down_stops_local_algorithm_services(tmp_path):
    data_dir = tmp_path / "stack"
    up = sextant(data_dir, "up", "--detach", "--port", "0")
    assert up.returncode == 0, up.stdout + up.stderr
    service = None
    try:
        applied = sextant(data_dir, "apply", "-f", "-", input=EXPERIMENT)
        assert applied.returncode == 0, applied.stderr
        deadline = time.monotonic() + 60
        while not process.is_alive(service := _service(data_dir)):
            assert time.monotonic() < deadline, "the algorithm service did not start"
            time.sleep(0.2)
    finally:
        down = sextant(data_dir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert service is not None and not process.is_alive(service)
