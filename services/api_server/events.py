"""Events: the store keeps Sextant's Event resources (``spec.involvedObject``, ``type``,
``reason``, ``message``, ``source``, ``time``); the API serves them in core/v1's shape, with the
involved object's uid taken from the event's owner reference, which ``kubectl describe``
selects on (``fieldSelector=involvedObject.uid=…``)."""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]


def core_event(doc: Doc) -> Doc:
    """A stored Event in core/v1's shape (what ``kubectl describe`` lists)."""
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
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "involvedObject": involved, "reason": spec.get("reason", ""), "message": spec.get("message", ""),
            "type": spec.get("type", "Normal"), "source": {"component": source}, "count": 1,
            "firstTimestamp": when, "lastTimestamp": when, "reportingComponent": source, "reportingInstance": ""}
