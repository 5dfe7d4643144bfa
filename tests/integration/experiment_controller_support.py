"""Shared helpers for the experiment/suggestion controller integration tests."""

from __future__ import annotations

import copy
import time

import pytest

from sextant.controller import Key
from sextant.katib.condition_list import TRUE, set_condition
from sextant.resources.models import (
    EXPERIMENT_LABEL,
    Condition,
    Experiment,
    Metric,
    Observation,
    ParameterAssignment,
    TrialAssignment,
)


# Fixtures for the test modules to import: both run on SQLite only, each test with a store client
# of its own on a real DB manager.
@pytest.fixture(name="db_backend")
def sqlite_backend_fixture() -> str:
    return "sqlite"


@pytest.fixture(name="store")
def store_fixture(db_manager):
    s = db_manager.store()
    yield s
    s.close()


BASE = {
    "apiVersion": "kubeflow.org/v1beta1",
    "kind": "Experiment",
    "metadata": {"name": "exp", "namespace": "default"},
    "spec": {
        "objective": {"type": "maximize", "objectiveMetricName": "acc"},
        "algorithm": {"algorithmName": "random"},
        "parallelTrialCount": 2,
        "maxTrialCount": 4,
        "parameters": [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}},
        ],
        "trialTemplate": {
            "primaryContainerName": "main",
            "trialParameters": [{"name": "learningRate", "reference": "lr"}],
            "trialSpec": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "spec": {"template": {"spec": {"containers": [
                    {"name": "main", "image": "x", "command": ["train", "--lr=${trialParameters.learningRate}"]}
                ], "restartPolicy": "Never"}}},
            },
        },
    },
}


def experiment_doc(name="exp", **spec) -> dict:
    doc = copy.deepcopy(BASE)
    doc["metadata"]["name"] = name
    for k, v in spec.items():
        if v is None:
            doc["spec"].pop(k, None)
        else:
            doc["spec"][k] = v
    return doc


def create_experiment(store, name="exp", labels=None, **spec) -> Experiment:
    exp = Experiment.model_validate(experiment_doc(name, **spec))
    if labels:
        exp.metadata.labels.update(labels)
    return store.create(exp)


def key(name="exp", ns="default") -> Key:
    return Key(ns, name)


def trials_of(store, name="exp", ns="default"):
    items, _ = store.list("Trial", ns, {EXPERIMENT_LABEL: name})
    return sorted(items, key=lambda t: t.metadata.name)


def add_assignments(store, name, values, ns="default", prefix=None):
    """Plays the suggestion controller: records assignments for the outstanding requests."""
    sugg = store.get("Suggestion", ns, name)
    start = len(sugg.status.suggestions)
    for i, v in enumerate(values):
        sugg.status.suggestions.append(TrialAssignment(
            name=f"{prefix or name}-t{start + i:03d}",
            parameter_assignments=[ParameterAssignment(name="lr", value=str(v))]))
    sugg.status.suggestion_count = len(sugg.status.suggestions)
    return store.update_status(sugg)


def fill_requests(store, name="exp", ns="default", value="0.02"):
    """Records as many assignments as the Suggestion asks for; returns how many."""
    sugg = store.get("Suggestion", ns, name)
    n = sugg.spec.requests - sugg.status.suggestion_count
    if n > 0:
        add_assignments(store, name, [value] * n, ns)
    return max(n, 0)


def set_trial(store, trial_name, state, acc=None, ns="default", reason=None, message=None):
    """Plays the trial controller: Running / Succeeded (+acc) / Failed / MetricsUnavailable."""
    for _ in range(10):
        trial = store.get("Trial", ns, trial_name)
        conds = trial.status.conditions
        if state == "Running":
            set_condition(conds, "Running", TRUE, "TrialRunning", "Trial is running")
        else:
            if any(c.type == "Running" for c in conds):
                set_condition(conds, "Running", "False", "TrialRunning", "Trial is running")
            conds.append(Condition(type=state, status=TRUE, reason=reason or f"Trial{state}", message=message or ""))
        if acc is not None:
            trial.status.observation = Observation(metrics=[Metric(name="acc", min=str(acc), max=str(acc),
                                                                   latest=str(acc))])
        try:
            return store.update_status(trial)
        except Exception as err:  # noqa: BLE001 - conflict with the controller: retry
            if type(err).__name__ != "Conflict":
                raise
    raise AssertionError("could not update trial")


def last_condition(resource):
    conds = resource.status.conditions
    return (conds[-1].type, conds[-1].reason) if conds else None


def wait_for(predicate, timeout=30.0, interval=0.05, message="condition not reached"):
    """Liveness guard for event-driven tests (not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(interval)
