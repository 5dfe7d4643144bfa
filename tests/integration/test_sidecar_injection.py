"""The metrics collector as a sidecar (services.admission ``/mutate-pod``,
sextant.runtime.kubernetes_sidecar): the pod of a trial of Katib's ``random`` example, with its
real image unchanged, gets the collector container; the primary container changes only where
Katib's injection changes it too (its command runs under a wrapper, a mount, env). Then the two
containers run as local processes sharing a directory, and the metrics reach the real DB manager."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
import uuid
from contextlib import asynccontextmanager
from dataclasses import replace

import jsonpatch
import kubernetes_validate
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from services.admission.app import build_app
from sextant.resources.models import Trial
from sextant.runtime.db_manager_access import DBManagerAccess
from sextant.runtime.kubernetes_sidecar import WRAPPER, SidecarSettings
from tests.integration.katib_peers import observation_log
from tests.integration.kubelet import Kubelet
from tests.unit.test_manifests import SCHEMA_VERSION

IMAGE = "ghcr.io/kubeflow/katib/pytorch-mnist-cpu:latest"  # Katib's random example, unchanged
COMMAND = ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1", "--batch-size=16", "--lr=0.03",
           "--momentum=0.7"]
SETTINGS = SidecarSettings(image="sextant/sextant:1.0", db_manager="sextant-db-manager.sextant:6789")


def random_trial(name: str = "random-abc123", **spec: object) -> Trial:
    return Trial.model_validate({"metadata": {"name": name, "namespace": "kubeflow"}, "spec": {
        "objective": {"type": "minimize", "goal": 0.001, "objectiveMetricName": "loss"},
        "metricsCollector": {"collector": {"kind": "StdOut"}},
        "primaryContainerName": "training-container", **spec}})


def job_pod(owner: str = "random-abc123", command: list[str] | None = COMMAND) -> dict:
    """The pod Kubernetes' Job controller creates for the trial's Job."""
    container: dict = {"name": "training-container", "image": IMAGE,
                       "resources": {"limits": {"memory": "1Gi", "cpu": "0.5"}}}
    if command is not None:
        container["command"] = list(command)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "generateName": f"{owner}-", "namespace": "kubeflow",
        "labels": {"batch.kubernetes.io/job-name": owner, "job-name": owner},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": owner, "uid": "job-uid",
                             "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"restartPolicy": "Never", "containers": [container]}}


def review(pod: dict) -> dict:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "operation": "CREATE", "namespace": "kubeflow", "object": pod,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}}}


@asynccontextmanager
async def webhook(settings: SidecarSettings):
    """``/mutate-pod`` of a webhook with ``settings``: a pod in, (the response, the patched pod) out."""
    trials = {("kubeflow", "random-abc123"): random_trial(),
              ("kubeflow", "workers-only"): random_trial("workers-only", primaryPodLabels={"role": "master"})}
    app = build_app(pods=(lambda ns, name: trials.get((ns, name)), settings))
    async with TestClient(TestServer(app)) as http:
        async def call(pod: dict) -> tuple[dict, dict]:
            reply = await http.post("/mutate-pod", json=review(pod))
            assert reply.status == 200
            response = (await reply.json())["response"]
            if "patch" not in response:
                return response, pod
            assert response["patchType"] == "JSONPatch"
            return response, jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
        yield call


@pytest_asyncio.fixture
async def mutate_pod():
    async with webhook(SETTINGS) as call:
        yield call


@pytest.mark.asyncio
async def test_katibs_random_example_pod_gets_the_sidecar_and_keeps_its_image(mutate_pod) -> None:
    original = job_pod()
    response, pod = await mutate_pod(original)
    assert response["allowed"] is True
    kubernetes_validate.validate({**pod, "metadata": {**pod["metadata"], "name": "random-abc123-x"}},
                                 SCHEMA_VERSION, strict=True)
    primary, sidecar = pod["spec"]["containers"]
    # The primary container: same name, image and resources; its command runs under the wrapper.
    before = original["spec"]["containers"][0]
    assert {k: primary[k] for k in ("name", "image", "resources")} == {k: before[k] for k in ("name", "image", "resources")}
    assert primary["command"] == ["sh", "-c", WRAPPER, "sextant-trial", *COMMAND]
    assert {e["name"]: e["value"] for e in primary["env"]} == {
        "SEXTANT_METRICS_FILE": "/var/log/katib/metrics.log", "SEXTANT_EXIT_FILE": "/var/log/katib/sextant-exit-code",
        "KATIB_TRIAL_NAME": "random-abc123"}
    assert primary["volumeMounts"] == [{"name": "metrics-volume", "mountPath": "/var/log/katib"}]
    # The sidecar: Katib's container name, Sextant's image, the collector on the shared file.
    assert sidecar["name"] == "metrics-logger-and-collector" and sidecar["image"] == "sextant/sextant:1.0"
    args = sidecar["args"]
    assert args[0] == "services.metrics_collector" and args[args.index("--metrics") + 1] == "loss"
    assert args[args.index("--kind") + 1] == "File" and args[args.index("--path") + 1] == "/var/log/katib/metrics.log"
    assert args[args.index("--trial") + 1] == "random-abc123"
    assert args[args.index("--db-manager") + 1] == "sextant-db-manager.sextant:6789"
    assert args[-4:] == ["python", "-m", "services.metrics_collector.await_exit", "/var/log/katib/sextant-exit-code"]
    assert {"name": "metrics-volume", "emptyDir": {}} in pod["spec"]["volumes"]
    assert pod["metadata"]["labels"]["katib.kubeflow.org/trial"] == "random-abc123"
    assert pod["metadata"]["ownerReferences"] == original["metadata"]["ownerReferences"]


@pytest.mark.asyncio
async def test_pods_that_are_not_a_trials_primary_pod_are_left_alone(mutate_pod) -> None:
    other = job_pod(owner="some-other-job")
    assert (await mutate_pod(other))[1] == other
    worker = job_pod(owner="workers-only")
    assert (await mutate_pod(worker))[1] == worker  # primaryPodLabels role=master not carried
    master = copy.deepcopy(worker)
    master["metadata"]["labels"]["role"] = "master"
    assert len((await mutate_pod(master))[1]["spec"]["containers"]) == 2


@pytest.mark.asyncio
async def test_a_trial_pod_without_a_command_is_refused_with_the_reason(mutate_pod) -> None:
    response, _ = await mutate_pod(job_pod(command=None))
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert "training-container" in response["status"]["message"] and "command" in response["status"]["message"]


@pytest.mark.asyncio
async def test_without_a_collector_image_pods_pass_unchanged() -> None:
    async with TestClient(TestServer(build_app())) as http:
        reply = await http.post("/mutate-pod", json=review(job_pod()))
        assert (await reply.json())["response"] == {"uid": (await reply.json())["response"]["uid"], "allowed": True}


TRAINING = [sys.executable, "-c", "import sys, time\nfor i in range(3):\n"
            "    print(f'epoch {i} loss={1.0 / (i + 1):.3f}', flush=True); time.sleep(0.3)\nsys.exit(3)"]


def run_pod(pod: dict, kubelet: Kubelet) -> None:
    """The injected containers as local processes: the training prints its loss and exits 3; the
    sidecar reports the losses and exits 3 too."""
    primary, sidecar = pod["spec"]["containers"]
    side = kubelet.start(sidecar, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    trained = kubelet.start(primary, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert trained.wait(timeout=60) == 3
    out, _ = side.communicate(timeout=60)
    assert side.returncode == 3, out.decode()


@pytest.mark.asyncio
async def test_the_two_containers_run_together_and_the_metrics_reach_the_db_manager(
        mutate_pod, sqlite_db_manager, tmp_path) -> None:
    _, pod = await mutate_pod(job_pod(command=TRAINING))
    # A DB manager without a token takes any.
    run_pod(pod, Kubelet(pod["spec"], tmp_path, {("sextant-token", "token"): "unused"},
                         {SETTINGS.db_manager: sqlite_db_manager.address}))
    logged = observation_log(sqlite_db_manager.address, "random-abc123", "loss")
    assert sorted(value for _, _, value in logged) == ["0.333", "0.500", "1.000"]
    assert "loss=0.500" in (tmp_path / "metrics-volume" / "metrics.log").read_text()


TLS_ACCESS = DBManagerAccess(token_secret="sextant-token", ca_secret="sextant-db-manager-ca")


@pytest.mark.asyncio
async def test_the_sidecar_reports_over_tls_with_the_token_and_ca_from_the_trials_namespace(
        tls_db_manager, tmp_path) -> None:
    """The overlay's DB manager serves TLS and wants a token: the webhook given the two Secrets'
    names (--token-secret, --ca-secret) wires them into the sidecar, and nothing else reaches it."""
    running, token, ca = tls_db_manager
    settings = replace(SETTINGS, access=TLS_ACCESS)
    async with webhook(settings) as call:
        _, pod = await call(job_pod(command=TRAINING))
    primary, sidecar = pod["spec"]["containers"]
    assert {"name": "sextant-db-manager-ca", "mountPath": "/etc/sextant/db-manager-ca", "readOnly": True} \
        in sidecar["volumeMounts"]
    assert not any(e["name"] in ("SEXTANT_TOKEN", "SEXTANT_TLS_CA") for e in primary["env"])
    assert all(m["name"] == "metrics-volume" for m in primary["volumeMounts"])
    kubernetes_validate.validate({**pod, "metadata": {**pod["metadata"], "name": "random-abc123-x"}},
                                 SCHEMA_VERSION, strict=True)
    namespace = {("sextant-token", "token"): token, ("sextant-db-manager-ca", "ca.crt"): ca.read_text()}
    run_pod(pod, Kubelet(pod["spec"], tmp_path, namespace, {settings.db_manager: running.address}))
    logged = observation_log(running.address, "random-abc123", "loss", token=token, tls_ca=str(ca))
    assert sorted(value for _, _, value in logged) == ["0.333", "0.500", "1.000"]


def test_the_wrapped_collector_reports_over_tls_with_the_token_and_ca_from_the_trials_namespace(
        tls_db_manager, tmp_path) -> None:
    """--runtime kubernetes without the sidecar: the primary container's wrapped collector gets
    the same token and CA (the trial controller's --collector-token-secret, --collector-ca-secret)."""
    from sextant.runtime.base import JobSpec
    from sextant.runtime.collector_settings import CollectorSettings
    from sextant.runtime.kubernetes import render_trial_object

    running, token, ca = tls_db_manager
    address = "sextant-db-manager.sextant:6789"
    run_spec = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "training-container", "image": IMAGE,
                                                  "command": TRAINING}]}}}}
    spec = JobSpec(name="wrapped-abc123", namespace="kubeflow", run_spec=run_spec,
                   primary_container_name="training-container",
                   collector=CollectorSettings(metrics=("loss",), trial="wrapped-abc123", db_manager=address))
    job = render_trial_object(spec, access=TLS_ACCESS)
    kubernetes_validate.validate(job, SCHEMA_VERSION, strict=True)
    pod_spec = job["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    namespace = {("sextant-token", "token"): token, ("sextant-db-manager-ca", "ca.crt"): ca.read_text()}
    wrapped = Kubelet(pod_spec, tmp_path, namespace, {address: running.address}).start(
        container, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = wrapped.communicate(timeout=60)
    assert wrapped.returncode == 3, out.decode()
    logged = observation_log(running.address, "wrapped-abc123", "loss", token=token, tls_ca=str(ca))
    assert sorted(value for _, _, value in logged) == ["0.333", "0.500", "1.000"]


def test_in_sidecar_mode_the_runtime_leaves_the_command_to_the_webhook() -> None:
    from sextant.runtime.base import JobSpec
    from sextant.runtime.collector_settings import CollectorSettings
    from sextant.runtime.kubernetes import render_trial_object

    run_spec = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "training-container", "image": IMAGE,
                                                  "command": list(COMMAND)}]}}}}
    spec = JobSpec(name="random-abc123", namespace="kubeflow", run_spec=run_spec,
                   primary_container_name="training-container",
                   collector=CollectorSettings(metrics=("loss",), trial="random-abc123"))
    job = render_trial_object(spec, sidecar=True)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == COMMAND and container["image"] == IMAGE
    assert {e["name"] for e in container["env"]} == {"KATIB_TRIAL_NAME"}
    # The sidecar is added to the pod later: the rule names no container.
    assert job["spec"]["podFailurePolicy"]["rules"] == [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [86]}}]
    wrapped = render_trial_object(spec)
    assert wrapped["spec"]["template"]["spec"]["containers"][0]["command"][:3] == [
        "python", "-m", "services.metrics_collector"]
