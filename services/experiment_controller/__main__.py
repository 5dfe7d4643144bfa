"""``python -m services.experiment_controller --db-manager HOST:PORT``"""

from __future__ import annotations

import argparse
import sys

from sextant.controller import Controller, owner_mapper, owner_or_label_mapper
from sextant.controller_main import add_controller_arguments, open_store, run_until_stopped
from sextant.events import EventRecorder
from sextant.katib import controller_metrics
from sextant.resources.models import EXPERIMENT_LABEL
from sextant.store.informer import Informer
from sextant.store.interface import ResourceStore

from .reconciler import ExperimentReconciler

# Trial counts in an experiment's status lag its trials by at most this long (conditions never).
STATUS_INTERVAL = 1.0


def build_controller(store: ResourceStore, *, namespace: str = "", workers: int = 4,
                     resync_seconds: float = 30.0, events: EventRecorder | None = None,
                     status_interval: float = STATUS_INTERVAL) -> Controller:
    # Informer resync is off: the controller's own resync re-enqueues every experiment.
    trials = Informer(store, "Trial", namespace, resync_seconds=0, indexed_labels=(EXPERIMENT_LABEL,))
    experiments = Informer(store, "Experiment", namespace, resync_seconds=0)
    suggestions = Informer(store, "Suggestion", namespace, resync_seconds=0)
    reconciler = ExperimentReconciler(store, events=events, trial_informer=trials,
                                      experiment_informer=experiments, suggestion_informer=suggestions,
                                      status_interval=status_interval)
    controller = Controller("experiment-controller", reconciler.reconcile, workers=workers,
                            resync_seconds=resync_seconds)
    # Our own writes coming back as events wake no pass: the pass that wrote saw that state.
    controller.watch(experiments, primary=True, skip=reconciler.experiments.is_own_write)
    controller.watch(trials, owner_or_label_mapper("Experiment", EXPERIMENT_LABEL))
    controller.watch(suggestions, owner_mapper("Experiment"), skip=reconciler.suggestions.is_own_write)
    controller_metrics.export_experiments(experiments)
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.experiment_controller",
                                     description="Sextant experiment controller")
    add_controller_arguments(parser)
    ns = parser.parse_args(argv)
    store = open_store(ns)
    from sextant.events import EventRecorder

    controller = build_controller(store, namespace=ns.namespace, workers=ns.workers,
                                  resync_seconds=ns.resync_seconds,
                                  events=EventRecorder(store, "experiment-controller"))
    return run_until_stopped(controller, ns, store)


if __name__ == "__main__":
    sys.exit(main())
