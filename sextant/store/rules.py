"""What a store does to a document on write, the same in every implementation that keeps the
documents itself (the SQL store and the in-memory one): identity and scope checks, defaulting
and validation, and deciding whether an update changes anything at all.

Documents are Katib's JSON shape (see ``sextant.store.codec``). Nothing here assigns versions,
uids or stores anything; these functions only compute the new document or refuse it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from sextant.resources import admit_experiment
from sextant.resources.models import Experiment, to_doc
from sextant.store.codec import model_from_doc
from sextant.store.interface import Invalid, NotFound
from sextant.store.names import kind_errors, label_errors, name_errors, namespace_errors
from sextant.store.normalize import normalize_status
from sextant.timestamps import now_rfc3339


def meta(doc: Mapping[str, Any]) -> dict[str, Any]:
    value = doc.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(["metadata: must be an object"])
    return value


def identity(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name) of a document, validated with its labels and owner references;
    the namespace defaults to ``default``."""
    m = meta(doc)
    kind = str(doc.get("kind") or "")
    namespace = str(m.get("namespace") or "default")
    name = str(m.get("name") or "")
    errors = kind_errors(kind) + namespace_errors(namespace) + name_errors(name)
    errors += label_errors(dict(m.get("labels") or {}), "metadata.labels")
    for i, owner in enumerate(m.get("ownerReferences") or []):
        if not isinstance(owner, dict) or not owner.get("uid") or not owner.get("kind") or not owner.get("name"):
            errors.append(f"metadata.ownerReferences[{i}]: kind, name and uid are required")
    if errors:
        raise Invalid(errors)
    return kind, namespace, name


def key_of(kind: str, namespace: str, name: str) -> tuple[str, str, str]:
    """The validated key of a get/delete; the namespace defaults to ``default``."""
    namespace = namespace or "default"
    errors = kind_errors(kind) + namespace_errors(namespace) + name_errors(name)
    if errors:
        raise Invalid(errors)
    return kind, namespace, name


def check_scope(kind: str, namespace: str) -> None:
    """A list or watch scope: empty means every kind / every namespace."""
    errors = (kind_errors(kind) if kind else []) + (namespace_errors(namespace, "namespace") if namespace else [])
    if errors:
        raise Invalid(errors)


def check_since(since: int) -> None:
    if since < 0:
        raise Invalid(["since_resource_version: must not be negative"])


def selected(doc: Mapping[str, Any], labels: Mapping[str, str] | None) -> bool:
    """True when the document carries every label pair of the selector."""
    if not labels:
        return True
    have = doc["metadata"]["labels"]
    return all(have.get(k) == v for k, v in labels.items())


def normalize(doc: dict[str, Any], old: BaseModel | None = None) -> BaseModel:
    """Defaults and validates: admission for Experiments, the model's rules for the rest."""
    if doc.get("kind") == "Experiment":
        return admit_experiment(doc, old=old if isinstance(old, Experiment) else None)
    return model_from_doc(doc)


def admit_new(doc: dict[str, Any]) -> dict[str, Any]:
    """The document a create stores, before it gets its uid and resourceVersion (both empty here).
    Whatever the caller sent as uid, version, generation or creation time is replaced."""
    kind, namespace, name = identity(doc)
    clean = to_doc(normalize(doc))
    m = meta(doc)
    return {
        "apiVersion": clean.get("apiVersion") or doc.get("apiVersion") or "",
        "kind": kind,
        "metadata": {
            "name": name, "namespace": namespace, "uid": "", "resourceVersion": "",
            "generation": 1,
            "labels": dict(m.get("labels") or {}),
            "annotations": dict(m.get("annotations") or {}),
            "ownerReferences": clean.get("metadata", {}).get("ownerReferences", []),
            "creationTimestamp": now_rfc3339(),
        },
        "spec": clean.get("spec", {}),
        "status": clean.get("status", {}),
    }


def check_halves(doc: Mapping[str, Any]) -> None:
    if not isinstance(doc.get("spec", {}), dict) or not isinstance(doc.get("status", {}), dict):
        raise Invalid(["spec and status must be objects"])


def updated(old: dict[str, Any], doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """An Update of the stored ``old`` with ``doc``: (new metadata without its new version, new
    spec or None if the spec is unchanged), or None if nothing changes. Only labels, annotations,
    owner references and the spec are written; the generation counts spec changes."""
    kind, namespace, _ = identity(doc)
    meta_in = meta(doc)
    old_model = model_from_doc(old) if kind == "Experiment" else None
    # The status is not written here, and validating the spec does not depend on it.
    candidate = {**doc, "metadata": {**meta_in, "namespace": namespace}, "status": {}}
    clean = to_doc(normalize(candidate, old=old_model))
    spec = clean.get("spec", {})
    labels = dict(meta_in.get("labels") or {})
    annotations = dict(meta_in.get("annotations") or {})
    owners = clean.get("metadata", {}).get("ownerReferences", [])
    old_meta = old["metadata"]
    spec_changed = spec != old["spec"]
    if (not spec_changed and labels == old_meta["labels"] and annotations == old_meta["annotations"]
            and owners == old_meta["ownerReferences"]):
        return None
    new_meta = {**old_meta, "labels": labels, "annotations": annotations, "ownerReferences": owners,
                "generation": old_meta["generation"] + (1 if spec_changed else 0)}
    return new_meta, (spec if spec_changed else None)


def status_updated(old: dict[str, Any], doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """An UpdateStatus of the stored ``old`` with ``doc``: the new (normalized) status, or None if
    it is the stored one."""
    status = normalize_status(old, doc.get("status") or {})
    return None if status == old["status"] else status


def dependents(root_uid: str, children: Mapping[str, list[str]]) -> list[str]:
    """The uids a delete of ``root_uid`` removes, root first then breadth-first: everything whose
    ownerReferences name a removed uid. ``children`` maps a uid to the uids of the resources that
    name it as an owner (all in the root's namespace)."""
    doomed, seen, queue = [], {root_uid}, [root_uid]
    while queue:
        uid = queue.pop(0)
        doomed.append(uid)
        for child in children.get(uid, []):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return doomed


# Owners a store holds. A resource naming one that is gone (a controller acting on its cached copy
# of an Experiment deleted a moment ago) would outlive the cascade that already ran: refused.
OWNER_KINDS = frozenset({"Experiment", "Suggestion", "Trial"})


def check_owners_exist(doc: Mapping[str, Any], owner_exists: Callable[[Mapping[str, Any]], bool]) -> None:
    """Raises NotFound when an owner reference names a store kind that is not stored in the
    resource's namespace with that uid (``owner_exists`` answers that for one owner reference,
    inside the writer's lock)."""
    m = meta(doc)
    for owner in m.get("ownerReferences") or []:
        if owner.get("kind") in OWNER_KINDS and not owner_exists(owner):
            raise NotFound(f"{doc.get('kind')} {m.get('namespace')}/{m.get('name')}: its owner "
                           f"{owner.get('kind')} {owner.get('name')} (uid {owner.get('uid')}) does not exist")
