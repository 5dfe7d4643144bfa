"""The seed's first experiment, end to end: every service a separate process talking gRPC.

examples/v1alpha3/random-example.yaml (12 trials, 3 in parallel, random search over --lr,
--num-layers, --optimizer) runs examples/trainers/digits.py as local trial processes; it must end
Succeeded by max trials with 12 succeeded trials and the optimal trial in its status.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sextant.resources.admission import admit_experiment
from sextant.resources.loading import load_document
from sextant.stack import StackPaths, stop_local_services
from sextant.store.client import GrpcResourceStore
from sextant.store.interface import NotFound, Unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("first-experiment")]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "v1alpha3" / "random-example.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def stack(tmp_path):
    port = _free_port()
    address = f"127.0.0.1:{port}"
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEXTANT_")}
    env.update(SEXTANT_HOME=str(data), PYTHONPATH=str(ROOT))
    services = {
        "db-manager": ["services.db_manager", "--port", str(port), "--db-url",
                       f"sqlite:///{tmp_path / 'sextant.db'}"],
        "experiment-controller": ["services.experiment_controller", "--db-manager", address],
        "suggestion-controller": ["services.suggestion.controller", "--db-manager", address],
        "trial-controller": ["services.trial_controller", "--db-manager", address],
    }
    procs: dict[str, subprocess.Popen] = {}
    logs = tmp_path / "logs"
    logs.mkdir()
    for name, argv in services.items():
        with open(logs / f"{name}.log", "wb") as out:
            procs[name] = subprocess.Popen([sys.executable, "-m", *argv, "--data-dir", str(data)],
                                           cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)
    store = GrpcResourceStore(address, retry_seconds=60)
    try:
        yield store, procs, logs
    finally:
        store.close()
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        # v1alpha3 defaults to resumePolicy LongRunning: the algorithm service outlives the
        # experiment by design, so stop it as `sextant down` would.
        stop_local_services(StackPaths(data))


def _condition(resource, type_):
    for c in resource.status.conditions:
        if c.type == type_ and c.status == "True":
            return c
    return None


def test_random_example_runs_to_max_trials(stack):
    store, procs, logs = stack
    experiment = admit_experiment(load_document(EXAMPLE.read_text()))
    deadline = time.monotonic() + 60
    while True:
        try:
            store.create(experiment)
            break
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    deadline = time.monotonic() + 900
    exp = None
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited:\n" + (logs / f"{name}.log").read_text()[-3000:]
        try:
            exp = store.get("Experiment", "kubeflow", "random-example")
        except NotFound:
            exp = None
        if exp is not None and (_condition(exp, "Succeeded") or _condition(exp, "Failed")):
            break
        time.sleep(1)
    assert exp is not None
    done = _condition(exp, "Succeeded")
    assert done is not None, f"experiment did not succeed: {exp.status.model_dump()}"
    assert done.reason == "ExperimentMaxTrialsReached"
    trials, _version = store.list("Trial", "kubeflow")
    assert len(trials) == 12
    assert exp.status.trials == 12 and exp.status.trials_succeeded == 12
    for trial in trials:
        assert _condition(trial, "Succeeded"), trial.status.model_dump()
        command = trial.spec.run_spec["spec"]["template"]["spec"]["containers"][0]["command"]
        assert {c.split("=")[0] for c in command[4:]} == {"--lr", "--num-layers", "--optimizer"}
        values = {m.name: float(m.latest) for m in trial.status.observation.metrics}
        assert set(values) == {"Validation-accuracy", "accuracy"}
        assert 0.0 < values["Validation-accuracy"] <= 1.0
    optimal = exp.status.current_optimal_trial
    assert optimal is not None and optimal.best_trial_name in {t.metadata.name for t in trials}
    best = max(trials, key=lambda t: float(next(m.max for m in t.status.observation.metrics
                                                 if m.name == "Validation-accuracy")))
    best_value = float(next(m.max for m in best.status.observation.metrics if m.name == "Validation-accuracy"))
    optimal_value = float(next(m.max for m in optimal.observation.metrics if m.name == "Validation-accuracy"))
    assert optimal_value == best_value
    assert {a.name for a in optimal.parameter_assignments} == {"--lr", "--num-layers", "--optimizer"}
