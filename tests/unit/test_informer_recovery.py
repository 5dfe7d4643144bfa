"""The informer heals itself: after the store was unreachable it lists again, and a watch that
goes silent (no event, no bookmark) is cancelled and replaced by a fresh list."""

from __future__ import annotations

import threading

from sextant.resources.models import ObjectMeta, Trial
from sextant.store.informer import Informer
from sextant.store.interface import Unavailable
from tests.waiting import wait_for


class SilentStream:
    """A watch that never sends anything until cancelled (a stuck connection)."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        self.cancelled.wait()
        raise StopIteration

    def cancel(self) -> None:
        self.cancelled.set()


class FakeStore:
    """Lists what it holds; its watches never deliver (the changes are only seen by listing)."""

    def __init__(self, fail_watches: int = 0, written_while_down: str = "") -> None:
        self.items: list[Trial] = []
        self.version = 1
        self.lists = 0
        self.streams: list[SilentStream] = []
        self.fail_watches = fail_watches
        self.written_while_down = written_while_down

    def add(self, name: str) -> None:
        self.version += 1
        self.items.append(Trial(metadata=ObjectMeta(name=name, namespace="ns", resource_version=str(self.version))))

    def list(self, kind, namespace="", labels=None):
        self.lists += 1
        return list(self.items), self.version

    def watch(self, kind, namespace="", since=0, labels=None):
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
    store = FakeStore()
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
    store = FakeStore(fail_watches=2, written_while_down="while-down")
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
