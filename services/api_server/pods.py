"""Read-only core v1 Pods for trials that ran as local processes, and their logs
(``pods/log`` with ``follow`` and ``tailLines``), so ``kubectl logs -l
katib.kubeflow.org/trial=…`` and Katib's ``get_job_logs`` show a trial's output.

A trial's pod is named after the trial and carries the labels Katib's pod webhook gives a trial
pod (``katib.kubeflow.org/trial``, ``katib.kubeflow.org/experiment``, the trial's own labels and
primary-pod labels). Its log is the local job's ``output.log``, or the copy kept after the job
directory was removed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from services.api_server.errors import bad_request, not_found
from services.api_server.selectors import POD_FIELDS, equality_pairs, selector
from sextant.katib import trial_status
from sextant.resources.models import EXPERIMENT_LABEL, TRIAL_LABEL, to_doc
from sextant.runtime.local_jobs import trial_log_archive
from sextant.store.interface import NotFound

COLLECTOR_CONTAINER = "metrics-logger-and-collector"
DEFAULT_CONTAINER = "training-container"
# A trial's current condition → the phase of its (pretend) pod.
_PHASES = {trial_status.SUCCEEDED: "Succeeded", trial_status.FAILED: "Failed", trial_status.KILLED: "Failed",
           trial_status.EARLY_STOPPED: "Succeeded", trial_status.METRICS_UNAVAILABLE: "Succeeded",
           trial_status.RUNNING: "Running"}


def _job_dir(data_dir: Path, namespace: str, trial: str) -> Path:
    return data_dir / "jobs" / namespace / trial


def log_paths(data_dir: Path, namespace: str, trial: str) -> tuple[Path, Path, Path]:
    """(live log, exit record, kept copy) of a trial's local job."""
    directory = _job_dir(data_dir, namespace, trial)
    return directory / "output.log", directory / "exit.json", trial_log_archive(data_dir) / namespace / f"{trial}.log"


def _started(trial: dict[str, Any], data_dir: Path | None) -> bool:
    conditions = {c.get("type") for c in (trial.get("status") or {}).get("conditions") or []}
    if conditions & set(_PHASES):
        return True
    meta = trial["metadata"]
    return bool(data_dir and _job_dir(data_dir, meta["namespace"], meta["name"]).exists())


def pod_doc(trial: dict[str, Any]) -> dict[str, Any]:
    meta, spec, status = trial["metadata"], trial.get("spec") or {}, trial.get("status") or {}
    labels = {**(meta.get("labels") or {}), **(spec.get("labels") or {}), **(spec.get("primaryPodLabels") or {}),
              TRIAL_LABEL: meta["name"]}
    experiment = next((o["name"] for o in meta.get("ownerReferences") or [] if o.get("kind") == "Experiment"), "")
    if experiment:
        labels.setdefault(EXPERIMENT_LABEL, experiment)
    containers = [{"name": spec.get("primaryContainerName") or DEFAULT_CONTAINER}]
    collector = ((spec.get("metricsCollector") or {}).get("collector") or {}).get("kind", "StdOut")
    if collector in ("StdOut", "File", "TensorFlowEvent"):
        containers.append({"name": COLLECTOR_CONTAINER})
    phase = "Pending"
    for cond in reversed(status.get("conditions") or []):
        if cond.get("status") == "True" and cond.get("type") in _PHASES:
            phase = _PHASES[cond["type"]]
            break
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": f"pod-{meta.get('uid', '')}",
                         "resourceVersion": meta.get("resourceVersion", ""), "labels": labels,
                         "creationTimestamp": status.get("startTime") or meta.get("creationTimestamp"),
                         "ownerReferences": [{"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
                                              "name": meta["name"], "uid": meta.get("uid", ""),
                                              "controller": True}]},
            "spec": {"containers": containers, "restartPolicy": "Never"},
            "status": {"phase": phase, "startTime": status.get("startTime")}}


async def list_docs(request: web.Request, namespace: str) -> tuple[list[dict[str, Any]], int]:
    from services.api_server.resources import call

    sel = selector(request.query.get("labelSelector"), request.query.get("fieldSelector"), POD_FIELDS)
    pairs = equality_pairs(sel.labels)
    trial_store = request.app["sextant.store"]
    if TRIAL_LABEL in pairs and namespace:
        try:
            trials = [await call(request, trial_store.get, "Trial", namespace, pairs[TRIAL_LABEL])]
        except NotFound:
            trials = []
        version = 0
    else:
        store_pairs = {k: v for k, v in pairs.items() if k == EXPERIMENT_LABEL}
        trials, version = await call(request, trial_store.list, "Trial", namespace, store_pairs)
    data_dir = request.app["sextant.data_dir"]
    docs = [pod_doc(to_doc(t)) for t in trials]
    docs = [d for d, t in zip(docs, trials, strict=True) if _started(to_doc(t), data_dir) and sel.matches(d)]
    docs.sort(key=lambda d: (d["metadata"]["namespace"], d["metadata"]["name"]))
    return docs, version


async def get(request: web.Request, namespace: str, name: str) -> dict[str, Any]:
    from services.api_server.resources import call

    try:
        trial = await call(request, request.app["sextant.store"].get, "Trial", namespace, name)
    except NotFound:
        raise not_found("pods", "", name) from None
    doc = to_doc(trial)
    if not _started(doc, request.app["sextant.data_dir"]):
        raise not_found("pods", "", name)
    return pod_doc(doc)


def _tail(data: bytes, lines: int | None) -> bytes:
    if lines is None:
        return data
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


async def log(request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    pod = await get(request, namespace, name)
    container = request.query.get("container")
    names = [c["name"] for c in pod["spec"]["containers"]]
    if container and container not in names:
        raise bad_request(f"container {container} is not valid for pod {name}")
    tail_text = request.query.get("tailLines")
    try:
        tail = int(tail_text) if tail_text else None
    except ValueError:
        raise bad_request(f"tailLines: must be an integer, got {tail_text!r}") from None
    data_dir = request.app["sextant.data_dir"]
    if data_dir is None:
        raise not_found("pods", "", name)
    live, done, kept = log_paths(data_dir, namespace, name)
    follow = request.query.get("follow", "").lower() in ("true", "1")
    if not live.exists():
        body = kept.read_bytes() if kept.exists() else b""
        return web.Response(body=_tail(body, tail), content_type="text/plain")
    if not follow:
        return web.Response(body=_tail(live.read_bytes(), tail), content_type="text/plain")
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await _follow(response, live, done, kept, tail)
    await response.write_eof()
    return response


async def _follow(response: web.StreamResponse, live: Path, done: Path, kept: Path, tail: int | None) -> None:
    """Writes the log as it grows until the job has ended and everything is written."""
    offset = 0
    first = True
    while True:
        finished = done.exists() or not live.parent.exists()  # checked first: the last bytes are not missed
        try:
            with open(live, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            if offset == 0 and kept.exists():
                await response.write(_tail(kept.read_bytes(), tail))
            return
        if chunk:
            offset += len(chunk)
            await response.write(_tail(chunk, tail) if first else chunk)
        first = False
        if finished and not chunk:
            return
        if not chunk:
            await asyncio.sleep(0.2)
