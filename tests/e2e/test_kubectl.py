"""kubectl against a real local stack through ``sextant kubeconfig``: a Katib user's habits
(apply, get, describe, edit, patch, wait, logs, explain, delete) work unchanged."""

from __future__ import annotations

import json
import stat
import subprocess
import time

import pytest
import yaml

from tests.e2e.kube_stack import (
    KUBECTL,
    KubeStack,
    kube_env,
    run,
    start_kube_stack,
    stop_kube_stack,
    trivial_experiment,
    two_objective_experiment,
)
from tests.e2e.local_stack import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> KubeStack:
    started = start_kube_stack(tmp_path_factory.mktemp("kubectl-stack"))
    yield started
    stop_kube_stack(started)


@pytest.fixture
def kubectl(stack, tmp_path):
    env = kube_env(stack, tmp_path / "home")

    def call(*args: str, input: str | None = None, timeout: float = 120, check: bool = True,
             extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        done = run([str(KUBECTL), *args], {**env, **(extra_env or {})}, input=input, timeout=timeout)
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done

    return call


def _wait_succeeded(kubectl, name: str, namespace: str = "default") -> None:
    kubectl("wait", "--for=condition=Succeeded", f"experiment/{name}", "-n", namespace, "--timeout=300s",
            timeout=330)


def _wait_trials(kubectl, name: str, succeeded: int) -> None:
    """Until ``succeeded`` trials have succeeded: right after a budget change the experiment may
    still show its earlier Succeeded condition, so waiting for the condition alone could return early."""
    kubectl("wait", f"--for=jsonpath={{.status.trialsSucceeded}}={succeeded}", f"experiment/{name}",
            "--timeout=300s", timeout=330)


def test_discovery_categories_and_unknown_resources(kubectl, stack):
    resources = kubectl("api-resources", "--api-group=kubeflow.org", "-o", "wide").stdout
    for plural, kind in (("experiments", "Experiment"), ("trials", "Trial"), ("suggestions", "Suggestion")):
        line = next(ln for ln in resources.splitlines() if ln.startswith(plural))
        assert kind in line and "katib" in line and "true" in line  # namespaced, category katib
    unknown = kubectl("get", "deployments.apps", check=False)
    assert unknown.returncode != 0 and "deployments" in unknown.stderr
    code, body, _ = stack.request("GET", "/apis/apps/v1/namespaces/default/deployments")
    assert (code, body["kind"], body["reason"], body["code"]) == (404, "Status", "NotFound", 404)
    code, body, _ = stack.request("GET", "/apis/kubeflow.org/v1beta1/namespaces/default/experiments", token=None)
    assert (code, body["reason"]) == (401, "Unauthorized")
    code, body, _ = stack.request("GET", "/apis/kubeflow.org/v1beta1/namespaces/default/experiments",
                                  token="not-the-token")
    assert code == 401
    assert kubectl("version", "-o", "json").returncode == 0


def test_apply_get_wait_describe_logs_and_delete(kubectl, stack, tmp_path):
    manifest = tmp_path / "exp.yaml"
    manifest.write_text(trivial_experiment("kc-flow", max_trials=2))
    assert "experiment.kubeflow.org/kc-flow created" in kubectl("apply", "-f", str(manifest)).stdout
    again = kubectl("create", "-f", str(manifest), check=False)
    assert again.returncode != 0
    assert 'experiments.kubeflow.org "kc-flow" already exists' in again.stderr

    _wait_succeeded(kubectl, "kc-flow")
    table = kubectl("get", "experiments").stdout.splitlines()
    assert table[0].split() == ["NAME", "TYPE", "STATUS", "AGE"]
    row = next(ln.split() for ln in table if ln.startswith("kc-flow "))
    assert row[1:3] == ["Succeeded", "True"] and row[3][-1] in "smh"
    wide = kubectl("get", "experiment", "kc-flow", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "TYPE", "STATUS", "AGE", "ALGORITHM", "TRIALS", "BEST", "PARETO"]
    assert "random" in wide[1] and "2/0/0 of 2" in wide[1] and "score=" in wide[1]
    every = kubectl("get", "katib", "-A").stdout
    assert "experiment.kubeflow.org/kc-flow" in every and "trial.kubeflow.org/kc-flow-" in every
    assert "suggestion.kubeflow.org/kc-flow" in every

    trials = json.loads(kubectl("get", "trials", "-l", "katib.kubeflow.org/experiment=kc-flow",
                                "-o", "json").stdout)["items"]
    assert len(trials) == 2
    trial = trials[0]["metadata"]["name"]
    trial_wide = kubectl("get", "trial", trial, "-o", "wide").stdout
    assert "x=" in trial_wide and "score=" in trial_wide

    described = kubectl("describe", "experiment", "kc-flow").stdout
    assert "Name:         kc-flow" in described and "Events:" in described
    assert "ExperimentCreated" in described

    logs = kubectl("logs", "-l", f"katib.kubeflow.org/trial={trial}").stdout
    assert "score=" in logs
    assert kubectl("logs", "-f", trial, "-c", "training-container").stdout == logs  # ended: -f returns
    tail = kubectl("logs", trial, "--tail=1").stdout
    assert tail.count("\n") <= 1

    doc = yaml.safe_load(kubectl("get", "experiment", "kc-flow", "-o", "yaml").stdout)
    assert doc["spec"]["maxTrialCount"] == 2 and doc["status"]["trialsSucceeded"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in doc["metadata"]["annotations"]

    assert 'experiment.kubeflow.org "kc-flow" deleted' in kubectl("delete", "experiment", "kc-flow").stdout
    assert kubectl("get", "trials", "-l", "katib.kubeflow.org/experiment=kc-flow", "-o", "json",
                   check=False).stdout.count('"kind": "Trial"') == 0
    gone = kubectl("get", "experiment", "kc-flow", check=False)
    assert gone.returncode == 1 and 'experiments.kubeflow.org "kc-flow" not found' in gone.stderr


def test_wide_output_shows_a_multi_objective_experiments_pareto_front(kubectl, tmp_path):
    manifest = tmp_path / "pareto.yaml"
    manifest.write_text(two_objective_experiment("kc-pareto", max_trials=4, parallel=2))
    kubectl("apply", "-f", str(manifest))
    _wait_succeeded(kubectl, "kc-pareto")
    doc = json.loads(kubectl("get", "experiment", "kc-pareto", "-o", "json").stdout)
    front = [t["bestTrialName"] for t in doc["status"]["paretoOptimalTrials"]]
    assert 1 <= len(front) <= 4
    header, row = kubectl("get", "experiment", "kc-pareto", "-o", "wide").stdout.splitlines()
    assert header.split()[-1] == "PARETO"
    assert row[header.index("PARETO"):].strip() == f"{len(front)}: {','.join(front)}"
    kubectl("delete", "experiment", "kc-pareto")


def test_invalid_spec_is_refused_with_kubectls_own_message(kubectl, tmp_path):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(trivial_experiment("kc-bad", parallel=1).replace("maxTrialCount: 2", "maxTrialCount: -1")
                        .replace("maxFailedTrialCount: 1", "maxFailedTrialCount: 0"))
    refused = kubectl("apply", "-f", str(manifest), check=False)
    assert refused.returncode == 1
    assert 'The Experiment "kc-bad" is invalid' in refused.stderr
    assert "spec.maxTrialCount: Invalid value: -1: must be greater than 0" in refused.stderr
    unknown = kubectl("apply", "-f", "-", check=False,
                      input=trivial_experiment("kc-bad").replace("maxTrialCount: 2", "maxTrialCount: 2\n  colour: red"))
    assert unknown.returncode == 1 and "spec.colour" in unknown.stderr
    assert kubectl("get", "experiment", "kc-bad", check=False).returncode == 1  # nothing was stored


def test_apply_again_edit_and_patch_change_the_budget(kubectl, tmp_path):
    manifest = tmp_path / "exp.yaml"
    text = trivial_experiment("kc-edit", max_trials=2, parallel=1, resume_policy="LongRunning")
    manifest.write_text(text)
    kubectl("apply", "-f", str(manifest))
    _wait_succeeded(kubectl, "kc-edit")

    manifest.write_text(text.replace("maxTrialCount: 2", "maxTrialCount: 3"))
    assert "experiment.kubeflow.org/kc-edit configured" in kubectl("apply", "-f", str(manifest)).stdout
    spec = json.loads(kubectl("get", "experiment", "kc-edit", "-o", "json").stdout)["spec"]
    assert spec["maxTrialCount"] == 3
    _wait_trials(kubectl, "kc-edit", 3)  # restarted for the third trial

    editor = tmp_path / "editor.sh"  # what a user does in $EDITOR: raise the budget by one
    editor.write_text("#!/bin/sh\nsed -i 's/maxTrialCount: 3/maxTrialCount: 4/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    edited = kubectl("edit", "experiment", "kc-edit", extra_env={"EDITOR": str(editor), "KUBE_EDITOR": str(editor)})
    assert "experiment.kubeflow.org/kc-edit edited" in edited.stdout

    strategic = kubectl("patch", "experiment", "kc-edit", "-p", '{"spec":{"maxTrialCount":5}}', check=False)
    assert strategic.returncode == 1 and "application/strategic-merge-patch+json is not supported" in strategic.stderr
    frozen = kubectl("patch", "experiment", "kc-edit", "--type", "merge",
                     "-p", '{"spec":{"objective":{"type":"minimize"}}}', check=False)
    assert frozen.returncode == 1 and "is invalid" in frozen.stderr
    stale = json.loads(kubectl("get", "experiment", "kc-edit", "-o", "json").stdout)
    stale["metadata"]["resourceVersion"] = "1"
    stale["spec"]["maxTrialCount"] = 6
    conflict = kubectl("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert conflict.returncode == 1
    assert 'Operation cannot be fulfilled on experiments.kubeflow.org "kc-edit": the object has been modified' \
        in conflict.stderr

    _wait_trials(kubectl, "kc-edit", 4)
    merged = kubectl("patch", "experiment", "kc-edit", "--type", "merge", "-p", '{"spec":{"maxTrialCount":5}}')
    assert "experiment.kubeflow.org/kc-edit patched" in merged.stdout
    assert json.loads(kubectl("get", "experiment", "kc-edit", "-o", "json").stdout)["spec"]["maxTrialCount"] == 5
    _wait_trials(kubectl, "kc-edit", 5)
    # Once it has succeeded by maxTrialCount, an edit must raise the budget (Katib's rule).
    kubectl("patch", "experiment", "kc-edit", "--type", "json", "-p",
            '[{"op":"replace","path":"/spec/parallelTrialCount","value":2},'
            '{"op":"replace","path":"/spec/maxTrialCount","value":6}]')
    spec = json.loads(kubectl("get", "experiment", "kc-edit", "-o", "json").stdout)["spec"]
    assert (spec["maxTrialCount"], spec["parallelTrialCount"]) == (6, 2)
    _wait_trials(kubectl, "kc-edit", 6)  # restarted with the bigger budget and finished it
    _wait_succeeded(kubectl, "kc-edit")
    status = json.loads(kubectl("get", "experiment", "kc-edit", "-o", "json").stdout)["status"]
    assert status["trials"] == 6 and status["trialsSucceeded"] == 6
    kubectl("delete", "experiment", "kc-edit")


def test_get_watch_prints_rows_as_trials_change(kubectl, stack, tmp_path):
    env = kube_env(stack, tmp_path / "watch-home")
    with subprocess.Popen([str(KUBECTL), "get", "trials", "-w", "-l", "katib.kubeflow.org/experiment=kc-watch"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) as watcher:
        try:
            time.sleep(2)  # the watch is open before anything happens
            kubectl("apply", "-f", "-", input=trivial_experiment("kc-watch", max_trials=1, parallel=1))
            _wait_succeeded(kubectl, "kc-watch")
            time.sleep(1)
        finally:
            watcher.terminate()
        out, _ = watcher.communicate(timeout=30)
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("kc-watch-")]
    assert len({r[0] for r in rows}) == 1  # one trial, seen through several changes
    assert [r[1] for r in rows][-1] == "Succeeded" and len(rows) >= 2
    kubectl("delete", "experiment", "kc-watch")


def test_explain_namespaces_and_v1alpha3(kubectl, stack):
    explained = kubectl("explain", "experiment.spec").stdout
    assert "maxTrialCount" in explained and "parallelTrialCount" in explained
    assert "namespace/kc-team created" in kubectl("create", "namespace", "kc-team").stdout
    namespace = json.loads(kubectl("get", "namespace", "kc-team", "-o", "json").stdout)
    assert namespace["metadata"]["labels"]["kubernetes.io/metadata.name"] == "kc-team"
    assert "default" in kubectl("get", "ns").stdout

    applied = kubectl("apply", "-f", str(ROOT / "examples" / "v1alpha3" / "random-example.yaml"))
    assert "experiment.kubeflow.org/random-example created" in applied.stdout
    old = json.loads(kubectl("get", "experiments.v1alpha3.kubeflow.org", "random-example", "-n", "kubeflow",
                             "-o", "json").stdout)
    assert old["apiVersion"] == "kubeflow.org/v1alpha3" and "goTemplate" in old["spec"]["trialTemplate"]
    new = json.loads(kubectl("get", "experiments.v1beta1.kubeflow.org", "random-example", "-n", "kubeflow",
                             "-o", "json").stdout)
    assert new["apiVersion"] == "kubeflow.org/v1beta1" and "goTemplate" not in new["spec"]["trialTemplate"]
    kubectl("delete", "experiment", "random-example", "-n", "kubeflow")


def test_status_subresource_conflicts_and_paging(stack):
    base = "/apis/kubeflow.org/v1beta1/namespaces/kc-raw/experiments"
    doc = yaml.safe_load(trivial_experiment("kc-raw-a", max_trials=1, parallel=1, namespace="kc-raw"))
    doc["spec"]["maxTrialCount"] = 1000  # stays running while the test writes to it
    doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["command"] = [
        "python", "-c", "import time; time.sleep(600)", "--x=${trialParameters.x}"]
    code, created, _ = stack.request("POST", base, doc)
    assert code == 201 and created["metadata"]["resourceVersion"], created
    code, body, _ = stack.request("POST", base, {**doc, "metadata": {"generateName": "kc-raw-"}})
    assert code == 201 and body["metadata"]["name"].startswith("kc-raw-") and body["metadata"]["name"] != "kc-raw-"
    code, body, _ = stack.request("PUT", f"{base}/kc-raw-a", {**created, "metadata": {
        **created["metadata"], "resourceVersion": "1"}})
    assert (code, body["reason"]) == (409, "Conflict")

    for _ in range(10):  # the controllers write the running experiment's status too: on 409, read again
        code, current, _ = stack.request("GET", f"{base}/kc-raw-a")
        changed = {**current, "spec": {**current["spec"], "maxTrialCount": 999}, "status": {"trials": 12345}}
        code, body, _ = stack.request("PUT", f"{base}/kc-raw-a", changed)
        if code != 409:
            break
    assert code == 200 and body["spec"]["maxTrialCount"] == 999 and body["status"].get("trials") != 12345
    code, body, _ = stack.request("PATCH", f"{base}/kc-raw-a/status", {"metadata": {"labels": {"ignored": "yes"}},
                                                                       "status": {"message": "from a client"}},
                                  headers={"Content-Type": "application/merge-patch+json"})
    assert code == 200 and "ignored" not in body["metadata"].get("labels", {})
    code, body, _ = stack.request("PATCH", f"{base}/kc-raw-a", {"metadata": {"labels": {"team": "b"}}},
                                  headers={"Content-Type": "application/merge-patch+json"})
    assert code == 200 and body["metadata"]["labels"]["team"] == "b"

    code, page, _ = stack.request("GET", f"{base}?limit=1")
    assert code == 200 and len(page["items"]) == 1 and page["metadata"]["continue"]
    code, rest, _ = stack.request("GET", f"{base}?limit=1&continue={page['metadata']['continue']}")
    assert len(rest["items"]) == 1 and rest["items"][0]["metadata"]["name"] != page["items"][0]["metadata"]["name"]
    code, labelled, _ = stack.request("GET", f"{base}?labelSelector=team%3Db")
    assert [i["metadata"]["name"] for i in labelled["items"]] == ["kc-raw-a"]
    code, body, _ = stack.request("GET", "/api/v1/namespaces/kc-raw")
    assert code == 200 and body["metadata"]["labels"]["kubernetes.io/metadata.name"] == "kc-raw"
    for item in (page["items"] + rest["items"]):
        code, body, _ = stack.request("DELETE", f"{base}/{item['metadata']['name']}",
                                      {"propagationPolicy": "Foreground"})
        assert code == 200
    code, body, _ = stack.request("GET", "/apis/kubeflow.org/v1beta1/namespaces/kc-raw/trials")
    assert body["items"] == []  # the trials went with their experiments
