"""``python -m services.api_server --db-manager HOST:PORT --token-file FILE --port N``: the
Kubernetes API for Katib's resources over HTTPS, on the resource store behind the DB manager.
``sextant up`` starts it with the stack's certificate (``<data_dir>/tls``), token and a port
it writes into ``<data_dir>/kubeconfig``."""

from __future__ import annotations

import argparse
import logging
import ssl
import sys
from pathlib import Path

from aiohttp import web

from services.api_server.app import build_app
from sextant.config import data_dir as resolve_data_dir
from sextant.config import env, optional_int, read_token
from sextant.logging_setup import setup_logging
from sextant.server import serve_metrics
from sextant.store.client import GrpcResourceStore
from sextant.tls import ensure_tls

log = logging.getLogger("sextant.api_server")
DEFAULT_PORT = 6443


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.api_server",
                                description="Sextant's Kubernetes API server (kubectl, kubernetes and Katib clients)")
    p.add_argument("--host", default=env("api_host", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env("api_port", str(DEFAULT_PORT)) or DEFAULT_PORT))
    p.add_argument("--db-manager", default=env("db_manager", "127.0.0.1:6789"), help="DB manager HOST:PORT")
    p.add_argument("--token-file", default=env("token_file"), help="the bearer token clients must send")
    p.add_argument("--tls-ca", default=env("tls_ca"), help="CA certificate: talk TLS to the DB manager")
    p.add_argument("--tls-cert", default=None, help="serving certificate (default: <data-dir>/tls/server.crt)")
    p.add_argument("--tls-key", default=None, help="its key (default: <data-dir>/tls/server.key)")
    p.add_argument("--data-dir", default=None, help="data directory (default $SEXTANT_HOME, else ~/.local/state/sextant)")
    p.add_argument("--metrics-port", type=int, default=optional_int(env("metrics_port")))
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument("--workers", type=int, default=16, help="threads for resource store calls")
    p.add_argument("--log-level", default=env("log_level", "INFO"))
    return p


def ssl_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    data_dir = resolve_data_dir(args.data_dir)
    token = read_token(None, args.token_file)
    if not token:
        print("error: no token (--token-file or SEXTANT_TOKEN): the API server never runs open", file=sys.stderr)
        return 2
    if not (args.tls_cert and args.tls_key):
        files = ensure_tls(data_dir / "tls")
        args.tls_cert, args.tls_key = str(files.cert), str(files.key)
    store = GrpcResourceStore(args.db_manager, token=token, tls_ca=args.tls_ca)
    app = build_app(store, token=token, data_dir=Path(data_dir), workers=args.workers, db_manager=store.channel)
    if args.metrics_port is not None:
        port = serve_metrics(args.metrics_port, args.metrics_host)
        log.info("metrics", extra={"address": f"{args.metrics_host}:{port}"})
    log.info("starting", extra={"host": args.host, "port": args.port, "db_manager": args.db_manager})
    try:
        web.run_app(app, host=args.host, port=args.port, ssl_context=ssl_context(args.tls_cert, args.tls_key),
                    print=None, shutdown_timeout=5, access_log=None)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
