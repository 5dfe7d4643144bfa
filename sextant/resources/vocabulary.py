"""The words of Katib's resources: API group and labels, and the enumerations (the string
values Katib documents use). Plain Python, no pydantic: the CLI and the status modules in
sextant/katib read documents with these words without paying for the models' import."""

from __future__ import annotations

from enum import StrEnum

API_GROUP = "kubeflow.org"
API_VERSION = "kubeflow.org/v1beta1"
API_VERSION_V1ALPHA3 = "kubeflow.org/v1alpha3"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
TRIAL_LABEL = "katib.kubeflow.org/trial"
SUGGESTION_LABEL = "katib.kubeflow.org/suggestion"
DEPLOYMENT_LABEL = "katib.kubeflow.org/deployment"
# Sextant's: the directory the user submitted an experiment from (the CLI and the SDK set it).
# Local trials run there, as they would have run from that directory by hand; the experiment
# controller copies it onto each trial.
WORKING_DIR_ANNOTATION = "sextant.io/working-directory"


class ParameterType(StrEnum):
    UNKNOWN = "unknown"
    DOUBLE = "double"
    INT = "int"
    DISCRETE = "discrete"
    CATEGORICAL = "categorical"


class Distribution(StrEnum):
    UNIFORM = "uniform"
    LOG_UNIFORM = "logUniform"
    NORMAL = "normal"
    LOG_NORMAL = "logNormal"
    UNKNOWN = "unknown"


class ObjectiveType(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"
    UNKNOWN = ""


class MetricStrategyType(StrEnum):
    MIN = "min"
    MAX = "max"
    LATEST = "latest"


class ResumePolicy(StrEnum):
    NEVER = "Never"
    LONG_RUNNING = "LongRunning"
    FROM_VOLUME = "FromVolume"


class CollectorKind(StrEnum):
    STDOUT = "StdOut"
    FILE = "File"
    TENSORFLOW_EVENT = "TensorFlowEvent"
    PROMETHEUS = "PrometheusMetric"
    CUSTOM = "Custom"
    PUSH = "Push"
    NONE = "None"  # v1alpha3 spelling of Push


class FileSystemKind(StrEnum):
    FILE = "File"
    DIRECTORY = "Directory"


class FileFormat(StrEnum):
    TEXT = "TEXT"
    JSON = "JSON"


class ComparisonType(StrEnum):
    EQUAL = "equal"
    LESS = "less"
    GREATER = "greater"


class ExperimentConditionType(StrEnum):
    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TrialConditionType(StrEnum):
    CREATED = "Created"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    KILLED = "Killed"
    FAILED = "Failed"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    EARLY_STOPPED = "EarlyStopped"


class SuggestionConditionType(StrEnum):
    CREATED = "Created"
    DEPLOYMENT_READY = "DeploymentReady"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
