"""What a Kubernetes client actually asked the API server, as RBAC sees it: a recording hook on an
``ApiClient`` (test-only) and the (api group, resource, verb) of each request, so that a
hand-kept call table (the RBAC the manifests grant) is checked against real calls."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes import client

Grant = tuple[str, str, str]


class RecordedCalls:
    """Every request sent through ``api`` from now on, as (method, path, query)."""

    def __init__(self, api: client.ApiClient):
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self._lock = threading.Lock()
        sent = api.call_api

        def call_api(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            parts = urlsplit(url)
            with self._lock:
                self.requests.append((method.upper(), parts.path, parse_qs(parts.query)))
            return sent(method, url, *args, **kwargs)

        api.call_api = call_api  # type: ignore[method-assign]

    def grants(self) -> set[Grant]:
        with self._lock:
            return {grant_of(method, path, query) for method, path, query in self.requests}


def grant_of(method: str, path: str, query: dict[str, list[str]] | None = None) -> Grant:
    """(api group, resource[/subresource], verb) of one request, as the API server authorizes it."""
    words = [w for w in path.split("/") if w]
    if words[:1] == ["api"]:
        group, rest = "", words[2:]
    elif words[:1] == ["apis"]:
        group, rest = words[1], words[3:]
    else:
        raise ValueError(f"{method} {path}: not a resource path")
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
    if method == "GET":
        verb = "get" if name else ("watch" if (query or {}).get("watch", [""])[0] in ("true", "1") else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}[method]
    return group, f"{resource}/{sub}" if sub else resource, verb
