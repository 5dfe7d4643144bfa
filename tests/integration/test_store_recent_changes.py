"""The DB manager serves watches from the changes it wrote itself (in memory) and from the table
for anything else: both must give the same events, and another writer's changes must never be
skipped."""

from __future__ import annotations

from services.db_manager.database import Database, migrate
from services.db_manager.resource_store import SqlResourceStore
from sextant.resources.models import Trial, to_doc


def _trial(name: str) -> dict:
    return to_doc(Trial.model_validate({"metadata": {"name": name, "namespace": "default"}}))


def test_memory_and_table_agree_and_foreign_writes_fall_back(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    migrate(db)
    ours, other = SqlResourceStore(db), SqlResourceStore(db)  # two DB managers, one database
    ours.create_doc(_trial("a"))
    other.create_doc(_trial("b"))  # a version `ours` never saw
    ours.create_doc(_trial("c"))
    current, _ = ours.state()
    assert ours.recent_changes(0, current) is None  # the gap sends the reader to the table
    assert [c.doc["metadata"]["name"] for c in ours.changes(0, current)] == ["a", "b", "c"]
    after_b = int(ours.get_doc("Trial", "default", "b")["metadata"]["resourceVersion"])
    from_memory = ours.recent_changes(after_b, current, "Trial")
    assert from_memory is not None
    from_table = ours.changes(after_b, current, "Trial")
    assert [(c.resource_version, c.type, c.doc) for c in from_memory] == \
        [(c.resource_version, c.type, c.doc) for c in from_table]
    assert ours.recent_changes(after_b, current, "Experiment") == []
    # a delete is remembered too
    ours.delete_docs("Trial", "default", "c")
    top, _ = ours.state()
    assert [c.type for c in ours.recent_changes(current, top)] == ["DELETED"]


def _store_with_trials(tmp_path, n: int) -> SqlResourceStore:
    """A fresh SQLite store holding trials t0..t<n-1> (versions 1..n)."""
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    migrate(db)
    store = SqlResourceStore(db)
    for i in range(n):
        store.create_doc(_trial(f"t{i}"))
    return store


def test_window_is_bounded_and_old_changes_are_served_from_their_snapshot(tmp_path, monkeypatch):
    from services.db_manager import resource_store
    from services.db_manager.store_service import _event

    monkeypatch.setattr(resource_store, "RECENT", 8)
    monkeypatch.setattr(resource_store, "RECENT_DECODED", 3)
    store = _store_with_trials(tmp_path, 20)
    assert sorted(store._recent) == list(range(13, 21))  # the newest RECENT versions
    assert store.recent(11, 20) is None and store.recent(12, 20) is not None
    recent = store.recent(12, 20)
    assert [r.stored is None for r in recent] == [True] * 5 + [False] * 3  # only the newest 3 decoded
    from_table = {c.resource_version: c for c in store.changes(12, 20)}
    for r in recent:
        event = _event(r, {})
        expected = _event(from_table[r.resource_version], {})
        assert event == expected and event.resource.metadata.name == f"t{r.resource_version - 1}"
        assert _event(r, {"no": "match"}) is None
    assert store.recent_changes(12, 20) == store.changes(12, 20)


def test_window_is_bounded_by_snapshot_size(tmp_path, monkeypatch):
    from services.db_manager import resource_store

    monkeypatch.setattr(resource_store, "RECENT_CHARS", 2000)
    store = _store_with_trials(tmp_path, 20)
    size = len(store._recent[20].snapshot)
    assert len(store._recent) == 2000 // size and sorted(store._recent)[-1] == 20
    assert store._recent_chars == sum(len(r.snapshot) for r in store._recent.values()) <= 2000
    assert store.recent(0, 20) is None and store.recent(20 - 2000 // size, 20) is not None
