"""Sextant as a drop-in for Katib's controller, with no cluster: a local stack whose three
controllers run with ``--store kubernetes`` (SEXTANT_STORE) on the stack's own Kubernetes API
server, so every Experiment, Trial, Suggestion and Event they read or write goes through the
Kubernetes API as Katib's custom resources would; trials run on the local runtime. Experiments
are created with ``kubectl apply``; what the controllers wrote is read back with Katib's SDK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml

from sextant.stack import StackPaths
from tests.e2e.katib_venv import katib_python
from tests.e2e.kube_stack import KUBECTL, KubeStack, stop_kube_stack
from tests.e2e.local_stack import ROOT, cli_env, run_cli
from tests.experiments import small_experiment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
CONTROLLERS = ("experiment-controller", "suggestion-controller", "trial-controller")
# A trial that takes a moment, so that a controller can be killed while trials are running.
SLOW_TRIAL = ["python", "-c", "import sys, time; time.sleep(1.5); print('score=' + sys.argv[1])",
              "${trialParameters.x}"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[KubeStack]:
    data_dir = tmp_path_factory.mktemp("dropin-stack")
    up = run_cli(data_dir, "up", "--detach", "--port", "0", "--timeout", "120", timeout=180,
                 env=cli_env({"SEXTANT_STORE": "kubernetes"}))
    assert up.returncode == 0, up.stdout + up.stderr
    started = KubeStack(data_dir, data_dir / "kubeconfig")
    try:
        yield started
    finally:
        stop_kube_stack(started)


def kubectl(stack: KubeStack, *args: str, input: str | None = None) -> str:
    done = subprocess.run([str(KUBECTL), *args], capture_output=True, text=True, input=input, timeout=120,
                          env=cli_env({"KUBECONFIG": str(stack.kubeconfig), "HOME": str(stack.data_dir / "home")}))
    assert done.returncode == 0, f"kubectl {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def get(stack: KubeStack, kind: str, name: str = "") -> dict:
    return json.loads(kubectl(stack, "get", kind, *([name] if name else []), "-o", "json"))


def wait_finished(stack: KubeStack, name: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exp = get(stack, "experiment", name)
        conditions = {c["type"]: c["status"] for c in exp.get("status", {}).get("conditions", [])}
        if conditions.get("Succeeded") == "True" or conditions.get("Failed") == "True":
            return exp
        time.sleep(1)
    pytest.fail(f"experiment {name} did not finish in {timeout} s: {exp.get('status')}")


def trials_of(stack: KubeStack, name: str) -> list[dict]:
    items = get(stack, "trials")["items"]
    return [t for t in items if t["metadata"]["labels"].get("katib.kubeflow.org/experiment") == name]


def test_the_controllers_run_on_the_kubernetes_store(stack) -> None:
    for name in CONTROLLERS:
        log = (stack.data_dir / "logs" / f"{name}.log").read_text()
        assert '"store": "kubernetes"' in log, f"{name} did not start on the Kubernetes store"


def test_kubectl_apply_runs_an_experiment_to_its_trial_count(stack) -> None:
    kubectl(stack, "apply", "-f", "-", input=small_experiment(
        "dropin", ["python", "examples/trainers/trivial.py", "--x=${trialParameters.x}"], max_trials=5, parallel=2))
    exp = wait_finished(stack, "dropin")
    assert exp["status"]["conditions"][-1]["type"] == "Succeeded"
    assert exp["status"]["trialsSucceeded"] == 5 and exp["status"]["trials"] == 5
    trials = trials_of(stack, "dropin")
    assert len(trials) == 5 and all(t["status"]["conditions"][-1]["type"] == "Succeeded" for t in trials)
    # Owner references and labels as Katib sets them.
    for trial in trials:
        (owner,) = trial["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Experiment", "dropin", exp["metadata"]["uid"])
        assert owner["controller"] is True and owner["blockOwnerDeletion"] is True
    suggestion = get(stack, "suggestion", "dropin")
    assert suggestion["metadata"]["ownerReferences"][0]["uid"] == exp["metadata"]["uid"]
    assert suggestion["status"]["suggestionCount"] == 5
    events = [e for e in get(stack, "events")["items"] if e["involvedObject"]["name"] == "dropin"]
    assert events and all(e["involvedObject"]["kind"] == "Experiment" for e in events)


def test_a_controller_killed_mid_run_and_restarted_finishes_exactly(stack) -> None:
    kubectl(stack, "apply", "-f", "-", input=small_experiment("killed", SLOW_TRIAL, max_trials=8, parallel=2))
    deadline = time.monotonic() + 120
    while len(trials_of(stack, "killed")) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    paths = StackPaths(stack.data_dir)
    for name in ("experiment-controller", "trial-controller"):  # the supervisor restarts them
        os.kill(int(paths.pid_file(name).read_text()), signal.SIGKILL)
    exp = wait_finished(stack, "killed", timeout=300)
    trials = trials_of(stack, "killed")
    assert exp["status"]["conditions"][-1]["type"] == "Succeeded"
    assert len(trials) == 8 and exp["status"]["trialsSucceeded"] == 8
    assert sorted(t["metadata"]["name"] for t in trials) == sorted(set(t["metadata"]["name"] for t in trials))


def test_what_the_controllers_wrote_deserialises_into_katibs_sdk_models(stack) -> None:
    """Katib's SDK reads every object back into its own models; the status fields Katib's UI
    reads (conditions, counts, the optimal trial) mean what they mean there."""
    if not any(t for t in trials_of(stack, "dropin")):
        kubectl(stack, "apply", "-f", "-", input=small_experiment(
            "dropin", ["python", "examples/trainers/trivial.py", "--x=${trialParameters.x}"], max_trials=5))
        wait_finished(stack, "dropin")
    script = """
import json
from kubeflow.katib import KatibClient, models
kc = KatibClient()
exp = kc.get_experiment("dropin", namespace="default")
trials = kc.list_trials("dropin", namespace="default")
sugg = kc.get_suggestion("dropin", namespace="default")
optimal = kc.get_optimal_hyperparameters("dropin", namespace="default")
print(json.dumps({
    "types": sorted({type(exp).__name__, type(sugg).__name__, *(type(t).__name__ for t in trials)}),
    "succeeded": kc.is_experiment_succeeded("dropin", namespace="default"),
    "counts": [exp.status.trials, exp.status.trials_succeeded],
    "trial_conditions": sorted({t.status.conditions[-1].type for t in trials}),
    "observations": sorted({len(t.status.observation.metrics) for t in trials}),
    "suggestions": [sugg.status.suggestion_count, len(sugg.status.suggestions)],
    "best": optimal.best_trial_name, "trial_names": sorted(t.metadata.name for t in trials),
    "owner": trials[0].metadata.owner_references[0].kind,
}))
"""
    home = stack.data_dir / "katib-home"
    home.mkdir(exist_ok=True)
    done = subprocess.run([str(katib_python()), "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=cli_env({"KUBECONFIG": str(stack.kubeconfig), "HOME": str(home)}))
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["types"] == ["V1beta1Experiment", "V1beta1Suggestion", "V1beta1Trial"]
    assert out["succeeded"] is True and out["counts"] == [5, 5]
    assert out["trial_conditions"] == ["Succeeded"] and out["observations"] == [1]
    assert out["suggestions"] == [5, 5] and out["owner"] == "Experiment"
    assert out["best"] in out["trial_names"]




def _katib_trial(name: str, uid: str, x: str) -> dict:
    """A Trial as Katib's controller writes it for the experiment ``adopted``."""
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "metadata": {
        "name": name, "namespace": "default", "labels": {"katib.kubeflow.org/experiment": "adopted"},
        "ownerReferences": [{"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "name": "adopted",
                             "uid": uid, "controller": True, "blockOwnerDeletion": True}]},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "score",
                          "metricStrategies": [{"name": "score", "value": "max"}]},
            "parameterAssignments": [{"name": "x", "value": x}],
            "metricsCollector": {"collector": {"kind": "StdOut"}},
            "primaryContainerName": "training-container",
            "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
            "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
            "runSpec": {"apiVersion": "batch/v1", "kind": "Job",
                        "metadata": {"name": name, "namespace": "default"},
                        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                            {"name": "training-container", "image": "local",
                             "command": ["python", "examples/trainers/trivial.py", f"--x={x}"]}]}}}}}}


def test_an_experiment_katibs_controller_started_is_adopted_and_finished(stack) -> None:
    """The switch-over: Katib's controller created the Suggestion and two Trials (one already
    succeeded) and stopped; Sextant's controllers take them over by name, labels and owner
    references, recreate nothing and finish the experiment at its trial count."""
    paths = StackPaths(stack.data_dir)
    pids = [int(paths.pid_file(name).read_text()) for name in CONTROLLERS]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # "Katib's controller" writes while Sextant's are held
    try:
        kubectl(stack, "apply", "-f", "-", input=small_experiment(
            "adopted", ["python", "examples/trainers/trivial.py", "--x=${trialParameters.x}"], max_trials=3,
            parallel=2))
        exp = get(stack, "experiment", "adopted")
        uid = exp["metadata"]["uid"]
        owner = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "name": "adopted", "uid": uid,
                 "controller": True, "blockOwnerDeletion": True}
        suggestion = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Suggestion", "metadata": {
            "name": "adopted", "namespace": "default", "labels": {"katib.kubeflow.org/experiment": "adopted"},
            "ownerReferences": [owner]},
            "spec": {"algorithm": {"algorithmName": "random"}, "requests": 2, "resumePolicy": "Never"}}
        trials = [_katib_trial("adopted-katib001", uid, "0.3"), _katib_trial("adopted-katib002", uid, "0.6")]
        kubectl(stack, "create", "-f", "-", input="\n---\n".join(json.dumps(d) for d in [suggestion, *trials]))
        now = "2026-01-01T00:00:00Z"
        kubectl(stack, "patch", "suggestion", "adopted", "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"suggestionCount": 2, "startTime": now, "conditions": [
                {"type": "Created", "status": "True", "reason": "SuggestionCreated", "lastUpdateTime": now},
                {"type": "Running", "status": "True", "reason": "SuggestionRunning", "lastUpdateTime": now}],
                "suggestions": [{"name": t["metadata"]["name"], "parameterAssignments":
                                 t["spec"]["parameterAssignments"]} for t in trials]}}))
        kubectl(stack, "patch", "trial", "adopted-katib001", "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"startTime": now, "completionTime": now, "conditions": [
                {"type": "Created", "status": "True", "reason": "TrialCreated", "lastUpdateTime": now},
                {"type": "Running", "status": "False", "reason": "TrialRunning", "lastUpdateTime": now},
                {"type": "Succeeded", "status": "True", "reason": "TrialSucceeded", "lastUpdateTime": now}],
                "observation": {"metrics": [{"name": "score", "min": "-0.04", "max": "-0.04",
                                             "latest": "-0.04"}]}}}))
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    exp = wait_finished(stack, "adopted")
    trials = {t["metadata"]["name"]: t for t in trials_of(stack, "adopted")}
    assert exp["status"]["conditions"][-1]["type"] == "Succeeded"
    assert len(trials) == 3 and {"adopted-katib001", "adopted-katib002"} <= set(trials)
    assert exp["status"]["trialsSucceeded"] == 3
    kept = trials["adopted-katib001"]["status"]
    assert kept["completionTime"] == "2026-01-01T00:00:00Z"  # not run again
    assert kept["observation"]["metrics"][0]["latest"] == "-0.04"
    assert all(t["metadata"]["ownerReferences"][0]["uid"] == exp["metadata"]["uid"] for t in trials.values())
    assert get(stack, "suggestion", "adopted")["status"]["suggestionCount"] == 3


def test_medianstop_marks_a_worse_trial_early_stopped_through_the_kubernetes_api(stack, tmp_path) -> None:
    """The early-stopping service writes the EarlyStopped condition where the Trials live (here
    the Kubernetes API), not into the DB manager. One trial at a time, each worse than the last
    (a shared counter), so once two have succeeded the third is below their median at step 2."""
    counter = tmp_path / "count"
    trainer = ("import pathlib, sys, time\n"
               "p = pathlib.Path(sys.argv[1]); n = int(p.read_text() or 0) + 1 if p.exists() else 1\n"
               "p.write_text(str(n))\n"
               "for _ in range(8):\n"
               "    print(f'score={10 - n}', flush=True); time.sleep(0.3)\n")
    doc = yaml.safe_load(small_experiment("stopped", ["python", "-c", trainer, str(counter), "${trialParameters.x}"],
                                          max_trials=3, parallel=1))
    doc["spec"]["earlyStopping"] = {"algorithmName": "medianstop", "algorithmSettings": [
        {"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "2"}]}
    kubectl(stack, "apply", "-f", "-", input=yaml.safe_dump(doc))
    exp = wait_finished(stack, "stopped")
    assert exp["status"]["conditions"][-1]["type"] == "Succeeded", exp["status"]
    assert exp["status"]["trialsSucceeded"] == 2 and exp["status"]["trialsEarlyStopped"] == 1
    fates = sorted(t["status"]["conditions"][-1]["type"] for t in trials_of(stack, "stopped"))
    assert fates == ["EarlyStopped", "Succeeded", "Succeeded"]
    # The stack's API server keeps its objects in the DB manager, so a write there would pass
    # too; in a cluster only the Kubernetes API holds the Trials. The service opened that store.
    (es_log,) = (stack.data_dir / "services").glob("*/*medianstop*/early-stopping.log")
    assert 'store="kubernetes"' in es_log.read_text(), es_log.read_text()
