"""The experiment controller against a real DB manager on SQLite.

The test plays the suggestion controller (records assignments) and the trial controller (sets
trial conditions), so each behaviour is driven step by step through ``reconcile``; one test
runs the threaded controller with informers, including a restart mid-experiment.
"""

from __future__ import annotations

import pytest

from services.experiment_controller.__main__ import build_controller
from services.experiment_controller.reconciler import ExperimentReconciler
from sextant.katib import trial_status as ts
from sextant.katib.condition_list import TRUE, set_condition
from sextant.katib.experiment_status import (
    MSG_SUGGESTION_FAILED,
    REASON_FAILED,
    REASON_GOAL_REACHED,
    REASON_MAX_TRIALS,
    REASON_SUGGESTION_END,
)
from sextant.katib.suggestion_status import EXHAUSTED as SUGGESTION_EXHAUSTED
from sextant.katib.suggestion_status import REASON_END_REACHED as SUGG_END
from sextant.resources.models import EXPERIMENT_LABEL

from .experiment_controller_support import (
    add_assignments,
    create_experiment,
    fill_requests,
    key,
    last_condition,
    set_trial,
    sqlite_backend_fixture,  # noqa: F401 - fixture db_backend (SQLite)
    store_fixture,  # noqa: F401 - fixture store
    trials_of,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("experiment_controller")


@pytest.fixture
def rec(store):
    return ExperimentReconciler(store)


def step(rec, store, name="exp", fill=True):
    """One experiment reconcile, then (optionally) the suggestion side, then another reconcile."""
    rec.reconcile(key(name))
    if fill and fill_requests(store, name):
        rec.reconcile(key(name))


def test_creates_suggestion_and_trials_from_assignments(store, rec):
    create_experiment(store, labels={"team": "a"})
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Created", "ExperimentCreated") and exp.status.start_time
    sugg = store.get("Suggestion", "default", "exp")
    assert sugg.spec.requests == 2 and sugg.spec.algorithm.algorithm_name == "random"
    assert sugg.metadata.owner_references[0].kind == "Experiment"
    assert sugg.metadata.labels[EXPERIMENT_LABEL] == "exp" and sugg.metadata.labels["team"] == "a"
    assert trials_of(store) == []

    add_assignments(store, "exp", ["0.011", "0.022"])
    rec.reconcile(key())
    trials = trials_of(store)
    assert [t.metadata.name for t in trials] == ["exp-t000", "exp-t001"]
    t = trials[1]
    assert t.metadata.labels == {"team": "a", EXPERIMENT_LABEL: "exp"}
    assert t.metadata.owner_references[0].name == "exp"
    assert t.spec.parameter_assignments[0].value == "0.022"
    assert t.spec.objective.objective_metric_name == "acc"
    assert t.spec.primary_container_name == "main"
    container = t.spec.run_spec["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["train", "--lr=0.022"]
    assert t.spec.run_spec["metadata"]["name"] == "exp-t001"

    rec.reconcile(key())  # reconciling again changes nothing and duplicates nothing
    assert len(trials_of(store)) == 2
    exp = store.get("Experiment", "default", "exp")
    assert exp.status.trials == 2 and exp.status.pending_trial_list == ["exp-t000", "exp-t001"]
    assert last_condition(exp) == ("Running", "ExperimentRunning")


def test_requests_follow_completions_and_max_trials_ends_with_kill(store, rec):
    create_experiment(store, parallelTrialCount=2, maxTrialCount=3)
    step(rec, store)
    a, b = [t.metadata.name for t in trials_of(store)]
    set_trial(store, a, "Running")
    set_trial(store, b, "Running")
    set_trial(store, a, "Succeeded", acc=0.5)
    rec.reconcile(key())
    assert store.get("Suggestion", "default", "exp").spec.requests == 3  # 2 trials + 1 to add
    fill_requests(store)
    rec.reconcile(key())
    rec.reconcile(key())
    names = [t.metadata.name for t in trials_of(store)]
    assert len(names) == 3
    # requests never exceed maxTrialCount: 1 completed, 2 active = parallel
    assert store.get("Suggestion", "default", "exp").spec.requests == 3
    set_trial(store, b, "Failed")
    set_trial(store, names[2], "Running")
    rec.reconcile(key())
    assert store.get("Suggestion", "default", "exp").spec.requests == 3  # 2 completed: 1 more at most
    set_trial(store, names[2], "MetricsUnavailable")
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Succeeded", REASON_MAX_TRIALS)
    assert (exp.status.trials_succeeded, exp.status.trials_failed, exp.status.trial_metrics_unavailable) == (1, 1, 1)
    assert exp.status.current_optimal_trial.best_trial_name == a
    sugg = store.get("Suggestion", "default", "exp")
    assert last_condition(sugg) == ("Succeeded", "Experiment is succeeded")  # Never: tear down


def test_goal_reached_kills_active_trials_and_picks_optimal(store, rec):
    create_experiment(store, parallelTrialCount=3, maxTrialCount=10,
                      objective={"type": "maximize", "objectiveMetricName": "acc", "goal": 0.9})
    step(rec, store)
    a, b, c = [t.metadata.name for t in trials_of(store)]
    set_trial(store, a, "Succeeded", acc=0.7)
    set_trial(store, b, "Running")
    set_trial(store, c, "Succeeded", acc=0.95)
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Succeeded", REASON_GOAL_REACHED)
    assert exp.status.current_optimal_trial.best_trial_name == c
    assert exp.status.current_optimal_trial.observation.metrics[0].latest == "0.95"
    killed = store.get("Trial", "default", b)
    assert last_condition(killed) == ("Killed", "TrialKilled")
    assert any(cd.type == "Running" and cd.status == "False" for cd in killed.status.conditions)
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert exp.status.killed_trial_list == [b] and exp.status.trials_running == 0
    assert len(trials_of(store)) == 3  # no new trial after the end


def test_max_failed_counts_metrics_unavailable(store, rec):
    create_experiment(store, parallelTrialCount=2, maxTrialCount=10, maxFailedTrialCount=2)
    step(rec, store)
    a, b = [t.metadata.name for t in trials_of(store)]
    set_trial(store, a, "Failed")
    rec.reconcile(key())
    assert last_condition(store.get("Experiment", "default", "exp"))[0] == "Running"
    set_trial(store, b, "MetricsUnavailable")
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Failed", REASON_FAILED)
    # Katib's words first, then the most common failure (a tie: the first trial by name).
    assert exp.status.conditions[-1].message == \
        "Experiment has failed because max failed count has reached. Most common trial failure (1 of 2): TrialFailed"


def test_max_failed_message_names_the_most_common_trial_failure(store, rec):
    create_experiment(store, parallelTrialCount=3, maxTrialCount=10, maxFailedTrialCount=3)
    step(rec, store)
    a, b, c = sorted(t.metadata.name for t in trials_of(store))
    missing_file = ts.failed_message("", exit_code=2, output_tail="python3: can't open file '/opt/mnist.py'")
    set_trial(store, a, "MetricsUnavailable", reason="MetricsUnavailable", message="Metrics are not available")
    for name in (b, c):
        set_trial(store, name, "Failed", reason=ts.failed_reason("Error"), message=missing_file)
    rec.reconcile(key())
    message = store.get("Experiment", "default", "exp").status.conditions[-1].message
    assert message == ("Experiment has failed because max failed count has reached. Most common trial failure "
                       "(2 of 3): Error: exit code 2: python3: can't open file '/opt/mnist.py'")


def test_lowering_parallelism_deletes_newest_active_and_forgets_their_assignments(store, rec):
    create_experiment(store, parallelTrialCount=3, maxTrialCount=10)
    step(rec, store)
    names = [t.metadata.name for t in trials_of(store)]
    assert len(names) == 3
    set_trial(store, names[0], "Running")
    exp = store.get("Experiment", "default", "exp")
    exp.spec.parallel_trial_count = 1
    store.update(exp)
    rec.reconcile(key())
    remaining = trials_of(store)
    assert len(remaining) == 1
    sugg = store.get("Suggestion", "default", "exp")
    assert sugg.spec.requests == 1 and sugg.status.suggestion_count == 1
    assert [a.name for a in sugg.status.suggestions] == [remaining[0].metadata.name]
    rec.reconcile(key())  # deleted trials do not come back
    assert len(trials_of(store)) == 1
    set_trial(store, remaining[0].metadata.name, "Succeeded", acc=0.5)
    rec.reconcile(key())
    assert store.get("Suggestion", "default", "exp").spec.requests == 2  # one at a time now


def test_suggestion_failure_fails_the_experiment(store, rec):
    create_experiment(store)
    rec.reconcile(key())
    sugg = store.get("Suggestion", "default", "exp")
    set_condition(sugg.status.conditions, "Failed", TRUE, "SuggestionFailed", "Validation failed: bad")
    store.update_status(sugg)
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Failed", REASON_FAILED)
    # Katib's message, then the cause (issue 21: a failed experiment says why).
    assert exp.status.conditions[-1].message == f"{MSG_SUGGESTION_FAILED}: Validation failed: bad"


def test_exhaustion_ends_after_the_last_trial(store, rec):
    create_experiment(store, parallelTrialCount=2, maxTrialCount=None)
    step(rec, store)
    a, b = [t.metadata.name for t in trials_of(store)]
    sugg = store.get("Suggestion", "default", "exp")
    set_condition(sugg.status.conditions, SUGGESTION_EXHAUSTED, TRUE, SUGG_END, "done")
    store.update_status(sugg)
    set_trial(store, a, "Succeeded", acc=0.1)
    rec.reconcile(key())
    assert last_condition(store.get("Experiment", "default", "exp"))[0] == "Running"
    set_trial(store, b, "Succeeded", acc=0.2)
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Succeeded", REASON_SUGGESTION_END)


def test_long_running_restart_when_max_trials_is_raised(store, rec):
    create_experiment(store, parallelTrialCount=1, maxTrialCount=1, resumePolicy="LongRunning")
    step(rec, store)
    (a,) = [t.metadata.name for t in trials_of(store)]
    set_trial(store, a, "Succeeded", acc=0.3)
    rec.reconcile(key())
    assert last_condition(store.get("Experiment", "default", "exp")) == ("Succeeded", REASON_MAX_TRIALS)
    sugg = store.get("Suggestion", "default", "exp")
    assert not any(c.type == "Succeeded" for c in sugg.status.conditions)  # LongRunning keeps it
    exp = store.get("Experiment", "default", "exp")
    exp.spec.max_trial_count = 2
    store.update(exp)
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    types = [c.type for c in exp.status.conditions]
    assert "Succeeded" not in types and types[-1] == "Running" and "Restarting" in types
    assert store.get("Suggestion", "default", "exp").spec.requests == 2


def test_from_volume_restart_reopens_the_suggestion(store, rec):
    create_experiment(store, parallelTrialCount=1, maxTrialCount=1, resumePolicy="FromVolume")
    step(rec, store)
    (a,) = [t.metadata.name for t in trials_of(store)]
    set_trial(store, a, "Succeeded", acc=0.3)
    rec.reconcile(key())
    sugg = store.get("Suggestion", "default", "exp")
    assert last_condition(sugg)[0] == "Succeeded"
    assert "can be restarted" in sugg.status.conditions[-1].message
    exp = store.get("Experiment", "default", "exp")
    exp.spec.max_trial_count = 3
    store.update(exp)
    rec.reconcile(key())
    sugg = store.get("Suggestion", "default", "exp")
    assert not any(c.type == "Succeeded" for c in sugg.status.conditions)
    assert last_condition(sugg) == ("Running", "Experiment is restarting")
    assert sugg.spec.requests == 2


def test_restart_mid_experiment_neither_duplicates_nor_loses(store):
    """Threaded controller + informers; stopped while assignments are pending, then restarted."""
    create_experiment(store, parallelTrialCount=3, maxTrialCount=6)
    c1 = build_controller(store, workers=2, resync_seconds=5)
    c1.start()
    try:
        wait_for(lambda: store.get("Suggestion", "default", "exp").spec.requests == 3
                 if _exists(store) else False)
        fill_requests(store)
        wait_for(lambda: len(trials_of(store)) == 3)
    finally:
        c1.stop()
    first = [t.metadata.name for t in trials_of(store)]
    for name in first:
        set_trial(store, name, "Succeeded", acc=0.5)
    # a fresh controller finds everything by listing; a second one runs alongside to race it
    c2 = build_controller(store, workers=2, resync_seconds=5)
    c3 = build_controller(store, workers=2, resync_seconds=5)
    c2.start()
    c3.start()
    try:
        wait_for(lambda: store.get("Suggestion", "default", "exp").spec.requests == 6)
        fill_requests(store)
        wait_for(lambda: len(trials_of(store)) == 6)
        for t in trials_of(store):
            if t.metadata.name not in first:
                set_trial(store, t.metadata.name, "Succeeded", acc=0.6)
        wait_for(lambda: last_condition(store.get("Experiment", "default", "exp"))
                 == ("Succeeded", REASON_MAX_TRIALS))
    finally:
        c2.stop()
        c3.stop()
    names = [t.metadata.name for t in trials_of(store)]
    assert len(names) == len(set(names)) == 6
    sugg = store.get("Suggestion", "default", "exp")
    assert sorted(a.name for a in sugg.status.suggestions) == sorted(names)  # nothing lost
    exp = store.get("Experiment", "default", "exp")
    assert exp.status.trials_succeeded == 6


def _exists(store):
    try:
        store.get("Suggestion", "default", "exp")
        return True
    except Exception:  # noqa: BLE001
        return False


def test_count_only_status_changes_are_written_at_most_once_per_interval(store):
    """With a status interval, a pass whose only news is trial counts waits (asks to be looked
    at again when it may write) instead of writing; a condition change is written at once."""
    rec = ExperimentReconciler(store, status_interval=30.0)
    create_experiment(store, parallelTrialCount=2, maxTrialCount=2)
    assert rec.reconcile(key()) is None  # Created: a condition, written at once
    fill_requests(store)
    rec.reconcile(key())  # the trials are created
    names = [t.metadata.name for t in trials_of(store)]
    assert len(names) == 2
    set_trial(store, names[0], "Running")
    assert rec.reconcile(key()) is None  # the experiment is Running now: a condition
    set_trial(store, names[1], "Running")
    written = store.get("Experiment", "default", "exp").metadata.resource_version
    result = rec.reconcile(key())  # one more running trial: counts only
    assert result is not None and 0 < result.requeue_after <= 30.0
    assert store.get("Experiment", "default", "exp").metadata.resource_version == written
    for name in names:
        set_trial(store, name, "Succeeded", acc=0.5)
    assert rec.reconcile(key()) is None  # Succeeded: the condition and the counts go out together
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == ("Succeeded", REASON_MAX_TRIALS) and exp.status.trials_succeeded == 2
