"""AdmissionReview (admission.k8s.io/v1) answers for Experiments: the mutating webhook returns
Sextant's defaults as a JSON patch, the validating webhook allows or denies with every error
``sextant validate`` reports for the same document.

A document Sextant cannot default (it is invalid) is let through the mutating webhook unchanged:
the validating webhook, which the API server calls after it, denies it with the reasons.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

import jsonpatch

from services.trial_controller.collector_for_trial import collector_settings
from sextant.algorithm_registry import Registry
from sextant.resources import admit_experiment
from sextant.resources.models import Experiment, Trial, to_doc
from sextant.runtime.kubernetes_sidecar import SidecarSettings, inject, is_primary_pod
from sextant.store.interface import Invalid

Doc = dict[str, Any]
API_VERSION = "admission.k8s.io/v1"


def _answer(review: Doc, response: Doc) -> Doc:
    request = review.get("request") or {}
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview",
            "response": {"uid": request.get("uid", ""), **response}}


def _old(request: Doc) -> Experiment | None:
    """The stored experiment of an UPDATE (only the trial counts may change), else None."""
    old = request.get("oldObject")
    if request.get("operation") != "UPDATE" or not isinstance(old, dict):
        return None
    try:
        return admit_experiment(old)
    except Invalid:
        return None  # stored before a rule tightened: judge the update on its own


def _admitted(request: Doc, registry: Registry | None) -> Experiment:
    obj = request.get("object")
    if not isinstance(obj, dict):
        raise Invalid(["object: the request carries no Experiment"])
    return admit_experiment(copy.deepcopy(obj), old=_old(request), registry=registry)


def allow(review: Doc) -> Doc:
    return _answer(review, {"allowed": True})


def mutate(review: Doc, registry: Registry | None = None) -> Doc:
    request = review.get("request") or {}
    try:
        admitted = _admitted(request, registry)
    except Invalid:
        return _answer(review, {"allowed": True})
    obj = request["object"]
    defaulted = {**obj, "spec": to_doc(admitted)["spec"]}
    patch = jsonpatch.make_patch(obj, defaulted).patch
    if not patch:
        return _answer(review, {"allowed": True})
    return _answer(review, {"allowed": True, "patchType": "JSONPatch",
                            "patch": base64.b64encode(jsonpatch.JsonPatch(patch).to_string().encode()).decode()})


# The namespace label that turns the collector sidecar on for a namespace's pods (Katib's).
INJECTION_LABEL, INJECTION_ENABLED = "katib.kubeflow.org/metrics-collector-injection", "enabled"
NamespaceLabels = Callable[[str], dict[str, str]]


def validate(review: Doc, registry: Registry | None = None,
             namespace_labels: NamespaceLabels | None = None) -> Doc:
    """``namespace_labels`` (given when trials collect with the sidecar): an experiment in a
    namespace without the injection label is refused, as Katib refuses it, since its trials'
    pods would get no collector and end without metrics."""
    request = review.get("request") or {}
    if request.get("operation") == "DELETE":
        return _answer(review, {"allowed": True})
    if namespace_labels is not None:
        refused = _uninjected_namespace(request, namespace_labels)
        if refused is not None:
            return _answer(review, {"allowed": False, "status": refused})
    try:
        _admitted(request, registry)
    except Invalid as err:
        name = ((request.get("object") or {}).get("metadata") or {}).get("name", "")
        return _answer(review, {"allowed": False, "status": {
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": f'Experiment "{name}" is invalid: ' + "; ".join(err.errors),
            "details": {"name": name, "group": "kubeflow.org", "kind": "experiments",
                        "causes": [_cause(e) for e in err.errors]}}})
    return _answer(review, {"allowed": True})


def _uninjected_namespace(request: Doc, namespace_labels: NamespaceLabels) -> Doc | None:
    """Katib's answer (400, its message) when the namespace lacks the injection label; a 500
    when the namespace cannot be read (the API server then applies the failure policy)."""
    namespace = request.get("namespace") or ""
    try:
        labels = namespace_labels(namespace)
    except Exception as err:  # noqa: BLE001 - any lookup failure is the webhook's own error
        return {"status": "Failure", "code": 500, "message": f"cannot read namespace {namespace!r}: {err}"}
    if labels.get(INJECTION_LABEL) == INJECTION_ENABLED:
        return None
    name = ((request.get("object") or {}).get("metadata") or {}).get("name", "")
    return {"status": "Failure", "code": 400,
            "message": f'Cannot create the Experiment "{name}" in namespace "{namespace}": the namespace '
                       f'lacks label "{INJECTION_LABEL}: {INJECTION_ENABLED}"'}


def _cause(error: str) -> Doc:
    field, sep, message = error.partition(": ")
    if not sep or " " in field:
        return {"reason": "FieldValueInvalid", "message": error}
    return {"reason": "FieldValueInvalid", "field": field, "message": message}


TrialLookup = Callable[[str, str], Trial | None]


def mutate_pod(review: Doc, lookup: TrialLookup, settings: SidecarSettings) -> Doc:
    """Katib's pod webhook: a trial's primary pod gets the metrics collector as a sidecar.

    The trial is the pod's controller owner's name (Katib names a trial's Job, TFJob, ... after
    the trial) in the pod's namespace; a pod that belongs to no Trial is left alone. A trial pod
    that cannot be collected (no primary container, no command) is refused with the reason: run
    unchanged, the trial would lose its metrics."""
    request = review.get("request") or {}
    pod = request.get("object")
    if request.get("operation") != "CREATE" or not isinstance(pod, dict):
        return _answer(review, {"allowed": True})
    meta = pod.get("metadata") or {}
    namespace = request.get("namespace") or meta.get("namespace") or "default"
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    trial = lookup(namespace, owner["name"]) if owner and owner.get("name") else None
    if trial is None or not is_primary_pod(pod, trial.spec.primary_pod_labels):
        return _answer(review, {"allowed": True})
    try:
        spec = collector_settings(trial)
        injected = inject(pod, spec, trial.metadata.name, settings, trial.spec.primary_container_name)
    except ValueError as err:  # CollectorSettingsError is one
        return _answer(review, {"allowed": False, "status": {
            "status": "Failure", "code": 400, "reason": "BadRequest",
            "message": f"trial {trial.metadata.name}: the metrics collector cannot be added: {err}"}})
    patch = jsonpatch.make_patch(pod, injected).patch
    if not patch:
        return _answer(review, {"allowed": True})
    return _answer(review, {"allowed": True, "patchType": "JSONPatch",
                            "patch": base64.b64encode(jsonpatch.JsonPatch(patch).to_string().encode()).decode()})
