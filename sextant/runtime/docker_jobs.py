"""Trial jobs as containers on the local Docker engine (the Docker runtime's half that runs trials).

Each trial's primary container runs in its own image (``container_plan``) under a fixed name,
with labels naming the stack, the namespace and the trial. The engine is the record of what
runs: a controller that restarts finds its running containers by name and label and adopts
them; a create that races an earlier one is refused by the engine (the name is taken), so a
trial never runs twice.

The metrics collector stays outside the trial's image, in the trial controller: once the
container has exited, its output (StdOut), the metrics file (File) or the event directory
(TensorFlowEvent), both on a directory bind-mounted from the host, are parsed into the job's
spool exactly as the local runtime does after a job ends (``after_exit.collect_finished``).

Files on the host, per job (the same layout as local jobs, so logs and spools are read alike)::

    jobs/<ns>/<trial>/job.json         runtime "docker", container name, image, start time
    jobs/<ns>/<trial>/output.log       the container's output: followed while it runs, written
                                       whole when it ends
    jobs/<ns>/<trial>/exit.json        exit code, reason, message (written once collected)
    jobs/<ns>/<trial>/stopped          marker: stop was called (reason Killed)
    jobs/<ns>/<trial>/spool/           metric logs for the trial controller to ship
    jobs/<ns>/<trial>/volumes/metrics/ bind-mounted at the collector's directory in the container

Early-stopping rules and the PrometheusMetric and Custom collectors need a collector watching
the trial while it runs. For those, the container is created and then started by the metrics
collector on the host (``python -m services.metrics_collector ... -- docker start --attach
NAME``, the docker command-line client with an argv, never a shell): it reads the container's
output as a local trial's, polls the bind-mounted directory or the scrape URL (the container
shares the host's network), applies the rules, and stops the container (the client forwards
the signal) when they are met. Like a local job's wrapper it runs in its own session, so it
outlives a restart of the trial controller, and writes ``exit.json`` itself.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sextant import job_reasons
from sextant.metric_lines import MetricsSourceError
from sextant.runtime import metrics_volume, process
from sextant.runtime.after_exit import collect_finished
from sextant.runtime.base import JobPhase, JobSpec, JobStatus
from sextant.runtime.collector_settings import CollectorSettings
from sextant.runtime.container_plan import (
    NAMESPACE_LABEL,
    STACK_LABEL,
    TRIAL_LABEL,
    ContainerSpecError,
    container_name,
    plan_container,
)
from sextant.runtime.local_jobs import JobSpecError, announce_exit, primary_container, trial_log_archive
from sextant.timestamps import now_rfc3339_micro

log = logging.getLogger("sextant.runtime.docker")

RUNTIME_NAME = "docker"
# Collector kinds read once the container has ended; the others need a live collector.
AFTER_EXIT_KINDS = ("StdOut", "File", "TensorFlowEvent", "Push", "None")
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
KATIB_TRIAL_LABEL = "katib.kubeflow.org/trial"


class ImageUnavailable(RuntimeError):
    """The trial's image is not on the engine and cannot be pulled (the message says why)."""


def needs_live_collector(collector: CollectorSettings) -> bool:
    """Whether the collector must watch the running container (not only read it afterwards)."""
    return bool(collector.stop_rules) or collector.kind not in AFTER_EXIT_KINDS


def unsupported_collection(collector: CollectorSettings, docker_cli: str | None) -> str | None:
    """Why ``collector`` cannot collect from a container here, or None when it can."""
    if needs_live_collector(collector) and docker_cli is None:
        what = "early-stopping rules need" if collector.stop_rules else f"the {collector.kind} collector needs"
        return (f"{what} the docker command-line client on PATH (the collector attaches to the "
                "container with it); install it, or start the stack with --runtime local")
    return None


def engine_message(err: Exception) -> str:
    """A short account of an engine error (the SDK's text can hold a whole HTTP response)."""
    explanation = getattr(err, "explanation", None)
    text = str(explanation or err).strip()
    return text if len(text) <= 400 else text[:400] + "..."


class DockerJobs:
    """Start, watch, stop and remove trial containers; ``client`` is a ``docker.DockerClient``."""

    def __init__(self, root: Path, client: Any | None, *, stack: str, db_manager_address: str | None = None,
                 stop_grace: float = 5.0, token: str | None = None,
                 environment: Callable[[Mapping[str, str]], dict[str, str]] | None = None):
        self.root = root
        self.client = client
        self.stack = stack
        self.db_manager_address = db_manager_address
        self.stop_grace = stop_grace
        self.token = token
        # The live collector's environment (the local runtime's: the project on PYTHONPATH).
        self.environment = environment or (lambda extra: {**os.environ, **extra})
        self.docker_cli = shutil.which("docker")
        self.exit_listeners: list[Callable[[str, str], None]] = []
        self._followed: set[tuple[str, str]] = set()  # containers whose output a thread follows
        self._ended: dict[tuple[str, str], JobStatus] = {}
        self._lock = threading.Lock()

    # --- names and files ---------------------------------------------------------------------
    def dir(self, namespace: str, name: str) -> Path:
        process.validate_name(namespace, "namespace")
        process.validate_name(name, "name")
        return self.root / namespace / name

    def name(self, namespace: str, trial: str) -> str:
        return container_name(self.stack, namespace, trial)

    def spool_dir(self, namespace: str, name: str) -> Path:
        return self.dir(namespace, name) / "spool"

    def holds(self, namespace: str, name: str) -> bool:
        """Whether this job is (or was being) started as a container."""
        record = process.read_json(self.dir(namespace, name) / "job.json")
        return record is not None and record.get("runtime") == RUNTIME_NAME

    def _engine(self) -> Any:
        import docker.errors

        if self.client is None:
            raise docker.errors.DockerException("no Docker engine answers")
        return self.client

    def _container(self, namespace: str, name: str) -> Any | None:
        import docker.errors

        try:
            return self._engine().containers.get(self.name(namespace, name))
        except docker.errors.NotFound:
            return None

    # --- start -------------------------------------------------------------------------------
    def start(self, spec: JobSpec, collector: CollectorSettings, suggestion_dir: Path | None = None) -> JobStatus:
        """``suggestion_dir``: the host directory bind-mounted at ``spec.suggestion_volume``'s path."""
        directory = self.dir(spec.namespace, spec.name)
        if (directory / "job.json").exists():
            return self.status(spec.namespace, spec.name)  # idempotent
        directory.mkdir(parents=True, exist_ok=True)
        name = self.name(spec.namespace, spec.name)
        record: dict[str, Any] = {"runtime": RUNTIME_NAME, "namespace": spec.namespace, "name": spec.name,
                                  "container": name, "retain": spec.retain, "created": now_rfc3339_micro(),
                                  "kind": spec.run_spec.get("kind")}
        try:
            container = primary_container(spec.run_spec, spec.primary_container_name)
            problem = unsupported_collection(collector, self.docker_cli)
            if problem:
                raise JobSpecError(problem)
            binds: dict[str, str] = {}
            volume = metrics_volume.local_volume(collector, directory)
            mount = metrics_volume.mount_path(collector)
            if volume is not None and mount is not None:
                local = directory.joinpath(*metrics_volume.VOLUME_SUBDIR)
                local.chmod(0o777)  # the image may run as any user
                binds[str(local)] = mount
                collector = collector.with_paths(volume)  # read on the host
            if suggestion_dir is not None and spec.suggestion_volume is not None:
                suggestion_dir.mkdir(parents=True, exist_ok=True)
                suggestion_dir.chmod(0o777)  # as the metrics directory: any user in the image
                binds[str(suggestion_dir)] = posixpath.normpath(spec.suggestion_volume.mount_path)
            env = {**spec.env, "KATIB_TRIAL_NAME": spec.name,
                   "SEXTANT_DB_MANAGER": collector.db_manager_for_trial(dict(os.environ))}
            if collector.kind == "Push" and self.token:
                env["SEXTANT_TOKEN"] = self.token  # the trial reports its own metrics
            labels = {STACK_LABEL: self.stack, NAMESPACE_LABEL: spec.namespace, TRIAL_LABEL: spec.name,
                      KATIB_TRIAL_LABEL: spec.name}
            if spec.labels.get(EXPERIMENT_LABEL):
                labels[EXPERIMENT_LABEL] = spec.labels[EXPERIMENT_LABEL]
            plan = plan_container(container, name=name, env=env, labels=labels, binds=binds)
        except (JobSpecError, ContainerSpecError) as err:
            return self._fail_start(directory, record, str(err))
        record.update(image=plan.image, container_name=container.get("name"),
                      collector=collector.to_record(), pull_policy=container.get("imagePullPolicy") or "",
                      live=needs_live_collector(collector))
        # Recorded before the create: a controller that dies in between finds the record, sees
        # no container and starts it then (the fixed name makes a double create fail).
        process.write_json(directory / "job.json", {**record, "starting": True})
        try:
            created = self._create(plan.create_arguments(), record["pull_policy"])
            if record["live"]:
                record["wrapper"] = self._start_collector(directory, record).to_dict()
            else:
                created.start()
        except Exception as err:  # noqa: BLE001 - any engine error fails this trial with its text
            import docker.errors

            if isinstance(err, docker.errors.APIError) and err.status_code == 409:
                log.info("trial container exists already; adopted", extra={"trial": spec.name})
            else:
                self.remove_container(spec.namespace, spec.name)
                cause = str(err) if isinstance(err, ImageUnavailable) else engine_message(err)
                return self._fail_start(directory, record, f"cannot start the container: {cause}")
        record["start_time"] = now_rfc3339_micro()
        process.write_json(directory / "job.json", record)
        return self.status(spec.namespace, spec.name)

    def _start_collector(self, directory: Path, record: dict[str, Any]) -> process.ProcessId:
        """Starts the live metrics collector, which starts the container and attaches to it."""
        collector = CollectorSettings.from_record(record["collector"])
        argv = [sys.executable, "-S", "-m", "services.metrics_collector", "--job-dir", str(directory),
                *collector.to_argv(), "--", str(self.docker_cli), "start", "--attach", str(record["container"])]
        env = self.environment({"KATIB_TRIAL_NAME": str(record["name"]),
                                "SEXTANT_DB_MANAGER": collector.db_manager_for_trial(dict(os.environ))})
        return process.spawn(argv, log_path=directory / "output.log", env=env, cwd=str(directory))

    def start_failed(self, spec: JobSpec, message: str) -> JobStatus:
        """Records the job as a container that could not start, with ``message`` as its cause."""
        directory = self.dir(spec.namespace, spec.name)
        if (directory / "job.json").exists():
            return self.status(spec.namespace, spec.name)
        directory.mkdir(parents=True, exist_ok=True)
        return self._fail_start(directory, {"runtime": RUNTIME_NAME, "namespace": spec.namespace,
                                            "name": spec.name, "created": now_rfc3339_micro()}, message)

    def _create(self, arguments: dict[str, Any], pull_policy: str) -> Any:
        import docker.errors

        image = arguments["image"]
        engine = self._engine()
        if pull_policy == "Always":
            engine.images.pull(image)
        try:
            return engine.containers.create(**arguments)
        except docker.errors.ImageNotFound:
            if pull_policy == "Never":
                raise
            try:
                engine.images.pull(image)
            except docker.errors.APIError as err:
                raise ImageUnavailable(f"image {image!r} is not on this engine and pulling it failed "
                                   f"({engine_message(err)}); build or load it first") from None
            return engine.containers.create(**arguments)

    def _fail_start(self, directory: Path, record: dict[str, Any], message: str) -> JobStatus:
        process.write_json(directory / "exit.json", {"exit_code": None, "reason": job_reasons.ERROR, "message": message,
                                                     "completion_time": now_rfc3339_micro(), "collected": True})
        process.write_json(directory / "job.json", record)
        return self.status(record["namespace"], record["name"])

    # --- status ------------------------------------------------------------------------------
    def status(self, namespace: str, name: str) -> JobStatus:
        key = (namespace, name)
        with self._lock:
            ended = self._ended.get(key)
        if ended is not None:
            return ended
        status = self._read_status(namespace, name)
        if status.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            with self._lock:
                self._ended[key] = status
        return status

    def _read_status(self, namespace: str, name: str) -> JobStatus:
        import docker.errors

        directory = self.dir(namespace, name)
        record = process.read_json(directory / "job.json")
        if record is None:
            return JobStatus(JobPhase.NOT_FOUND, message="job not found")
        started = record.get("start_time")
        ended = process.read_json(directory / "exit.json")
        if ended is not None:
            if record.get("live"):
                self._stop_container(namespace, name)  # the rules were met: nothing may run on
            return self._final(ended, started, (directory / "stopped").exists())
        wrapper = process.ProcessId.from_dict(record.get("wrapper"))
        try:
            container = self._container(namespace, name)
            if container is None:
                if record.get("starting"):
                    # The controller died before the create reached the engine: start it now.
                    (directory / "job.json").unlink(missing_ok=True)
                    return JobStatus(JobPhase.NOT_FOUND, message="container start was interrupted")
                ended = {"exit_code": None, "reason": job_reasons.ERROR, "collected": True,
                         "message": "the trial's container was removed from the engine before it ended",
                         "completion_time": now_rfc3339_micro()}
                process.write_json(directory / "exit.json", ended)
                return self._final(ended, started, False)
            state = container.attrs.get("State") or {}
            if record.get("starting"):
                record.pop("starting")
                record["start_time"] = started = state.get("StartedAt") or now_rfc3339_micro()
                process.write_json(directory / "job.json", record)
            if record.get("live") and process.is_alive(wrapper):
                # The collector starts the container, reads it while it runs and records its end.
                return JobStatus(JobPhase.RUNNING, reason="Running", start_time=started)
            if state.get("Status") == "created":
                # Created by a controller that died before starting it.
                if record.get("live"):
                    record["wrapper"] = self._start_collector(directory, record).to_dict()
                    process.write_json(directory / "job.json", record)
                else:
                    container.start()
                return JobStatus(JobPhase.RUNNING, reason="Running", start_time=started)
            if state.get("Status") in ("running", "restarting", "paused"):
                if not record.get("live"):
                    self._follow(namespace, name, container)
                return JobStatus(JobPhase.RUNNING, reason="Running", start_time=started)
            # Ended, and no collector is left to record it (or none was needed): read it now.
            ended = self._collect(directory, record, container, state)
        except docker.errors.DockerException as err:
            # The engine is away (restarting?): the trial stays as it is and is looked at again.
            return JobStatus(JobPhase.PENDING, reason="EngineUnavailable",
                             message=f"the Docker engine does not answer: {engine_message(err)}",
                             start_time=started)
        return self._final(ended, started, (directory / "stopped").exists())

    @staticmethod
    def _final(ended: dict[str, Any], started: str | None, stopped: bool) -> JobStatus:
        code = ended.get("exit_code")
        reason = job_reasons.ended_reason(ended.get("reason") or "", stopped)
        phase = JobPhase.SUCCEEDED if code == 0 and reason not in job_reasons.FAILING else JobPhase.FAILED
        return JobStatus(phase, reason=reason or (job_reasons.COMPLETED if phase == JobPhase.SUCCEEDED
                                                  else job_reasons.ERROR),
                         message=ended.get("message", ""), exit_code=code, start_time=started,
                         completion_time=ended.get("completion_time"))

    def _collect(self, directory: Path, record: dict[str, Any], container: Any,
                 state: dict[str, Any]) -> dict[str, Any]:
        """The container has exited: its whole output to ``output.log``, its metrics to the
        spool, then ``exit.json`` (written last: a repeat after a crash redoes the same work)."""
        output = container.logs(stdout=True, stderr=True)
        tmp = directory / f".output.log.{os.getpid()}.tmp"
        tmp.write_bytes(output)
        os.replace(tmp, directory / "output.log")
        code = state.get("ExitCode")
        ended: dict[str, Any] = {"exit_code": code, "reason": job_reasons.COMPLETED if code == 0 else job_reasons.ERROR,
                                 "message": "", "completion_time": state.get("FinishedAt") or now_rfc3339_micro(),
                                 "collected": True}
        if state.get("OOMKilled"):
            limit = ((container.attrs.get("HostConfig") or {}).get("Memory")) or 0
            ended.update(reason=job_reasons.OOM_KILLED, message="the container was killed for using more memory than its "
                         f"limit ({limit} bytes, resources.limits.memory)")
        elif state.get("Error"):
            ended["message"] = str(state["Error"])
        stopped = (directory / "stopped").exists()
        saved = record.get("collector")
        if isinstance(saved, dict):
            try:
                collect_finished(CollectorSettings.from_record(saved), output_log=directory / "output.log",
                                 spool_dir=directory / "spool", stopped=stopped, trial=str(record.get("name", "")))
            except MetricsSourceError as err:
                ended.update(reason=job_reasons.COLLECTOR_FAILED, message=str(err))
        process.write_json(directory / "exit.json", ended)
        return ended

    def _follow(self, namespace: str, name: str, container: Any) -> None:
        """A thread copies the running container's output to ``output.log`` (for ``sextant logs
        -f``) and tells the exit listeners when the container ends."""
        key = (namespace, name)
        with self._lock:
            if key in self._followed:
                return
            self._followed.add(key)
        log_path = self.dir(namespace, name) / "output.log"

        def follow() -> None:
            try:
                with open(log_path, "wb") as out:  # from the start: an adopted container's too
                    for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=True):
                        out.write(chunk)
                        out.flush()
                container.wait()
            except Exception as err:  # noqa: BLE001 - the trial controller's poll is the safety net
                log.debug("stopped following a container: %s", err, extra={"trial": name})
            finally:
                with self._lock:
                    self._followed.discard(key)
            announce_exit(self.exit_listeners, namespace, name)

        threading.Thread(target=follow, name=f"container-{name}", daemon=True).start()

    def notifies_exit(self, namespace: str, name: str) -> bool:
        with self._lock:
            return (namespace, name) in self._followed

    # --- stop, remove ------------------------------------------------------------------------
    def stop(self, namespace: str, name: str) -> None:
        directory = self.dir(namespace, name)
        if not (directory / "job.json").exists() or (directory / "exit.json").exists():
            return
        (directory / "stopped").write_text(now_rfc3339_micro())
        record = process.read_json(directory / "job.json") or {}
        # The live collector first: it records the end (Killed) as it would a local trial's.
        process.terminate(process.ProcessId.from_dict(record.get("wrapper")), self.stop_grace)
        self._stop_container(namespace, name)

    def _stop_container(self, namespace: str, name: str) -> None:
        import docker.errors

        try:
            container = self._container(namespace, name)
            if container is not None and container.status in ("running", "restarting", "paused"):
                container.stop(timeout=max(1, int(self.stop_grace)))
        except docker.errors.DockerException as err:
            # The marker stays: the container ends as Killed once the engine answers again.
            log.warning("trial container not stopped: %s", engine_message(err), extra={"trial": name})

    def remove_container(self, namespace: str, name: str) -> None:
        """Removes the trial's container, running or not, if there is one."""
        import docker.errors

        try:
            container = self._container(namespace, name)
            if container is not None:
                container.remove(force=True)
        except docker.errors.DockerException as err:
            log.warning("trial container not removed: %s", engine_message(err), extra={"trial": name})

    def delete(self, namespace: str, name: str, *, keep_log: bool = False) -> None:
        with self._lock:
            self._ended.pop((namespace, name), None)
        if not keep_log:
            self.archived_log(namespace, name).unlink(missing_ok=True)
        record = process.read_json(self.dir(namespace, name) / "job.json") or {}
        process.terminate(process.ProcessId.from_dict(record.get("wrapper")), self.stop_grace)
        self.remove_container(namespace, name)
        shutil.rmtree(self.dir(namespace, name), ignore_errors=True)

    def archived_log(self, namespace: str, name: str) -> Path:
        self.dir(namespace, name)  # validates both names
        return trial_log_archive(self.root.parent) / namespace / f"{name}.log"

    def retire(self, namespace: str, name: str) -> None:
        """The container and the job's files go; the output log is kept for ``sextant logs``."""
        log_file = self.dir(namespace, name) / "output.log"
        if log_file.exists():
            target = self.archived_log(namespace, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(log_file, target)
        self.delete(namespace, name, keep_log=True)

    def keys(self) -> list[tuple[str, str]]:
        """(namespace, trial) of every container of this stack, running or not."""
        import docker.errors

        try:
            containers = self._engine().containers.list(all=True,
                                                        filters={"label": f"{STACK_LABEL}={self.stack}"})
        except docker.errors.DockerException:
            return []
        labels = [c.labels for c in containers]
        return sorted((lab[NAMESPACE_LABEL], lab[TRIAL_LABEL]) for lab in labels
                      if NAMESPACE_LABEL in lab and TRIAL_LABEL in lab)

    def log_path(self, namespace: str, name: str) -> str | None:
        for path in (self.dir(namespace, name) / "output.log", self.archived_log(namespace, name)):
            if path.exists():
                return str(path)
        return None
