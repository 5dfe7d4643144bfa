"""The reconcile framework: work queue semantics, backoff, mapping, resync, shutdown."""

from __future__ import annotations

import threading
import time

from sextant.controller import (
    Controller,
    Key,
    RateLimiter,
    Result,
    WorkQueue,
    label_mapper,
    owner_or_label_mapper,
)
from sextant.resources.models import ObjectMeta, OwnerReference, Trial
from sextant.store.interface import EventType
from tests.waiting import wait_for


class FakeInformer:
    """An in-process informer: holds items and calls handlers with WatchEvents."""

    def __init__(self, items=()):
        self.items = {(i.metadata.namespace, i.metadata.name): i for i in items}
        self.handlers = []
        self.started = self.stopped = False

    def add_handler(self, fn):
        self.handlers.append(fn)

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True

    def has_synced(self):
        return self.started

    def list(self):
        return list(self.items.values())

    def emit(self, resource, type_=EventType.MODIFIED):
        self.items[(resource.metadata.namespace, resource.metadata.name)] = resource
        for h in self.handlers:
            h(type_, resource)


def trial(name, ns="default", labels=None, owner=None):
    refs = [OwnerReference(kind="Experiment", name=owner)] if owner else []
    return Trial(metadata=ObjectMeta(name=name, namespace=ns, labels=labels or {}, owner_references=refs))


# -- WorkQueue ---------------------------------------------------------------------------------


def test_queue_coalesces_duplicate_adds():
    q = WorkQueue()
    k = Key("ns", "a")
    q.add(k)
    q.add(k)
    q.add(Key("ns", "b"))
    assert len(q) == 2
    assert q.get(0) == k
    assert q.get(0) == Key("ns", "b")
    assert q.get(0) is None


def test_key_being_processed_is_not_handed_out_again_and_is_requeued_after_done():
    q = WorkQueue()
    k = Key("ns", "a")
    q.add(k)
    assert q.get(0) == k
    q.add(k)  # arrives while processing
    q.add(k)  # coalesced
    assert q.get(0) is None  # not given to a second worker
    q.done(k)
    assert q.get(0) == k
    q.done(k)
    assert q.get(0) is None


def test_add_after_delivers_later_and_keeps_earliest_schedule():
    q = WorkQueue()
    k = Key("ns", "a")
    q.add_after(k, 60)
    q.add_after(k, 0.01)
    assert q.pending_delayed() == 1
    assert q.get(timeout=5) == k
    q.done(k)
    # the superseded 60 s entry does not come back
    assert q.get(timeout=0.05) is None


def test_shutdown_releases_waiting_getters():
    q = WorkQueue()
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.shutdown()
    t.join(5)
    assert got == [None]
    q.add(Key("a", "b"))
    assert q.get(0) is None


# -- RateLimiter --------------------------------------------------------------------------------


def test_rate_limiter_backs_off_exponentially_per_key_and_resets():
    rl = RateLimiter(base=1, max_delay=5)
    a, b = Key("n", "a"), Key("n", "b")
    assert [rl.when(a) for _ in range(5)] == [1, 2, 4, 5, 5]
    assert rl.when(b) == 1
    rl.forget(a)
    assert rl.when(a) == 1


# -- mappers ------------------------------------------------------------------------------------


def test_owner_mapper_prefers_owner_reference_then_label():
    m = owner_or_label_mapper("Experiment", "katib.kubeflow.org/experiment")
    assert m(trial("t1", "ns1", owner="exp-a", labels={"katib.kubeflow.org/experiment": "x"})) == [
        Key("ns1", "exp-a")
    ]
    assert m(trial("t2", "ns1", labels={"katib.kubeflow.org/experiment": "exp-b"})) == [Key("ns1", "exp-b")]
    assert m(trial("t3", "ns1")) == []
    assert label_mapper("x")(trial("t", labels={"x": "v"})) == [Key("default", "v")]


# -- Controller ---------------------------------------------------------------------------------


def test_events_from_primary_and_secondary_kinds_reach_reconcile():
    seen: list[Key] = []
    lock = threading.Lock()

    def reconcile(key):
        with lock:
            seen.append(key)

    primary = FakeInformer([trial("exp-a")])
    secondary = FakeInformer()
    c = Controller("t", reconcile, workers=2, resync_seconds=None)
    c.watch(primary)
    c.watch(secondary, owner_or_label_mapper("Experiment", "katib.kubeflow.org/experiment"))
    c.start()
    try:
        assert primary.started and secondary.started
        wait_for(lambda: Key("default", "exp-a") in seen)  # initial list enqueued at start
        secondary.emit(trial("t1", owner="exp-b"))
        wait_for(lambda: Key("default", "exp-b") in seen)
        primary.emit(trial("exp-c"), EventType.ADDED)
        wait_for(lambda: Key("default", "exp-c") in seen)
    finally:
        c.stop()
    assert primary.stopped and secondary.stopped


def test_one_worker_per_key_and_events_during_reconcile_are_not_lost():
    active: dict[Key, int] = {}
    overlap = []
    calls: list[Key] = []
    lock = threading.Lock()
    release = threading.Event()
    first_entered = threading.Event()

    def reconcile(key):
        with lock:
            active[key] = active.get(key, 0) + 1
            if active[key] > 1:
                overlap.append(key)
            calls.append(key)
        if len(calls) == 1:
            first_entered.set()
            release.wait(10)
        with lock:
            active[key] -= 1

    inf = FakeInformer()
    c = Controller("t", reconcile, workers=4, resync_seconds=None)
    c.watch(inf)
    c.start()
    try:
        inf.emit(trial("a"))
        assert first_entered.wait(10)
        for _ in range(20):  # events while the key is being reconciled
            inf.emit(trial("a"))
        release.set()
        wait_for(lambda: len(calls) >= 2)
        wait_for(lambda: len(c.queue) == 0 and not c.queue.is_processing(Key("default", "a")))
    finally:
        c.stop()
    assert overlap == []
    # the 20 events were coalesced into exactly one more reconcile
    assert calls.count(Key("default", "a")) == 2


def test_errors_are_retried_with_backoff_and_success_resets():
    attempts = []
    done = threading.Event()

    def reconcile(key):
        attempts.append(time.monotonic())
        if len(attempts) < 4:
            raise RuntimeError("transient")
        done.set()

    rl = RateLimiter(base=0.01, max_delay=1)
    c = Controller("t", reconcile, workers=1, resync_seconds=None, rate_limiter=rl)
    c.start()
    try:
        c.enqueue(Key("n", "x"))
        assert done.wait(10)
    finally:
        c.stop()
    assert len(attempts) == 4
    assert c.error_count == 3
    assert rl.failures(Key("n", "x")) == 0  # reset after the success
    # each retry waited at least its backoff (the delays grow)
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.01 and gaps[1] >= 0.02 and gaps[2] >= 0.04


def test_requeue_after_calls_reconcile_again():
    calls = []
    done = threading.Event()

    def reconcile(key):
        calls.append(key)
        if len(calls) < 3:
            return Result(requeue_after=0.01)
        done.set()
        return Result()

    c = Controller("t", reconcile, workers=1, resync_seconds=None)
    c.start()
    try:
        c.enqueue(Key("n", "x"))
        assert done.wait(10)
    finally:
        c.stop()
    assert len(calls) == 3


def test_periodic_resync_enqueues_every_known_key():
    seen = []
    inf = FakeInformer([trial("a"), trial("b")])
    c = Controller("t", lambda key: seen.append(key), workers=1, resync_seconds=0.02)
    c.watch(inf)
    c.start()
    try:
        wait_for(lambda: seen.count(Key("default", "a")) >= 3 and seen.count(Key("default", "b")) >= 3)
    finally:
        c.stop()


def test_stop_waits_for_the_running_reconcile_to_finish():
    finished = threading.Event()
    entered = threading.Event()

    def reconcile(key):
        entered.set()
        time.sleep(0.1)
        finished.set()

    c = Controller("t", reconcile, workers=1, resync_seconds=None)
    c.start()
    c.enqueue(Key("n", "x"))
    assert entered.wait(10)
    c.stop()
    assert finished.is_set()
    assert all(not t.is_alive() for t in c._threads)


def test_run_until_signal_returns_when_stopped_and_shuts_the_queue():
    stop = threading.Event()
    stop.set()
    c = Controller("t", lambda key: None, workers=1, resync_seconds=None)
    c.run_until_signal(extra_stop=stop)  # main thread: installs and restores the handlers
    c.enqueue(Key("n", "x"))
    assert c.queue.get(0) is None  # shut down: adds are ignored


def test_passes_are_counted_by_result_in_the_prometheus_registry():
    from prometheus_client import REGISTRY

    name = "metrics-test"
    failed_once = threading.Event()
    done = threading.Event()

    def reconcile(key):
        if key.name == "flaky" and not failed_once.is_set():
            failed_once.set()
            raise RuntimeError("transient")
        if key.name == "later":
            return Result(requeue_after=30)
        if key.name == "flaky":
            done.set()
        return None

    def sample(metric, **labels):
        return REGISTRY.get_sample_value(metric, {"controller": name, **labels}) or 0.0

    c = Controller(name, reconcile, workers=1, resync_seconds=None, rate_limiter=RateLimiter(base=0.01))
    c.start()
    try:
        for key in ("ok", "flaky", "later"):
            c.enqueue(Key("n", key))
        assert done.wait(10)
        wait_for(lambda: sample("sextant_controller_reconciles_total", result="requeued") == 1)
        assert sample("sextant_controller_reconciles_total", result="done") == 2  # ok, flaky's retry
        assert sample("sextant_controller_reconciles_total", result="error") == 1
        assert sample("sextant_controller_reconcile_seconds_count") == 4
        assert sample("sextant_controller_queue_delayed") == 1  # "later", 30 s away
        assert sample("sextant_controller_queue_ready") == 0
    finally:
        c.stop()


def test_extra_keys_are_enqueued_at_start_and_on_every_resync():
    """Keys no informer holds (e.g. jobs left behind by a deleted resource) reach reconcile."""
    seen = []
    listed = []

    def extra():
        listed.append(time.monotonic())
        return [Key("n", "left-behind")]

    c = Controller("extra", lambda key: seen.append(key), workers=1, resync_seconds=0.05, extra_keys=extra)
    c.start()
    try:
        wait_for(lambda: len(listed) >= 3 and seen.count(Key("n", "left-behind")) >= 2)
    finally:
        c.stop()
    assert set(seen) == {Key("n", "left-behind")}
