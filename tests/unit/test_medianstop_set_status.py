"""SetTrialStatus retries a stale write (Conflict) by re-reading the trial, and finds a trial by
name across namespaces. The store is the in-memory ResourceStore; a "busy" one lets another
controller write the trial just before the servicer's status write, so the write is really stale."""

from __future__ import annotations

import pytest

from services.suggestion.earlystopping.servicer import EarlyStoppingServicer, _Ambiguous
from sextant.resources.models import Trial
from sextant.store.interface import Conflict, NotFound
from sextant.store.memory import MemoryResourceStore


def _trial(name, namespace="default"):
    return Trial.model_validate({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "acc"},
                 "runSpec": {"apiVersion": "batch/v1", "kind": "Job"}},
        "status": {"conditions": [{"type": "Running", "status": "True", "reason": "TrialRunning"}]},
    })


class BusyStore(MemoryResourceStore):
    """Before each of the first ``interruptions`` status writes, another writer changes the trial."""

    def __init__(self, trials, interruptions=0):
        super().__init__()
        for t in trials:
            self.create(t)
        self.interruptions = interruptions
        self.tried = 0

    def update_status(self, resource):
        self.tried += 1
        if self.interruptions:
            self.interruptions -= 1
            other = self.get("Trial", resource.metadata.namespace, resource.metadata.name)
            other.status.last_reconcile_time = f"2024-01-01T00:00:{self.interruptions:02d}Z"
            super().update_status(other)
        return super().update_status(resource)


def _conditions(store, name, namespace="default"):
    return [c.type for c in store.get("Trial", namespace, name).status.conditions]


def test_conflict_is_retried_after_a_fresh_read_and_keeps_the_other_write():
    store = BusyStore([_trial("t1")], interruptions=2)
    EarlyStoppingServicer(store)._mark_early_stopped("t1")
    assert store.tried == 3  # two stale writes, then one on a fresh read
    after = store.get("Trial", "default", "t1")
    assert [c.type for c in after.status.conditions] == ["Running", "EarlyStopped"]
    assert after.status.last_reconcile_time == "2024-01-01T00:00:00Z"  # the other writer's last change


def test_gives_up_after_too_many_conflicts():
    store = BusyStore([_trial("t1")], interruptions=100)
    with pytest.raises(Conflict):
        EarlyStoppingServicer(store)._mark_early_stopped("t1")
    assert _conditions(store, "t1") == ["Running"]


def test_trial_lookup_by_name_and_namespace():
    store = BusyStore([_trial("t1", "a"), _trial("t1", "b"), _trial("t2", "b")])
    with pytest.raises(_Ambiguous):
        EarlyStoppingServicer(store)._mark_early_stopped("t1")
    EarlyStoppingServicer(store)._mark_early_stopped("t2")
    EarlyStoppingServicer(store, namespace="a")._mark_early_stopped("t1")
    assert _conditions(store, "t2", "b") == _conditions(store, "t1", "a") == ["Running", "EarlyStopped"]
    assert _conditions(store, "t1", "b") == ["Running"]
    with pytest.raises(NotFound):
        EarlyStoppingServicer(store)._mark_early_stopped("nope")
