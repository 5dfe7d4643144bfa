"""Building a Trial from an experiment and one Suggestion assignment (Katib's naming and labels).

The run spec is rendered by the shared template renderer (``sextant.templates``): inline
``trialSpec`` with ``${trialParameters.<name>}``, configMap-style template files, and v1alpha3
Go templates. A template that cannot be rendered raises ``TemplateError``.
"""

from __future__ import annotations

from typing import Any

from sextant import templates
from sextant.resources.models import (
    EXPERIMENT_LABEL,
    Experiment,
    ObjectMeta,
    OwnerReference,
    Trial,
    TrialAssignment,
    TrialSpec,
)
from sextant.resources.vocabulary import WORKING_DIR_ANNOTATION


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


def render_run_spec(experiment: Experiment, trial: Trial) -> dict[str, Any] | None:
    """The trial's job: the shared renderer (trialParameters, configMap files, v1alpha3 Go)."""
    if experiment.spec.trial_template is None and not experiment.metadata.annotations:
        return None
    return templates.render_run_spec(experiment, trial)


def build_trial(experiment: Experiment, assignment: TrialAssignment) -> Trial:
    spec = experiment.spec
    template = spec.trial_template
    trial = Trial(
        metadata=ObjectMeta(
            name=assignment.name,
            namespace=experiment.metadata.namespace,
            labels=trial_labels(experiment, assignment),
            annotations={k: v for k, v in (experiment.metadata.annotations or {}).items()
                         if k == WORKING_DIR_ANNOTATION},
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
            # The algorithm's own labels (e.g. pbt's generation and parent) come back to it in
            # the trials of later GetSuggestions requests, so it can rebuild its state from them.
            labels=dict(assignment.labels) if assignment.labels else None,
        ),
    )
    if template and template.success_condition and template.failure_condition:
        trial.spec.success_condition = template.success_condition
        trial.spec.failure_condition = template.failure_condition
    trial.spec.run_spec = render_run_spec(experiment, trial)
    return trial
