"""SetTrialStatus retries a stale write (Conflict) by re-reading the trial, and finds a trial by
name across namespaces. The store here is an in-memory ResourceStore that fails the first
status write with Conflict, as the SQL store does when another controller wrote in between."""

from __future__ import annotations

import pytest

from services.suggestion.earlystopping.servicer import MedianStopServicer, _Ambiguous
from sextant.resources.models import Trial
from sextant.store.interface import Conflict, NotFound, ResourceStore


def _trial(name, namespace="default"):
    return Trial.model_validate({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "acc"},
                 "runSpec": {"apiVersion": "batch/v1", "kind": "Job"}},
        "status": {"conditions": [{"type": "Running", "status": "True", "reason": "TrialRunning"}]},
    })


class ConflictOnce(ResourceStore):
    def __init__(self, trials, conflicts=1):
        self.trials = {(t.metadata.namespace, t.metadata.name): t for t in trials}
        self.conflicts = conflicts
        self.gets = 0
        self.written = []

    def get(self, kind, namespace, name):
        self.gets += 1
        try:
            return self.trials[(namespace, name)].model_copy(deep=True)
        except KeyError:
            raise NotFound(f"{kind} {namespace}/{name} not found") from None

    def list(self, kind, namespace="", labels=None):
        return [t.model_copy(deep=True) for t in self.trials.values()], 1

    def update_status(self, resource):
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict("stale resourceVersion")
        self.written.append(resource)
        return resource

    def create(self, resource, *, dry_run=False):
        raise NotImplementedError

    def update(self, resource):
        raise NotImplementedError

    def delete(self, kind, namespace, name):
        raise NotImplementedError

    def watch(self, kind="", namespace="", since=0, labels=None):
        raise NotImplementedError


def test_conflict_is_retried_after_a_fresh_read():
    store = ConflictOnce([_trial("t1")], conflicts=2)
    MedianStopServicer(store)._mark_early_stopped("t1")
    (written,) = store.written
    assert [c.type for c in written.status.conditions] == ["Running", "EarlyStopped"]
    assert store.gets == 2  # re-read after each conflict


def test_gives_up_after_too_many_conflicts():
    store = ConflictOnce([_trial("t1")], conflicts=100)
    with pytest.raises(Conflict):
        MedianStopServicer(store)._mark_early_stopped("t1")


def test_trial_lookup_by_name_and_namespace():
    store = ConflictOnce([_trial("t1", "a"), _trial("t1", "b"), _trial("t2", "b")], conflicts=0)
    with pytest.raises(_Ambiguous):
        MedianStopServicer(store)._mark_early_stopped("t1")
    MedianStopServicer(store)._mark_early_stopped("t2")
    MedianStopServicer(store, namespace="a")._mark_early_stopped("t1")
    assert [(t.metadata.namespace, t.metadata.name) for t in store.written] == [("b", "t2"), ("a", "t1")]
    with pytest.raises(NotFound):
        MedianStopServicer(store)._mark_early_stopped("nope")
