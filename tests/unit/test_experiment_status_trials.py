"""Trial construction from an assignment (Katib's naming and labels) and trial names."""

from __future__ import annotations

import re

from services.experiment_controller.trials import build_trial
from services.suggestion.controller.reconciler import random_trial_name
from sextant.katib.trial_status import mark_killed
from sextant.resources.models import (
    EXPERIMENT_LABEL,
    Condition,
    EarlyStoppingRule,
    Experiment,
    ParameterAssignment,
    TrialAssignment,
)
from sextant.resources.vocabulary import WORKING_DIR_ANNOTATION

DOC = {
    "metadata": {"name": "e", "namespace": "ns", "labels": {"team": "x"}, "uid": "u1"},
    "spec": {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "random"},
        "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "1"}}],
        "trialTemplate": {
            "retain": True, "primaryContainerName": "c", "successCondition": "status.ok",
            "trialParameters": [{"name": "rate", "reference": "lr"}, {"name": "n", "reference": "${trialSpec.Name}"}],
            "trialSpec": {"apiVersion": "batch/v1", "kind": "Job",
                          "spec": {"template": {"spec": {"containers": [
                              {"name": "c", "args": ["--lr=${trialParameters.rate}", "${trialParameters.n}"]}]}}}},
        },
        "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
    },
}


def assignment(**kw):
    return TrialAssignment(name="e-abc", parameter_assignments=[ParameterAssignment(name="lr", value="0.5")],
                           early_stopping_rules=[EarlyStoppingRule(name="loss", value="2", comparison="less")], **kw)


def test_build_trial_fields():
    exp = Experiment.model_validate(DOC)
    t = build_trial(exp, assignment(labels={"extra": "y"}))
    assert t.metadata.name == "e-abc" and t.metadata.namespace == "ns"
    assert t.metadata.labels == {"team": "x", EXPERIMENT_LABEL: "e", "extra": "y"}
    assert t.spec.labels == {"extra": "y"}  # the algorithm's labels, sent back to it with the trial
    assert build_trial(exp, assignment()).spec.labels is None
    ref = t.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Experiment", "e", "u1", True)
    assert t.spec.retain_run is True and t.spec.primary_container_name == "c"
    assert t.spec.metrics_collector.collector.kind == "StdOut"
    assert t.spec.early_stopping_rules == []  # the experiment has no early stopping
    # success/failure conditions are copied only when both are set
    assert t.spec.success_condition is None and t.spec.failure_condition is None
    args = t.spec.run_spec["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--lr=0.5", "e-abc"]
    assert t.spec.run_spec["metadata"]["name"] == "e-abc"


def test_build_trial_with_early_stopping_and_both_conditions():
    doc = {**DOC, "spec": {**DOC["spec"], "earlyStopping": {"algorithmName": "medianstop"},
                           "trialTemplate": {**DOC["spec"]["trialTemplate"], "failureCondition": "status.bad"}}}
    t = build_trial(Experiment.model_validate(doc), assignment())
    assert [r.name for r in t.spec.early_stopping_rules] == ["loss"]
    assert (t.spec.success_condition, t.spec.failure_condition) == ("status.ok", "status.bad")


def test_mark_killed_flips_running_and_is_idempotent():
    t = build_trial(Experiment.model_validate(DOC), assignment())
    t.status.conditions = [Condition(type="Created", status="True"), Condition(type="Running", status="True",
                                                                               reason="TrialRunning")]
    assert mark_killed(t, now="2024-01-01T00:00:00Z")
    assert [(c.type, c.status) for c in t.status.conditions] == [("Created", "True"), ("Running", "False"),
                                                                 ("Killed", "True")]
    assert t.status.completion_time == "2024-01-01T00:00:00Z"
    assert not mark_killed(t)


def test_random_trial_names_avoid_taken_names():
    taken = {f"e-{i:08d}" for i in range(100)}
    names = {random_trial_name("e", taken) for _ in range(200)}
    assert all(re.fullmatch(r"e-[a-z0-9]{8}", n) for n in names)
    assert not names & taken and len(names) == 200


def test_trials_carry_the_directory_their_experiment_was_submitted_from_and_no_other_annotation():
    doc = {**DOC, "metadata": {**DOC["metadata"], "annotations": {WORKING_DIR_ANNOTATION: "/home/me/project",
                                                                   "note": "not for trials"}}}
    t = build_trial(Experiment.model_validate(doc), assignment())
    assert t.metadata.annotations == {WORKING_DIR_ANNOTATION: "/home/me/project"}
    assert build_trial(Experiment.model_validate(DOC), assignment()).metadata.annotations == {}
