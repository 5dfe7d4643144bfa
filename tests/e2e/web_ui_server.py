"""The HTTP server the web-UI tests drive: the stack's API server when it is there, otherwise an
aiohttp application with the same contract (store, token, data dir, public prefixes, and an
auth middleware that accepts the Bearer header or the ``sextant_token`` cookie).

Also a crafted experiment for the tests and the benchmark: an in-process DB manager on SQLite
holding one Experiment and N finished trials (5% failed, 5% stopped early after 4 of 10
reports), with their observation logs, and no controllers to change them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

import services.web_ui
from services.api_server.app import DB_MANAGER
from services.db_manager.app import DBManagerApp
from services.db_manager.database import Database, migrate
from services.web_ui.login import authorised
from sextant.api import api_pb2, api_pb2_grpc
from sextant.config import ServerSettings
from sextant.resources.admission import admit_experiment
from sextant.resources.models import Trial
from sextant.store.client import GrpcResourceStore


@web.middleware
async def _auth(request: web.Request, handler):
    public = request.app.get("sextant.public_prefixes", [])
    if not any(request.path.startswith(p) for p in public) and not authorised(request):
        return web.json_response({"kind": "Status", "code": 401, "message": "Unauthorized"}, status=401)
    return await handler(request)


def build_app(store: GrpcResourceStore, token: str, data_dir: Path | None, **extra: Any) -> web.Application:
    app = web.Application(middlewares=[_auth], client_max_size=4 * 1024 * 1024)
    app["sextant.store"] = store
    app[DB_MANAGER] = store.channel  # the UI reads observation logs through it
    app["sextant.token"] = token
    app["sextant.data_dir"] = data_dir
    app["sextant.public_prefixes"] = []
    for key, value in extra.items():
        app[key] = value
    services.web_ui.setup(app)
    return app


class ServerThread:
    """Runs an aiohttp application on 127.0.0.1 in a background thread (for the browser tests)."""

    def __init__(self, app: web.Application):
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


CRAFTED = {
    "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
    "metadata": {"name": "big", "namespace": "default"},
    "spec": {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "random"},
        "earlyStopping": {"algorithmName": "medianstop"},
        "maxTrialCount": 2000, "parallelTrialCount": 10,
        "parameters": [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.0001", "max": "0.1"}},
            {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "8"}},
            {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam", "rmsprop"]}},
        ],
        "trialTemplate": {"primaryContainerName": "main", "trialParameters": [{"name": "lr", "reference": "lr"}],
                          "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                              "restartPolicy": "Never",
                              "containers": [{"name": "main", "image": "x", "command": ["echo", "${trialParameters.lr}"]}]}}}}},
    },
}
FULL_REPORTS, EARLY_STOPPED_REPORTS = 10, 4


def crafted_fate(i: int) -> str:
    return "Failed" if i % 20 == 7 else "EarlyStopped" if i % 20 == 13 else "Succeeded"


def populate(store: GrpcResourceStore, n: int) -> None:
    """Experiment ``default/big`` with ``n`` finished trials ``big-00000``... (see the module)."""
    stub = api_pb2_grpc.DBManagerStub(store.channel)
    doc = json.loads(json.dumps(CRAFTED))
    doc["spec"]["maxTrialCount"] = n
    store.create(admit_experiment(doc))
    rng = random.Random(1)

    def one(i: int) -> None:
        lr, layers, opt = 10 ** rng.uniform(-4, -1), rng.randint(1, 8), rng.choice(["sgd", "adam", "rmsprop"])
        final = (abs(lr - 0.01) * 10 + 0.02 * layers + (0.1 if opt == "sgd" else 0)) + rng.random() * 0.05
        fate = crafted_fate(i)
        steps = [final + 1.0 / (s + 1) for s in range(FULL_REPORTS)]
        steps = steps[:EARLY_STOPPED_REPORTS] if fate == "EarlyStopped" else steps
        name = f"big-{i:05d}"
        created = store.create(Trial.model_validate({
            "metadata": {"name": name, "namespace": "default", "labels": {"katib.kubeflow.org/experiment": "big"}},
            "spec": {"parameterAssignments": [{"name": "lr", "value": f"{lr:.6f}"}, {"name": "layers", "value": str(layers)},
                                              {"name": "optimizer", "value": opt}]}}))
        status: dict[str, Any] = {
            "conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "False"},
                           {"type": fate, "status": "True"}],
            "startTime": "2026-12-01T00:00:00Z", "completionTime": "2026-12-01T00:01:00Z"}
        if fate != "Failed":
            status["observation"] = {"metrics": [{"name": "loss", "min": str(min(steps)), "max": str(max(steps)),
                                                  "latest": str(steps[-1])}]}
            stub.ReportObservationLog(api_pb2.ReportObservationLogRequest(
                trial_name=name, observation_log=api_pb2.ObservationLog(metric_logs=[
                    api_pb2.MetricLog(time_stamp=f"2026-12-01T00:00:{s:02d}Z",
                                      metric=api_pb2.Metric(name="loss", value=str(v))) for s, v in enumerate(steps)])))
        created.status = created.status.model_validate(status)
        store.update_status(created)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))


@contextlib.contextmanager
def crafted_store(folder: Path, trials: int) -> Iterator[GrpcResourceStore]:
    """A DB manager on SQLite in ``folder`` holding the crafted experiment, and its store client."""
    db = Database(f"sqlite:///{folder / 'crafted.db'}")
    migrate(db)
    manager = DBManagerApp(ServerSettings(port=0, max_workers=16), db)
    port = manager.start()
    store = GrpcResourceStore(f"127.0.0.1:{port}", timeout=120)
    try:
        populate(store, trials)
        yield store
    finally:
        store.close()
        manager.stop()
