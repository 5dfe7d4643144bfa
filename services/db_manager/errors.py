"""Maps store and database failures to gRPC status codes (one meaning everywhere)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import grpc
from sqlalchemy import exc as sa_exc

from services.db_manager.observations import BadObservation, CallerGone, TooMany
from sextant.observation_logs import PAGE_END_METADATA
from sextant.store.interface import AlreadyExists, Conflict, Expired, Invalid, NotFound, Unavailable

log = logging.getLogger("sextant.db_manager")

CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (Invalid, grpc.StatusCode.INVALID_ARGUMENT),
    (BadObservation, grpc.StatusCode.INVALID_ARGUMENT),
    (TooMany, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (CallerGone, grpc.StatusCode.DEADLINE_EXCEEDED),
    (MemoryError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (Conflict, grpc.StatusCode.ABORTED),
    (Expired, grpc.StatusCode.OUT_OF_RANGE),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (sa_exc.OperationalError, grpc.StatusCode.UNAVAILABLE),
    (sa_exc.InterfaceError, grpc.StatusCode.UNAVAILABLE),
    (sa_exc.TimeoutError, grpc.StatusCode.UNAVAILABLE),
]


MAX_MESSAGE_CHARS = 4000
"""An error message may quote user input: it is cut here, far below gRPC's metadata limit."""


def message(err: BaseException) -> str:
    text = _message(err)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + f"... ({len(text)} characters)"


def _message(err: BaseException) -> str:
    if isinstance(err, CallerGone):
        return "the caller's deadline passed or it went away; nothing was written"
    if isinstance(err, MemoryError):
        return "the request needs more memory than the server has; send smaller requests"
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
        if isinstance(err, TooMany) and err.page_end is not None:
            context.set_trailing_metadata(((PAGE_END_METADATA, err.page_end),))
        for cls, code in CODES:
            if isinstance(err, cls):
                if code == grpc.StatusCode.UNAVAILABLE:
                    log.warning("database error", extra={"rpc": what, "error": type(err).__name__})
                context.abort(code, message(err))
        if isinstance(err, sa_exc.IntegrityError):
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "a resource with that identity already exists")
        log.exception("internal error", extra={"rpc": what})
        context.abort(grpc.StatusCode.INTERNAL, f"{what}: internal error ({type(err).__name__})")
