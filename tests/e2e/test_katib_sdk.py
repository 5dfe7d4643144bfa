"""Katib's SDK (``kubeflow-katib``, in its own virtualenv) and the ``kubernetes`` Python client
against a real local stack through ``sextant kubeconfig``, unchanged: a Katib notebook's calls
work, and a watch follows an experiment to its end across a restart of the API server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time

import pytest
import urllib3
import yaml
from kubernetes import client, config, watch

from sextant.ports import free_port
from sextant.stack import StackPaths, read_state
from sextant.store.client import GrpcResourceStore
from tests.e2e.katib_venv import katib_python
from tests.e2e.kube_stack import KubeStack, stop_kube_stack, trivial_experiment, two_objective_experiment
from tests.e2e.local_stack import ROOT, cli_env, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def read_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, read_port) -> KubeStack:
    data_dir = tmp_path_factory.mktemp("katib-sdk-stack")
    up = run_cli(data_dir, "up", "--detach", "--port", "0", "--katib-read-port", str(read_port), "--timeout", "120",
                 timeout=180)
    if up.returncode != 0:  # a stack that never became ready is still running: stop it
        run_cli(data_dir, "down", timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    started = KubeStack(data_dir, data_dir / "kubeconfig")
    yield started
    stop_kube_stack(started)


@pytest.fixture(scope="module")
def sdk(stack, tmp_path_factory):
    """Runs a snippet with Katib's SDK (``kc`` is a KatibClient on the stack's kubeconfig);
    returns what it printed last, as JSON."""
    python = katib_python()
    home = tmp_path_factory.mktemp("katib-home")

    def call(snippet: str, timeout: float = 400):
        script = "import json\nfrom kubeflow.katib import KatibClient\nfrom kubeflow.katib import models\n" \
                 "from kubeflow import katib\nkc = KatibClient()\n" + textwrap.dedent(snippet)
        path = home / f"snippet_{len(list(home.glob('snippet_*.py')))}.py"  # a file: tune() reads the source
        path.write_text(script)
        done = subprocess.run([str(python), str(path)], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env=cli_env({"KUBECONFIG": str(stack.kubeconfig), "HOME": str(home)}))
        assert done.returncode == 0, f"Katib SDK snippet failed:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout.strip().splitlines()[-1])

    return call


def test_katib_client_create_wait_results_logs_and_delete(sdk, read_port):
    manifest = yaml.safe_load(trivial_experiment("sdk-dict", max_trials=2))
    out = sdk(f"""
        from kubernetes.client import V1ObjectMeta
        exp = models.V1beta1Experiment(
            api_version="kubeflow.org/v1beta1", kind="Experiment",
            metadata=V1ObjectMeta(name="sdk-model", namespace="default"),
            spec=models.V1beta1ExperimentSpec(
                max_trial_count=2, parallel_trial_count=2, max_failed_trial_count=1,
                objective=models.V1beta1ObjectiveSpec(type="maximize", objective_metric_name="score"),
                algorithm=models.V1beta1AlgorithmSpec(algorithm_name="random"),
                parameters=[models.V1beta1ParameterSpec(name="x", parameter_type="double",
                            feasible_space=models.V1beta1FeasibleSpace(min="0.0", max="1.0"))],
                trial_template=models.V1beta1TrialTemplate(
                    primary_container_name="training-container",
                    trial_parameters=[models.V1beta1TrialParameterSpec(name="x", reference="x")],
                    trial_spec={json.dumps(manifest["spec"]["trialTemplate"]["trialSpec"])})))
        kc.create_experiment(exp, namespace="default")
        kc.create_experiment({json.dumps(manifest)}, namespace="default")
        try:
            kc.create_experiment({json.dumps(manifest)}, namespace="default")
            duplicate = "accepted"
        except Exception as err:
            duplicate = str(err)
        for name in ("sdk-model", "sdk-dict"):
            kc.wait_for_experiment_condition(name, namespace="default", timeout=300, polling_interval=1)
        got = kc.get_experiment("sdk-model", namespace="default")
        optimal = kc.get_optimal_hyperparameters("sdk-dict", namespace="default")
        trials = kc.list_trials("sdk-dict", namespace="default")
        details = kc.get_success_trial_details("sdk-dict", namespace="default")
        best = optimal.best_trial_name
        metrics = kc.get_trial_metrics(best, namespace="default", db_manager_address="127.0.0.1:{read_port}")
        logs = list(kc.get_job_logs("sdk-dict", best, namespace="default"))
        followed = list(kc.get_job_logs("sdk-dict", best, namespace="default", follow=True))
        print(json.dumps({{
            "kind": type(got).__name__, "max": got.spec.max_trial_count,
            "listed": sorted(e.metadata.name for e in kc.list_experiments(namespace="default")),
            "succeeded": kc.is_experiment_succeeded("sdk-dict", namespace="default"),
            "duplicate": duplicate,
            "best": best, "best_params": [p.name for p in optimal.parameter_assignments],
            "trials": sorted(t.metadata.name for t in trials),
            "details": sorted(d["name"] for d in details),
            "metric_names": sorted({{m.metric.name for m in metrics}}),
            "logs": logs, "followed": followed,
        }}))
    """)
    assert out["kind"] == "V1beta1Experiment" and out["max"] == 2
    assert out["listed"] == ["sdk-dict", "sdk-model"] and out["succeeded"] is True
    assert "already exists" in out["duplicate"]
    assert out["best"] in out["trials"] and len(out["trials"]) == 2 and out["details"] == out["trials"]
    assert out["best_params"] == ["x"] and out["metric_names"] == ["score"]
    assert any(line.startswith("score=") for line in out["logs"])
    assert out["followed"] == out["logs"]  # the trial has ended: following returns the whole log
    after = sdk("""
        for name in ("sdk-model", "sdk-dict"):
            kc.delete_experiment(name, namespace="default")
        print(json.dumps(sorted(e.metadata.name for e in kc.list_experiments(namespace="default"))))
    """)
    assert after == []


def test_a_multi_objective_experiment_is_a_valid_katib_experiment(sdk):
    """Sextant's extension (the sextant.io/objectives annotation, status.paretoOptimalTrials) is
    invisible to Katib's SDK: it creates, reads and lists a two-objective mo-tpe experiment and
    its results as it would any other, the optimum on the primary objective alone."""
    manifest = yaml.safe_load(two_objective_experiment("sdk-pareto", max_trials=4, parallel=2, algorithm="mo-tpe"))
    manifest["spec"]["algorithm"]["algorithmSettings"] = [{"name": "n_startup_trials", "value": "2"}]
    out = sdk(f"""
        kc.create_experiment({json.dumps(manifest)}, namespace="default")
        kc.wait_for_experiment_condition("sdk-pareto", namespace="default", timeout=300, polling_interval=1)
        got = kc.get_experiment("sdk-pareto", namespace="default")
        optimal = kc.get_optimal_hyperparameters("sdk-pareto", namespace="default")
        trials = kc.list_trials("sdk-pareto", namespace="default")
        scores = {{t.metadata.name: float(next(m.latest for m in t.status.observation.metrics if m.name == "score"))
                  for t in trials}}
        print(json.dumps({{
            "kind": type(got).__name__, "succeeded": kc.is_experiment_succeeded("sdk-pareto", namespace="default"),
            "annotations": got.metadata.annotations, "additional": got.spec.objective.additional_metric_names,
            "algorithm": got.spec.algorithm.algorithm_name,
            "best": optimal.best_trial_name, "best_metrics": sorted(m.name for m in optimal.observation.metrics),
            "scores": scores,
            "trial_metrics": sorted({{m.name for t in trials for m in t.status.observation.metrics}}),
        }}))
        kc.delete_experiment("sdk-pareto", namespace="default")
    """)
    assert out["kind"] == "V1beta1Experiment" and out["succeeded"] is True
    assert out["annotations"]["sextant.io/objectives"] == "cost=minimize"
    assert out["additional"] == ["cost"] and out["algorithm"] == "mo-tpe"
    assert len(out["scores"]) == 4 and out["trial_metrics"] == ["cost", "score"]
    assert out["best_metrics"] == ["cost", "score"]
    assert out["scores"][out["best"]] == max(out["scores"].values())  # currentOptimalTrial: score alone


def test_edit_budget_restarts_a_long_running_experiment(sdk):
    manifest = yaml.safe_load(trivial_experiment("sdk-budget", max_trials=1, parallel=1,
                                                 resume_policy="LongRunning"))
    out = sdk(f"""
        kc.create_experiment({json.dumps(manifest)}, namespace="default")
        kc.wait_for_experiment_condition("sdk-budget", namespace="default", timeout=300, polling_interval=1)
        kc.edit_experiment_budget("sdk-budget", namespace="default", max_trial_count=3)
        import time
        deadline = time.time() + 300  # the SDK does not wait for the restart; poll as a notebook would
        while True:
            exp = kc.get_experiment("sdk-budget", namespace="default")
            if (exp.status.trials_succeeded or 0) >= 3 and kc.is_experiment_succeeded("sdk-budget", namespace="default"):
                break
            assert time.time() < deadline, "the experiment did not finish its new budget"
            time.sleep(1)
        print(json.dumps({{"max": exp.spec.max_trial_count, "trials": exp.status.trials,
                          "succeeded": exp.status.trials_succeeded}}))
        kc.delete_experiment("sdk-budget", namespace="default")
    """)
    assert out == {"max": 3, "trials": 3, "succeeded": 3}


def test_tune_runs_a_python_objective_as_local_trials(sdk):
    out = sdk("""
        def objective(parameters):
            x = float(parameters["x"])
            print(f"score={-(x - 0.5) ** 2}")

        kc.tune(name="sdk-tune", objective=objective, parameters={"x": katib.search.double(min=0.0, max=1.0)},
                objective_metric_name="score", objective_type="maximize", max_trial_count=2,
                parallel_trial_count=2, namespace="default")
        kc.wait_for_experiment_condition("sdk-tune", namespace="default", timeout=300, polling_interval=1)
        optimal = kc.get_optimal_hyperparameters("sdk-tune", namespace="default")
        print(json.dumps({"best": optimal.best_trial_name,
                          "metrics": [m.name for m in optimal.observation.metrics],
                          "value": float(optimal.observation.metrics[0].max)}))
        kc.delete_experiment("sdk-tune", namespace="default")
    """)
    assert out["best"].startswith("sdk-tune-") and out["metrics"] == ["score"]
    assert -0.25 <= out["value"] <= 0.0


def _store(stack: KubeStack) -> GrpcResourceStore:
    state = read_state(StackPaths(stack.data_dir))
    return GrpcResourceStore(state["address"], token=(stack.data_dir / "token").read_text().strip())


def test_watch_follows_an_experiment_across_an_api_server_restart(stack):
    """The kubernetes client's watch sees exactly the store's Trial events, in order, once each,
    although the API server is killed and restarted while the experiment runs."""
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(stack.kubeconfig)))
    group = dict(group="kubeflow.org", version="v1beta1", namespace="default", plural="trials",
                 label_selector="katib.kubeflow.org/experiment=sdk-watch")
    listed = api.list_namespaced_custom_object(**group)
    since = listed["metadata"]["resourceVersion"]
    reference: list[tuple[str, str, str]] = []
    store = _store(stack)
    stream = store.watch(kind="Trial", namespace="default", since=int(since),
                         labels={"katib.kubeflow.org/experiment": "sdk-watch"})

    def follow_store() -> None:
        for event in stream:
            if event.resource is not None:
                reference.append((str(event.type), event.resource.metadata.name, str(event.resource_version)))

    threading.Thread(target=follow_store, daemon=True).start()
    doc = yaml.safe_load(trivial_experiment("sdk-watch", max_trials=4, parallel=2))
    api.create_namespaced_custom_object(group="kubeflow.org", version="v1beta1", namespace="default",
                                        plural="experiments", body=doc)
    seen: list[tuple[str, str, str]] = []
    succeeded: set[str] = set()
    restarted = False
    deadline = time.monotonic() + 400
    last = since
    while len(succeeded) < 4 and time.monotonic() < deadline:
        try:
            for event in watch.Watch().stream(api.list_namespaced_custom_object, resource_version=last,
                                              allow_watch_bookmarks=True, **group):
                obj = event["object"]
                last = obj["metadata"]["resourceVersion"]
                if event["type"] == "BOOKMARK":
                    continue
                seen.append((event["type"], obj["metadata"]["name"], last))
                conditions = (obj.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Succeeded" and c["status"] == "True" for c in conditions):
                    succeeded.add(obj["metadata"]["name"])
                if not restarted and len(seen) >= 3:
                    restarted = True
                    pid = read_state(StackPaths(stack.data_dir))["services"]["api-server"]["pid"]
                    os.kill(pid, signal.SIGKILL)  # the supervisor starts a new one
                if len(succeeded) >= 4:
                    break
        except (urllib3.exceptions.HTTPError, client.exceptions.ApiException, OSError):
            time.sleep(0.5)  # the server is restarting: watch again from the last version seen
    stream.cancel()
    assert restarted and len(succeeded) == 4, (seen, succeeded)
    upto = [e for e in reference if int(e[2]) <= int(last)]
    assert seen == upto  # nothing lost, nothing repeated, same order
    assert len({rv for _, _, rv in seen}) == len(seen)
    api.delete_namespaced_custom_object(group="kubeflow.org", version="v1beta1", namespace="default",
                                        plural="experiments", name="sdk-watch")
