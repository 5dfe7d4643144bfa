"""Conversion between the wire ``sextant.v1.Resource`` and documents / pydantic models.

A document is Katib's JSON shape (``apiVersion``, ``kind``, ``metadata``, ``spec``,
``status``, camelCase keys). ``resourceVersion`` is a string in documents and models (as in
Kubernetes) and an int64 on the wire.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sextant.api import store_pb2
from sextant.resources.numbers import document_int, excerpt
from sextant.store.interface import Invalid

if TYPE_CHECKING:  # models load on first use: document-only clients (the CLI) skip pydantic
    from pydantic import BaseModel


def parse_version(value: Any, field: str = "metadata.resourceVersion") -> int:
    """``""``/None → 0; a decimal string or int → int; anything else → Invalid."""
    if value in (None, ""):
        return 0
    try:
        version = int(value)
    except (TypeError, ValueError):
        raise Invalid([f"{field}: must be a decimal integer, got {value!r}"]) from None
    if version < 0:
        raise Invalid([f"{field}: must not be negative"])
    return version


def _json_object(text: str, field: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text, parse_int=document_int)
    except ValueError as err:
        raise Invalid([f"{field}: not valid JSON ({excerpt(str(err), 200)})"]) from None
    if not isinstance(value, dict):
        raise Invalid([f"{field}: must be a JSON object"])
    return value


def doc_from_proto(pb: store_pb2.Resource, *, spec: dict[str, Any] | None = None,
                   status: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document of a wire resource. ``spec``/``status``, when given, are used instead of
    decoding ``pb.spec_json``/``pb.status_json`` (a caller that knows the text is that of a
    document it already holds)."""
    m = pb.metadata
    meta: dict[str, Any] = {
        "name": m.name,
        "namespace": m.namespace,
        "uid": m.uid,
        "resourceVersion": str(m.resource_version) if m.resource_version else "",
        "generation": m.generation,
        "labels": dict(m.labels),
        "annotations": dict(m.annotations),
        "ownerReferences": [_owner_doc(o) for o in m.owner_references],
    }
    if m.creation_timestamp:
        meta["creationTimestamp"] = m.creation_timestamp
    doc: dict[str, Any] = {"kind": pb.kind, "metadata": meta,
                           "spec": spec if spec is not None else _json_object(pb.spec_json, "spec"),
                           "status": status if status is not None else _json_object(pb.status_json, "status")}
    if pb.api_version:
        doc["apiVersion"] = pb.api_version
    return doc


def _owner_doc(o: store_pb2.OwnerReference) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": o.api_version, "kind": o.kind, "name": o.name, "uid": o.uid,
                           "controller": o.controller}
    if o.HasField("block_owner_deletion"):
        doc["blockOwnerDeletion"] = o.block_owner_deletion
    return doc


def dumps_canonical(value: Any) -> str:
    """The JSON text of spec/status on the wire and in the store: compact, keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def proto_from_doc(doc: dict[str, Any], *, spec_json: str | None = None,
                   status_json: str | None = None) -> store_pb2.Resource:
    """The wire resource of a document. ``spec_json``/``status_json``, when given, must be
    ``dumps_canonical`` of the document's spec/status (a caller that has the text already, like
    the DB manager reading its columns, saves encoding it again)."""
    meta = doc.get("metadata") or {}
    if not isinstance(meta, dict):
        raise Invalid(["metadata: must be an object"])
    for field in ("labels", "annotations"):
        if not isinstance(meta.get(field) or {}, dict):
            raise Invalid([f"metadata.{field}: must be a map of string keys to string values"])
    owners = []
    for i, o in enumerate(meta.get("ownerReferences") or []):
        if not isinstance(o, dict):
            raise Invalid([f"metadata.ownerReferences[{i}]: must be an object"])
        block = o.get("blockOwnerDeletion")
        owners.append(store_pb2.OwnerReference(
            api_version=str(o.get("apiVersion") or ""), kind=str(o.get("kind") or ""),
            name=str(o.get("name") or ""), uid=str(o.get("uid") or ""),
            controller=bool(o.get("controller", False)),
            block_owner_deletion=None if block is None else bool(block)))
    return store_pb2.Resource(
        api_version=str(doc.get("apiVersion") or ""),
        kind=str(doc.get("kind") or ""),
        metadata=store_pb2.ObjectMeta(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            uid=str(meta.get("uid") or ""),
            resource_version=parse_version(meta.get("resourceVersion")),
            labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
            owner_references=owners,
            creation_timestamp=str(meta.get("creationTimestamp") or ""),
            generation=int(meta.get("generation") or 0),
        ),
        spec_json=spec_json if spec_json is not None else dumps_canonical(doc.get("spec") or {}),
        status_json=status_json if status_json is not None else dumps_canonical(doc.get("status") or {}),
    )


def model_from_doc(doc: dict[str, Any]) -> BaseModel:
    from pydantic import ValidationError

    from sextant.resources.models import RESOURCE_MODELS

    kind = doc.get("kind", "")
    model = RESOURCE_MODELS.get(kind)
    if model is None:
        raise Invalid([f"kind: {kind!r} is not one of {', '.join(sorted(RESOURCE_MODELS))}"])
    try:
        return model.model_validate(doc)
    except ValidationError as err:
        raise Invalid([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]) from None


def to_model(pb: store_pb2.Resource) -> BaseModel:
    """The pydantic model (Experiment, Trial, Suggestion, Event) of a wire resource."""
    return model_from_doc(doc_from_proto(pb))


def from_model(model: BaseModel) -> store_pb2.Resource:
    """The wire resource of a model; kind and apiVersion come from the model."""
    from sextant.resources.models import to_doc

    return proto_from_doc(to_doc(model))
