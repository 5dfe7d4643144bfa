"""Database connection: URL from flags or Katib's environment, engine set-up per backend,
migrations, and the write lock SQLite needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from sextant.config import mysql_driver

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("sextant.db_manager")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (a unit test keeps it honest). Knowing it lets a
# start-up against an up-to-date schema skip importing alembic, which is slow to import.
HEAD_REVISION = "0003"


class DatabaseConfigError(ValueError):
    pass


def url_from_katib_env(environ: Mapping[str, str]) -> URL | None:
    """The URL Katib's DB manager would connect to (``DB_NAME`` = mysql|postgres), else None."""
    kind = environ.get("DB_NAME")
    if not kind:
        return None
    if kind == "mysql":
        return URL.create(
            mysql_driver(),
            username=environ.get("DB_USER", "root"),
            password=environ.get("DB_PASSWORD", "") or None,
            host=environ.get("KATIB_MYSQL_DB_HOST", "katib-mysql"),
            port=int(environ.get("KATIB_MYSQL_DB_PORT", "3306")),
            database=environ.get("KATIB_MYSQL_DB_DATABASE", "katib"),
            query={"charset": "utf8mb4"},
        )
    if kind == "postgres":
        return URL.create(
            "postgresql+psycopg",
            username=environ.get("DB_USER", "katib"),
            password=environ.get("DB_PASSWORD", "") or None,
            host=environ.get("KATIB_POSTGRESQL_DB_HOST", "katib-postgres"),
            port=int(environ.get("KATIB_POSTGRESQL_DB_PORT", "5432")),
            database=environ.get("KATIB_POSTGRESQL_DB_DATABASE", "katib"),
            query={"sslmode": environ.get("KATIB_POSTGRESQL_SSL_MODE", "disable")},
        )
    raise DatabaseConfigError(f"DB_NAME={kind!r} is not supported: use 'mysql' or 'postgres'")


def resolve_url(explicit: str | None, data_dir: Path, environ: Mapping[str, str] = os.environ) -> URL:
    """``--db-url`` > ``SEXTANT_DB_URL`` > Katib's variables > SQLite in the data directory."""
    text = explicit or environ.get("SEXTANT_DB_URL")
    if text:
        try:
            url = make_url(text)
        except Exception as err:  # noqa: BLE001 - SQLAlchemy raises several types here
            raise DatabaseConfigError(f"--db-url is not a database URL: {mask(text)}") from err
    else:
        url = url_from_katib_env(environ) or URL.create("sqlite", database=str(data_dir / "sextant.db"))
    # Friendly aliases: plain mysql://, mariadb:// and postgresql:// pick the drivers installed.
    # A URL naming mysqldb where only PyMySQL is installed (Katib-style configs, old stacks)
    # falls back to it rather than failing on a missing C extension.
    mysql = mysql_driver()
    driver = {"mysql": mysql, "mariadb": mysql, "mariadb+mysqldb": mysql, "mysql+mysqldb": mysql,
              "mariadb+pymysql": "mysql+pymysql",
              "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}.get(url.drivername)
    if driver:
        url = url.set(drivername=driver)
    if url.get_backend_name() == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def mask(url: URL | str) -> str:
    """The URL with its password hidden, for logs and error messages."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except Exception:  # noqa: BLE001
            return "<unparsable url>"
    return url.render_as_string(hide_password=True)


class Database:
    """An engine plus what the backend needs: SQLite gets WAL, a busy timeout and one writer."""

    def __init__(self, url: URL | str, *, pool_size: int = 16):
        self.url = make_url(url) if isinstance(url, str) else url
        self.backend = self.url.get_backend_name()
        # A server connection can drop while pooled (restart, idle timeout): ping it at checkout.
        # A SQLite connection cannot, and the ping would be one more statement per call.
        kwargs: dict[str, Any] = {"pool_pre_ping": self.backend != "sqlite", "future": True}
        if self.backend == "sqlite":
            db = self.url.database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["poolclass"] = sa.pool.QueuePool
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
            if self.backend == "mysql":
                # Writers re-read under the store_state row lock; READ COMMITTED lets them see
                # what the previous lock holder committed.
                kwargs["isolation_level"] = "READ COMMITTED"
                kwargs["connect_args"] = {"connect_timeout": 5}
            elif self.backend == "postgresql":
                kwargs["connect_args"] = {"connect_timeout": 5}
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        if self.backend == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite has one writer; serialising in-process avoids busy errors between our threads.
        self._write_lock = threading.Lock() if self.backend == "sqlite" else None

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction for writing (committed on exit, rolled back on error)."""
        lock = self._write_lock or contextlib.nullcontext()
        with lock, self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not serving"
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def alembic_config(conn: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


def migrate(db: Database, revision: str = "head") -> str | None:
    """Upgrades the schema to ``revision``; returns the revision it ends at."""
    if revision in ("head", HEAD_REVISION) and current_revision(db) == HEAD_REVISION:
        return HEAD_REVISION
    from alembic import command

    with db.write() as conn:
        command.upgrade(alembic_config(conn), revision)
    return current_revision(db)


def current_revision(db: Database) -> str | None:
    with db.read() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()
