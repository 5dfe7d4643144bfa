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
from pathlib import Path

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


def katib_sdk_reads(stack, script: str) -> dict:
    """Runs ``script`` with Katib's SDK (its own venv) against the stack's API server; the JSON
    its last output line holds."""
    home = stack.data_dir / "katib-home"
    home.mkdir(exist_ok=True)
    done = subprocess.run([str(katib_python()), "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=cli_env({"KUBECONFIG": str(stack.kubeconfig), "HOME": str(home)}))
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    out = katib_sdk_reads(stack, script)
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


def run_medianstop_experiment(stack: KubeStack, counter: Path) -> dict:
    """The experiment ``stopped``: one trial at a time, each worse than the last (a shared
    counter), so once two have succeeded the third is below their median at step 2."""
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
    return wait_finished(stack, "stopped")


def test_medianstop_marks_a_worse_trial_early_stopped_through_the_kubernetes_api(stack, tmp_path) -> None:
    """The early-stopping service writes the EarlyStopped condition where the Trials live (here
    the Kubernetes API), not into the DB manager."""
    exp = run_medianstop_experiment(stack, tmp_path / "count")
    assert exp["status"]["conditions"][-1]["type"] == "Succeeded", exp["status"]
    assert exp["status"]["trialsSucceeded"] == 2 and exp["status"]["trialsEarlyStopped"] == 1
    fates = sorted(t["status"]["conditions"][-1]["type"] for t in trials_of(stack, "stopped"))
    assert fates == ["EarlyStopped", "Succeeded", "Succeeded"]
    # The stack's API server keeps its objects in the DB manager, so a write there would pass
    # too; in a cluster only the Kubernetes API holds the Trials. The service opened that store.
    (es_log,) = (stack.data_dir / "services").glob("*/*medianstop*/early-stopping.log")
    assert 'store="kubernetes"' in es_log.read_text(), es_log.read_text()


# The n-th trial to start (slots taken atomically, as trials start together) reports nothing,
# fails, or runs until the experiment ends it.
FATES = ("import os, sys, time\n"
         "n = 1\n"
         "while True:\n"
         "    try:\n"
         "        os.close(os.open(os.path.join(sys.argv[1], f'slot-{n}'), os.O_CREAT | os.O_EXCL)); break\n"
         "    except FileExistsError:\n"
         "        n += 1\n"
         "if n == 2:\n"
         "    sys.exit(3)\n"
         "if n >= 3:\n"
         "    time.sleep(120)\n")


def test_failed_killed_unavailable_and_early_stopped_trials_deserialise_into_katibs_sdk_models(
        stack, tmp_path) -> None:
    """What the controllers write when things go wrong reads back into Katib's SDK models too,
    with the condition types, reasons, counts and lists Katib's UI shows: a trial that reported
    nothing (MetricsUnavailable), one that exited 3 (Failed), one still running when the
    experiment failed on maxFailedTrialCount (Killed), and medianstop's EarlyStopped trial."""
    if not any(e["metadata"]["name"] == "stopped" for e in get(stack, "experiments")["items"]):
        run_medianstop_experiment(stack, tmp_path / "count")
    slots = tmp_path / "slots"
    slots.mkdir()
    kubectl(stack, "apply", "-f", "-", input=small_experiment(
        "broken", ["python", "-c", FATES, str(slots), "${trialParameters.x}"], max_trials=3, parallel=3,
        max_failed=2))
    wait_finished(stack, "broken")
    # The trial still running is killed once the experiment has failed; its count follows.
    deadline = time.monotonic() + 60
    while get(stack, "experiment", "broken")["status"].get("trialsKilled") != 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    script = """
import json
from kubeflow.katib import KatibClient
kc = KatibClient()
out = {}
for name in ("broken", "stopped"):
    exp = kc.get_experiment(name, namespace="default")
    trials = kc.list_trials(name, namespace="default")
    status = exp.status
    out[name] = {
        "types": sorted({type(exp).__name__, type(status).__name__, *(type(t).__name__ for t in trials)}),
        "failed": kc.is_experiment_failed(name, namespace="default"),
        "succeeded": kc.is_experiment_succeeded(name, namespace="default"),
        "condition": [status.conditions[-1].type, status.conditions[-1].reason],
        "counts": [status.trials, status.trials_succeeded, status.trials_failed, status.trials_killed,
                   status.trials_early_stopped, status.trial_metrics_unavailable],
        "lists": {k: sorted(getattr(status, k) or []) for k in (
            "succeeded_trial_list", "failed_trial_list", "killed_trial_list", "early_stopped_trial_list",
            "metrics_unavailable_trial_list")},
        "trials": {t.metadata.name: [t.status.conditions[-1].type, t.status.conditions[-1].reason]
                   for t in trials},
    }
print(json.dumps(out))
"""
    out = katib_sdk_reads(stack, script)
    broken, stopped = out["broken"], out["stopped"]
    for read in (broken, stopped):
        assert read["types"] == ["V1beta1Experiment", "V1beta1ExperimentStatus", "V1beta1Trial"]
    assert broken["failed"] is True and broken["succeeded"] is False
    assert broken["condition"] == ["Failed", "ExperimentFailed"]
    assert broken["counts"] == [3, 0, 1, 1, 0, 1], json.dumps(broken)
    fates = {fate: name for name, (fate, _reason) in broken["trials"].items()}
    assert sorted(fates) == ["Failed", "Killed", "MetricsUnavailable"]
    reasons = {fate: broken["trials"][name][1] for fate, name in fates.items()}
    assert reasons["Killed"] == "TrialKilled" and reasons["MetricsUnavailable"] == "MetricsUnavailable"
    assert reasons["Failed"].startswith("TrialFailed")
    assert broken["lists"]["failed_trial_list"] == [fates["Failed"]]
    assert broken["lists"]["killed_trial_list"] == [fates["Killed"]]
    assert broken["lists"]["metrics_unavailable_trial_list"] == [fates["MetricsUnavailable"]]
    assert stopped["succeeded"] is True and stopped["counts"][4] == 1
    (early,) = [name for name, (fate, _reason) in stopped["trials"].items() if fate == "EarlyStopped"]
    assert stopped["trials"][early][1] == "TrialEarlyStopped"
    assert stopped["lists"]["early_stopped_trial_list"] == [early]
