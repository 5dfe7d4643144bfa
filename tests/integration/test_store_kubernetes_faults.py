"""The Kubernetes-API store under failures a healthy API server does not produce on demand,
scripted on a kmock server with the real ``kubernetes`` client: 409 storms, 429 and 5xx with
retry, 410 Gone in the middle of a watch (the informer lists again), a watch the server ends."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import kmock
import pytest
from kubernetes import client

from sextant.resources.models import ObjectMeta, Trial
from sextant.store.informer import Informer
from sextant.store.interface import Conflict, EventType, Expired, Unavailable
from sextant.store.kubernetes import API_CALLS, KubernetesResourceStore
from tests.integration.kmock_server import kmock_raw
from tests.integration.kube_calls import RecordedCalls, grant_of

NS = "faults"
TRIALS = f"/apis/kubeflow.org/v1beta1/namespaces/{NS}/trials"


def trial_object(name: str, version: int, **status: Any) -> dict[str, Any]:
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": str(version),
                         "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {}, "status": status}


def status(code: int, reason: str, message: str = "") -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message or reason}


def line(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}).encode() + b"\n"


@pytest.fixture
def server() -> Iterator[tuple[kmock.RawHandler, KubernetesResourceStore]]:
    with kmock_raw() as (handler, url):
        configuration = client.Configuration()
        configuration.host = url
        store = KubernetesResourceStore(client.ApiClient(configuration), retry_seconds=3, write_attempts=5)
        calls = RecordedCalls(store.api)
        try:
            yield handler, store
        finally:
            store.close()
        # Whatever the scripted server answered, the store asked only what its RBAC grants.
        assert calls.requests and calls.grants() <= set(API_CALLS), calls.grants() - set(API_CALLS)


@pytest.mark.parametrize(("method", "path", "query", "grant"), [
    ("GET", "/apis/kubeflow.org/v1beta1/namespaces/n/trials", {}, ("kubeflow.org", "trials", "list")),
    ("GET", "/apis/kubeflow.org/v1beta1/trials", {"watch": ["true"]}, ("kubeflow.org", "trials", "watch")),
    ("PUT", "/apis/kubeflow.org/v1beta1/namespaces/n/trials/t/status", {}, ("kubeflow.org", "trials/status", "update")),
    ("PATCH", "/apis/kubeflow.org/v1beta1/namespaces/n/experiments/e", {}, ("kubeflow.org", "experiments", "patch")),
    ("POST", "/api/v1/namespaces/n/events", {}, ("", "events", "create")),
    ("DELETE", "/api/v1/namespaces/n/events", {}, ("", "events", "deletecollection")),
])
def test_a_request_is_checked_as_the_grant_rbac_asks_for(method, path, query, grant) -> None:
    assert grant_of(method, path, query) == grant


def test_a_blind_status_write_outlasts_a_409_storm(server) -> None:
    handler, store = server
    reads = iter(range(5, 100))
    handler[f"get {TRIALS}/t"] << (lambda: trial_object("t", next(reads)))
    handler[f"put {TRIALS}/t/status"][:3] << 409 << status(409, "Conflict", "the object has been modified")
    handler[f"put {TRIALS}/t/status"] << (lambda req: {**req.data, "metadata": {
        **req.data["metadata"], "resourceVersion": "50"}})
    blind = Trial(metadata=ObjectMeta(name="t", namespace=NS))
    blind.status.start_time = "2026-01-02T00:00:00Z"
    written = store.update_status(blind)
    assert written.status.start_time == "2026-01-02T00:00:00Z" and written.metadata.resource_version == "50"
    puts = list(handler[f"put {TRIALS}/t/status"])
    assert len(puts) == 4
    # Each attempt re-read the object and wrote against the version it read.
    assert [p.data["metadata"]["resourceVersion"] for p in puts] == ["5", "6", "7", "8"]


def test_a_storm_longer_than_the_attempts_and_a_pinned_write_are_conflict(server) -> None:
    handler, store = server
    handler[f"get {TRIALS}/t"] << trial_object("t", 5)
    handler[f"put {TRIALS}/t/status"] << 409 << status(409, "Conflict")
    blind = Trial(metadata=ObjectMeta(name="t", namespace=NS))
    blind.status.start_time = "2026-01-02T00:00:00Z"
    with pytest.raises(Conflict, match="5 writes in a row"):
        store.update_status(blind)
    assert len(handler[f"put {TRIALS}/t/status"]) == 5
    pinned = blind.model_copy(deep=True)
    pinned.metadata.resource_version = "5"
    with pytest.raises(Conflict):
        store.update_status(pinned)
    assert len(handler[f"put {TRIALS}/t/status"]) == 6  # one try: the caller's version lost


def test_a_write_based_on_a_version_the_store_has_seen_sends_no_read_first(server) -> None:
    """The copy the store saw at the caller's version is the object if the write succeeds; if
    it is stale, the PUT (carrying that version) gets 409: Conflict, as a GET would have told."""
    handler, store = server
    handler[f"get {TRIALS}/t"] << trial_object("t", 5)
    handler[f"put {TRIALS}/t/status"][:1] << (lambda req: {**req.data, "metadata": {
        **req.data["metadata"], "resourceVersion": "6"}})
    handler[f"put {TRIALS}/t/status"] << 409 << status(409, "Conflict")
    trial = store.get("Trial", NS, "t")  # what an informer would hand a controller
    trial.status.start_time = "2026-01-02T00:00:00Z"
    written = store.update_status(trial)
    assert written.metadata.resource_version == "6"
    assert len(handler[f"get {TRIALS}/t"]) == 1  # the get above; none before the PUT
    assert list(handler[f"put {TRIALS}/t/status"])[0].data["metadata"]["resourceVersion"] == "5"
    # Based on the version that write returned (no read either); someone else got there first.
    written.status.completion_time = "2026-01-03T00:00:00Z"
    with pytest.raises(Conflict):
        store.update_status(written)
    assert len(handler[f"get {TRIALS}/t"]) == 1 and len(handler[f"put {TRIALS}/t/status"]) == 2
    # A version the store never saw is read first (and found not current: Conflict, no PUT).
    unseen = written.model_copy(deep=True)
    unseen.metadata.resource_version = "4"
    with pytest.raises(Conflict, match="resourceVersion is 5"):
        store.update_status(unseen)
    assert len(handler[f"get {TRIALS}/t"]) == 2 and len(handler[f"put {TRIALS}/t/status"]) == 2


def test_429_and_5xx_are_retried_honouring_retry_after(server) -> None:
    handler, store = server
    handler[f"get {TRIALS}/t"][:1] << 429 << {"Retry-After": "1"} << status(429, "TooManyRequests")
    handler[f"get {TRIALS}/t"][:2] << 503 << status(503, "ServiceUnavailable")
    handler[f"get {TRIALS}/t"] << trial_object("t", 7)
    started = time.monotonic()
    got = store.get("Trial", NS, "t")
    assert got.metadata.resource_version == "7"
    assert len(handler[f"get {TRIALS}/t"]) == 3
    assert time.monotonic() - started >= 1.0  # the server's Retry-After was waited out


def test_a_server_that_stays_down_is_unavailable_after_the_retry_budget(server) -> None:
    handler, store = server
    handler[f"get {TRIALS}/t"] << 500 << status(500, "InternalError")
    started = time.monotonic()
    with pytest.raises(Unavailable, match="500"):
        store.get("Trial", NS, "t")
    assert 2.5 < time.monotonic() - started < 10 and len(handler[f"get {TRIALS}/t"]) >= 3


def test_410_in_mid_watch_is_expired_and_the_informer_lists_again(server) -> None:
    handler, store = server
    watches = handler[f"get {TRIALS}"][kmock.params(watch="true")]
    # The first two watches (this test's own, then the informer's) get 410 after one event.
    watches[:2] << (line("ADDED", trial_object("t2", 6)), lambda: asyncio.sleep(0.2),
                    line("ERROR", status(410, "Expired", "too old resource version: 5 (9)")))
    watches << (line("BOOKMARK", {"kind": "Trial", "metadata": {"resourceVersion": "9"}}), lambda: asyncio.sleep(30))
    answers = iter([
        {"kind": "TrialList", "metadata": {"resourceVersion": "5"}, "items": [trial_object("t1", 4)]},
        {"kind": "TrialList", "metadata": {"resourceVersion": "9"},
         "items": [trial_object("t2", 6), trial_object("t3", 8)]}])
    handler[f"get {TRIALS}"] << (lambda: next(answers))

    stream = store.watch("Trial", NS, since=5)
    first = next(stream)
    assert first.type == EventType.ADDED and first.resource.metadata.name == "t2"
    with pytest.raises(Expired, match="too old"):
        next(stream)
    stream.cancel()

    seen: list[tuple[str, str]] = []
    informer = Informer(store, "Trial", NS, resync_seconds=0, idle_seconds=0)
    informer.add_handler(lambda kind, trial: seen.append((str(kind), trial.metadata.name)))
    informer.start()
    try:
        deadline = time.monotonic() + 10
        while informer.relists < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert informer.relists == 2
        assert sorted(t.metadata.name for t in informer.list()) == ["t2", "t3"]
        assert ("DELETED", "t1") in seen and ("ADDED", "t3") in seen
        # The second watch starts at the version the second list was read at.
        deadline = time.monotonic() + 10
        while len(watches) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [w.params["resourceVersion"] for w in list(watches)][:3] == ["5", "5", "9"]
    finally:
        informer.stop()


def test_a_watch_the_server_ends_is_reopened_from_the_last_version(server) -> None:
    handler, store = server
    watches = handler[f"get {TRIALS}"][kmock.params(watch="true")]
    watches[:1] << line("ADDED", trial_object("a", 11))  # then the server closes the stream
    watches << (line("MODIFIED", trial_object("a", 12)), lambda: asyncio.sleep(30))
    stream = store.watch("Trial", NS, since=10)
    try:
        assert [next(stream).resource_version for _ in range(2)] == [11, 12]
    finally:
        stream.cancel()
    assert [w.params["resourceVersion"] for w in list(watches)] == ["10", "11"]


def test_a_silent_watch_gives_a_bookmark_and_is_reopened_from_its_version() -> None:
    """A cluster sends bookmarks about once a minute: a stream silent for watch_idle_seconds is
    watched again from its last version (no list), and says how far it got, so an informer's
    watchdog does not take it for stuck."""
    with kmock_raw() as (handler, url):
        configuration = client.Configuration()
        configuration.host = url
        store = KubernetesResourceStore(client.ApiClient(configuration), watch_idle_seconds=1)
        watches = handler[f"get {TRIALS}"][kmock.params(watch="true")]
        watches[:1] << (line("ADDED", trial_object("a", 21)), lambda: asyncio.sleep(30))
        watches << (line("MODIFIED", trial_object("a", 22)), lambda: asyncio.sleep(30))
        stream = store.watch("Trial", NS, since=20)
        try:
            got = [next(stream) for _ in range(3)]
        finally:
            stream.cancel()
            store.close()
        assert [(e.type, e.resource_version) for e in got] == [
            (EventType.ADDED, 21), (EventType.BOOKMARK, 21), (EventType.MODIFIED, 22)]
        assert [w.params["resourceVersion"] for w in list(watches)][:2] == ["20", "21"]
        assert not list(handler[f"get {TRIALS}"][kmock.params(limit="1")])  # no list was needed


def test_katibs_finalizers_are_released_from_an_object_being_deleted(server) -> None:
    """Katib's controller would remove its finalizers when an object it created is deleted;
    Sextant stands in for it: seen on a watch, a Trial being deleted loses Katib's finalizer
    (only that one), by a JSON patch guarded by the version it saw."""
    handler, store = server
    deleting = trial_object("old", 31)
    deleting["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z",
                                finalizers=["clean-metrics-in-db", "example.com/keep"])
    watches = handler[f"get {TRIALS}"][kmock.params(watch="true")]
    watches << (line("MODIFIED", deleting), line("MODIFIED", trial_object("other", 32)), lambda: asyncio.sleep(30))
    handler[f"patch {TRIALS}/old"] << (lambda req: {**deleting, "metadata": {
        **deleting["metadata"], "finalizers": ["example.com/keep"], "resourceVersion": "33"}})
    stream = store.watch("Trial", NS, since=30)
    try:
        got = [next(stream) for _ in range(2)]
    finally:
        stream.cancel()
    assert [e.resource.metadata.name for e in got] == ["old", "other"]
    (patch,) = list(handler[f"patch {TRIALS}/old"])
    assert patch.headers["Content-Type"].startswith("application/json-patch+json")
    assert json.loads(patch.body) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "31"},
        {"op": "replace", "path": "/metadata/finalizers", "value": ["example.com/keep"]}]
    assert not list(handler[f"patch {TRIALS}/other"])  # not being deleted: left alone


def test_katibs_finalizers_are_released_from_objects_a_list_shows_being_deleted(server) -> None:
    """Objects deleted while no controller ran never come as a watch event: the informer's list
    (at start, or after 410 Gone) is where they are seen, so their finalizers go there too."""
    handler, store = server
    experiments = f"/apis/kubeflow.org/v1beta1/namespaces/{NS}/experiments"
    deleting = trial_object("old", 41)
    deleting["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z",
                                finalizers=["clean-metrics-in-db", "example.com/keep"])
    experiment = {**trial_object("exp", 40), "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment"}
    experiment["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["update-prometheus-metrics"])
    handler[f"get {TRIALS}"] << {"kind": "TrialList", "metadata": {"resourceVersion": "42"},
                                 "items": [deleting, trial_object("alive", 39)]}
    handler[f"get {experiments}"] << {"kind": "ExperimentList", "metadata": {"resourceVersion": "42"},
                                      "items": [experiment]}
    handler[f"patch {TRIALS}/old"] << (lambda req: {**deleting, "metadata": {
        **deleting["metadata"], "finalizers": ["example.com/keep"], "resourceVersion": "43"}})
    handler[f"patch {experiments}/exp"] << (lambda req: {**experiment, "metadata": {
        **experiment["metadata"], "finalizers": [], "resourceVersion": "44"}})

    trials, _ = store.list("Trial", NS)
    experiments_listed, _ = store.list("Experiment", NS)
    assert sorted(t.metadata.name for t in trials) == ["alive", "old"] and len(experiments_listed) == 1
    (patch,) = list(handler[f"patch {TRIALS}/old"])
    assert json.loads(patch.body) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "41"},
        {"op": "replace", "path": "/metadata/finalizers", "value": ["example.com/keep"]}]
    (patch,) = list(handler[f"patch {experiments}/exp"])
    assert json.loads(patch.body)[1] == {"op": "replace", "path": "/metadata/finalizers", "value": []}
    assert not list(handler[f"patch {TRIALS}/alive"])  # not being deleted: left alone
