"""The Runtime interface: where trial jobs and algorithm services actually run.

Two implementations share it: ``local`` (OS processes with their state on disk, so that a
restarted controller re-adopts what is running) and ``kubernetes`` (Jobs, Deployments and
Services through the official client). Controllers only ever talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass
class ServiceSpec:
    """A long-running algorithm service for one experiment (Katib: Deployment + Service)."""

    name: str  # <experiment>-<algorithm>
    namespace: str
    algorithm: str
    command: list[str]  # how to run it locally (from the algorithm registry)
    image: str = ""  # how to run it on Kubernetes (from the algorithm registry)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    owner: dict[str, Any] | None = None  # owner reference of the Suggestion
    resources: dict[str, Any] | None = None
    early_stopping_command: list[str] | None = None  # second server (port 6788) if set
    early_stopping_image: str = ""
    persistent: bool = False  # resumePolicy FromVolume: keep the state directory on delete
    # Kubernetes only (additive): container args for ``image`` / ``early_stopping_image`` (the
    # registry's ``args`` with ``{port}`` filled in) and the pull policy.
    args: list[str] = field(default_factory=list)
    early_stopping_args: list[str] = field(default_factory=list)
    image_pull_policy: str = "IfNotPresent"


@dataclass(frozen=True)
class OwnedService:
    """An algorithm service the runtime holds, and the Suggestion it was started for."""

    namespace: str
    name: str
    suggestion: str


@dataclass
class ServiceStatus:
    exists: bool
    ready: bool
    address: str | None = None  # host:port of the Suggestion API
    early_stopping_address: str | None = None  # host:port of the EarlyStopping API
    message: str = ""


class JobPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    NOT_FOUND = "NotFound"


@dataclass
class JobSpec:
    """A trial's job: the rendered runSpec plus how to wrap its primary container."""

    name: str  # the trial name
    namespace: str
    run_spec: dict[str, Any]  # the rendered trial template (e.g. a batch/v1 Job)
    primary_container_name: str | None = None
    collector_args: list[str] = field(default_factory=list)  # args of services.metrics_collector
    success_condition: str | None = None
    failure_condition: str | None = None
    retain: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    owner: dict[str, Any] | None = None  # owner reference of the Trial
    env: dict[str, str] = field(default_factory=dict)  # added to the primary container


@dataclass
class JobStatus:
    phase: JobPhase
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    start_time: str | None = None
    completion_time: str | None = None


class Runtime(ABC):
    # --- algorithm services --------------------------------------------------------------
    @abstractmethod
    def ensure_service(self, spec: ServiceSpec) -> ServiceStatus:
        """Creates the service if absent (re-adopting a running one); returns its state."""

    @abstractmethod
    def service_status(self, namespace: str, name: str) -> ServiceStatus: ...

    @abstractmethod
    def delete_service(self, namespace: str, name: str, *, keep_state: bool = False) -> None: ...

    def owned_services(self) -> list[OwnedService]:
        """Every algorithm service this runtime holds (to find those whose Suggestion is gone).
        A runtime whose objects are garbage-collected by their owner may return []."""
        return []

    def job_keys(self) -> list[tuple[str, str]]:
        """(namespace, trial) of every job this runtime holds (to find those whose Trial is
        gone). A runtime whose objects are garbage-collected by their owner may return []."""
        return []

    # --- trial jobs ----------------------------------------------------------------------
    @abstractmethod
    def start_job(self, spec: JobSpec) -> JobStatus:
        """Starts the job unless it already exists (idempotent); returns its state."""

    @abstractmethod
    def job_status(self, namespace: str, name: str) -> JobStatus: ...

    @abstractmethod
    def stop_job(self, namespace: str, name: str) -> None:
        """Terminates a running job (it then reports FAILED with reason Killed)."""

    @abstractmethod
    def delete_job(self, namespace: str, name: str) -> None:
        """Removes the job and its files (no-op if absent)."""

    @abstractmethod
    def job_log_path(self, namespace: str, name: str) -> str | None:
        """Where the job's combined output can be read, if the runtime keeps it locally."""
