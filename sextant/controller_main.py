"""Command-line plumbing shared by the controller processes (flags, store, informers)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING, Protocol, cast

from sextant.config import data_dir, env, optional_int, read_token
from sextant.controller import Controller
from sextant.kubeconfig import kubeconfig_path
from sextant.logging_setup import setup_logging
from sextant.server import serve_metrics
from sextant.store.client import GrpcResourceStore

if TYPE_CHECKING:
    from sextant.store.kubernetes import KubernetesResourceStore

log = logging.getLogger("sextant.controller")
STORES = ("grpc", "kubernetes")


def add_controller_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("controller")
    g.add_argument("--db-manager", default=env("db_manager", "127.0.0.1:6789"),
                   help="DB manager address HOST:PORT (resource store + Katib DBManager API)")
    g.add_argument("--token-file", default=env("token_file"),
                   help="bearer token file for the DB manager (SEXTANT_TOKEN sets the token directly)")
    g.add_argument("--tls-ca", default=env("tls_ca"), help="CA certificate: talk TLS to the DB manager")
    add_store_arguments(g)
    g.add_argument("--namespace", default=env("namespace", ""), help="only this namespace (default all)")
    g.add_argument("--workers", type=int, default=int(env("workers", "4") or 4), help="reconcile threads")
    g.add_argument("--resync-seconds", type=float, default=float(env("resync_seconds", "30") or 30),
                   help="re-reconcile everything this often")
    g.add_argument("--data-dir", default=None, help="data directory (default $SEXTANT_HOME, else ~/.local/state/sextant)")
    g.add_argument("--log-level", default=env("log_level", "INFO"))
    g.add_argument("--metrics-port", type=int, default=optional_int(env("metrics_port")),
                   help="serve Prometheus /metrics on this port (0 = any free port; default off)")
    g.add_argument("--metrics-host", default=env("metrics_host", "127.0.0.1"),
                   help="address the /metrics endpoint binds (default 127.0.0.1)")


def add_store_arguments(g: argparse._ActionsContainer) -> None:
    """``--store``/``--kubeconfig``/``--kube-context``: the controllers' flags, shared with the
    early-stopping service (it writes the EarlyStopped condition where the Trials live)."""
    g.add_argument("--store", choices=STORES, default=env("store", "grpc"),
                   help="where Experiments, Trials and Suggestions live: grpc (the DB manager, default) or "
                        "kubernetes (Katib's custom resources through a Kubernetes API server)")
    g.add_argument("--kubeconfig", default=env("kubeconfig"),
                   help="--store kubernetes: kube-config file (default: in a pod its service account, else "
                        "<data-dir>/kubeconfig if the local stack wrote one, else ~/.kube/config)")
    g.add_argument("--kube-context", default=env("kube_context"), help="--store kubernetes: kube-config context")


def store_environment(ns: argparse.Namespace) -> dict[str, str]:
    """The store flags as SEXTANT_* variables, for processes this one starts (the local
    runtime's early-stopping services read them)."""
    out = {"SEXTANT_STORE": ns.store}
    if ns.kubeconfig:
        out["SEXTANT_KUBECONFIG"] = ns.kubeconfig
    if ns.kube_context:
        out["SEXTANT_KUBE_CONTEXT"] = ns.kube_context
    return out


def open_kubernetes_store(ns: argparse.Namespace) -> KubernetesResourceStore:
    from sextant.store.kubernetes import KubernetesResourceStore  # the client loads only when used

    return KubernetesResourceStore.from_config(kubeconfig_for(ns), ns.kube_context)


def open_store(ns: argparse.Namespace) -> GrpcResourceStore | KubernetesResourceStore:
    setup_logging(ns.log_level)
    token = read_token(None, ns.token_file)
    settings = {k: v for k, v in vars(ns).items() if k not in ("token_file",)}
    log.info("starting", extra={"settings": settings, "token": "***" if token else None})
    if ns.store == "kubernetes":
        return open_kubernetes_store(ns)
    return GrpcResourceStore(ns.db_manager, token=token, tls_ca=ns.tls_ca)


def kubeconfig_for(ns: argparse.Namespace) -> str | None:
    """``--kubeconfig``; else none in a pod (its service account); else the local stack's."""
    if ns.kubeconfig or "KUBERNETES_SERVICE_HOST" in os.environ:
        return cast(str | None, ns.kubeconfig)
    local = kubeconfig_path(data_dir(ns.data_dir))
    return str(local) if local.exists() else None


class Closeable(Protocol):
    def close(self) -> None: ...


def run_until_stopped(controller: Controller, ns: argparse.Namespace, *resources: Closeable) -> int:
    """Serves /metrics (if ``--metrics-port`` was given), runs ``controller`` until
    SIGTERM/SIGINT, then closes ``resources`` (store, channels)."""
    if ns.metrics_port is not None:
        port = serve_metrics(ns.metrics_port, ns.metrics_host)
        log.info("metrics", extra={"address": f"{ns.metrics_host}:{port}"})
    try:
        controller.run_until_signal()
    finally:
        for resource in resources:
            resource.close()
    return 0
