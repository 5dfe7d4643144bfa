"""The resource store on SQL: documents with Kubernetes-style metadata, a store-wide
resourceVersion, optimistic concurrency, cascading delete and a change log for watches.

Documents are dicts in Katib's JSON shape (see ``sextant.store.codec``). Every write runs in
one transaction that first locks the ``store_state`` row and takes the next version(s) from it,
so versions are dense, commits happen in version order, and a stale write is detected under
the lock (nothing overwritten).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from services.db_manager.database import Database
from services.db_manager.names import kind_errors, label_errors, name_errors, namespace_errors
from services.db_manager.notifier import ChangeNotifier
from services.db_manager.observations import delete_logs
from services.db_manager.schema import resource_events as E
from services.db_manager.schema import resources as R
from services.db_manager.schema import store_state as S
from services.db_manager.timefmt import format_rfc3339
from sextant.resources import admit_experiment
from sextant.resources.models import Experiment, to_doc
from sextant.store.codec import model_from_doc, parse_version
from sextant.store.interface import AlreadyExists, Conflict, Invalid, NotFound

DEFAULT_HISTORY = 10_000  # change-log entries kept for watches that resume
RECENT = 4096  # change-log entries this process wrote, kept in memory for its watchers
PRUNE_EVERY = 64


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Change:
    resource_version: int
    type: str  # ADDED | MODIFIED | DELETED
    doc: dict[str, Any]


def _row_doc(row: Any, version: int | None = None) -> dict[str, Any]:
    return {
        "apiVersion": row.api_version,
        "kind": row.kind,
        "metadata": {
            "name": row.name,
            "namespace": row.namespace,
            "uid": row.uid,
            "resourceVersion": str(version if version is not None else row.resource_version),
            "generation": row.generation,
            "labels": json.loads(row.labels),
            "annotations": json.loads(row.annotations),
            "ownerReferences": json.loads(row.owner_references),
            "creationTimestamp": row.creation_timestamp,
        },
        "spec": json.loads(row.spec),
        "status": json.loads(row.status),
    }


def _meta(doc: Mapping[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise Invalid(["metadata: must be an object"])
    return meta


def _identity(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name) of a document, validated; namespace defaults to ``default``."""
    meta = _meta(doc)
    kind = str(doc.get("kind") or "")
    namespace = str(meta.get("namespace") or "default")
    name = str(meta.get("name") or "")
    errors = kind_errors(kind) + namespace_errors(namespace) + name_errors(name)
    errors += label_errors(dict(meta.get("labels") or {}), "metadata.labels")
    for i, owner in enumerate(meta.get("ownerReferences") or []):
        if not isinstance(owner, dict) or not owner.get("uid") or not owner.get("kind") or not owner.get("name"):
            errors.append(f"metadata.ownerReferences[{i}]: kind, name and uid are required")
    if errors:
        raise Invalid(errors)
    return kind, namespace, name


def _normalize(doc: dict[str, Any], old: BaseModel | None = None) -> BaseModel:
    """Defaults and validates: admission for Experiments, the model's rules for the rest."""
    if doc.get("kind") == "Experiment":
        return admit_experiment(doc, old=old)
    return model_from_doc(doc)


class SqlResourceStore:
    def __init__(self, db: Database, notifier: ChangeNotifier | None = None,
                 history: int = DEFAULT_HISTORY):
        self.db = db
        self.notifier = notifier or ChangeNotifier()
        self.history = max(1, history)
        # The changes this process committed, by version: every open watch reads each change,
        # and serving them from memory saves a query (and a JSON decode of the row) per watch
        # per change. A version missing here (written by another DB manager on the same
        # database, or not yet remembered) sends the reader to the table.
        self._recent: dict[int, tuple[str, str, str, str]] = {}
        self._recent_lock = threading.Lock()

    # -- reads ---------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        namespace = namespace or "default"
        with self.db.read() as conn:
            row = conn.execute(sa.select(R).where(R.c.kind == kind, R.c.namespace == namespace,
                                                  R.c.name == name)).first()
        if row is None:
            raise NotFound(f"{kind} {namespace}/{name} not found")
        return _row_doc(row)

    def list(self, kind: str, namespace: str = "",
             labels: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], int]:
        with self.db.read() as conn:
            # The version is read first: a change that lands in between shows up in the list
            # and again in a watch from this version, which consumers treat as idempotent.
            version = conn.execute(sa.select(S.c.resource_version).where(S.c.id == 1)).scalar_one()
            query = sa.select(R)
            if kind:
                query = query.where(R.c.kind == kind)
            if namespace:
                query = query.where(R.c.namespace == namespace)
            rows = conn.execute(query.order_by(R.c.namespace, R.c.name)).all()
        docs = [_row_doc(r) for r in rows]
        if labels:
            docs = [d for d in docs if all(d["metadata"]["labels"].get(k) == v for k, v in labels.items())]
        return docs, version

    def recent_changes(self, after: int, upto: int, kind: str = "",
                       namespace: str = "") -> list[Change] | None:
        """Changes (after, upto] from memory, or None if any of them is not there."""
        if upto - after > RECENT:
            return None
        with self._recent_lock:
            entries = [self._recent.get(v) for v in range(after + 1, upto + 1)]
        if any(e is None for e in entries):
            return None
        return [Change(after + 1 + i, t, json.loads(snapshot))
                for i, (t, k, ns, snapshot) in enumerate(entries)  # type: ignore[misc]
                if (not kind or k == kind) and (not namespace or ns == namespace)]

    def _remember(self, rows: list[dict[str, Any]]) -> None:
        with self._recent_lock:
            for r in rows:
                self._recent[r["resource_version"]] = (r["type"], r["kind"], r["namespace"], r["snapshot"])
            top = rows[-1]["resource_version"]
            if len(self._recent) > RECENT:
                for v in [v for v in self._recent if v <= top - RECENT]:
                    del self._recent[v]

    def state(self) -> tuple[int, int]:
        """(current version, compacted version)."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(S.c.resource_version, S.c.compacted_version)
                               .where(S.c.id == 1)).one()
        return row.resource_version, row.compacted_version

    def changes(self, after: int, upto: int, kind: str = "", namespace: str = "",
                limit: int = 1000) -> list[Change]:
        query = sa.select(E).where(E.c.resource_version > after, E.c.resource_version <= upto)
        if kind:
            query = query.where(E.c.kind == kind)
        if namespace:
            query = query.where(E.c.namespace == namespace)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(E.c.resource_version).limit(limit)).all()
        return [Change(r.resource_version, r.type, json.loads(r.snapshot)) for r in rows]

    # -- writes --------------------------------------------------------------------------------

    def create(self, doc: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        kind, namespace, name = _identity(doc)
        model = _normalize(doc)
        clean = to_doc(model)
        meta = _meta(doc)
        out = {
            "apiVersion": clean.get("apiVersion") or doc.get("apiVersion") or "",
            "kind": kind,
            "metadata": {
                "name": name, "namespace": namespace, "uid": "", "resourceVersion": "",
                "generation": 1,
                "labels": dict(meta.get("labels") or {}),
                "annotations": dict(meta.get("annotations") or {}),
                "ownerReferences": clean.get("metadata", {}).get("ownerReferences", []),
                "creationTimestamp": format_rfc3339(_now().replace(microsecond=0)),
            },
            "spec": clean.get("spec", {}),
            "status": clean.get("status", {}),
        }
        if dry_run:
            return out
        with self.db.write() as conn:
            version = self._lock(conn) + 1
            exists = conn.execute(sa.select(R.c.id).where(R.c.kind == kind, R.c.namespace == namespace,
                                                          R.c.name == name)).first()
            if exists:
                raise AlreadyExists(f"{kind} {namespace}/{name} already exists")
            out["metadata"]["uid"] = str(uuid.uuid4())
            out["metadata"]["resourceVersion"] = str(version)
            conn.execute(R.insert().values(**self._columns(out), kind=kind, namespace=namespace, name=name,
                                           uid=out["metadata"]["uid"],
                                           creation_timestamp=out["metadata"]["creationTimestamp"]))
            recorded = self._record(conn, [Change(version, "ADDED", out)])
        self._remember(recorded)
        self.notifier.notify(version)
        return out

    def update(self, doc: dict[str, Any]) -> dict[str, Any]:
        return self._modify(doc, status_only=False)

    def update_status(self, doc: dict[str, Any]) -> dict[str, Any]:
        return self._modify(doc, status_only=True)

    def _modify(self, doc: dict[str, Any], *, status_only: bool) -> dict[str, Any]:
        kind, namespace, name = _identity(doc)
        expected = parse_version(_meta(doc).get("resourceVersion"))
        if not isinstance(doc.get("spec", {}), dict) or not isinstance(doc.get("status", {}), dict):
            raise Invalid(["spec and status must be objects"])
        with self.db.write() as conn:
            current = self._lock(conn)
            row = conn.execute(sa.select(R).where(R.c.kind == kind, R.c.namespace == namespace,
                                                  R.c.name == name).with_for_update()).first()
            if row is None:
                raise NotFound(f"{kind} {namespace}/{name} not found")
            if expected and expected != row.resource_version:
                raise Conflict(f"{kind} {namespace}/{name} was modified: resourceVersion is "
                               f"{row.resource_version}, not {expected}; re-read and retry")
            stored = _row_doc(row)
            new = json.loads(json.dumps(stored))
            if status_only:
                candidate = {**stored, "status": doc.get("status") or {}}
                new["status"] = to_doc(_normalize_status(candidate)).get("status", {})
            else:
                old_model = model_from_doc(stored) if kind == "Experiment" else None
                candidate = {**doc, "metadata": {**_meta(doc), "namespace": namespace}, "status": stored["status"]}
                clean = to_doc(_normalize(candidate, old=old_model))
                meta = _meta(doc)
                new["spec"] = clean.get("spec", {})
                new["metadata"]["labels"] = dict(meta.get("labels") or {})
                new["metadata"]["annotations"] = dict(meta.get("annotations") or {})
                new["metadata"]["ownerReferences"] = clean.get("metadata", {}).get("ownerReferences", [])
                if new["spec"] != stored["spec"]:
                    new["metadata"]["generation"] = stored["metadata"]["generation"] + 1
            if new == stored:
                return stored  # nothing changed: no new version, no watch event
            version = current + 1
            new["metadata"]["resourceVersion"] = str(version)
            conn.execute(R.update().where(R.c.id == row.id).values(**self._columns(new)))
            recorded = self._record(conn, [Change(version, "MODIFIED", new)])
        self._remember(recorded)
        self.notifier.notify(version)
        return new

    def delete(self, kind: str, namespace: str, name: str, resource_version: int = 0) -> list[dict[str, Any]]:
        namespace = namespace or "default"
        errors = kind_errors(kind) + namespace_errors(namespace) + name_errors(name)
        if errors:
            raise Invalid(errors)
        with self.db.write() as conn:
            current = self._lock(conn)
            rows = conn.execute(sa.select(R).where(R.c.namespace == namespace)).all()
            root = next((r for r in rows if r.kind == kind and r.name == name), None)
            if root is None:
                raise NotFound(f"{kind} {namespace}/{name} not found")
            if resource_version and resource_version != root.resource_version:
                raise Conflict(f"{kind} {namespace}/{name} was modified: resourceVersion is "
                               f"{root.resource_version}, not {resource_version}")
            doomed = _with_dependents(root, rows)
            changes = [Change(current + i + 1, "DELETED", _row_doc(r, current + i + 1))
                       for i, r in enumerate(doomed)]
            conn.execute(R.delete().where(R.c.id.in_([r.id for r in doomed])))
            delete_logs(conn, [r.name for r in doomed if r.kind == "Trial"])
            recorded = self._record(conn, changes)
        self._remember(recorded)
        self.notifier.notify(changes[-1].resource_version)
        return [c.doc for c in changes]

    # -- helpers -------------------------------------------------------------------------------

    def _lock(self, conn: sa.Connection) -> int:
        """Locks the version counter for this transaction and returns its value."""
        return conn.execute(sa.select(S.c.resource_version).where(S.c.id == 1).with_for_update()).scalar_one()

    def _record(self, conn: sa.Connection, changes: list[Change]) -> list[dict[str, Any]]:
        top = changes[-1].resource_version
        rows = [{"resource_version": c.resource_version, "type": c.type, "kind": c.doc["kind"],
                 "namespace": c.doc["metadata"]["namespace"], "name": c.doc["metadata"]["name"],
                 "snapshot": _dumps(c.doc)} for c in changes]
        conn.execute(E.insert(), rows)
        values: dict[str, Any] = {"resource_version": top}
        first = changes[0].resource_version
        if top - (first - 1) >= PRUNE_EVERY or top // PRUNE_EVERY != (first - 1) // PRUNE_EVERY:
            floor = top - self.history
            if floor > 0:
                conn.execute(E.delete().where(E.c.resource_version <= floor))
                values["compacted_version"] = sa.func.greatest(S.c.compacted_version, floor) \
                    if self.db.backend != "sqlite" else sa.func.max(S.c.compacted_version, floor)
        conn.execute(S.update().where(S.c.id == 1).values(**values))
        return rows

    @staticmethod
    def _columns(doc: dict[str, Any]) -> dict[str, Any]:
        meta = doc["metadata"]
        return {
            "api_version": doc.get("apiVersion") or "",
            "resource_version": int(meta["resourceVersion"]),
            "generation": meta["generation"],
            "labels": _dumps(meta["labels"]),
            "annotations": _dumps(meta["annotations"]),
            "owner_references": _dumps(meta["ownerReferences"]),
            "spec": _dumps(doc["spec"]),
            "status": _dumps(doc["status"]),
        }


def _normalize_status(doc: dict[str, Any]) -> BaseModel:
    # Status models tolerate unknown fields; the spec was validated when it was written.
    if doc.get("kind") == "Experiment":
        return Experiment.model_validate(doc)
    return model_from_doc(doc)


def _with_dependents(root: Any, rows: list[Any]) -> list[Any]:
    """``root`` and, recursively, every row whose ownerReferences name a doomed uid."""
    children: dict[str, list[Any]] = {}
    for r in rows:
        for owner in json.loads(r.owner_references):
            children.setdefault(owner.get("uid", ""), []).append(r)
    doomed, seen, queue = [], {root.uid}, [root]
    while queue:
        r = queue.pop(0)
        doomed.append(r)
        for child in children.get(r.uid, []):
            if child.uid not in seen:
                seen.add(child.uid)
                queue.append(child)
    return doomed


def _now():
    from datetime import UTC, datetime
    return datetime.now(UTC)
