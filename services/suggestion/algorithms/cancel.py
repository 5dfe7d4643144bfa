"""Stopping an algorithm's work when nobody waits for the answer any more.

The servicer runs each GetSuggestions under ``serving(still_wanted)``; the loops that can run
long (drawing points, walking a grid, an optimizer's candidate loop) call ``check_cancelled()``,
which raises ``Cancelled`` once the caller disconnected, its deadline passed or the server is
stopping. Outside a call (tests, benchmarks) it does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_call = threading.local()


class Cancelled(Exception):
    """The caller of the running GetSuggestions is gone or out of time."""


@contextmanager
def serving(still_wanted: Callable[[], bool]) -> Iterator[None]:
    previous = getattr(_call, "still_wanted", None)
    _call.still_wanted = still_wanted
    try:
        yield
    finally:
        _call.still_wanted = previous


def check_cancelled() -> None:
    still_wanted = getattr(_call, "still_wanted", None)
    if still_wanted is not None and not still_wanted():
        raise Cancelled
