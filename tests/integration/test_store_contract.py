"""The store conformance kit (sextant.store.conformance) on every ResourceStore implementation:
in memory, SQL on SQLite / MariaDB / PostgreSQL, and the gRPC client against a real DB manager.

One store per implementation is shared by the module's tests (each test works in namespaces of
its own), so databases are created and migrated once, not per test; each implementation's tests
run on one xdist worker for the same reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from sextant.store.conformance import Capabilities, ResourceStoreContract
from sextant.store.interface import ResourceStore
from tests.integration.conftest import create_database, running_db_manager

HISTORY = 32  # changes kept for watches: short, so that Expired is reached with few writes
PRUNE_EVERY = 8  # the SQL store prunes its change log once per this many versions

# The SQL store keeps at least the last HISTORY changes and prunes each time the version crosses
# a multiple of PRUNE_EVERY, so an old version is Expired at most HISTORY + PRUNE_EVERY changes
# later; the in-memory store keeps exactly HISTORY.
SQL = Capabilities(bookmark_seconds=0.5, retained=HISTORY, expires_after=HISTORY + PRUNE_EVERY)
MEMORY = Capabilities(bookmark_seconds=0.5, retained=HISTORY, expires_after=HISTORY)
GRPC = Capabilities(bookmark_seconds=1.0, retained=HISTORY, expires_after=HISTORY + PRUNE_EVERY)
IMPLEMENTATIONS = ["memory", "sql-sqlite", "sql-mariadb", "sql-postgresql", "grpc"]


def _migrated(backend: str, request, tmp_path_factory) -> tuple[str, callable]:
    """A migrated database of the module's own: (url, drop)."""
    from services.db_manager.database import Database, migrate

    directory = tmp_path_factory.mktemp(backend)
    if backend == "sqlite":  # a copy of the session's migrated template
        template = request.getfixturevalue("migrated_sqlite_file")
        for part in template.parent.glob(template.name + "*"):
            shutil.copy(part, directory / part.name)
        return f"sqlite:///{directory / template.name}", lambda: None
    url, drop = create_database(backend, directory)
    db = Database(url)
    try:
        migrate(db)
    finally:
        db.dispose()
    return url, drop


@pytest.fixture(scope="module")
def implementation(request, tmp_path_factory) -> Iterator[tuple[ResourceStore, Capabilities]]:
    kind = request.param
    if kind == "memory":
        from sextant.store.memory import MemoryResourceStore

        yield MemoryResourceStore(history=HISTORY, bookmark_seconds=0.5), MEMORY
    elif kind.startswith("sql-"):
        from services.db_manager.database import Database
        from services.db_manager.resource_store import SqlResourceStore

        url, drop = _migrated(kind.removeprefix("sql-"), request, tmp_path_factory)
        db = Database(url)
        try:
            yield SqlResourceStore(db, history=HISTORY, prune_every=PRUNE_EVERY, poll_seconds=0.5,
                                   bookmark_seconds=0.5), SQL
        finally:
            db.dispose()
            drop()
    else:
        url, _ = _migrated("sqlite", request, tmp_path_factory)
        with running_db_manager(url, max_workers=16, history=HISTORY) as manager, \
                manager.store(retry_seconds=5) as client:
            manager.app.store.prune_every = PRUNE_EVERY
            yield client, GRPC


@pytest.mark.parametrize("implementation", [
    pytest.param(name, marks=pytest.mark.xdist_group(f"store-contract-{name}")) for name in IMPLEMENTATIONS],
    indirect=True, scope="module")
class TestStoreContract(ResourceStoreContract):
    @pytest.fixture
    def store(self, implementation) -> ResourceStore:
        return implementation[0]

    @pytest.fixture
    def capabilities(self, implementation) -> Capabilities:
        return implementation[1]
