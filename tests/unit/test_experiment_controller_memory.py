"""The experiment controller's end decision, on the in-memory ResourceStore (no DB manager).

The test plays the suggestion controller (records assignments) and the trial controller (sets
trial conditions); each behaviour is driven by one ``reconcile`` at a time.
"""

from __future__ import annotations

from services.experiment_controller.reconciler import ExperimentReconciler
from sextant.katib import experiment_status, suggestion_status
from sextant.store.memory import MemoryResourceStore
from tests.integration.experiment_controller_support import (
    create_experiment,
    fill_requests,
    key,
    last_condition,
    set_trial,
    trials_of,
)


def test_max_trial_count_ends_the_experiment_once_every_trial_has_finished():
    store = MemoryResourceStore()
    rec = ExperimentReconciler(store)
    create_experiment(store, parallelTrialCount=2, maxTrialCount=3)
    rec.reconcile(key())
    fill_requests(store)
    rec.reconcile(key())
    first, second = [t.metadata.name for t in trials_of(store)]

    set_trial(store, first, "Succeeded", acc=0.4)
    rec.reconcile(key())
    assert fill_requests(store) == 1  # one more, never past maxTrialCount
    rec.reconcile(key())
    third = [t.metadata.name for t in trials_of(store)][2]
    set_trial(store, second, "Succeeded", acc=0.6)
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert experiment_status.is_active(exp)  # 3 trials made, one still running: not over yet
    assert store.get("Suggestion", "default", "exp").spec.requests == 3

    set_trial(store, third, "Failed")
    rec.reconcile(key())
    exp = store.get("Experiment", "default", "exp")
    assert last_condition(exp) == (experiment_status.SUCCEEDED, experiment_status.REASON_MAX_TRIALS)
    assert (exp.status.trials, exp.status.trials_succeeded, exp.status.trials_failed) == (3, 2, 1)
    assert exp.status.current_optimal_trial.best_trial_name == second
    assert suggestion_status.is_succeeded(store.get("Suggestion", "default", "exp"))
    rec.reconcile(key())  # the end is final: nothing more is asked for or created
    assert len(trials_of(store)) == 3 and fill_requests(store) == 0
