"""CachedReader: cache first, our own newer writes over a lagging cache, the store as fallback."""

from sextant.katib.condition_list import TRUE, set_condition
from sextant.resources.models import Trial
from sextant.store.cached_reader import CachedReader, with_status_copy
from sextant.store.interface import NotFound


def _trial(rv: str, conditions=()) -> Trial:
    trial = Trial.model_validate({"metadata": {"name": "t", "namespace": "ns", "resourceVersion": rv, "uid": "u"},
                                  "spec": {}})
    for c in conditions:
        set_condition(trial.status.conditions, c, TRUE, c, c)
    return trial


class FakeInformer:
    def __init__(self, items, synced=True):
        self.items, self.synced = items, synced

    def has_synced(self):
        return self.synced

    def get(self, namespace, name):
        return self.items.get((namespace, name))


class CountingStore:
    def __init__(self, item=None):
        self.item, self.gets = item, 0

    def get(self, kind, namespace, name):
        self.gets += 1
        if self.item is None:
            raise NotFound(f"{kind} {namespace}/{name}")
        return self.item


def test_reads_the_cache_without_asking_the_store():
    cached = _trial("5")
    store = CountingStore(_trial("5"))
    reader = CachedReader(store, FakeInformer({("ns", "t"): cached}), "Trial")
    assert reader.get("ns", "t") is cached and store.gets == 0


def test_own_newer_write_wins_until_the_cache_catches_up():
    informer = FakeInformer({("ns", "t"): _trial("5")})
    reader = CachedReader(CountingStore(), informer, "Trial")
    mine = reader.wrote(_trial("7", ["Created"]))
    assert reader.get("ns", "t") is mine and reader.is_ahead_of_cache("ns", "t")
    informer.items[("ns", "t")] = caught_up = _trial("8")  # someone else's later change arrived
    assert reader.get("ns", "t") is caught_up and not reader.is_ahead_of_cache("ns", "t")


def test_falls_back_to_the_store_when_not_synced_or_not_cached():
    store = CountingStore(_trial("3"))
    assert CachedReader(store, FakeInformer({}, synced=False), "Trial").get("ns", "t").metadata.resource_version == "3"
    assert CachedReader(store, FakeInformer({}), "Trial").get("ns", "t") is not None
    assert CachedReader(store, None, "Trial").get("ns", "t") is not None
    assert store.gets == 3
    assert CachedReader(CountingStore(None), FakeInformer({}), "Trial").get("ns", "t") is None


def test_status_copy_leaves_the_cached_object_alone():
    cached = _trial("5", ["Created"])
    copy = with_status_copy(cached)
    set_condition(copy.status.conditions, "Running", TRUE, "r", "m")
    copy.status.start_time = "2026-01-01T00:00:00Z"
    assert [c.type for c in cached.status.conditions] == ["Created"] and cached.status.start_time is None
    assert [c.type for c in copy.status.conditions] == ["Created", "Running"]


def test_own_write_coming_back_is_recognised_only_as_that_very_modification():
    from sextant.store.interface import EventType

    reader = CachedReader(CountingStore(), FakeInformer({}), "Trial")
    assert not reader.is_own_write(EventType.MODIFIED, _trial("7"))  # nothing written yet
    reader.wrote(_trial("7"))
    assert reader.is_own_write(EventType.MODIFIED, _trial("7"))
    assert not reader.is_own_write(EventType.MODIFIED, _trial("8"))  # someone changed it since
    assert not reader.is_own_write(EventType.DELETED, _trial("7"))  # a deletion always counts
    assert not reader.is_own_write(EventType.ADDED, _trial("7"))


def test_a_controller_skips_the_events_its_skip_picks():
    from sextant.controller import Controller
    from sextant.store.interface import EventType

    class Source:
        def __init__(self):
            self.handlers = []

        def add_handler(self, handler):
            self.handlers.append(handler)

    source = Source()
    controller = Controller("c", lambda key: None)
    controller.watch(source, primary=True, skip=lambda event_type, r: r.metadata.resource_version == "7")
    source.handlers[0](EventType.MODIFIED, _trial("7"))
    assert len(controller.queue) == 0
    source.handlers[0](EventType.MODIFIED, _trial("8"))
    assert len(controller.queue) == 1
