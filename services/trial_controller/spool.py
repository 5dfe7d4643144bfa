"""Shipping a finished job's metric spool to the DB manager, exactly once.

In spool mode (the local runtime's default) the collector wrapper only writes parsed metric
logs to ``<job dir>/spool/<seq>.json``; this controller, which already holds a DB manager
channel, sends them when it sees the job end and before it builds the observation.

Exactly once, also when this controller dies mid-way: before a chunk is sent, ``shipping.json``
records how many chunks were confirmed and which files make up the spool. A later shipper that
finds the marker sends the in-flight chunk again, cut from the same files at the same place: the
DB manager recognises a batch it already stored for the trial and stores it once (a
ReportObservationLog is one transaction, so a chunk is stored whole or not at all).

The DB manager being down is an ordinary error: the files stay, the reconcile fails and the
controller's backoff retries.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from sextant.api import api_pb2, api_pb2_grpc

MARKER = "shipping.json"
CHUNK = 5000  # logs per ReportObservationLog, well under the gRPC message size limit


def _files(spool: Path) -> list[Path]:
    files = [p for p in spool.glob("*.json") if p.stem.isdigit()]
    return sorted(files, key=lambda p: int(p.stem))


def _read(files: list[Path]) -> list[dict[str, str]]:
    logs: list[dict[str, str]] = []
    for path in files:
        logs.extend(json.loads(path.read_text()))
    return logs


def _write_marker(spool: Path, confirmed: int, files: list[Path], done: bool = False) -> None:
    tmp = spool / f".{MARKER}.tmp"
    tmp.write_text(json.dumps({"confirmed_chunks": confirmed, "files": [p.name for p in files],
                               "done": done}))
    os.replace(tmp, spool / MARKER)


def _request(trial: str, chunk: list[dict[str, str]]) -> api_pb2.ReportObservationLogRequest:
    return api_pb2.ReportObservationLogRequest(
        trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=[
            api_pb2.MetricLog(time_stamp=d["time"], metric=api_pb2.Metric(name=d["name"], value=d["value"]))
            for d in chunk]))


class Shipment(NamedTuple):
    sent: int  # logs sent by this call
    # Every log of the spool, in order, when this call shipped the whole spool from the start
    # (no earlier attempt); otherwise None: part may have gone before, read the database.
    logs: list[dict[str, str]] | None = None


def ship(spool: Path, trial: str, stub: api_pb2_grpc.DBManagerStub, timeout: float = 30.0) -> Shipment:
    """Sends every spooled log of ``trial`` once."""
    if not spool.is_dir():
        return Shipment(0)
    marker = spool / MARKER
    state = None
    if marker.exists():
        try:
            state = json.loads(marker.read_text())
        except json.JSONDecodeError:
            state = None  # torn write cannot happen (rename), but be safe: treat as fresh
    files = [spool / n for n in state["files"]] if state else _files(spool)
    if state is not None and state.get("done"):
        # Everything was stored; only the clean-up was interrupted.
        for path in files:
            path.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        return Shipment(0)
    files = [p for p in files if p.exists()]
    if not files:
        marker.unlink(missing_ok=True)
        return Shipment(0)
    logs = _read(files)
    chunks = [logs[i:i + CHUNK] for i in range(0, len(logs), CHUNK)] or [[]]
    # A previous shipper may have died around sending chunk `confirmed`: it is sent again, and
    # if it was stored then, the DB manager answers OK without storing it twice.
    confirmed = int(state["confirmed_chunks"]) if state else 0
    sent = 0
    for i in range(confirmed, len(chunks)):
        _write_marker(spool, i, files)
        if chunks[i]:
            stub.ReportObservationLog(_request(trial, chunks[i]), timeout=timeout)
            sent += len(chunks[i])
    # Removing several files is not atomic: say "done" first so an interrupted clean-up is
    # finished later instead of re-sending what is left.
    _write_marker(spool, len(chunks), files, done=True)
    for path in files:
        path.unlink(missing_ok=True)
    marker.unlink(missing_ok=True)
    return Shipment(sent, logs if state is None else None)
