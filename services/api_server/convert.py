"""``kubeflow.org/v1alpha3`` Experiments: stored as v1beta1 (sextant.resources.v1alpha3 converts
on the way in) and shown in v1alpha3's shape on the way out, so ``kubectl apply`` of a v1alpha3
manifest creates and later updates the same object."""

from __future__ import annotations

import copy
from typing import Any

from sextant.resources.models import API_VERSION, API_VERSION_V1ALPHA3
from sextant.resources.v1alpha3 import RAW_TEMPLATE_ANNOTATION, convert_experiment


def to_v1beta1(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("apiVersion") != API_VERSION_V1ALPHA3:
        return doc
    return convert_experiment(doc) | ({"status": doc["status"]} if "status" in doc else {})


def to_v1alpha3(doc: dict[str, Any]) -> dict[str, Any]:
    """v1alpha3's shape of a stored Experiment: the go template it was created with, the
    ``None`` collector (v1beta1's Push), and v1alpha3's observation (one value per metric)."""
    out = copy.deepcopy(doc)
    out["apiVersion"] = API_VERSION_V1ALPHA3
    spec = out.get("spec") or {}
    annotations = (out.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(RAW_TEMPLATE_ANNOTATION)
    if raw is not None:
        spec["trialTemplate"] = {"goTemplate": {"rawTemplate": raw}}
    collector = ((spec.get("metricsCollectorSpec") or {}).get("collector") or {})
    if collector.get("kind") == "Push":
        collector["kind"] = "None"
    optimal = (out.get("status") or {}).get("currentOptimalTrial") or {}
    for metric in (optimal.get("observation") or {}).get("metrics") or []:
        metric.setdefault("value", metric.get("latest"))
    return out


def for_version(doc: dict[str, Any], version: str) -> dict[str, Any]:
    if version == "v1alpha3" and doc.get("kind") == "Experiment":
        return to_v1alpha3(doc)
    if doc.get("apiVersion") in (None, "", API_VERSION_V1ALPHA3) and doc.get("kind") != "Event":
        doc = {**doc, "apiVersion": API_VERSION}
    return doc
