"""The Docker runtime: trials that name an image run in it on the local Docker engine.

Algorithm services and trials without an image stay local processes (``LocalRuntime``, which
this extends); a trial whose primary container names an ``image`` runs as a container
(``docker_jobs``). Two modes:

* ``docker``: every trial with an image runs in a container; if no engine answers, such a trial
  fails with a message saying so.
* ``auto``: the same while an engine answers (asked once, when the runtime starts); without one,
  trials run as local processes and their image is reported as not used.

The engine is reached with the Docker SDK (``DOCKER_HOST`` or the default socket).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Literal

from sextant.runtime.base import JobSpec, JobStatus
from sextant.runtime.container_plan import stack_id
from sextant.runtime.docker_jobs import DockerJobs, engine_message
from sextant.runtime.local import LocalRuntime
from sextant.runtime.local_jobs import JobSpecError, primary_container

log = logging.getLogger("sextant.runtime.docker")

Mode = Literal["docker", "auto"]


def docker_client() -> Any:
    """A client for the engine of ``DOCKER_HOST`` (default: the local socket)."""
    import docker

    return docker.from_env(timeout=60)


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
        self.engine_problem = ""
        client: Any = None
        try:
            client = client_factory()
            client.ping()
        except Exception as err:  # noqa: BLE001 - any failure means "no engine" and is reported
            self.engine_problem = f"no Docker engine answers ({engine_message(err)})"
            client = None
            log.warning("%s; trials that name an image %s", self.engine_problem,
                        "fail" if mode == "docker" else "run as local processes")
        self.engine = client
        self.containers = DockerJobs(self.root / "jobs", client, stack=stack_id(str(self.root)),
                                     db_manager_address=self.jobs.db_manager_address,
                                     stop_grace=self.stop_grace, token=self.token)
        if self.engine is None and mode == "auto":
            self.jobs.image_note = f"{self.engine_problem}, so it ran as a local process"

    def _in_container(self, namespace: str, name: str) -> bool:
        return self.containers.holds(namespace, name)

    # --- trial jobs ---------------------------------------------------------------------------
    def start_job(self, spec: JobSpec) -> JobStatus:
        if not trial_image(spec) or (self.engine is None and self.mode == "auto"):
            return self.jobs.start(spec)
        if self.engine is None:
            return self.containers.start_failed(spec, f"{self.engine_problem}; the Docker runtime cannot run "
                                                "the trial's image (start the engine, or the stack with "
                                                "--runtime local or auto)")
        return self.containers.start(spec, self._collector(spec))

    @staticmethod
    def _collector(spec: JobSpec) -> Any:
        from sextant.runtime.collector_spec import CollectorSpec

        return spec.collector or CollectorSpec(metrics=(), kind="None")

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
        if self.engine is not None:
            self.containers.delete(namespace, name)  # a container left without its files goes too
        self.jobs.delete(namespace, name)

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
