"""In-process wake-up for watchers: writers in this process announce each committed version,
with the kinds it changed.

A watcher of one kind sleeps until a change of that kind (or any change, for a watcher of every
kind) is announced: waking every watcher on every change costs a thread wake-up and a pass
through the watch loop per watcher, and most watchers watch another kind. A watcher that slept
through other kinds' changes simply skips them at its next wake-up (the version only grows).

Watchers also poll the change log, so changes committed by another process (a second DB
manager on the same database, a migration) still arrive, only a poll interval later.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class ChangeNotifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._every_kind = threading.Condition(self._lock)
        self._by_kind: dict[str, threading.Condition] = {}
        self._version = 0
        self._closed = False
        self._interrupts = 0

    def notify(self, version: int, kinds: Iterable[str] | None = None) -> None:
        """Announces ``version``; wakes the watchers of ``kinds`` (None: every watcher)."""
        with self._lock:
            if version > self._version:
                self._version = version
            if kinds is None:
                for cond in self._by_kind.values():
                    cond.notify_all()
            else:
                for kind in set(kinds):
                    kind_cond = self._by_kind.get(kind)
                    if kind_cond is not None:
                        kind_cond.notify_all()
            self._every_kind.notify_all()

    @property
    def version(self) -> int:
        """The highest version announced so far."""
        with self._lock:
            return self._version

    def wait(self, after: int, timeout: float, kind: str = "") -> int:
        """Blocks until a version above ``after`` is announced with a change of ``kind`` (any
        kind if empty), or ``timeout`` passes. Returns at once if the version is already past
        ``after``."""
        with self._lock:
            if kind:
                cond = self._by_kind.get(kind)
                if cond is None:
                    cond = self._by_kind[kind] = threading.Condition(self._lock)
            else:
                cond = self._every_kind
            interrupts = self._interrupts
            cond.wait_for(lambda: self._version > after or self._closed or self._interrupts != interrupts, timeout)
            return self._version

    def interrupt(self) -> None:
        """Wakes every waiter once, without announcing anything (a watch was cancelled: its loop
        looks whether it should go on)."""
        with self._lock:
            self._interrupts += 1
            self._every_kind.notify_all()
            for cond in self._by_kind.values():
                cond.notify_all()

    def close(self) -> None:
        """Wakes every waiter (server shutdown)."""
        with self._lock:
            self._closed = True
            self._every_kind.notify_all()
            for cond in self._by_kind.values():
                cond.notify_all()
