"""v1beta1 trial templates: ``${trialParameters.<name>}`` substitution, as Katib's experiment controller renders them.

Each trial parameter has a ``reference``: either a ``spec.parameters`` name (the value is the
trial's assignment for it) or a meta reference to the rendered job itself:
``${trialSpec.Name}`` / ``${trialSpec.Namespace}`` (the trial's name and namespace, which the
job also gets), ``${trialSpec.Kind}``, ``${trialSpec.APIVersion}``,
``${trialSpec.Labels[key]}``, ``${trialSpec.Annotations[key]}`` (from the template's metadata).

Substitution walks the template object and replaces placeholders inside every string (keys
and values), so a value containing quotes or braces cannot break the document's structure.
A placeholder left over afterwards is an error naming it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .go_template import TemplateError

PLACEHOLDER = re.compile(r"\$\{trialParameters\.([^}]+)\}")
META_REFERENCE = re.compile(
    r"^\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|Labels\[(.+)\]|Annotations\[(.+)\])\}$")


def _meta_value(reference: str, template: Mapping[str, Any], name: str, namespace: str) -> str | None:
    match = META_REFERENCE.match(reference)
    if not match:
        return None
    what = match.group(1)
    metadata = template.get("metadata") or {}
    if what == "Name":
        return name
    if what == "Namespace":
        return namespace
    if what == "Kind":
        return str(template.get("kind", ""))
    if what == "APIVersion":
        return str(template.get("apiVersion", ""))
    if match.group(2) is not None:
        labels = metadata.get("labels") or {}
        if match.group(2) not in labels:
            raise TemplateError(f"trialParameters reference {reference}: the template has no label "
                                f"{match.group(2)!r}")
        return str(labels[match.group(2)])
    annotations = metadata.get("annotations") or {}
    if match.group(3) not in annotations:
        raise TemplateError(f"trialParameters reference {reference}: the template has no annotation "
                            f"{match.group(3)!r}")
    return str(annotations[match.group(3)])


def parameter_values(template: Mapping[str, Any], trial_parameters: Sequence[Any],
                     assignments: Mapping[str, str], name: str, namespace: str) -> dict[str, str]:
    """``{trial parameter name: value}`` for one trial."""
    values: dict[str, str] = {}
    for i, tp in enumerate(trial_parameters):
        tp_name = tp["name"] if isinstance(tp, Mapping) else tp.name
        reference = tp["reference"] if isinstance(tp, Mapping) else tp.reference
        meta = _meta_value(reference, template, name, namespace)
        if meta is not None:
            values[tp_name] = meta
        elif reference in assignments:
            values[tp_name] = str(assignments[reference])
        else:
            raise TemplateError(f"spec.trialTemplate.trialParameters[{i}].reference: {reference!r} has "
                                "no value in the trial's parameter assignments")
    return values


def _substitute(node: Any, values: Mapping[str, str], missing: set[str]) -> Any:
    if isinstance(node, str):
        def repl(match: re.Match[str]) -> str:
            key: str = match.group(1)
            if key in values:
                return values[key]
            missing.add(key)
            return match.group(0)
        return PLACEHOLDER.sub(repl, node)
    if isinstance(node, Mapping):
        return {_substitute(k, values, missing): _substitute(v, values, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values, missing) for v in node]
    return node


def render_trial_spec(template: Mapping[str, Any], trial_parameters: Sequence[Any],
                      assignments: Mapping[str, str], name: str, namespace: str) -> dict[str, Any]:
    """The job for one trial: placeholders replaced, metadata name/namespace set to the trial's."""
    if not isinstance(template, Mapping):
        raise TemplateError("spec.trialTemplate.trialSpec: must be an object")
    values = parameter_values(template, trial_parameters, assignments, name, namespace)
    missing: set[str] = set()
    out: dict[str, Any] = _substitute(copy.deepcopy(dict(template)), values, missing)
    if missing:
        raise TemplateError("spec.trialTemplate: placeholders without a trialParameters entry: "
                            + ", ".join(f"${{trialParameters.{m}}}" for m in sorted(missing)))
    metadata = dict(out.get("metadata") or {})
    metadata["name"] = name
    metadata["namespace"] = namespace
    out["metadata"] = metadata
    return out
