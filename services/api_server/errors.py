"""Kubernetes ``Status`` objects: every error the API server answers is one, with the reason
and code a real API server uses, so kubectl and the clients print their usual messages."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sextant.store.interface import (
    AlreadyExists,
    Conflict,
    Expired,
    Invalid,
    NotFound,
    StoreError,
    Unavailable,
)


class ApiError(Exception):
    """An error answer: ``status()`` is its Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            out["details"] = self.details
        return out

    def response(self) -> web.Response:
        return web.Response(status=self.code, text=json.dumps(self.status()), content_type="application/json")


def _details(name: str, group: str, plural: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": plural, **extra}
    if group:
        details["group"] = group
    return details


def qualified(plural: str, group: str) -> str:
    """``experiments.kubeflow.org``; the core group has no suffix (``namespaces``)."""
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{qualified(plural, group)} "{name}" not found',
                    _details(name, group, plural))


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{qualified(plural, group)} "{name}" already exists',
                    _details(name, group, plural))


def conflict(plural: str, group: str, name: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": '
                    "the object has been modified; please apply your changes to the latest version and try again",
                    _details(name, group, plural))


def split_cause(error: str) -> dict[str, str]:
    """A store message ``field.path: rule`` as a Kubernetes cause (field, message)."""
    field, sep, rule = error.partition(": ")
    if not sep or " " in field:
        return {"reason": "FieldValueInvalid", "message": error, "field": ""}
    return {"reason": "FieldValueInvalid", "message": rule, "field": field}


def invalid(kind: str, group: str, plural: str, name: str, errors: list[str]) -> ApiError:  # noqa: ARG001
    causes = [split_cause(e) for e in errors]
    text = ", ".join(f"{c['field']}: {c['message']}" if c["field"] else c["message"] for c in causes)
    qualified_kind = f"{kind}.{group}" if group else kind
    # Unlike the other reasons, an Invalid Status names the kind (kubectl prints "The <kind> …").
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {text}',
                    _details(name, group, kind, causes=causes))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                    if content_type.endswith("patch+json") or content_type.endswith("patch+yaml")
                    else f"the body of the request was in an unknown format ({content_type}) - accepted "
                    "media types include: application/json, application/yaml")


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


def from_store(err: StoreError, *, kind: str, group: str, plural: str, name: str) -> ApiError:
    """The Status of a resource store failure about one object."""
    if isinstance(err, NotFound):
        return not_found(plural, group, name)
    if isinstance(err, AlreadyExists):
        return already_exists(plural, group, name)
    if isinstance(err, Conflict):
        return conflict(plural, group, name)
    if isinstance(err, Invalid):
        return invalid(kind, group, plural, name, err.errors)
    if isinstance(err, Expired):
        return expired(str(err))
    if isinstance(err, Unavailable):
        return unavailable(str(err))
    return ApiError(500, "InternalError", f"Internal error occurred: {err}")
