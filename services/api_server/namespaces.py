"""Core v1 Namespaces. Sextant has no namespace objects of its own: ``default`` (and
``kubeflow``, where Katib itself lives) always exist, one created through this API is kept in
``<data_dir>/namespaces.json``, and any namespace holding Experiments exists, so that
"a namespace exists once used" holds for resources created by any client."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from services.api_server.errors import already_exists, bad_request, invalid, not_found
from services.api_server.patch import apply_patch
from sextant.store.names import namespace_errors
from sextant.timestamps import now_rfc3339

BUILT_IN = ("default", "kubeflow")
NAME_LABEL = "kubernetes.io/metadata.name"


class Namespaces:
    def __init__(self, data_dir: Path | None):
        self.path = data_dir / "namespaces.json" if data_dir else None
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, Any]] = {}
        if self.path and self.path.exists():
            try:
                self._known = json.loads(self.path.read_text())
            except ValueError:
                self._known = {}
        now = now_rfc3339()
        for name in BUILT_IN:
            self._known.setdefault(name, {"created": now, "labels": {}, "annotations": {}})

    def _save(self) -> None:
        if not self.path:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(self._known, indent=1))
        os.replace(tmp, self.path)

    def touch(self, name: str) -> bool:
        """Records a namespace that resources use; True if it is new."""
        with self._lock:
            if name in self._known:
                return False
            self._known[name] = {"created": now_rfc3339(), "labels": {}, "annotations": {}}
            self._save()
            return True

    def set_meta(self, name: str, labels: dict[str, str], annotations: dict[str, str]) -> None:
        with self._lock:
            entry = self._known.setdefault(name, {"created": now_rfc3339()})
            entry["labels"], entry["annotations"] = labels, annotations
            self._save()

    def known(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._known)


def namespace_doc(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    labels = {**(entry.get("labels") or {}), NAME_LABEL: name}
    return {"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": name, "uid": f"namespace-{name}", "resourceVersion": "1",
                         "creationTimestamp": entry.get("created"), "labels": labels,
                         "annotations": entry.get("annotations") or {}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


async def _in_use(request: web.Request) -> set[str]:
    from services.api_server.resources import call

    experiments, _ = await call(request, request.app["sextant.store"].list, "Experiment", "")
    return {e.metadata.namespace for e in experiments}


async def all_namespaces(request: web.Request) -> dict[str, dict[str, Any]]:
    registry: Namespaces = request.app["sextant.namespaces"]
    for name in await _in_use(request):
        registry.touch(name)
    return registry.known()


async def get(request: web.Request, name: str) -> dict[str, Any]:
    registry: Namespaces = request.app["sextant.namespaces"]
    known = registry.known()
    if name not in known:
        known = await all_namespaces(request)
    if name not in known:
        raise not_found("namespaces", "", name)
    return namespace_doc(name, known[name])


async def list_docs(request: web.Request) -> list[dict[str, Any]]:
    known = await all_namespaces(request)
    return [namespace_doc(n, known[n]) for n in sorted(known)]


async def create(request: web.Request, doc: dict[str, Any]) -> dict[str, Any]:
    raw = doc.get("metadata")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    name = str(meta.get("name") or "")
    errors = namespace_errors(name, "metadata.name")
    if errors:
        raise invalid("Namespace", "", "namespaces", name, errors)
    registry: Namespaces = request.app["sextant.namespaces"]
    if name in await all_namespaces(request) or not registry.touch(name):
        raise already_exists("namespaces", "", name)
    registry.set_meta(name, dict(meta.get("labels") or {}), dict(meta.get("annotations") or {}))
    return namespace_doc(name, registry.known()[name])


async def patch(request: web.Request, name: str) -> dict[str, Any]:
    current = await get(request, name)
    patched = apply_patch(current, request.headers.get("Content-Type", ""), await request.read())
    meta = patched.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("metadata: must be an object")
    labels = {k: str(v) for k, v in (meta.get("labels") or {}).items() if k != NAME_LABEL}
    request.app["sextant.namespaces"].set_meta(name, labels, dict(meta.get("annotations") or {}))
    return await get(request, name)
