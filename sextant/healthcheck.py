"""``python -m sextant.healthcheck [HOST:PORT [SERVICE]]``: asks a gRPC server's health service.

For container health checks (docker-compose, Kubernetes exec probes when the server uses TLS,
which the kubelet's own gRPC probe cannot speak). Exit status 0 = SERVING, 1 = anything else
(not serving, unknown service, unreachable, timeout), 2 = bad arguments. The health service
needs no token (Sextant servers exempt it), so none is sent. ``SERVICE`` defaults to ``""``
(the whole server); suggestion services answer ``manager.v1beta1.Suggestion``.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sextant.healthcheck",
                                description="exit 0 when a gRPC server reports SERVING")
    # Without an address: the DB manager this container works through (a container image's one
    # HEALTHCHECK serves the DB manager itself and the controllers alike).
    p.add_argument("address", nargs="?", default=os.environ.get("SEXTANT_DB_MANAGER", "127.0.0.1:6789"),
                   help="HOST:PORT of the gRPC server (default $SEXTANT_DB_MANAGER or 127.0.0.1:6789)")
    p.add_argument("service", nargs="?", default="", help="health service name (default: the server)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds before giving up (default 3)")
    p.add_argument("--tls-ca", default=os.environ.get("SEXTANT_TLS_CA"),
                   help="CA certificate (PEM): connect with TLS (default $SEXTANT_TLS_CA)")
    p.add_argument("--server-name", default=None,
                   help="TLS name to verify instead of HOST (e.g. when probing 127.0.0.1)")
    return p


def check(address: str, service: str = "", *, timeout: float = 3.0, tls_ca: str | None = None,
          server_name: str | None = None) -> tuple[bool, str]:
    """(serving, description) for one health check call."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    if tls_ca:
        with open(tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(address, creds, options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as err:
            return False, f"{err.code().name}: {err.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if ":" not in args.address:
        print(f"error: address {args.address!r} must be HOST:PORT", file=sys.stderr)
        return 2
    try:
        ok, what = check(args.address, args.service, timeout=args.timeout, tls_ca=args.tls_ca,
                         server_name=args.server_name)
    except OSError as err:
        print(f"error: --tls-ca: {err}", file=sys.stderr)
        return 2
    print(f"{args.address} {args.service or '(server)'}: {what}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
