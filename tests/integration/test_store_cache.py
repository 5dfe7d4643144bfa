"""The DB manager's decoded-resource cache: two stores on one database (two DB managers) must
never serve each other's stale copies, and a caller of the dict API can never change what the
cache holds."""

from __future__ import annotations

import pytest

from services.db_manager.database import Database
from services.db_manager.resource_store import SqlResourceStore
from sextant.store.interface import Conflict, NotFound


def _trial(name: str) -> dict:
    return {"kind": "Trial", "metadata": {"name": name, "namespace": "default", "labels": {"a": "b"}}}


@pytest.fixture
def two_stores(migrated_db_url):
    db_a, db_b = Database(migrated_db_url), Database(migrated_db_url)
    try:
        yield SqlResourceStore(db_a), SqlResourceStore(db_b)
    finally:
        db_a.dispose()
        db_b.dispose()


def test_another_writer_is_never_hidden_by_the_cache(two_stores):
    a, b = two_stores
    created = a.create_doc(_trial("t"))
    assert a.read("Trial", "default", "t") is a.read("Trial", "default", "t")  # served from the cache
    assert b.get_doc("Trial", "default", "t") == created

    # b writes; a's cached copy is now stale and must not be served or written over.
    moved = b.update_status_doc({**b.get_doc("Trial", "default", "t"), "status": {"startTime": "2024-01-01T00:00:00Z"}})
    assert a.get_doc("Trial", "default", "t") == moved
    stale = {**created, "status": {"completionTime": "2024-01-02T00:00:00Z"}}
    with pytest.raises(Conflict):
        a.update_status_doc(stale)  # the client's version is the old one
    b.update_status_doc({**moved, "status": {"startTime": "2024-01-03T00:00:00Z"}})
    unversioned = {**stale, "metadata": {**stale["metadata"], "resourceVersion": ""}}
    after = a.update_status_doc(unversioned)  # no version given: applied over b's latest, not a's cache
    assert after["status"] == {"completionTime": "2024-01-02T00:00:00Z", "conditions": []}
    assert int(after["metadata"]["resourceVersion"]) == int(moved["metadata"]["resourceVersion"]) + 2
    assert b.get_doc("Trial", "default", "t") == after

    # a sends back exactly what it has cached, but b changed the row since: that is a change.
    a_view = a.get_doc("Trial", "default", "t")
    b.update_status_doc({**b.get_doc("Trial", "default", "t"), "status": {"startTime": "2024-01-04T00:00:00Z"}})
    back = a.update_status_doc({**a_view, "metadata": {**a_view["metadata"], "resourceVersion": ""}})
    assert back["status"] == a_view["status"]
    assert int(back["metadata"]["resourceVersion"]) == int(a_view["metadata"]["resourceVersion"]) + 2
    after = back

    # a spec update through a after b relabelled: b's labels are the ones a compares against.
    relabelled = b.update_doc({**after, "metadata": {**after["metadata"], "labels": {"a": "c"}}})
    same = a.update_doc({**relabelled, "metadata": {**relabelled["metadata"], "resourceVersion": ""}})
    assert same["metadata"]["resourceVersion"] == relabelled["metadata"]["resourceVersion"]  # nothing changed

    # deleted by b: a neither serves nor updates its cached copy.
    b.delete_docs("Trial", "default", "t")
    with pytest.raises(NotFound):
        a.get_doc("Trial", "default", "t")
    with pytest.raises(NotFound):
        a.update_status_doc(unversioned)
    recreated = b.create_doc(_trial("t"))
    assert a.get_doc("Trial", "default", "t") == recreated


def test_dict_api_returns_private_copies(two_stores):
    a, _ = two_stores
    doc = a.create_doc(_trial("t"))
    doc["metadata"]["labels"]["a"] = "changed"
    doc["status"]["startTime"] = "x"
    got = a.get_doc("Trial", "default", "t")
    assert got["metadata"]["labels"] == {"a": "b"} and "startTime" not in got["status"]
    got["spec"]["retainRun"] = True
    assert a.get_doc("Trial", "default", "t")["spec"].get("retainRun") is not True
    assert a.read("Trial", "default", "t").resource().metadata.labels["a"] == "b"


@pytest.mark.xdist_group("db_manager_concurrency")
def test_status_writers_through_two_stores_lose_no_update(two_stores):
    """Read-modify-write of a status counter from threads on two stores (two DB managers): every
    UpdateStatus against a stale copy is refused, none is lost, versions stay dense."""
    import threading

    a, b = two_stores
    start = int(a.create_doc(_trial("counter"))["metadata"]["resourceVersion"])
    writers, increments = 3, 6

    def write(store) -> None:
        for _ in range(increments):
            while True:
                t = store.get_doc("Trial", "default", "counter")
                conditions = t["status"]["conditions"]
                n = int(conditions[0]["message"]) if conditions else 0
                t["status"]["conditions"] = [{"type": "Running", "message": str(n + 1)}]
                try:
                    store.update_status_doc(t)
                    break
                except Conflict:
                    continue

    threads = [threading.Thread(target=write, args=(s,)) for s in (a, b) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    total = 2 * writers * increments
    final = b.get_doc("Trial", "default", "counter")
    assert final["status"]["conditions"][0]["message"] == str(total)
    assert int(final["metadata"]["resourceVersion"]) == start + total
    assert a.get_doc("Trial", "default", "counter") == final
    assert [c.doc["status"]["conditions"][0]["message"] for c in a.changes(start, start + total)] == \
        [str(i) for i in range(1, total + 1)]
