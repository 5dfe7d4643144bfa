"""Web UI benchmark: how long the experiment page of an experiment with N trials (2,000 by
default) takes to become interactive in a real browser (Debian's chromium via Playwright).

    .venv/bin/python -m bench.web_ui_bench [--trials 2000] [--rounds 5]

Set-up (not measured): an in-process DB manager on SQLite in a temp dir, one Experiment with
three parameters and ``--trials`` finished trials (5% failed, 5% early-stopped), each with a
10-step observation log; the UI's aiohttp application over the gRPC store on a loopback port.

Measured, per round, in a fresh browser context (plotly.js from the HTTP cache after round 1,
as for a returning user): from ``page.goto`` until the page is interactive — the header and
spec, the optimisation history and the trial table with all N rows are there (plots further
down draw as they are scrolled to; the parallel-coordinates plot is timed from the scroll). Also reported: the server time of the page's one JSON request (all trials as columns),
the parameter-importance request, and loading the intermediate-values plot (N observation logs).
The median of the rounds is printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from services.db_manager.app import DBManagerApp
from services.db_manager.database import Database, migrate
from sextant.api import api_pb2, api_pb2_grpc
from sextant.config import ServerSettings
from sextant.resources.admission import admit_experiment
from sextant.resources.models import Trial
from sextant.store.client import GrpcResourceStore
from tests.e2e.web_ui_server import ServerThread, build_app

TOKEN = "bench-token"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
EXPERIMENT = {
    "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
    "metadata": {"name": "big", "namespace": "default"},
    "spec": {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "random"},
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


def populate(store: GrpcResourceStore, stub, n: int) -> None:
    store.create(admit_experiment(json.loads(json.dumps(EXPERIMENT)) | {"spec": {**EXPERIMENT["spec"], "maxTrialCount": n}}))
    rng = random.Random(1)

    def one(i: int) -> None:
        lr, layers, opt = 10 ** rng.uniform(-4, -1), rng.randint(1, 8), rng.choice(["sgd", "adam", "rmsprop"])
        final = (abs(lr - 0.01) * 10 + 0.02 * layers + (0.1 if opt == "sgd" else 0)) + rng.random() * 0.05
        fate = "Failed" if i % 20 == 7 else "EarlyStopped" if i % 20 == 13 else "Succeeded"
        steps = [final + 1.0 / (s + 1) for s in range(10)][: 4 if fate == "EarlyStopped" else 10]
        name = f"big-{i:05d}"
        created = store.create(Trial.model_validate({
            "metadata": {"name": name, "namespace": "default", "labels": {"katib.kubeflow.org/experiment": "big"}},
            "spec": {"parameterAssignments": [{"name": "lr", "value": f"{lr:.6f}"}, {"name": "layers", "value": str(layers)},
                                              {"name": "optimizer", "value": opt}]}}))
        status = {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "False"},
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


def timed_get(url: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as reply:  # noqa: S310 - loopback
        reply.read()
    return time.perf_counter() - start


def measure(base: str, n: int, rounds: int) -> dict:
    from playwright.sync_api import sync_playwright

    # Interactive: the header, spec cards and the optimisation history are drawn and the trial
    # table holds every row. Plots further down draw when scrolled to; the parallel-coordinates
    # plot (the costliest) is timed on its own, from the scroll to its drawing.
    ready = (f"() => {{ const h = document.getElementById('plot-history');"
             f" return h && h.data && document.querySelectorAll('#trial-table tbody tr').length === {n}"
             f" && !document.getElementById('exp-counts').textContent.startsWith('Loading'); }}")
    interactive, intermediate, marks, parallel = [], [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        context.add_cookies([{"name": "sextant_token", "value": TOKEN, "domain": "127.0.0.1", "path": "/"}])
        for _ in range(rounds):
            page = context.new_page()
            page.on("console", lambda m: print(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: print(f"page error: {e}"))
            start = time.perf_counter()
            page.goto(f"{base}/ui/experiments/default/big")
            try:
                page.wait_for_function(ready, timeout=120_000, polling=50)
            except Exception:
                print(page.evaluate("() => [!!document.getElementById('plot-history').data, "
                                    "document.querySelectorAll('#trial-table tbody tr').length]"))
                raise
            interactive.append(time.perf_counter() - start)
            marks.append(page.evaluate("() => Object.fromEntries(performance.getEntriesByType('mark')"
                                       ".map(m => [m.name, Math.round(m.startTime)]))"))
            start = time.perf_counter()
            page.locator("#plot-parallel").scroll_into_view_if_needed()
            page.wait_for_function("document.getElementById('plot-parallel').data !== undefined", timeout=300_000)
            parallel.append(time.perf_counter() - start)
            start = time.perf_counter()
            page.click("#load-intermediate")
            page.locator("#plot-intermediate").scroll_into_view_if_needed()
            page.wait_for_function("document.getElementById('plot-intermediate').data !== undefined", timeout=300_000)
            intermediate.append(time.perf_counter() - start)
            print(f"round: interactive {interactive[-1]:.2f}s, parallel {parallel[-1]:.2f}s, "
                  f"intermediate {intermediate[-1]:.2f}s, marks {marks[-1]}", flush=True)
            page.close()
        browser.close()
    return {"interactive_s": interactive, "intermediate_s": intermediate, "marks_ms": marks,
            "parallel_s": parallel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(db)
        manager = DBManagerApp(ServerSettings(port=0, max_workers=16), db)
        port = manager.start()
        store = GrpcResourceStore(f"127.0.0.1:{port}", timeout=120)
        started = time.perf_counter()
        populate(store, api_pb2_grpc.DBManagerStub(store.channel), args.trials)
        print(f"set-up: {args.trials} trials in {time.perf_counter() - started:.0f}s", flush=True)
        server = ServerThread(build_app(store, TOKEN, None))
        base = server.start()
        try:
            detail = [timed_get(f"{base}/ui/api/experiments/default/big") for _ in range(args.rounds)]
            importance = [timed_get(f"{base}/ui/api/experiments/default/big/importance") for _ in range(3)]
            browser = measure(base, args.trials, args.rounds)
        finally:
            server.stop()
            store.close()
            manager.stop()
    med = statistics.median
    print(json.dumps({
        "trials": args.trials, "rounds": args.rounds,
        "page_interactive_s": round(med(browser["interactive_s"]), 2),
        "page_interactive_all_s": [round(x, 2) for x in browser["interactive_s"]],
        "experiment_json_s": round(med(detail), 3),
        "importance_s": round(med(importance), 2),
        "parallel_coordinates_after_scroll_s": round(med(browser["parallel_s"]), 2),
        "intermediate_plot_s": round(med(browser["intermediate_s"]), 2),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "browser_marks_ms": browser["marks_ms"],
    }, indent=2))


if __name__ == "__main__":
    main()
