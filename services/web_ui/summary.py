"""Turning stored Experiments and Trials into the small JSON shapes the pages draw from.

Everything here is a pure function of resources, so it is tested without a server. The
experiment page gets all of its trials in one document (``trials_table``): columns, not rows,
so 2,000 trials cost one array per parameter instead of 2,000 objects.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from services.suggestion.controller.shared_services import shared_name
from sextant.katib import experiment_status, trial_status
from sextant.katib.condition_list import current_condition_type
from sextant.resources.models import Experiment, ParameterType, ResumePolicy, Trial, to_doc
from sextant.timestamps import parse_time


def status_word(resource: Experiment | Trial) -> str:
    """Katib's word for a resource's state: its last condition (what kubectl's STATUS shows)."""
    return current_condition_type(resource) or "Pending"


def objective_strategy(experiment: Experiment) -> str:
    """How a trial's objective value is read from its metric: min, max or latest."""
    objective = experiment.spec.objective
    if objective is None:
        return "latest"
    for strategy in objective.metric_strategies:
        if strategy.name == objective.objective_metric_name:
            return str(strategy.value)
    return "min" if str(objective.type) == "minimize" else "max"


def metric_value(trial: dict[str, Any], name: str, strategy: str = "latest") -> float | None:
    """A trial document's value of metric ``name`` (its ``min``, ``max`` or ``latest``)."""
    observation = (trial.get("status") or {}).get("observation") or {}
    for metric in observation.get("metrics") or ():
        if metric.get("name") == name:
            return _number(metric.get(strategy, metric.get("latest")))
    return None


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def experiment_summary(exp: Experiment) -> dict[str, Any]:
    """One row of the experiments list."""
    spec, status = exp.spec, exp.status
    objective = spec.objective
    best = None
    optimal = status.current_optimal_trial
    if optimal is not None and optimal.best_trial_name and objective is not None:
        for metric in optimal.observation.metrics:
            if metric.name == objective.objective_metric_name:
                best = _number(getattr(metric, objective_strategy(exp), metric.latest))
    return {
        "namespace": exp.metadata.namespace,
        "name": exp.metadata.name,
        "status": status_word(exp),
        "algorithm": spec.algorithm.algorithm_name if spec.algorithm else "",
        "objective": {
            "type": str(objective.type) if objective else "",
            "metric": objective.objective_metric_name if objective else "",
            "goal": objective.goal if objective else None,
        },
        "best": best,
        "bestTrial": optimal.best_trial_name if optimal else "",
        "trials": status.trials,
        "succeeded": status.trials_succeeded,
        "running": status.trials_running,
        "pending": status.trials_pending,
        "failed": status.trials_failed,
        "killed": status.trials_killed,
        "earlyStopped": status.trials_early_stopped,
        "metricsUnavailable": status.trial_metrics_unavailable,
        "max": spec.max_trial_count,
        "parallel": spec.parallel_trial_count,
        "created": exp.metadata.creation_timestamp,
        "completed": status.completion_time,
        "finished": experiment_status.is_finished(exp),
    }


def shared_service_users(experiments: list[Experiment]) -> dict[str, list[dict[str, str]]]:
    """By shared algorithm service name: the unfinished experiments it serves (the suggestion
    controller's choice in shared mode; a ``FromVolume`` experiment keeps a service of its own)."""
    users: dict[str, list[dict[str, str]]] = {}
    for exp in experiments:
        spec = exp.spec
        if spec.algorithm is None or spec.resume_policy == ResumePolicy.FROM_VOLUME:
            continue
        if experiment_status.is_finished(exp):
            continue
        early = spec.early_stopping.algorithm_name if spec.early_stopping is not None else None
        users.setdefault(shared_name(spec.algorithm.algorithm_name, early), []).append(
            {"namespace": exp.metadata.namespace, "name": exp.metadata.name})
    for rows in users.values():
        rows.sort(key=lambda r: (r["namespace"], r["name"]))
    return users


def _parameter_value(text: str, kind: str) -> Any:
    if kind in (ParameterType.DOUBLE, ParameterType.INT, ParameterType.DISCRETE):
        number = _number(text)
        if number is not None:
            return number
    return text


def _creation_key(trial: dict[str, Any]) -> tuple[float, str]:
    meta = trial.get("metadata") or {}
    created = parse_time(meta.get("creationTimestamp"))
    return (created.timestamp() if created else math.inf, str(meta.get("name", "")))


def trials_table(exp: Experiment, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Every trial of an experiment as columns: names, statuses, each parameter, each metric.

    ``trials`` are documents, not models: the store hands them over without validation, which
    for thousands of trials is most of the cost of the experiment page's request.
    Trials come in creation order (the order the algorithm proposed them), which is the x axis
    of the optimisation history. ``objective`` is the value the experiment optimises (read with
    its metric strategy); ``best`` is the best so far over trials whose value counts (succeeded
    or early-stopped ones), or None before the first.
    """
    trials = sorted(trials, key=_creation_key)
    kinds = {p.name: str(p.parameter_type) for p in exp.spec.parameters}
    objective = exp.spec.objective
    metric_name = objective.objective_metric_name if objective else ""
    maximize = objective is not None and str(objective.type) == "maximize"
    strategy = objective_strategy(exp)
    metric_names = [metric_name] + (list(objective.additional_metric_names) if objective else [])
    metric_names = [m for m in dict.fromkeys(metric_names) if m]
    params: dict[str, list[Any]] = {name: [] for name in kinds}
    metrics: dict[str, list[float | None]] = {name: [] for name in metric_names}
    names, statuses, values, best, started, finished = [], [], [], [], [], []
    done, failed = [], []
    running_best: float | None = None
    counted = (trial_status.SUCCEEDED, trial_status.EARLY_STOPPED)
    for trial in trials:
        meta, spec, st = trial.get("metadata") or {}, trial.get("spec") or {}, trial.get("status") or {}
        names.append(meta.get("name", ""))
        status = current_condition_type(trial) or "Pending"
        statuses.append(status)
        done.append(trial_status.is_finished(trial))
        failed.append(trial_status.ended_in_failure(trial))
        assigned = {a.get("name"): a.get("value") for a in spec.get("parameterAssignments") or ()}
        for name, kind in kinds.items():
            raw = assigned.get(name)
            params[name].append(None if raw is None else _parameter_value(str(raw), kind))
        value = metric_value(trial, metric_name, strategy) if metric_name else None
        values.append(value)
        if value is not None and status in counted:
            if running_best is None or (value > running_best if maximize else value < running_best):
                running_best = value
        best.append(running_best)
        for name in metric_names:
            metrics[name].append(metric_value(trial, name, "latest"))
        started.append(st.get("startTime") or meta.get("creationTimestamp"))
        finished.append(st.get("completionTime"))
    return {
        "names": names, "status": statuses, "objective": values, "best": best,
        "parameters": params, "parameterTypes": kinds, "metrics": metrics,
        "started": started, "finished": finished,  # start and completion times
        "done": done, "failed": failed,  # whether each trial is over, and over without a result
    }


def experiment_detail(exp: Experiment, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The experiment page's one document: summary, spec, conditions, optimum, trials."""
    spec = exp.spec
    return {
        "summary": experiment_summary(exp),
        "spec": to_doc(spec),
        "conditions": [to_doc(c) for c in exp.status.conditions],
        "optimal": to_doc(exp.status.current_optimal_trial) if exp.status.current_optimal_trial else None,
        "startTime": exp.status.start_time,
        "trials": trials_table(exp, trials),
    }


def trial_detail(trial: Trial) -> dict[str, Any]:
    return {
        "namespace": trial.metadata.namespace,
        "name": trial.metadata.name,
        "experiment": trial.metadata.labels.get("katib.kubeflow.org/experiment", ""),
        "status": status_word(trial),
        "finished": trial_status.is_finished(trial),
        "failed": trial_status.ended_in_failure(trial),
        "parameters": [to_doc(a) for a in trial.spec.parameter_assignments],
        "conditions": [to_doc(c) for c in trial.status.conditions],
        "metrics": [to_doc(m) for m in (trial.status.observation.metrics if trial.status.observation else [])],
        "earlyStoppingRules": [to_doc(r) for r in trial.spec.early_stopping_rules],
        "runSpecYaml": yaml.safe_dump(trial.spec.run_spec, sort_keys=False) if trial.spec.run_spec else "",
        "startTime": trial.status.start_time,
        "completionTime": trial.status.completion_time,
        "created": trial.metadata.creation_timestamp,
    }
