"""Rendering an experiment's trial template into one trial's job (the Trial's ``runSpec``).

``render_run_spec(experiment, trial_name, assignments)`` is what the experiment controller
calls when it creates a Trial; it picks the dialect:

* v1alpha3 experiments (converted by ``sextant.resources.v1alpha3``) carry their Go template
  in the annotation ``sextant.io/v1alpha3-raw-template``; it is rendered with ``.Trial``,
  ``.Experiment``, ``.NameSpace`` and ``.HyperParameters`` ({Name, Value} list) and parsed as
  YAML.
* v1beta1: ``trialTemplate.trialSpec`` (inline) with ``${trialParameters.x}`` substitution.
* ``trialTemplate.configMap``: there are no ConfigMaps outside Kubernetes, so the template is a
  file: ``<templates dir>/<configMapNamespace>/<configMapName>/<templatePath>``, or
  ``<templates dir>/<configMapName>/<templatePath>`` when the first does not exist. The templates
  dir is ``$SEXTANT_TEMPLATES_DIR``, else ``<data dir>/templates``. The file is YAML (JSON is
  YAML); with the annotation ``sextant.io/v1alpha3-template-engine: go`` it is a Go template.

The job always gets ``metadata.name`` = trial name and ``metadata.namespace`` = the experiment's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .go_template import TemplateError, render
from .trial_parameters import render_trial_spec

RAW_TEMPLATE_ANNOTATION = "sextant.io/v1alpha3-raw-template"
TEMPLATE_ENGINE_ANNOTATION = "sextant.io/v1alpha3-template-engine"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

__all__ = ["TemplateError", "render_run_spec", "render_go_job", "template_file", "templates_dir"]


def templates_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    from sextant.config import data_dir

    if explicit:
        return Path(explicit)
    if os.environ.get("SEXTANT_TEMPLATES_DIR"):
        return Path(os.environ["SEXTANT_TEMPLATES_DIR"])
    return data_dir() / "templates"


def template_file(name: str | None, namespace: str | None, path: str | None,
                  directory: str | os.PathLike[str] | None = None) -> Path:
    """Where a configMap-style template lives; raises TemplateError for unsafe names/paths."""
    where = "spec.trialTemplate.configMap"
    for field, value in (("configMapName", name), ("configMapNamespace", namespace)):
        if field == "configMapNamespace" and not value:
            continue
        if not value or not _NAME.match(value) or ".." in value:
            raise TemplateError(f"{where}.{field}: {value!r} is not a valid name")
    parts = Path(path or "").parts
    if not path or Path(path).is_absolute() or ".." in parts:
        raise TemplateError(f"{where}.templatePath: {path!r} must be a relative path without '..'")
    assert name is not None  # the loop above raised for a missing configMapName
    base = templates_dir(directory)
    candidates = ([base / namespace / name / path] if namespace else []) + [base / name / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TemplateError(f"{where}: template file not found (looked for "
                        + ", ".join(str(c) for c in candidates) + ")")


def render_go_job(source: str, *, trial_name: str, experiment_name: str, namespace: str,
                  assignments: Mapping[str, str]) -> dict[str, Any]:
    data = {
        "Trial": trial_name, "Experiment": experiment_name, "NameSpace": namespace,
        "HyperParameters": [{"Name": k, "Value": str(v)} for k, v in assignments.items()],
    }
    text = render(source, data)
    try:
        job = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise TemplateError(f"goTemplate: the rendered template is not valid YAML ({err})") from err
    if not isinstance(job, dict):
        raise TemplateError("goTemplate: the rendered template is not a YAML object")
    metadata = dict(job.get("metadata") or {})
    metadata["name"] = trial_name
    metadata["namespace"] = namespace
    job["metadata"] = metadata
    return job


def render_run_spec(experiment: Any, trial: Any, assignments: Mapping[str, str] | list[Any] | None = None,
                    *, directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The rendered job for one trial; ``experiment`` is the internal Experiment model.

    ``trial`` is a trial name (then ``assignments`` is required: a ``{name: value}`` mapping or a
    list of parameter assignments) or a Trial model, whose name and assignments are used.
    """
    if isinstance(trial, str):
        trial_name = trial
    else:
        trial_name = trial.metadata.name
        if assignments is None:
            assignments = list(trial.spec.parameter_assignments)
    if assignments is None:
        raise TypeError("render_run_spec: assignments are required when trial is a name")
    if isinstance(assignments, list):
        assignments = {a["name"] if isinstance(a, Mapping) else a.name:
                       a["value"] if isinstance(a, Mapping) else a.value for a in assignments}
    meta = experiment.metadata
    annotations = meta.annotations or {}
    template = experiment.spec.trial_template
    raw = annotations.get(RAW_TEMPLATE_ANNOTATION)
    if raw is not None:
        return render_go_job(raw, trial_name=trial_name, experiment_name=meta.name,
                             namespace=meta.namespace, assignments=assignments)
    if template is None:
        raise TemplateError("spec.trialTemplate: is required")
    if template.trial_spec is not None:
        source: Any = template.trial_spec
    elif template.config_map is not None:
        cm = template.config_map
        path = template_file(cm.config_map_name, cm.config_map_namespace, cm.template_path, directory)
        text = path.read_text()
        if annotations.get(TEMPLATE_ENGINE_ANNOTATION) == "go":
            return render_go_job(text, trial_name=trial_name, experiment_name=meta.name,
                                 namespace=meta.namespace, assignments=assignments)
        try:
            source = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise TemplateError(f"spec.trialTemplate.configMap: {path} is not valid YAML ({err})") from err
    else:
        raise TemplateError("spec.trialTemplate: exactly one of trialSpec or configMap must be specified")
    return render_trial_spec(source, template.trial_parameters or [], assignments, trial_name,
                             meta.namespace)
