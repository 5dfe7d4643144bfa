"""GrpcServer pieces that need no network: token checks, TLS settings, stopping once."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest

from sextant.config import ServerSettings
from sextant.server import GrpcServer, TokenAuthInterceptor


def details(method: str, metadata=()):
    return SimpleNamespace(method=method, invocation_metadata=tuple(metadata))


def test_token_interceptor_decisions():
    interceptor = TokenAuthInterceptor("tok")
    sentinel = object()

    def continuation(_details):
        return sentinel

    assert interceptor.intercept_service(continuation, details("/grpc.health.v1.Health/Check")) is sentinel
    assert interceptor.intercept_service(
        continuation, details("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")) is sentinel
    ok = details("/api.v1.beta1.DBManager/GetObservationLog", [("authorization", "Bearer tok")])
    assert interceptor.intercept_service(continuation, ok) is sentinel
    for metadata in ([], [("authorization", "Bearer nope")], [("authorization", "tok")]):
        refused = interceptor.intercept_service(
            continuation, details("/api.v1.beta1.DBManager/GetObservationLog", metadata))
        assert refused is not sentinel and isinstance(refused, grpc.RpcMethodHandler)


def test_tls_cert_without_key_is_a_clear_error(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    server = GrpcServer(ServerSettings(port=0, tls_cert=str(cert)), name="t")
    with pytest.raises(ValueError, match="--tls-key is required"):
        server.start()
