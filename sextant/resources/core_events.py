"""Sextant's Event resources in core/v1's shape and back.

Sextant stores an event as ``kind: Event`` with ``spec {involvedObject, type, reason, message,
source, time}``; Kubernetes keeps the same facts as top-level fields of a core/v1 Event
(``involvedObject``, ``type``, ``reason``, ``message``, ``source.component``, timestamps). The
API server shows stored events in core/v1's shape (what ``kubectl describe`` lists) and reads
new ones from it; the Kubernetes store writes and reads a cluster's events the same way.
Labels, annotations and owner references travel in the metadata both ways, so an event is
selected by label and goes away with what it is about.
"""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]
_META = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "labels", "annotations",
         "ownerReferences")


def core_event(doc: Doc) -> Doc:
    """A stored Event in core/v1's shape."""
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    involved = dict(spec.get("involvedObject") or {})
    owners = meta.get("ownerReferences") or []
    if owners:
        involved.setdefault("uid", owners[0].get("uid", ""))
        involved.setdefault("apiVersion", owners[0].get("apiVersion", ""))
    involved.setdefault("namespace", meta.get("namespace", ""))
    when = spec.get("time") or meta.get("creationTimestamp")
    source = spec.get("source") or ""
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": {k: meta[k] for k in _META if meta.get(k) not in (None, {}, [])},
            "involvedObject": involved, "reason": spec.get("reason", ""), "message": spec.get("message", ""),
            "type": spec.get("type", "Normal"), "source": {"component": source}, "count": 1,
            "firstTimestamp": when, "lastTimestamp": when, "reportingComponent": source, "reportingInstance": ""}


def store_event(doc: Doc) -> Doc:
    """A core/v1 Event as Sextant stores it (the inverse of ``core_event`` for the fields
    Sextant keeps; counts and series are not kept)."""
    meta = doc.get("metadata") or {}
    source = doc.get("source") or {}
    spec: Doc = {"involvedObject": dict(doc.get("involvedObject") or {}),
                 "type": doc.get("type") or "Normal",
                 "reason": doc.get("reason") or "",
                 "message": doc.get("message") or "",
                 "source": (source.get("component") if isinstance(source, dict) else "")
                 or doc.get("reportingComponent") or ""}
    when = doc.get("lastTimestamp") or doc.get("eventTime") or doc.get("firstTimestamp")
    if when:
        spec["time"] = when
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {k: meta[k] for k in (*_META, "generation") if k in meta},
            "spec": spec, "status": {}}
