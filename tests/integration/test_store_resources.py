"""The resource store over real gRPC (client in sextant.store.client) on every backend."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import grpc
import pytest

from sextant.api import api_pb2, store_pb2, store_pb2_grpc
from sextant.resources.loading import load_document
from sextant.resources.models import Experiment, ObjectMeta, OwnerReference, Suggestion, SuggestionSpec, Trial
from sextant.store.codec import doc_from_proto, proto_from_doc
from sextant.store.interface import AlreadyExists, Conflict, EventType, Expired, Invalid, NotFound

EXPERIMENT_YAML = Path(__file__).parents[1] / "data" / "experiments" / "valid" / "algo-tpe.yaml"


def experiment_doc(name: str = "exp", namespace: str = "default") -> dict:
    doc = load_document(EXPERIMENT_YAML.read_text())
    doc["metadata"] = {"name": name, "namespace": namespace}
    return doc


def trial(name: str, namespace: str = "default", owner=None, labels=None) -> Trial:
    owners = [OwnerReference(kind=owner.kind, name=owner.metadata.name, uid=owner.metadata.uid)] if owner else []
    return Trial(metadata=ObjectMeta(name=name, namespace=namespace, labels=labels or {},
                                     owner_references=owners))


def raw(db_manager) -> store_pb2_grpc.ResourceStoreStub:
    return store_pb2_grpc.ResourceStoreStub(grpc.insecure_channel(db_manager.address))


def test_create_get_list_update(db_manager):
    store = db_manager.store()
    t = store.create(trial("t1", labels={"katib.kubeflow.org/experiment": "e1"}))
    store.create(trial("t2", labels={"katib.kubeflow.org/experiment": "e2"}))
    store.create(trial("t1", namespace="other"))
    assert t.metadata.uid and t.metadata.resource_version == "1" and t.metadata.generation == 1
    assert t.metadata.creation_timestamp.endswith("Z")
    got = store.get("Trial", "default", "t1")
    assert got == t
    items, version = store.list("Trial", "default")
    assert [i.metadata.name for i in items] == ["t1", "t2"] and version == 3
    items, _ = store.list("Trial", labels={"katib.kubeflow.org/experiment": "e1"})
    assert [i.metadata.name for i in items] == ["t1"]
    assert len(store.list("Trial")[0]) == 3
    assert store.list("Experiment")[0] == []

    got.spec.retain_run = True
    got.metadata.labels["x"] = "y"
    updated = store.update(got)
    assert updated.spec.retain_run and updated.metadata.labels["x"] == "y"
    assert updated.metadata.generation == 2 and updated.metadata.resource_version == "4"
    updated.status.start_time = "2024-01-01T00:00:00Z"
    updated.spec.retain_run = False  # ignored: UpdateStatus writes status only
    after = store.update_status(updated)
    assert after.status.start_time == "2024-01-01T00:00:00Z" and after.spec.retain_run
    assert after.metadata.generation == 2 and after.metadata.resource_version == "5"
    assert store.update_status(after).metadata.resource_version == "5"  # no change, no new version
    with pytest.raises(NotFound):
        store.get("Trial", "default", "missing")
    with pytest.raises(NotFound):
        store.update(trial("missing"))


def test_create_twice_is_already_exists(db_manager):
    store = db_manager.store()
    store.create(trial("t1"))
    with pytest.raises(AlreadyExists):
        store.create(trial("t1"))


def test_experiment_is_defaulted_and_validated(db_manager):
    stub = raw(db_manager)
    created = stub.Create(store_pb2.CreateRequest(resource=proto_from_doc(experiment_doc())))
    doc = doc_from_proto(created)
    # Katib's mutating webhook defaults appear in the stored document.
    assert doc["spec"]["metricsCollectorSpec"]["collector"]["kind"] == "StdOut"
    assert doc["spec"]["objective"]["metricStrategies"]

    bad = experiment_doc("bad")
    bad["spec"]["algorithm"]["algorithmName"] = "no-such-algorithm"
    bad["spec"]["parameters"][0]["parameterType"] = "complex"
    with pytest.raises(grpc.RpcError) as err:
        stub.Create(store_pb2.CreateRequest(resource=proto_from_doc(bad)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    lines = err.value.details().split("\n")
    assert len(lines) >= 2
    assert any("algorithmName" in line for line in lines) and any("parameterType" in line for line in lines)
    assert [d.metadata.name for d in stub.List(store_pb2.ListRequest(kind="Experiment")).items] == ["exp"]


def test_dry_run_stores_nothing(db_manager):
    store = db_manager.store()
    exp = Experiment.model_validate(experiment_doc("dry"))
    out = store.create(exp, dry_run=True)
    assert out.spec.metrics_collector_spec is not None
    assert store.list("Experiment") == ([], 0)
    with pytest.raises(Invalid):
        store.create(Experiment(metadata=ObjectMeta(name="empty")), dry_run=True)


def test_experiment_update_allows_only_counts(db_manager):
    store = db_manager.store()
    exp = store.create(Experiment.model_validate(experiment_doc()))
    exp.spec.max_trial_count = 50
    assert store.update(exp).spec.max_trial_count == 50
    exp = store.get("Experiment", "default", "exp")
    exp.spec.algorithm.algorithm_name = "random"
    with pytest.raises(Invalid):
        store.update(exp)
    assert store.get("Experiment", "default", "exp").spec.algorithm.algorithm_name == "tpe"


@pytest.mark.parametrize("kind,namespace,name", [
    ("Trial", "default", "Upper"), ("Trial", "default", "under_score"), ("Trial", "default", "x" * 254),
    ("Trial", "default", "-lead"), ("Trial", "Bad_NS", "ok"), ("Trial", "n" * 64, "ok"),
    ("Pod", "default", "ok"), ("Trial", "default", "semi;colon"), ("Trial", "default", "ünï"),
])
def test_malformed_identity_is_invalid_argument(db_manager, kind, namespace, name):
    stub = raw(db_manager)
    resource = store_pb2.Resource(kind=kind, metadata=store_pb2.ObjectMeta(name=name, namespace=namespace))
    with pytest.raises(grpc.RpcError) as err:
        stub.Create(store_pb2.CreateRequest(resource=resource))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.List(store_pb2.ListRequest()).items == []


def test_bad_documents_are_invalid_argument(db_manager):
    stub = raw(db_manager)
    for resource in [
        store_pb2.Resource(kind="Trial", metadata=store_pb2.ObjectMeta(name="t"), spec_json="{not json"),
        store_pb2.Resource(kind="Trial", metadata=store_pb2.ObjectMeta(name="t"), spec_json="[1]"),
        store_pb2.Resource(kind="Trial", metadata=store_pb2.ObjectMeta(name="t"), spec_json='{"noSuchField": 1}'),
        store_pb2.Resource(kind="Trial", metadata=store_pb2.ObjectMeta(
            name="t", owner_references=[store_pb2.OwnerReference(kind="Experiment", name="e")])),
        # larger than the resource size limit (the transport limit is much higher)
        store_pb2.Resource(kind="Event", metadata=store_pb2.ObjectMeta(name="big"),
                           spec_json=json.dumps({"message": "x" * (4 * 1024 * 1024)})),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            stub.Create(store_pb2.CreateRequest(resource=resource))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, resource.spec_json[:40]
    assert stub.List(store_pb2.ListRequest()).items == []


def test_stale_write_is_aborted_and_changes_nothing(db_manager):
    store = db_manager.store()
    first = store.create(trial("t"))
    fresh = copy.deepcopy(first)
    fresh.status.start_time = "2024-01-01T00:00:00Z"
    store.update_status(fresh)
    first.status.completion_time = "2024-01-02T00:00:00Z"
    with pytest.raises(Conflict):
        store.update_status(first)
    first.spec.retain_run = True
    with pytest.raises(Conflict):
        store.update(first)
    with pytest.raises(grpc.RpcError) as err:
        raw(db_manager).UpdateStatus(store_pb2.UpdateRequest(resource=proto_from_doc(
            {"kind": "Trial", "metadata": {"name": "t", "namespace": "default", "resourceVersion": "1"}})))
    assert err.value.code() == grpc.StatusCode.ABORTED
    now = store.get("Trial", "default", "t")
    assert now.status.start_time == "2024-01-01T00:00:00Z" and now.status.completion_time is None
    assert not now.spec.retain_run and now.metadata.resource_version == "2"
    with pytest.raises(Conflict):
        store.delete("Trial", "default", "t", resource_version=1)
    assert store.get("Trial", "default", "t")


def test_delete_cascades_and_removes_trial_logs(db_manager):
    store = db_manager.store()
    exp = store.create(Experiment.model_validate(experiment_doc("e1")))
    sug = store.create(Suggestion(metadata=ObjectMeta(name="e1", owner_references=[
        OwnerReference(kind="Experiment", name="e1", uid=exp.metadata.uid)]),
        spec=SuggestionSpec.model_validate({"algorithm": {"algorithmName": "tpe"}, "requests": 2})))
    t1 = store.create(trial("e1-t1", owner=exp))
    store.create(trial("e1-t2", owner=exp))
    store.create(trial("grandchild", owner=t1))
    store.create(trial("unrelated"))
    stub = db_manager.dbmanager_stub()
    for name in ("e1-t1", "unrelated"):
        stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(trial_name=name, observation_log=api_pb2.ObservationLog(
            metric_logs=[api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="m", value="1"))])))
    deleted = store.delete("Experiment", "default", "e1")
    assert sorted(d.metadata.name for d in deleted) == ["e1", "e1", "e1-t1", "e1-t2", "grandchild"]
    assert deleted[0].kind == "Experiment"
    versions = [int(d.metadata.resource_version) for d in deleted]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert [t.metadata.name for t in store.list("Trial")[0]] == ["unrelated"]
    assert store.list("Suggestion")[0] == [] and sug
    get = api_pb2.GetObservationLogRequest
    assert not stub.GetObservationLog(get(trial_name="e1-t1")).observation_log.metric_logs
    assert stub.GetObservationLog(get(trial_name="unrelated")).observation_log.metric_logs
    with pytest.raises(NotFound):
        store.delete("Experiment", "default", "e1")


def test_watch_filters_history_and_bookmarks(db_manager):
    store = db_manager.store()
    store.create(trial("before"))
    _, version = store.list("Trial")
    store.create(trial("a", labels={"k": "v"}))
    store.create(trial("b", namespace="other", labels={"k": "v"}))
    store.create(trial("c"))
    store.delete("Trial", "default", "a")
    got = []
    stream = store.watch("Trial", "default", since=version)
    for event in stream:
        if event.type == EventType.BOOKMARK:
            assert event.resource_version >= 5
            break
        got.append((event.type, event.resource.metadata.name, event.resource_version))
    stream.cancel()
    assert got == [(EventType.ADDED, "a", 2), (EventType.ADDED, "c", 4), (EventType.DELETED, "a", 5)]
    labelled = store.watch("", "", since=version, labels={"k": "v"})
    names = [next(labelled).resource.metadata.name for _ in range(3)]
    labelled.cancel()
    assert names == ["a", "b", "a"]


def test_watch_from_pruned_history_is_expired(db_manager):
    store = db_manager.store()
    db_manager.app.store.history = 5
    store.create(trial("t"))
    for i in range(70):  # pruning runs every 64 versions
        t = store.get("Trial", "default", "t")
        t.metadata.annotations["i"] = str(i)
        store.update(t)
    with pytest.raises(Expired):
        next(iter(store.watch("Trial", since=1)))
    _, version = store.list("Trial")
    t = store.get("Trial", "default", "t")
    t.metadata.annotations["i"] = "last"
    store.update(t)
    event = next(iter(store.watch("Trial", since=version)))
    assert event.type == EventType.MODIFIED and event.resource.metadata.annotations["i"] == "last"


@pytest.mark.xdist_group("db_manager_concurrency")
def test_concurrent_writers_lose_no_update_and_watchers_see_every_change(db_manager):
    store = db_manager.store()
    created = store.create(trial("counter"))
    _, start = store.list("Trial")
    writers, increments = 8, 8
    watchers = [store.watch("Trial", since=start) for _ in range(4)]
    seen: list[list[tuple[int, str]]] = [[] for _ in watchers]
    total = writers * increments

    def watch(i: int) -> None:
        for event in watchers[i]:
            if event.type == EventType.MODIFIED:
                seen[i].append((event.resource_version, event.resource.metadata.annotations["n"]))
                if len(seen[i]) == total:
                    return

    def write() -> None:
        client = db_manager.store()
        for _ in range(increments):
            while True:
                t = client.get("Trial", "default", "counter")
                t.metadata.annotations["n"] = str(int(t.metadata.annotations.get("n", "0")) + 1)
                try:
                    client.update(t)
                    break
                except Conflict:
                    continue

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(len(watchers))]
    threads += [threading.Thread(target=write) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for w in watchers:
        w.cancel()
    final = store.get("Trial", "default", "counter")
    assert final.metadata.annotations["n"] == str(total)
    assert int(final.metadata.resource_version) == start + total
    expected = [str(i) for i in range(1, total + 1)]
    for s in seen:
        versions = [v for v, _ in s]
        assert versions == sorted(versions) and len(set(versions)) == total
        assert [n for _, n in s] == expected
    assert created


def test_ignored_half_is_still_checked_unless_it_is_the_stored_text(db_manager):
    """UpdateStatus ignores the spec and Update the status; the server skips decoding them when
    they are the stored text, and otherwise still refuses text that is not a JSON object."""
    stub = raw(db_manager)
    created = stub.Create(store_pb2.CreateRequest(resource=proto_from_doc(
        {"kind": "Trial", "metadata": {"name": "t", "namespace": "default"}, "spec": {"retainRun": True}})))
    for method, field in (("UpdateStatus", "spec_json"), ("Update", "status_json")):
        for bad in ("{not json", "[1]"):
            resource = store_pb2.Resource()
            resource.CopyFrom(created)
            setattr(resource, field, bad)
            with pytest.raises(grpc.RpcError) as err:
                getattr(stub, method)(store_pb2.UpdateRequest(resource=resource))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, bad)
    status = store_pb2.Resource()
    status.CopyFrom(created)
    status.status_json = '{"startTime":"2024-01-01T00:00:00Z"}'
    after = stub.UpdateStatus(store_pb2.UpdateRequest(resource=status))
    assert json.loads(after.spec_json) == {"retainRun": True, "earlyStoppingRules": [], "parameterAssignments": []}
    assert json.loads(after.status_json)["startTime"] == "2024-01-01T00:00:00Z"
    spec = store_pb2.Resource()
    spec.CopyFrom(after)
    spec.spec_json = '{"retainRun":false}'
    updated = stub.Update(store_pb2.UpdateRequest(resource=spec))
    assert json.loads(updated.spec_json)["retainRun"] is False and updated.metadata.generation == 2
    assert json.loads(updated.status_json)["startTime"] == "2024-01-01T00:00:00Z"
