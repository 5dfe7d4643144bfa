"""In-process wake-up for watchers: writers in this process announce each committed version.

Watchers also poll the change log, so changes committed by another process (a second DB
manager on the same database, a migration) still arrive, only a poll interval later.
"""

from __future__ import annotations

import threading


class ChangeNotifier:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._closed = False

    def notify(self, version: int) -> None:
        with self._cond:
            if version > self._version:
                self._version = version
            self._cond.notify_all()

    @property
    def version(self) -> int:
        """The highest version announced so far."""
        with self._cond:
            return self._version

    def wait(self, after: int, timeout: float) -> int:
        """Blocks until a version above ``after`` is announced or ``timeout`` passes."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > after or self._closed, timeout)
            return self._version

    def close(self) -> None:
        """Wakes every waiter (server shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
