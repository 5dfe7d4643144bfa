"""Authentication and transport for every gRPC service Sextant runs: the DB manager (Katib
DBManager + ResourceStore), an algorithm (Suggestion) service and early stopping.

With a token configured: no token or a wrong one → UNAUTHENTICATED (unary and streaming), the
right one works, health stays open (probes cannot send tokens), and the refusal is logged
without the token. Each works over TLS as well. The controllers' client (GrpcResourceStore)
sends the token. Secrets given on the command line (the token file's content, a DB password in
--db-url) never reach a service's output.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sextant.api import api_pb2, api_pb2_grpc, store_pb2, store_pb2_grpc
from sextant.channel import open_channel
from sextant.config import ServerSettings
from sextant.ports import free_port
from sextant.server import GrpcServer
from tests.integration.bad_input_support import sqlite_db_manager

ROOT = Path(__file__).resolve().parents[2]
C = grpc.StatusCode


def _suggestion_server(settings: ServerSettings):
    from services.suggestion.algorithms.servicer import HEALTH_NAMES, SuggestionServicer, add_to_server

    server = GrpcServer(settings, name="auth-suggestion", health_names=HEALTH_NAMES)
    add_to_server(SuggestionServicer(), server)
    return server


def _early_stopping_server(settings: ServerSettings):
    from services.suggestion.earlystopping.servicer import HEALTH_NAMES, EarlyStoppingServicer, add_to_server

    server = GrpcServer(settings, name="auth-earlystopping", health_names=HEALTH_NAMES)
    add_to_server(EarlyStoppingServicer(), server)
    return server


def _call_suggestion(channel):
    return api_pb2_grpc.SuggestionStub(channel).ValidateAlgorithmSettings(
        api_pb2.ValidateAlgorithmSettingsRequest(), timeout=10)


def _call_early_stopping(channel):
    return api_pb2_grpc.EarlyStoppingStub(channel).ValidateEarlyStoppingSettings(
        api_pb2.ValidateEarlyStoppingSettingsRequest(), timeout=10)


def _call_dbmanager(channel):
    return api_pb2_grpc.DBManagerStub(channel).GetObservationLog(
        api_pb2.GetObservationLogRequest(trial_name="t"), timeout=10)


def _call_store_watch(channel):
    stream = store_pb2_grpc.ResourceStoreStub(channel).Watch(store_pb2.WatchRequest(kind="Trial"), timeout=0.5)
    for _ in stream:
        pass


def _code(fn, channel) -> grpc.StatusCode:
    try:
        fn(channel)
    except grpc.RpcError as err:
        return err.code()
    return C.OK


class _Running:
    def __init__(self, kind: str, token: str, tmp_path: Path, tls: tuple[Path, Path] | None):
        self.kind, self.tls = kind, tls
        settings = ServerSettings(port=0, max_workers=8, grace_seconds=0, token=token,
                                  tls_cert=str(tls[0]) if tls else None, tls_key=str(tls[1]) if tls else None)
        self._dbm = None
        if kind == "db-manager":
            self._dbm = sqlite_db_manager(tmp_path, token=token)
            # sqlite_db_manager builds its own settings; TLS is added by rebuilding them.
            if tls:
                self._dbm = _tls_db_manager(tmp_path, settings)
            self.address = self._dbm.__enter__().address
            self.calls = [_call_dbmanager, _call_store_watch]
        else:
            self.server = (_suggestion_server if kind == "suggestion" else _early_stopping_server)(settings)
            self.address = f"127.0.0.1:{self.server.start()}"
            self.calls = [_call_suggestion if kind == "suggestion" else _call_early_stopping]

    def channel(self, token: str | None):
        return open_channel(self.address if not self.tls else f"localhost:{self.address.split(':')[1]}",
                            token=token, tls_ca=str(self.tls[0]) if self.tls else None)

    def stop(self):
        if self._dbm is not None:
            self._dbm.__exit__(None, None, None)
        else:
            self.server.stop()


def _tls_db_manager(tmp_path: Path, settings: ServerSettings):
    from contextlib import contextmanager

    from services.db_manager.app import DBManagerApp
    from services.db_manager.database import Database, migrate
    from tests.integration.bad_input_support import SqliteDBManager

    @contextmanager
    def run():
        db = Database(f"sqlite:///{tmp_path / 'tls.db'}")
        migrate(db)
        app = DBManagerApp(settings, db, poll_seconds=0.2, bookmark_seconds=1.0)
        port = app.start()
        try:
            yield SqliteDBManager(f"127.0.0.1:{port}", app)
        finally:
            app.stop()

    return run()


@pytest.mark.parametrize("transport", ["plaintext", "tls"])
@pytest.mark.parametrize("kind", ["db-manager", "suggestion", "earlystopping"])
def test_token_required_and_refusal_logged_without_token(kind, transport, tmp_path, certificate, caplog):
    token = secrets.token_urlsafe(32)
    running = _Running(kind, token, tmp_path, certificate if transport == "tls" else None)
    try:
        with caplog.at_level(logging.DEBUG):
            for call in running.calls:
                for presented in (None, "wrong-" + token[:8], token + "x", token.upper() if token != token.upper()
                                  else token + "y"):
                    with running.channel(presented) as channel:
                        assert _code(call, channel) == C.UNAUTHENTICATED, (kind, call.__name__, presented)
                with running.channel(token) as channel:
                    assert _code(call, channel) not in (C.UNAUTHENTICATED, C.UNAVAILABLE)
        with running.channel(None) as channel:  # probes need no token
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        running.stop()
    refusals = [r for r in caplog.records if "unauthenticated" in r.getMessage()]
    assert refusals, "refusals are logged"
    for record in caplog.records:
        everything = record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())
        assert token not in everything and token[:12] not in everything


def test_store_client_sends_the_token(tmp_path):
    from sextant.store.client import GrpcResourceStore
    from sextant.store.interface import StoreError

    token = secrets.token_urlsafe(32)
    with sqlite_db_manager(tmp_path, token=token) as dbm:
        good = GrpcResourceStore(dbm.address, token=token, retry_seconds=1)
        assert good.list("Experiment", "default")[0] == []
        bad = GrpcResourceStore(dbm.address, token="nope", retry_seconds=1)
        with pytest.raises(StoreError, match="UNAUTHENTICATED"):
            bad.list("Experiment", "default")
        good.close() if hasattr(good, "close") else None
        bad.close() if hasattr(bad, "close") else None


def _wait_port(address: str, timeout: float = 60) -> None:
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    finally:
        channel.close()


def test_db_manager_process_keeps_secrets_out_of_its_output(tmp_path):
    """A real DB manager with --token-file: refusals logged, the token never printed; the
    settings banner masks it."""
    token = secrets.token_urlsafe(32)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    port = free_port()
    log_path = tmp_path / "db.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "services.db_manager", "--port", str(port),
                                 "--token-file", str(token_file), "--db-url", f"sqlite:///{tmp_path / 'x.db'}",
                                 "--log-level", "DEBUG"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        _wait_port(f"127.0.0.1:{port}")
        for presented in (None, "wrong"):
            with open_channel(f"127.0.0.1:{port}", token=presented) as channel:
                assert _code(_call_dbmanager, channel) == C.UNAUTHENTICATED
        with open_channel(f"127.0.0.1:{port}", token=token) as channel:
            assert _code(_call_dbmanager, channel) == C.OK
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log_path.read_text()
    assert "refused unauthenticated call" in text
    assert token not in text


def test_db_password_in_url_never_printed(tmp_path):
    password = "Pw-" + secrets.token_hex(8)
    done = subprocess.run([sys.executable, "-m", "services.db_manager", "--port", "0", "--connect-timeout", "1",
                           "--db-url", f"mysql+mysqldb://root:{password}@127.0.0.1:1/sextant"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "127.0.0.1" in output  # it did talk about the database…
    assert password not in output  # …without the password


def test_token_file_mode_and_loopback_default(tmp_path):
    from sextant.config import ensure_token

    token = ensure_token(tmp_path)
    assert len(token) >= 32
    assert oct((tmp_path / "token").stat().st_mode & 0o777) == "0o600"
    assert ensure_token(tmp_path) == token  # stable once generated
    assert ServerSettings().host == "127.0.0.1"
