"""Trials in containers: a local stack started with ``--runtime docker`` runs Katib-style
experiments whose trials name an image (``make test-containers``).

No registry is reachable, so the trial image is built here, FROM the locally built base image
(deploy/docker/build-base-images), with a small training script that prints its metrics the way
Katib's examples do. The stack itself runs as local processes; only the trials are containers.

* a random-search experiment (StdOut collector, CPU and memory limits) runs to the end, each
  trial in the image, and no container is left behind (retainRun false);
* a File-collector experiment with retainRun reads its metrics file through the bind-mounted
  directory, and its containers keep the template's limits and Katib's labels;
* a PrometheusMetric experiment is collected live, by the collector on the host attached to
  the container, scraping the trial's endpoint;
* a trial whose image is on no registry fails saying so, one over its memory limit as OOMKilled;
* trials whose script is missing fail with the exit code and the interpreter's complaint in
  their condition, and the experiment names that as its most common trial failure;
* the trial controller killed with SIGKILL mid-run is restarted by the supervisor and adopts
  the running containers: exactly maxTrialCount trials, each run exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.local_stack import ROOT, cli_env, run_cli

pytestmark = [pytest.mark.containers, pytest.mark.timeout(1800)]

BUILD_BASE = ROOT / "deploy" / "docker" / "build-base-images"
TRAINER_IMAGE = "sextant-test/katib-trainer:2"
STACK_LABEL = "sextant.io/stack"

# A Katib-style training script: hyperparameters as flags, one "name=value" line per epoch
# (Katib's StdOut format), optionally the same lines into a metrics file (the File collector).
TRAIN_PY = '''\
import argparse, math, os, sys, time

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--num-layers", type=int, required=True)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--log-path", default="")
a = p.parse_args()
out = open(a.log_path, "a") if a.log_path else None
print("run-marker trial=%s" % os.environ.get("KATIB_TRIAL_NAME", "?"), flush=True)
for epoch in range(1, a.epochs + 1):
    time.sleep(a.sleep)
    acc = 1 - math.exp(-epoch * a.lr * 10) / a.num_layers
    line = "epoch %d: accuracy=%.4f loss=%.4f" % (epoch, acc, 1 - acc)
    print(line, flush=True)
    if out:
        out.write("accuracy=%.4f\\nloss=%.4f\\n" % (acc, 1 - acc))
        out.flush()
'''

# The same numbers served as Prometheus gauges while the trial runs (the PrometheusMetric
# collector scrapes them from the host: the container shares the host's network).
SERVE_PY = '''\
import argparse, http.server, math, threading, time

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--num-layers", type=int, required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--seconds", type=float, default=4.0)
a = p.parse_args()
acc = 1 - math.exp(-a.lr * 10) / a.num_layers


class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("# TYPE accuracy gauge\\naccuracy %f\\n# TYPE loss gauge\\nloss %f\\n" % (acc, 1 - acc)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Metrics)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("serving-marker", flush=True)
time.sleep(a.seconds)
'''

DOCKERFILE = '''\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY train.py serve.py /opt/trainer/
WORKDIR /opt/trainer
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(argv: list[str], timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def trainer_image(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    base = run([str(BUILD_BASE), "--print-names"]).stdout.split()[0]
    run([str(BUILD_BASE)], timeout=1800)  # keeps an image that is current (minutes the first time)
    context = tmp_path_factory.mktemp("trainer-image")
    (context / "train.py").write_text(TRAIN_PY)
    (context / "serve.py").write_text(SERVE_PY)
    (context / "Dockerfile").write_text(DOCKERFILE)
    run(["docker", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-t", TRAINER_IMAGE,
         str(context)])
    return TRAINER_IMAGE


class Stack:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir

    def sextant(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_cli(self.data_dir, *args, timeout=timeout, env=cli_env())

    def apply(self, experiment: dict[str, Any]) -> None:
        result = run_cli(self.data_dir, "apply", "-f", "-", input=yaml.safe_dump(experiment), env=cli_env())
        assert result.returncode == 0, result.stdout + result.stderr

    def get(self, kind: str, *args: str) -> Any:
        result = self.sextant("get", kind, *args, "-o", "json")
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def trials(self, experiment: str) -> list[dict[str, Any]]:
        doc = self.get("trials", "-e", experiment)
        return list(doc["items"] if isinstance(doc, dict) and "items" in doc else doc)

    def wait(self, experiment: str, condition: str = "Succeeded", timeout: str = "8m") -> dict[str, Any]:
        result = self.sextant("wait", "experiment", experiment, f"--for=condition={condition}",
                              f"--timeout={timeout}", timeout=600)
        doc = self.get("experiment", experiment)
        assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{json.dumps(doc.get('status'), indent=1)}"
        return dict(doc)

    def containers(self, *label_filters: str) -> list[dict[str, Any]]:
        argv = ["docker", "ps", "-a", "-q"]
        for item in label_filters:
            argv += ["--filter", f"label={item}"]
        ids = run(argv).stdout.split()
        return json.loads(run(["docker", "inspect", *ids]).stdout) if ids else []


@pytest.fixture(scope="module")
def stack(trainer_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("docker-stack")
    stack = Stack(data_dir)
    up = stack.sextant("up", "--detach", "--port", "0", "--runtime", "docker", timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield stack
    finally:
        stack.sextant("down", timeout=120)
        for container in stack.containers(STACK_LABEL):  # what a failed test left
            run(["docker", "rm", "-f", container["Id"]], check=False)


def experiment(name: str, *, args: list[str], max_trials: int = 4, parallel: int = 2, max_failed: int = 3,
               retain: bool = False, collector: dict[str, Any] | None = None,
               resources: dict[str, Any] | None = None, command: list[str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "training-container", "image": TRAINER_IMAGE,
        "command": command or ["python3", "/opt/trainer/train.py"],
        "args": ["--lr=${trialParameters.learningRate}", "--num-layers=${trialParameters.numberLayers}", *args],
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
    }
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {
        "objective": {"type": "maximize", "goal": 1.5, "objectiveMetricName": "accuracy",
                      "additionalMetricNames": ["loss"]},
        "algorithm": {"algorithmName": "random"},
        "parallelTrialCount": parallel, "maxTrialCount": max_trials,
        "maxFailedTrialCount": min(max_failed, max_trials),
        "parameters": [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}},
            {"name": "num-layers", "parameterType": "int", "feasibleSpace": {"min": "2", "max": "4"}}],
        "trialTemplate": {
            "primaryContainerName": "training-container", "retain": retain,
            "trialParameters": [{"name": "learningRate", "reference": "lr"},
                                {"name": "numberLayers", "reference": "num-layers"}],
            "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                "containers": [container], "restartPolicy": "Never"}}}}},
    }
    if collector:
        spec["metricsCollectorSpec"] = collector
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": spec}


def conditions(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in resource["status"].get("conditions", []) if c.get("status") == "True"}


def test_random_search_runs_every_trial_in_its_image_and_leaves_no_container(stack: Stack) -> None:
    stack.apply(experiment("docker-random", args=["--epochs=3"],
                           resources={"limits": {"cpu": "500m", "memory": "256Mi"}}))
    exp = stack.wait("docker-random")
    trials = stack.trials("docker-random")
    assert len(trials) == 4 and exp["status"]["trialsSucceeded"] == 4
    for trial in trials:
        metrics = {m["name"]: m for m in trial["status"]["observation"]["metrics"]}
        assert set(metrics) == {"accuracy", "loss"}
        assert 0 < float(metrics["accuracy"]["latest"]) < 1
        # /opt/trainer/train.py exists only in the image: its output proves where it ran.
        log = stack.sextant("logs", trial["metadata"]["name"])
        assert f"run-marker trial={trial['metadata']['name']}" in log.stdout, log.stdout + log.stderr
    assert stack.containers("katib.kubeflow.org/experiment=docker-random") == []  # retainRun false


def test_file_collector_reads_the_bind_mounted_metrics_file_and_retained_containers_keep_limits(
        stack: Stack) -> None:
    stack.apply(experiment(
        "docker-file", args=["--epochs=2", "--log-path=/var/log/katib/metrics.log"], max_trials=2, retain=True,
        collector={"collector": {"kind": "File"},
                   "source": {"fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File"}}},
        resources={"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "250m"}}))
    stack.wait("docker-file")
    trials = stack.trials("docker-file")
    assert len(trials) == 2 and all("Succeeded" in conditions(t) for t in trials)
    containers = stack.containers("katib.kubeflow.org/experiment=docker-file")
    assert sorted(c["Config"]["Labels"]["katib.kubeflow.org/trial"] for c in containers) == \
        sorted(t["metadata"]["name"] for t in trials)
    for container in containers:
        host = container["HostConfig"]
        assert (host["NanoCpus"], host["Memory"], host["CpuShares"]) == (10**9, 128 * 2**20, 256)
        assert host["NetworkMode"] == "host"
        assert [m["Destination"] for m in container["Mounts"]] == ["/var/log/katib"]
        assert container["Config"]["Entrypoint"] == ["python3", "/opt/trainer/train.py"]
    assert stack.sextant("delete", "experiment", "docker-file").returncode == 0
    deadline = time.monotonic() + 60
    while stack.containers("katib.kubeflow.org/experiment=docker-file") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stack.containers("katib.kubeflow.org/experiment=docker-file") == []


def test_prometheus_collector_scrapes_the_running_container(stack: Stack) -> None:
    port = free_port()
    stack.apply(experiment(
        "docker-prometheus", args=[f"--port={port}", "--seconds=4"], max_trials=2, parallel=1,
        command=["python3", "/opt/trainer/serve.py"],
        collector={"collector": {"kind": "PrometheusMetric"},
                   "source": {"httpGet": {"port": port, "path": "/metrics"}}}))
    stack.wait("docker-prometheus")
    trials = stack.trials("docker-prometheus")
    assert len(trials) == 2
    for trial in trials:
        assert "Succeeded" in conditions(trial), trial["status"]
        metrics = {m["name"]: m for m in trial["status"]["observation"]["metrics"]}
        accuracy = float(metrics["accuracy"]["latest"])
        assert 0 < accuracy < 1 and abs(float(metrics["loss"]["latest"]) - (1 - accuracy)) < 1e-6
        assert "serving-marker" in stack.sextant("logs", trial["metadata"]["name"]).stdout
    assert stack.containers("katib.kubeflow.org/experiment=docker-prometheus") == []


def test_failed_trials_and_their_experiment_say_why(stack: Stack) -> None:
    stack.apply(experiment("docker-broken", args=[], command=["python3", "/opt/trainer/mnist.py"],
                           max_trials=3, parallel=2, max_failed=2))
    exp = stack.wait("docker-broken", condition="Failed")
    failed = conditions(exp)["Failed"]["message"]
    assert failed.startswith("Experiment has failed because max failed count has reached. "
                             "Most common trial failure (2 of 2): Error: exit code 2: ")
    assert "can't open file '/opt/trainer/mnist.py'" in failed
    trial = next(t for t in stack.trials("docker-broken") if "Failed" in conditions(t))
    message = conditions(trial)["Failed"]["message"]
    assert message.startswith("Trial has failed. Job message: exit code 2\nLast lines of output:\n")
    assert "No such file or directory" in message


def test_an_image_that_is_nowhere_fails_its_trial_with_the_engines_reason(stack: Stack) -> None:
    broken = experiment("docker-no-image", args=[], max_trials=1, parallel=1, max_failed=1)
    container = broken["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "registry.invalid/sextant/missing:1"  # .invalid never resolves
    stack.apply(broken)
    stack.wait("docker-no-image", condition="Failed")
    (trial,) = stack.trials("docker-no-image")
    message = conditions(trial)["Failed"]["message"]
    assert message.startswith("Trial has failed. Job message: cannot start the container: image "
                              "'registry.invalid/sextant/missing:1' is not on this engine and pulling it failed (")
    assert message.endswith("); build or load it first")
    assert stack.containers("katib.kubeflow.org/experiment=docker-no-image") == []


def test_a_trial_over_its_memory_limit_fails_as_oom_killed(stack: Stack) -> None:
    stack.apply(experiment("docker-oom", args=[], max_trials=1, parallel=1, max_failed=1,
                           command=["python3", "-c", "x = bytearray(300 * 2**20); print('survived')"],
                           resources={"limits": {"memory": "48Mi"}}))
    stack.wait("docker-oom", condition="Failed")
    (trial,) = stack.trials("docker-oom")
    failed = conditions(trial)["Failed"]
    assert failed["reason"] == "TrialFailed. Job reason: OOMKilled"
    assert failed["message"].startswith(
        "Trial has failed. Job message: the container was killed for using more memory than its limit "
        f"({48 * 2**20} bytes, resources.limits.memory) (exit code 137)")


def test_trial_controller_killed_mid_run_adopts_its_containers(stack: Stack) -> None:
    stack.apply(experiment("docker-restart", args=["--epochs=4", "--sleep=1.5"], max_trials=4, parallel=2,
                           retain=True))
    running = stack.containers("katib.kubeflow.org/experiment=docker-restart")
    deadline = time.monotonic() + 120
    while not any(c["State"]["Running"] for c in running) and time.monotonic() < deadline:
        time.sleep(0.3)
        running = stack.containers("katib.kubeflow.org/experiment=docker-restart")
    assert any(c["State"]["Running"] for c in running), "no trial container started"
    pid = int((stack.data_dir / "run" / "trial-controller.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # the supervisor starts it again; the containers run on
    exp = stack.wait("docker-restart")
    trials = stack.trials("docker-restart")
    assert len(trials) == 4 and exp["status"]["trialsSucceeded"] == 4
    containers = stack.containers("katib.kubeflow.org/experiment=docker-restart")
    assert len(containers) == 4  # one container per trial: none started twice
    for trial in trials:
        log = stack.sextant("logs", trial["metadata"]["name"]).stdout
        assert log.count("run-marker") == 1 and log.count("epoch 4:") == 1, log
    status = json.loads((stack.data_dir / "stack.json").read_text())
    assert status["services"]["trial-controller"]["restarts"] >= 1
    assert status["runtime"] == "docker"


def _in_a_container_only(parameters):  # shipped to the image as source: it does its own imports
    import os

    if not os.path.exists("/.dockerenv"):  # the engine puts this file in every container
        raise SystemExit("this trial ran outside a container")
    return {"score": 1 - (parameters["x"] - 0.3) ** 2}


def test_sdk_tune_with_katibs_base_image_runs_the_function_in_that_image(stack: Stack) -> None:
    """Katib's ``tune(base_image=...)``: the function runs in the image (which holds Python but
    not Sextant), and the best parameters come back."""
    from sextant.sdk import tune

    base = run([str(BUILD_BASE), "--print-names"]).stdout.split()[0]
    best = tune(_in_a_container_only, {"x": {"parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}},
                data_dir=stack.data_dir, name="tune-in-image", objective_metric_name="score",
                max_trial_count=2, parallel_trial_count=2, max_failed_trial_count=1, base_image=base, timeout=480)
    assert isinstance(best, dict) and 0 <= best["x"] <= 1
    trials = stack.trials("tune-in-image")
    assert len(trials) == 2 and all(t["status"]["conditions"][-1]["type"] == "Succeeded" for t in trials)
