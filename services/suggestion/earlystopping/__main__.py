"""``python -m services.suggestion.earlystopping [--algorithm medianstop|asha] [--db-manager HOST:PORT]``.

Serves ``api.v1.beta1.EarlyStopping`` (default port 6788). SetTrialStatus writes the Trial's
EarlyStopped condition where the Trials live: ``--store kubernetes`` (SEXTANT_STORE, which the
suggestion controller hands its local services) through the Kubernetes API, else the resource
store of ``--db-manager``; the observation logs come from the DB manager address each
GetEarlyStoppingRules request names. It reaches the DB manager with ``SEXTANT_TOKEN`` (which
its own server then requires too: the suggestion controller and the collectors send the same
token) and over TLS with ``--db-manager-ca``. Health answers SERVING for "" and
``manager.v1beta1.EarlyStopping`` (without a token).
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from sextant.config import DEFAULT_EARLY_STOPPING_PORT, add_server_arguments, env, server_settings
from sextant.controller_main import add_store_arguments, open_kubernetes_store
from sextant.logging_setup import setup_logging
from sextant.server import GrpcServer, exit_now
from sextant.store.client import GrpcResourceStore

from .medianstop import NAME
from .servicer import ALGORITHMS, HEALTH_NAMES, EarlyStoppingServicer, add_to_server

if TYPE_CHECKING:
    from sextant.store.kubernetes import KubernetesResourceStore

log = logging.getLogger("sextant.earlystopping")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.suggestion.earlystopping",
                                     description="Katib-compatible early stopping service")
    parser.add_argument("--algorithm", default=NAME, choices=sorted(ALGORITHMS), help="early-stopping algorithm")
    parser.add_argument("--db-manager", default=env("db_manager"),
                        help="HOST:PORT of Sextant's resource store, used by SetTrialStatus")
    # SEXTANT_TLS_CA names the DB manager's CA for every Sextant process; Sextant's Kubernetes
    # runtime sets it in an algorithm pod's early-stopping container.
    parser.add_argument("--db-manager-ca", default=env("db_manager_ca") or env("tls_ca"),
                        help="PEM CA of the DB manager's certificate: read observation logs (and, with "
                             "--db-manager, write the trial's status) over TLS "
                             "(default $SEXTANT_DB_MANAGER_CA, else $SEXTANT_TLS_CA)")
    add_store_arguments(parser)  # --data-dir (server flags) locates the local stack's kubeconfig
    parser.add_argument("--namespace", default=env("namespace", ""),
                        help="namespace of the trials (default: find the trial by name in any namespace)")
    add_server_arguments(parser, DEFAULT_EARLY_STOPPING_PORT)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = server_settings(args)
    setup_logging(settings.log_level)
    store: GrpcResourceStore | KubernetesResourceStore | None = None
    if args.store == "kubernetes":
        store = open_kubernetes_store(args)
    elif args.db_manager:
        store = GrpcResourceStore(args.db_manager, token=settings.token, tls_ca=args.db_manager_ca)
    servicer = EarlyStoppingServicer(store, algorithm=args.algorithm, namespace=args.namespace,
                                     token=settings.token, tls_ca=args.db_manager_ca)
    server = GrpcServer(settings, name="earlystopping", health_names=HEALTH_NAMES)
    add_to_server(servicer, server)
    server.install_signal_handlers()
    port = server.start()
    log.info("early stopping service ready", extra={"algorithm": args.algorithm, "port": port,
                                                     "db_manager": args.db_manager, "store": args.store,
                                                     "settings": settings.describe()})
    print(f"listening on {settings.host}:{port}", flush=True)  # a parent on port 0 reads this line
    server.wait()
    servicer.close()
    if store is not None:
        store.close()
    return 0


if __name__ == "__main__":
    exit_now(main())
