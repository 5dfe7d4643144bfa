"""The Docker runtime: trials that name an image run in it on the local Docker engine.

Algorithm services and trials without an image stay local processes (``LocalRuntime``, which
this extends); a trial whose primary container names an ``image`` runs as a container
(``docker_jobs``). Two modes:

* ``docker``: every trial with an image runs in a container; if no engine answers, such a trial
  fails with a message saying so.
* ``auto``: the same while an engine answers; without one, trials run as local processes and
  their image is reported as not used.

An engine that does not answer is asked again at most every ``ENGINE_RETRY_SECONDS`` when a
trial starts, so an engine started after the stack is used from then on.

The engine is reached with the Docker SDK (``DOCKER_HOST`` or the default socket).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, Literal

from sextant.runtime.base import JobSpec, JobStatus
from sextant.runtime.container_plan import stack_id
from sextant.runtime.docker_jobs import DockerJobs, engine_message
from sextant.runtime.local import LocalRuntime, child_environment
from sextant.runtime.local_jobs import JobSpecError, primary_container

log = logging.getLogger("sextant.runtime.docker")

Mode = Literal["docker", "auto"]
ENGINE_RETRY_SECONDS = 10.0


def docker_client() -> Any:
    """A client for the engine of ``DOCKER_HOST`` (default: the local socket)."""
    import docker

    # Each running container's output is followed over a connection of its own: a larger pool
    # than the default 10 keeps them (the streams themselves have no read timeout).
    return docker.from_env(timeout=60, max_pool_size=64)


def trial_image(spec: JobSpec) -> str:
    """The image the trial's primary container names, or ""."""
    try:
        return str(primary_container(spec.run_spec, spec.primary_container_name).get("image") or "").strip()
    except JobSpecError:
        return ""


class DockerRuntime(LocalRuntime):
    def __init__(self, data_dir: str | os.PathLike[str], *, mode: Mode = "docker",
                 client_factory: Callable[[], Any] = docker_client, **local_options: Any):
        super().__init__(data_dir, **local_options)
        self.mode = mode
        self.client_factory = client_factory
        self.engine: Any = None
        self.engine_problem = ""
        self._asked_at = 0.0
        self.containers = DockerJobs(self.root / "jobs", None, stack=stack_id(str(self.root)),
                                     db_manager_address=self.jobs.db_manager_address,
                                     stop_grace=self.stop_grace, token=self.token, environment=child_environment)
        self._connect()

    def _connect(self) -> Any:
        """The engine's client, asking again for one that did not answer a while ago."""
        if self.engine is not None or time.monotonic() - self._asked_at < ENGINE_RETRY_SECONDS:
            return self.engine
        self._asked_at = time.monotonic()
        try:
            client = self.client_factory()
            client.ping()
        except Exception as err:  # noqa: BLE001 - any failure means "no engine" and is reported
            problem = f"no Docker engine answers ({engine_message(err)})"
            if problem != self.engine_problem:
                log.warning("%s; trials that name an image %s", problem,
                            "fail" if self.mode == "docker" else "run as local processes")
            self.engine_problem = problem
            self.jobs.image_note = f"{problem}, so it ran as a local process" if self.mode == "auto" else ""
            return None
        self.engine = self.containers.client = client
        self.engine_problem = ""
        self.jobs.image_note = ""  # only trials without an image run locally now
        return client

    def _in_container(self, namespace: str, name: str) -> bool:
        if not self.containers.holds(namespace, name):
            return False
        self._connect()  # an engine that went away and came back is used again
        return True

    # --- trial jobs ---------------------------------------------------------------------------
    def start_job(self, spec: JobSpec) -> JobStatus:
        suggestion_dir = self.suggestion_dir(spec)
        if not trial_image(spec):
            return self.jobs.start(spec, suggestion_dir=suggestion_dir)
        if self._connect() is None and self.mode == "auto":
            return self.jobs.start(spec, suggestion_dir=suggestion_dir)
        if self.engine is None:
            return self.containers.start_failed(spec, f"{self.engine_problem}; the Docker runtime cannot run "
                                                "the trial's image (start the engine, or the stack with "
                                                "--runtime local or auto)")
        return self.containers.start(spec, self._collector(spec), suggestion_dir=suggestion_dir)

    @staticmethod
    def _collector(spec: JobSpec) -> Any:
        from sextant.runtime.collector_settings import CollectorSettings

        return spec.collector or CollectorSettings(metrics=(), kind="None")

    def job_keys(self) -> list[tuple[str, str]]:
        return sorted(set(self.jobs.keys()) | set(self.containers.keys()))

    def job_status(self, namespace: str, name: str) -> JobStatus:
        if self._in_container(namespace, name):
            return self.containers.status(namespace, name)
        return self.jobs.status(namespace, name)

    def stop_job(self, namespace: str, name: str) -> None:
        if self._in_container(namespace, name):
            self.containers.stop(namespace, name)
        else:
            self.jobs.stop(namespace, name)

    def delete_job(self, namespace: str, name: str) -> None:
        if self.containers.holds(namespace, name):
            self.containers.delete(namespace, name)
            return
        self.jobs.delete(namespace, name)  # stops the process before its files go
        if self.engine is not None:
            self.containers.remove_container(namespace, name)  # one left without its files goes too

    def retire_job(self, namespace: str, name: str) -> None:
        if self._in_container(namespace, name):
            self.containers.retire(namespace, name)
        else:
            self.jobs.retire(namespace, name)

    def on_job_exit(self, listener: Callable[[str, str], None]) -> None:
        super().on_job_exit(listener)
        self.containers.exit_listeners.append(listener)

    def job_exit_notified(self, namespace: str, name: str) -> bool:
        return self.containers.notifies_exit(namespace, name) or self.jobs.notifies_exit(namespace, name)
