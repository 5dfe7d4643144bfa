"""Watch resume and informer recovery across a DB manager process restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.db_manager.database import Database
from services.db_manager.resource_store import SqlResourceStore
from sextant.resources.models import ObjectMeta, Trial
from sextant.store.client import GrpcResourceStore
from sextant.store.informer import Informer
from sextant.store.interface import EventType, Unavailable

ROOT = Path(__file__).parents[2]
# Process restarts are slow; the watch code is the same on every backend (test_store_resources
# covers all three), so restarts run on the local and the docker-compose defaults.
pytestmark = [pytest.mark.xdist_group("db_manager_restart"),
              pytest.mark.parametrize("db_backend", ["sqlite", "mariadb"])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Process:
    def __init__(self, db_url: str, port: int, tmp_path: Path):
        self.args = [sys.executable, "-m", "services.db_manager", "--port", str(port), "--db-url", db_url,
                     "--data-dir", str(tmp_path), "--watch-poll-seconds", "0.2", "--bookmark-seconds", "1"]
        self.port = port
        self.log = tmp_path / "db_manager.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONPATH": str(ROOT)})
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{self.port}"))

        def serving() -> bool:
            try:
                return health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1
            except grpc.RpcError:
                return False

        assert eventually(serving), self.log.read_text()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_watch_resumes_and_informer_recovers_after_restart(migrated_db_url, tmp_path):
    server = Process(migrated_db_url, free_port(), tmp_path)
    server.start()
    store = GrpcResourceStore(f"127.0.0.1:{server.port}", retry_seconds=60)
    events: list[tuple[EventType, str]] = []
    informer = Informer(store, "Trial", namespace="default", resync_seconds=0, backoff_max=0.5)
    informer.add_handler(lambda t, r: events.append((t, r.metadata.name)))
    try:
        informer.start()
        assert informer.wait_for_sync(30)
        store.create(Trial(metadata=ObjectMeta(name="before")))
        assert eventually(lambda: informer.get("default", "before") is not None)
        _, version = store.list("Trial")
        stream = store.watch("Trial", since=version)

        server.stop()
        with pytest.raises(Unavailable):
            GrpcResourceStore(f"127.0.0.1:{server.port}", retry_seconds=0.5).get("Trial", "default", "before")
        with pytest.raises(Unavailable):
            for _ in stream:
                pass
            raise Unavailable("stream ended")  # a clean end also means: reconnect

        server.start()
        store.create(Trial(metadata=ObjectMeta(name="after")))
        store.delete("Trial", "default", "before")
        resumed = store.watch("Trial", since=version)
        got = []
        for event in resumed:
            if event.type != EventType.BOOKMARK:
                got.append((event.type, event.resource.metadata.name))
            if len(got) == 2:
                break
        resumed.cancel()
        assert got == [(EventType.ADDED, "after"), (EventType.DELETED, "before")]

        assert eventually(lambda: informer.get("default", "after") is not None
                          and informer.get("default", "before") is None)
        # each change once (the list after the outage reports them as a difference, in its order)
        assert events[0] == (EventType.ADDED, "before")
        assert sorted(events[1:]) == sorted([(EventType.ADDED, "after"), (EventType.DELETED, "before")])
        # listed again once the restarted store answered (not trusting it to replay the outage);
        # the handlers still saw each change once
        assert informer.relists == 2
    finally:
        informer.stop()
        server.stop()


def test_informer_relists_when_history_expired(migrated_db_url, tmp_path):
    server = Process(migrated_db_url, free_port(), tmp_path)
    server.start()
    store = GrpcResourceStore(f"127.0.0.1:{server.port}", retry_seconds=60)
    informer = Informer(store, "Trial", resync_seconds=0, backoff_max=0.5)
    deleted: list[str] = []
    informer.add_handler(lambda t, r: deleted.append(r.metadata.name) if t == EventType.DELETED else None)
    try:
        store.create(Trial(metadata=ObjectMeta(name="gone")))
        informer.start()
        assert informer.wait_for_sync(30)
        server.stop()
        # While it is down, another writer changes enough to prune the informer's version.
        db = Database(migrated_db_url)
        direct = SqlResourceStore(db, history=3)
        direct.delete_docs("Trial", "default", "gone")
        for i in range(70):
            direct.create_doc({"kind": "Trial", "metadata": {"name": f"t{i}", "namespace": "default"}})
        db.dispose()
        server.start()
        assert eventually(lambda: len(informer.list()) == 70 and informer.get("default", "gone") is None, 60)
        assert informer.relists == 2 and deleted == ["gone"]
    finally:
        informer.stop()
        server.stop()
