"""``python -m services.suggestion.controller --db-manager HOST:PORT [--registry FILE] [--runtime local]``"""

from __future__ import annotations

import argparse
import os
import sys

from sextant.algorithm_registry import Registry
from sextant.config import data_dir, env, read_token
from sextant.controller import Controller
from sextant.controller_main import add_controller_arguments, open_store, run_until_stopped, store_environment
from sextant.resources.models import EXPERIMENT_LABEL
from sextant.runtime import Runtime, make_runtime
from sextant.runtime.db_manager_access import add_secret_arguments, from_arguments
from sextant.store.informer import Informer
from sextant.store.interface import ResourceStore

from .reconciler import SuggestionReconciler
from .shared_services import DEFAULT_IDLE_SECONDS, SHARED_NAMESPACE, Placement, ServiceMode


def build_controller(store: ResourceStore, runtime: Runtime, registry: Registry, *, db_manager_address: str,
                     token: str | None = None,
                     namespace: str = "", workers: int = 4, resync_seconds: float = 30.0,
                     call_timeout: float = 60.0, placement: Placement | None = None) -> Controller:
    reconciler = SuggestionReconciler(store, runtime, registry, db_manager_address=db_manager_address,
                                      token=token, call_timeout=call_timeout, placement=placement)
    # Every resync also stops idle shared services and finds services of deleted Suggestions.
    controller = Controller("suggestion-controller", reconciler.reconcile, workers=workers,
                            resync_seconds=resync_seconds, extra_keys=lambda: reconciler.housekeeping(namespace))
    suggestions = Informer(store, "Suggestion", namespace, resync_seconds=0)
    # Our own status writes coming back wake no pass: the pass that wrote saw that state.
    controller.watch(suggestions, primary=True, skip=reconciler.suggestions.is_own_write)
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
    trials = Informer(store, "Trial", namespace, resync_seconds=0, indexed_labels=(EXPERIMENT_LABEL,))
    reconciler.trial_informer = trials
    controller.watch(trials, lambda _trial: [])  # started/stopped with the controller, no keys
    return controller


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.suggestion.controller",
                                     description="Sextant suggestion controller")
    add_controller_arguments(parser)
    parser.add_argument("--registry", default=env("registry"), help="algorithm registry YAML file")
    parser.add_argument("--runtime", default=env("runtime", "local"), choices=["local", "kubernetes", "k8s"])
    parser.add_argument("--db-manager-address-for-services", default=env("db_manager_public"),
                        help="address early-stopping services use to reach the DB manager "
                             "(default: --db-manager)")
    # The early-stopping container of an algorithm pod (the experiment's namespace, or the shared
    # services'); with the token its own server requires it too.
    add_secret_arguments(parser, "the early-stopping container of an algorithm pod (--runtime kubernetes)",
                         prefix="early-stopping-")
    parser.add_argument("--katib-db-manager-address", default=env("katib_db_manager_address"),
                        help="--runtime kubernetes: address the early-stopping services of algorithm "
                             "Deployments Katib's controller created (kept when Sextant replaces it) use to "
                             "read observation logs: a DB manager port without TLS or token, as Katib's "
                             "medianstop dials (default: the same as Sextant's own services)")
    parser.add_argument("--call-timeout", type=float, default=60.0, help="algorithm call timeout (s)")
    parser.add_argument("--algorithm-services", choices=[m.value for m in ServiceMode],
                        default=env("algorithm_services"),
                        help="one algorithm service per algorithm shared by every experiment (default "
                             "with --runtime local), or one per experiment as Katib does (default on "
                             "Kubernetes)")
    parser.add_argument("--shared-services-namespace", default=env("shared_services_namespace", SHARED_NAMESPACE),
                        help="where shared algorithm services run")
    parser.add_argument("--idle-service-seconds", type=float, default=DEFAULT_IDLE_SECONDS,
                        help="a shared algorithm service no live experiment used for this long is stopped")
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    mode = ServiceMode(ns.algorithm_services or
                       (ServiceMode.SHARED if ns.runtime == "local" else ServiceMode.PER_EXPERIMENT))
    placement = Placement(mode, shared_namespace=ns.shared_services_namespace,
                          idle_seconds=ns.idle_service_seconds)
    store = open_store(ns)
    token = read_token(None, ns.token_file)
    if token and ns.runtime == "local":
        # Local algorithm / early-stopping processes inherit it: medianstop reads observation
        # logs and sets trial status on the DB manager, which requires the token.
        os.environ.setdefault("SEXTANT_TOKEN", token)
    registry = Registry.load(ns.registry)
    if ns.runtime == "local":
        # Local early-stopping processes inherit where the Trials live, so SetTrialStatus writes
        # the EarlyStopped condition to the same store as the controllers.
        os.environ.update(store_environment(ns))
        runtime = make_runtime("local", data_dir=data_dir(ns.data_dir), token=token,
                               db_manager_address=ns.db_manager)
    else:
        runtime = make_runtime(ns.runtime, owner_references=ns.store == "kubernetes",
                               db_manager_access=from_arguments(ns, prefix="early-stopping-"),
                               katib_db_manager_address=ns.katib_db_manager_address or None)
    controller = build_controller(store, runtime, registry,
                                  db_manager_address=ns.db_manager_address_for_services or ns.db_manager,
                                  token=token, namespace=ns.namespace, workers=ns.workers,
                                  resync_seconds=ns.resync_seconds, call_timeout=ns.call_timeout,
                                  placement=placement)
    return run_until_stopped(controller, ns, store)


if __name__ == "__main__":
    sys.exit(main())
