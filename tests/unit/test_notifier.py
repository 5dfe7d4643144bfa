"""The DB manager's in-process watch wake-up: watchers of one kind sleep through other kinds'
changes; watchers of every kind and a shutdown wake everyone."""

from __future__ import annotations

import threading
import time

from services.db_manager.notifier import ChangeNotifier


def _waiter(notifier: ChangeNotifier, after: int, kind: str, woke: list[float]) -> threading.Thread:
    def run():
        start = time.monotonic()
        notifier.wait(after, 5.0, kind)
        woke.append(time.monotonic() - start)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.05)  # let it block
    return thread


def test_watchers_wake_for_their_kind_only():
    n = ChangeNotifier()
    trial, experiment, every = [], [], []
    threads = [_waiter(n, 0, "Trial", trial), _waiter(n, 0, "Experiment", experiment), _waiter(n, 0, "", every)]
    n.notify(1, {"Experiment"})
    threads[1].join(2)
    threads[2].join(2)
    assert experiment and every and not trial  # the Trial watcher sleeps on
    assert n.version == 1
    assert n.wait(0, 5.0, "Trial") == 1  # but a wait that starts behind returns at once
    n.notify(2, {"Trial", "Suggestion"})
    threads[0].join(2)
    assert trial and trial[0] < 4


def test_notify_without_kinds_and_close_wake_everyone():
    n = ChangeNotifier()
    woke: list[float] = []
    threads = [_waiter(n, 0, kind, woke) for kind in ("Trial", "Experiment", "")]
    n.notify(1)
    for t in threads:
        t.join(2)
    assert len(woke) == 3
    woke.clear()
    threads = [_waiter(n, 5, kind, woke) for kind in ("Trial", "")]
    n.close()
    for t in threads:
        t.join(2)
    assert len(woke) == 2 and max(woke) < 4
