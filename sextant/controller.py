"""The reconcile framework every Sextant controller uses.

A controller is a function ``reconcile(key) -> Result | None`` that reads the current state of
one resource (``key`` = namespace + name) and makes the world match it. It must be
*level-triggered* and *idempotent*: it may be called any number of times, for any reason, and
must not assume which change woke it up. The framework guarantees:

* **One worker per key.** A key being reconciled is never handed to a second worker; adds that
  arrive meanwhile are coalesced into one and the key is re-queued when the first run ends.
* **Coalescing.** A key waiting in the queue is queued once, however many events arrive.
* **Backoff on errors.** An exception re-queues the key after an exponential delay per key
  (``base * 2**failures`` capped at ``max_delay``); a success resets it.
* **Requeue on request.** ``Result(requeue_after=s)`` re-queues the key after ``s`` seconds
  (e.g. "the algorithm service is starting, look again soon").
* **Resync.** Every ``resync_seconds`` every key the primary informer knows is enqueued, so a
  missed event only delays convergence. ``extra_keys`` adds keys the informer cannot know:
  the resources of things left running for a resource deleted while the controller was down
  (their pass finds the resource gone and cleans up).
* **Secondary kinds.** ``watch(informer, mapper)`` maps events on other kinds (Trials,
  Suggestions) to the keys of the resources that own them (``owner_mapper``/``label_mapper``).
* **Clean shutdown.** ``stop()`` stops the informers, lets running reconciles finish and joins
  the workers; ``run_until_signal()`` does that on SIGTERM/SIGINT.
* **Metrics.** Passes by result, their duration and the queue's depth, per controller, in the
  process's Prometheus registry (served by ``controller_main.serve_metrics``).

Nothing here polls the store: events come from informers (list + watch).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from prometheus_client import Counter, Gauge, Histogram

from sextant.store.interface import AlreadyExists, Conflict, EventType, NotFound, Resource, Unavailable

log = logging.getLogger("sextant.controller")

RECONCILES = Counter("sextant_controller_reconciles_total",
                     "Reconcile passes; result: done, requeued (asked to look again later) or error",
                     ["controller", "result"])
RECONCILE_SECONDS = Histogram("sextant_controller_reconcile_seconds", "Duration of a reconcile pass",
                              ["controller"])
QUEUE_READY = Gauge("sextant_controller_queue_ready", "Keys due for a reconcile, waiting for a worker",
                    ["controller"])
QUEUE_DELAYED = Gauge("sextant_controller_queue_delayed", "Keys waiting for a backoff or requeue delay",
                      ["controller"])


class Key(NamedTuple):
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for: ``requeue_after`` seconds (None = only on the next event)."""

    requeue_after: float | None = None


def key_of(resource: Any) -> Key:
    """The key of a resource model (or of a document dict)."""
    meta = resource.get("metadata", {}) if isinstance(resource, dict) else resource.metadata
    if isinstance(meta, dict):
        return Key(meta.get("namespace") or "default", meta["name"])
    return Key(meta.namespace or "default", meta.name)


# ---------------------------------------------------------------------------------------------
# Backoff


class RateLimiter:
    """Per-key exponential backoff: ``base * 2**(failures-1)`` seconds, at most ``max_delay``."""

    def __init__(self, base: float = 0.05, max_delay: float = 30.0):
        self.base = base
        self.max_delay = max_delay
        self._failures: dict[Key, int] = {}
        self._lock = threading.Lock()

    def when(self, key: Key) -> float:
        """Records one more failure of ``key`` and returns how long to wait before retrying."""
        with self._lock:
            n = self._failures.get(key, 0) + 1
            self._failures[key] = n
        # Cap the exponent too, so a key failing for days does not overflow the float.
        return float(min(self.max_delay, self.base * (2 ** min(n - 1, 40))))

    def failures(self, key: Key) -> int:
        with self._lock:
            return self._failures.get(key, 0)

    def forget(self, key: Key) -> None:
        with self._lock:
            self._failures.pop(key, None)


# ---------------------------------------------------------------------------------------------
# Work queue


class WorkQueue:
    """A FIFO of keys with coalescing, one-owner-per-key and delayed adds.

    ``get()`` hands out a key and marks it *processing*; the caller must call ``done(key)``.
    An ``add`` of a key that is processing is remembered (dirty) and the key goes back into the
    queue at ``done``, never to a second worker in the meantime.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[Key] = []
        self._dirty: set[Key] = set()
        self._processing: set[Key] = set()
        self._delayed: list[tuple[float, int, Key]] = []  # heap of (due, seq, key)
        self._due: dict[Key, float] = {}  # earliest pending delayed add per key
        self._seq = itertools.count()
        self._shutdown = False

    def add(self, key: Key) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: Key) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # re-queued by done()
        self._queue.append(key)
        self._cond.notify()

    def add_after(self, key: Key, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutdown:
                return
            due = time.monotonic() + delay
            if key in self._due and self._due[key] <= due:
                return  # an earlier retry is already scheduled
            self._due[key] = due
            heapq.heappush(self._delayed, (due, next(self._seq), key))
            self._cond.notify_all()  # a waiting get() may need to wake earlier

    def _promote_due_locked(self) -> float | None:
        """Moves due delayed keys into the queue; returns seconds until the next one."""
        now = time.monotonic()
        while self._delayed:
            due, _, key = self._delayed[0]
            if self._due.get(key) != due:
                heapq.heappop(self._delayed)  # superseded by an earlier add_after
                continue
            if due > now:
                return due - now
            heapq.heappop(self._delayed)
            del self._due[key]
            self._add_locked(key)
        return None

    def get(self, timeout: float | None = None) -> Key | None:
        """The next key, or None on shutdown or after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                next_due = self._promote_due_locked()
                if self._queue:
                    key = self._queue.pop(0)
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                if self._shutdown:
                    return None
                wait = next_due
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: Key) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutdown:
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def pending_delayed(self) -> int:
        with self._cond:
            return len(self._due)

    def is_processing(self, key: Key) -> bool:
        with self._cond:
            return key in self._processing


# ---------------------------------------------------------------------------------------------
# Event → key mappers


Mapper = Callable[[Any], Iterable[Key]]


def self_mapper(resource: Any) -> list[Key]:
    return [key_of(resource)]


def owner_mapper(kind: str) -> Mapper:
    """Maps a resource to the keys of its owners of ``kind`` (ownerReferences)."""

    def mapper(resource: Any) -> list[Key]:
        meta = resource.metadata
        return [Key(meta.namespace or "default", ref.name) for ref in meta.owner_references if ref.kind == kind]

    return mapper


def label_mapper(label: str) -> Mapper:
    """Maps a resource to ``(its namespace, the value of label)`` (e.g. the experiment label)."""

    def mapper(resource: Any) -> list[Key]:
        value = resource.metadata.labels.get(label)
        return [Key(resource.metadata.namespace or "default", value)] if value else []

    return mapper


def owner_or_label_mapper(kind: str, label: str) -> Mapper:
    """Owner references of ``kind`` first; the label when there is no such owner."""
    by_owner, by_label = owner_mapper(kind), label_mapper(label)

    def mapper(resource: Any) -> list[Key]:
        return list(by_owner(resource)) or list(by_label(resource))

    return mapper


class EventSource(Protocol):
    """What a controller watches: an informer (``sextant.store.informer.Informer``)."""

    def add_handler(self, handler: Callable[[EventType, Resource], None]) -> None:
        """``handler(event_type, resource)`` for every change, starting with what it holds."""

    def start(self) -> object:
        """Starts listing and watching."""

    def stop(self) -> None:
        """Stops watching."""

    def has_synced(self) -> bool:
        """Whether the first list has arrived."""

    def list(self) -> list[Resource]:
        """Everything it holds (what a resync enqueues)."""


# ---------------------------------------------------------------------------------------------
# Controller


Reconciler = Callable[[Key], "Result | None"]


class Controller:
    """Runs ``reconcile`` for keys coming from informers, with ``workers`` threads."""

    def __init__(
        self,
        name: str,
        reconcile: Reconciler,
        *,
        workers: int = 2,
        resync_seconds: float | None = 30.0,
        rate_limiter: RateLimiter | None = None,
        sync_timeout: float = 60.0,
        extra_keys: Callable[[], Iterable[Key]] | None = None,
    ):
        self.name = name
        self.extra_keys = extra_keys
        self._reconcile = reconcile
        self.workers = max(1, workers)
        self.resync_seconds = resync_seconds
        self.rate_limiter = rate_limiter or RateLimiter()
        self.sync_timeout = sync_timeout
        self.queue = WorkQueue()
        self._sources: list[tuple[EventSource, Mapper]] = []
        self._primary: EventSource | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._started = False
        self.reconcile_count = 0
        self.error_count = 0
        self._count_lock = threading.Lock()
        self._seconds = RECONCILE_SECONDS.labels(name)
        self._results = {r: RECONCILES.labels(name, r) for r in ("done", "requeued", "error")}
        QUEUE_READY.labels(name).set_function(lambda: len(self.queue))
        QUEUE_DELAYED.labels(name).set_function(lambda: self.queue.pending_delayed())

    # -- wiring -----------------------------------------------------------------------------
    def watch(self, informer: EventSource, mapper: Mapper | None = None, *,
              primary: bool | None = None,
              skip: Callable[[EventType, Resource], bool] | None = None) -> None:
        """Enqueues the mapped keys for every event of ``informer`` that ``skip`` (if given)
        does not pick, e.g. this controller's own write coming back (``CachedReader.is_own_write``).

        The first informer watched without a mapper is the *primary* one: its items are what
        a resync enqueues.
        """
        mapper = mapper or self_mapper
        if primary or (primary is None and self._primary is None and mapper is self_mapper):
            self._primary = informer
        self._sources.append((informer, mapper))

        def handler(event_type: EventType, resource: Resource) -> None:
            try:
                if skip is not None and skip(event_type, resource):
                    return
                keys = list(mapper(resource))
            except Exception:  # a mapper bug must not kill the informer thread
                log.exception("event mapper failed", extra={"controller": self.name})
                return
            for key in keys:
                self.queue.add(key)

        informer.add_handler(handler)

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: Key, delay: float) -> None:
        self.queue.add_after(key, delay)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._started = True
        informers = self._unique_informers()
        for informer in informers:
            informer.start()
        deadline = time.monotonic() + self.sync_timeout
        for informer in informers:
            while not informer.has_synced() and time.monotonic() < deadline and not self._stopping.is_set():
                time.sleep(0.02)
        for i in range(self.workers):
            t = threading.Thread(target=self._worker, name=f"{self.name}-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.resync_seconds and (self._primary is not None or self.extra_keys is not None):
            t = threading.Thread(target=self._resync_loop, name=f"{self.name}-resync", daemon=True)
            t.start()
            self._threads.append(t)
        # Everything already known gets one reconcile at start (the informer may have synced
        # before our handler could see its initial list).
        self.resync()
        log.info("controller started", extra={"controller": self.name, "workers": self.workers})

    def stop(self, timeout: float = 30.0) -> None:
        """Stops informers, lets running reconciles finish and joins the worker threads."""
        self._stopping.set()
        for informer in self._unique_informers():
            try:
                informer.stop()
            except Exception:
                log.exception("informer stop failed", extra={"controller": self.name})
        self.queue.shutdown()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        log.info("controller stopped", extra={"controller": self.name})

    def run_until_signal(self, extra_stop: threading.Event | None = None) -> None:
        """Starts, then blocks until SIGTERM/SIGINT (or ``extra_stop``), then stops cleanly."""
        stop = extra_stop or threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("signal received, stopping", extra={"controller": self.name, "signal": signum})
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()
            for s, h in previous.items():
                signal.signal(s, h)

    def resync(self) -> None:
        """Enqueues every key the primary informer holds, and the ``extra_keys``."""
        if self._primary is not None:
            try:
                for item in self._primary.list():
                    self.queue.add(key_of(item))
            except Exception:
                log.exception("resync list failed", extra={"controller": self.name})
        if self.extra_keys is not None:
            try:
                for key in self.extra_keys():
                    self.queue.add(key)
            except Exception:
                log.exception("resync: listing extra keys failed", extra={"controller": self.name})

    # -- internals --------------------------------------------------------------------------
    def _unique_informers(self) -> list[EventSource]:
        seen: list[EventSource] = []
        for informer, _ in self._sources:
            if not any(informer is s for s in seen):
                seen.append(informer)
        return seen

    def _resync_loop(self) -> None:
        assert self.resync_seconds
        while not self._stopping.wait(self.resync_seconds):
            self.resync()

    def _worker(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                self._process(key)
            finally:
                self.queue.done(key)

    def _process(self, key: Key) -> None:
        with self._count_lock:
            self.reconcile_count += 1
        started = time.monotonic()
        try:
            result = self._reconcile(key)
        except Exception as err:
            self._results["error"].inc()
            with self._count_lock:
                self.error_count += 1
            delay = self.rate_limiter.when(key)
            log.warning(
                "reconcile failed, retrying",
                exc_info=not _expected(err),
                extra={"controller": self.name, "key": str(key), "retry_in": round(delay, 3),
                       "error": str(err) or type(err).__name__},
            )
            self.queue.add_after(key, delay)
            return
        finally:
            self._seconds.observe(time.monotonic() - started)
        self.rate_limiter.forget(key)
        if result is not None and result.requeue_after is not None:
            self._results["requeued"].inc()
            self.queue.add_after(key, result.requeue_after)
        else:
            self._results["done"].inc()


def _expected(err: Exception) -> bool:
    """Store conflicts and unavailability are routine; log them without a traceback."""
    return isinstance(err, Conflict | Unavailable | NotFound | AlreadyExists)
