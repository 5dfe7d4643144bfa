"""Shared pieces of the bad-input and hostile-input tests: the corpus index, an in-process DB
manager on SQLite, and how to tell that an error message names a field."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sextant.api import store_pb2

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
INDEX: dict[str, dict[str, Any]] = yaml.safe_load((BAD / "index.yaml").read_text())


def names(layer: str) -> list[str]:
    return sorted(name for name, entry in INDEX.items() if layer in entry["layers"])


def names_field(text: str, field: str) -> bool:
    """True if ``text`` names ``field`` as a field (not merely as part of a longer one:
    "spec.parameters[1].name" must not be satisfied by "spec.parameters[10].name")."""
    pattern = rf"(^|[\s('\"]){re.escape(field)}(?=[:\[. ]|$)"
    return re.search(pattern, text, re.MULTILINE) is not None


@dataclass
class SqliteDBManager:
    address: str
    app: Any

    def experiment_names(self) -> list[str]:
        items, _ = self.app.store.list("Experiment", "")
        return sorted(e.metadata.name for e in items)

    def row_counts(self) -> dict[str, int]:
        """Rows in every table (resources, change log, observation logs): "nothing written"."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.app.db.url)
        try:
            with engine.connect() as conn:
                tables = sa.inspect(conn).get_table_names()
                return {t: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one()
                        for t in tables if t != "alembic_version"}
        finally:
            engine.dispose()


@contextmanager
def sqlite_db_manager(directory: Path, *, token: str | None = None,
                      max_message_bytes: int = 8 * 1024 * 1024) -> Iterator[SqliteDBManager]:
    """A DB manager on a fresh SQLite file, on a free loopback port."""
    from services.db_manager.app import DBManagerApp
    from services.db_manager.database import Database, migrate
    from sextant.config import ServerSettings

    db = Database(f"sqlite:///{directory / 'sextant.db'}")
    migrate(db)
    app = DBManagerApp(ServerSettings(port=0, max_workers=16, token=token, max_message_bytes=max_message_bytes),
                       db, poll_seconds=0.2, bookmark_seconds=1.0)
    port = app.start()
    try:
        yield SqliteDBManager(f"127.0.0.1:{port}", app)
    finally:
        app.stop()


def raw_resource(doc: Any) -> store_pb2.Resource:
    """The wire Resource for a parsed document, with no client-side checks at all (what a hostile
    or buggy client could send): strings where the document has strings, JSON for spec/status."""
    if not isinstance(doc, dict):
        return store_pb2.Resource(spec_json=json.dumps(doc))
    meta = doc.get("metadata")
    pb = store_pb2.Resource(
        api_version=doc["apiVersion"] if isinstance(doc.get("apiVersion"), str) else "",
        kind=doc["kind"] if isinstance(doc.get("kind"), str) else "",
        spec_json=json.dumps(doc.get("spec", {}), allow_nan=True),
    )
    pb.metadata.namespace = "default"  # every client fills it in; the store insists on one
    if isinstance(meta, dict):
        for key in ("name", "namespace"):
            if isinstance(meta.get(key), str):
                setattr(pb.metadata, key, meta[key])
            elif key in meta:
                # A non-string name cannot be put on the wire as a name; send its text, which is
                # what a careless client would do.
                setattr(pb.metadata, key, str(meta[key]))
        for key in ("labels", "annotations"):
            if isinstance(meta.get(key), dict):
                getattr(pb.metadata, key).update({str(k): str(v) for k, v in meta[key].items()})
    elif meta is not None:
        pb.metadata.name = json.dumps(meta)
    return pb
