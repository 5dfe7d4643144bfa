"""One way to run a Sextant gRPC server.

``GrpcServer`` wires in what every service needs: the standard health service, reflection, a
bounded thread pool, message-size limits, optional TLS, optional bearer-token auth, request
metrics on a Prometheus ``/metrics`` endpoint, and a graceful stop on SIGTERM/SIGINT.

    server = GrpcServer(settings, name="db-manager")
    api_pb2_grpc.add_DBManagerServicer_to_server(servicer, server.grpc)
    server.add_service_names("api.v1.beta1.DBManager")
    server.start()
    server.wait()   # returns after SIGTERM/SIGINT and a graceful stop
"""

from __future__ import annotations

import hmac
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, NoReturn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Histogram, make_wsgi_app

from sextant.config import ServerSettings

log = logging.getLogger("sextant.server")

# Calls that never need a token: Kubernetes probes and grpcurl discovery cannot send one.
UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

RPC_COUNT = Counter("sextant_grpc_requests_total", "gRPC requests handled", ["service", "method", "code"])
RPC_LATENCY = Histogram("sextant_grpc_request_seconds", "gRPC request latency", ["service", "method"])


def exit_now(code: int = 0) -> NoReturn:
    """Ends a server process once it has stopped (its ``__main__`` calls this with main's code).

    ``GrpcServer.stop`` cancels the calls still running after the grace period, but a handler
    thread only notices at its next check, and Python joins every worker thread before exiting:
    a long call would keep a stopped process alive. Nothing is left to save at this point --
    database transactions not committed are rolled back by the server -- so exit at once."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Scrapes are not logged (one line per scrape on stderr otherwise)."""


def metrics_only_app(environ: dict[str, Any], start_response: Any) -> Any:
    """The Prometheus exposition at ``/metrics`` and 404 on every other path (the client
    library's own server answers the metrics on any path)."""
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: the metrics are at /metrics\n"]
    return _METRICS_APP(environ, start_response)


_METRICS_APP = make_wsgi_app()


def serve_metrics(port: int, host: str) -> int:
    """Serves this process's Prometheus registry at http://host:port/metrics (port 0: any free
    port), on a daemon thread; returns the port."""
    httpd = make_server(host, port, metrics_only_app, _ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True).start()
    return int(httpd.server_port)


def _abort_handler(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def unary(request: Any, context: grpc.ServicerContext) -> None:
        context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(unary)


class TokenAuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type stubs
    """Refuses calls without ``authorization: Bearer <token>``; never logs the token."""

    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation: Continuation,
                          details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        if method.startswith(UNAUTHENTICATED_PREFIXES):
            return continuation(details)
        supplied = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(supplied.encode(), self._expected):
            return continuation(details)
        log.warning("refused unauthenticated call", extra={"method": method,
                                                             "had_credentials": bool(supplied)})
        return _abort_handler(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


Continuation = Callable[[Any], Any]  # grpc.HandlerCallDetails -> grpc.RpcMethodHandler | None
Wrap = Callable[[Any, str], Any]  # (grpc.RpcMethodHandler, method name) -> the wrapped handler


class _PerMethod:
    """Wrapped handlers by method name: the handlers behind a method do not change, so each is
    wrapped once instead of building closures and handler tuples on every call (a measurable
    part of a small call's cost). Unknown methods (None) are not remembered."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    def get(self, continuation: Continuation, details: grpc.HandlerCallDetails,
            wrap: Wrap) -> grpc.RpcMethodHandler | None:
        handler = self._handlers.get(details.method)
        if handler is None:
            handler = continuation(details)
            if handler is not None:
                handler = wrap(handler, details.method)
                self._handlers[details.method] = handler
        return handler


class _WrappingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type stubs
    """Wraps each method's handler once (by ``_wrap``), then reuses the wrapped handler."""

    def __init__(self) -> None:
        self._wrapped = _PerMethod()

    @staticmethod
    def _wrap(handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
        raise NotImplementedError  # each subclass says how it wraps

    def intercept_service(self, continuation: Continuation,
                          details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._wrapped.get(continuation, details, self._wrap)


class MetricsInterceptor(_WrappingInterceptor):
    """Counts unary calls and their latency per method (streams are counted at start)."""

    @staticmethod
    def _wrap(handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
        if handler.unary_unary is None:
            return handler
        service, _, method = full_method.rpartition("/")
        service = service.lstrip("/")
        inner = handler.unary_unary
        latency = RPC_LATENCY.labels(service, method)
        counters: dict[str, Counter] = {}

        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            code = "OK"
            try:
                return inner(request, context)
            except Exception:
                code = "ERROR"
                raise
            finally:
                code = context.code().name if context.code() is not None else code
                counter = counters.get(code)
                if counter is None:
                    counter = counters[code] = RPC_COUNT.labels(service, method, code)
                counter.inc()
                latency.observe(time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            timed, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class DecodeInterceptor(_WrappingInterceptor):
    """Decodes requests inside the handler, so bytes that are not the expected message get
    INVALID_ARGUMENT naming the message type (grpcio itself answers INTERNAL)."""

    @staticmethod
    def _wrap(handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
        if handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer
        message_type = getattr(decode, "__self__", None)
        name = getattr(message_type, "__name__", "message")

        def decoded(raw: bytes, context: grpc.ServicerContext) -> Any:
            try:
                return decode(raw)
            except Exception:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"{full_method}: request is not a valid {name}")

        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary
            return grpc.unary_unary_rpc_method_handler(
                lambda raw, context: inner_unary(decoded(raw, context), context),
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream
            return grpc.unary_stream_rpc_method_handler(
                lambda raw, context: inner_stream(decoded(raw, context), context),
                response_serializer=handler.response_serializer)
        return handler


class GrpcServer:
    def __init__(self, settings: ServerSettings, name: str, *, health_names: Iterable[str] = ("",)):
        self.settings = settings
        self.name = name
        interceptors: list[grpc.ServerInterceptor] = [MetricsInterceptor(), DecodeInterceptor()]
        if settings.token:
            interceptors.insert(0, TokenAuthInterceptor(settings.token))
        limit = settings.max_message_bytes
        self.grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix=name),
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=settings.max_workers * 8,
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        self._service_names: list[str] = [health.SERVICE_NAME]
        self._health_names = list(health_names)
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._stopping = False
        self.port: int | None = None
        self.metrics_port: int | None = None

    def add_service_names(self, *names: str) -> None:
        """Declares services registered on ``self.grpc`` (for reflection)."""
        self._service_names.extend(names)

    def set_serving(self, serving: bool, names: Iterable[str] | None = None) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for n in names if names is not None else self._health_names:
            self.health.set(n, status)

    def _credentials(self) -> grpc.ServerCredentials | None:
        s = self.settings
        if not s.tls_cert:
            return None
        if not s.tls_key:
            raise ValueError(f"{self.name}: --tls-key is required with --tls-cert")
        key = Path(s.tls_key).read_bytes()
        cert = Path(s.tls_cert).read_bytes()
        ca = Path(s.tls_client_ca).read_bytes() if s.tls_client_ca else None
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                           require_client_auth=ca is not None)

    def start(self) -> int:
        reflection.enable_server_reflection(
            self._service_names + [reflection.SERVICE_NAME], self.grpc)
        address = f"{self.settings.host}:{self.settings.port}"
        creds = self._credentials()
        port: int = self.grpc.add_secure_port(address, creds) if creds else self.grpc.add_insecure_port(address)
        if port == 0:
            raise OSError(f"{self.name}: cannot bind {address}")
        self.port = port
        self.grpc.start()
        self.set_serving(True)
        if self.settings.metrics_port is not None:
            self.metrics_port = serve_metrics(self.settings.metrics_port, self.settings.host)
        log.info("serving", extra={"service": self.name, "address": f"{self.settings.host}:{port}",
                                   "tls": creds is not None, "auth": bool(self.settings.token),
                                   "metrics_port": self.metrics_port})
        return port

    def install_signal_handlers(self, on_stop: Callable[[], None] | None = None) -> None:
        def handle(signum: int, _frame: object) -> None:
            log.info("signal received, stopping", extra={"service": self.name, "signal": signum})
            threading.Thread(target=self.stop, args=(on_stop,), daemon=True).start()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def stop(self, on_stop: Callable[[], None] | None = None) -> None:
        # A second signal (or a signal racing an explicit stop) must not run the shutdown twice.
        with self._stop_lock:
            already = self._stopping
            self._stopping = True
        if already:
            self._stopped.wait()  # the first caller finishes the shutdown; return once it has
            return
        self.set_serving(False)
        self.health.enter_graceful_shutdown()
        self.grpc.stop(self.settings.grace_seconds).wait()
        if on_stop:
            on_stop()
        self._stopped.set()
        log.info("stopped", extra={"service": self.name})

    def wait(self) -> None:
        """Blocks until ``stop`` has finished (e.g. after SIGTERM)."""
        while not self._stopped.wait(0.5):
            pass
