"""The UI's JSON endpoints (``/ui/api/...``): derived data the Kubernetes API does not serve in
one request — an experiment with all its trials as plot-ready columns, parameter importance,
observation logs, trial logs, validation with field paths and line numbers, the bundled
examples and the algorithm services.

The store is synchronous (a gRPC client), so every call to it runs in a worker thread and the
event loop stays free for the other requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from services.web_ui import local_files, observation_reader, summary
from services.web_ui.yaml_lines import locate_errors
from sextant import objectives
from sextant.resources.admission import admit_experiment
from sextant.resources.loading import load_documents
from sextant.resources.models import EXPERIMENT_LABEL, Experiment, Trial
from sextant.store.interface import AlreadyExists, Invalid, NotFound, ResourceStore, StoreError, Unavailable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 2 * 1024 * 1024


def _store(request: web.Request) -> ResourceStore:
    return cast(ResourceStore, request.app["sextant.store"])


def _data_dir(request: web.Request) -> Path | None:
    value = request.app.get("sextant.data_dir")
    return Path(value) if value else None


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"message": message, **extra}, status=status)


def guarded(handler: Handler) -> Handler:
    """Store failures as JSON with the right status, instead of a 500 page."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except NotFound as err:
            return _error(404, str(err))
        except AlreadyExists as err:
            return _error(409, str(err))
        except Invalid as err:
            return _error(422, "invalid", errors=err.errors)
        except Unavailable as err:
            return _error(503, str(err))
        except StoreError as err:
            return _error(500, str(err))
        except ValueError as err:  # a bad name in the path
            return _error(400, str(err))
    return wrapped


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


# --- experiments --------------------------------------------------------------------------


async def list_experiments(request: web.Request) -> web.Response:
    namespace = request.query.get("namespace", "")
    items, version = await _run(_store(request).list, "Experiment", namespace)
    rows = [summary.experiment_summary(e) for e in items]
    rows.sort(key=lambda r: (r["created"] or "", r["namespace"], r["name"]), reverse=True)
    namespaces = sorted({r["namespace"] for r in rows} | {"default"})
    return web.json_response({"items": rows, "namespaces": namespaces, "resourceVersion": version})


def _experiment_and_trials(store: ResourceStore, ns: str, name: str) -> tuple[Experiment, list[dict[str, Any]]]:
    """The experiment (a model) and its trials as documents: building thousands of trial models
    costs more than everything else the experiment page's request does."""
    experiment = cast(Experiment, store.get("Experiment", ns, name))
    labels = {EXPERIMENT_LABEL: name}
    docs, _ = store.list_documents("Trial", ns, labels)
    return experiment, docs


async def get_experiment(request: web.Request) -> web.Response:
    ns, name = request.match_info["namespace"], request.match_info["name"]

    def detail() -> str:  # the columns and their JSON text (300 kB for 2,000 trials) off the event loop
        return json.dumps(summary.experiment_detail(*_experiment_and_trials(_store(request), ns, name)))

    return web.Response(text=await _run(detail), content_type="application/json")


async def delete_experiment(request: web.Request) -> web.Response:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    deleted = await _run(_store(request).delete, "Experiment", ns, name)
    return web.json_response({"deleted": [f"{d.kind}/{d.metadata.name}" for d in deleted]})


async def importance(request: web.Request) -> web.Response:
    ns, name = request.match_info["namespace"], request.match_info["name"]

    def compute() -> dict[str, Any]:
        from services.web_ui.importance import parameter_importance  # Optuna loads on first use

        experiment, trials = _experiment_and_trials(_store(request), ns, name)
        return parameter_importance(experiment, summary.trials_table(experiment, trials))

    return web.json_response(await _run(compute))


async def pareto_front(request: web.Request) -> web.Response:
    """Every trial's objective values and the Pareto-optimal ones (the Pareto-front plot)."""
    ns, name = request.match_info["namespace"], request.match_info["name"]

    def collect() -> dict[str, Any]:
        from services.web_ui.pareto_plot import pareto_data

        store = _store(request)
        experiment = cast(Experiment, store.get("Experiment", ns, name))
        if objectives.declared(experiment.metadata.annotations) is None:
            return pareto_data(experiment, [])  # single objective: no need to read the trials
        trials, _ = store.list("Trial", ns, {EXPERIMENT_LABEL: name})
        return pareto_data(experiment, cast("list[Trial]", trials))

    return web.json_response(await _run(collect))


async def intermediate(request: web.Request) -> web.Response:
    """Each trial's objective metric over its reports (the intermediate-values plot)."""
    ns, name = request.match_info["namespace"], request.match_info["name"]
    read = observation_reader.reader(request.app)
    if read is None:
        return _error(503, "observation logs are not reachable from this server")

    def collect() -> dict[str, Any]:
        experiment, trials = _experiment_and_trials(_store(request), ns, name)
        metric = experiment.spec.objective.objective_metric_name if experiment.spec.objective else ""
        table = summary.trials_table(experiment, trials)
        values = observation_reader.many(read, table["names"], metric)
        return {"metric": metric, "names": table["names"], "status": table["status"],
                "values": [values[n] for n in table["names"]]}

    return web.json_response(await _run(collect))


# --- trials ---------------------------------------------------------------------------------


async def get_trial(request: web.Request) -> web.Response:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    trial = await _run(_store(request).get, "Trial", ns, name)
    detail = summary.trial_detail(trial)
    read = observation_reader.reader(request.app)
    detail["observationLog"] = observation_reader.series(await _run(read, name, "")) if read else None
    return web.json_response(detail)


async def trial_log(request: web.Request) -> web.Response:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    try:
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        return _error(400, "offset: must be an integer")
    return web.json_response(await _run(local_files.trial_log, _data_dir(request), ns, name, offset))


# --- create -------------------------------------------------------------------------------


async def _admit(request: web.Request) -> tuple[Experiment | None, list[dict[str, Any]], str]:
    """The admitted experiment, or the errors (each with path, message and line)."""
    if (request.content_length or 0) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length or 0)
    body = await request.json()
    text = str(body.get("yaml", ""))
    namespace = str(body.get("namespace") or "default")

    def admit() -> Experiment:
        docs = load_documents(text)
        if len(docs) != 1:
            raise Invalid([f"document: paste exactly one Experiment (found {len(docs)} documents)"])
        doc = docs[0]
        meta = dict(doc.get("metadata") or {}) if isinstance(doc.get("metadata"), dict) else {}
        meta.setdefault("namespace", namespace)
        doc["metadata"] = meta
        doc.pop("status", None)
        return admit_experiment(doc)

    try:
        return await _run(admit), [], text
    except Invalid as err:
        return None, locate_errors(text, err.errors), text


async def validate(request: web.Request) -> web.Response:
    experiment, errors, _ = await _admit(request)
    if experiment is None:
        return web.json_response({"valid": False, "errors": errors})
    return web.json_response({"valid": True, "errors": [], "namespace": experiment.metadata.namespace,
                              "name": experiment.metadata.name})


async def create_experiment(request: web.Request) -> web.Response:
    experiment, errors, _ = await _admit(request)
    if experiment is None:
        return web.json_response({"valid": False, "errors": errors}, status=422)
    created = await _run(_store(request).create, experiment)
    return web.json_response({"namespace": created.metadata.namespace, "name": created.metadata.name},
                             status=201)


async def examples(_request: web.Request) -> web.Response:
    return web.json_response({"items": local_files.list_examples()})


async def example(request: web.Request) -> web.Response:
    text = local_files.read_example(f"{request.match_info['version']}/{request.match_info['file']}")
    if text is None:
        return _error(404, "no such example")
    return web.Response(text=text, content_type="text/plain")


# --- services -----------------------------------------------------------------------------


async def services(request: web.Request) -> web.Response:
    data_dir = _data_dir(request)
    algorithms = await _run(local_files.algorithm_services, data_dir)
    if any(a["shared"] for a in algorithms):  # which experiments use it now: the store knows
        experiments, _ = await _run(_store(request).list, "Experiment", "")
        users = summary.shared_service_users(experiments)
        for a in algorithms:
            if a["shared"]:
                a["experiments"] = users.get(a["name"], [])
    stack = await _run(local_files.stack_services, data_dir)
    return web.json_response({"algorithms": algorithms, "stack": stack})


def add_routes(app: web.Application) -> None:
    g = guarded
    app.router.add_get("/ui/api/experiments", g(list_experiments))
    app.router.add_post("/ui/api/experiments", g(create_experiment))
    app.router.add_post("/ui/api/validate", g(validate))
    app.router.add_get("/ui/api/experiments/{namespace}/{name}", g(get_experiment))
    app.router.add_delete("/ui/api/experiments/{namespace}/{name}", g(delete_experiment))
    app.router.add_get("/ui/api/experiments/{namespace}/{name}/importance", g(importance))
    app.router.add_get("/ui/api/experiments/{namespace}/{name}/pareto", g(pareto_front))
    app.router.add_get("/ui/api/experiments/{namespace}/{name}/intermediate", g(intermediate))
    app.router.add_get("/ui/api/trials/{namespace}/{name}", g(get_trial))
    app.router.add_get("/ui/api/trials/{namespace}/{name}/log", g(trial_log))
    app.router.add_get("/ui/api/examples", g(examples))
    app.router.add_get("/ui/api/examples/{version}/{file}", g(example))
    app.router.add_get("/ui/api/services", g(services))
