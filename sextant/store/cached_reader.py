"""Reading one kind through an informer's cache, overlaid with this process's own writes.

Controllers read what they reconcile from their informers' caches (as Kubernetes controllers
do) instead of asking the store on every pass. A cache is a prefix of the store's history: it
may lag, never invent. Its usual lag is behind the controller's *own* last write, whose result
the controller already holds -- so that is used until the cache catches up, sparing the
Conflict (and retry) a stale read would cause. Changes by others still arrive through the
cache; a write based on an older copy fails with Conflict and the framework retries.

The objects returned are shared with the cache: copy what you change (``with_status_copy``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from sextant.store.interface import EventType, NotFound, ResourceStore

if TYPE_CHECKING:
    from sextant.store.informer import Informer

# The kind read (Experiment, Trial, Suggestion): say it where the reader is made,
# ``self.trials: CachedReader[Trial] = CachedReader(store, informer, "Trial")``.
R = TypeVar("R", bound=Any)


def version(resource: Any) -> int:
    try:
        return int(resource.metadata.resource_version or 0)
    except ValueError:
        return 0


def with_status_copy(resource: R) -> R:
    """A copy whose status a reconcile pass may change without touching the cached object.

    The contract of Sextant's passes: they *assign* status fields (new lists, new objects) and
    edit only the conditions list in place (``sextant.katib.condition_list`` replaces its contents with
    new Condition objects), so a new status object with its own conditions list is enough --
    a deep copy of a long status (every assignment of a Suggestion, every trial name of an
    Experiment) costs milliseconds per pass.
    """
    status = resource.status.model_copy(update={"conditions": list(resource.status.conditions)})
    return cast(R, resource.model_copy(update={"status": status}))


class CachedReader(Generic[R]):
    def __init__(self, store: ResourceStore, informer: Informer | None, kind: str):
        self.store = store
        self.informer = informer
        self.kind = kind
        self._mine: dict[tuple[str, str], R] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, name: str) -> R | None:
        """The newest copy known here, or None if the resource does not exist."""
        if self.informer is None or not self.informer.has_synced():
            return self.get_fresh(namespace, name)
        cached = self.informer.get(namespace, name)
        if cached is None:
            return self.get_fresh(namespace, name)  # created a moment ago, or gone
        key = (namespace, name)
        with self._lock:
            mine = self._mine.get(key)
            if mine is not None and version(mine) > version(cached):
                return mine
            self._mine.pop(key, None)  # the cache caught up
        return cast(R, cached)

    def get_fresh(self, namespace: str, name: str) -> R | None:
        try:
            return cast(R, self.store.get(self.kind, namespace, name))
        except NotFound:
            self.forget(namespace, name)
            return None

    def wrote(self, resource: Any) -> R:
        """Records what a write returned (the newest state); returns it."""
        with self._lock:
            self._mine[(resource.metadata.namespace, resource.metadata.name)] = resource
        return cast(R, resource)

    def is_own_write(self, event_type: EventType, resource: Any) -> bool:
        """Whether a watch event is the very state this process wrote last (a MODIFIED with the
        version its write returned): the pass that wrote it already saw that state, so the
        event need not wake another pass. Anything else (a later change, a deletion) is not."""
        if event_type != EventType.MODIFIED:
            return False
        with self._lock:
            mine = self._mine.get((resource.metadata.namespace, resource.metadata.name))
        return mine is not None and version(mine) == version(resource)

    def is_ahead_of_cache(self, namespace: str, name: str) -> bool:
        """True while a write of ours is newer than the cache's copy."""
        with self._lock:
            return (namespace, name) in self._mine

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._mine.pop((namespace, name), None)
