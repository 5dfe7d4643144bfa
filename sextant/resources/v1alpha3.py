"""Conversion of a ``kubeflow.org/v1alpha3`` Experiment document into the internal v1beta1 shape.

What changes between Katib's v1alpha3 and v1beta1 resources:

* ``apiVersion`` becomes ``kubeflow.org/v1beta1``; the original is kept in the annotation
  ``sextant.io/original-api-version`` so ``get -o yaml`` can say where the experiment came from.
* ``trialTemplate.goTemplate.rawTemplate`` (a Go text/template rendered with ``.Trial``,
  ``.Experiment``, ``.NameSpace`` and ``.HyperParameters``) is stored verbatim in the annotation
  ``sextant.io/v1alpha3-raw-template``. The v1beta1 ``trialTemplate`` keeps ``retain``, gets an
  empty ``trialParameters`` list (v1alpha3 has none), and the success/failure conditions of the
  job kind found in the template (``batch/v1 Job`` unless the template says TFJob/PyTorchJob).
  It has neither ``trialSpec`` nor ``configMap``: the trial controller sees the annotation and
  renders the Go template instead of substituting ``${trialParameters.*}``.
* ``goTemplate.templateSpec`` becomes ``trialTemplate.configMap``; the annotation
  ``sextant.io/v1alpha3-template-engine: go`` tells the trial controller the ConfigMap text is a
  Go template. With neither rawTemplate nor templateSpec, v1alpha3's default applies: ConfigMap
  ``trial-template`` in namespace ``kubeflow``, key ``defaultTrialTemplate.yaml``; no trialTemplate
  at all means ``{retain: true}`` plus that ConfigMap.
* Collector kind ``None`` becomes ``Push`` (renamed in v1beta1); ``fileSystemPath`` had no
  ``format`` (the v1beta1 default TEXT applies).
* ``resumePolicy`` defaults to ``LongRunning`` (v1alpha3's default) rather than v1beta1's Never.
* ``objective`` has no ``metricStrategies``: the v1beta1 defaults fill them (min/max by objective
  type), which matches v1alpha3's "best value by objective type" observation.
* ``algorithm.earlyStopping`` (never implemented in v1alpha3) is dropped; a note is recorded in
  the annotation ``sextant.io/conversion-notes``. The wire spelling ``algorithmSetting`` is
  accepted as ``algorithmSettings``.
* ``status`` is dropped: v1alpha3 status shapes differ and the store owns status anyway.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from sextant.resources.models import API_VERSION, API_VERSION_V1ALPHA3

ORIGINAL_API_VERSION_ANNOTATION = "sextant.io/original-api-version"
RAW_TEMPLATE_ANNOTATION = "sextant.io/v1alpha3-raw-template"
TEMPLATE_ENGINE_ANNOTATION = "sextant.io/v1alpha3-template-engine"
CONVERSION_NOTES_ANNOTATION = "sextant.io/conversion-notes"

DEFAULT_TEMPLATE_CONFIGMAP = {
    "configMapName": "trial-template",
    "configMapNamespace": "kubeflow",
    "templatePath": "defaultTrialTemplate.yaml",
}

_JOB_CONDITIONS = {
    "Job": ("Complete", "Failed"),
    "TFJob": ("Succeeded", "Failed"),
    "PyTorchJob": ("Succeeded", "Failed"),
}
_KIND_LINE = re.compile(r"^kind:\s*[\"']?([A-Za-z]+)", re.MULTILINE)


def condition_for(condition_type: str) -> str:
    """The GJSON path Katib uses for "the job has a condition of this type that is True"."""
    return f'status.conditions.#(type=="{condition_type}")#|#(status=="True")#'


def is_v1alpha3_experiment(experiment: Any) -> bool:
    """True for an internal experiment converted from v1alpha3 (by its annotation)."""
    annotations = getattr(getattr(experiment, "metadata", None), "annotations", None) or {}
    return annotations.get(ORIGINAL_API_VERSION_ANNOTATION) == API_VERSION_V1ALPHA3


def raw_template(experiment: Any) -> str | None:
    """The v1alpha3 Go template text of an internal experiment, if it has one."""
    annotations = getattr(getattr(experiment, "metadata", None), "annotations", None) or {}
    return annotations.get(RAW_TEMPLATE_ANNOTATION)


def _template_kind(text: str) -> str:
    match = _KIND_LINE.search(text)
    return match.group(1) if match and match.group(1) in _JOB_CONDITIONS else "Job"


def _convert_trial_template(template: Any, annotations: dict[str, Any]) -> Any:
    if template is None:
        template = {"retain": True}
    if not isinstance(template, dict):
        return template  # wrong type: let the model report it
    out: dict[str, Any] = {k: v for k, v in template.items() if k != "goTemplate"}
    go = template.get("goTemplate")
    if go is None:
        go = {}
    if not isinstance(go, dict):
        out["goTemplate"] = go  # not a mapping: the model reports the unknown field
        return out
    raw = go.get("rawTemplate")
    spec = go.get("templateSpec")
    extra = {k: v for k, v in go.items() if k not in ("rawTemplate", "templateSpec")}
    if extra:
        out["goTemplate"] = extra  # unknown keys stay so the model names them
    out.setdefault("trialParameters", [])
    if raw is not None:
        annotations[RAW_TEMPLATE_ANNOTATION] = raw if isinstance(raw, str) else str(raw)
        success, failure = _JOB_CONDITIONS[_template_kind(raw if isinstance(raw, str) else "")]
        out.setdefault("successCondition", condition_for(success))
        out.setdefault("failureCondition", condition_for(failure))
        if spec is not None:
            out["configMap"] = spec  # both given: validation reports "only one of"
        return out
    annotations[TEMPLATE_ENGINE_ANNOTATION] = "go"
    out["configMap"] = spec if spec is not None else dict(DEFAULT_TEMPLATE_CONFIGMAP)
    out.setdefault("successCondition", condition_for("Complete"))
    out.setdefault("failureCondition", condition_for("Failed"))
    return out


def _convert_algorithm(algorithm: Any, notes: list[str]) -> Any:
    if not isinstance(algorithm, dict):
        return algorithm
    out = dict(algorithm)
    if "algorithmSetting" in out and "algorithmSettings" not in out:
        out["algorithmSettings"] = out.pop("algorithmSetting")
    if "earlyStopping" in out:
        early = out.pop("earlyStopping")
        name = early.get("earlyStoppingAlgorithmName", "") if isinstance(early, dict) else ""
        notes.append("spec.algorithm.earlyStopping"
                     + (f" ({name})" if name else "")
                     + " dropped: early stopping was not implemented in v1alpha3")
    return out


def _convert_collector(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    out = copy.deepcopy(spec)
    collector = out.get("collector")
    if isinstance(collector, dict) and collector.get("kind") == "None":
        collector["kind"] = "Push"
    return out


def convert_experiment(doc: dict[str, Any]) -> dict[str, Any]:
    """A v1beta1-shaped copy of a v1alpha3 Experiment document (the input is not modified)."""
    out = {k: copy.deepcopy(v) for k, v in doc.items() if k != "status"}
    out["apiVersion"] = API_VERSION
    metadata = out.get("metadata")
    if metadata is None:
        metadata = out["metadata"] = {}
    if not isinstance(metadata, dict):
        return out  # the model reports the bad metadata
    annotations = metadata.get("annotations")
    if annotations is None:
        annotations = metadata["annotations"] = {}
    if not isinstance(annotations, dict):
        return out
    annotations[ORIGINAL_API_VERSION_ANNOTATION] = API_VERSION_V1ALPHA3
    spec = out.get("spec")
    if spec is None:
        spec = out["spec"] = {}
    if not isinstance(spec, dict):
        return out
    notes: list[str] = []
    spec["trialTemplate"] = _convert_trial_template(spec.get("trialTemplate"), annotations)
    if "algorithm" in spec:
        spec["algorithm"] = _convert_algorithm(spec["algorithm"], notes)
    if "metricsCollectorSpec" in spec:
        spec["metricsCollectorSpec"] = _convert_collector(spec["metricsCollectorSpec"])
    if spec.get("resumePolicy") in (None, ""):
        spec["resumePolicy"] = "LongRunning"
    if notes:
        annotations[CONVERSION_NOTES_ANNOTATION] = "; ".join(notes)
    return out
