"""The experiment reconcile: one level-triggered pass over one Experiment (Katib's experiment controller).

Each pass reads the Experiment, its Trials (by the experiment label) and its Suggestion fresh
from the store, then:

1. marks it Created (startTime) on first sight;
2. if it has ended: restarts it when allowed (maxTrialCount raised, LongRunning/FromVolume),
   otherwise kills trials still active and, for Never/FromVolume, marks the Suggestion
   Succeeded so the suggestion controller tears the algorithm service down;
3. otherwise recomputes status (counts, lists, optimal trial, end checks), and while it is
   still running: deletes the newest active trials above parallelTrialCount, keeps the
   Suggestion's ``spec.requests`` right, and creates a Trial for every recorded assignment
   that has none yet.

Why a restart at any moment neither duplicates nor loses a trial: trial names come only from
the assignments recorded in the Suggestion status, and creating a trial that already exists
is a no-op (ALREADY_EXISTS). Assignments are removed from the Suggestion *before* their
trials are deleted, so a crash in between can never bring a deleted trial back.

Killing on end: the Trial gets condition ``Killed=True`` (reason TrialKilled, Running flipped
to False); the trial controller treats Killed as terminal and stops the job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from sextant.controller import Key, Result
from sextant.events import EventRecorder
from sextant.katib import controller_metrics as metrics
from sextant.katib import experiment_status as es
from sextant.katib import suggestion_status as ss
from sextant.katib import trial_status as ts
from sextant.resources.models import (
    EXPERIMENT_LABEL,
    Experiment,
    ObjectMeta,
    ResumePolicy,
    Suggestion,
    SuggestionSpec,
    SuggestionStatus,
    Trial,
)
from sextant.store.cached_reader import CachedReader, with_status_copy
from sextant.store.informer import Informer
from sextant.store.interface import AlreadyExists, Conflict, NotFound, ResourceStore
from sextant.templates import TemplateError

from . import trial_summary as st
from .trial_plan import new_assignments, plan_trials, without_assignments
from .trials import build_trial, owner_reference

log = logging.getLogger("sextant.experiment_controller")


def _status_doc(resource: Experiment | Suggestion) -> dict[str, Any]:
    doc = resource.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    doc.pop("lastReconcileTime", None)
    return doc


class ExperimentReconciler:
    def __init__(self, store: ResourceStore, events: EventRecorder | None = None,
                 trial_informer: Informer | None = None, experiment_informer: Informer | None = None,
                 suggestion_informer: Informer | None = None, status_interval: float = 0.0):
        self.store = store
        # Trial counts change with every trial event, and with many experiments running those
        # status writes (each sent on to every watcher) are a large share of the stack's CPU. A
        # change of counts only is written at most every ``status_interval`` seconds per
        # experiment (the pass that would write sooner looks again when it may); a change of
        # conditions is written at once. Nothing else waits for these writes: each pass
        # computes the counts afresh from the trials.
        self.status_interval = status_interval
        self._last_write: dict[Key, float] = {}
        self._creator = ThreadPoolExecutor(max_workers=4, thread_name_prefix="create-trial")
        # Experiments and Suggestions are read from the informers' caches, overlaid with this
        # controller's own writes (see CachedReader); without informers, from the store.
        self.experiments: CachedReader[Experiment] = CachedReader(store, experiment_informer, "Experiment")
        self.suggestions: CachedReader[Suggestion] = CachedReader(store, suggestion_informer, "Suggestion")
        self.events = events  # optional sextant.events.EventRecorder
        # The controller's Trial informer: listing an experiment's trials from its cache instead
        # of the store makes a pass O(1) in store traffic (a list per pass made a run of n
        # trials cost O(n^2) documents). The cache is a prefix of the store's history, so it may
        # lack the newest changes, never invent any; the events of those changes requeue us.
        self.trial_informer = trial_informer

    # -- reading ------------------------------------------------------------------------------
    def _trials(self, exp: Experiment) -> list[Trial]:
        informer = self.trial_informer
        if informer is not None and informer.has_synced():
            items = [t for t in informer.list({EXPERIMENT_LABEL: exp.metadata.name})
                     if t.metadata.namespace == exp.metadata.namespace]
        else:
            items, _ = self.store.list("Trial", exp.metadata.namespace, {EXPERIMENT_LABEL: exp.metadata.name})
        return [t for t in items if t.metadata.deletion_timestamp is None]

    def _suggestion(self, exp: Experiment) -> Suggestion | None:
        """Shared with the cache: copy before changing it."""
        return self.suggestions.get(exp.metadata.namespace, exp.metadata.name)

    def _event(self, exp: Experiment, type_: str, reason: str, message: str) -> None:
        if self.events is not None:
            self.events.record(exp, type_, reason, message)

    # -- the pass -----------------------------------------------------------------------------
    def reconcile(self, key: Key) -> Result | None:
        exp = self.experiments.get(key.namespace, key.name)
        if exp is None or exp.metadata.deletion_timestamp:
            self._last_write.pop(key, None)
            return None  # deleted: the store cascades to its Suggestion and Trials
        exp = with_status_copy(exp)
        before = _status_doc(exp)
        if not es.is_created(exp):
            es.mark_created(exp)
            self._event(exp, "Normal", es.REASON_CREATED, es.MSG_CREATED)
            metrics.EXPERIMENT_CREATED.labels(key.namespace).inc()
        trials = self._trials(exp)
        suggestion = self._suggestion(exp)

        if es.is_finished(exp) and es.is_restartable(exp):
            es.mark_restarting(exp)
            self._event(exp, "Normal", es.REASON_RESTARTING, es.MSG_RESTARTING)
            if suggestion is not None and es.resume_policy(exp) == ResumePolicy.FROM_VOLUME:
                self._update_suggestion_status(suggestion, ss.mark_restarting)
                suggestion = self._suggestion(exp)

        was_completed = es.is_finished(exp)
        exhausted = (suggestion is not None and ss.is_exhausted(suggestion)
                     and not new_assignments(suggestion, {t.metadata.name for t in trials}))
        summary = None
        if trials or was_completed:
            # Like Katib, status (and so Running) is computed once the experiment has trials.
            summary = st.update_status(exp, trials, exhausted=exhausted)
        es.mark_waiting_for_algorithm(exp, suggestion)
        if not es.is_finished(exp) and suggestion is not None and ss.is_failed(suggestion):
            es.mark_failed(exp, es.REASON_FAILED, es.suggestion_failed_message(suggestion))

        if es.is_finished(exp):
            if not was_completed:
                last = exp.status.conditions[-1]
                self._event(exp, "Warning" if last.type == es.FAILED else "Normal", last.reason, last.message)
                (metrics.EXPERIMENT_FAILED if last.type == es.FAILED else metrics.EXPERIMENT_SUCCEEDED) \
                    .labels(key.namespace).inc()
            self._write_status(exp, before)
            self._finish(exp, trials, suggestion)
            return None

        # More assignments are asked for before the status is written: the suggestion
        # controller can work on them meanwhile (this is the loop's critical path).
        self._drive(exp, trials, suggestion, summary or st.summarize(exp, trials))
        return self._write_status(exp, before)

    def _write_status(self, exp: Experiment, before: dict[str, Any]) -> Result | None:
        after = _status_doc(exp)
        if after == before:
            return None
        key = Key(exp.metadata.namespace, exp.metadata.name)
        now = time.monotonic()
        if self.status_interval > 0 and after.get("conditions") == before.get("conditions"):
            wait = self._last_write.get(key, float("-inf")) + self.status_interval - now
            if wait > 0:
                return Result(requeue_after=wait)
        # Conflict → the framework retries (by then the cache has the other writer's change).
        self.experiments.wrote(self.store.update_status(exp))
        self._last_write[key] = now
        return None

    # -- running ------------------------------------------------------------------------------
    def _drive(self, exp: Experiment, trials: list[Trial], suggestion: Suggestion | None,
               summary: st.TrialSummary) -> None:
        plan = plan_trials(exp, summary, trials)
        if plan.delete:
            self._shrink(exp, suggestion, plan.delete)
            return
        if suggestion is None:
            suggestion = self._create_suggestion(exp, plan.requests or 0)
        elif plan.requests is not None and suggestion.spec.requests != plan.requests:
            changed = suggestion.model_copy(update={"spec": suggestion.spec.model_copy(
                update={"requests": plan.requests})})
            suggestion = self.suggestions.wrote(self.store.update(changed))
        names = {t.metadata.name for t in trials}
        built = []
        for assignment in new_assignments(suggestion, names):
            try:
                built.append(build_trial(exp, assignment))
            except TemplateError as err:
                # Katib logs and skips a trial it cannot create; the resync tries again.
                log.warning("trial not created: template error",
                            extra={"experiment": exp.metadata.name, "trial": assignment.name, "error": str(err)})
                self._event(exp, "Warning", "TrialTemplateError", f"trial {assignment.name}: {err}")
        # A batch of new trials is created a few at a time in parallel: each create waits for a
        # commit, and these waits are on the path from a finished trial to its replacement.
        for created in self._creator.map(self._create_trial, built):
            if created is not None:
                log.info("trial created", extra={"experiment": exp.metadata.name, "trial": created})

    def _create_trial(self, trial: Trial) -> str | None:
        try:
            self.store.create(trial)
            return trial.metadata.name
        except AlreadyExists:
            return None  # created by an earlier pass (or before a restart)

    def _create_suggestion(self, exp: Experiment, requests: int) -> Suggestion:
        algorithm = exp.spec.algorithm
        assert algorithm is not None, "admission gives every experiment spec.algorithm"
        sugg = Suggestion(
            metadata=ObjectMeta(
                name=exp.metadata.name, namespace=exp.metadata.namespace,
                labels={**exp.metadata.labels, EXPERIMENT_LABEL: exp.metadata.name},
                annotations=dict(exp.metadata.annotations),
                owner_references=[owner_reference(exp)],
            ),
            spec=SuggestionSpec(
                algorithm=algorithm.model_copy(deep=True),
                early_stopping=exp.spec.early_stopping.model_copy(deep=True) if exp.spec.early_stopping else None,
                requests=requests,
                resume_policy=es.resume_policy(exp),
            ),
            status=SuggestionStatus(),
        )
        try:
            return self.suggestions.wrote(self.store.create(sugg))
        except AlreadyExists:
            return cast(Suggestion, self.store.get("Suggestion", exp.metadata.namespace, exp.metadata.name))

    def _shrink(self, exp: Experiment, suggestion: Suggestion | None, delete: list[str]) -> None:
        """parallelTrialCount was lowered: forget the newest active trials, then delete them."""
        doomed = set(delete)
        if suggestion is not None:
            suggestion = suggestion.model_copy(deep=True)  # rare: the simple copy will do
            kept = without_assignments(suggestion, doomed)
            if len(kept) != len(suggestion.status.suggestions) or suggestion.spec.requests > len(kept):
                # requests first: the suggestion controller then never asks for replacements
                if suggestion.spec.requests != len(kept):
                    suggestion.spec.requests = len(kept)
                    suggestion = self.suggestions.wrote(self.store.update(suggestion))
                suggestion.status.suggestions = kept
                suggestion.status.suggestion_count = len(kept)
                self.suggestions.wrote(self.store.update_status(suggestion))
        for name in delete:
            try:
                self.store.delete("Trial", exp.metadata.namespace, name)
                log.info("trial deleted: parallelism lowered",
                         extra={"experiment": exp.metadata.name, "trial": name})
            except NotFound:
                pass

    # -- ended --------------------------------------------------------------------------------
    def _finish(self, exp: Experiment, trials: list[Trial], suggestion: Suggestion | None) -> None:
        for trial in trials:
            if st.classify(trial) in (st.PENDING, st.RUNNING):
                self._kill(trial)
        policy = es.resume_policy(exp)
        if suggestion is None or policy == ResumePolicy.LONG_RUNNING:
            return
        if ss.is_finished(suggestion) or ss.is_restarting(suggestion):
            return
        restartable = policy == ResumePolicy.FROM_VOLUME
        self._update_suggestion_status(suggestion, lambda s: ss.mark_succeeded(s, restartable))

    def _kill(self, trial: Trial) -> None:
        trial = trial.model_copy(deep=True)  # it may be the informer's cached object
        for _ in range(5):
            if not ts.mark_killed(trial):
                return
            try:
                self.store.update_status(trial)
                log.info("trial killed: experiment ended", extra={"trial": trial.metadata.name})
                return
            except Conflict:
                trial = cast(Trial, self.store.get("Trial", trial.metadata.namespace, trial.metadata.name))
                if st.classify(trial) not in (st.PENDING, st.RUNNING):
                    return  # it finished on its own meanwhile
            except NotFound:
                return
        raise Conflict(f"trial {trial.metadata.name}: status kept changing while marking it Killed")

    def _update_suggestion_status(self, suggestion: Suggestion, change: Callable[[Suggestion], bool]) -> None:
        suggestion = with_status_copy(suggestion)
        for _ in range(5):
            if not change(suggestion):
                return
            try:
                self.suggestions.wrote(self.store.update_status(suggestion))
                return
            except Conflict:
                suggestion = cast(Suggestion, self.store.get("Suggestion", suggestion.metadata.namespace,
                                                             suggestion.metadata.name))
        raise Conflict(f"suggestion {suggestion.metadata.name}: status kept changing")
