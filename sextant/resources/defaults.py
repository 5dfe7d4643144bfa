"""Katib's mutating webhook for Experiments (its defaults), applied to the typed model in place.

Defaulting is idempotent: applying it to an already defaulted experiment changes nothing, which
is what an update through the store relies on.
"""

from __future__ import annotations

from sextant.resources.models import (
    CollectorKind,
    CollectorSpec,
    Distribution,
    Experiment,
    FileFormat,
    FileSystemKind,
    FileSystemPath,
    HttpGet,
    MetricsCollectorSpec,
    MetricStrategy,
    MetricStrategyType,
    ObjectiveType,
    ResumePolicy,
    SourceSpec,
)
from sextant.resources.v1alpha3 import condition_for

DEFAULT_PARALLEL_TRIAL_COUNT = 3
DEFAULT_METRICS_FILE = "/var/log/katib/metrics.log"
DEFAULT_TFEVENT_DIRECTORY = "/var/log/katib/tfevent/"
DEFAULT_PROMETHEUS_PATH = "/metrics"
DEFAULT_PROMETHEUS_PORT = 8080

KUBEFLOW_TRAINING_KINDS = ("TFJob", "PyTorchJob", "XGBoostJob", "MPIJob")
TRAINING_PRIMARY_LABELS = {"training.kubeflow.org/job-role": "master"}
TRAINJOB_PRIMARY_LABELS = {
    "jobset.sigs.k8s.io/replicatedjob-name": "node",
    "batch.kubernetes.io/job-completion-index": "0",
}


def _strategy_for(objective_type: ObjectiveType) -> MetricStrategyType:
    if objective_type == ObjectiveType.MINIMIZE:
        return MetricStrategyType.MIN
    if objective_type == ObjectiveType.MAXIMIZE:
        return MetricStrategyType.MAX
    return MetricStrategyType.LATEST


def _default_objective(exp: Experiment) -> None:
    objective = exp.spec.objective
    if objective is None:
        return
    named = {s.name for s in objective.metric_strategies}
    strategy = _strategy_for(objective.type)
    # Katib gives additional metrics the objective's min/max too (not "latest"); follow it.
    for metric in [objective.objective_metric_name, *objective.additional_metric_names]:
        if metric and metric not in named:  # an empty name is reported by validation
            objective.metric_strategies.append(MetricStrategy(name=metric, value=strategy))
            named.add(metric)


def _default_trial_template(exp: Experiment) -> None:
    template = exp.spec.trial_template
    if template is None or not isinstance(template.trial_spec, dict):
        return  # ConfigMap templates get no defaults (Katib cannot see the kind either)
    kind = template.trial_spec.get("kind")
    if kind == "Job":
        success, failure, labels = "Complete", "Failed", None
    elif kind in KUBEFLOW_TRAINING_KINDS:
        success, failure, labels = "Succeeded", "Failed", TRAINING_PRIMARY_LABELS
    elif kind == "TrainJob":
        success, failure, labels = "Complete", "Failed", TRAINJOB_PRIMARY_LABELS
    else:
        return
    if not template.success_condition:
        template.success_condition = condition_for(success)
    if not template.failure_condition:
        template.failure_condition = condition_for(failure)
    if labels is not None and template.primary_pod_labels is None:
        template.primary_pod_labels = dict(labels)


def _default_collector(exp: Experiment) -> None:
    spec = exp.spec.metrics_collector_spec
    if spec is None:
        spec = exp.spec.metrics_collector_spec = MetricsCollectorSpec()
    if spec.collector is None:
        spec.collector = CollectorSpec(kind=CollectorKind.STDOUT)
    kind = spec.collector.kind
    if kind == CollectorKind.PROMETHEUS:
        spec.source = spec.source or SourceSpec()
        spec.source.http_get = spec.source.http_get or HttpGet()
        if not spec.source.http_get.path:
            spec.source.http_get.path = DEFAULT_PROMETHEUS_PATH
        if spec.source.http_get.port in (None, 0, "", "0"):
            spec.source.http_get.port = DEFAULT_PROMETHEUS_PORT
    elif kind in (CollectorKind.FILE, CollectorKind.TENSORFLOW_EVENT):
        spec.source = spec.source or SourceSpec()
        spec.source.file_system_path = spec.source.file_system_path or FileSystemPath()
        path = spec.source.file_system_path
        if kind == CollectorKind.FILE:
            path.kind = path.kind or FileSystemKind.FILE
            path.path = path.path or DEFAULT_METRICS_FILE
            path.format = path.format or FileFormat.TEXT
        else:
            path.kind = path.kind or FileSystemKind.DIRECTORY
            path.path = path.path or DEFAULT_TFEVENT_DIRECTORY


def apply_defaults(exp: Experiment) -> Experiment:
    """Fills Katib's defaults into ``exp`` (modified in place and returned)."""
    spec = exp.spec
    if spec.parallel_trial_count is None:
        spec.parallel_trial_count = DEFAULT_PARALLEL_TRIAL_COUNT
    if spec.resume_policy is None:
        spec.resume_policy = ResumePolicy.NEVER
    _default_objective(exp)
    _default_trial_template(exp)
    _default_collector(exp)
    for parameter in spec.parameters:
        if parameter.feasible_space.distribution is None:
            parameter.feasible_space.distribution = Distribution.UNIFORM
    return exp
