"""Real-database fixtures shared by integration tests.

``db_url`` is a fresh, empty database (no schema) for each test, parametrised over SQLite,
MariaDB (127.0.0.1:3306, root) and PostgreSQL (127.0.0.1:5432, postgres). Server databases
are named ``sextant_t_<hex>`` and dropped after the test. A server that does not answer
skips its tests, or fails them when ``SEXTANT_REQUIRE_DATABASES=1``.
``migrated_db_url`` is the same after ``alembic upgrade head``; ``db_manager`` runs an
in-process DB manager on a free loopback port over it. ``sqlite_db_manager`` is the same over a
copy of one SQLite database migrated per session (fast, for tests about other services);
``running_db_manager(url, ...)`` starts one by hand. ``certificate`` is a self-signed TLS pair.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sextant.config import mysql_driver

BACKENDS = ["sqlite", "mariadb", "postgresql"]
MARIADB_ADMIN = os.environ.get("SEXTANT_TEST_MARIADB", f"{mysql_driver()}://root@127.0.0.1:3306/?charset=utf8mb4")
POSTGRES_ADMIN = os.environ.get("SEXTANT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
_unreachable: dict[str, str] = {}


def _unavailable(backend: str, err: Exception) -> None:
    _unreachable[backend] = f"{backend} not reachable: {type(err).__name__}: {err}"
    if os.environ.get("SEXTANT_REQUIRE_DATABASES") == "1":
        pytest.fail(_unreachable[backend])
    pytest.skip(_unreachable[backend])


def create_database(backend: str, tmp_path) -> tuple[str, callable]:
    """A new empty database: (url, drop)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'sextant.db'}", lambda: None
    if backend in _unreachable:
        _unavailable(backend, RuntimeError(_unreachable[backend]))
    name = f"sextant_t_{secrets.token_hex(6)}"
    admin_url = MARIADB_ADMIN if backend == "mariadb" else POSTGRES_ADMIN
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool,
                             connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as conn:
            if backend == "mariadb":
                conn.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
            else:
                conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as err:
        admin.dispose()
        _unavailable(backend, err)
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()

    return url, drop


@pytest.fixture(params=BACKENDS)
def db_backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(db_backend, tmp_path) -> Iterator[str]:
    url, drop = create_database(db_backend, tmp_path)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def migrated_db_url(db_url) -> str:
    from services.db_manager.database import Database, migrate

    db = Database(db_url)
    try:
        migrate(db)
    finally:
        db.dispose()
    return db_url


@dataclass
class RunningDBManager:
    app: object
    address: str
    db_url: str

    def store(self, **kwargs):
        from sextant.store.client import GrpcResourceStore

        return GrpcResourceStore(self.address, **kwargs)

    def dbmanager_stub(self):
        import grpc

        from sextant.api import api_pb2_grpc

        return api_pb2_grpc.DBManagerStub(grpc.insecure_channel(self.address))


@contextmanager
def running_db_manager(url: str, *, max_workers: int, poll_seconds: float = 0.5,
                       history: int | None = None, katib_read_port: int | None = None,
                       **settings: Any) -> Iterator[RunningDBManager]:
    """The real DB manager, in-process on a free loopback port, over the migrated database at
    ``url`` (keeping ``history`` changes for watches, if given; ``settings``: more
    ``ServerSettings``, e.g. a token or TLS); stopping it also disposes the database."""
    from services.db_manager.app import DBManagerApp
    from services.db_manager.database import Database
    from services.db_manager.resource_store import DEFAULT_HISTORY
    from sextant.config import ServerSettings

    app = DBManagerApp(ServerSettings(port=0, max_workers=max_workers, **settings), Database(url),
                       poll_seconds=poll_seconds, bookmark_seconds=1.0, history=history or DEFAULT_HISTORY,
                       katib_read_port=katib_read_port)
    port = app.start()
    try:
        yield RunningDBManager(app, f"127.0.0.1:{port}", url)
    finally:
        app.stop()


@pytest.fixture
def db_manager(migrated_db_url) -> Iterator[RunningDBManager]:
    with running_db_manager(migrated_db_url, max_workers=48) as running:
        yield running


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory) -> Path:
    """One SQLite database migrated to head per test session; tests copy it (``fresh_sqlite_url``)
    instead of running the ~1 s of migrations each."""
    from services.db_manager.database import Database, migrate

    path = tmp_path_factory.mktemp("sqlite-template") / "sextant.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate(db)
    finally:
        db.dispose()
    return path


@pytest.fixture
def fresh_sqlite_url(migrated_sqlite_file, tmp_path) -> str:
    """A new migrated SQLite database of this test's own (a copy of the session's template)."""
    target = tmp_path / "sextant.db"
    for part in migrated_sqlite_file.parent.glob(migrated_sqlite_file.name + "*"):  # + any -wal/-shm
        shutil.copy(part, target.with_name(part.name))
    return f"sqlite:///{target}"


@pytest.fixture
def sqlite_db_manager(fresh_sqlite_url) -> Iterator[RunningDBManager]:
    """The real DB manager, in-process on a free loopback port, over a fresh SQLite database."""
    with running_db_manager(fresh_sqlite_url, max_workers=16) as running:
        yield running


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1 (openssl CLI; cryptography is not installed)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_db_manager(fresh_sqlite_url, certificate) -> Iterator[tuple[RunningDBManager, str, Path]]:
    """The DB manager as deploy/kubernetes runs it: TLS only, and a bearer token required; with
    that token and its CA certificate."""
    cert, key = certificate
    token = secrets.token_urlsafe(24)
    with running_db_manager(fresh_sqlite_url, max_workers=8, token=token, tls_cert=str(cert),
                            tls_key=str(key)) as running:
        yield running, token, cert
