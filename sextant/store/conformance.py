"""The ResourceStore contract, as pytest tests every implementation must pass.

To test a store, subclass ``ResourceStoreContract`` in a test module and give it two fixtures:
``store`` (the ResourceStore under test) and ``capabilities`` (what it declares it can do):

    from sextant.store.conformance import Capabilities, ResourceStoreContract

    class TestMyStore(ResourceStoreContract):
        @pytest.fixture
        def store(self):
            with MyStore(...) as store:
                yield store

        @pytest.fixture
        def capabilities(self):
            return Capabilities(bookmark_seconds=1.0, retained=16, expires_after=80)

The store may be shared between tests and hold other resources: every test works in namespaces
of its own and measures versions from what it reads first. What a store cannot do is declared in
``Capabilities``; a test that needs it then reports the declaration (a skip naming it), it is
never silently left out.

The contract, as the tests below state it:

* create: a new uid, the next resourceVersion, generation 1, a creation time; Experiments are
  defaulted and validated (Katib's admission); a bad document is Invalid with one message per
  field; an existing (kind, namespace, name) is AlreadyExists; dry_run stores nothing.
* get/list: NotFound; list by kind, namespace (empty: all) and label pairs, ordered by namespace
  then name, with the store version it was read at.
* update writes labels, annotations, owner references and spec (generation counts spec
  changes); update_status writes only the status; either with a stale resourceVersion is Conflict
  and changes nothing; without one it applies to the current version; a write that changes
  nothing keeps the version and sends no event.
* delete is immediate (Sextant sets no finalizers) and removes everything the resource owns,
  transitively, in its namespace; with a stale resource_version it is Conflict.
* watch from a version replays every later change in version order (filtered by kind,
  namespace and labels), then follows new ones; from 0 it starts now; a version outside the kept
  history is Expired; a watch never skips a change silently; a bookmark comes as soon as the
  replay is sent, then every so often;
  ``cancel()`` from another thread ends it; calling watch() makes no request, the first
  ``next()`` opens the watch and raises its errors.
"""

# The interface types resources as pydantic's BaseModel (any kind) and a watch event's object as
# optional; the tests read Trial and Experiment fields off them (about 80 reads), so these three
# codes stay off here rather than a cast at every read.
# mypy: disable-error-code="attr-defined, union-attr, arg-type"
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sextant.resources.models import (
    Event,
    Experiment,
    ObjectMeta,
    OwnerReference,
    Suggestion,
    SuggestionSpec,
    Trial,
)
from sextant.store.interface import (
    AlreadyExists,
    Conflict,
    EventType,
    Expired,
    Invalid,
    NotFound,
    Resource,
    ResourceStore,
    WatchEvent,
    WatchStream,
)

WAIT = 10.0  # seconds a test waits for an event that must come
MIN_RETAINED = 24


@dataclass(frozen=True)
class Capabilities:
    """What the store under test declares.

    ``bookmark_seconds``: the interval it sends BOOKMARK events at (None: it sends none).
    ``retained``: a watch from any of the last ``retained`` versions is served, not Expired.
    ``expires_after``: once this many newer changes were written, a watch from an old version is
    Expired (None: the history cannot be made short enough to test that).
    ``dense_versions``: each change advances the store-wide version by exactly one and nothing
    else writes to the store while a test runs (false for a shared Kubernetes cluster).
    """

    bookmark_seconds: float | None
    retained: int
    expires_after: int | None
    dense_versions: bool = True

    def __post_init__(self) -> None:
        if self.retained < MIN_RETAINED:
            raise ValueError(f"Capabilities.retained: {self.retained} is less than {MIN_RETAINED}, the most "
                             "changes a test writes before watching from a version it read")


# -- documents ---------------------------------------------------------------------------------


def experiment(name: str, namespace: str, algorithm: str = "random") -> Experiment:
    """A small valid Experiment (before admission defaults it)."""
    return Experiment.model_validate({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
            "algorithm": {"algorithmName": algorithm},
            "maxTrialCount": 4,
            "parameters": [{"name": "lr", "parameterType": "double",
                            "feasibleSpace": {"min": "0.01", "max": "0.1"}}],
            "trialTemplate": {
                "primaryContainerName": "main",
                "trialParameters": [{"name": "lr", "reference": "lr"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                    "containers": [{"name": "main", "image": "busybox", "command": ["echo", "${trialParameters.lr}"]}],
                    "restartPolicy": "Never"}}}},
            },
        },
    })


def trial(name: str, namespace: str, labels: dict[str, str] | None = None, owner: Resource | None = None) -> Trial:
    owners = [OwnerReference(kind=owner.kind, name=owner.metadata.name, uid=owner.metadata.uid)] if owner else []
    return Trial(metadata=ObjectMeta(name=name, namespace=namespace, labels=labels or {}, owner_references=owners))


def version(resource: Resource) -> int:
    return int(resource.metadata.resource_version)


def names(items: list[Any]) -> list[str]:
    return [i.metadata.name for i in items]


def events(stream: WatchStream, count: int, timeout: float = WAIT,
           until: Callable[[WatchEvent], bool] | None = None) -> list[WatchEvent]:
    """The next ``count`` events that are not bookmarks (or up to the first that ``until``
    accepts); fails if they do not come within ``timeout``. The stream is cancelled after."""
    got: list[WatchEvent] = []
    timer = threading.Timer(timeout, stream.cancel)  # cancel() from another thread ends the wait
    timer.start()
    try:
        for event in stream:
            if until is not None and until(event):
                got.append(event)
                return got
            if event.type != EventType.BOOKMARK:
                got.append(event)
                if until is None and len(got) == count:
                    return got
    finally:
        timer.cancel()
        stream.cancel()
    pytest.fail(f"the watch delivered {[(e.type, e.resource_version) for e in got]} in {timeout} s, "
                f"expected {'an event it could stop at' if until else f'{count} events'}")


def summary(items: list[WatchEvent]) -> list[tuple[str, str, str]]:
    return [(str(e.type), e.resource.metadata.namespace, e.resource.metadata.name)
            for e in items if e.resource is not None]


def failing_watch(store: ResourceStore, error: type[Exception], kind: str = "", namespace: str = "",
                  since: int = 0) -> None:
    """A watch that must fail with ``error``: not when watch() is called (that makes no request),
    at the first ``next()``."""
    stream = store.watch(kind, namespace, since)
    try:
        with pytest.raises(error):
            next(stream)
    finally:
        stream.cancel()


class ResourceStoreContract:
    """Subclass with ``store`` and ``capabilities`` fixtures (see the module's docstring)."""

    @pytest.fixture
    def ns(self) -> Callable[[], str]:
        """A namespace no other test uses (call it again for a second one)."""
        prefix = f"c{secrets.token_hex(4)}"
        counter = iter(range(100))
        return lambda: f"{prefix}-{next(counter)}"

    # -- create / get ------------------------------------------------------------------------

    def test_create_assigns_identity_version_and_time(self, store: ResourceStore, capabilities: Capabilities, ns: Callable[[], str]) -> None:
        a = ns()
        _, before = store.list("Trial", a)
        created = store.create(trial("t1", a, labels={"k": "v"}))
        m = created.metadata
        assert m.uid and m.generation == 1 and m.namespace == a and m.labels == {"k": "v"}
        assert version(created) > before
        if capabilities.dense_versions:
            assert version(created) == before + 1
        assert m.creation_timestamp and m.creation_timestamp.endswith("Z")
        assert store.get("Trial", a, "t1") == created
        second = store.create(trial("t2", a))
        assert second.metadata.uid != m.uid and version(second) > version(created)

    def test_what_the_caller_sets_as_identity_is_replaced(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        mine = trial("t", a)
        mine.metadata.uid, mine.metadata.resource_version, mine.metadata.generation = "mine", "999999", 7
        created = store.create(mine)
        assert created.metadata.uid != "mine" and created.metadata.generation == 1
        assert version(created) != 999999

    def test_owner_references_are_kept_whole(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        owner = store.create(experiment("e", a))
        child = trial("t", a)
        child.metadata.owner_references = [
            OwnerReference(api_version="kubeflow.org/v1beta1", kind="Experiment", name="e", uid=owner.metadata.uid,
                           controller=True, block_owner_deletion=True),
            OwnerReference(api_version="v1", kind="Other", name="o", uid="u-2", controller=False)]
        created = store.create(child)
        assert created.metadata.owner_references == child.metadata.owner_references
        assert store.get("Trial", a, "t").metadata.owner_references == child.metadata.owner_references

    def test_a_resource_whose_owner_is_gone_is_refused(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        """A controller acting on its cached copy of an Experiment deleted a moment ago must not
        leave a Trial behind that the cascade, already done, will never remove."""
        a = ns()
        owner = store.create(experiment("gone", a))
        store.delete("Experiment", a, "gone")
        with pytest.raises(NotFound):
            store.create(trial("orphan", a, owner=owner))
        assert names(store.list("Trial", a)[0]) == []

    def test_empty_namespace_means_default(self, store: ResourceStore) -> None:
        name = f"t-{secrets.token_hex(4)}"
        created = store.create(Trial(metadata=ObjectMeta(name=name, namespace="")))
        try:
            assert created.metadata.namespace == "default"
            assert store.get("Trial", "", name) == created == store.get("Trial", "default", name)
        finally:
            store.delete("Trial", "default", name)

    def test_an_existing_identity_is_already_exists(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a, b = ns(), ns()
        store.create(trial("t", a))
        with pytest.raises(AlreadyExists):
            store.create(trial("t", a))
        store.create(trial("t", b))  # same name, another namespace
        store.create(Event(metadata=ObjectMeta(name="t", namespace=a)))  # same name, another kind
        assert names(store.list("Trial", a)[0]) == ["t"] and names(store.list("Event", a)[0]) == ["t"]

    def test_get_of_a_missing_resource_is_not_found(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        with pytest.raises(NotFound):
            store.get("Trial", ns(), "missing")

    def test_experiments_are_defaulted_and_validated(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        created = store.create(experiment("e", a))
        # Katib's defaults (admission) are in what was stored.
        assert created.spec.metrics_collector_spec is not None
        assert created.spec.objective.metric_strategies
        assert store.get("Experiment", a, "e") == created
        bad = experiment("bad", a, algorithm="no-such-algorithm")
        bad.spec.parameters[0].feasible_space.min = "0.5"  # above max
        with pytest.raises(Invalid) as err:
            store.create(bad)
        assert len(err.value.errors) >= 2
        assert any("algorithmName" in e for e in err.value.errors)
        assert any("feasibleSpace" in e for e in err.value.errors)
        assert names(store.list("Experiment", a)[0]) == ["e"]

    @pytest.mark.parametrize("meta,field", [
        ({"name": "Upper"}, "metadata.name"),
        ({"name": "under_score"}, "metadata.name"),
        ({"name": ""}, "metadata.name"),
        ({"name": "x" * 254}, "metadata.name"),
        ({"name": "ok", "namespace": "Bad_NS"}, "metadata.namespace"),
        ({"name": "ok", "labels": {"bad key": "v"}}, "metadata.labels"),
        ({"name": "ok", "ownerReferences": [{"kind": "Experiment", "name": "e"}]}, "metadata.ownerReferences"),
    ])
    def test_bad_identity_is_invalid_and_stores_nothing(self, store: ResourceStore, capabilities: Capabilities,
                                                        ns: Callable[[], str], meta: dict[str, Any],
                                                        field: str) -> None:
        a = ns()
        resource = Trial.model_validate({"metadata": {"namespace": a, **meta}})
        _, before = store.list("Trial")
        with pytest.raises(Invalid) as err:
            store.create(resource)
        assert any(e.startswith(field) for e in err.value.errors), err.value.errors
        assert store.list("Trial", a)[0] == []
        if capabilities.dense_versions:
            assert store.list("Trial")[1] == before

    def test_dry_run_defaults_and_validates_but_stores_nothing(self, store: ResourceStore,
                                                               capabilities: Capabilities, ns: Callable[[], str]) -> None:
        a = ns()
        _, before = store.list("Experiment")
        out = store.create(experiment("dry", a), dry_run=True)
        assert out.spec.metrics_collector_spec is not None and out.metadata.name == "dry"
        assert not out.metadata.uid and not out.metadata.resource_version
        with pytest.raises(Invalid):
            store.create(experiment("dry", a, algorithm="no-such-algorithm"), dry_run=True)
        with pytest.raises(NotFound):
            store.get("Experiment", a, "dry")
        if capabilities.dense_versions:
            assert store.list("Experiment")[1] == before

    def test_returned_objects_are_private_copies(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        created = store.create(trial("t", a, labels={"k": "v"}))
        created.metadata.labels["k"] = "changed"
        created.status.start_time = "2024-01-01T00:00:00Z"
        got = store.get("Trial", a, "t")
        assert got.metadata.labels == {"k": "v"} and got.status.start_time is None
        got.metadata.labels["k"] = "again"
        assert store.list("Trial", a)[0][0].metadata.labels == {"k": "v"}

    # -- list --------------------------------------------------------------------------------

    def test_list_filters_by_kind_namespace_and_labels_in_name_order(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a, b = ns(), ns()
        store.create(trial("t2", a, labels={"exp": "e1", "role": "x"}))
        store.create(trial("t1", a, labels={"exp": "e1"}))
        store.create(trial("t3", a, labels={"exp": "e2"}))
        store.create(trial("t0", b, labels={"exp": "e1"}))
        last = store.create(Event(metadata=ObjectMeta(name="t1", namespace=a, labels={"exp": "e1"})))
        items, listed_at = store.list("Trial", a)
        assert names(items) == ["t1", "t2", "t3"] and all(i.kind == "Trial" for i in items)
        assert listed_at >= version(last)
        assert names(store.list("Trial", a, {"exp": "e1"})[0]) == ["t1", "t2"]
        assert names(store.list("Trial", a, {"exp": "e1", "role": "x"})[0]) == ["t2"]
        assert store.list("Trial", a, {"exp": "none"})[0] == []
        everywhere = [(i.metadata.namespace, i.metadata.name) for i in store.list("Trial")[0]
                      if i.metadata.namespace in (a, b)]
        assert everywhere == sorted(everywhere) and len(everywhere) == 4
        every_kind = store.list("", a, {"exp": "e1"})[0]
        assert sorted((i.kind, i.metadata.name) for i in every_kind) == [
            ("Event", "t1"), ("Trial", "t1"), ("Trial", "t2")]
        assert store.list("Experiment", a)[0] == []

    def test_list_and_watch_of_a_bad_scope_are_invalid(self, store: ResourceStore) -> None:
        with pytest.raises(Invalid):
            store.list("Pod")
        with pytest.raises(Invalid):
            store.list("Trial", "Bad_NS")
        failing_watch(store, Invalid, "Pod")
        failing_watch(store, Invalid, "Trial", "Bad_NS")
        failing_watch(store, Invalid, "Trial", since=-1)

    # -- update / update_status ------------------------------------------------------------------

    def test_update_writes_metadata_and_spec_but_not_status(self, store: ResourceStore,
                                                            capabilities: Capabilities, ns: Callable[[], str]) -> None:
        a = ns()
        created = store.create(trial("t", a))
        edit = created.model_copy(deep=True)
        edit.metadata.labels["x"] = "y"
        edit.metadata.annotations["note"] = "n"
        edit.status.start_time = "2024-01-01T00:00:00Z"  # ignored: update writes no status
        relabelled = store.update(edit)
        assert relabelled.metadata.labels == {"x": "y"} and relabelled.metadata.annotations == {"note": "n"}
        assert relabelled.metadata.generation == 1  # the spec did not change
        assert relabelled.status.start_time is None
        assert version(relabelled) > version(created)
        if capabilities.dense_versions:
            assert version(relabelled) == version(created) + 1
        relabelled.spec.retain_run = True
        respecced = store.update(relabelled)
        assert respecced.spec.retain_run and respecced.metadata.generation == 2
        assert respecced.metadata.uid == created.metadata.uid
        assert respecced.metadata.creation_timestamp == created.metadata.creation_timestamp
        assert store.get("Trial", a, "t") == respecced
        with pytest.raises(NotFound):
            store.update(trial("missing", a))

    def test_update_status_writes_only_the_status(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        created = store.create(trial("t", a))
        edit = created.model_copy(deep=True)
        edit.status.start_time = "2024-01-01T00:00:00Z"
        edit.spec.retain_run = True  # ignored: update_status writes the status only
        edit.metadata.labels["x"] = "y"  # ignored too
        after = store.update_status(edit)
        assert after.status.start_time == "2024-01-01T00:00:00Z"
        assert not after.spec.retain_run and after.metadata.labels == {}
        assert after.metadata.generation == 1 and version(after) > version(created)
        assert store.get("Trial", a, "t") == after
        with pytest.raises(NotFound):
            store.update_status(trial("missing", a))

    def test_a_write_that_changes_nothing_keeps_the_version_and_sends_no_event(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        created = store.create(trial("t", a, labels={"k": "v"}))
        stream = store.watch("Trial", a, since=version(created))
        assert store.update(created) == created
        assert store.update_status(created) == created
        marker = store.create(trial("marker", a))
        assert summary(events(stream, 1)) == [("ADDED", a, "marker")]
        assert version(store.get("Trial", a, "t")) == version(created) < version(marker)

    def test_a_stale_write_is_conflict_and_changes_nothing(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        first = store.create(trial("t", a))
        moved = first.model_copy(deep=True)
        moved.status.start_time = "2024-01-01T00:00:00Z"
        moved = store.update_status(moved)
        stale = first.model_copy(deep=True)
        stale.status.completion_time = "2024-01-02T00:00:00Z"
        with pytest.raises(Conflict):
            store.update_status(stale)
        stale.spec.retain_run = True
        with pytest.raises(Conflict):
            store.update(stale)
        with pytest.raises(Conflict):
            store.delete("Trial", a, "t", resource_version=version(first))
        assert store.get("Trial", a, "t") == moved
        assert store.delete("Trial", a, "t", resource_version=version(moved))[0].metadata.name == "t"

    def test_a_write_without_a_version_applies_to_the_current_one(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        first = store.create(trial("t", a))
        moved = first.model_copy(deep=True)
        moved.metadata.labels["by"] = "other"
        moved = store.update(moved)
        blind = first.model_copy(deep=True)
        blind.metadata.resource_version = ""
        blind.status.start_time = "2024-01-01T00:00:00Z"
        after = store.update_status(blind)
        assert after.status.start_time == "2024-01-01T00:00:00Z" and version(after) > version(moved)
        assert after.metadata.labels == {"by": "other"}  # update_status kept the other writer's labels

    def test_experiment_updates_may_change_only_the_counts(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        exp = store.create(experiment("e", a))
        exp.spec.max_trial_count = 50
        exp = store.update(exp)
        assert exp.spec.max_trial_count == 50 and exp.metadata.generation == 2
        exp.spec.algorithm.algorithm_name = "grid"
        with pytest.raises(Invalid) as err:
            store.update(exp)
        assert any("algorithm" in e for e in err.value.errors)
        assert store.get("Experiment", a, "e").spec.algorithm.algorithm_name == "random"

    def test_concurrent_writers_lose_no_update(self, store: ResourceStore, capabilities: Capabilities, ns: Callable[[], str]) -> None:
        a = ns()
        start = store.create(trial("counter", a))
        writers, increments = 4, 5
        total = writers * increments
        stream = store.watch("Trial", a, since=version(start))

        def write() -> None:
            for _ in range(increments):
                while True:
                    t = store.get("Trial", a, "counter")
                    t.metadata.annotations["n"] = str(int(t.metadata.annotations.get("n", "0")) + 1)
                    try:
                        store.update(t)
                        break
                    except Conflict:
                        continue

        threads = [threading.Thread(target=write) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        final = store.get("Trial", a, "counter")
        assert final.metadata.annotations["n"] == str(total)
        if capabilities.dense_versions:
            assert version(final) == version(start) + total
        seen = events(stream, total)
        assert [e.resource.metadata.annotations["n"] for e in seen] == [str(i) for i in range(1, total + 1)]
        assert [e.resource_version for e in seen] == sorted({e.resource_version for e in seen})

    # -- delete ------------------------------------------------------------------------------

    def test_delete_is_immediate_and_cascades_through_owner_references(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a, b = ns(), ns()
        exp = store.create(experiment("e1", a))
        store.create(Suggestion(metadata=ObjectMeta(name="e1", namespace=a, owner_references=[
            OwnerReference(kind="Experiment", name="e1", uid=exp.metadata.uid)]),
            spec=SuggestionSpec.model_validate({"algorithm": {"algorithmName": "random"}, "requests": 1})))
        t1 = store.create(trial("e1-t1", a, owner=exp))
        store.create(trial("e1-t2", a, owner=exp))
        store.create(trial("grandchild", a, owner=t1))
        store.create(trial("unrelated", a))
        store.create(trial("e1-t1", b))  # same name elsewhere: not owned
        last = store.create(experiment("e1", b))
        deleted = store.delete("Experiment", a, "e1")
        assert deleted[0].kind == "Experiment" and deleted[0].metadata.name == "e1"
        assert sorted((d.kind, d.metadata.name) for d in deleted) == [
            ("Experiment", "e1"), ("Suggestion", "e1"), ("Trial", "e1-t1"), ("Trial", "e1-t2"), ("Trial", "grandchild")]
        versions = [version(d) for d in deleted]
        assert versions == sorted(set(versions)) and versions[0] > version(last)
        assert names(store.list("Trial", a)[0]) == ["unrelated"]
        assert store.list("Suggestion", a)[0] == [] and store.list("Experiment", a)[0] == []
        assert names(store.list("Trial", b)[0]) == ["e1-t1"] and names(store.list("Experiment", b)[0]) == ["e1"]
        for kind, name in (("Experiment", "e1"), ("Trial", "grandchild")):
            with pytest.raises(NotFound):
                store.get(kind, a, name)
        with pytest.raises(NotFound):
            store.delete("Experiment", a, "e1")

    # -- watch -------------------------------------------------------------------------------

    def test_watch_replays_from_a_version_in_order_with_filters(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a, b = ns(), ns()
        store.create(trial("before", a))
        _, since = store.list("Trial", a)
        store.create(trial("x", a, labels={"k": "v"}))
        store.create(trial("y", b, labels={"k": "v"}))
        store.create(Event(metadata=ObjectMeta(name="ev", namespace=a, labels={"k": "v"})))
        z = store.create(trial("z", a))
        z.status.start_time = "2024-01-01T00:00:00Z"
        store.update_status(z)
        store.delete("Trial", a, "x")
        got = events(store.watch("Trial", a, since=since), 4)
        assert summary(got) == [("ADDED", a, "x"), ("ADDED", a, "z"), ("MODIFIED", a, "z"), ("DELETED", a, "x")]
        assert [e.resource_version for e in got] == sorted(set(e.resource_version for e in got))
        assert all(e.resource_version == version(e.resource) for e in got)
        assert got[2].resource.status.start_time == "2024-01-01T00:00:00Z"
        labelled = events(store.watch("", "", since=since, labels={"k": "v"}), 4)
        assert summary(labelled) == [("ADDED", a, "x"), ("ADDED", b, "y"), ("ADDED", a, "ev"), ("DELETED", a, "x")]
        assert [e.resource.kind for e in labelled] == ["Trial", "Trial", "Event", "Trial"]

    def test_watch_follows_new_changes_after_the_replay(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        first = store.create(trial("t0", a))
        stream = store.watch("Trial", a, since=version(first) - 1)
        writer = threading.Timer(0.2, lambda: [store.create(trial(f"t{i}", a)) for i in (1, 2)])
        writer.start()
        try:
            assert summary(events(stream, 3)) == [("ADDED", a, "t0"), ("ADDED", a, "t1"), ("ADDED", a, "t2")]
        finally:
            writer.join()

    def test_watch_from_zero_starts_now(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        a = ns()
        store.create(trial("old", a))
        stream = store.watch("Trial", a)
        # "Now" is when the store opens the watch, which may be a moment after watch() returns:
        # keep writing until something arrives; the change from before must never come.
        stop = threading.Event()

        def write() -> None:
            i = 0
            while not stop.is_set() and i < 100:
                store.create(trial(f"new{i}", a))
                i += 1
                stop.wait(0.05)

        writer = threading.Thread(target=write)
        writer.start()
        try:
            (first,) = events(stream, 1)
        finally:
            stop.set()
            writer.join()
        assert first.type == EventType.ADDED and first.resource.metadata.name.startswith("new")

    def test_watch_from_a_version_beyond_the_current_one_is_expired(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        _, current = store.list("Trial", ns())
        failing_watch(store, Expired, "Trial", since=current + 1_000_000)

    def test_watch_from_a_version_older_than_the_history_is_expired(self, store: ResourceStore,
                                                                     capabilities: Capabilities, ns: Callable[[], str]) -> None:
        if capabilities.expires_after is None:
            pytest.skip("the store declares no history short enough to test (Capabilities.expires_after)")
        a = ns()
        t = store.create(trial("t", a))
        old = version(t)
        for i in range(capabilities.expires_after + 1):
            t.metadata.annotations["i"] = str(i)
            t = store.update(t)
        failing_watch(store, Expired, "Trial", a, since=old)
        # A version within the kept history is still served, from where it was.
        recent = version(t) - min(capabilities.retained, capabilities.expires_after) + 1
        got = events(store.watch("Trial", a, since=recent), 1)
        assert got[0].resource_version > recent and got[0].type == EventType.MODIFIED

    def test_a_watch_that_falls_behind_never_skips_a_change(self, store: ResourceStore,
                                                            capabilities: Capabilities, ns: Callable[[], str]) -> None:
        """More changes than the history must keep, written while a watch is not read: it either
        still delivers every one of them, in order, or ends with Expired -- never a gap."""
        a = ns()
        t = store.create(trial("t", a))
        stream = store.watch("Trial", a, since=version(t))
        expected = []
        for i in range(capabilities.retained + 1):
            t.metadata.annotations["i"] = str(i)
            t = store.update(t)
            expected.append(str(i))
        seen: list[str] = []
        expired = False
        timer = threading.Timer(WAIT, stream.cancel)
        timer.start()
        try:
            for event in stream:
                if event.type != EventType.BOOKMARK:
                    seen.append(event.resource.metadata.annotations["i"])
                    if len(seen) == len(expected):
                        break
        except Expired:
            expired = True
        finally:
            timer.cancel()
            stream.cancel()
        assert seen == expected[:len(seen)]
        assert expired or seen == expected

    def test_bookmarks_come_once_caught_up_and_while_nothing_changes(self, store: ResourceStore,
                                                                     capabilities: Capabilities, ns: Callable[[], str]) -> None:
        """The first bookmark comes as soon as the watch has sent the replay (so a watcher from 0
        learns which version "now" was), then one every ``bookmark_seconds``."""
        if capabilities.bookmark_seconds is None:
            pytest.skip("the store declares that it sends no bookmarks (Capabilities.bookmark_seconds)")
        a = ns()
        first = store.create(trial("t1", a))
        last = store.create(trial("t2", a))
        stream = store.watch("Trial", a, since=version(first))
        timer = threading.Timer(3 * capabilities.bookmark_seconds + WAIT, stream.cancel)
        timer.start()
        try:
            replay, opened = next(stream), next(stream)
            assert replay.type == EventType.ADDED and replay.resource.metadata.name == "t2"
            assert opened.type == EventType.BOOKMARK and opened.resource is None
            assert opened.resource_version >= version(last)
            started = time.monotonic()
            periodic = next(stream)
            assert periodic.type == EventType.BOOKMARK and periodic.resource_version >= opened.resource_version
            assert time.monotonic() - started < 3 * capabilities.bookmark_seconds + 2
        finally:
            timer.cancel()
            stream.cancel()

    def test_cancel_from_another_thread_ends_a_waiting_watch(self, store: ResourceStore, ns: Callable[[], str]) -> None:
        stream = store.watch("Trial", ns())
        ended = threading.Event()

        def consume() -> None:
            for event in stream:
                if event.type != EventType.BOOKMARK:
                    break
            ended.set()

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        time.sleep(0.2)  # let it wait for an event
        stream.cancel()
        assert ended.wait(5), "the watch did not end within 5 s of cancel()"
