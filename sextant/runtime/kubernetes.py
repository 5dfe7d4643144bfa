"""The Kubernetes Runtime: trial jobs as Kubernetes objects, algorithm services as Deployment + Service.

Trials. ``start_job`` creates the rendered trial object (``JobSpec.run_spec``) under the trial's
name: a ``batch/v1`` Job through ``BatchV1Api``, any other kind (``kubeflow.org/v1`` TFJob,
PyTorchJob, ...) through ``CustomObjectsApi``. Its status comes from Katib's success/failure
conditions (GJSON paths, see ``job_conditions.py``), which are stored as annotations on the object
so that a restarted controller evaluates the same expressions.

Metrics collection. With ``collector_sidecar`` the pod webhook adds the collector as a sidecar
(``kubernetes_sidecar``) and the command is left alone here. Otherwise (the default) the
primary container's command is wrapped, without a shell::

    python -m services.metrics_collector <JobSpec.collector as argv> -- <original command + args>

The collector runs the training command as its child, reads its output, reports the metrics
to the DB manager and exits with the child's exit code. It reaches the DB manager with the token
and CA of ``db_manager_access``: env and a read-only mount from Secrets in the trial's namespace
(``sextant.runtime.db_manager_access``). Consequences (documented for users):
the trial image must contain Sextant (``pip install sextant`` or build on the Sextant image),
and the primary container must state its ``command`` (we cannot read an image's entrypoint).
A metrics source that can never be read (a File
collector's path is a directory, say) makes the collector write ``MetricsCollectorFailed: <cause>``
as the container's termination message and exit 86; a batch Job with ``restartPolicy: Never``
gets a pod failure policy that fails it on that code at once, and the runtime reports the
failure with reason MetricsCollectorFailed and the cause (read from the trial's pods), as the
local runtime does. With no ``JobSpec.collector`` the container is left alone. The primary container
also gets ``KATIB_TRIAL_NAME`` and ``JobSpec.env``; the object and its pod templates get the
``katib.kubeflow.org/trial`` label.

Owner references. Sextant's Trials and Suggestions live in the DB manager, not in the cluster,
and Kubernetes' garbage collector deletes dependents whose owner (by uid) does not exist there.
So ``JobSpec.owner`` / ``ServiceSpec.owner`` become controller owner references only when the
runtime is created with ``owner_references=True`` (for a store backed by Katib's CRDs);
by default they are dropped and the controllers delete what they created.

Stopping. ``stop_job`` marks the object with the ``sextant.io/stopped`` annotation and sets an
active deadline of one second (``spec.activeDeadlineSeconds`` on a Job,
``spec.runPolicy.activeDeadlineSeconds`` on kubeflow.org training jobs), so Kubernetes kills
the pods and the object stays for inspection; other kinds are deleted. A stopped job reports
FAILED with reason ``Killed``. Deleting uses foreground propagation; whether to delete
(``retainRun``) is the trial controller's decision.

Algorithm services follow how Katib's suggestion controller composes them: Deployment and Service named
``<experiment>-<algorithm>``, container ``suggestion`` on 6789 ``suggestion-api`` with gRPC
readiness/liveness probes for ``manager.v1beta1.Suggestion``, optional ``early-stopping``
container on 6788 ``earlystop-api``, PVC ``<name>`` mounted at ``/opt/katib/data`` for
resumePolicy FromVolume. When the Trials are Katib's custom resources (``owner_references=True``)
a Suggestion's early-stopping container writes the EarlyStopped condition through the Kubernetes
API itself, so, as Katib does, the Suggestion also gets a ServiceAccount, Role and RoleBinding
named like the Deployment and owned by it; the pod runs as that account and the early-stopping
container gets ``SEXTANT_STORE=kubernetes`` and its namespace (``render_early_stopping_access``).
The Role grants only what that service calls (``EARLY_STOPPING_GRANTS``), all of which the
suggestion controller holds itself, so Kubernetes lets it grant them without ``escalate``/``bind``.
With the DB manager as the store, the early-stopping service talks to it instead. Either way
it reads the trials' observation logs from the DB manager, so the early-stopping container gets
the runtime's ``db_manager_access`` too (the token and CA Secrets, as a trial's collector does);
the token also makes its own server require it, which the suggestion controller and the
collectors send (they hold the same token).

Everything this runtime creates carries ``app.kubernetes.io/managed-by: sextant`` on its
metadata so that a new instance (after a controller restart) can list and delete it.
Creation is idempotent: 409 Conflict means the object already exists and is kept as it is.
That includes an algorithm Deployment Katib's controller created before Sextant replaced it
(Katib's images, no managed-by label): its early-stopping service is Katib's, which reads
observation logs in plaintext with no token, so ``service_status`` gives it
``katib_db_manager_address`` (the DB manager's read-only Katib port) as its DB manager.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sextant import job_reasons
from sextant.algorithm_registry import DEFAULT_RESOURCES
from sextant.metric_lines import COLLECTOR_FAILED_EXIT_CODE, TERMINATION_LOG_ENV
from sextant.runtime.base import (
    JobExitListener,
    JobPhase,
    JobSpec,
    JobStatus,
    MetricsReportMode,
    OwnedService,
    Runtime,
    ServiceSpec,
    ServiceStatus,
    SuggestionVolume,
)
from sextant.runtime.db_manager_access import DBManagerAccess
from sextant.runtime.job_conditions import check_condition, default_conditions, evaluate

if TYPE_CHECKING:
    import urllib3

log = logging.getLogger("sextant.runtime.kubernetes")
DEFAULT_TERMINATION_LOG = "/dev/termination-log"  # a container's terminationMessagePath default
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "sextant"
TRIAL_LABEL = "katib.kubeflow.org/trial"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
SUGGESTION_LABEL = "katib.kubeflow.org/suggestion"
DEPLOYMENT_LABEL = "katib.kubeflow.org/deployment"
ISTIO_INJECT_LABEL = "sidecar.istio.io/inject"
STOPPED_ANNOTATION = "sextant.io/stopped"
SUCCESS_ANNOTATION = "sextant.io/success-condition"
FAILURE_ANNOTATION = "sextant.io/failure-condition"

SUGGESTION_PORT = 6789
SUGGESTION_PORT_NAME = "suggestion-api"
EARLY_STOPPING_PORT = 6788
EARLY_STOPPING_PORT_NAME = "earlystop-api"
SUGGESTION_HEALTH_SERVICE = "manager.v1beta1.Suggestion"
VOLUME_NAME = "suggestion-volume"
VOLUME_MOUNT_PATH = "/opt/katib/data"
VOLUME_SIZE = "1Gi"

# Katib's init.controller.trialResources equivalent: the kinds job_status looks for when it has
# not created the object itself (e.g. after a restart). "Kind.version.group".
DEFAULT_TRIAL_RESOURCES = (
    "Job.v1.batch",
    "TFJob.v1.kubeflow.org",
    "PyTorchJob.v1.kubeflow.org",
    "XGBoostJob.v1.kubeflow.org",
    "MPIJob.v1.kubeflow.org",
)
_PRIMARY_REPLICAS = ("master", "chief", "launcher")

# Every Kubernetes API method this module calls -> (component, api group, resource, verb).
# deploy/kubernetes RBAC is checked against this table (tests/unit/test_manifests.py), and the
# table against the calls in this file. "*custom*" stands for each configured trial resource.
API_CALLS: dict[str, tuple[str, str, str, str]] = {
    "create_namespaced_job": ("trial_controller", "batch", "jobs", "create"),
    "read_namespaced_job": ("trial_controller", "batch", "jobs", "get"),
    "list_namespaced_job": ("trial_controller", "batch", "jobs", "list"),
    "list_job_for_all_namespaces": ("trial_controller", "batch", "jobs", "list"),
    "patch_namespaced_job": ("trial_controller", "batch", "jobs", "patch"),
    "delete_namespaced_job": ("trial_controller", "batch", "jobs", "delete"),
    "create_namespaced_custom_object": ("trial_controller", "*custom*", "*custom*", "create"),
    "get_namespaced_custom_object": ("trial_controller", "*custom*", "*custom*", "get"),
    "list_namespaced_custom_object": ("trial_controller", "*custom*", "*custom*", "list"),
    "list_cluster_custom_object": ("trial_controller", "*custom*", "*custom*", "list"),
    "patch_namespaced_custom_object": ("trial_controller", "*custom*", "*custom*", "patch"),
    "delete_namespaced_custom_object": ("trial_controller", "*custom*", "*custom*", "delete"),
    "list_namespaced_pod": ("trial_controller", "", "pods", "list"),
    "create_namespaced_deployment": ("suggestion_controller", "apps", "deployments", "create"),
    "read_namespaced_deployment": ("suggestion_controller", "apps", "deployments", "get"),
    "list_namespaced_deployment": ("suggestion_controller", "apps", "deployments", "list"),
    "list_deployment_for_all_namespaces": ("suggestion_controller", "apps", "deployments", "list"),
    "delete_namespaced_deployment": ("suggestion_controller", "apps", "deployments", "delete"),
    "create_namespaced_service": ("suggestion_controller", "", "services", "create"),
    "delete_namespaced_service": ("suggestion_controller", "", "services", "delete"),
    "create_namespaced_persistent_volume_claim": (
        "suggestion_controller", "", "persistentvolumeclaims", "create"),
    "delete_namespaced_persistent_volume_claim": (
        "suggestion_controller", "", "persistentvolumeclaims", "delete"),
    # Only with owner_references (Katib's CRDs as the store): deploy/kubernetes/katib-dropin.
    "create_namespaced_service_account": ("early_stopping_access", "", "serviceaccounts", "create"),
    "create_namespaced_role": ("early_stopping_access", "rbac.authorization.k8s.io", "roles", "create"),
    "create_namespaced_role_binding": (
        "early_stopping_access", "rbac.authorization.k8s.io", "rolebindings", "create"),
}

# What the early-stopping service calls on Katib's Trials (find a trial, set its EarlyStopped
# condition): the rules of the Role each Suggestion with early stopping gets.
EARLY_STOPPING_GRANTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("kubeflow.org", "trials", ("get", "list", "watch")),
    ("kubeflow.org", "trials/status", ("update",)),
)


class KubernetesRuntimeError(RuntimeError):
    """An unexpected answer from the Kubernetes API (the message names the object and the status)."""


@dataclass(frozen=True)
class TrialResource:
    kind: str
    version: str
    group: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def is_batch_job(self) -> bool:
        return self.group == "batch" and self.kind == "Job"

    @classmethod
    def parse(cls, text: str, plurals: dict[str, str] | None = None) -> TrialResource:
        """From Katib's ``Kind.version.group`` notation (e.g. ``TFJob.v1.kubeflow.org``)."""
        parts = text.split(".", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"trial resource {text!r}: expected Kind.version.group, e.g. Job.v1.batch")
        kind, version, group = parts
        return cls(kind, version, group, plural_of(kind, plurals))

    @classmethod
    def of(cls, api_version: str, kind: str, plurals: dict[str, str] | None = None) -> TrialResource:
        group, _, version = api_version.rpartition("/")
        return cls(kind, version, group, plural_of(kind, plurals))


def plural_of(kind: str, overrides: dict[str, str] | None = None) -> str:
    """The resource (plural) name of a kind: an explicit override, else English rules, as
    Kubernetes' own defaults do for CRDs (``TFJob`` -> ``tfjobs``, ``Policy`` -> ``policies``)."""
    if overrides and kind in overrides:
        return overrides[kind]
    lower = kind.lower()
    if re.search(r"(s|x|z|ch|sh)$", lower):
        return lower + "es"
    if re.search(r"[^aeiou]y$", lower):
        return lower[:-1] + "ies"
    return lower + "s"


def api_client_from_config(kubeconfig: str | None = None, context: str | None = None,
                           in_cluster: bool | None = None) -> client.ApiClient:
    """An ApiClient from the in-cluster service account (inside a pod) or a kube-config file."""
    if in_cluster is None:
        in_cluster = not kubeconfig and "KUBERNETES_SERVICE_HOST" in os.environ
    if in_cluster:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # kubernetes.config is not annotated
        return client.ApiClient(configuration)
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]  # as above
        config_file=kubeconfig, context=context)
    return api


def _json_body(response: object) -> dict[str, Any]:
    """The JSON object of a reply read with ``_preload_content=False``: the client's stubs name the
    model, but without preloading the call returns the raw urllib3 response."""
    return cast(dict[str, Any], json.loads(cast("urllib3.BaseHTTPResponse", response).data))


def _owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("apiVersion", "kind", "name", "uid") if not owner.get(k)]
    if missing:
        raise ValueError(f"owner reference: missing {', '.join(missing)}")
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["name"],
            "uid": owner["uid"], "controller": True, "blockOwnerDeletion": True}


def _managed(labels: dict[str, str]) -> bool:
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cast(dict[str, Any], cond)
    return None


# --------------------------------------------------------------------------------------------
# Trial object rendering (pure functions: unit-testable without a server)
# --------------------------------------------------------------------------------------------

def _pod_templates(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every pod template in an object: dicts under a ``template`` key with ``spec.containers``."""
    found: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "template" and isinstance(value, dict) \
                    and isinstance((value.get("spec") or {}).get("containers"), list):
                found.append((path, value))
            else:
                found.extend(_pod_templates(value, path + (str(key),)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_pod_templates(value, path + (str(i),)))
    return found


def primary_pod_template(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod template whose primary container gets the collector: the only one, else the
    Master/Chief/Launcher replica (Katib's primaryPodLabels default job-role=master)."""
    templates = _pod_templates(obj.get("spec") or {})
    if not templates:
        raise ValueError(f"trialSpec {obj.get('kind')}: no pod template with spec.containers found")
    if len(templates) == 1:
        return templates[0][1]
    for path, template in templates:
        if any(part.lower() in _PRIMARY_REPLICAS for part in path):
            return template
    return templates[0][1]


def attach_collector(obj: dict[str, Any], spec: JobSpec, python: str = "python",
                     access: DBManagerAccess = DBManagerAccess()) -> None:
    """Adds the trial label, env and the wrapped collector command to the primary container;
    the collector reaches the DB manager with ``access`` (token, CA)."""
    for _, template in _pod_templates(obj.get("spec") or {}):
        meta = template.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **spec.labels, TRIAL_LABEL: spec.name}
    template = primary_pod_template(obj)
    containers = template["spec"]["containers"]
    if spec.primary_container_name:
        matching = [c for c in containers if c.get("name") == spec.primary_container_name]
        if not matching:
            names = ", ".join(str(c.get("name")) for c in containers)
            raise ValueError(f"primaryContainerName {spec.primary_container_name!r} is not a container of "
                             f"the primary pod (containers: {names})")
        container = matching[0]
    elif len(containers) == 1:
        container = containers[0]
    else:
        raise ValueError("primaryContainerName must be set when the primary pod has several containers")
    env = [e for e in container.get("env") or [] if e.get("name") not in spec.env
           and e.get("name") != "KATIB_TRIAL_NAME"]
    env.append({"name": "KATIB_TRIAL_NAME", "value": spec.name})
    env.extend({"name": k, "value": v} for k, v in spec.env.items())
    container["env"] = env
    if spec.suggestion_volume is not None:
        _mount_suggestion_volume(template, container, spec.suggestion_volume)
    if spec.collector is None:
        return  # no collector: the training code reports its own metrics
    original = list(container.get("command") or []) + list(container.get("args") or [])
    if not container.get("command"):
        raise ValueError(f"container {container.get('name')!r} has no command: the Kubernetes runtime wraps "
                         "the command with the metrics collector and cannot read the image entrypoint; "
                         "set command in the trial template")
    container["command"] = [python, "-m", "services.metrics_collector", *spec.collector.to_argv(), "--", *original]
    container.pop("args", None)
    # A metrics source that can never be read ends the trial with the cause: the collector
    # writes it as the container's termination message and exits with its own code.
    container["env"].append({"name": TERMINATION_LOG_ENV,
                             "value": container.get("terminationMessagePath") or DEFAULT_TERMINATION_LOG})
    access.apply(template["spec"], container)
    _fail_job_on_collector_failure(obj, template, container=container["name"])


def _fail_job_on_collector_failure(obj: dict[str, Any], template: dict[str, Any], container: str | None) -> None:
    """Retrying a pod whose metrics source can never be read cannot help: a batch Job fails at
    once on the collector's exit code (pod failure policies need restartPolicy Never). The
    rule names the wrapped container; a sidecar is added to the pod later, so without a name
    the rule covers every container."""
    if obj.get("kind") != "Job" or not str(obj.get("apiVersion", "")).startswith("batch/") \
            or template["spec"].get("restartPolicy") != "Never":
        return
    codes: dict[str, Any] = {"operator": "In", "values": [COLLECTOR_FAILED_EXIT_CODE]}
    if container:
        codes = {"containerName": container, **codes}
    policy = obj["spec"].setdefault("podFailurePolicy", {})
    policy["rules"] = [{"action": "FailJob", "onExitCodes": codes}, *(policy.get("rules") or [])]


def _mount_suggestion_volume(template: dict[str, Any], container: dict[str, Any], volume: SuggestionVolume) -> None:
    """The service's PVC (named as the service) at ``mount_path``, sub path ``<experiment>/<trial>``."""
    mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != VOLUME_NAME]
    mounts.append({"name": VOLUME_NAME, "mountPath": volume.mount_path, "subPath": volume.sub_path})
    container["volumeMounts"] = mounts
    pod_spec = template["spec"]
    volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") != VOLUME_NAME]
    volumes.append({"name": VOLUME_NAME, "persistentVolumeClaim": {"claimName": volume.service}})
    pod_spec["volumes"] = volumes


def render_trial_object(spec: JobSpec, python: str = "python", sidecar: bool = False,
                        access: DBManagerAccess = DBManagerAccess()) -> dict[str, Any]:
    """The object to create for a trial: name, namespace, labels, owner, conditions, collector.
    ``sidecar``: the pod webhook adds the collector (sextant.runtime.kubernetes_sidecar), so the
    command is not wrapped here; a batch Job still fails at once on the collector's exit code.
    ``access``: how the wrapped collector reaches the DB manager (the sidecar has its own)."""
    obj = copy.deepcopy(spec.run_spec)
    if not obj.get("apiVersion") or not obj.get("kind"):
        raise ValueError("runSpec: apiVersion and kind are required")
    success, failure = spec.success_condition, spec.failure_condition
    if not success or not failure:
        defaults = default_conditions(obj["kind"])
        if defaults is None:
            raise ValueError(f"trialTemplate: successCondition and failureCondition are required for "
                             f"kind {obj['kind']} (Sextant knows defaults for Job and Kubeflow training jobs)")
        success, failure = success or defaults[0], failure or defaults[1]
    check_condition(success)
    check_condition(failure)
    meta = obj.setdefault("metadata", {})
    meta["name"] = spec.name
    meta["namespace"] = spec.namespace
    meta["labels"] = {**(meta.get("labels") or {}), **spec.labels, TRIAL_LABEL: spec.name,
                      MANAGED_BY_LABEL: MANAGED_BY}
    meta["annotations"] = {**(meta.get("annotations") or {}), SUCCESS_ANNOTATION: success,
                           FAILURE_ANNOTATION: failure}
    if spec.owner:
        meta["ownerReferences"] = [_owner_reference(spec.owner)]
    if sidecar and spec.collector is not None:
        attach_collector(obj, replace(spec, collector=None), python)
        _fail_job_on_collector_failure(obj, primary_pod_template(obj), container=None)
        return obj
    attach_collector(obj, spec, python, access)
    return obj


class _Times(TypedDict):
    start_time: str | None
    completion_time: str | None


def job_status_of(obj: dict[str, Any]) -> JobStatus:
    """Katib's rule on an existing trial object: failure first, then success, else running."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    status = obj.get("status") or {}
    times: _Times = {"start_time": status.get("startTime"), "completion_time": status.get("completionTime")}
    defaults = default_conditions(obj.get("kind", "")) or (None, None)
    success = annotations.get(SUCCESS_ANNOTATION) or defaults[0]
    failure = annotations.get(FAILURE_ANNOTATION) or defaults[1]
    stopped = annotations.get(STOPPED_ANNOTATION) == "true"
    matched = evaluate(obj, failure) if failure else None
    if matched is not None:
        if stopped:
            return JobStatus(JobPhase.FAILED, job_reasons.KILLED, f"stopped by Sextant. {matched.message}".strip(), **times)
        return JobStatus(JobPhase.FAILED, matched.reason, matched.message, **times)
    matched = evaluate(obj, success) if success else None
    if matched is not None:
        return JobStatus(JobPhase.SUCCEEDED, matched.reason, matched.message, **times)
    if stopped:
        return JobStatus(JobPhase.FAILED, job_reasons.KILLED, "stopped by Sextant", **times)
    if obj.get("kind") == "Job" and not status.get("startTime") and not status.get("active"):
        return JobStatus(JobPhase.PENDING, **times)
    return JobStatus(JobPhase.RUNNING, **times)


# --------------------------------------------------------------------------------------------
# Algorithm service rendering
# --------------------------------------------------------------------------------------------

def _experiment_of(spec: ServiceSpec) -> str:
    if spec.labels.get(EXPERIMENT_LABEL):
        return spec.labels[EXPERIMENT_LABEL]
    suffix = f"-{spec.algorithm}"
    return spec.name[: -len(suffix)] if spec.name.endswith(suffix) and len(spec.name) > len(suffix) else spec.name


def pod_labels(spec: ServiceSpec) -> dict[str, str]:
    if spec.shared:  # no one experiment's: owned_services reports it with suggestion ""
        return {**spec.labels, DEPLOYMENT_LABEL: spec.name, ISTIO_INJECT_LABEL: "false"}
    experiment = _experiment_of(spec)
    return {**spec.labels, DEPLOYMENT_LABEL: spec.name, EXPERIMENT_LABEL: experiment,
            SUGGESTION_LABEL: experiment, ISTIO_INJECT_LABEL: "false"}


def _has_early_stopping(spec: ServiceSpec) -> bool:
    return bool(spec.early_stopping_command or spec.early_stopping_image or spec.early_stopping_args)


def _grpc_probe(**timing: int) -> dict[str, Any]:
    return {"grpc": {"port": SUGGESTION_PORT, "service": SUGGESTION_HEALTH_SERVICE}, **timing}


def render_early_stopping_access(spec: ServiceSpec) -> dict[str, dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding letting one Suggestion's early-stopping container update
    its Trials, named like the Deployment and owned by the Suggestion (deleted with it)."""
    if not spec.owner:
        raise ValueError(f"service {spec.name!r}: early-stopping access needs the Suggestion as owner")
    meta: dict[str, Any] = {
        "name": spec.name, "namespace": spec.namespace,
        "labels": {**spec.labels, DEPLOYMENT_LABEL: spec.name, MANAGED_BY_LABEL: MANAGED_BY},
        "ownerReferences": [_owner_reference(spec.owner)],
    }
    rules = [{"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}
             for group, resource, verbs in EARLY_STOPPING_GRANTS]
    return {
        "serviceaccount": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": copy.deepcopy(meta)},
        "role": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": copy.deepcopy(meta), "rules": rules},
        "rolebinding": {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": copy.deepcopy(meta),
            "subjects": [{"kind": "ServiceAccount", "name": spec.name, "namespace": spec.namespace}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": spec.name},
        },
    }


def render_service_objects(spec: ServiceSpec, *, early_stopping_store: bool = False,
                           access: DBManagerAccess = DBManagerAccess()) -> dict[str, dict[str, Any]]:
    """Deployment, Service (and PVC for FromVolume) for one algorithm service, as Katib names them.
    ``early_stopping_store``: the Trials are Katib's custom resources, so an early-stopping
    container reaches them through the Kubernetes API with its own account (and its RBAC objects
    are added). ``access``: how an early-stopping container reaches the DB manager for the
    observation logs (token, CA); the suggestion container never talks to it."""
    if not spec.image:
        raise ValueError(f"algorithm {spec.algorithm!r}: no image in the algorithm registry "
                         "(required by the Kubernetes runtime)")
    labels = pod_labels(spec)
    meta_labels = {**spec.labels, DEPLOYMENT_LABEL: spec.name, MANAGED_BY_LABEL: MANAGED_BY}
    meta: dict[str, Any] = {"name": spec.name, "namespace": spec.namespace, "labels": meta_labels}
    if spec.owner:
        meta["ownerReferences"] = [_owner_reference(spec.owner)]
    env = [{"name": k, "value": v} for k, v in spec.env.items()]
    suggestion: dict[str, Any] = {
        "name": "suggestion",
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "ports": [{"containerPort": SUGGESTION_PORT, "name": SUGGESTION_PORT_NAME}],
        "resources": copy.deepcopy(spec.resources or DEFAULT_RESOURCES),
        "readinessProbe": _grpc_probe(initialDelaySeconds=10, periodSeconds=10),
        "livenessProbe": _grpc_probe(initialDelaySeconds=10, periodSeconds=120, failureThreshold=12),
    }
    if spec.args:
        suggestion["args"] = list(spec.args)
    pod_spec: dict[str, Any] = {"containers": [suggestion]}
    objects: dict[str, dict[str, Any]] = {}
    if spec.persistent:
        env.append({"name": "SEXTANT_STATE_DIR", "value": VOLUME_MOUNT_PATH})
        suggestion["volumeMounts"] = [{"name": VOLUME_NAME, "mountPath": VOLUME_MOUNT_PATH}]
        pod_spec["volumes"] = [{"name": VOLUME_NAME, "persistentVolumeClaim": {"claimName": spec.name}}]
        objects["pvc"] = {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": copy.deepcopy(meta),
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": VOLUME_SIZE}}},
        }
    if env:
        suggestion["env"] = env
    ports = [{"name": SUGGESTION_PORT_NAME, "port": SUGGESTION_PORT, "targetPort": SUGGESTION_PORT}]
    if _has_early_stopping(spec):
        early: dict[str, Any] = {
            "name": "early-stopping",
            "image": spec.early_stopping_image or spec.image,
            "imagePullPolicy": spec.image_pull_policy,
            "ports": [{"containerPort": EARLY_STOPPING_PORT, "name": EARLY_STOPPING_PORT_NAME}],
            "resources": copy.deepcopy(DEFAULT_RESOURCES),
        }
        if spec.early_stopping_args:
            early["args"] = list(spec.early_stopping_args)
        early_env = copy.deepcopy(env)
        if early_stopping_store and spec.owner:
            # Last, so they win over a registry entry's env; the service reads SEXTANT_* as its flags.
            early_env += [{"name": "SEXTANT_STORE", "value": "kubernetes"},
                          {"name": "SEXTANT_NAMESPACE", "value": spec.namespace}]
            pod_spec["serviceAccountName"] = spec.name
            objects.update(render_early_stopping_access(spec))
        if early_env:
            early["env"] = early_env
        access.apply(pod_spec, early)
        pod_spec["containers"].append(early)
        ports.append({"name": EARLY_STOPPING_PORT_NAME, "port": EARLY_STOPPING_PORT,
                      "targetPort": EARLY_STOPPING_PORT})
    objects["service"] = {
        "apiVersion": "v1", "kind": "Service", "metadata": copy.deepcopy(meta),
        "spec": {"type": "ClusterIP", "selector": dict(labels), "ports": ports},
    }
    objects["deployment"] = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": copy.deepcopy(meta),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }
    return objects


# --------------------------------------------------------------------------------------------
# The runtime
# --------------------------------------------------------------------------------------------

class KubernetesRuntime(Runtime):
    def __init__(self, api_client: client.ApiClient | None = None, *, kubeconfig: str | None = None,
                 context: str | None = None, in_cluster: bool | None = None,
                 trial_resources: list[str] | tuple[str, ...] = DEFAULT_TRIAL_RESOURCES,
                 plurals: dict[str, str] | None = None, collector_python: str = "python",
                 collector_sidecar: bool = False, db_manager_access: DBManagerAccess = DBManagerAccess(),
                 owner_references: bool = False, katib_db_manager_address: str | None = None):
        self.api = api_client or api_client_from_config(kubeconfig, context, in_cluster)
        self._batch = client.BatchV1Api(self.api)
        self._custom = client.CustomObjectsApi(self.api)
        self._apps = client.AppsV1Api(self.api)
        self._core = client.CoreV1Api(self.api)
        self._rbac = client.RbacAuthorizationV1Api(self.api)
        self._plurals = dict(plurals or {})
        self.trial_resources = [TrialResource.parse(r, self._plurals) for r in trial_resources]
        self.collector_python = collector_python
        self.collector_sidecar = collector_sidecar  # the pod webhook adds the collector
        # Token and CA Secrets of the containers it creates that talk to the DB manager: the
        # wrapped collector (trial jobs) and the early-stopping container (algorithm services).
        self.db_manager_access = db_manager_access
        self.owner_references = owner_references
        # Where the early-stopping service of an algorithm Deployment Katib created (one running
        # at the switch, kept by ensure_service) reads observation logs: Katib's medianstop dials
        # it in plaintext with no token, so not Sextant's own DB manager address. None: unchanged.
        self.katib_db_manager_address = katib_db_manager_address
        self._kinds: dict[tuple[str, str], TrialResource] = {}  # (namespace, name) -> kind we created

    # --- trial jobs ----------------------------------------------------------------------
    def start_job(self, spec: JobSpec) -> JobStatus:
        if not self.owner_references:
            spec = replace(spec, owner=None)
        obj = render_trial_object(spec, self.collector_python, sidecar=self.collector_sidecar,
                                  access=self.db_manager_access)
        resource = TrialResource.of(obj["apiVersion"], obj["kind"], self._plurals)
        self._kinds[(spec.namespace, spec.name)] = resource
        try:
            if resource.is_batch_job:
                # The client serialises a plain dict body as it is; its stubs only name the model.
                self._batch.create_namespaced_job(spec.namespace, obj,  # type: ignore[arg-type]
                                                  _preload_content=False)
            else:
                self._custom.create_namespaced_custom_object(
                    resource.group, resource.version, spec.namespace, resource.plural, obj)
        except ApiException as err:
            if err.status != 409:  # 409: created before (idempotent start)
                raise self._error(err, "creating", resource.kind, spec.namespace, spec.name) from None
        return self.job_status(spec.namespace, spec.name)

    def _read_trial_object(self, namespace: str, name: str) -> tuple[TrialResource, dict[str, Any]] | None:
        known = self._kinds.get((namespace, name))
        candidates = [known] if known else self.trial_resources
        for resource in candidates:
            try:
                if resource.is_batch_job:
                    response = self._batch.read_namespaced_job(name, namespace, _preload_content=False)
                    obj = _json_body(response)
                else:
                    obj = cast(dict[str, Any], self._custom.get_namespaced_custom_object(
                        resource.group, resource.version, namespace, resource.plural, name))
            except ApiException as err:
                if err.status == 404:  # no such object, or this kind is not installed
                    continue
                raise self._error(err, "reading", resource.kind, namespace, name) from None
            self._kinds[(namespace, name)] = resource
            return resource, obj
        return None

    def job_status(self, namespace: str, name: str) -> JobStatus:
        found = self._read_trial_object(namespace, name)
        if found is None:
            self._kinds.pop((namespace, name), None)
            return JobStatus(JobPhase.NOT_FOUND)
        status = job_status_of(found[1])
        if status.phase == JobPhase.FAILED and status.reason != job_reasons.KILLED:
            cause = self._collector_failure(namespace, name)
            if cause is not None:
                return replace(status, reason=job_reasons.COLLECTOR_FAILED, message=cause)
        return status

    def _collector_failure(self, namespace: str, name: str) -> str | None:
        """The cause the metrics collector left in a terminated container of the trial's pods
        (its termination message), if it failed because the metrics can never be read."""
        try:
            pods = _json_body(self._core.list_namespaced_pod(
                namespace, label_selector=f"{TRIAL_LABEL}={name}", _preload_content=False)).get("items") or []
        except ApiException as err:
            log.warning("cannot read the trial's pods", extra={"trial": name, "status": err.status})
            return None
        prefix = f"{job_reasons.COLLECTOR_FAILED}: "
        for pod in pods:
            if ((pod.get("metadata") or {}).get("labels") or {}).get(TRIAL_LABEL) != name:
                continue  # the selector is an optimisation, the label is the rule
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                for state in (container.get("state"), container.get("lastState")):
                    message = str(((state or {}).get("terminated") or {}).get("message") or "")
                    if message.startswith(prefix):
                        return message[len(prefix):].strip()
        return None

    def stop_job(self, namespace: str, name: str) -> None:
        found = self._read_trial_object(namespace, name)
        if found is None:
            return
        resource, _ = found
        mark: dict[str, Any] = {"metadata": {"annotations": {STOPPED_ANNOTATION: "true"}}}
        try:
            if resource.is_batch_job:
                mark["spec"] = {"activeDeadlineSeconds": 1}
                self._batch.patch_namespaced_job(name, namespace, mark, _preload_content=False)
            else:
                if resource.group == "kubeflow.org":
                    mark["spec"] = {"runPolicy": {"activeDeadlineSeconds": 1}}
                self._custom.patch_namespaced_custom_object(
                    resource.group, resource.version, namespace, resource.plural, name, mark)
                if resource.group != "kubeflow.org":
                    self.delete_job(namespace, name)
        except ApiException as err:
            if err.status != 404:
                raise self._error(err, "stopping", resource.kind, namespace, name) from None

    def delete_job(self, namespace: str, name: str) -> None:
        found = self._read_trial_object(namespace, name)
        self._kinds.pop((namespace, name), None)
        if found is None:
            return
        resource, _ = found
        try:
            if resource.is_batch_job:
                self._batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground",
                                                _preload_content=False)
            else:
                self._custom.delete_namespaced_custom_object(
                    resource.group, resource.version, namespace, resource.plural, name,
                    propagation_policy="Foreground")
        except ApiException as err:
            if err.status != 404:
                raise self._error(err, "deleting", resource.kind, namespace, name) from None

    def retire_job(self, namespace: str, name: str) -> None:
        # Nothing is kept on this machine: the output lives in the pods, which go with the job.
        self.delete_job(namespace, name)

    def job_log_path(self, namespace: str, name: str) -> str | None:
        return None  # logs live in the pods (kubectl logs), not on this machine

    @property
    def metrics_report_mode(self) -> MetricsReportMode:
        # The collector runs in the trial's pod, whose files the trial controller cannot read.
        return "direct"

    def job_spool_dir(self, namespace: str, name: str) -> Path | None:
        return None

    def on_job_exit(self, listener: JobExitListener) -> None:
        # Job ends are learnt by polling the trial objects; nothing here calls listeners.
        return None

    def job_exit_notified(self, namespace: str, name: str) -> bool:
        return False

    def list_jobs(self, namespace: str) -> list[str]:
        """Names of the trial objects Sextant created in ``namespace`` (any configured kind)."""
        return sorted({name for _, name in self._trial_objects(namespace)})

    def job_keys(self) -> list[tuple[str, str]]:
        """(namespace, name) of the trial objects Sextant created, in every namespace."""
        return sorted(set(self._trial_objects(None)))

    def _trial_objects(self, namespace: str | None) -> list[tuple[str, str]]:
        """(namespace, name) of Sextant's trial objects in ``namespace`` (None: all namespaces)."""
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{TRIAL_LABEL}"
        found: list[tuple[str, str]] = []
        for resource in self.trial_resources:
            try:
                if resource.is_batch_job:
                    response = self._batch.list_namespaced_job(namespace, label_selector=selector,
                                                               _preload_content=False) if namespace is not None \
                        else self._batch.list_job_for_all_namespaces(label_selector=selector,
                                                                     _preload_content=False)
                    items = _json_body(response).get("items") or []
                elif namespace is not None:
                    items = cast(dict[str, Any], self._custom.list_namespaced_custom_object(
                        resource.group, resource.version, namespace, resource.plural,
                        label_selector=selector)).get("items") or []
                else:
                    items = cast(dict[str, Any], self._custom.list_cluster_custom_object(
                        resource.group, resource.version, resource.plural,
                        label_selector=selector)).get("items") or []
            except ApiException as err:
                if err.status == 404:
                    continue
                raise self._error(err, "listing", resource.kind, namespace or "(all)", "*") from None
            # Filter again here: the selector is a server-side optimisation, the labels are the rule.
            found.extend((i["metadata"].get("namespace", namespace), i["metadata"]["name"]) for i in items
                         if _managed(i["metadata"].get("labels") or {})
                         and TRIAL_LABEL in (i["metadata"].get("labels") or {}))
        return found

    # --- algorithm services --------------------------------------------------------------
    def ensure_service(self, spec: ServiceSpec) -> ServiceStatus:
        if not self.owner_references:
            spec = replace(spec, owner=None)
        objects = render_service_objects(spec, early_stopping_store=self.owner_references,
                                         access=self.db_manager_access)
        ns = spec.namespace
        calls: list[tuple[str, Callable[..., object], str]] = [
            # The account before the pod that runs as it.
            ("serviceaccount", self._core.create_namespaced_service_account, "ServiceAccount"),
            ("role", self._rbac.create_namespaced_role, "Role"),
            ("rolebinding", self._rbac.create_namespaced_role_binding, "RoleBinding"),
            ("pvc", self._core.create_namespaced_persistent_volume_claim, "PersistentVolumeClaim"),
            ("service", self._core.create_namespaced_service, "Service"),
            ("deployment", self._apps.create_namespaced_deployment, "Deployment"),
        ]
        for key, create, kind in calls:
            if key not in objects:
                continue
            try:
                create(ns, objects[key], _preload_content=False)
            except ApiException as err:
                if err.status != 409:  # existing objects are kept as they are (as Katib does)
                    raise self._error(err, "creating", kind, ns, spec.name) from None
        return self.service_status(ns, spec.name)

    def service_status(self, namespace: str, name: str) -> ServiceStatus:
        try:
            response = self._apps.read_namespaced_deployment(name, namespace, _preload_content=False)
        except ApiException as err:
            if err.status == 404:
                return ServiceStatus(exists=False, ready=False, message="Deployment not found")
            raise self._error(err, "reading", "Deployment", namespace, name) from None
        deployment = _json_body(response)
        available = _condition(deployment, "Available")
        ready = bool(available and available.get("status") == "True")
        containers = deployment["spec"]["template"]["spec"].get("containers") or []
        has_early = any(c.get("name") == "early-stopping" for c in containers)
        message = "Deployment is available" if ready else \
            ((available or {}).get("message") or "Deployment is not available yet")
        ours = _managed(deployment["metadata"].get("labels") or {})
        return ServiceStatus(
            exists=True, ready=ready, address=f"{name}.{namespace}:{SUGGESTION_PORT}",
            early_stopping_address=f"{name}.{namespace}:{EARLY_STOPPING_PORT}" if has_early else None,
            message=message, db_manager_address=None if ours else self.katib_db_manager_address)

    def delete_service(self, namespace: str, name: str, *, keep_state: bool = False) -> None:
        deletions: list[tuple[str, Callable[[], object]]] = [
            ("Deployment", lambda: self._apps.delete_namespaced_deployment(
                name, namespace, propagation_policy="Foreground", _preload_content=False)),
            ("Service", lambda: self._core.delete_namespaced_service(name, namespace, _preload_content=False)),
        ]
        if not keep_state:
            deletions.append(("PersistentVolumeClaim", lambda: self._core.delete_namespaced_persistent_volume_claim(
                name, namespace, _preload_content=False)))
        for kind, delete in deletions:
            try:
                delete()
            except ApiException as err:
                if err.status != 404:
                    raise self._error(err, "deleting", kind, namespace, name) from None

    def list_services(self, namespace: str) -> list[str]:
        """Names of the algorithm services Sextant created in ``namespace`` (by their Deployments)."""
        return sorted(d["metadata"]["name"] for d in self._deployments(namespace))

    def owned_services(self) -> list[OwnedService]:
        out = []
        for d in self._deployments(None):
            meta = d["metadata"]
            pod_meta = ((d.get("spec") or {}).get("template") or {}).get("metadata") or {}
            # the pod template carries the Suggestion's name (pod_labels), as Katib's does
            out.append(OwnedService(meta["namespace"], meta["name"],
                                    (pod_meta.get("labels") or {}).get(SUGGESTION_LABEL, "")))
        return sorted(out, key=lambda o: (o.namespace, o.name))

    def _deployments(self, namespace: str | None) -> list[dict[str, Any]]:
        """Sextant's algorithm Deployments in ``namespace`` (None: all namespaces)."""
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY},{DEPLOYMENT_LABEL}"
        try:
            response = self._apps.list_namespaced_deployment(namespace, label_selector=selector,
                                                             _preload_content=False) if namespace is not None \
                else self._apps.list_deployment_for_all_namespaces(label_selector=selector,
                                                                   _preload_content=False)
        except ApiException as err:
            raise self._error(err, "listing", "Deployment", namespace or "(all)", "*") from None
        items = _json_body(response).get("items") or []
        return [i for i in items if _managed(i["metadata"].get("labels") or {})
                and DEPLOYMENT_LABEL in (i["metadata"].get("labels") or {})]

    @staticmethod
    def _error(err: ApiException, verb: str, kind: str, namespace: str, name: str) -> KubernetesRuntimeError:
        detail = err.reason or ""
        try:
            detail = json.loads(err.body or "{}").get("message") or detail
        except (ValueError, AttributeError):
            pass
        return KubernetesRuntimeError(f"{verb} {kind} {namespace}/{name}: HTTP {err.status}: {detail}")
