"""The informer heals itself: after the store was unreachable it lists again, a watch that goes
silent (no event, no bookmark) is cancelled and replaced by a fresh list, and a watch whose
version left the store's history (Expired) is followed by a list that reports what it missed.

The store is the in-memory ResourceStore; the first two tests break its watches on purpose."""

from __future__ import annotations

import threading

from sextant.resources.models import ObjectMeta, Trial
from sextant.store.informer import Informer
from sextant.store.interface import EventType, Unavailable, WatchStream
from sextant.store.memory import MemoryResourceStore
from tests.waiting import wait_for


class SilentStream(WatchStream):
    """A watch that never sends anything until cancelled (a stuck connection)."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def __next__(self):
        self.cancelled.wait()
        raise StopIteration

    def cancel(self) -> None:
        self.cancelled.set()


class BrokenWatches(MemoryResourceStore):
    """Lists what it holds; its watches never deliver (the changes are only seen by listing), and
    the first ``fail_watches`` fail as if the store were down."""

    def __init__(self, fail_watches: int = 0, written_while_down: str = "") -> None:
        super().__init__()
        self.lists = 0
        self.streams: list[SilentStream] = []
        self.fail_watches = fail_watches
        self.written_while_down = written_while_down

    def add(self, name: str) -> None:
        self.create(Trial(metadata=ObjectMeta(name=name, namespace="ns")))

    def list(self, kind, namespace="", labels=None):
        self.lists += 1
        return super().list(kind, namespace, labels)

    def watch(self, kind="", namespace="", since=0, labels=None):
        if self.fail_watches:
            self.fail_watches -= 1
            if self.written_while_down:  # someone else writes during the outage
                self.add(self.written_while_down)
                self.written_while_down = ""
            raise Unavailable("store down")
        stream = SilentStream()
        self.streams.append(stream)
        return stream


def test_a_silent_watch_is_cancelled_and_the_informer_lists_again():
    store = BrokenWatches()
    store.add("first")
    informer = Informer(store, "Trial", resync_seconds=0, idle_seconds=0.3)
    informer.start()
    try:
        assert informer.wait_for_sync(5)
        store.add("missed")  # a change the stuck watch never delivers
        wait_for(lambda: informer.get("ns", "missed") is not None)
        assert store.streams[0].cancelled.is_set()
        assert informer.relists >= 2
    finally:
        informer.stop()


def test_after_the_store_was_unreachable_the_informer_lists_again():
    store = BrokenWatches(fail_watches=2, written_while_down="while-down")
    store.add("first")
    # no watchdog: only the list after the outage can find the change, the watch never sends it
    informer = Informer(store, "Trial", resync_seconds=0, idle_seconds=0, backoff_max=0.05)
    seen = []
    informer.add_handler(lambda event_type, trial: seen.append((event_type, trial.metadata.name)))
    informer.start()
    try:
        wait_for(lambda: informer.get("ns", "while-down") is not None)
        wait_for(lambda: store.streams)  # watching again once the store answers
        assert store.lists >= 2
        assert [name for _, name in seen].count("while-down") == 1
    finally:
        informer.stop()


class SlowToWatch(MemoryResourceStore):
    """Holds the informer's next watch until released, so writes can push its version out of
    the history first."""

    def __init__(self, history: int) -> None:
        super().__init__(history=history)
        self.release = threading.Event()
        self.waiting = threading.Event()

    def watch(self, kind="", namespace="", since=0, labels=None):
        self.waiting.set()
        self.release.wait(10)
        return super().watch(kind, namespace, since, labels)


def test_an_expired_watch_is_followed_by_a_list_that_reports_the_difference():
    store = SlowToWatch(history=4)
    for name in ("kept", "gone"):
        store.create(Trial(metadata=ObjectMeta(name=name, namespace="ns")))
    informer = Informer(store, "Trial", resync_seconds=0, idle_seconds=0)
    seen: list[tuple[EventType, str]] = []
    informer.add_handler(lambda event_type, trial: seen.append((event_type, trial.metadata.name)))
    informer.start()
    try:
        assert informer.wait_for_sync(5) and store.waiting.wait(5)
        store.delete("Trial", "ns", "gone")
        kept = store.get("Trial", "ns", "kept")
        kept.metadata.labels["v"] = "2"
        store.update(kept)
        for i in range(5):  # more changes than the history holds
            store.create(Trial(metadata=ObjectMeta(name=f"new{i}", namespace="ns")))
        store.release.set()
        wait_for(lambda: len(informer.list()) == 6)
        assert informer.relists == 2  # the watch was Expired, so it listed again
        assert informer.get("ns", "gone") is None and informer.get("ns", "kept").metadata.labels == {"v": "2"}
        assert seen[:2] == [(EventType.ADDED, "gone"), (EventType.ADDED, "kept")]  # the first list, by name
        assert sorted(seen[2:]) == sorted([(EventType.DELETED, "gone"), (EventType.MODIFIED, "kept")]
                                          + [(EventType.ADDED, f"new{i}") for i in range(5)])
    finally:
        store.release.set()
        informer.stop()


class FirstWriteRacesTheWatch(MemoryResourceStore):
    """A store never written, whose first change lands after the informer's list and before the
    store opens its watch (a watch from 0 starts "now": it never sends that change)."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    def watch(self, kind="", namespace="", since=0, labels=None):
        stream = super().watch(kind, namespace, since, labels)
        if not self.raced:
            self.raced = True
            self.create(Trial(metadata=ObjectMeta(name="raced", namespace="ns")))
        return stream


def test_after_listing_an_empty_store_the_informer_lists_again_once_the_watch_answers():
    store = FirstWriteRacesTheWatch()
    informer = Informer(store, "Trial", resync_seconds=0, idle_seconds=0)
    informer.start()
    try:
        assert informer.wait_for_sync(5)
        wait_for(lambda: informer.get("ns", "raced") is not None, timeout=5)
        assert informer.relists == 1  # the check after a list at version 0 is not a relist
        store.create(Trial(metadata=ObjectMeta(name="later", namespace="ns")))
        wait_for(lambda: informer.get("ns", "later") is not None, timeout=5)  # still watching
    finally:
        informer.stop()


def test_an_indexed_label_lists_the_same_objects_through_creates_relabels_deletes_and_relists():
    """The label index answers exactly what a scan of the cache would, whatever happened."""
    store = MemoryResourceStore()
    informer = Informer(store, "Trial", resync_seconds=0, idle_seconds=0, indexed_labels=("exp",))

    def trial(name: str, exp: str, other: str = "x") -> Trial:
        return Trial(metadata=ObjectMeta(name=name, namespace="ns", labels={"exp": exp, "other": other}))

    def names(labels: dict[str, str]) -> list[str]:
        return sorted(t.metadata.name for t in informer.list(labels))

    store.create(trial("a1", "a"))
    informer.start()
    try:
        assert informer.wait_for_sync(5)
        store.create(trial("a2", "a", other="y"))
        store.create(trial("b1", "b"))
        moved = store.get("Trial", "ns", "a1")
        moved.metadata.labels["exp"] = "b"  # relabelled: leaves a's entry, joins b's
        store.update(moved)
        store.create(trial("gone", "a"))
        store.delete("Trial", "ns", "gone")
        wait_for(lambda: names({"exp": "b"}) == ["a1", "b1"] and informer.get("ns", "gone") is None)
        assert names({"exp": "a"}) == ["a2"]
        assert names({"exp": "a", "other": "y"}) == ["a2"] and names({"exp": "a", "other": "x"}) == []
        assert names({"exp": "none"}) == [] and names({"other": "x"}) == ["a1", "b1"]
        informer._relist()  # a relist rebuilds the index from the fresh list
        assert names({"exp": "b"}) == ["a1", "b1"] and names({"exp": "a"}) == ["a2"]
    finally:
        informer.stop()
