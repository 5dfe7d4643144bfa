"""Batched reporting to the DB manager with an on-disk spool, so no metric is lost.

Logs are buffered and sent with ``DBManager.ReportObservationLog`` when the buffer reaches
``batch_size`` or ``interval`` seconds have passed. A batch the DB manager does not accept is
written to ``<spool>/<seq>.json``; every later flush first re-sends the spooled batches in
order and only then the new one, so logs reach the database in the order they were read (the
order matters: ``latest`` among logs with equal timestamps is the one stored last).

Spool mode (``send=None``): every batch goes straight to the spool and the trial controller
ships the spool when it sees the job end (see ``sextant/runtime/spool.py``). No gRPC is
imported then, which is most of a wrapper's start-up cost.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from sextant.metric_lines import MetricLog

from .lazy_logger import log

Sender = Callable[[str, list[MetricLog]], None]


def grpc_sender(address: str, token: str | None = None, timeout: float = 10.0,
                tls_ca: str | None = None) -> Sender:
    """Sends to the DB manager at ``address``: over TLS trusting the PEM CA ``tls_ca`` when given."""
    from . import site_packages

    site_packages.ensure()
    from sextant.api import api_pb2, api_pb2_grpc
    from sextant.channel import open_channel

    channel = open_channel(address, token=token, tls_ca=tls_ca)
    stub = api_pb2_grpc.DBManagerStub(channel)

    def send(trial: str, logs: list[MetricLog]) -> None:
        request = api_pb2.ReportObservationLogRequest(
            trial_name=trial,
            observation_log=api_pb2.ObservationLog(metric_logs=[
                api_pb2.MetricLog(time_stamp=m.time, metric=api_pb2.Metric(name=m.name, value=m.value))
                for m in logs]))
        stub.ReportObservationLog(request, timeout=timeout)

    return send


class Reporter:
    def __init__(self, trial: str, send: Sender | None, spool_dir: Path | None, *, batch_size: int = 100,
                 interval: float = 2.0):
        self.trial = trial
        self.send = send
        self.spool_dir = spool_dir
        self.batch_size = batch_size
        self.interval = interval
        self.buffer: list[MetricLog] = []
        self.reported: list[MetricLog] = []  # everything accepted so far (for the objective check)
        self.seen: set[str] = set()
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        if send is None and spool_dir is None:
            raise ValueError("spool mode needs a spool directory")
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True)

    def add(self, logs: Iterable[MetricLog]) -> None:
        with self._lock:
            for item in logs:
                self.buffer.append(item)
                self.seen.add(item.name)
            due = len(self.buffer) >= self.batch_size or \
                time.monotonic() - self._last_flush >= self.interval
        if due:
            self.flush()

    def tick(self) -> None:
        """Called periodically: flushes a non-empty buffer or pending spool once the interval passed."""
        if time.monotonic() - self._last_flush < self.interval:
            return
        if self.buffer or (self.send is not None and self._spooled()):
            self.flush()

    def _spooled(self) -> list[Path]:
        if self.spool_dir is None:
            return []
        return sorted(self.spool_dir.glob("*.json"), key=lambda p: int(p.stem))

    def _spool(self, batch: list[MetricLog]) -> None:
        if self.spool_dir is None:
            raise RuntimeError("DB manager unreachable and no spool directory to keep metrics")
        existing = self._spooled()
        seq = int(existing[-1].stem) + 1 if existing else 1
        tmp = self.spool_dir / f".{seq}.tmp"
        tmp.write_text(json.dumps([m.to_dict() for m in batch]))
        os.replace(tmp, self.spool_dir / f"{seq}.json")

    def flush(self) -> bool:
        """Sends spooled batches then the buffer; returns True if nothing is left pending.

        Spool mode: writes the buffer to the spool and returns True (the spool is the hand-over).
        """
        with self._lock:
            batch, self.buffer = self.buffer, []
            self._last_flush = time.monotonic()
            if self.send is None:
                if batch:
                    self._spool(batch)
                    self.reported.extend(batch)
                return True
            import grpc  # already loaded by grpc_sender

            try:
                for path in self._spooled():
                    spooled = [MetricLog(d["time"], d["name"], d["value"])
                               for d in json.loads(path.read_text())]
                    self.send(self.trial, spooled)
                    self.reported.extend(spooled)
                    path.unlink()
                if batch:
                    self.send(self.trial, batch)
                    self.reported.extend(batch)
                return True
            except grpc.RpcError as err:
                code = err.code() if hasattr(err, "code") else None
                log.warning("DB manager did not take metrics; spooled",
                            extra={"trial": self.trial, "code": getattr(code, "name", str(code)),
                                   "count": len(batch)})
                if batch:
                    self._spool(batch)
                return False

    def drain(self, deadline: float, retry_every: float = 1.0) -> bool:
        """Flushes until everything is accepted or the monotonic ``deadline`` passes."""
        while True:
            if self.flush():
                return True
            if time.monotonic() + retry_every > deadline:
                return False
            time.sleep(retry_every)
