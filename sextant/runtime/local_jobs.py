"""Trial jobs as local processes, wrapped by the metrics collector like Katib's sidecar.

``start`` takes the already-rendered runSpec (a batch/v1 Job, or any kind with a pod template
such as TFJob / PyTorchJob replica specs), picks the primary container (by name, else the
first), and runs its ``command + args`` with its ``env`` and ``workingDir`` as a detached
process, without a shell. The container image is recorded and otherwise ignored.

The process actually started is a wrapper that outlives a restart of the controller and
records the exit code, which only a parent can learn:

* ``sextant-jobwrap EXIT_JSON -- <command>`` (``jobwrap.c``, compiled on first use, see
  ``native.py``) when every metric can be read after the job ends -- StdOut, File, Push or None
  collectors without early-stopping rules, as Katib's sidecar reads them. It only waits and
  writes ``exit.json`` (``"collected": false``); the first ``status`` look after that parses
  the output log or metrics file into the spool (``sextant.runtime.after_exit``) and
  marks the record collected. About a millisecond of CPU per trial.
* ``python -m services.metrics_collector --job-dir DIR <collector args> -- <command>``
  otherwise (TensorFlowEvent, PrometheusMetric, Custom, early stopping, or no C compiler): the
  collector runs the trial, copies its output to the job's log, collects while it runs, and
  writes ``exit.json`` when everything is done.

State per job::

    jobs/<ns>/<trial>/job.json     what was started: pid + start time, argv, image, cwd
    jobs/<ns>/<trial>/output.log   the trial's stdout+stderr (and the collector's own lines)
    jobs/<ns>/<trial>/exit.json    exit code, reason, message, completion time (written last)
    jobs/<ns>/<trial>/stopped      marker: stop_job was called (reason Killed)
    jobs/<ns>/<trial>/spool/       metric batches for the trial controller to ship (spool mode,
                                   the default here) or not yet accepted by the DB manager
                                   (direct mode)
    jobs/<ns>/<trial>/volumes/metrics/  the File/TensorFlowEvent collector's directory
                                   (Katib's per-pod volume; see ``metrics_volume.py``)

Local conventions (documented for users):
* ``python`` / ``python3`` as the first word of the command mean the Python interpreter that
  runs Sextant, so trial code runs in the same virtual environment.
* A container without ``command`` runs its ``args`` as the argv (there is no image entrypoint
  to fall back on locally).
* Without ``workingDir`` the trial runs in the directory its experiment was submitted from
  (``JobSpec.working_dir``, recorded by the CLI and the SDK), else in the working directory of
  the runtime's owner (the trial controller), so relative paths in commands resolve as the user
  expects.
* ``env`` entries with ``valueFrom`` are skipped (there are no Secrets/ConfigMaps locally).
* success/failureCondition are not evaluated: the local "job" succeeds when the command exits
  0 and fails otherwise.
* Files are never removed by the runtime on its own: the trial controller calls ``retire``
  after it has recorded the trial's final status when ``retainRun`` is false, so the output log
  and exit record are still there while it finishes the trial. ``retire`` moves the output log
  to ``<data_dir>/logs/trials/<ns>/<trial>.log`` first; ``delete`` (the trial was deleted)
  removes that too.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sextant import job_reasons
from sextant.metric_lines import MetricsSourceError
from sextant.runtime import metrics_volume, native, process
from sextant.runtime.after_exit import collect_finished
from sextant.runtime.base import JobPhase, JobSpec, JobStatus
from sextant.runtime.collector_settings import CollectorSettings
from sextant.timestamps import now_rfc3339_micro

log = logging.getLogger("sextant.runtime.local")

PYTHON_ALIASES = ("python", "python3")
IMAGE_NOTE = "the stack runs trials as local processes (`sextant up --runtime docker` runs them in their image)"
REPLICA_ORDER = ("Chief", "Master", "Launcher", "Worker", "PS", "Evaluator")


class JobSpecError(ValueError):
    """The runSpec cannot be run locally (no pod template, no container, no command)."""


def trial_log_archive(data_dir: Path) -> Path:
    """``<data_dir>/logs/trials``: trials' output logs outlive their job directories here
    (``<ns>/<trial>.log``) until the trial is deleted."""
    return data_dir / "logs" / "trials"


def _wrapper_pid(directory: Path) -> int | None:
    """The pid of a wrapper working for the job in ``directory`` (its command line names the
    job's exit record or directory), found in /proc."""
    needles = (str(directory / "exit.json").encode(), b"--job-dir\0" + str(directory).encode() + b"\0")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            return int(entry.name)
    return None


def image_not_used(image: str, why: str) -> str:
    """The warning of a job whose container names ``image`` but runs without it."""
    return f"the trial's image {image} was not used: {why}"


def pod_specs(run_spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Pod specs of a job-like object, primary-looking ones first."""
    spec = run_spec.get("spec") or {}
    found: list[Mapping[str, Any]] = []
    for path in (("template", "spec"), ("jobTemplate", "spec", "template", "spec")):
        node: Any = spec
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            found.append(node)
    # Training operators: spec.<x>ReplicaSpecs.<Role>.template.spec (TFJob, PyTorchJob, ...).
    for key, replicas in spec.items():
        if key.endswith("ReplicaSpecs") and isinstance(replicas, Mapping):
            roles = sorted(replicas, key=lambda r: (REPLICA_ORDER.index(r)
                                                   if r in REPLICA_ORDER else len(REPLICA_ORDER), r))
            for role in roles:
                pod = ((replicas[role] or {}).get("template") or {}).get("spec")
                if isinstance(pod, Mapping):
                    found.append(pod)
    return found


def announce_exit(listeners: list[Callable[[str, str], None]], namespace: str, name: str) -> None:
    """Tells every exit listener that a job ended; a failing listener must not stop the thread
    that watched the job (the trial controller's poll is the safety net)."""
    for listener in list(listeners):
        try:
            listener(namespace, name)
        except Exception:  # noqa: BLE001
            log.debug("an exit listener failed", exc_info=True, extra={"trial": name})


def primary_container(run_spec: Mapping[str, Any], name: str | None) -> Mapping[str, Any]:
    pods = pod_specs(run_spec)
    containers = [c for pod in pods for c in (pod.get("containers") or []) if isinstance(c, Mapping)]
    if not containers:
        raise JobSpecError(f"runSpec (kind {run_spec.get('kind')!r}): no pod template with containers "
                           "under spec.template.spec or spec.*ReplicaSpecs.<role>.template.spec")
    if name:
        for container in containers:
            if container.get("name") == name:
                return container
        raise JobSpecError(f"primaryContainerName: no container named {name!r} in the runSpec")
    return containers[0]


def container_argv(container: Mapping[str, Any]) -> list[str]:
    argv = [str(x) for x in (container.get("command") or [])] + \
        [str(x) for x in (container.get("args") or [])]
    if not argv:
        raise JobSpecError(f"container {container.get('name')!r}: no command or args to run locally")
    if argv[0] in PYTHON_ALIASES:
        argv[0] = sys.executable
    return argv


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    env = {}
    for item in container.get("env") or []:
        if isinstance(item, Mapping) and "name" in item and "valueFrom" not in item:
            env[str(item["name"])] = str(item.get("value", ""))
    return env


class LocalJobs:
    def __init__(self, root: Path, *, stop_grace: float = 5.0, db_manager_address: str | None = None,
                 environment: Callable[[Mapping[str, str]], dict[str, str]] | None = None,
                 cwd: str | None = None, native_wrapper: bool = True):
        self.root = root
        self.stop_grace = stop_grace
        self.db_manager_address = db_manager_address
        self.environment = environment or (lambda extra: {**os.environ, **extra})
        self.cwd = cwd or os.getcwd()
        # The compiled sextant-jobwrap (None: not looked for yet; False: use the Python wrapper).
        self.native_wrapper: Path | bool | None = None if native_wrapper else False
        # Called with (namespace, name) when a job this process started exits, so a controller
        # learns of the end at once instead of polling; re-adopted jobs (started by an earlier
        # controller) are not our children and still need polling.
        self.exit_listeners: list[Callable[[str, str], None]] = []
        # Jobs whose wrapper is our child, until it is reaped: (Popen, start time).
        self._watched: dict[tuple[str, str], tuple[Any, str]] = {}
        # Final statuses of ended jobs (they never change again until the job is deleted), so
        # a controller's repeated looks at a finished trial read no files.
        self._ended: dict[tuple[str, str], JobStatus] = {}
        self._watched_lock = threading.Lock()
        # Why a container's image is not used here; a job whose container names one records it.
        self.image_note = IMAGE_NOTE

    def dir(self, namespace: str, name: str) -> Path:
        process.validate_name(namespace, "namespace")
        process.validate_name(name, "name")
        return self.root / namespace / name

    def start(self, spec: JobSpec, suggestion_dir: Path | None = None) -> JobStatus:
        """``suggestion_dir``: the local directory standing for ``spec.suggestion_volume``."""
        directory = self.dir(spec.namespace, spec.name)
        if (directory / "job.json").exists():
            return self.status(spec.namespace, spec.name)  # idempotent
        directory.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"namespace": spec.namespace, "name": spec.name, "created": now_rfc3339_micro(),
                                  "retain": spec.retain, "kind": spec.run_spec.get("kind")}
        try:
            container = primary_container(spec.run_spec, spec.primary_container_name)
            argv = container_argv(container)
            cwd = container.get("workingDir") or spec.working_dir or self.cwd
            if not Path(cwd).is_dir():
                where = "workingDir" if container.get("workingDir") else "the directory the experiment was submitted from,"
                raise JobSpecError(f"container {container.get('name')!r}: {where} {cwd!r} "
                                   "does not exist on this machine")
        except JobSpecError as err:
            process.write_json(directory / "exit.json", {"exit_code": None, "reason": job_reasons.ERROR,
                                                         "message": str(err), "completion_time": now_rfc3339_micro()})
            process.write_json(directory / "job.json", record)
            return self.status(spec.namespace, spec.name)
        env = {**container_env(container), **spec.env, "KATIB_TRIAL_NAME": spec.name}
        collector = spec.collector or CollectorSettings(metrics=(), kind="None")
        mount = spec.suggestion_volume.mount_path if spec.suggestion_volume else ""
        if suggestion_dir is not None and mount.startswith("/") and posixpath.normpath(mount) != "/":
            # First, so a metrics volume that contains this path (/var/log/katib) does not take it.
            suggestion_dir.mkdir(parents=True, exist_ok=True)
            checkpoints = metrics_volume.PathRewriter(posixpath.normpath(mount), suggestion_dir)
            argv, env = checkpoints.argv(argv), checkpoints.env(env)
        # Katib's per-pod metrics volume: File / TensorFlowEvent paths point into this job's dir.
        volume = metrics_volume.local_volume(collector, directory)
        if volume is not None:
            collector, argv, env = collector.with_paths(volume), volume.argv(argv), volume.env(env)
        if self.db_manager_address:
            env.setdefault("SEXTANT_DB_MANAGER", self.db_manager_address)
        environment = self.environment(env)
        jobwrap = self._jobwrap() if collector.collects_after_exit() else None
        if jobwrap is not None:
            # Nothing to watch while it runs: the C wrapper records the exit code and the
            # metrics are read once, after the job ends (``_collect``).
            environment["SEXTANT_DB_MANAGER"] = collector.db_manager_for_trial(environment)
            wrapper = [str(jobwrap), str(directory / "exit.json"), "--", *argv]
            record["collect_after_exit"] = collector.to_record()
        else:
            # -S: no site-packages at start-up (the .pth processing alone is ~20 ms CPU per
            # trial); the collector loads site itself for the kinds that need installed packages
            # (grpc, tensorboard). The project root reaches it through PYTHONPATH.
            wrapper = [sys.executable, "-S", "-m", "services.metrics_collector", "--job-dir",
                       str(directory), *collector.to_argv(), "--", *argv]
        record.update(image=container.get("image", ""), container=container.get("name"),
                      command=argv, cwd=str(cwd), start_time=now_rfc3339_micro())
        if record["image"] and self.image_note:
            record["warning"] = image_not_used(str(record["image"]), self.image_note)
        # Recorded *before* the start: a controller that dies between starting the process and
        # noting its pid must not leave a job that the next controller starts a second time
        # (both runs would write the same log): status() looks for its wrapper in /proc.
        process.write_json(directory / "job.json", {**record, "starting": True})
        try:
            proc = process.spawn(wrapper, log_path=directory / "output.log", env=environment, cwd=str(cwd))
        except ValueError as err:  # e.g. a NUL byte in an argument or variable: execve cannot take it
            process.write_json(directory / "exit.json", {"exit_code": None, "reason": job_reasons.ERROR,
                                                         "message": f"cannot start the job: {err}",
                                                         "completion_time": now_rfc3339_micro()})
            process.write_json(directory / "job.json", record)
            return self.status(spec.namespace, spec.name)
        record["process"] = proc.to_dict()
        process.write_json(directory / "job.json", record)  # without "starting"
        self._watch_exit(spec.namespace, spec.name, proc, record["start_time"])
        return replace(self.status(spec.namespace, spec.name), warning=record.get("warning", ""))

    def _watch_exit(self, namespace: str, name: str, proc: process.ProcessId, started: str) -> None:
        child = process.child_of(proc)
        if child is None:
            return
        key = (namespace, name)
        with self._watched_lock:
            self._watched[key] = (child, started)

        def wait() -> None:
            child.wait()  # also reaps it: no zombie wrappers pile up
            process.forget_child(proc)
            with self._watched_lock:
                self._watched.pop(key, None)
            announce_exit(self.exit_listeners, namespace, name)

        threading.Thread(target=wait, name=f"job-exit-{name}", daemon=True).start()

    def notifies_exit(self, namespace: str, name: str) -> bool:
        """True if the end of this job will be announced to ``exit_listeners``."""
        with self._watched_lock:
            return (namespace, name) in self._watched

    def spool_dir(self, namespace: str, name: str) -> Path:
        """Where the job's collector leaves metric logs for the controller to ship (spool mode)."""
        return self.dir(namespace, name) / "spool"

    def status(self, namespace: str, name: str) -> JobStatus:
        key = (namespace, name)
        with self._watched_lock:
            ended, live = self._ended.get(key), self._watched.get(key)
        if ended is not None:
            return ended
        if live is not None and live[0].poll() is None:
            return JobStatus(JobPhase.RUNNING, reason="Running", start_time=live[1])
        status = self._read_status(namespace, name)
        if status.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED) and \
                (self.dir(namespace, name) / "exit.json").exists():
            with self._watched_lock:
                self._ended[key] = status
        return status

    def _read_status(self, namespace: str, name: str) -> JobStatus:
        directory = self.dir(namespace, name)
        record = process.read_json(directory / "job.json")
        if record is None:
            return JobStatus(JobPhase.NOT_FOUND, message="job not found")
        started = record.get("start_time")
        ended = process.read_json(directory / "exit.json")
        stopped = (directory / "stopped").exists()
        if ended is not None and ended.get("collected") is False:
            ended = self._collect(directory, record, ended, stopped)
        if ended is not None:
            code = ended.get("exit_code")
            reason = job_reasons.ended_reason(ended.get("reason") or "", stopped)
            phase = JobPhase.SUCCEEDED if code == 0 and reason not in job_reasons.FAILING else JobPhase.FAILED
            return JobStatus(phase, reason=reason or (job_reasons.COMPLETED if phase == JobPhase.SUCCEEDED
                                                      else job_reasons.ERROR),
                             message=ended.get("message", ""), exit_code=code, start_time=started,
                             completion_time=ended.get("completion_time"), warning=record.get("warning", ""))
        if process.is_alive(process.ProcessId.from_dict(record.get("process"))):
            return JobStatus(JobPhase.RUNNING, reason="Running", start_time=started)
        if record.get("starting") and not (directory / "exit.json").exists():
            # A controller died while starting this job. If its wrapper runs, adopt it; if
            # none does, the start never happened: forget the record so the job is started
            # (once) now.
            pid = _wrapper_pid(directory)
            if pid is not None and (start := process.start_time_of(pid)) is not None:
                record.pop("starting")
                record["process"] = process.ProcessId(pid, start).to_dict()
                process.write_json(directory / "job.json", record)
                return JobStatus(JobPhase.RUNNING, reason="Running", start_time=started)
            (directory / "job.json").unlink(missing_ok=True)
            return JobStatus(JobPhase.NOT_FOUND, message="job start was interrupted; not running")
        if (directory / "exit.json").exists():
            # The wrapper wrote its record and exited between our two looks.
            return self._read_status(namespace, name)
        # The wrapper died without writing its exit record (SIGKILL, machine reboot).
        return JobStatus(JobPhase.FAILED, reason=job_reasons.KILLED if stopped else job_reasons.ERROR,
                         message="job was stopped" if stopped else
                         "the job process ended without recording an exit code (see its log)",
                         start_time=started, completion_time=now_rfc3339_micro())

    def _collect(self, directory: Path, record: dict[str, Any], ended: dict[str, Any],
                 stopped: bool) -> dict[str, Any]:
        """Reads a natively wrapped job's metrics into its spool, then marks the exit record
        collected; until then the job does not count as ended, so the trial controller never
        ships a spool that is still being written. Repeating it (after a crash in between)
        rewrites the same spool file."""
        saved = record.get("collect_after_exit")
        # A job started by a Sextant before CollectorSettings recorded its collector as argv, which
        # is not read back: nothing is spooled, so the trial ends MetricsUnavailable.
        if isinstance(saved, dict):
            try:
                collect_finished(CollectorSettings.from_record(saved),
                                 output_log=directory / "output.log", spool_dir=directory / "spool",
                                 stopped=stopped or ended.get("reason") == job_reasons.KILLED,
                                 trial=str(record.get("name", "")))
            except MetricsSourceError as err:
                # Reading again cannot help: the job fails with the cause, once.
                ended = {**ended, "collected": True, "metrics_spooled": False, "reason": job_reasons.COLLECTOR_FAILED,
                         "message": str(err)}
                process.write_json(directory / "exit.json", ended)
                return ended
        ended = {**ended, "collected": True, "metrics_spooled": True}
        process.write_json(directory / "exit.json", ended)
        return ended

    def _jobwrap(self) -> Path | None:
        if self.native_wrapper is None:
            self.native_wrapper = native.jobwrap_path() or False
        return self.native_wrapper if isinstance(self.native_wrapper, Path) else None

    def stop(self, namespace: str, name: str) -> None:
        directory = self.dir(namespace, name)
        record = process.read_json(directory / "job.json")
        if record is None or (directory / "exit.json").exists():
            return
        (directory / "stopped").write_text(now_rfc3339_micro())
        process.terminate(process.ProcessId.from_dict(record.get("process")), self.stop_grace)

    def delete(self, namespace: str, name: str, *, keep_log: bool = False) -> None:
        directory = self.dir(namespace, name)
        with self._watched_lock:
            self._ended.pop((namespace, name), None)
        if not keep_log:  # the trial itself is gone: so is its kept log
            self.archived_log(namespace, name).unlink(missing_ok=True)
        if not directory.exists():
            return
        self.stop(namespace, name)
        shutil.rmtree(directory, ignore_errors=True)

    def keys(self) -> list[tuple[str, str]]:
        """(namespace, name) of every job directory."""
        return sorted((d.parent.name, d.name) for d in self.root.glob("*/*") if d.is_dir())

    def archived_log(self, namespace: str, name: str) -> Path:
        """Where a finished trial's output log is kept after its job directory is removed."""
        self.dir(namespace, name)  # validates both names
        return trial_log_archive(self.root.parent) / namespace / f"{name}.log"

    def retire(self, namespace: str, name: str) -> None:
        """Removes a finished job's files but keeps its output log for ``sextant logs``."""
        log = self.dir(namespace, name) / "output.log"
        if log.exists():
            target = self.archived_log(namespace, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(log, target)
        self.delete(namespace, name, keep_log=True)

    def log_path(self, namespace: str, name: str) -> str | None:
        for path in (self.dir(namespace, name) / "output.log", self.archived_log(namespace, name)):
            if path.exists():
                return str(path)
        return None
