"""Trials' observation logs (metric values in the order they were reported).

The logs live in the DB manager behind ``DBManager.GetObservationLog``, reached through the
channel the API server puts under its ``DB_MANAGER`` key (absent when its store is not the DB
manager's: then the UI has no logs to show).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from aiohttp import web

from services.api_server.app import DB_MANAGER
from sextant.timestamps import ZERO_TIME

Reader = Callable[[str, str], list[dict[str, Any]]]  # (trial, metric or "") → [{time, name, value}]
PARALLEL_READS = 8


def _grpc_reader(channel: grpc.Channel) -> Reader:
    from sextant.api import api_pb2_grpc
    from sextant.observation_logs import read_logs

    stub = api_pb2_grpc.DBManagerStub(channel)

    def read(trial: str, metric: str = "") -> list[dict[str, Any]]:
        # In pages when the log is longer than one GetObservationLog may return. A log line
        # without a time of its own carries Katib's zero time: shown as no time at all.
        return [{"time": "" if m.time_stamp == ZERO_TIME else m.time_stamp, "name": m.metric.name,
                 "value": m.metric.value}
                for m in read_logs(stub, trial, metric, timeout=30)]

    return read


def reader(app: web.Application) -> Reader | None:
    channel = app.get(DB_MANAGER)
    return _grpc_reader(channel) if channel is not None else None


def series(log: list[dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """``{metric: {"time": [...], "value": [...]}}``; values that are not numbers become None."""
    out: dict[str, dict[str, list[Any]]] = {}
    for row in log:
        entry = out.setdefault(row["name"], {"time": [], "value": []})
        entry["time"].append(row["time"])
        try:
            entry["value"].append(float(row["value"]))
        except (TypeError, ValueError):
            entry["value"].append(None)
    return out


def many(read: Reader, trials: list[str], metric: str) -> dict[str, list[Any]]:
    """One metric's values for many trials, read a few at a time."""
    def one(trial: str) -> tuple[str, list[Any]]:
        return trial, series(read(trial, metric)).get(metric, {"value": []})["value"]

    with ThreadPoolExecutor(PARALLEL_READS) as pool:
        return dict(pool.map(one, trials))
