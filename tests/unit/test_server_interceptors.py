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


def test_metrics_and_decode_wrap_each_method_once_and_count_every_call():
    from sextant.server import RPC_COUNT, DecodeInterceptor, MetricsInterceptor

    class Context:
        def __init__(self):
            self.status = None

        def code(self):
            return self.status

        def abort(self, code, message):
            self.status = code
            raise grpc.RpcError(message)

    def handler(request, context):
        if request == "fail":
            context.abort(grpc.StatusCode.NOT_FOUND, "no")
        return request.upper()

    looked_up = []

    def lookup(d):
        looked_up.append(d.method)
        return grpc.unary_unary_rpc_method_handler(handler, request_deserializer=bytes.decode)

    metrics, decode = MetricsInterceptor(), DecodeInterceptor()
    method = "/test.Svc/Echo"

    def resolve():
        return metrics.intercept_service(lambda d: decode.intercept_service(lookup, d), details(method))

    first, second = resolve(), resolve()
    assert first is second and looked_up == [method]  # wrapped once, reused
    ok = RPC_COUNT.labels("test.Svc", "Echo", "OK")
    not_found = RPC_COUNT.labels("test.Svc", "Echo", "NOT_FOUND")
    before_ok, before_nf = ok._value.get(), not_found._value.get()
    assert first.unary_unary(b"abc", Context()) == "ABC"
    assert second.unary_unary(b"xyz", Context()) == "XYZ"
    with pytest.raises(grpc.RpcError):
        first.unary_unary(b"fail", Context())
    assert ok._value.get() == before_ok + 2 and not_found._value.get() == before_nf + 1
    bad = Context()
    with pytest.raises(grpc.RpcError, match="request is not a valid"):
        first.unary_unary(b"\xff", bad)  # bytes.decode fails: INVALID_ARGUMENT, not INTERNAL
    assert bad.status == grpc.StatusCode.INVALID_ARGUMENT
    assert resolve() is first
    assert metrics.intercept_service(lambda d: None, details("/test.Svc/Missing")) is None
