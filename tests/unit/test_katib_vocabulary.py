"""The status words users grep for are Katib's, spelled once in ``sextant.katib``.

The expected strings are Katib's own (its experiment, trial and suggestion controllers' status
utilities); a rename in Sextant would break dashboards and scripts written for Katib.
"""

from __future__ import annotations

import pytest

from sextant.katib import condition_list, experiment_status, suggestion_status, trial_status
from sextant.resources.models import Condition, Experiment, Suggestion, Trial


def test_experiment_condition_types_and_reasons_are_katibs():
    assert experiment_status.CONDITION_TYPES == ("Created", "Running", "Restarting", "Succeeded", "Failed")
    assert (experiment_status.REASON_CREATED, experiment_status.REASON_RUNNING,
            experiment_status.REASON_RESTARTING, experiment_status.REASON_GOAL_REACHED,
            experiment_status.REASON_MAX_TRIALS, experiment_status.REASON_SUGGESTION_END,
            experiment_status.REASON_FAILED) == (
        "ExperimentCreated", "ExperimentRunning", "ExperimentRestarting", "ExperimentGoalReached",
        "ExperimentMaxTrialsReached", "ExperimentSuggestionEndReached", "ExperimentFailed")
    assert experiment_status.MSG_CREATED == "Experiment is created"
    assert experiment_status.MSG_RUNNING == "Experiment is running"
    assert experiment_status.MSG_RESTARTING == "Experiment is restarted"
    assert experiment_status.MSG_GOAL_REACHED == "Experiment has succeeded because Objective goal has reached"
    assert experiment_status.MSG_MAX_FAILED == "Experiment has failed because max failed count has reached"
    assert experiment_status.MSG_MAX_TRIALS == "Experiment has succeeded because max trial count has reached"
    assert experiment_status.MSG_SUGGESTION_FAILED == "Suggestion has failed"


def test_trial_condition_types_and_reasons_are_katibs():
    assert set(trial_status.CONDITION_TYPES) == {
        "Created", "Running", "Succeeded", "Killed", "Failed", "MetricsUnavailable", "EarlyStopped"}
    assert (trial_status.REASON_CREATED, trial_status.REASON_RUNNING, trial_status.REASON_SUCCEEDED,
            trial_status.REASON_FAILED, trial_status.REASON_METRICS_UNAVAILABLE,
            trial_status.REASON_EARLY_STOPPED) == (
        "TrialCreated", "TrialRunning", "TrialSucceeded", "TrialFailed", "MetricsUnavailable",
        "TrialEarlyStopped")
    # Katib defines Killed without a reason; Sextant's follows the Trial<Type> pattern.
    assert trial_status.REASON_KILLED == "TrialKilled"
    assert trial_status.MSG_EARLY_STOPPED == "Trial is early stopped"
    assert trial_status.failed_reason("OOMKilled") == "TrialFailed. Job reason: OOMKilled"
    assert trial_status.failed_message("exit 1") == "Trial has failed. Job message: exit 1"


def test_suggestion_condition_types_and_reasons_are_katibs():
    katib = ("Created", "DeploymentReady", "Running", "Succeeded", "Failed")
    assert suggestion_status.CONDITION_TYPES[:len(katib)] == katib
    assert (suggestion_status.REASON_CREATED, suggestion_status.REASON_DEPLOYMENT_READY,
            suggestion_status.REASON_DEPLOYMENT_NOT_READY, suggestion_status.REASON_RUNNING,
            suggestion_status.REASON_FAILED) == (
        "SuggestionCreated", "DeploymentReady", "DeploymentNotReady", "SuggestionRunning", "SuggestionFailed")
    assert suggestion_status.REASON_SUCCEEDED == "Experiment is succeeded"
    assert suggestion_status.REASON_RUNNING_SUCCEEDED == "Suggestion is succeeded"
    assert suggestion_status.REASON_RESTARTING == "Experiment is restarting"


def test_the_two_end_reached_reasons_are_distinct():
    # The Suggestion's own condition and the Experiment's reason are different words on purpose.
    assert suggestion_status.REASON_END_REACHED == "SuggestionEndReached"
    assert experiment_status.REASON_SUGGESTION_END == "ExperimentSuggestionEndReached"


def _conds(*types_status: tuple[str, str]) -> list[Condition]:
    return [Condition(type=t, status=s, reason=t) for t, s in types_status]


@pytest.mark.parametrize("terminal", ["Succeeded", "Failed", "Killed", "EarlyStopped", "MetricsUnavailable"])
def test_trial_finished_for_each_terminal_type_model_and_document(terminal):
    trial = Trial.model_validate({"metadata": {"name": "t"}, "spec": {}})
    trial.status.conditions = _conds(("Created", "True"), ("Running", "False"), (terminal, "True"))
    doc = {"status": {"conditions": [c.model_dump(by_alias=True) for c in trial.status.conditions]}}
    assert trial_status.is_finished(trial) and trial_status.is_finished(doc)
    assert not trial_status.is_active(trial)


def test_trial_not_finished_while_running_or_terminal_false():
    trial = Trial.model_validate({"metadata": {"name": "t"}, "spec": {}})
    trial.status.conditions = _conds(("Created", "True"), ("Running", "True"), ("Succeeded", "False"))
    assert not trial_status.is_finished(trial) and trial_status.is_active(trial)
    assert trial_status.is_running(trial)
    assert not trial_status.is_finished({}) and not trial_status.is_finished({"status": None})


def test_experiment_predicates_on_a_document():
    doc = {"status": {"conditions": [{"type": "Created", "status": "True"},
                                     {"type": "Running", "status": "False"},
                                     {"type": "Failed", "status": "True"}]}}
    assert experiment_status.is_failed(doc) and experiment_status.is_finished(doc)
    assert not experiment_status.is_succeeded(doc)
    assert condition_list.current_condition_type(doc) == "Failed"


def test_experiment_marks_keep_katibs_order():
    exp = Experiment.model_validate({"metadata": {"name": "e"}, "spec": {}})
    assert experiment_status.mark_created(exp, now="2024-01-01T00:00:00Z")
    assert experiment_status.mark_running(exp, now="2024-01-01T00:00:01Z")
    assert experiment_status.mark_succeeded(exp, experiment_status.REASON_MAX_TRIALS,
                                            experiment_status.MSG_MAX_TRIALS, now="2024-01-01T00:00:02Z")
    assert [(c.type, c.status) for c in exp.status.conditions] == [
        ("Created", "True"), ("Running", "False"), ("Succeeded", "True")]
    assert exp.status.completion_time == "2024-01-01T00:00:02Z"
    assert experiment_status.is_finished(exp) and not experiment_status.is_active(exp)


def test_a_starting_algorithm_service_says_so_and_for_how_long_on_both_resources():
    """Sextant's: while the algorithm service starts, DeploymentReady=False names it and counts
    the seconds from when it became False; the experiment's Created message repeats it until
    the service serves, and never once the experiment runs."""
    sugg = Suggestion.model_validate({"metadata": {"name": "e"}, "spec": {"algorithm": {"algorithmName": "tpe"}}})
    exp = Experiment.model_validate({"metadata": {"name": "e"}, "spec": {}})
    experiment_status.mark_created(exp, now="2024-01-01T00:00:00Z")
    service = "sextant-system/tpe"
    assert suggestion_status.mark_service_starting(sugg, service, now="2024-01-01T00:00:00Z")
    assert not suggestion_status.mark_service_starting(sugg, service, now="2024-01-01T00:00:00Z")
    assert suggestion_status.mark_service_starting(sugg, service, "health: UNAVAILABLE", now="2024-01-01T00:00:07Z")
    cond = sugg.status.conditions[-1]
    assert (cond.type, cond.status, cond.reason) == ("DeploymentReady", "False", "DeploymentNotReady")
    assert cond.message == ("Deployment is not ready: the algorithm service sextant-system/tpe is starting "
                            "(7 s so far); health: UNAVAILABLE")
    assert cond.last_transition_time == "2024-01-01T00:00:00Z" and cond.last_update_time == "2024-01-01T00:00:07Z"
    suggestion_status.mark_service_starting(sugg, service, now="2024-01-01T00:00:23Z")
    assert "(20 s so far)" in sugg.status.conditions[-1].message  # 5 s steps after 10 s

    assert experiment_status.mark_waiting_for_algorithm(exp, sugg)
    assert exp.status.conditions[-1].message == f"Experiment is created; {sugg.status.conditions[-1].message}"
    assert not experiment_status.mark_waiting_for_algorithm(exp, sugg)
    suggestion_status.mark_deployment_ready(sugg, True)
    assert suggestion_status.starting_service_message(sugg) == ""
    assert experiment_status.mark_waiting_for_algorithm(exp, sugg)
    assert exp.status.conditions[-1].message == "Experiment is created"

    suggestion_status.mark_service_starting(sugg, service, now="2024-01-01T00:01:00Z")  # it died
    assert "(0 s so far)" in sugg.status.conditions[-1].message
    experiment_status.mark_running(exp)
    assert not experiment_status.mark_waiting_for_algorithm(exp, sugg)
    assert exp.status.conditions[0].message == "Experiment is created"
