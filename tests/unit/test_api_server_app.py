"""The API server's application over the in-memory ResourceStore, through aiohttp's test client:
auth, CRUD with Kubernetes' Status errors, tables, discovery and watches, with no processes."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from services.api_server.app import build_app
from sextant.events import EventRecorder
from sextant.resources.admission import admit_experiment
from sextant.resources.models import AlgorithmSpec, Condition, ObjectMeta, Suggestion, SuggestionSpec
from sextant.store.memory import MemoryResourceStore

pytestmark = pytest.mark.asyncio
TOKEN = "unit-token"
BASE = "/apis/kubeflow.org/v1beta1/namespaces/default"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest_asyncio.fixture
async def api(tmp_path):
    store = MemoryResourceStore(history=3)  # a short history: old versions expire soon
    app = build_app(store, token=TOKEN, data_dir=tmp_path)
    async with TestClient(TestServer(app)) as client:
        app["sextant.watch_hub"].wait_ready(10)
        yield client


async def _json(response) -> dict:
    return json.loads(await response.read())


async def test_token_header_or_cookie_and_public_paths(api):
    denied = await api.get(f"{BASE}/experiments")
    body = await _json(denied)
    assert denied.status == 401 and (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)
    assert (await api.get(f"{BASE}/experiments", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await api.get(f"{BASE}/experiments", headers=AUTH)).status == 200
    assert (await api.get(f"{BASE}/experiments", cookies={"sextant_token": TOKEN})).status == 200
    assert (await api.get("/healthz")).status == 200
    api.server.app["sextant.public_prefixes"].append("/unit-public/")
    assert (await api.get("/unit-public/app.js")).status == 404  # let through, then simply not found
    assert (await api.get("/unit-private/app.js")).status == 401


async def test_create_get_patch_conflict_delete(api, experiment_doc):
    doc = copy.deepcopy(experiment_doc)
    doc["metadata"] = {"name": "unit", "namespace": "default"}
    created = await api.post(f"{BASE}/experiments", json=doc, headers=AUTH)
    body = await _json(created)
    assert created.status == 201 and body["metadata"]["uid"] and body["spec"]["parallelTrialCount"] == 3
    again = await _json(await api.post(f"{BASE}/experiments", json=doc, headers=AUTH))
    assert again["reason"] == "AlreadyExists" and again["message"] == 'experiments.kubeflow.org "unit" already exists'

    bad = copy.deepcopy(doc)
    bad["metadata"]["name"] = "bad"
    bad["spec"]["maxTrialCount"] = -1
    refused = await api.post(f"{BASE}/experiments", json=bad, headers=AUTH)
    status = await _json(refused)
    assert refused.status == 422 and status["details"]["kind"] == "Experiment"
    assert {"field": "spec.maxTrialCount", "reason": "FieldValueInvalid",
            "message": "Invalid value: -1: must be greater than 0"} in status["details"]["causes"]

    patched = await api.patch(f"{BASE}/experiments/unit", data=json.dumps({"spec": {"maxTrialCount": 20}}),
                              headers={**AUTH, "Content-Type": "application/merge-patch+json"})
    assert patched.status == 200 and (await _json(patched))["spec"]["maxTrialCount"] == 20
    stale = {**body, "metadata": {**body["metadata"]}}  # the version it was created at
    conflict = await api.put(f"{BASE}/experiments/unit", json=stale, headers=AUTH)
    assert conflict.status == 409 and (await _json(conflict))["message"].startswith(
        'Operation cannot be fulfilled on experiments.kubeflow.org "unit"')
    strategic = await api.patch(f"{BASE}/experiments/unit", data="{}",
                                headers={**AUTH, "Content-Type": "application/strategic-merge-patch+json"})
    assert strategic.status == 415 and (await _json(strategic))["reason"] == "UnsupportedMediaType"

    table = await _json(await api.get(f"{BASE}/experiments", headers={**AUTH, "Accept": TABLE}))
    assert table["kind"] == "Table" and table["rows"][0]["cells"][0] == "unit"

    deleted = await api.delete(f"{BASE}/experiments/unit", json={"propagationPolicy": "Background"}, headers=AUTH)
    assert deleted.status == 200
    gone = await _json(await api.get(f"{BASE}/experiments/unit", headers=AUTH))
    assert (gone["code"], gone["reason"], gone["message"]) == (404, "NotFound",
                                                               'experiments.kubeflow.org "unit" not found')
    unserved = await _json(await api.get("/apis/apps/v1/namespaces/default/deployments", headers=AUTH))
    assert (unserved["kind"], unserved["code"]) == ("Status", 404)


async def test_aggregated_discovery_answers_the_version_asked_for(api):
    for version in ("v2", "v2beta1"):
        accept = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList,application/json"
        reply = await api.get("/apis", headers={**AUTH, "Accept": accept})
        body = await _json(reply)
        assert body["apiVersion"] == f"apidiscovery.k8s.io/{version}"
        assert f"v={version};" in reply.headers["Content-Type"]
        resources = {r["resource"]: r for r in body["items"][0]["versions"][0]["resources"]}
        assert resources["trials"]["categories"] == ["all", "kubeflow", "katib"]
    legacy = await _json(await api.get("/apis", headers=AUTH))
    assert legacy["kind"] == "APIGroupList" and legacy["groups"][0]["preferredVersion"]["version"] == "v1beta1"


async def test_watch_streams_changes_from_a_version_with_bookmarks(api, experiment_doc):
    doc = copy.deepcopy(experiment_doc)
    doc["metadata"] = {"name": "watched", "namespace": "default"}
    listed = await _json(await api.get(f"{BASE}/experiments", headers=AUTH))
    version = listed["metadata"]["resourceVersion"]
    reply = await api.get(f"{BASE}/experiments?watch=true&resourceVersion={version}", headers=AUTH)
    assert reply.status == 200
    await api.post(f"{BASE}/experiments", json=doc, headers=AUTH)
    await api.patch(f"{BASE}/experiments/watched", data=json.dumps({"metadata": {"labels": {"a": "b"}}}),
                    headers={**AUTH, "Content-Type": "application/merge-patch+json"})
    events = [json.loads(await asyncio.wait_for(reply.content.readline(), 10)) for _ in range(2)]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]
    assert events[1]["object"]["metadata"]["labels"] == {"a": "b"}
    hub = api.server.app["sextant.watch_hub"]
    assert len(hub.subscribers) == 1 and not hub.direct  # served by the shared store watch
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(events[0]["object"]["metadata"]
                                                                         ["resourceVersion"])
    reply.close()

    streaming = await api.get(f"{BASE}/experiments?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
                              "&resourceVersionMatch=NotOlderThan", headers=AUTH)
    first = json.loads(await asyncio.wait_for(streaming.content.readline(), 10))
    end = json.loads(await asyncio.wait_for(streaming.content.readline(), 10))
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "watched"
    assert end["type"] == "BOOKMARK"
    assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    streaming.close()


async def test_paging_with_limit_and_continue_sees_every_item_once(api, experiment_doc):
    for name in ("p-a", "p-b", "p-c"):
        doc = copy.deepcopy(experiment_doc)
        doc["metadata"] = {"name": name, "namespace": "default"}
        assert (await api.post(f"{BASE}/experiments", json=doc, headers=AUTH)).status == 201
    names, token = [], ""
    for _ in range(3):
        page = await _json(await api.get(f"{BASE}/experiments?limit=2" + (f"&continue={token}" if token else ""),
                                         headers=AUTH))
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == ["p-a", "p-b", "p-c"]
    api.server.app["sextant.list_pages"]._pages.clear()  # a token this server forgot: listed again
    first = await _json(await api.get(f"{BASE}/experiments?limit=1", headers=AUTH))
    api.server.app["sextant.list_pages"]._pages.clear()
    rest = await _json(await api.get(f"{BASE}/experiments?continue={first['metadata']['continue']}", headers=AUTH))
    assert [i["metadata"]["name"] for i in rest["items"]] == ["p-b", "p-c"]
    bad = await api.get(f"{BASE}/experiments?continue=garbage", headers=AUTH)
    assert bad.status == 400 and (await _json(bad))["reason"] == "BadRequest"


async def test_watch_from_a_version_the_store_no_longer_keeps_is_expired(tmp_path, experiment_doc):
    store = MemoryResourceStore(history=3)
    for name in ("old-a", "old-b", "old-c", "old-d", "old-e"):  # before this server started
        doc = copy.deepcopy(experiment_doc)
        doc["metadata"] = {"name": name, "namespace": "default"}
        store.create(admit_experiment(doc))
    app = build_app(store, token=TOKEN, data_dir=tmp_path)
    async with TestClient(TestServer(app)) as client:
        app["sextant.watch_hub"].wait_ready(10)
        reply = await client.get(f"{BASE}/experiments?watch=true&resourceVersion=1", headers=AUTH)
        event = json.loads(await asyncio.wait_for(reply.content.readline(), 10))
        reply.close()
    assert event["type"] == "ERROR"
    assert (event["object"]["kind"], event["object"]["code"], event["object"]["reason"]) == ("Status", 410, "Expired")
    assert event["object"]["message"].startswith("too old resource version: 1")


async def test_store_watch_runs_only_while_someone_watches(api, monkeypatch):
    import services.api_server.watch as watch_module

    hub = api.server.app["sextant.watch_hub"]
    assert not hub.started and hub._stream is None  # nobody watches: no store stream decoded
    monkeypatch.setattr(watch_module, "IDLE_SECONDS", 0.2)
    listed = await _json(await api.get(f"{BASE}/experiments", headers=AUTH))
    version = listed["metadata"]["resourceVersion"]
    reply = await api.get(f"{BASE}/experiments?watch=true&resourceVersion={version}", headers=AUTH)
    assert reply.status == 200
    for _ in range(100):
        if hub.subscribers:
            break
        await asyncio.sleep(0.02)
    assert hub.started and len(hub.subscribers) == 1 and not hub.direct
    reply.close()
    for _ in range(200):
        if not hub.started and hub._stream is None:
            break
        await asyncio.sleep(0.02)
    assert not hub.started and hub._stream is None  # the last watcher left: the stream ended


async def test_the_first_watch_after_a_start_gets_the_changes_since_its_version(tmp_path, experiment_doc):
    """As after an API server restart: the store moved on before anyone watched here, and a
    client resuming its watch from its last version gets every change after it (the store
    watch replays them), not only those after the hub's start."""
    app = build_app(MemoryResourceStore(), token=TOKEN, data_dir=tmp_path)
    async with TestClient(TestServer(app)) as api:
        app["sextant.watch_hub"].wait_ready(10)
        doc = copy.deepcopy(experiment_doc)
        doc["metadata"] = {"name": "resume", "namespace": "default"}
        created = await _json(await api.post(f"{BASE}/experiments", json=doc, headers=AUTH))
        since = created["metadata"]["resourceVersion"]
        for budget in (20, 30):
            patched = await api.patch(f"{BASE}/experiments/resume", data=json.dumps({"spec": {"maxTrialCount": budget}}),
                                      headers={**AUTH, "Content-Type": "application/merge-patch+json"})
            assert patched.status == 200
        reply = await api.get(f"{BASE}/experiments?watch=true&resourceVersion={since}&timeoutSeconds=2", headers=AUTH)
        events = [json.loads(line) for line in (await reply.text()).splitlines() if line.strip()]
        budgets = [e["object"]["spec"]["maxTrialCount"] for e in events if e["type"] == "MODIFIED"]
        assert budgets == [20, 30]


async def test_a_watch_after_writes_is_decided_on_a_window_that_has_taken_them_in(tmp_path, experiment_doc,
                                                                                  monkeypatch):
    """The store watch feeding the window lags behind the writes (as on a busy machine): a
    client that wrote four changes and then watches from the version before them gets 410
    Expired (the store keeps 3), as it would had the window kept up, not a replay from a window
    still holding that version."""
    import services.api_server.watch as watch_module

    monkeypatch.setattr(watch_module, "WINDOW", 3)
    app = build_app(MemoryResourceStore(history=3), token=TOKEN, data_dir=tmp_path)
    async with TestClient(TestServer(app)) as api:
        hub = app["sextant.watch_hub"]
        hub.wait_ready(10)
        listed = await _json(await api.get(f"{BASE}/experiments", headers=AUTH))
        keeper = await api.get(f"{BASE}/experiments?watch=true&resourceVersion={listed['metadata']['resourceVersion']}",
                               headers=AUTH)  # keeps the hub's store watch running
        for _ in range(200):
            if hub.started and hub.subscribers:
                break
            await asyncio.sleep(0.02)
        doc = copy.deepcopy(experiment_doc)
        doc["metadata"] = {"name": "lag", "namespace": "default"}
        since = (await _json(await api.post(f"{BASE}/experiments", json=doc, headers=AUTH)))["metadata"]["resourceVersion"]
        for _ in range(200):
            if hub.streamed >= int(since):  # the window holds the create
                break
            await asyncio.sleep(0.02)
        dispatch, late = hub._dispatch, [0.0]

        def delayed(change) -> None:  # from now on 0.3 s late, in order (each strictly after the last)
            late[0] = max(late[0] + 1e-6, hub.loop.time() + 0.3)
            hub.loop.call_at(late[0], dispatch, change)

        monkeypatch.setattr(hub, "_dispatch", delayed)
        for budget in (20, 30, 40, 50):
            patched = await api.patch(f"{BASE}/experiments/lag", data=json.dumps({"spec": {"maxTrialCount": budget}}),
                                      headers={**AUTH, "Content-Type": "application/merge-patch+json"})
            assert patched.status == 200
        assert hub.streamed < int(since) + 4  # the window has not taken the writes in yet
        reply = await api.get(f"{BASE}/experiments?watch=true&resourceVersion={since}&timeoutSeconds=5", headers=AUTH)
        event = json.loads(await asyncio.wait_for(reply.content.readline(), 10))
        reply.close()
        keeper.close()
    assert (event["type"], event["object"]["code"]) == ("ERROR", 410), event



async def test_a_change_arriving_while_the_window_is_replayed_is_not_lost(tmp_path, experiment_doc):
    """A watcher from a version the window holds changes after gets them replayed; a change the
    store watch brings while the replay is still being written goes to the watcher's queue and
    must follow the replay (it was once skipped as "already sent", because the window it was
    compared with had grown meanwhile)."""
    app = build_app(MemoryResourceStore(), token=TOKEN, data_dir=tmp_path)
    async with TestClient(TestServer(app)) as api:
        hub = app["sextant.watch_hub"]
        hub.wait_ready(10)
        since = (await _json(await api.get(f"{BASE}/experiments", headers=AUTH)))["metadata"]["resourceVersion"]
        keeper = await api.get(f"{BASE}/experiments?watch=true&resourceVersion={since}", headers=AUTH)
        for _ in range(200):
            if hub.started and hub.subscribers:
                break
            await asyncio.sleep(0.02)

        async def write(body: dict) -> int:
            if "metadata" in body and "name" in body["metadata"]:
                reply = await api.post(f"{BASE}/experiments", json=body, headers=AUTH)
            else:
                reply = await api.patch(f"{BASE}/experiments/replayed", data=json.dumps(body), headers=MERGE)
            version = int((await _json(reply))["metadata"]["resourceVersion"])
            for _ in range(200):
                if hub.streamed >= version:  # the window (and every subscriber) has it
                    return version
                await asyncio.sleep(0.02)
            raise AssertionError("the hub never took the write in")

        doc = copy.deepcopy(experiment_doc)
        doc["metadata"] = {"name": "replayed", "namespace": "default"}
        created = await write(doc)
        changes = hub.follow(int(since))
        first, _ = await asyncio.wait_for(changes.__anext__(), 5)  # the replay, paused after one change
        modified = await write({"metadata": {"labels": {"step": "2"}}})
        second, _ = await asyncio.wait_for(changes.__anext__(), 5)
        await changes.aclose()
        keeper.close()
    assert (first.type, first.version) == ("ADDED", created)
    assert (second.type, second.version) == ("MODIFIED", modified)


MERGE = {**AUTH, "Content-Type": "application/merge-patch+json"}
CONFLICT_MESSAGE = ('Operation cannot be fulfilled on experiments.kubeflow.org "{}": the object has been '
                    "modified; please apply your changes to the latest version and try again")


async def _create(api, experiment_doc: dict, name: str) -> dict:
    doc = copy.deepcopy(experiment_doc)
    doc["metadata"] = {"name": name, "namespace": "default"}
    reply = await api.post(f"{BASE}/experiments", json=doc, headers=AUTH)
    assert reply.status == 201
    return await _json(reply)


async def test_suggestion_table_has_katibs_requested_and_assigned_columns(api):
    store = api.server.app["sextant.store"]
    suggestion = store.create(Suggestion(metadata=ObjectMeta(name="sugg", namespace="default"),
                                         spec=SuggestionSpec(algorithm=AlgorithmSpec(algorithm_name="random"),
                                                             requests=5)))
    suggestion.status.suggestion_count = 3
    suggestion.status.conditions = [Condition(type="Created", status="True", reason="SuggestionCreated"),
                                    Condition(type="Running", status="True", reason="SuggestionRunning")]
    store.update_status(suggestion)
    table = await _json(await api.get(f"{BASE}/suggestions", headers={**AUTH, "Accept": TABLE}))
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Type", "Status", "Requested", "Assigned",
                                                                "Age"]
    assert table["rows"][0]["cells"][:5] == ["sugg", "Running", "True", "5", "3"]


async def test_a_stale_status_update_is_a_conflict(api, experiment_doc):
    created = await _create(api, experiment_doc, "stale")
    url = f"{BASE}/experiments/stale/status"
    fresh = await api.put(url, json={**created, "status": {"trials": 1}}, headers=AUTH)
    assert fresh.status == 200 and (await _json(fresh))["status"]["trials"] == 1
    stale = await api.put(url, json={**created, "status": {"trials": 2}}, headers=AUTH)  # the version it was created at
    body = await _json(stale)
    assert (stale.status, body["kind"], body["reason"]) == (409, "Status", "Conflict")
    assert body["message"] == CONFLICT_MESSAGE.format("stale")
    assert (await _json(await api.get(f"{BASE}/experiments/stale", headers=AUTH)))["status"]["trials"] == 1


async def test_read_only_metadata_in_a_merge_patch_is_ignored(api, experiment_doc):
    meta = (await _create(api, experiment_doc, "ro"))["metadata"]
    forged = {"metadata": {"uid": "forged", "creationTimestamp": "2000-01-01T00:00:00Z", "generation": 99,
                           "labels": {"team": "a"}}}
    reply = await api.patch(f"{BASE}/experiments/ro", data=json.dumps(forged), headers=MERGE)
    body = await _json(reply)
    assert reply.status == 200 and body["metadata"]["labels"]["team"] == "a"  # the rest of the patch applies
    assert (body["metadata"]["uid"], body["metadata"]["creationTimestamp"]) == (meta["uid"], meta["creationTimestamp"])
    assert body["metadata"].get("generation") == meta.get("generation")
    # A resourceVersion in a patch is a precondition, as in Kubernetes: a stale one is refused.
    pinned = {"metadata": {"resourceVersion": meta["resourceVersion"], "labels": {"team": "b"}}}
    stale = await api.patch(f"{BASE}/experiments/ro", data=json.dumps(pinned), headers=MERGE)
    assert stale.status == 409 and (await _json(stale))["message"] == CONFLICT_MESSAGE.format("ro")


async def test_namespace_patch_changes_labels_but_keeps_the_name_label(api):
    labels = {"team": "a", "kubernetes.io/metadata.name": "forged"}
    reply = await api.patch("/api/v1/namespaces/default", data=json.dumps({"metadata": {"labels": labels}}),
                            headers=MERGE)
    assert reply.status == 200
    assert (await _json(reply))["metadata"]["labels"] == {"team": "a", "kubernetes.io/metadata.name": "default"}
    removed = await api.patch("/api/v1/namespaces/default", data=json.dumps({"metadata": {"labels": {"team": None}}}),
                              headers=MERGE)
    assert (await _json(removed))["metadata"]["labels"] == {"kubernetes.io/metadata.name": "default"}
    again = await _json(await api.get("/api/v1/namespaces/default", headers=AUTH))
    assert again["metadata"]["labels"] == {"kubernetes.io/metadata.name": "default"}


async def test_events_are_listed_for_the_object_the_field_selector_names(api, experiment_doc):
    store = api.server.app["sextant.store"]
    recorder = EventRecorder(store, "unit-test")
    for name in ("ev-a", "ev-b"):
        await _create(api, experiment_doc, name)
        recorder.record(store.get("Experiment", "default", name), "Normal", "Checked", f"about {name}")
    everything = await _json(await api.get("/api/v1/namespaces/default/events", headers=AUTH))
    assert sorted(e["involvedObject"]["name"] for e in everything["items"]) == ["ev-a", "ev-b"]
    # what `kubectl describe experiment ev-a` asks for
    selector = "involvedObject.name=ev-a,involvedObject.namespace=default,involvedObject.kind=Experiment"
    reply = await api.get(f"/api/v1/namespaces/default/events?fieldSelector={selector}", headers=AUTH)
    events = (await _json(reply))["items"]
    assert reply.status == 200 and [(e["involvedObject"]["name"], e["message"]) for e in events] == [
        ("ev-a", "about ev-a")]


async def test_watch_bookmarks_come_periodically_only_when_asked_for(tmp_path, experiment_doc):
    store = MemoryResourceStore(bookmark_seconds=0.1)  # the store's bookmark interval, short for the test
    doc = copy.deepcopy(experiment_doc)
    doc["metadata"] = {"name": "quiet", "namespace": "default"}
    version = store.create(admit_experiment(doc)).metadata.resource_version
    app = build_app(store, token=TOKEN, data_dir=tmp_path)
    async with TestClient(TestServer(app)) as api:
        app["sextant.watch_hub"].wait_ready(10)
        url = f"{BASE}/experiments?watch=true&resourceVersion={version}&timeoutSeconds=2"
        marked = await api.get(f"{url}&allowWatchBookmarks=true", headers=AUTH)
        events = [json.loads(line) for line in (await marked.text()).splitlines() if line.strip()]
        plain = await api.get(url, headers=AUTH)
        unmarked = (await plain.text()).strip()
    assert len(events) >= 2 and {e["type"] for e in events} == {"BOOKMARK"}  # nothing changed, still told
    assert {(e["object"]["kind"], e["object"]["metadata"]["resourceVersion"]) for e in events} == {
        ("Experiment", str(version))}
    assert unmarked == ""
