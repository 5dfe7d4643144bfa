"""The trial reconcile: run the trial's job and turn its outcome into Trial conditions (Katib's rules).

One pass, level-triggered and idempotent:

1. First sight: ``startTime`` and condition Created (TrialCreated).
2. Job: started through the Runtime if absent and the trial is not completed (the experiment
   controller already rendered ``spec.runSpec``). A trial marked Killed (by the experiment
   controller when the experiment ends) has its running job stopped.
3. Job running → Running (TrialRunning). Job succeeded (or the trial was early-stopped) → the
   observation is rebuilt from the DB manager's logs: objective available → Succeeded
   (unless EarlyStopped), otherwise MetricsUnavailable (for Push/Custom collectors a log
   ``{zero time, objective, unavailable}`` is reported first, as Katib). Job failed → Failed
   with ``TrialFailed. Job reason: <reason>`` / ``Trial has failed. Job message: <message>``,
   followed by the exit code and the last lines of the job's output (``trial_status.failed_message``).
   Completing flips Running to False.
4. Once the final status is stored and ``retainRun`` is false, the job and its files go.
5. A deleted Trial: its job is deleted (the store deletes its observation logs).

Custom collectors report on their own schedule: when the job has succeeded but the objective
has not arrived yet, the trial waits up to ``custom_grace`` seconds before MetricsUnavailable.
"""

from __future__ import annotations

import logging
import time
from typing import cast

import grpc

from services.suggestion.controller.shared_services import SHARED_NAMESPACE, per_experiment_name, shared_name
from sextant import job_reasons
from sextant.api import api_pb2, api_pb2_grpc
from sextant.controller import Key, Result
from sextant.events import EventRecorder
from sextant.katib import controller_metrics as metrics
from sextant.katib import trial_status as ts
from sextant.katib.condition_list import TRUE, flip_to_false, has_condition, mark_finished, set_condition
from sextant.observation_logs import read_logs
from sextant.resources.models import EXPERIMENT_LABEL, Experiment, Trial
from sextant.resources.vocabulary import WORKING_DIR_ANNOTATION
from sextant.runtime.base import JobPhase, JobSpec, JobStatus, Runtime, ServiceStatus, SuggestionVolume
from sextant.store.cached_reader import CachedReader, with_status_copy
from sextant.store.informer import Informer
from sextant.store.interface import NotFound, ResourceStore
from sextant.timestamps import ZERO_TIME, BadTimestamp, now_rfc3339, parse_time

from . import spool
from .collector_for_trial import CollectorSettingsError, collector_settings
from .observation_builder import (
    UNAVAILABLE,
    build_observation,
    logs_in_store_order,
    metric_names,
    objective_available,
)

log = logging.getLogger("sextant.trial_controller")

CREATED, RUNNING, SUCCEEDED, FAILED = ts.CREATED, ts.RUNNING, ts.SUCCEEDED, ts.FAILED
SUGGESTION_TRIAL_DIR = "suggestion_trial_dir"  # Katib's algorithm setting for the suggestion volume
KILLED, EARLY_STOPPED, METRICS_UNAVAILABLE = ts.KILLED, ts.EARLY_STOPPED, ts.METRICS_UNAVAILABLE
V1ALPHA3_ANNOTATION = "sextant.io/original-api-version"
# Experiments kept for their trials (dialect, algorithm name); the oldest go first.
EXPERIMENT_CACHE_SIZE = 1024
IMAGE_NOT_USED = "ImageNotUsed"  # the Warning event's reason


def _kind(trial: Trial) -> str:
    mc = trial.spec.metrics_collector
    kind = mc.collector.kind if mc and mc.collector else "StdOut"
    return str(getattr(kind, "value", kind))


class TrialReconciler:
    def __init__(self, store: ResourceStore, runtime: Runtime, db_manager: grpc.Channel, *,
                 db_manager_address: str | None = None, informer: Informer | None = None,
                 custom_grace: float = 60.0, rpc_timeout: float = 30.0, job_poll_seconds: float = 0.5,
                 notified_poll_seconds: float = 10.0, events: EventRecorder | None = None):
        self.store = store
        self.events = events
        self.runtime = runtime
        self.dbm = api_pb2_grpc.DBManagerStub(db_manager)
        self.db_manager_address = db_manager_address
        self.custom_grace = custom_grace
        self.rpc_timeout = rpc_timeout
        # Job state lives outside the store, so no event says "the job ended": a trial whose
        # job is active is looked at again after this long.
        self.job_poll_seconds = job_poll_seconds
        # Jobs whose end the runtime announces (children of this process) are only looked at
        # this often as a safety net.
        self.notified_poll_seconds = notified_poll_seconds
        self._experiments: dict[str, Experiment] = {}  # by uid, oldest first
        self._warned: dict[str, None] = {}  # experiments told that their image is not used
        self.trials: CachedReader[Trial] = CachedReader(store, informer, "Trial")

    # --- helpers -----------------------------------------------------------------------------
    def orphan_keys(self, namespace: str = "") -> list[Key]:
        """Keys of Trials that are gone but whose job is still held by the runtime (deleted
        while this controller was down); their pass deletes the job."""
        return [Key(ns, name) for ns, name in self.runtime.job_keys()
                if (not namespace or ns == namespace) and self.trials.get(ns, name) is None]

    def _get(self, key: Key) -> Trial | None:
        trial = self.trials.get(key.namespace, key.name)
        # A pass changes only the status: copying just that keeps the cache intact (a deep copy
        # of the whole trial, runSpec included, was most of a pass's CPU).
        return with_status_copy(trial) if trial is not None else None

    def _get_fresh(self, key: Key) -> Trial | None:
        return self.trials.get_fresh(key.namespace, key.name)

    def _dialect(self, trial: Trial) -> str:
        original = (trial.metadata.annotations or {}).get(V1ALPHA3_ANNOTATION, "")
        if original.endswith("v1alpha3"):
            return "v1alpha3"
        exp = self._experiment(trial)
        if exp is not None and (exp.metadata.annotations or {}).get(V1ALPHA3_ANNOTATION, "").endswith("v1alpha3"):
            return "v1alpha3"
        return "v1beta1"

    def _experiment(self, trial: Trial) -> Experiment | None:
        """The trial's experiment, cached by uid: an experiment deleted and created again under
        the same name is another object, so its trials never see the old one's settings."""
        name = (trial.metadata.labels or {}).get(EXPERIMENT_LABEL)
        if not name:
            return None
        owner_uid = next((ref.uid for ref in trial.metadata.owner_references
                          if ref.kind == "Experiment" and ref.name == name and ref.uid), None)
        if owner_uid is not None and owner_uid in self._experiments:
            return self._experiments[owner_uid]
        try:
            exp = cast(Experiment, self.store.get("Experiment", trial.metadata.namespace, name))
        except NotFound:
            return None
        if owner_uid is not None and exp.metadata.uid != owner_uid:
            return None  # the trial's own experiment is gone; this is a newer one of that name
        if exp.metadata.uid:
            if len(self._experiments) >= EXPERIMENT_CACHE_SIZE:
                self._experiments.pop(next(iter(self._experiments)))  # the oldest entry
            self._experiments[exp.metadata.uid] = exp
        return exp

    def _service(self, trial: Trial) -> tuple[str, str, ServiceStatus] | None:
        """(namespace, name, status) of the algorithm service answering for the trial's
        experiment: its own (Katib's ``<experiment>-<algorithm>``) when the runtime holds one,
        else the stack's shared one (see services/suggestion/controller/shared_services.py)."""
        exp = self._experiment(trial)
        if exp is None or exp.spec.algorithm is None:
            return None
        algorithm = exp.spec.algorithm.algorithm_name
        early = exp.spec.early_stopping
        for namespace, name in ((trial.metadata.namespace, per_experiment_name(exp.metadata.name, algorithm)),
                                (SHARED_NAMESPACE, shared_name(algorithm, early.algorithm_name if early else None))):
            try:
                status = self.runtime.service_status(namespace, name)
            except ValueError:
                continue
            if status.exists or status.address:
                return namespace, name, status
        return None

    def _early_stopping_address(self, trial: Trial) -> str | None:
        if not trial.spec.early_stopping_rules:
            return None
        service = self._service(trial)
        return service[2].early_stopping_address if service is not None else None

    def _suggestion_volume(self, trial: Trial) -> SuggestionVolume | None:
        """Katib mounts ``<experiment>/<trial>`` of the suggestion's volume at the path of an
        algorithm setting ``suggestion_trial_dir`` (pbt's checkpoint hand-over)."""
        exp = self._experiment(trial)
        if exp is None or exp.spec.algorithm is None:
            return None
        path = next((s.value for s in exp.spec.algorithm.algorithm_settings
                     if s.name == SUGGESTION_TRIAL_DIR and s.value), None)
        if path is None:
            return None
        service = self._service(trial)
        namespace, name = (service[0], service[1]) if service is not None else \
            (trial.metadata.namespace, f"{exp.metadata.name}-{exp.spec.algorithm.algorithm_name}")
        return SuggestionVolume(service=name, sub_path=f"{exp.metadata.name}/{trial.metadata.name}",
                                mount_path=path,
                                namespace="" if namespace == trial.metadata.namespace else namespace)

    def _logs(self, trial: Trial) -> dict[str, list[tuple[str, str]]]:
        """The trial's logs by metric, in the DB manager's order (one call for all metrics)."""
        wanted = set(metric_names(trial.spec.objective))
        out: dict[str, list[tuple[str, str]]] = {name: [] for name in wanted}
        # In pages when the trial has more logs than one GetObservationLog may return.
        for m in read_logs(self.dbm, trial.metadata.name, timeout=self.rpc_timeout):
            if m.metric.name in wanted:
                out[m.metric.name].append((m.time_stamp, m.metric.value))
        return out

    def _ship_spool(self, key: Key) -> list[dict[str, str]] | None:
        """Spool mode: the job's metrics reach the DB manager here, before the observation is
        built. Returns every log of the job when this call shipped all of them."""
        spool_dir = self.runtime.job_spool_dir(key.namespace, key.name)
        if spool_dir is None:
            return None
        shipped = spool.ship(spool_dir, key.name, self.dbm, self.rpc_timeout)
        if shipped.sent:
            log.debug("metrics shipped", extra={"trial": key.name, "count": shipped.sent})
        return shipped.logs

    def _report_unavailable(self, trial: Trial) -> None:
        assert trial.spec.objective is not None  # the collector spec required it to start the job
        objective = trial.spec.objective.objective_metric_name
        self.dbm.ReportObservationLog(api_pb2.ReportObservationLogRequest(
            trial_name=trial.metadata.name, observation_log=api_pb2.ObservationLog(metric_logs=[
                api_pb2.MetricLog(time_stamp=ZERO_TIME,
                                  metric=api_pb2.Metric(name=objective, value=UNAVAILABLE))])),
            timeout=self.rpc_timeout)

    def _start(self, trial: Trial) -> JobStatus:
        collector = collector_settings(trial, dialect=self._dialect(trial),
                                   early_stopping_address=self._early_stopping_address(trial),
                                   db_manager_address=self.db_manager_address,
                                   report=self.runtime.metrics_report_mode)
        spec = JobSpec(name=trial.metadata.name, namespace=trial.metadata.namespace,
                       run_spec=trial.spec.run_spec or {},
                       primary_container_name=trial.spec.primary_container_name,
                       collector=collector, success_condition=trial.spec.success_condition,
                       failure_condition=trial.spec.failure_condition, retain=trial.spec.retain_run,
                       labels=dict(trial.metadata.labels or {}),
                       working_dir=(trial.metadata.annotations or {}).get(WORKING_DIR_ANNOTATION),
                       suggestion_volume=self._suggestion_volume(trial))
        return self.runtime.start_job(spec)

    # --- reconcile ----------------------------------------------------------------------------
    def __call__(self, key: Key) -> Result | None:
        trial = self._get(key)
        if trial is None or trial.metadata.deletion_timestamp:
            self.runtime.delete_job(key.namespace, key.name)
            self.trials.forget(key.namespace, key.name)
            return None
        status = trial.status
        conds = status.conditions
        now = now_rfc3339()
        changed = False
        requeue: float | None = None
        if not has_condition(conds, CREATED):
            status.start_time = status.start_time or now
            changed |= set_condition(conds, CREATED, TRUE, ts.REASON_CREATED, ts.MSG_CREATED, now)
            metrics.TRIAL_CREATED.labels(key.namespace).inc()

        completed = ts.is_finished(trial)
        job = self.runtime.job_status(key.namespace, key.name)
        if job.phase == JobPhase.NOT_FOUND and not completed and \
                self.trials.is_ahead_of_cache(key.namespace, key.name):
            # Never (re)start from a stale copy: a trial finished here (its job gone) must not
            # look unfinished. ``_get`` already prefers our own newer writes; this is the
            # safety net for a copy that is somehow still behind.
            fresh = self._get_fresh(key)
            if fresh is None:
                return None
            trial, status, conds = fresh, fresh.status, fresh.status.conditions
            if not has_condition(conds, CREATED):
                status.start_time = status.start_time or now
                changed |= set_condition(conds, CREATED, TRUE, ts.REASON_CREATED, ts.MSG_CREATED, now)
            completed = ts.is_finished(trial)
        if job.phase == JobPhase.NOT_FOUND and not completed:
            if not trial.spec.run_spec:
                changed |= self._fail(trial, "NoRunSpec", "the trial has no runSpec to run", now)
            else:
                try:
                    job = self._start(trial)
                except (CollectorSettingsError, ValueError) as err:
                    changed |= self._fail(trial, "InvalidSpec", str(err), now)
                else:
                    log.info("trial job started", extra={"trial": key.name, "phase": str(job.phase)})
                    if job.warning:
                        self._warn(trial, job.warning)

        if has_condition(conds, KILLED) and job.phase in (JobPhase.RUNNING, JobPhase.PENDING):
            self.runtime.stop_job(key.namespace, key.name)
            job = self.runtime.job_status(key.namespace, key.name)
            changed |= flip_to_false(conds, RUNNING, now)
        shipped = None
        if job.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED) and \
                (not ts.is_finished(trial) or has_condition(conds, KILLED)):
            # Shipping comes before the final status is written, so a completed trial's spool is
            # gone already -- except a Killed one's, whose job ended after the mark.
            shipped = self._ship_spool(key)

        early_stopped = has_condition(conds, EARLY_STOPPED)
        terminal_other = any(has_condition(conds, t) for t in (FAILED, KILLED))
        if job.phase == JobPhase.RUNNING and not ts.is_finished(trial) \
                and not has_condition(conds, RUNNING) and not early_stopped:
            changed |= set_condition(conds, RUNNING, TRUE, ts.REASON_RUNNING, ts.MSG_RUNNING, now)
        elif (job.phase == JobPhase.SUCCEEDED or (early_stopped and job.phase != JobPhase.RUNNING)) \
                and not terminal_other and not self._settled(trial):
            outcome = self._finish_succeeded(trial, job, now, shipped)
            if outcome is None:
                requeue = 1.0
            else:
                changed |= outcome
        elif job.phase == JobPhase.FAILED and not ts.is_finished(trial):
            changed |= self._fail(trial, job.reason or job_reasons.ERROR, job.message, now, job.completion_time,
                                  exit_code=job.exit_code, output_tail=self._output_tail(key),
                                  note=job.warning)

        if changed:
            status.last_reconcile_time = now
            trial = self.trials.wrote(self.store.update_status(trial))
        if job.phase in (JobPhase.RUNNING, JobPhase.PENDING) and requeue is None:
            requeue = self.notified_poll_seconds if self.runtime.job_exit_notified(key.namespace, key.name) \
                else self.job_poll_seconds
        if ts.is_finished(trial) and not trial.spec.retain_run and \
                job.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            # Only after the final status is stored: the job's files are no longer needed
            # (a runtime that can keeps the output log for `sextant logs`).
            self.runtime.retire_job(key.namespace, key.name)
        return Result(requeue_after=requeue) if requeue is not None else None

    @staticmethod
    def _settled(trial: Trial) -> bool:
        """Succeeded or MetricsUnavailable with an observation: the job's logs were all read
        (spool shipped first), so later passes (resyncs, our own status events) need not
        fetch them again."""
        conds = trial.status.conditions
        return trial.status.observation is not None and \
            (has_condition(conds, SUCCEEDED) or has_condition(conds, METRICS_UNAVAILABLE))

    def _output_tail(self, key: Key) -> str:
        """The last lines of the job's output, when the runtime keeps it on this machine."""
        path = self.runtime.job_log_path(key.namespace, key.name)
        if path is None:
            return ""
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - ts.OUTPUT_TAIL_BYTES - 1))
                return ts.tail_of(f.read())
        except OSError:
            return ""

    def _warn(self, trial: Trial, message: str) -> None:
        """Tells the user how the trial runs (its image is not used): once per experiment, as a
        Warning event on the Experiment (``sextant describe`` shows it), or on the trial itself
        when it has no experiment; every trial's log line and Failed message say it too."""
        log.warning("%s", message, extra={"trial": trial.metadata.name})
        if self.events is None:
            return
        exp = self._experiment(trial)
        if exp is None:
            self.events.record(trial, "Warning", IMAGE_NOT_USED, message)
        elif exp.metadata.uid not in self._warned:
            if len(self._warned) >= EXPERIMENT_CACHE_SIZE:
                self._warned.pop(next(iter(self._warned)))
            self._warned[exp.metadata.uid] = None
            self.events.record(exp, "Warning", IMAGE_NOT_USED, message)

    def _fail(self, trial: Trial, reason: str, message: str, now: str,
              completion: str | None = None, *, exit_code: int | None = None, output_tail: str = "",
              note: str = "") -> bool:
        conds = trial.status.conditions
        if has_condition(conds, FAILED) or has_condition(conds, EARLY_STOPPED):
            return False
        if has_condition(conds, KILLED):
            return flip_to_false(conds, RUNNING, now)
        trial.status.completion_time = completion or now
        changed = mark_finished(conds, FAILED, ts.failed_reason(reason),
                                ts.failed_message(message, exit_code=exit_code, output_tail=output_tail,
                                                  note=note), now)
        if changed:
            metrics.TRIAL_FAILED.labels(trial.metadata.namespace).inc()
        log.info("trial failed", extra={"trial": trial.metadata.name, "reason": reason, "detail": message})
        return changed

    def _finish_succeeded(self, trial: Trial, job: JobStatus, now: str, shipped: list[dict[str, str]] | None = None) -> bool | None:
        """Observation + Succeeded/MetricsUnavailable; None = look again shortly.

        ``shipped``: every log of the job, just shipped from its spool in one go. For StdOut and
        File collectors those are all the trial's logs, so they are used as the DB manager would
        return them instead of being read back."""
        conds = trial.status.conditions
        try:
            logs = logs_in_store_order(shipped) if shipped is not None and _kind(trial) in ("StdOut", "File") \
                else self._logs(trial)
            observation = build_observation(trial.spec.objective, logs)
        except BadTimestamp as err:
            log.warning("observation not updated: %s", err, extra={"trial": trial.metadata.name})
            return None
        changed = observation != trial.status.observation
        trial.status.observation = observation
        early_stopped = has_condition(conds, EARLY_STOPPED)
        if objective_available(trial.spec.objective, observation):
            if not has_condition(conds, SUCCEEDED) and not early_stopped:
                trial.status.completion_time = job.completion_time or now
                if mark_finished(conds, SUCCEEDED, ts.REASON_SUCCEEDED, ts.MSG_SUCCEEDED, now):
                    changed = True
                    metrics.TRIAL_SUCCEEDED.labels(trial.metadata.namespace).inc()
            return changed
        if has_condition(conds, METRICS_UNAVAILABLE):
            return changed
        kind = _kind(trial)
        if kind == "Custom":
            ended = parse_time(job.completion_time)
            if ended is not None and time.time() - ended.timestamp() < self.custom_grace:
                return None  # the user's collector may still be reporting
        if kind in ("Push", "None", "Custom"):
            self._report_unavailable(trial)
            observation = build_observation(trial.spec.objective, self._logs(trial))
            trial.status.observation = observation
        trial.status.completion_time = trial.status.completion_time or job.completion_time or now
        changed = True
        assert trial.spec.objective is not None  # the collector spec required it to start the job
        message = ts.metrics_unavailable_message(trial.spec.objective.objective_metric_name, kind,
                                                 self._output_tail(Key(trial.metadata.namespace,
                                                                       trial.metadata.name)))
        if mark_finished(conds, METRICS_UNAVAILABLE, ts.REASON_METRICS_UNAVAILABLE, message, now):
            metrics.TRIAL_METRICS_UNAVAILABLE.labels(trial.metadata.namespace).inc()
        log.info("trial metrics unavailable", extra={"trial": trial.metadata.name})
        return changed

