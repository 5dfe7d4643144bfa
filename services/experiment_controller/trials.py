"""Building a Trial from an experiment and one Suggestion assignment (facts §4.1).

The run spec is rendered by the shared template renderer (``sextant.templates``, owned by the
trial side) when it is available; until then a minimal built-in renderer substitutes
``${trialParameters.<name>}`` placeholders of an inline ``trialSpec`` and names the object
after the trial.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from sextant.conditions import TRUE, flip_to_false, set_condition
from sextant.resources.models import (
    EXPERIMENT_LABEL,
    Experiment,
    ObjectMeta,
    OwnerReference,
    Trial,
    TrialAssignment,
    TrialConditionType,
    TrialSpec,
)

# Sextant's own Killed reason/message (Katib defines the Killed type but never sets it).
REASON_KILLED = "TrialKilled"
MSG_KILLED = "Trial is killed because the experiment has ended"


def owner_reference(experiment: Experiment) -> OwnerReference:
    return OwnerReference(kind="Experiment", name=experiment.metadata.name, uid=experiment.metadata.uid,
                          api_version=experiment.api_version, controller=True, block_owner_deletion=True)


def trial_labels(experiment: Experiment, assignment: TrialAssignment | None = None) -> dict[str, str]:
    """Experiment labels + the experiment label + the assignment's labels."""
    labels = dict(experiment.metadata.labels)
    labels[EXPERIMENT_LABEL] = experiment.metadata.name
    if assignment is not None and assignment.labels:
        labels.update(assignment.labels)
    return labels


_PLACEHOLDER = re.compile(r"\$\{trialParameters\.([^}]+)\}")
_META = re.compile(r"^\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|Labels|Annotations)(?:\[(.+)\])?\}$")


def _fallback_render(experiment: Experiment, trial: Trial) -> dict[str, Any] | None:
    template = experiment.spec.trial_template
    if template is None or template.trial_spec is None:
        return None
    values: dict[str, str] = {}
    assigned = {a.name: a.value for a in trial.spec.parameter_assignments}
    for param in template.trial_parameters or []:
        ref = param.reference
        meta = _META.match(ref or "")
        if meta:
            field, key = meta.group(1), meta.group(2)
            md = trial.metadata
            values[param.name] = {
                "Name": md.name, "Namespace": md.namespace, "Kind": str(template.trial_spec.get("kind", "")),
                "APIVersion": str(template.trial_spec.get("apiVersion", "")),
                "Labels": md.labels.get(key or "", ""), "Annotations": md.annotations.get(key or "", ""),
            }[field]
        elif ref in assigned:
            values[param.name] = assigned[ref]

    def substitute(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return substitute(node)
        if isinstance(node, list):
            return [walk(x) for x in node]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        return node

    rendered = walk(copy.deepcopy(template.trial_spec))
    meta = rendered.setdefault("metadata", {})
    meta["name"] = trial.metadata.name
    meta["namespace"] = trial.metadata.namespace
    return json.loads(json.dumps(rendered))


def render_run_spec(experiment: Experiment, trial: Trial) -> dict[str, Any] | None:
    try:
        from sextant import templates  # type: ignore[attr-defined]
    except ImportError:
        templates = None
    renderer = getattr(templates, "render_run_spec", None) if templates is not None else None
    if renderer is not None:
        return renderer(experiment, trial)
    return _fallback_render(experiment, trial)


def build_trial(experiment: Experiment, assignment: TrialAssignment) -> Trial:
    spec = experiment.spec
    template = spec.trial_template
    trial = Trial(
        metadata=ObjectMeta(
            name=assignment.name,
            namespace=experiment.metadata.namespace,
            labels=trial_labels(experiment, assignment),
            owner_references=[owner_reference(experiment)],
        ),
        spec=TrialSpec(
            objective=spec.objective.model_copy(deep=True) if spec.objective else None,
            parameter_assignments=[a.model_copy() for a in assignment.parameter_assignments],
            early_stopping_rules=[r.model_copy() for r in assignment.early_stopping_rules]
            if spec.early_stopping is not None else [],
            retain_run=bool(template.retain) if template else False,
            metrics_collector=spec.metrics_collector_spec.model_copy(deep=True)
            if spec.metrics_collector_spec else None,
            primary_pod_labels=dict(template.primary_pod_labels) if template and template.primary_pod_labels
            else None,
            primary_container_name=template.primary_container_name if template else None,
        ),
    )
    if template and template.success_condition and template.failure_condition:
        trial.spec.success_condition = template.success_condition
        trial.spec.failure_condition = template.failure_condition
    trial.spec.run_spec = render_run_spec(experiment, trial)
    return trial


def mark_killed(trial: Trial, now: str | None = None) -> bool:
    """Killed=True (Running flipped to False); the trial controller stops the job when it sees it."""
    conds = trial.status.conditions
    changed = flip_to_false(conds, str(TrialConditionType.RUNNING), now)
    changed = set_condition(conds, str(TrialConditionType.KILLED), TRUE, REASON_KILLED, MSG_KILLED, now) or changed
    if changed and not trial.status.completion_time:
        from sextant.conditions import now_rfc3339

        trial.status.completion_time = now or now_rfc3339()
    return changed
