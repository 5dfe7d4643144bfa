"""Small Experiment manifests for the CLI tests (unit and e2e), built in one place so every test
states only what it varies: the trainer command, the budget, the algorithm."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

# (name, parameterType, min, max); bounds stay strings, as Katib's feasibleSpace has them.
Parameter = tuple[str, str, str, str]
X = ("x", "double", "0", "1")


def small_experiment(name: str, command: Sequence[str], *, metric: str = "score", goal: float | None = None,
                     algorithm: str = "random", algorithm_settings: Mapping[str, str] | None = None,
                     max_trials: int = 2, parallel: int = 2, max_failed: int | None = None,
                     parameters: Sequence[Parameter] = (X,),
                     trial_parameters: Mapping[str, str] | None = None) -> str:
    """An Experiment YAML document: a maximize objective on `metric`, a batch Job trial template
    running `command` in a container named training-container. `trial_parameters` maps each trial
    parameter to the search parameter it references (default: one per parameter, same name)."""
    objective: dict[str, Any] = {"type": "maximize", "objectiveMetricName": metric}
    if goal is not None:
        objective["goal"] = goal
    algorithm_spec: dict[str, Any] = {"algorithmName": algorithm}
    if algorithm_settings:
        algorithm_spec["algorithmSettings"] = [{"name": k, "value": v} for k, v in algorithm_settings.items()]
    spec: dict[str, Any] = {"objective": objective, "algorithm": algorithm_spec,
                            "maxTrialCount": max_trials, "parallelTrialCount": parallel}
    if max_failed is not None:
        spec["maxFailedTrialCount"] = max_failed
    spec["parameters"] = [{"name": p, "parameterType": kind, "feasibleSpace": {"min": lo, "max": hi}}
                          for p, kind, lo, hi in parameters]
    references = trial_parameters if trial_parameters is not None else {p[0]: p[0] for p in parameters}
    spec["trialTemplate"] = {
        "primaryContainerName": "training-container",
        "trialParameters": [{"name": k, "reference": v} for k, v in references.items()],
        "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
            "containers": [{"name": "training-container", "image": "local", "command": list(command)}],
            "restartPolicy": "Never"}}}},
    }
    doc = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": spec}
    return yaml.safe_dump(doc, sort_keys=False)
