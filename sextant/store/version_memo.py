"""Results of a pure function of one resource *version*, remembered.

A stored resource's (uid, resourceVersion) never changes content, so anything computed only
from it can be kept: controllers that look at every trial of an experiment on every pass
(status summaries, algorithm requests) then redo only the trials that changed since the last
pass. Objects without both (built in memory, not read from the store) are computed each time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class VersionMemo(Generic[T]):
    def __init__(self, compute: Callable[[Any], T], size: int = 50_000):
        self.compute = compute
        self.size = size  # least recently used entries go first beyond this
        self._items: OrderedDict[tuple[str, str], T] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, resource: Any) -> T:
        key = (resource.metadata.uid, resource.metadata.resource_version)
        if not all(key):
            return self.compute(resource)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = self.compute(resource)
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
