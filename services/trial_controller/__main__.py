"""``python -m services.trial_controller --db-manager HOST:PORT``: runs trials' jobs.

Jobs run through the Runtime: ``--runtime local`` (default: processes, state under
``<data dir>/jobs``), ``--runtime docker`` (trials that name an image run in it on the local
Docker engine; ``auto``: only while an engine answers) or ``--runtime kubernetes`` (batch/v1
Jobs etc., when available).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import grpc

from sextant.channel import open_channel
from sextant.config import data_dir, env, read_token
from sextant.controller import Controller, Key
from sextant.controller_main import add_controller_arguments, open_store, run_until_stopped
from sextant.events import EventRecorder
from sextant.katib import controller_metrics
from sextant.runtime import RUNTIME_KINDS, Runtime, make_runtime
from sextant.runtime.db_manager_access import add_secret_arguments, from_arguments
from sextant.store.informer import Informer
from sextant.store.interface import ResourceStore

from .reconciler import TrialReconciler


def runtime_options(ns: argparse.Namespace, token: str | None) -> dict[str, Any]:
    """What ``make_runtime`` needs for the chosen runtime (Kubernetes reads its own config)."""
    if ns.runtime in ("local", "docker", "auto"):
        return {"data_dir": data_dir(ns.data_dir), "token": token, "db_manager_address": ns.db_manager,
                "stop_grace": ns.stop_grace}
    # On Katib's custom resources the Trial owns its Job, as Katib sets it (and the cluster's
    # garbage collector deletes the Job with the Trial).
    return {"owner_references": ns.store == "kubernetes", "collector_sidecar": ns.metrics_collector == "sidecar",
            "db_manager_access": from_arguments(ns, prefix="collector-")}


def build_controller(store: ResourceStore, runtime: Runtime, db_manager_channel: grpc.Channel, *,
                     db_manager_address: str, namespace: str = "",
                     workers: int = 4, resync_seconds: float = 30.0,
                     custom_grace: float = 60.0) -> Controller:
    informer = Informer(store, "Trial", namespace, resync_seconds=0)
    reconciler = TrialReconciler(store, runtime, db_manager_channel, db_manager_address=db_manager_address,
                                 informer=informer, custom_grace=custom_grace,
                                 events=EventRecorder(store, "trial-controller"))
    controller = Controller("trial-controller", reconciler, workers=workers, resync_seconds=resync_seconds,
                            extra_keys=lambda: reconciler.orphan_keys(namespace))
    controller.watch(informer)
    controller_metrics.export_trials(informer)
    # A job's end wakes its trial at once instead of at the next poll.
    runtime.on_job_exit(lambda namespace, name: controller.enqueue(Key(namespace, name)))
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.trial_controller",
                                     description="Sextant trial controller")
    add_controller_arguments(parser)
    parser.add_argument("--runtime", choices=RUNTIME_KINDS, default=env("runtime", "local"))
    parser.add_argument("--metrics-collector", choices=("wrapped", "sidecar"),
                        default=env("metrics_collector", "wrapped"),
                        help="--runtime kubernetes: wrap the primary container's command with the collector "
                             "(the image contains Sextant), or leave it to the pod webhook's sidecar")
    add_secret_arguments(parser, "the wrapped collector of a trial's pod (--runtime kubernetes)", prefix="collector-")
    parser.add_argument("--stop-grace", type=float, default=5.0,
                        help="seconds between SIGTERM and SIGKILL when stopping a trial")
    parser.add_argument("--custom-grace", type=float, default=60.0,
                        help="seconds to wait for a Custom collector's metrics after the job ends")
    ns = parser.parse_args(argv)
    store = open_store(ns)
    token = read_token(None, ns.token_file)
    if token:
        os.environ.setdefault("SEXTANT_TOKEN", token)  # trials using Push report with it
    channel = open_channel(ns.db_manager, token=token, tls_ca=ns.tls_ca)
    controller = build_controller(store, make_runtime(ns.runtime, **runtime_options(ns, token)), channel,
                                  db_manager_address=ns.db_manager, namespace=ns.namespace,
                                  workers=ns.workers, resync_seconds=ns.resync_seconds,
                                  custom_grace=ns.custom_grace)
    return run_until_stopped(controller, ns, store, channel)


if __name__ == "__main__":
    sys.exit(main())
