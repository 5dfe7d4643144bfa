"""`sextant down` also stops the algorithm services the suggestion controller started locally
(they are not the supervisor's children), so nothing is left running after it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from sextant.runtime import process
from tests.e2e.local_stack import run_cli
from tests.experiments import small_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sextant-stack-down")]

EXPERIMENT = small_experiment("left-running", [
    "python", "-c", "import sys, time; time.sleep(3); print('score=' + sys.argv[1])", "${trialParameters.x}"],
    max_trials=5, parallel=1)


def sextant(data_dir: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return run_cli(data_dir, *args, input=input, timeout=120)


def _service(data_dir: Path) -> process.ProcessId | None:
    # The local stack runs one random service shared by every experiment.
    state = process.read_json(data_dir / "services" / "sextant-system" / "random" / "state.json")
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
