"""``python -m services.suggestion.controller --db-manager HOST:PORT [--registry FILE] [--runtime local]``"""

from __future__ import annotations

import argparse
import os
import sys

from sextant.algorithm_registry import Registry
from sextant.config import data_dir, env, read_token
from sextant.controller import Controller
from sextant.controller_main import add_controller_arguments, open_store, run_until_stopped
from sextant.runtime import Runtime, make_runtime
from sextant.store.informer import Informer
from sextant.store.interface import ResourceStore

from .reconciler import SuggestionReconciler


def build_controller(store: ResourceStore, runtime: Runtime, registry: Registry, *, db_manager_address: str,
                     token: str | None = None,
                     namespace: str = "", workers: int = 4, resync_seconds: float = 30.0,
                     call_timeout: float = 60.0) -> Controller:
    reconciler = SuggestionReconciler(store, runtime, registry, db_manager_address=db_manager_address,
                                      token=token, call_timeout=call_timeout)
    controller = Controller("suggestion-controller", reconciler.reconcile, workers=workers,
                            resync_seconds=resync_seconds, extra_keys=lambda: reconciler.orphan_keys(namespace))
    suggestions = Informer(store, "Suggestion", namespace, resync_seconds=0)
    controller.watch(suggestions)
    reconciler.suggestions.informer = suggestions
    # Experiments are only read (from this cache), not watched for events.
    experiments = Informer(store, "Experiment", namespace, resync_seconds=0)
    reconciler.experiments.informer = experiments
    controller.watch(experiments, lambda _experiment: [])
    # Trial changes matter to algorithms only through new requests, which change the
    # Suggestion, so Suggestions are the only watched kind. The periodic resync brings back
    # services that died while nothing else changed.
    controller.reconciler = reconciler  # type: ignore[attr-defined]
    # A cache of Trials (not watched for events) so a pass does not list them from the store.
    trials = Informer(store, "Trial", namespace, resync_seconds=0)
    reconciler.trial_informer = trials
    controller.watch(trials, lambda _trial: [])  # started/stopped with the controller, no keys
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.suggestion.controller",
                                     description="Sextant suggestion controller")
    add_controller_arguments(parser)
    parser.add_argument("--registry", default=env("registry"), help="algorithm registry YAML file")
    parser.add_argument("--runtime", default=env("runtime", "local"), choices=["local", "kubernetes", "k8s"])
    parser.add_argument("--db-manager-address-for-services", default=env("db_manager_public"),
                        help="address early-stopping services use to reach the DB manager "
                             "(default: --db-manager)")
    parser.add_argument("--call-timeout", type=float, default=60.0, help="algorithm call timeout (s)")
    ns = parser.parse_args(argv)
    store = open_store(ns)
    token = read_token(None, ns.token_file)
    if token and ns.runtime == "local":
        # Local algorithm / early-stopping processes inherit it: medianstop reads observation
        # logs and sets trial status on the DB manager, which requires the token.
        os.environ.setdefault("SEXTANT_TOKEN", token)
    registry = Registry.load(ns.registry)
    if ns.runtime == "local":
        runtime = make_runtime("local", data_dir=data_dir(ns.data_dir), token=token,
                               db_manager_address=ns.db_manager)
    else:
        runtime = make_runtime(ns.runtime, owner_references=ns.store == "kubernetes")
    controller = build_controller(store, runtime, registry,
                                  db_manager_address=ns.db_manager_address_for_services or ns.db_manager,
                                  token=token, namespace=ns.namespace, workers=ns.workers,
                                  resync_seconds=ns.resync_seconds, call_timeout=ns.call_timeout)
    return run_until_stopped(controller, ns, store)


if __name__ == "__main__":
    sys.exit(main())
