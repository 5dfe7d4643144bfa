"""Assembles the DB manager: database, migrations, services, health refresher."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from services.db_manager.database import HEAD_REVISION, Database, current_revision, mask, migrate
from services.db_manager.dbmanager_service import DBManagerService, ReadOnlyDBManagerService
from services.db_manager.observations import ObservationStore
from services.db_manager.resource_store import DEFAULT_HISTORY, SqlResourceStore
from services.db_manager.store_service import ResourceStoreService
from sextant.api import api_pb2_grpc, store_pb2_grpc
from sextant.config import ServerSettings
from sextant.server import GrpcServer

log = logging.getLogger("sextant.db_manager")

HEALTH_NAMES = ("", "grpc.health.v1.Health")


class DBManagerApp:
    def __init__(self, settings: ServerSettings, db: Database, *, history: int = DEFAULT_HISTORY,
                 health_seconds: float = 2.0, poll_seconds: float = 1.0, bookmark_seconds: float = 10.0,
                 max_watches: int | None = None, katib_read_port: int | None = None):
        self.settings = settings
        self.db = db
        self.store = SqlResourceStore(db, history=history)
        self.server = GrpcServer(settings, name="db-manager", health_names=HEALTH_NAMES)
        # Each open watch holds one server thread; keep some threads free for unary calls.
        watches = max_watches if max_watches is not None else max(1, settings.max_workers - 8)
        self.store_service = ResourceStoreService(self.store, max_watches=watches, poll_seconds=poll_seconds,
                                                  bookmark_seconds=bookmark_seconds)
        observations = DBManagerService(ObservationStore(db))
        api_pb2_grpc.add_DBManagerServicer_to_server(observations, self.server.grpc)
        # Opt-in: GetObservationLog without a token, for Katib's SDK (it cannot send one).
        self.read_server: GrpcServer | None = None
        if katib_read_port is not None:
            read_settings = replace(settings, port=katib_read_port, token=None, metrics_port=None, max_workers=4,
                                    tls_cert=None, tls_key=None, tls_client_ca=None)
            self.read_server = GrpcServer(read_settings, name="db-manager-katib-read")
            api_pb2_grpc.add_DBManagerServicer_to_server(ReadOnlyDBManagerService(observations), self.read_server.grpc)
            self.read_server.add_service_names("api.v1.beta1.DBManager")
        store_pb2_grpc.add_ResourceStoreServicer_to_server(self.store_service, self.server.grpc)
        self.server.add_service_names("api.v1.beta1.DBManager", "sextant.v1.ResourceStore")
        self._health_seconds = health_seconds
        self._stop = threading.Event()
        self._serving: bool | None = None

    def start(self) -> int:
        port = self.server.start()
        if self.read_server is not None:
            read_port = self.read_server.start()
            log.warning("read-only Katib DBManager port without a token (GetObservationLog only)",
                        extra={"port": read_port})
        self._refresh_health()
        threading.Thread(target=self._health_loop, name="db-health", daemon=True).start()
        log.info("db manager ready", extra={"db": mask(self.db.url), "port": port})
        return port

    def _refresh_health(self) -> None:
        ok = self.db.ping()
        if ok != self._serving:
            if self._serving is not None:
                log.warning("database health changed", extra={"serving": ok})
            self._serving = ok
        # Set every time: GrpcServer.stop marks NOT_SERVING and we must not undo that.
        if not self._stop.is_set():
            self.server.set_serving(ok)

    def _health_loop(self) -> None:
        while not self._stop.wait(self._health_seconds):
            self._refresh_health()

    def stop(self) -> None:
        self._stop.set()
        self.store_service.stop()
        if self.read_server is not None:
            self.read_server.stop()
        self.server.stop()
        self.db.dispose()

    def wait(self) -> None:
        self.server.wait()


class SchemaNotReady(RuntimeError):
    pass


def prepare_database(db: Database, *, run_migrations: bool) -> None:
    """Migrates, or (when told not to, like Katib's SKIP_DB_INITIALIZATION) only checks."""
    if run_migrations:
        revision = migrate(db)
        log.info("schema migrated", extra={"revision": revision})
        return
    revision = current_revision(db)
    if revision != HEAD_REVISION:
        raise SchemaNotReady(f"database schema is at revision {revision or 'none'}, this DB manager needs "
                             f"{HEAD_REVISION}: run `python -m services.db_manager migrate`")
