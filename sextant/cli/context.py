"""What every command needs: the data directory, the server address, the token, a store client.

The address comes from ``--server`` > ``SEXTANT_SERVER`` > the local stack's ``<data_dir>/address``;
the token from ``--token`` > ``SEXTANT_TOKEN`` > ``<data_dir>/token``. Neither is ever printed.

gRPC and the store client load only when a command first talks to the server, so ``--help``,
``validate``, ``logs`` and ``status`` never pay for them.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sextant.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, BadInput, CliError
from sextant.config import data_dir as resolve_data_dir
from sextant.config import read_token
from sextant.stack import StackPaths, supervisor_running
from sextant.store import interface as store_errors

if TYPE_CHECKING:
    import grpc

    from sextant.store.client import GrpcResourceStore

# How long commands keep retrying while the local stack's DB manager is UNAVAILABLE (a restart
# by the supervisor takes a second or two; a database failover longer).
# SEXTANT_CLI_RETRY_SECONDS changes it.
RIDE_OUT_SECONDS = 30.0
# Per call: a DB manager that hangs (stopped, overloaded) counts as unavailable after this.
CALL_TIMEOUT_SECONDS = 10.0
# A server that has not accepted a connection (or answered a call) after this long gets a
# "still waiting" line on stderr, so a slow server is never mistaken for a hung command.
SLOW_SECONDS = 2.0

NOT_RUNNING = ("no Sextant stack is running for {root} (start one with `sextant up --detach`, "
               "or point --server at a DB manager)")


@dataclass
class Context:
    data_dir: Path
    server: str | None = None
    token: str | None = None
    tls_ca: str | None = None
    _store: GrpcResourceStore | None = field(default=None, repr=False)
    _channel: grpc.Channel | None = field(default=None, repr=False)
    _retry_seconds: float | None = field(default=None, repr=False)
    _image_reason: str | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> Context:
        return cls(data_dir=resolve_data_dir(getattr(ns, "data_dir", None)),
                   server=getattr(ns, "server", None) or os.environ.get("SEXTANT_SERVER"),
                   token=getattr(ns, "token", None),
                   tls_ca=getattr(ns, "tls_ca", None) or os.environ.get("SEXTANT_TLS_CA"))

    @property
    def paths(self) -> StackPaths:
        return StackPaths(self.data_dir)

    def address(self) -> str:
        if self.server:
            return self.server
        try:
            address = self.paths.address.read_text().strip()
        except OSError:
            address = ""
        if not address:
            raise CliError(NOT_RUNNING.format(root=self.data_dir))
        return address

    def bearer(self) -> str | None:
        return read_token(self.token, str(self.paths.token))

    def channel(self) -> grpc.Channel:
        if self._channel is None:
            from sextant.channel import open_channel

            self._channel = open_channel(self.address(), token=self.bearer(), tls_ca=self.tls_ca)
        return self._channel

    def unused_image_reason(self) -> str:
        """Why this machine's stack will not run trials in the image they name ("" when it will,
        and for a remote server, which decides for itself); asked once per command."""
        if self._image_reason is None:
            from sextant.image_use import stack_unused_image_reason

            self._image_reason = "" if self.server else stack_unused_image_reason(self.paths)
        return self._image_reason

    def local_stack_running(self) -> bool:
        """The address is the local stack's and its supervisor is alive (it restarts a DB
        manager that went away, so a refused connection is worth waiting out)."""
        return not self.server and supervisor_running(self.paths) is not None

    def retry_seconds(self) -> float:
        """Ride out a DB manager restart, unless the local stack is plainly not running (its
        supervisor is gone): then the user wants the error now, not after a 30 s stall."""
        try:
            seconds = float(os.environ.get("SEXTANT_CLI_RETRY_SECONDS", RIDE_OUT_SECONDS))
        except ValueError:
            raise BadInput("SEXTANT_CLI_RETRY_SECONDS: expected a number of seconds") from None
        if not self.server and supervisor_running(self.paths) is None:
            return 0.0
        return max(0.0, seconds)

    def store(self) -> GrpcResourceStore:
        """The ResourceStore client for the server (sextant.store.client)."""
        if self._store is None:
            address = self.address()
            self._retry_seconds = self.retry_seconds()
            probe(address, self.local_stack_running())
            self._store = patient_store(self.channel(), address, self._retry_seconds)
        return self._store

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def _host_port(address: str) -> tuple[str, int] | None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in host:
        return None  # a gRPC target such as dns:///name: leave it to gRPC
    return host.strip("[]") or "127.0.0.1", int(port)


def probe(address: str, restartable: bool, timeout: float = SLOW_SECONDS) -> bool:
    """Tries a TCP connection first, so that a wrong address fails at once with a plain message
    instead of riding out a restart that will never come. Returns whether the server accepted;
    a refusal is an error unless ``restartable`` (the local supervisor brings the DB manager
    back), and a server that does not answer yet only gets a note on stderr."""
    target = _host_port(address)
    if target is None:
        return True
    try:
        socket.create_connection(target, timeout=timeout).close()
        return True
    except ConnectionRefusedError:
        if restartable:
            print(f"the DB manager at {address} refuses connections (restarting?); retrying …",
                  file=sys.stderr, flush=True)
            return False
        raise CliError(f"connection refused by {address}: no server listens there "
                       "(check --server / SEXTANT_SERVER, or start the stack with `sextant up --detach`)") from None
    except TimeoutError:
        print(f"the server at {address} has not answered within {timeout:g}s; still trying …",
              file=sys.stderr, flush=True)
        return False
    except OSError as err:
        raise CliError(f"cannot connect to {address}: {err.strerror or err}") from None


def patient_store(channel: Any, address: str, retry_seconds: float) -> GrpcResourceStore:
    """The store client, saying on stderr (once) when a call to a slow server takes a while."""
    from sextant.store.client import GrpcResourceStore

    class PatientStore(GrpcResourceStore):
        said = False

        def _call(self, method: str, request: Any) -> Any:
            timer = None
            if not self.said:
                timer = threading.Timer(SLOW_SECONDS, self._say_slow)
                timer.daemon = True
                timer.start()
            try:
                return super()._call(method, request)
            finally:
                if timer is not None:
                    timer.cancel()

        def _say_slow(self) -> None:
            self.said = True
            print(f"waiting for the server at {address} (slow to answer) …", file=sys.stderr, flush=True)

    return PatientStore(channel, retry_seconds=retry_seconds, timeout=CALL_TIMEOUT_SECONDS)


def translate(err: BaseException, ctx: Context | None = None) -> CliError | None:
    """A CliError for a known failure (store errors, gRPC status), else None."""
    if isinstance(err, CliError):
        return err
    if isinstance(err, store_errors.Invalid):
        return BadInput("the server rejected the resource", details=err.errors)
    if isinstance(err, store_errors.Unavailable):
        return CliError(_unavailable(ctx, str(err)))
    if isinstance(err, store_errors.StoreError):
        return CliError(str(err) or type(err).__name__)
    grpc = sys.modules.get("grpc")  # a gRPC error can only come from a command that loaded it
    if grpc is not None and isinstance(err, grpc.RpcError) and hasattr(err, "code"):
        code = err.code()
        details = err.details() or code.name
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
            return CliError(details, EXIT_BAD_INPUT)
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return CliError(_unavailable(ctx, details))
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return CliError(f"the server refused the token ({details}); pass --token or check "
                            "<data_dir>/token")
        return CliError(f"{code.name.lower()}: {details}", EXIT_FAILURE)
    return None


def _unavailable(ctx: Context | None, details: str) -> str:
    waited = ctx._retry_seconds if ctx is not None else None
    if waited:
        details = f"gave up after retrying for {waited:g}s: {details}"
    if ctx is not None and not ctx.server:
        return (f"cannot reach the Sextant stack at {_safe_address(ctx)} ({details}); "
                "is it running? Try `sextant status` or `sextant up --detach`")
    return f"cannot reach the server ({details})"


def _safe_address(ctx: Context) -> str:
    try:
        return ctx.address()
    except CliError:
        return str(ctx.data_dir)
