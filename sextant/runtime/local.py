"""The local Runtime: algorithm services and trial jobs as OS processes on this machine.

Layout under the data directory (names are validated as Kubernetes names first, so nothing
can escape it)::

    services/<ns>/<name>/state.json   pid + start time + address (+ early-stopping process)
    services/<ns>/<name>/log          the service's combined stdout/stderr
    services/<ns>/<name>/data/        the algorithm's own state ($SEXTANT_STATE_DIR, "{state_dir}")
    services/<ns>/<name>/lock         flock held while (re)starting, so two controllers never
                                      start the same service twice
    jobs/<ns>/<trial>/...             see ``local_jobs.py``

Every process is started without a shell in its own session. A controller that restarts finds
the state file, checks the process is still the one it started (pid + start time) and
re-adopts it instead of starting another.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sextant.channel_cache import ChannelCache
from sextant.ports import free_port
from sextant.runtime import process
from sextant.runtime.base import (
    JobExitListener,
    JobSpec,
    JobStatus,
    MetricsReportMode,
    OwnedService,
    Runtime,
    ServiceSpec,
    ServiceStatus,
)
from sextant.runtime.local_jobs import LocalJobs

SUGGESTION_HEALTH_NAME = "manager.v1beta1.Suggestion"
# The directory that holds the ``sextant`` and ``services`` packages: child processes started
# with ``python -m services...`` need it on their path whatever their working directory is.
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment + ``extra``, with the project root on PYTHONPATH."""
    env = dict(os.environ)
    env.update(extra or {})
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if PROJECT_ROOT not in paths:
        env["PYTHONPATH"] = os.pathsep.join([PROJECT_ROOT, *paths])
    return env


def expand_command(argv: Sequence[str], **values: str) -> list[str]:
    """Replaces ``{python}``, ``{port}``, ``{state_dir}`` placeholders inside argv items."""
    values = {"python": sys.executable, **values}
    out = []
    for item in argv:
        for key, value in values.items():
            item = item.replace("{" + key + "}", value)
        out.append(item)
    return out


class LocalRuntime(Runtime):
    def __init__(self, data_dir: str | os.PathLike[str], *, token: str | None = None,
                 host: str = "127.0.0.1", health_timeout: float = 1.0, stop_grace: float = 5.0,
                 db_manager_address: str | None = None, native_wrapper: bool = True):
        self.root = Path(data_dir).resolve()
        self.token = token
        self.host = host
        self.health_timeout = health_timeout
        self.stop_grace = stop_grace
        self._channels = ChannelCache(token)
        self.health_cache_seconds = 5.0
        self._serving: dict[tuple[Any, ...], float] = {}  # (address, processes) → SERVING answer valid until
        self.jobs = LocalJobs(self.root / "jobs", stop_grace=stop_grace,
                              db_manager_address=db_manager_address, environment=child_environment,
                              native_wrapper=native_wrapper)

    # --- algorithm services ----------------------------------------------------------------
    def _service_dir(self, namespace: str, name: str) -> Path:
        process.validate_name(namespace, "namespace")
        process.validate_name(name, "name")
        return self.root / "services" / namespace / name

    @contextmanager
    def _locked(self, directory: Path) -> Iterator[None]:
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def ensure_service(self, spec: ServiceSpec) -> ServiceStatus:
        directory = self._service_dir(spec.namespace, spec.name)
        with self._locked(directory):
            state = process.read_json(directory / "state.json") or {}
            main = process.ProcessId.from_dict(state.get("main"))
            early = process.ProcessId.from_dict(state.get("early_stopping"))
            wants_es = bool(spec.early_stopping_command)
            if process.is_alive(main) and (not wants_es or process.is_alive(early)):
                return self._status(state)
            # Half-alive (one of the two died) or gone: start both afresh.
            process.terminate(main, self.stop_grace)
            process.terminate(early, self.stop_grace)
            data = directory / "data"
            data.mkdir(exist_ok=True)
            env = child_environment({**spec.env, "SEXTANT_STATE_DIR": str(data)})
            env.pop("SEXTANT_METRICS_PORT", None)
            port = free_port(self.host)
            # Sextant's algorithm servers read SEXTANT_METRICS_PORT and serve Prometheus metrics
            # there (the web UI shows their GetSuggestions count and latency); others ignore it.
            metrics_port = free_port(self.host)
            argv = expand_command(spec.command, port=str(port), state_dir=str(data))
            state = {
                "namespace": spec.namespace, "name": spec.name, "algorithm": spec.algorithm,
                "suggestion": "" if spec.shared else (spec.owner or {}).get("name", ""),
                "command": argv, "address": f"{self.host}:{port}", "persistent": spec.persistent,
                "metrics_address": f"{self.host}:{metrics_port}",
                "restarts": state["restarts"] + 1 if "restarts" in state else 0,
                "created": time.time(),
                "main": process.spawn(argv, log_path=directory / "log",
                                      env={**env, "SEXTANT_METRICS_PORT": str(metrics_port)}).to_dict(),
            }
            if wants_es:
                es_port = free_port(self.host)
                es_argv = expand_command(spec.early_stopping_command or [], port=str(es_port),
                                         state_dir=str(data))
                state["early_stopping_command"] = es_argv
                state["early_stopping_address"] = f"{self.host}:{es_port}"
                state["early_stopping"] = process.spawn(
                    es_argv, log_path=directory / "early-stopping.log", env=env).to_dict()
            process.write_json(directory / "state.json", state)
            return self._status(state)

    def service_status(self, namespace: str, name: str) -> ServiceStatus:
        state = process.read_json(self._service_dir(namespace, name) / "state.json")
        if state is None:
            return ServiceStatus(exists=False, ready=False, message="service not found")
        return self._status(state)

    def _status(self, state: dict[str, Any]) -> ServiceStatus:
        main = process.ProcessId.from_dict(state.get("main"))
        early = process.ProcessId.from_dict(state.get("early_stopping"))
        address, es_address = state.get("address"), state.get("early_stopping_address")
        if not process.is_alive(main):
            return ServiceStatus(exists=False, ready=False, address=address,
                                 early_stopping_address=es_address,
                                 message="service process is not running (see its log)")
        if es_address and not process.is_alive(early):
            return ServiceStatus(exists=False, ready=False, address=address,
                                 early_stopping_address=es_address,
                                 message="early-stopping process is not running (see its log)")
        identity = (address, main, early)
        if not address:
            return ServiceStatus(exists=False, ready=False, message="service state has no address")
        if self._serving.get(identity, 0.0) > time.monotonic():
            ready, message = True, "serving"
        else:
            ready, message = self._healthy(address, SUGGESTION_HEALTH_NAME)
            if ready and es_address:
                ready, message = self._healthy(es_address, None)
            if ready:
                # The suggestion controller asks on every pass; while the very same processes
                # live, a recent SERVING answer stands (a call that fails is retried anyway).
                self._serving[identity] = time.monotonic() + self.health_cache_seconds
        return ServiceStatus(exists=True, ready=ready, address=address,
                             early_stopping_address=es_address, message=message)

    def _healthy(self, address: str, service: str | None) -> tuple[bool, str]:
        """gRPC health; ``service=None`` only asks that the server answers at all."""
        # Cached: the suggestion controller checks health on every pass.
        channel = self._channels.get(address)
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service or ""), timeout=self.health_timeout)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return True, "serving"
            return service is None, f"health of {service!r} at {address}: not serving"
        except grpc.RpcError as err:
            if service is None and err.code() != grpc.StatusCode.UNAVAILABLE:
                return True, "answering"
            return False, f"health of {service or 'server'} at {address}: {err.code().name}"

    def delete_service(self, namespace: str, name: str, *, keep_state: bool = False) -> None:
        directory = self._service_dir(namespace, name)
        if not directory.exists():
            return
        with self._locked(directory):
            state = process.read_json(directory / "state.json") or {}
            process.terminate(process.ProcessId.from_dict(state.get("early_stopping")), self.stop_grace)
            process.terminate(process.ProcessId.from_dict(state.get("main")), self.stop_grace)
            (directory / "state.json").unlink(missing_ok=True)
        if not keep_state:
            shutil.rmtree(directory, ignore_errors=True)

    def owned_services(self) -> list[OwnedService]:
        out = []
        for state_file in sorted((self.root / "services").glob("*/*/state.json")):
            state = process.read_json(state_file) or {}
            namespace, name = state_file.parent.parent.name, state_file.parent.name
            # "" for a service shared by many Suggestions (started without an owner).
            suggestion = state["suggestion"] if "suggestion" in state else \
                name.removesuffix(f"-{state.get('algorithm', '')}")
            out.append(OwnedService(namespace, name, suggestion))
        return out

    # --- trial jobs ---------------------------------------------------------------------------
    def job_keys(self) -> list[tuple[str, str]]:
        return self.jobs.keys()

    def start_job(self, spec: JobSpec) -> JobStatus:
        return self.jobs.start(spec, suggestion_dir=self.suggestion_dir(spec))

    def suggestion_dir(self, spec: JobSpec) -> Path | None:
        """The directory standing for ``spec.suggestion_volume``: the trial's part of the
        service's ``$SEXTANT_STATE_DIR`` (Katib: the suggestion's volume at /opt/katib/data)."""
        volume = spec.suggestion_volume
        if volume is None:
            return None
        parts = volume.sub_path.split("/")
        for part in parts:
            process.validate_name(part, "suggestion volume sub path")
        return self._service_dir(volume.namespace or spec.namespace, volume.service).joinpath("data", *parts)

    def job_status(self, namespace: str, name: str) -> JobStatus:
        return self.jobs.status(namespace, name)

    def stop_job(self, namespace: str, name: str) -> None:
        self.jobs.stop(namespace, name)

    def delete_job(self, namespace: str, name: str) -> None:
        self.jobs.delete(namespace, name)

    def retire_job(self, namespace: str, name: str) -> None:
        """A finished job's files go, its output log stays (see ``LocalJobs.retire``)."""
        self.jobs.retire(namespace, name)

    def job_log_path(self, namespace: str, name: str) -> str | None:
        return self.jobs.log_path(namespace, name)

    @property
    def metrics_report_mode(self) -> MetricsReportMode:
        # Collectors of local jobs write metric logs to the job's spool; the trial controller
        # ships them to the DB manager when the job ends (one gRPC client less per trial).
        return "spool"

    def job_spool_dir(self, namespace: str, name: str) -> Path:
        return self.jobs.spool_dir(namespace, name)

    def on_job_exit(self, listener: JobExitListener) -> None:
        """``listener(namespace, name)`` is called when a job started by this process exits."""
        self.jobs.exit_listeners.append(listener)

    def job_exit_notified(self, namespace: str, name: str) -> bool:
        return self.jobs.notifies_exit(namespace, name)
