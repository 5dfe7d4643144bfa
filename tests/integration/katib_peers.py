"""Helpers for tests whose peers are the real Katib-API services (no stand-ins).

- ``observation_log`` / ``metric_values``: what the real DB manager's GetObservationLog returns.
- ``DBManagerProcess``: the real DB manager as a subprocess on a fixed port, so a test can stop
  it (an outage) and start it again on the same address over the same database.
- ``medianstop_process``: the real early-stopping service as a subprocess, writing
  SetTrialStatus to the DB manager's resource store.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sextant.api import api_pb2, api_pb2_grpc
from sextant.channel import open_channel
from sextant.ports import free_port
from sextant.runtime.local import PROJECT_ROOT, child_environment


def observation_log(address: str, trial: str, metric: str = "", *, token: str | None = None,
                    tls_ca: str | None = None) -> list[tuple[str, str, str]]:
    """(time_stamp, metric name, value) rows in the order the DB manager returns them (by time)."""
    with open_channel(address, token=token, tls_ca=tls_ca) as channel:
        reply = api_pb2_grpc.DBManagerStub(channel).GetObservationLog(
            api_pb2.GetObservationLogRequest(trial_name=trial, metric_name=metric), timeout=30)
    return [(m.time_stamp, m.metric.name, m.metric.value) for m in reply.observation_log.metric_logs]


def metric_values(address: str, trial: str, metric: str) -> list[str]:
    return [value for _, _, value in observation_log(address, trial, metric)]


def wait_serving(address: str, service: str = "", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{address} did not become SERVING within {timeout:.0f}s")
            time.sleep(0.05)


class DBManagerProcess:
    """``python -m services.db_manager`` on a port chosen once, restartable on that port."""

    def __init__(self, db_url: str, log_path):
        self.db_url = db_url
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DBManagerProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.db_manager", "--port", str(self.port),
                 "--db-url", self.db_url, "--watch-poll-seconds", "0.5", "--bookmark-seconds", "1"],
                cwd=PROJECT_ROOT, env=child_environment(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        try:
            wait_serving(self.address)
        except AssertionError:
            self.kill()
            raise AssertionError(f"DB manager did not start:\n{open(self.log_path).read()}") from None
        return self

    def kill(self) -> None:
        """An abrupt outage (kill -9): no draining, no goodbye to clients."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=20)
            self.proc = None


@contextmanager
def medianstop_process(db_manager_address: str) -> Iterator[str]:
    """The real ``services.suggestion.earlystopping`` on a free port; yields its address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.suggestion.earlystopping", "--algorithm", "medianstop",
         "--port", "0", "--db-manager", db_manager_address],
        cwd=PROJECT_ROOT, env=child_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()  # it prints the port it bound when started on port 0
        assert line.startswith("listening on "), f"medianstop did not start: {line!r}"
        address = line.split()[-1]
        wait_serving(address, "manager.v1beta1.EarlyStopping")
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()
