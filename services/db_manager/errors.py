"""Maps store and database failures to gRPC status codes (one meaning everywhere)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import grpc
from sqlalchemy import exc as sa_exc

from services.db_manager.observations import BadObservation
from sextant.store.interface import AlreadyExists, Conflict, Expired, Invalid, NotFound, Unavailable

log = logging.getLogger("sextant.db_manager")

CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (Invalid, grpc.StatusCode.INVALID_ARGUMENT),
    (BadObservation, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (Conflict, grpc.StatusCode.ABORTED),
    (Expired, grpc.StatusCode.OUT_OF_RANGE),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (sa_exc.OperationalError, grpc.StatusCode.UNAVAILABLE),
    (sa_exc.InterfaceError, grpc.StatusCode.UNAVAILABLE),
    (sa_exc.TimeoutError, grpc.StatusCode.UNAVAILABLE),
]


def message(err: BaseException) -> str:
    if isinstance(err, Invalid):
        return "\n".join(err.errors)  # every error, one per line
    if isinstance(err, sa_exc.SQLAlchemyError):
        return f"database unavailable: {type(err.orig if hasattr(err, 'orig') else err).__name__}"
    return str(err)


@contextlib.contextmanager
def grpc_errors(context: grpc.ServicerContext, what: str) -> Iterator[None]:
    """Turns known exceptions into ``context.abort`` with the right code."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - mapped below, unknown ones become INTERNAL
        for cls, code in CODES:
            if isinstance(err, cls):
                if code == grpc.StatusCode.UNAVAILABLE:
                    log.warning("database error", extra={"rpc": what, "error": type(err).__name__})
                context.abort(code, message(err))
        if isinstance(err, sa_exc.IntegrityError):
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "a resource with that identity already exists")
        log.exception("internal error", extra={"rpc": what})
        context.abort(grpc.StatusCode.INTERNAL, f"{what}: internal error ({type(err).__name__})")
