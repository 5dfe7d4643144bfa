"""The suggestion reconcile: one level-triggered pass over one Suggestion (Katib's suggestion controller).

1. Succeeded (the experiment ended, Never/FromVolume) or Failed → tear the algorithm service
   down (FromVolume keeps its state directory) and stop. So does a Suggestion whose Experiment
   is gone or being deleted: a deleted experiment's service is never started again.
2. Created on first sight.
3. Ensure the algorithm service through the Runtime (a dead one is started again): Katib's
   ``<experiment>-<algorithm>``, or one shared by every experiment of that algorithm
   (``shared_services``, the local default); not healthy yet → DeploymentReady=False with how
   long it has been starting, and look again shortly.
4. Once per service start: ValidateAlgorithmSettings (+ ValidateEarlyStoppingSettings).
   INVALID_ARGUMENT/UNKNOWN → Suggestion Failed "Validation failed: <message>" (terminal, the
   experiment fails with it); UNAVAILABLE → retry with backoff; any other answer = valid.
5. Ask for ``requests − suggestionCount`` assignments with the GetSuggestions request (``grpc_requests``), attach the
   early-stopping rules, name them, and record them with the settings overlay in *one* status
   write. A reply with the wrong count stores nothing (error, retried with backoff).

Sextant additions: an algorithm that answers GetSuggestions with INVALID_ARGUMENT rejects the
experiment itself -- asking again cannot help -- so the Suggestion is Failed with the
algorithm's message ("GetSuggestions rejected the experiment: ...") and the experiment fails
with it, instead of a retry every backoff period for ever. An algorithm that answers OUT_OF_RANGE has exhausted its search space. The
controller then asks one assignment at a time to collect what is left (grid answers
OUT_OF_RANGE when fewer points remain than requested), records those, and sets the condition
``Exhausted=True`` (reason ``SuggestionEndReached``); the experiment controller ends the
experiment once the last trials finish. No further GetSuggestions calls are made.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc

from sextant.algorithm_registry import NAMESPACE_METADATA, Registry
from sextant.api import api_pb2, api_pb2_grpc
from sextant.channel_cache import ChannelCache
from sextant.controller import Key, Result
from sextant.katib import suggestion_status as ss
from sextant.resources.models import (
    EXPERIMENT_LABEL,
    AlgorithmSetting,
    EarlyStoppingRule,
    Experiment,
    ParameterAssignment,
    ResumePolicy,
    Suggestion,
    Trial,
    TrialAssignment,
)
from sextant.runtime.base import OwnedService, Runtime, ServiceSpec, ServiceStatus
from sextant.store.cached_reader import CachedReader, with_status_copy
from sextant.store.informer import Informer
from sextant.store.interface import Conflict, ResourceStore

from . import grpc_requests as rb
from .shared_services import Placement, ServiceMode, per_experiment_name

log = logging.getLogger("sextant.suggestion_controller")

NAME_ALPHABET = string.ascii_lowercase + string.digits


class SuggestionError(Exception):
    """A reconcile failure that is retried with backoff (nothing was stored)."""


class SuggestionRejected(Exception):
    """The algorithm refused the experiment (INVALID_ARGUMENT): terminal, never retried."""


MAX_REASON_CHARS = 1000


def _rejection(call: str, err: grpc.RpcError) -> SuggestionRejected:
    details = err.details() or err.code().name
    if len(details) > MAX_REASON_CHARS:
        details = details[:MAX_REASON_CHARS] + "..."
    return SuggestionRejected(f"{call} rejected the experiment: {details}")


@dataclass
class _Known:
    namespace: str
    service: str
    persistent: bool
    shared: bool


def _namespace_of(exp: Experiment) -> tuple[tuple[str, str], ...]:
    """Call metadata naming the experiment's namespace: Katib's messages carry only its name,
    and a service shared by many namespaces keeps their state apart by both (others ignore it)."""
    return ((NAMESPACE_METADATA, exp.metadata.namespace),)


def service_name(suggestion: Suggestion) -> str:
    """Katib's per-experiment service name."""
    return per_experiment_name(suggestion.metadata.name, suggestion.spec.algorithm.algorithm_name)


def random_trial_name(prefix: str, taken: set[str]) -> str:
    """``<prefix>-<8 lowercase alnum>`` not in ``taken`` (36^8 ≈ 2.8e12 names)."""
    while True:
        name = f"{prefix}-{''.join(secrets.choice(NAME_ALPHABET) for _ in range(8))}"
        if name not in taken:
            return name


def _status_doc(s: Suggestion) -> dict[str, Any]:
    """The status as compared before and after a pass; the (long) list of assignments is
    compared by identity, since a pass only ever replaces it."""
    doc = s.status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"suggestions"})
    doc.pop("lastReconcileTime", None)
    doc["suggestions"] = id(s.status.suggestions)
    return doc


class SuggestionReconciler:
    def __init__(self, store: ResourceStore, runtime: Runtime, registry: Registry, *,
                 db_manager_address: str, token: str | None = None, call_timeout: float = 60.0,
                 not_ready_requeue: float = 0.1, algorithm_busy_requeue: float = 1.0,
                 placement: Placement | None = None):
        # not_ready_requeue: a starting algorithm service is looked at again this soon -- the
        # experiment's first assignments wait for it.
        self.store = store
        self.runtime = runtime
        self.registry = registry
        self.db_manager_address = db_manager_address
        self.token = token
        self.call_timeout = call_timeout
        self.not_ready_requeue = not_ready_requeue
        self.algorithm_busy_requeue = algorithm_busy_requeue
        self.placement = placement or Placement()
        self._known: dict[Key, _Known] = {}
        # Suggestions and Experiments come from informer caches overlaid with our own writes
        # (set by build_controller; without informers they are read from the store).
        self.suggestions: CachedReader[Suggestion] = CachedReader(store, None, "Suggestion")
        self.experiments: CachedReader[Experiment] = CachedReader(store, None, "Experiment")
        self._validated: dict[Key, str] = {}  # key → address of the service instance validated
        # Optional Trial informer (set by build_controller): trials for GetSuggestions come from
        # its cache instead of a store List per pass (as Katib's cached client does).
        self.trial_informer: Informer | None = None
        self._channels: ChannelCache | None = None

    def housekeeping(self, namespace: str = "") -> list[Key]:
        """Run by every resync: stops shared services nobody uses any more, and returns the
        keys of per-experiment services whose Suggestion is gone (their pass deletes them)."""
        owned = self.runtime.owned_services()
        self.stop_idle_services(owned)
        return self.orphan_keys(namespace, owned)

    def orphan_keys(self, namespace: str = "", owned: list[OwnedService] | None = None) -> list[Key]:
        """Keys of Suggestions that are gone but whose algorithm service still runs (deleted
        while this controller was down); their pass deletes the service. Shared services
        (no Suggestion of their own) are ``stop_idle_services``' business."""
        keys = []
        for svc in self.runtime.owned_services() if owned is None else owned:
            if not svc.suggestion:
                continue
            key = Key(svc.namespace, svc.suggestion)
            if (namespace and svc.namespace != namespace) or \
                    self.suggestions.get(key.namespace, key.name) is not None:
                continue
            # Suggestion gone: its state goes too.
            self._known.setdefault(key, _Known(svc.namespace, svc.name, persistent=False, shared=False))
            keys.append(key)
        return keys

    def stop_idle_services(self, owned: list[OwnedService] | None = None) -> list[str]:
        """Stops the shared services that no live Suggestion has used for the idle period."""
        placement = self.placement
        if placement.mode != ServiceMode.SHARED:
            return []
        owned = self.runtime.owned_services() if owned is None else owned
        in_use = [placement.service_of(s)[1] for s in self._live_suggestions() if placement.is_shared(s)]
        stopped = []
        for name in placement.idle_services(owned, in_use):
            if not placement.still_idle(name):
                continue
            log.info("stopping an idle shared algorithm service",
                     extra={"service": name, "idle_seconds": placement.idle_seconds})
            self.runtime.delete_service(placement.shared_namespace, name)
            placement.forget(name)
            stopped.append(name)
        return stopped

    def _live_suggestions(self) -> list[Suggestion]:
        """Unfinished Suggestions whose Experiment exists and is not being deleted."""
        informer = self.suggestions.informer
        if informer is not None and informer.has_synced():
            items = cast(list[Suggestion], informer.list())
        else:
            items = cast(list[Suggestion], self.store.list("Suggestion", "")[0])
        live = []
        for sugg in items:
            if ss.is_finished(sugg) or sugg.metadata.deletion_timestamp:
                continue
            exp = self.experiments.get(sugg.metadata.namespace, sugg.metadata.name)
            if exp is not None and not exp.metadata.deletion_timestamp:
                live.append(sugg)
        return live

    def _release(self, known: _Known) -> None:
        """This Suggestion is done with its service: a per-experiment one is deleted, a shared
        one is left to the others (and to ``stop_idle_services``)."""
        if not known.shared:
            self.runtime.delete_service(known.namespace, known.service, keep_state=known.persistent)

    # -- the pass -----------------------------------------------------------------------------
    def reconcile(self, key: Key) -> Result | None:
        sugg = self.suggestions.get(key.namespace, key.name)
        if sugg is None:
            gone = self._known.pop(key, None)
            self._validated.pop(key, None)
            if gone is not None:
                self._release(gone)
            return None
        sugg = with_status_copy(sugg)
        persistent = sugg.spec.resume_policy == ResumePolicy.FROM_VOLUME
        service_namespace, name = self.placement.service_of(sugg)
        known = _Known(service_namespace, name, persistent, self.placement.is_shared(sugg))
        self._known[key] = known

        if ss.is_finished(sugg):
            self._release(known)
            self._validated.pop(key, None)
            return None

        exp = self.experiments.get(key.namespace, key.name)
        if exp is None or exp.metadata.deletion_timestamp or sugg.metadata.deletion_timestamp:
            # The experiment is gone (a cache may still show its Suggestion for a moment): its
            # service must go, and nothing may start one again.
            self._release(known)
            self._validated.pop(key, None)
            return None

        before = _status_doc(sugg)
        ss.mark_created(sugg)

        try:
            spec = self._service_spec(sugg, known)
        except SuggestionError as err:
            self._fail(sugg, str(err))
            return None
        if known.shared:
            self.placement.used(name)
        state = self.runtime.ensure_service(spec)
        if not state.ready:
            ss.mark_service_starting(sugg, f"{known.namespace}/{known.service}", state.message)
            self._write(sugg, before)
            return Result(requeue_after=self.not_ready_requeue)
        ss.mark_deployment_ready(sugg, True)

        trials = self._trials(exp)

        if self._validated.get(key) != state.address or not ss.is_running(sugg):
            problem = self._validate(exp, state)
            if problem is not None:
                self._fail(sugg, ss.validation_failed_message(problem))
                return None
            ss.mark_running(sugg)
            self._validated[key] = state.address or ""
        sugg = self._write(sugg, before)

        if ss.is_exhausted(sugg):
            return None
        if rb.current_request_number(sugg) <= 0:
            return None
        try:
            synced = self._sync_assignments(exp, sugg, trials, state)
        except SuggestionRejected as rejected:
            self._fail(sugg, str(rejected))
            return None
        if not synced:
            # The algorithm answered UNAVAILABLE (e.g. a hyperband rung still running): ask again
            # soon rather than after an ever longer error backoff.
            return Result(requeue_after=self.algorithm_busy_requeue)
        return None

    # -- pieces -------------------------------------------------------------------------------
    def _service_spec(self, sugg: Suggestion, known: _Known) -> ServiceSpec:
        """The service from the registry entry: local ``command`` and/or Kubernetes ``image``+``args``.
        A shared service has no owner and no Suggestion label: no one experiment owns it."""
        algo = sugg.spec.algorithm.algorithm_name
        entry = self.registry.algorithm(algo)
        if entry is None or not (entry.command or entry.image.strip()):
            raise SuggestionError(f"algorithm {algo!r} is not in the algorithm registry ({self.registry.source})")
        es_entry = None
        if sugg.spec.early_stopping is not None and sugg.spec.early_stopping.algorithm_name:
            es_name = sugg.spec.early_stopping.algorithm_name
            es_entry = self.registry.early_stopping(es_name)
            if es_entry is None or not (es_entry.command or es_entry.image.strip()):
                raise SuggestionError(f"early stopping algorithm {es_name!r} is not in the algorithm registry")
        name = sugg.metadata.name
        if known.shared:
            labels = {"katib.kubeflow.org/deployment": known.service}
            owner = None
        else:
            labels = {**sugg.metadata.labels, EXPERIMENT_LABEL: name, "katib.kubeflow.org/suggestion": name,
                      "katib.kubeflow.org/deployment": known.service}
            owner = {"apiVersion": sugg.api_version, "kind": "Suggestion", "name": name, "uid": sugg.metadata.uid}
        return ServiceSpec(
            name=known.service, namespace=known.namespace, algorithm=algo,
            command=list(entry.command), image=entry.image, args=entry.container_args(),
            image_pull_policy=entry.image_pull_policy, env=dict(entry.env),
            labels=labels, owner=owner,
            resources=entry.resources,
            early_stopping_command=list(es_entry.command) if es_entry and es_entry.command else None,
            early_stopping_image=es_entry.image if es_entry else "",
            early_stopping_args=es_entry.container_args() if es_entry else [],
            persistent=known.persistent, shared=known.shared,
        )

    def _trials(self, exp: Experiment) -> list[Trial]:
        labels = {**exp.metadata.labels, EXPERIMENT_LABEL: exp.metadata.name}
        informer = self.trial_informer
        if informer is not None and informer.has_synced():
            return [t for t in informer.list(labels) if t.metadata.namespace == exp.metadata.namespace]
        items, _ = self.store.list("Trial", exp.metadata.namespace, labels)
        return cast(list[Trial], items)

    def _channel(self, address: str) -> grpc.Channel:
        """A cached channel: callers must not close it."""
        if self._channels is None:
            self._channels = ChannelCache(self.token)
        return self._channels.get(address)

    def _multi_objective(self, exp: Experiment) -> bool:
        """Whether the experiment's algorithm service optimises several objectives."""
        entry = self.registry.algorithm(exp.spec.algorithm.algorithm_name) if exp.spec.algorithm else None
        return entry is not None and entry.multi_objective

    def _validate(self, exp: Experiment, state: ServiceStatus) -> str | None:
        """None when valid; the algorithm's message when it rejects the settings."""
        calls: list[tuple[str | None, Callable[[grpc.Channel], object]]] = [
            (state.address, lambda ch: api_pb2_grpc.SuggestionStub(ch).ValidateAlgorithmSettings(
                rb.validate_request(exp, with_objectives=self._multi_objective(exp)), timeout=self.call_timeout,
                metadata=_namespace_of(exp)))]
        if exp.spec.early_stopping is not None and state.early_stopping_address:
            calls.append((state.early_stopping_address,
                          lambda ch: api_pb2_grpc.EarlyStoppingStub(ch).ValidateEarlyStoppingSettings(
                              api_pb2.ValidateEarlyStoppingSettingsRequest(
                                  early_stopping=rb.early_stopping_message(exp)), timeout=self.call_timeout,
                              metadata=_namespace_of(exp))))
        for address, call in calls:
            if not address:
                raise SuggestionError("the algorithm service has no address yet")
            channel = self._channel(address)
            try:
                call(channel)
            except grpc.RpcError as err:
                code = err.code()
                if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNKNOWN):
                    details = str(err.details() or code.name)
                    return details if len(details) <= MAX_REASON_CHARS else details[:MAX_REASON_CHARS] + "..."
                if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                            grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    # A service that refuses this controller's token has judged nothing: passing
                    # it as valid would only move the failure to the first GetSuggestions or
                    # GetEarlyStoppingRules, with the settings marked as checked.
                    raise SuggestionError(f"validation at {address}: {code.name}: {err.details()}") from None
                # Any other answer (UNIMPLEMENTED, INTERNAL, ...) counts as valid, as in Katib.
        return None

    def _get_suggestions(self, address: str | None, req: api_pb2.GetSuggestionsRequest, namespace: str
                         ) -> api_pb2.GetSuggestionsReply:
        if not address:
            raise SuggestionError("the algorithm service has no address yet")
        channel = self._channel(address)
        reply: api_pb2.GetSuggestionsReply = api_pb2_grpc.SuggestionStub(channel).GetSuggestions(
            req, timeout=self.call_timeout, metadata=((NAMESPACE_METADATA, namespace),))
        return reply

    def _sync_assignments(self, exp: Experiment, sugg: Suggestion, trials: list[Trial],
                          state: ServiceStatus) -> bool:
        """Asks for and records new assignments; False if the algorithm said "not yet"."""
        current = rb.current_request_number(sugg)
        req = rb.suggestions_request(exp, sugg, trials, with_objectives=self._multi_objective(exp))
        exhausted = False
        replies: list[api_pb2.GetSuggestionsReply] = []
        try:
            reply = self._get_suggestions(state.address, req, exp.metadata.namespace)
            if len(reply.parameter_assignments) != current:
                raise SuggestionError(
                    f"The response contains unexpected trials: asked for {current}, "
                    f"got {len(reply.parameter_assignments)}")
            replies.append(reply)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAVAILABLE and state.address:
                log.info("algorithm not ready", extra={"suggestion": sugg.metadata.name,
                                                       "detail": err.details()})
                return False
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise _rejection("GetSuggestions", err) from None
            if err.code() != grpc.StatusCode.OUT_OF_RANGE:
                raise SuggestionError(f"GetSuggestions at {state.address}: {err.code().name}: "
                                      f"{err.details()}") from None
            exhausted = True
            replies = self._collect_rest(state.address, req, current, exp.metadata.namespace)
        assignments_pb = [a for r in replies for a in r.parameter_assignments]
        overlay = [AlgorithmSetting(name=s.name, value=s.value)
                   for r in replies if r.HasField("algorithm") for s in r.algorithm.algorithm_settings]
        rules = self._early_stopping_rules(exp, sugg, trials, state) if assignments_pb else []
        self._record(sugg, assignments_pb, overlay, rules, exhausted, current, trials)
        return True

    def _collect_rest(self, address: str | None, req: api_pb2.GetSuggestionsRequest, wanted: int,
                      namespace: str) -> list[api_pb2.GetSuggestionsReply]:
        """After OUT_OF_RANGE: ask one at a time for what is left (at most ``wanted - 1``)."""
        replies: list[api_pb2.GetSuggestionsReply] = []
        if wanted <= 1:
            return replies
        base_total = req.total_request_number - req.current_request_number
        for i in range(wanted - 1):
            single = api_pb2.GetSuggestionsRequest()
            single.CopyFrom(req)
            single.current_request_number = 1
            single.total_request_number = base_total + i + 1
            try:
                reply = self._get_suggestions(address, single, namespace)
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.OUT_OF_RANGE:
                    break
                if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    raise _rejection("GetSuggestions", err) from None
                raise SuggestionError(f"GetSuggestions at {address}: {err.code().name}: {err.details()}") from None
            if len(reply.parameter_assignments) != 1:
                break
            replies.append(reply)
        return replies

    def _early_stopping_rules(self, exp: Experiment, sugg: Suggestion, trials: list[Trial],
                              state: ServiceStatus) -> list[EarlyStoppingRule]:
        if exp.spec.early_stopping is None or not state.early_stopping_address:
            return []
        channel = self._channel(state.early_stopping_address)
        # A service Sextant did not create (Katib's, kept at the switch) may need another address.
        db_manager = state.db_manager_address or self.db_manager_address
        try:
            reply = api_pb2_grpc.EarlyStoppingStub(channel).GetEarlyStoppingRules(
                rb.early_stopping_rules_request(exp, sugg, trials, db_manager),
                timeout=self.call_timeout, metadata=_namespace_of(exp))
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:  # asking again cannot help
                raise _rejection("GetEarlyStoppingRules", err) from None
            raise SuggestionError(f"GetEarlyStoppingRules at {state.early_stopping_address}: "
                                  f"{err.code().name}: {err.details()}") from None
        return [EarlyStoppingRule(name=r.name, value=r.value, comparison=rb.comparison_name(r.comparison),
                                  start_step=r.start_step) for r in reply.early_stopping_rules]

    def _record(self, sugg: Suggestion, assignments_pb: list[api_pb2.GetSuggestionsReply.ParameterAssignments],
                overlay: list[AlgorithmSetting], rules: list[EarlyStoppingRule], exhausted: bool, current: int,
                trials: list[Trial]) -> None:
        """One status write; on a conflict re-read and re-apply only if nothing relevant moved."""
        expected_count = sugg.status.suggestion_count
        taken = {a.name for a in sugg.status.suggestions} | {t.metadata.name for t in trials}
        new: list[TrialAssignment] = []
        for a in assignments_pb:
            name = a.trial_name or random_trial_name(sugg.metadata.name, taken)
            taken.add(name)
            new.append(TrialAssignment(
                name=name,
                parameter_assignments=[ParameterAssignment(name=p.name, value=p.value) for p in a.assignments],
                early_stopping_rules=[r.model_copy() for r in rules],
                labels=dict(a.labels) or None,
            ))
        for _ in range(5):
            if new:
                sugg.status.suggestions = list(sugg.status.suggestions) + new
                sugg.status.suggestion_count = len(sugg.status.suggestions)
                if overlay:
                    sugg.status.algorithm_settings = rb.overlay_settings(sugg.status.algorithm_settings, overlay)
            if exhausted:
                ss.mark_exhausted(sugg)
            try:
                self.suggestions.wrote(self.store.update_status(sugg))
                if new:
                    log.info("assignments recorded", extra={"suggestion": sugg.metadata.name,
                                                             "count": len(new), "exhausted": exhausted})
                return
            except Conflict:
                sugg = cast(Suggestion, self.store.get("Suggestion", sugg.metadata.namespace, sugg.metadata.name))
                if (sugg.status.suggestion_count != expected_count
                        or rb.current_request_number(sugg) < len(new)
                        or ss.is_succeeded(sugg)):
                    raise SuggestionError("the Suggestion changed while asking the algorithm; "
                                          "the reply was discarded") from None
        raise SuggestionError("the Suggestion status kept changing; the reply was discarded")

    def _write(self, sugg: Suggestion, before: dict[str, Any]) -> Suggestion:
        if _status_doc(sugg) != before:
            return self.suggestions.wrote(self.store.update_status(sugg))
        return sugg

    def _fail(self, sugg: Suggestion, message: str) -> None:
        ss.mark_failed(sugg, message)
        self.suggestions.wrote(self.store.update_status(sugg))  # Conflict → retried; validation runs again
        log.warning("suggestion failed", extra={"suggestion": sugg.metadata.name, "reason": message})
        namespace, name = self.placement.service_of(sugg)
        self._release(_Known(namespace, name, sugg.spec.resume_policy == ResumePolicy.FROM_VOLUME,
                             self.placement.is_shared(sugg)))
