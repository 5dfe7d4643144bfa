"""The Runtime interface: where trial jobs and algorithm services actually run.

Three implementations share it: ``local`` (OS processes with their state on disk, so that a
restarted controller re-adopts what is running), ``docker`` (the local one, with trials that
name an image run as containers on the local Docker engine) and ``kubernetes`` (Jobs,
Deployments and Services through the official client). Controllers only ever talk to this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from sextant.runtime.collector_settings import CollectorSettings


@dataclass
class ServiceSpec:
    """A long-running algorithm service (Katib: Deployment + Service) for one experiment, or
    shared by many (then without ``owner``)."""

    name: str  # <experiment>-<algorithm>, or the shared service's name
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
    # Serves every experiment of its algorithm (no owner, no experiment/suggestion labels): the
    # suggestion controller stops it when idle, and nothing treats it as one Suggestion's.
    shared: bool = False


@dataclass(frozen=True)
class OwnedService:
    """An algorithm service the runtime holds, and the Suggestion it was started for ("" for a
    service shared by many Suggestions: started with no owner)."""

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
    # The DB manager address to give this service's early stopping (GetEarlyStoppingRules'
    # db_manager_address); None: the controller's own. Set for a service Sextant did not create
    # (Katib's, adopted at the switch), which cannot reach Sextant's DB manager as Sextant's does.
    db_manager_address: str | None = None


class JobPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    NOT_FOUND = "NotFound"


@dataclass(frozen=True)
class SuggestionVolume:
    """A directory of the algorithm service's volume mounted into a trial (Katib does this for
    an algorithm setting ``suggestion_trial_dir``; pbt hands checkpoints over through it).

    On Kubernetes the service's PersistentVolumeClaim (named as the service, created for
    resumePolicy FromVolume) is mounted at ``mount_path`` with ``sub_path``. Locally the trial's
    command, args and env values have ``mount_path`` rewritten to that directory of the service's
    state directory (``$SEXTANT_STATE_DIR``), as the metrics volume is.
    """

    service: str  # the algorithm service (<experiment>-<algorithm>) whose volume it is
    sub_path: str  # <experiment>/<trial>
    mount_path: str  # where the trial expects it (the setting's value)
    namespace: str = ""  # the service's namespace, when not the trial's (a shared local service)


@dataclass
class JobSpec:
    """A trial's job: the rendered runSpec plus how to wrap its primary container."""

    name: str  # the trial name
    namespace: str
    run_spec: dict[str, Any]  # the rendered trial template (e.g. a batch/v1 Job)
    primary_container_name: str | None = None
    # How its metrics are collected; None: not at all (the trial pushes them itself).
    collector: CollectorSettings | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    retain: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    owner: dict[str, Any] | None = None  # owner reference of the Trial
    env: dict[str, str] = field(default_factory=dict)  # added to the primary container
    # Where the user submitted the experiment from: a local process runs there unless its
    # container names a workingDir (other runtimes ignore it).
    working_dir: str | None = None
    suggestion_volume: SuggestionVolume | None = None


@dataclass
class JobStatus:
    phase: JobPhase
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    # Something the user should know about how the job runs (e.g. its image was not used).
    warning: str = ""


# Called with (namespace, trial name) when a job ends.
JobExitListener = Callable[[str, str], None]
# How a job's collector reports metrics: "direct" to the DB manager while the trial runs, or
# "spool" to files the trial controller ships when the job has ended.
MetricsReportMode = Literal["direct", "spool"]


class Runtime(ABC):
    """Everything a controller asks of the place where jobs and services run.

    Every method is abstract, so the local and the Kubernetes runtime cannot silently differ:
    a runtime without a feature says so in its implementation (e.g. returns None).
    """

    # --- algorithm services (suggestion controller) ------------------------------------------
    @abstractmethod
    def ensure_service(self, spec: ServiceSpec) -> ServiceStatus:
        """Creates the service if absent (re-adopting a running one); returns its state."""

    @abstractmethod
    def service_status(self, namespace: str, name: str) -> ServiceStatus:
        """The service's state; ``exists=False`` when there is none."""

    @abstractmethod
    def delete_service(self, namespace: str, name: str, *, keep_state: bool = False) -> None:
        """Stops and removes the service (no-op if absent); ``keep_state`` keeps its state
        directory or volume for a FromVolume restart."""

    @abstractmethod
    def owned_services(self) -> list[OwnedService]:
        """Every algorithm service this runtime holds (to find those whose Suggestion is gone).
        A runtime whose objects are garbage-collected by their owner may return []."""

    # --- trial jobs (trial controller) -------------------------------------------------------
    @abstractmethod
    def job_keys(self) -> list[tuple[str, str]]:
        """(namespace, trial) of every job this runtime holds (to find those whose Trial is
        gone). A runtime whose objects are garbage-collected by their owner may return []."""

    @abstractmethod
    def start_job(self, spec: JobSpec) -> JobStatus:
        """Starts the job unless it already exists (idempotent); returns its state."""

    @abstractmethod
    def job_status(self, namespace: str, name: str) -> JobStatus:
        """The job's phase, reason/message and times; phase NOT_FOUND when there is none."""

    @abstractmethod
    def stop_job(self, namespace: str, name: str) -> None:
        """Terminates a running job (it then reports FAILED with reason Killed)."""

    @abstractmethod
    def delete_job(self, namespace: str, name: str) -> None:
        """Removes the job and everything it left (no-op if absent): its Trial is gone."""

    @abstractmethod
    def retire_job(self, namespace: str, name: str) -> None:
        """Removes a finished job whose Trial has its final status (retainRun false). A runtime
        may keep what users still read afterwards (the local runtime keeps the output log)."""

    @abstractmethod
    def job_log_path(self, namespace: str, name: str) -> str | None:
        """Where the job's combined output can be read, if the runtime keeps it locally."""

    @property
    @abstractmethod
    def metrics_report_mode(self) -> MetricsReportMode:
        """How this runtime's collectors report: "spool" needs ``job_spool_dir``."""

    @abstractmethod
    def job_spool_dir(self, namespace: str, name: str) -> Path | None:
        """The directory where the job's collector spools metric logs for the trial controller
        to ship, or None when the collector reports directly."""

    @abstractmethod
    def on_job_exit(self, listener: JobExitListener) -> None:
        """Registers ``listener``, called when a job this process can watch ends, so the
        trial controller looks at it at once instead of at its next poll. A runtime that cannot
        watch jobs never calls it."""

    @abstractmethod
    def job_exit_notified(self, namespace: str, name: str) -> bool:
        """Whether this job's end will reach the ``on_job_exit`` listeners (then the controller
        polls it only as a safety net)."""
