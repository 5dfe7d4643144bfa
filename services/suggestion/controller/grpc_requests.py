"""Building the Katib gRPC requests a suggestion controller sends, as Katib's does.

* ``experiment_message``: the Experiment as ``api.v1.beta1.Experiment``, optionally with the
  Suggestion's stored algorithm settings overlaid (same name → value replaced, new names
  appended) — that overlay is how hyperband carries its state between calls.
* ``trial_messages``: every trial of the experiment except MetricsUnavailable ones and
  EarlyStopped ones without an observation; the condition is the trial's *last* condition;
  metric values are picked by each metric's strategy; times have second precision.
* ``suggestions_request``: current = requests − suggestionCount, total = requests. Unlike
  Katib, assignments already recorded in the Suggestion whose Trial does not exist yet are
  sent too, as CREATED trials: the algorithm must treat them as pending, or a seeded or
  deterministic algorithm would hand the same points out again (Katib sends only Trials).
"""

from __future__ import annotations

from sextant import objectives
from sextant.api import api_pb2
from sextant.katib import trial_status
from sextant.katib.condition_list import has_condition
from sextant.observation_values import is_observation_available, strategy_for, value_by_strategy
from sextant.resources.models import (
    AlgorithmSetting,
    Experiment,
    ObjectiveSpec,
    ObjectiveType,
    ParameterSpec,
    Suggestion,
    Trial,
    TrialConditionType,
)
from sextant.store.version_memo import VersionMemo
from sextant.timestamps import format_seconds

_PARAMETER_TYPES = {
    "double": api_pb2.DOUBLE,
    "int": api_pb2.INT,
    "discrete": api_pb2.DISCRETE,
    "categorical": api_pb2.CATEGORICAL,
}
_DISTRIBUTIONS = {
    "uniform": api_pb2.UNIFORM,
    "logUniform": api_pb2.LOG_UNIFORM,
    "normal": api_pb2.NORMAL,
    "logNormal": api_pb2.LOG_NORMAL,
}
_OBJECTIVE_TYPES = {ObjectiveType.MINIMIZE: api_pb2.MINIMIZE, ObjectiveType.MAXIMIZE: api_pb2.MAXIMIZE}
# A trial's last condition on the wire; any other (MetricsUnavailable) is UNKNOWN, as in Katib.
_CONDITIONS = {
    trial_status.CREATED: api_pb2.TrialStatus.CREATED,
    trial_status.RUNNING: api_pb2.TrialStatus.RUNNING,
    trial_status.SUCCEEDED: api_pb2.TrialStatus.SUCCEEDED,
    trial_status.KILLED: api_pb2.TrialStatus.KILLED,
    trial_status.FAILED: api_pb2.TrialStatus.FAILED,
    trial_status.EARLY_STOPPED: api_pb2.TrialStatus.EARLYSTOPPED,
}
_COMPARISONS = {api_pb2.EQUAL: "equal", api_pb2.LESS: "less", api_pb2.GREATER: "greater"}


def overlay_settings(base: list[AlgorithmSetting], overlay: list[AlgorithmSetting]) -> list[AlgorithmSetting]:
    """``base`` with each ``overlay`` entry replacing the same name or appended."""
    out = [s.model_copy() for s in base]
    for setting in overlay:
        for existing in out:
            if existing.name == setting.name:
                existing.value = setting.value
                break
        else:
            out.append(setting.model_copy())
    return out


def _parameter(spec: ParameterSpec) -> api_pb2.ParameterSpec:
    fs = spec.feasible_space
    return api_pb2.ParameterSpec(
        name=spec.name,
        parameter_type=_PARAMETER_TYPES.get(str(spec.parameter_type), api_pb2.UNKNOWN_TYPE),
        feasible_space=api_pb2.FeasibleSpace(
            max=fs.max or "",
            min=fs.min or "",
            list=list(fs.list_ or []),
            step=fs.step or "",
            distribution=_DISTRIBUTIONS.get(str(fs.distribution) if fs.distribution else "",
                                            api_pb2.DISTRIBUTION_UNSPECIFIED),
        ),
    )


def objective_message(objective: ObjectiveSpec | None) -> api_pb2.ObjectiveSpec:
    if objective is None:
        return api_pb2.ObjectiveSpec()
    msg = api_pb2.ObjectiveSpec(
        type=_OBJECTIVE_TYPES.get(objective.type, api_pb2.UNKNOWN),
        objective_metric_name=objective.objective_metric_name,
        additional_metric_names=list(objective.additional_metric_names),
    )
    if objective.goal is not None:
        msg.goal = objective.goal
    return msg


def experiment_message(experiment: Experiment, settings_overlay: list[AlgorithmSetting] | None = None,
                       *, with_objectives: bool = False) -> api_pb2.Experiment:
    """``with_objectives``: the algorithm optimises several objectives, so the experiment's
    declaration of its extra objectives (``sextant.objectives``) goes along as a setting."""
    spec = experiment.spec
    algorithm = spec.algorithm
    settings = algorithm.algorithm_settings if algorithm else []
    if settings_overlay:
        settings = overlay_settings(settings, settings_overlay)
    declared = objectives.declared(experiment.metadata.annotations) if with_objectives else None
    if declared is not None:
        settings = overlay_settings(settings, [AlgorithmSetting(name=objectives.SETTING, value=declared)])
    msg = api_pb2.Experiment(name=experiment.metadata.name)
    es = msg.spec
    es.parameter_specs.parameters.extend(_parameter(p) for p in spec.parameters)
    es.objective.CopyFrom(objective_message(spec.objective))
    es.algorithm.algorithm_name = algorithm.algorithm_name if algorithm else ""
    es.algorithm.algorithm_settings.extend(
        api_pb2.AlgorithmSetting(name=s.name, value=s.value) for s in settings
    )
    if spec.early_stopping is not None:
        es.early_stopping.CopyFrom(early_stopping_message(experiment))
    if spec.parallel_trial_count is not None:
        es.parallel_trial_count = spec.parallel_trial_count
    if spec.max_trial_count is not None:
        es.max_trial_count = spec.max_trial_count
    if spec.nas_config is not None:
        nas = spec.nas_config
        graph = nas.graph_config
        if graph is not None:
            es.nas_config.graph_config.num_layers = graph.num_layers or 0
            es.nas_config.graph_config.input_sizes.extend(graph.input_sizes)
            es.nas_config.graph_config.output_sizes.extend(graph.output_sizes)
        for op in nas.operations:
            pop = es.nas_config.operations.operation.add(operation_type=op.operation_type)
            pop.parameter_specs.parameters.extend(_parameter(p) for p in op.parameters)
        es.nas_config.SetInParent()
    return msg


def early_stopping_message(experiment: Experiment) -> api_pb2.EarlyStoppingSpec:
    es = experiment.spec.early_stopping
    if es is None:
        return api_pb2.EarlyStoppingSpec()
    return api_pb2.EarlyStoppingSpec(
        algorithm_name=es.algorithm_name,
        algorithm_settings=[api_pb2.EarlyStoppingSetting(name=s.name, value=s.value)
                            for s in es.algorithm_settings],
    )


def included_in_request(trial: Trial) -> bool:
    """Not MetricsUnavailable, and not EarlyStopped without an available observation."""
    conds = trial.status.conditions
    if has_condition(conds, TrialConditionType.METRICS_UNAVAILABLE):
        return False
    if has_condition(conds, TrialConditionType.EARLY_STOPPED) and not is_observation_available(
        trial.spec.objective, trial.status.observation
    ):
        return False
    return True


def last_condition(trial: Trial) -> api_pb2.TrialStatus.TrialConditionType:
    conds = trial.status.conditions
    if not conds:
        return api_pb2.TrialStatus.CREATED
    return _CONDITIONS.get(conds[-1].type, api_pb2.TrialStatus.UNKNOWN)


def trial_message(trial: Trial) -> api_pb2.Trial:
    msg = api_pb2.Trial(name=trial.metadata.name)
    msg.spec.objective.CopyFrom(objective_message(trial.spec.objective))
    msg.spec.parameter_assignments.assignments.extend(
        api_pb2.ParameterAssignment(name=a.name, value=a.value) for a in trial.spec.parameter_assignments
    )
    for k, v in (trial.spec.labels or {}).items():
        msg.spec.labels[k] = v
    st = msg.status
    st.start_time = format_seconds(trial.status.start_time)
    st.completion_time = format_seconds(trial.status.completion_time)
    st.condition = last_condition(trial)
    observation = trial.status.observation
    if observation is not None:
        for metric in observation.metrics:
            value = value_by_strategy(metric, strategy_for(trial.spec.objective, metric.name))
            st.observation.metrics.add(name=metric.name, value=value)
    return msg


# A request rebuilds only the trials that changed since the last one. The shared messages are
# copied into each request, never changed.
_message_of_version = VersionMemo(trial_message)


def trial_messages(trials: list[Trial]) -> list[api_pb2.Trial]:
    ordered = sorted(trials, key=lambda t: t.metadata.name)
    return [_message_of_version(t) for t in ordered if included_in_request(t)]


def current_request_number(suggestion: Suggestion) -> int:
    return suggestion.spec.requests - suggestion.status.suggestion_count


def pending_assignment_messages(experiment: Experiment, suggestion: Suggestion, trials: list[Trial]
                                ) -> list[api_pb2.Trial]:
    """Recorded assignments without a Trial yet, as CREATED trials (in recording order)."""
    existing = {t.metadata.name for t in trials}
    objective = objective_message(experiment.spec.objective)
    pending = []
    for assignment in suggestion.status.suggestions:
        if assignment.name in existing:
            continue
        msg = api_pb2.Trial(name=assignment.name)
        msg.spec.objective.CopyFrom(objective)
        msg.spec.parameter_assignments.assignments.extend(
            api_pb2.ParameterAssignment(name=a.name, value=a.value) for a in assignment.parameter_assignments
        )
        msg.status.condition = api_pb2.TrialStatus.CREATED
        pending.append(msg)
    return pending


def suggestions_request(experiment: Experiment, suggestion: Suggestion, trials: list[Trial], *,
                        with_objectives: bool = False) -> api_pb2.GetSuggestionsRequest:
    return api_pb2.GetSuggestionsRequest(
        experiment=experiment_message(experiment, suggestion.status.algorithm_settings,
                                      with_objectives=with_objectives),
        trials=trial_messages(trials) + pending_assignment_messages(experiment, suggestion, trials),
        current_request_number=current_request_number(suggestion),
        total_request_number=suggestion.spec.requests,
    )


def validate_request(experiment: Experiment, *, with_objectives: bool = False
                     ) -> api_pb2.ValidateAlgorithmSettingsRequest:
    """Validation sees the experiment *without* the status overlay, as in Katib."""
    return api_pb2.ValidateAlgorithmSettingsRequest(
        experiment=experiment_message(experiment, with_objectives=with_objectives))


def early_stopping_rules_request(experiment: Experiment, suggestion: Suggestion, trials: list[Trial],
                                 db_manager_address: str) -> api_pb2.GetEarlyStoppingRulesRequest:
    return api_pb2.GetEarlyStoppingRulesRequest(
        experiment=experiment_message(experiment, suggestion.status.algorithm_settings),
        trials=trial_messages(trials),
        db_manager_address=db_manager_address,
    )


def comparison_name(value: api_pb2.ComparisonType) -> str:
    """EQUAL→equal, LESS→less, GREATER→greater, anything else→equal."""
    return _COMPARISONS.get(value, "equal")
