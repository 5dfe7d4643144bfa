"""Reconcile framework and experiment-controller throughput.

1. ``queue``: keys/second through ``sextant.controller.Controller`` with a no-op reconcile
   (events → work queue → workers), including coalescing of repeated events.
2. ``experiment``: wall time for whole experiments driven by the real experiment reconciler
   against an in-process DB manager on SQLite, with the test playing the suggestion side
   (assignments recorded directly) and the trial side (trials succeed at once), i.e. the
   controller + store overhead per trial without algorithms or jobs.

    .venv/bin/python bench/controller_throughput.py --keys 20000 --trials 60
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sextant.controller import Controller, Key  # noqa: E402


def bench_queue(keys: int, workers: int, repeats: int) -> tuple[float, int]:
    done = threading.Event()
    seen = 0
    lock = threading.Lock()

    def reconcile(key):
        nonlocal seen
        with lock:
            seen += 1
            if seen >= keys:
                done.set()

    c = Controller("bench", reconcile, workers=workers, resync_seconds=None)
    c.start()
    start = time.perf_counter()
    for _ in range(repeats):  # repeated adds of waiting keys coalesce
        for i in range(keys):
            c.enqueue(Key("ns", f"k{i}"))
    done.wait(120)
    elapsed = time.perf_counter() - start
    c.stop()
    return keys * repeats / elapsed, c.reconcile_count


def bench_experiment(trials: int, parallel: int) -> float:
    from services.db_manager.app import DBManagerApp
    from services.db_manager.database import Database, migrate
    from services.experiment_controller.reconciler import ExperimentReconciler
    from sextant.config import ServerSettings
    from sextant.store.client import GrpcResourceStore
    from tests.integration.experiment_controller_support import (
        create_experiment,
        fill_requests,
        key,
        set_trial,
        trials_of,
    )

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/b.db")
        migrate(db)
        app = DBManagerApp(ServerSettings(port=0, max_workers=16), db)
        port = app.start()
        store = GrpcResourceStore(f"127.0.0.1:{port}")
        try:
            create_experiment(store, parallelTrialCount=parallel, maxTrialCount=trials)
            rec = ExperimentReconciler(store)
            start = time.perf_counter()
            while True:
                rec.reconcile(key())
                exp = store.get("Experiment", "default", "exp")
                if exp.status.conditions and exp.status.conditions[-1].type == "Succeeded":
                    break
                fill_requests(store)
                rec.reconcile(key())
                for t in trials_of(store):
                    if not t.status.conditions:
                        set_trial(store, t.metadata.name, "Succeeded", acc=0.5)
            return time.perf_counter() - start
        finally:
            store.close()
            app.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--keys", type=int, default=20000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--parallel", type=int, default=5)
    a = p.parse_args()
    rate, reconciles = bench_queue(a.keys, a.workers, a.repeats)
    print(f"queue: {a.keys} keys x {a.repeats} adds, {a.workers} workers: {rate:,.0f} adds/s, "
          f"{reconciles} reconciles")
    seconds = bench_experiment(a.trials, a.parallel)
    print(f"experiment: {a.trials} trials, parallel {a.parallel}: {seconds:.2f} s "
          f"({seconds / a.trials * 1000:.1f} ms/trial)")


if __name__ == "__main__":
    main()
