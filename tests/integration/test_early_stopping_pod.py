"""An algorithm pod with early stopping, as the Kubernetes runtime renders it for deploy/kubernetes
(the registry there, the suggestion controller's --early-stopping-token-secret and
--early-stopping-ca-secret), run as local processes the way a kubelet sets them up, against the
real DB manager serving only TLS and wanting a token, as it does on a cluster.

medianstop computes its rule from observation logs it reads there, with the token and CA from
the pod's namespace; the token also guards its own server, and its callers send it: the
suggestion controller (ValidateEarlyStoppingSettings, GetEarlyStoppingRules) and a trial's
metrics collector (SetTrialStatus), which hold the same token."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import yaml

from services.metrics_collector.early_stopping import set_trial_early_stopped
from services.suggestion.controller.reconciler import SuggestionError, SuggestionReconciler
from sextant.algorithm_registry import Registry
from sextant.api import api_pb2, api_pb2_grpc
from sextant.channel import open_channel
from sextant.resources.models import Experiment, Suggestion, Trial
from sextant.runtime.base import ServiceSpec, ServiceStatus
from sextant.runtime.db_manager_access import DBManagerAccess
from sextant.runtime.kubernetes import render_service_objects
from tests.integration.kubelet import Kubelet

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "deploy" / "kubernetes" / "algorithm-registry.yaml"
EXAMPLE = ROOT / "examples" / "v1beta1" / "medianstop.yaml"  # random search, medianstop
NAMESPACE = "my-experiments"
ACCESS = DBManagerAccess(token_secret="sextant-token", ca_secret="sextant-db-manager-ca")
METRIC = "Validation-accuracy"


def algorithm_pod(registry: Registry, experiment: Experiment) -> dict:
    """The Deployment's pod spec, from the registry's entries as the suggestion controller takes
    them; the services bind free ports (the entries' ``{port}`` as 0) so tests can run side by side."""
    assert experiment.spec.algorithm is not None and experiment.spec.early_stopping is not None
    entry = registry.algorithm(experiment.spec.algorithm.algorithm_name)
    early = registry.early_stopping(experiment.spec.early_stopping.algorithm_name)
    assert entry is not None and early is not None
    spec = ServiceSpec(name=f"{experiment.metadata.name}-random", namespace=NAMESPACE, algorithm="random",
                       command=list(entry.command), image=entry.image, args=entry.container_args(0),
                       early_stopping_image=early.image, early_stopping_args=early.container_args(0))
    return render_service_objects(spec, access=ACCESS)["deployment"]["spec"]["template"]["spec"]


@contextmanager
def running(kubelet: Kubelet, container: dict, log: Path) -> Iterator[str]:
    """The container's process; yields the address it listens on."""
    with log.open("w") as stderr:
        process = kubelet.start(container, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on "), f"{container['name']}: {line!r}\n{log.read_text()}"
        yield line.split()[-1]
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def report(address: str, token: str, ca: Path, trial: str, values: list[str]) -> None:
    logs = [api_pb2.MetricLog(time_stamp=f"2026-01-01T00:00:0{i}Z", metric=api_pb2.Metric(name=METRIC, value=v))
            for i, v in enumerate(values)]
    with open_channel(address, token=token, tls_ca=str(ca)) as channel:
        api_pb2_grpc.DBManagerStub(channel).ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=logs)), timeout=30)


def trial(experiment: Experiment, name: str, condition: str) -> Trial:
    objective = experiment.spec.objective.model_dump(by_alias=True, exclude_none=True)
    return Trial.model_validate({
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"katib.kubeflow.org/experiment": "medianstop"}},
        "spec": {"objective": objective, "parameterAssignments": [{"name": "lr", "value": "0.02"}],
                 "runSpec": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                             "spec": {"template": {"spec": {"containers": [
                                 {"name": "training-container", "image": "x", "command": ["true"]}]}}}}},
        "status": {"conditions": [{"type": condition, "status": "True"}]}})


def test_medianstop_in_the_algorithm_pod_reads_the_logs_over_tls_with_the_token(tls_db_manager, tmp_path) -> None:
    db_manager, token, ca = tls_db_manager
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["namespace"] = NAMESPACE
    experiment = Experiment.model_validate(doc)
    pod = algorithm_pod(Registry.load(REGISTRY), experiment)
    suggestion_container, early_container = pod["containers"]
    assert early_container["name"] == "early-stopping"
    # The namespace's copies of the Secrets (deploy/kubernetes/README.md): the token, and only the CA.
    secrets = {("sextant-token", "token"): token, ("sextant-db-manager-ca", "ca.crt"): ca.read_text()}
    # The services bind the pod's any-address there, loopback here.
    kubelet = Kubelet(pod, tmp_path, secrets, {"0.0.0.0": "127.0.0.1"})

    # Three finished trials' logs: start_step 2 -> means of the first two values 0.2, 0.4, 0.7.
    for name, values in {"a": ["0.1", "0.3", "0.9"], "b": ["0.3", "0.5"], "c": ["0.5", "0.9", "0.95"]}.items():
        report(db_manager.address, token, ca, name, values)
    trials = [trial(experiment, n, "Succeeded") for n in "abc"] + [trial(experiment, "d", "Running")]
    store = db_manager.store(token=token, tls_ca=str(ca))
    store.create(trials[-1])
    sugg = Suggestion.model_validate({"metadata": {"name": "medianstop", "namespace": NAMESPACE},
                                      "spec": {"algorithm": doc["spec"]["algorithm"],
                                               "earlyStopping": doc["spec"]["earlyStopping"], "requests": 3}})

    with ExitStack() as stack:
        algorithm = stack.enter_context(running(kubelet, suggestion_container, tmp_path / "suggestion.log"))
        early = stack.enter_context(running(kubelet, early_container, tmp_path / "early-stopping.log"))
        state = ServiceStatus(exists=True, ready=True, address=algorithm, early_stopping_address=early)

        # The suggestion controller (deploy/kubernetes: SEXTANT_TOKEN from the same Secret).
        # No runtime: the services are already running.
        controller = SuggestionReconciler(store, None, Registry.load(REGISTRY),
                                          db_manager_address=db_manager.address, token=token)
        (rule,) = controller._early_stopping_rules(experiment, sugg, trials, state)
        assert (rule.name, float(rule.value), rule.comparison, rule.start_step) == (METRIC, pytest.approx(0.4),
                                                                                    "less", 2)
        assert controller._validate(experiment, state) is None
        invalid = experiment.model_copy(deep=True)
        invalid.spec.early_stopping.algorithm_settings[0].value = "0"
        assert controller._validate(invalid, state) == "min_trials_required must be greater than zero (>0)"

        # Its own server requires the token: a caller without it gets nothing.
        stranger = SuggestionReconciler(store, None, Registry.load(REGISTRY),
                                        db_manager_address=db_manager.address)
        with pytest.raises(SuggestionError, match="UNAUTHENTICATED"):
            stranger._early_stopping_rules(experiment, sugg, trials, state)
        assert not set_trial_early_stopped(early, "d", token=None)

        # A trial's collector (SEXTANT_TOKEN from the trial namespace's copy) stops trial d; the
        # condition goes to the DB manager's store, over TLS with the token.
        assert set_trial_early_stopped(early, "d", token=token)
    stopped = store.get("Trial", NAMESPACE, "d")
    assert stopped.status.conditions[-1].type == "EarlyStopped"
    store.close()
