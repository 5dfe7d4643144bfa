"""Typed models of Katib's v1beta1 Experiment, Trial and Suggestion resources.

Attributes are snake_case; documents (YAML, JSON, the store) use Katib's camelCase names,
which pydantic maps through aliases. Dump with ``to_doc(model)`` to get Katib's shape back.
Spec models reject unknown fields, so a typo is an error that names the field; status models
tolerate them, so a newer writer never breaks an older reader.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from sextant.resources.vocabulary import (
    API_GROUP,
    API_VERSION,
    API_VERSION_V1ALPHA3,
    DEPLOYMENT_LABEL,
    EXPERIMENT_LABEL,
    SUGGESTION_LABEL,
    TRIAL_LABEL,
    CollectorKind,
    ComparisonType,
    Distribution,
    ExperimentConditionType,
    FileFormat,
    FileSystemKind,
    MetricStrategyType,
    ObjectiveType,
    ParameterType,
    ResumePolicy,
    SuggestionConditionType,
    TrialConditionType,
)

# Katib's words live in sextant.resources.vocabulary (no pydantic); models' users import them from here too.
__all__ = [
    "API_GROUP",
    "API_VERSION",
    "API_VERSION_V1ALPHA3",
    "DEPLOYMENT_LABEL",
    "EXPERIMENT_LABEL",
    "SUGGESTION_LABEL",
    "TRIAL_LABEL",
    "CollectorKind",
    "ComparisonType",
    "Distribution",
    "ExperimentConditionType",
    "FileFormat",
    "FileSystemKind",
    "MetricStrategyType",
    "ObjectiveType",
    "ParameterType",
    "ResumePolicy",
    "SuggestionConditionType",
    "TrialConditionType",
]


# Empty lists and dicts are plain defaults (``= []``): pydantic copies a mutable default for each
# instance, while ``Field(default_factory=list)`` makes it parse ``list``'s signature text at
# import, some 1 ms per field, which every CLI command that validates paid.
class SpecModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class StatusModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


def to_doc(model: BaseModel) -> dict[str, Any]:
    """The JSON/YAML document of a model: camelCase keys, unset optional fields left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---------------------------------------------------------------------------------------------
# Metadata


class OwnerReference(SpecModel):
    api_version: str = API_VERSION
    kind: str
    name: str
    uid: str = ""
    controller: bool = True
    block_owner_deletion: bool | None = None


class ObjectMeta(SpecModel):
    name: str = ""
    generate_name: str | None = None
    namespace: str = "default"
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    owner_references: list[OwnerReference] = []
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    finalizers: list[str] | None = None


# ---------------------------------------------------------------------------------------------
# Experiment spec (Katib's v1beta1 ExperimentSpec)


class FeasibleSpace(SpecModel):
    max: str | None = None
    min: str | None = None
    # ``list`` in documents; renamed here so it does not shadow the builtin.
    list_: list[str] | None = Field(default=None, alias="list")
    step: str | None = None
    distribution: Distribution | None = None


class ParameterSpec(SpecModel):
    name: str
    parameter_type: ParameterType
    feasible_space: FeasibleSpace = Field(default_factory=FeasibleSpace)


class MetricStrategy(SpecModel):
    name: str
    value: MetricStrategyType


class ObjectiveSpec(SpecModel):
    type: ObjectiveType = ObjectiveType.UNKNOWN
    goal: float | None = None
    objective_metric_name: str = ""
    additional_metric_names: list[str] = []
    metric_strategies: list[MetricStrategy] = []


class AlgorithmSetting(SpecModel):
    name: str
    value: str = ""


class AlgorithmSpec(SpecModel):
    algorithm_name: str = ""
    algorithm_settings: list[AlgorithmSetting] = []


class EarlyStoppingSetting(SpecModel):
    name: str
    value: str = ""


class EarlyStoppingSpec(SpecModel):
    algorithm_name: str = ""
    algorithm_settings: list[EarlyStoppingSetting] = []


class ConfigMapSource(SpecModel):
    config_map_name: str | None = None
    config_map_namespace: str | None = None
    template_path: str | None = None


class TrialParameterSpec(SpecModel):
    name: str = ""
    description: str | None = None
    reference: str = ""


class TrialTemplate(SpecModel):
    retain: bool = False
    trial_spec: dict[str, Any] | None = None
    config_map: ConfigMapSource | None = None
    trial_parameters: list[TrialParameterSpec] | None = None
    primary_pod_labels: dict[str, str] | None = None
    primary_container_name: str | None = None
    success_condition: str | None = None
    failure_condition: str | None = None


class FileSystemPath(SpecModel):
    path: str | None = None
    kind: FileSystemKind | None = None
    format: FileFormat | None = None


class HttpGet(BaseModel):
    """Kubernetes HTTPGetAction (only the fields a collector uses are typed)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")
    path: str | None = None
    port: int | str | None = None
    host: str | None = None
    scheme: str | None = None


class FilterSpec(SpecModel):
    metrics_format: list[str] = []


class SourceSpec(SpecModel):
    http_get: HttpGet | None = None
    file_system_path: FileSystemPath | None = None
    filter: FilterSpec | None = None


class CollectorSpec(SpecModel):
    kind: CollectorKind = CollectorKind.STDOUT
    custom_collector: dict[str, Any] | None = None  # a Kubernetes Container


class MetricsCollectorSpec(SpecModel):
    source: SourceSpec | None = None
    collector: CollectorSpec | None = None


class GraphConfig(SpecModel):
    num_layers: int | None = None
    input_sizes: list[int] = []
    output_sizes: list[int] = []


class Operation(SpecModel):
    operation_type: str = ""
    parameters: list[ParameterSpec] = []


class NasConfig(SpecModel):
    graph_config: GraphConfig | None = None
    operations: list[Operation] = []


class ExperimentSpec(SpecModel):
    parameters: list[ParameterSpec] = []
    objective: ObjectiveSpec | None = None
    algorithm: AlgorithmSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    trial_template: TrialTemplate | None = None
    parallel_trial_count: int | None = None
    max_trial_count: int | None = None
    max_failed_trial_count: int | None = None
    metrics_collector_spec: MetricsCollectorSpec | None = None
    nas_config: NasConfig | None = None
    resume_policy: ResumePolicy | None = None


# ---------------------------------------------------------------------------------------------
# Status (Katib's Experiment, Trial and Suggestion status)


class Condition(StatusModel):
    type: str
    status: str = "True"  # "True" | "False" | "Unknown"
    reason: str = ""
    message: str = ""
    last_update_time: str | None = None
    last_transition_time: str | None = None


class ParameterAssignment(StatusModel):
    name: str
    value: str


class Metric(StatusModel):
    """One observed metric: the min, max and latest value (strings; ``unavailable`` if absent)."""

    name: str
    min: str = "unavailable"
    max: str = "unavailable"
    latest: str = "unavailable"


class Observation(StatusModel):
    metrics: list[Metric] = []


class OptimalTrial(StatusModel):
    best_trial_name: str = ""
    parameter_assignments: list[ParameterAssignment] = []
    observation: Observation = Field(default_factory=Observation)


class ExperimentStatus(StatusModel):
    start_time: str | None = None
    completion_time: str | None = None
    last_reconcile_time: str | None = None
    conditions: list[Condition] = []
    current_optimal_trial: OptimalTrial | None = None
    # Sextant's: the Pareto-optimal trials of a multi-objective experiment (sextant.katib.pareto)
    pareto_optimal_trials: list[OptimalTrial] | None = None
    running_trial_list: list[str] = []
    pending_trial_list: list[str] = []
    failed_trial_list: list[str] = []
    succeeded_trial_list: list[str] = []
    killed_trial_list: list[str] = []
    early_stopped_trial_list: list[str] = []
    metrics_unavailable_trial_list: list[str] = []
    trials: int = 0
    trials_succeeded: int = 0
    trials_failed: int = 0
    trials_killed: int = 0
    trials_pending: int = 0
    trials_running: int = 0
    trials_early_stopped: int = 0
    # Katib's irregular JSON name, kept for compatibility.
    trial_metrics_unavailable: int = Field(default=0, alias="trialMetricsUnavailable")


class EarlyStoppingRule(StatusModel):
    name: str
    value: str
    comparison: ComparisonType = ComparisonType.EQUAL
    start_step: int = 0


class TrialSpec(SpecModel):
    objective: ObjectiveSpec | None = None
    parameter_assignments: list[ParameterAssignment] = []
    early_stopping_rules: list[EarlyStoppingRule] = []
    run_spec: dict[str, Any] | None = None
    retain_run: bool = False
    metrics_collector: MetricsCollectorSpec | None = None
    primary_pod_labels: dict[str, str] | None = None
    primary_container_name: str | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    labels: dict[str, str] | None = None


class TrialStatus(StatusModel):
    start_time: str | None = None
    completion_time: str | None = None
    last_reconcile_time: str | None = None
    conditions: list[Condition] = []
    observation: Observation | None = None


class TrialAssignment(StatusModel):
    name: str
    parameter_assignments: list[ParameterAssignment] = []
    early_stopping_rules: list[EarlyStoppingRule] = []
    labels: dict[str, str] | None = None


class SuggestionSpec(SpecModel):
    algorithm: AlgorithmSpec
    early_stopping: EarlyStoppingSpec | None = None
    requests: int = 0
    resume_policy: ResumePolicy | None = None


class SuggestionStatus(StatusModel):
    algorithm_settings: list[AlgorithmSetting] = []
    suggestion_count: int = 0
    suggestions: list[TrialAssignment] = []
    start_time: str | None = None
    completion_time: str | None = None
    last_reconcile_time: str | None = None
    conditions: list[Condition] = []


# ---------------------------------------------------------------------------------------------
# Resources


class Experiment(SpecModel):
    api_version: str = API_VERSION
    kind: str = "Experiment"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ExperimentSpec = Field(default_factory=ExperimentSpec)
    status: ExperimentStatus = Field(default_factory=ExperimentStatus)


class Trial(SpecModel):
    api_version: str = API_VERSION
    kind: str = "Trial"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TrialSpec = Field(default_factory=TrialSpec)
    status: TrialStatus = Field(default_factory=TrialStatus)


class Suggestion(SpecModel):
    api_version: str = API_VERSION
    kind: str = "Suggestion"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: SuggestionSpec
    status: SuggestionStatus = Field(default_factory=SuggestionStatus)


class Event(SpecModel):
    """A Kubernetes-style event about another resource, shown by ``sextant describe``."""

    api_version: str = "v1"
    kind: str = "Event"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: dict[str, Any] = {}  # involvedObject, type, reason, message
    status: dict[str, Any] = {}


RESOURCE_MODELS: dict[str, type[SpecModel]] = {
    "Experiment": Experiment,
    "Trial": Trial,
    "Suggestion": Suggestion,
    "Event": Event,
}
