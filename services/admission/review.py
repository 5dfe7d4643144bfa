"""AdmissionReview (admission.k8s.io/v1) answers for Experiments: the mutating webhook returns
Sextant's defaults as a JSON patch, the validating webhook allows or denies with every error
``sextant validate`` reports for the same document.

A document Sextant cannot default (it is invalid) is let through the mutating webhook unchanged:
the validating webhook, which the API server calls after it, denies it with the reasons.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import jsonpatch

from sextant.algorithm_registry import Registry
from sextant.resources import admit_experiment
from sextant.resources.models import Experiment, to_doc
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


def validate(review: Doc, registry: Registry | None = None) -> Doc:
    request = review.get("request") or {}
    if request.get("operation") == "DELETE":
        return _answer(review, {"allowed": True})
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


def _cause(error: str) -> Doc:
    field, sep, message = error.partition(": ")
    if not sep or " " in field:
        return {"reason": "FieldValueInvalid", "message": error}
    return {"reason": "FieldValueInvalid", "field": field, "message": message}
