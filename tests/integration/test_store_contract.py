"""The store conformance kit (sextant.store.conformance) on every ResourceStore implementation:
in memory, SQL on SQLite / MariaDB / PostgreSQL, and the gRPC client against a real DB manager.

One store per implementation is shared by the module's tests (each test works in namespaces of
its own), so databases are created and migrated once, not per test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.db_manager.resource_store import PRUNE_EVERY
from sextant.store.conformance import Capabilities, ResourceStoreContract
from sextant.store.interface import ResourceStore
from tests.integration.conftest import create_database, running_db_manager

HISTORY = 32  # short, so that Expired is reached with few writes

# The SQL store prunes its change log each time the version crosses a multiple of PRUNE_EVERY,
# keeping the last HISTORY changes: an old version is Expired at the latest HISTORY + PRUNE_EVERY
# changes later.
SQL = Capabilities(bookmark_seconds=0.5, retained=HISTORY, expires_after=HISTORY + PRUNE_EVERY)
MEMORY = Capabilities(bookmark_seconds=0.5, retained=HISTORY, expires_after=HISTORY)
GRPC = Capabilities(bookmark_seconds=1.0, retained=HISTORY, expires_after=HISTORY + PRUNE_EVERY)


def _migrated(backend: str, tmp_path_factory) -> tuple[str, callable]:
    from services.db_manager.database import Database, migrate

    url, drop = create_database(backend, tmp_path_factory.mktemp(backend))
    db = Database(url)
    try:
        migrate(db)
    finally:
        db.dispose()
    return url, drop


@pytest.fixture(scope="module", params=["memory", "sql-sqlite", "sql-mariadb", "sql-postgresql", "grpc"])
def implementation(request, tmp_path_factory) -> Iterator[tuple[ResourceStore, Capabilities]]:
    kind = request.param
    if kind == "memory":
        from sextant.store.memory import MemoryResourceStore

        yield MemoryResourceStore(history=HISTORY, bookmark_seconds=0.5), MEMORY
    elif kind.startswith("sql-"):
        from services.db_manager.database import Database
        from services.db_manager.resource_store import SqlResourceStore

        url, drop = _migrated(kind.removeprefix("sql-"), tmp_path_factory)
        db = Database(url)
        try:
            yield SqlResourceStore(db, history=HISTORY, poll_seconds=0.5, bookmark_seconds=0.5), SQL
        finally:
            db.dispose()
            drop()
    else:
        url, drop = _migrated("sqlite", tmp_path_factory)
        with running_db_manager(url, max_workers=16, history=HISTORY) as manager, \
                manager.store(retry_seconds=5) as client:
            yield client, GRPC


class TestStoreContract(ResourceStoreContract):
    @pytest.fixture
    def store(self, implementation) -> ResourceStore:
        return implementation[0]

    @pytest.fixture
    def capabilities(self, implementation) -> Capabilities:
        return implementation[1]
