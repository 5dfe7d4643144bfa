"""``api.v1.beta1.EarlyStopping`` for Sextant's early-stopping algorithms, as Katib's service answers.

* One process serves one algorithm (``medianstop`` or ``asha``, see ``ALGORITHMS``), for any
  number of experiments.
* GetEarlyStoppingRules hands the algorithm a reader of the trials' objective logs, fetched
  from the DB manager named in the request (Katib's ``DBManager.GetObservationLog``). The logs
  of finished trials (SUCCEEDED, EARLYSTOPPED) are cached per namespace and experiment, as they
  no longer change; the answer only uses trials present in the request, so a restarted service
  answers the same.
* Bounds (``sextant.limits``): at most MAX_EARLY_STOPPING_TRIALS trials, names of at most
  MAX_NAME_CHARS, an address of at most MAX_ADDRESS_CHARS, else INVALID_ARGUMENT; the
  observation logs are read only while the caller waits (each read gets the caller's remaining
  time, and the work stops with DEADLINE_EXCEEDED / CANCELLED once it is gone); error messages
  quote at most MAX_MESSAGE_CHARS.
* SetTrialStatus appends the EarlyStopped condition to the Trial in Sextant's resource store
  (``--db-manager``; without it, the DB manager address of the last GetEarlyStoppingRules
  request, which in Sextant serves the store too), retrying on a stale resourceVersion.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

import grpc

from sextant import limits
from sextant.api import api_pb2, api_pb2_grpc
from sextant.channel import open_channel
from sextant.katib import trial_status
from sextant.katib.condition_list import TRUE, set_condition
from sextant.observation_logs import read_logs
from sextant.resources.models import Trial
from sextant.store.interface import Conflict, NotFound, ResourceStore, StoreError, Unavailable

from ..call_context import namespace_of, still_wanted
from .asha import Asha
from .base import FINISHED, EarlyStoppingAlgorithm, InvalidEarlyStoppingSettings
from .medianstop import MedianStop

if TYPE_CHECKING:
    from sextant.server import GrpcServer

log = logging.getLogger("sextant.earlystopping")

SERVICE_NAME = "api.v1.beta1.EarlyStopping"
HEALTH_NAMES = ("", "manager.v1beta1.EarlyStopping")
DB_TIMEOUT = 120.0  # Katib's timeout for GetObservationLog
CONFLICT_RETRIES = 10
MAX_MESSAGE_CHARS = 1000
ALGORITHMS: dict[str, EarlyStoppingAlgorithm] = {a.name: a for a in (MedianStop(), Asha())}


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    """Aborts with ``message`` cut to MAX_MESSAGE_CHARS (it may quote the request)."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + f"... ({len(message)} characters)"
    context.abort(code, message)


class _CallerGone(Exception):
    """The caller of GetEarlyStoppingRules disconnected or ran out of time."""


class _NoDbManager(Exception):
    """Logs are needed but the request names no DB manager."""


def request_problems(request: api_pb2.GetEarlyStoppingRulesRequest) -> list[str]:
    """Sextant's size bounds on a GetEarlyStoppingRules request."""
    problems = []
    if len(request.trials) > limits.MAX_EARLY_STOPPING_TRIALS:
        problems.append(f"trials: at most {limits.MAX_EARLY_STOPPING_TRIALS} in one request, "
                        f"got {len(request.trials)}")
    long_names = sum(1 for t in request.trials if len(t.name) > limits.MAX_NAME_CHARS)
    if long_names:
        problems.append(f"trials: {long_names} trial names are longer than {limits.MAX_NAME_CHARS} characters")
    metric = request.experiment.spec.objective.objective_metric_name
    if len(metric) > limits.MAX_NAME_CHARS:
        problems.append(f"experiment.spec.objective.objective_metric_name: at most {limits.MAX_NAME_CHARS} "
                        f"characters, got {len(metric)}")
    if len(request.db_manager_address) > limits.MAX_ADDRESS_CHARS:
        problems.append(f"db_manager_address: at most {limits.MAX_ADDRESS_CHARS} characters, "
                        f"got {len(request.db_manager_address)}")
    return problems


class EarlyStoppingServicer(api_pb2_grpc.EarlyStoppingServicer):
    def __init__(self, store: ResourceStore | None = None, *, algorithm: str = MedianStop.name,
                 namespace: str = "", token: str | None = None, tls_ca: str | None = None,
                 cache_size: int = 256):
        self._algorithm = ALGORITHMS[algorithm]
        self._store = store
        self._namespace = namespace
        self._token, self._tls_ca = token, tls_ca
        self._channels: dict[str, grpc.Channel] = {}
        # namespace/experiment + metric -> finished trial -> its numeric objective values
        self._values: OrderedDict[str, dict[str, list[float]]] = OrderedDict()
        self._cache_size = cache_size
        self._seen_db_manager = ""  # last db_manager_address of a GetEarlyStoppingRules request
        self._lock = threading.Lock()

    # ---- RPCs ----

    def ValidateEarlyStoppingSettings(self, request: api_pb2.ValidateEarlyStoppingSettingsRequest,
                                      context: grpc.ServicerContext
                                      ) -> api_pb2.ValidateEarlyStoppingSettingsReply:
        errors = self._algorithm.validation_errors(request.early_stopping)
        if errors:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "; ".join(errors))
        return api_pb2.ValidateEarlyStoppingSettingsReply()

    def GetEarlyStoppingRules(self, request: api_pb2.GetEarlyStoppingRulesRequest,
                              context: grpc.ServicerContext) -> api_pb2.GetEarlyStoppingRulesReply:
        experiment = request.experiment
        problems = request_problems(request)
        if problems:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "; ".join(problems))
        errors = self._algorithm.validation_errors(experiment.spec.early_stopping)
        if errors:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "; ".join(errors))
        metric = experiment.spec.objective.objective_metric_name
        if not metric:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                   "experiment.spec.objective.objective_metric_name must be set")
        if request.db_manager_address:
            self._seen_db_manager = request.db_manager_address
        finished = {t.name for t in request.trials if t.status.condition in FINISHED}
        key = f"{namespace_of(context)}/{experiment.name}"

        def read(names: list[str]) -> dict[str, list[float]]:
            if names and not request.db_manager_address:
                raise _NoDbManager
            return self._trial_values(key, names, finished, metric, request.db_manager_address, context)

        try:
            rules = self._algorithm.rules(experiment, list(request.trials), read)
        except InvalidEarlyStoppingSettings as exc:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except _NoDbManager:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "db_manager_address must be set (host:port)")
        except _CallerGone:
            gone = not context.is_active()
            _abort(context, grpc.StatusCode.CANCELLED if gone else grpc.StatusCode.DEADLINE_EXCEEDED,
                   "the caller went away or its deadline passed; reading observation logs was stopped")
        except grpc.RpcError as err:
            _abort(context, grpc.StatusCode.UNAVAILABLE,
                   f"GetObservationLog at {request.db_manager_address}: {err.code().name}: {err.details()}")
        reply = api_pb2.GetEarlyStoppingRulesReply(early_stopping_rules=rules)
        log.info("early stopping rules", extra={"experiment": experiment.name, "algorithm": self._algorithm.name,
                                                 "trials": len(request.trials), "rules": len(rules)})
        return reply

    def SetTrialStatus(self, request: api_pb2.SetTrialStatusRequest,
                       context: grpc.ServicerContext) -> api_pb2.SetTrialStatusReply:
        name = request.trial_name
        if not name:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "trial_name must be set")
        if len(name) > limits.MAX_NAME_CHARS:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT,
                   f"trial_name: at most {limits.MAX_NAME_CHARS} characters, got {len(name)}")
        if self._store is None and self._seen_db_manager:
            # Sextant's DB manager serves the resource store on the same address as Katib's
            # DBManager API, so the address the controller sent with GetEarlyStoppingRules works.
            from sextant.store.client import GrpcResourceStore

            self._store = GrpcResourceStore(self._seen_db_manager, token=self._token, tls_ca=self._tls_ca)
        if self._store is None:
            _abort(context, grpc.StatusCode.FAILED_PRECONDITION,
                   "this early-stopping service has no resource store (start it with --db-manager)")
        try:
            self._mark_early_stopped(name)
        except NotFound as exc:
            _abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
        except _Ambiguous as exc:
            _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except Unavailable as exc:
            _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        except StoreError as exc:
            _abort(context, grpc.StatusCode.INTERNAL, f"cannot update trial {name}: {exc}")
        log.info("trial early stopped", extra={"trial": name})
        return api_pb2.SetTrialStatusReply()

    # ---- helpers ----

    def _trial_values(self, experiment: str, trials: list[str], finished: set[str], metric: str,
                      address: str, context: grpc.ServicerContext | None = None) -> dict[str, list[float]]:
        key = f"{experiment}\0{metric}"
        with self._lock:
            cached = self._values.setdefault(key, {})
            self._values.move_to_end(key)
            while len(self._values) > self._cache_size:
                self._values.popitem(last=False)
        stub = api_pb2_grpc.DBManagerStub(self._channel(address)) if trials else None
        out = {}
        for name in trials:
            values = cached.get(name)
            if values is None and stub is not None:
                timeout = DB_TIMEOUT
                if context is not None:
                    if not still_wanted(context):
                        raise _CallerGone
                    remaining = context.time_remaining()
                    timeout = DB_TIMEOUT if remaining is None else max(0.001, min(DB_TIMEOUT, remaining))
                logs = read_logs(stub, name, metric, timeout=timeout)  # in pages if long
                values = numeric_values(ml.metric.value for ml in logs if ml.metric.name == metric)
                if values and name in finished:
                    cached[name] = values  # final: never read again
            if values:
                out[name] = values  # a trial without numeric values (yet) does not count
        return out

    def _channel(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = open_channel(address, token=self._token, tls_ca=self._tls_ca)
                self._channels[address] = channel
            return channel

    def _find_trial(self, name: str) -> Trial:
        if self._namespace:
            # SetTrialStatus set the store before calling; kind "Trial" gives a Trial model.
            return cast(Trial, self._store.get("Trial", self._namespace, name))  # type: ignore[union-attr]
        items, _ = self._store.list("Trial", "")  # type: ignore[union-attr]  # set, as above
        matches = [t for t in cast(list[Trial], items) if t.metadata.name == name]
        if not matches:
            raise NotFound(f"trial {name} not found")
        if len(matches) > 1:
            spaces = sorted(t.metadata.namespace for t in matches)
            raise _Ambiguous(f"trial name {name} exists in several namespaces ({', '.join(spaces)}); "
                             "start the service with --namespace")
        return matches[0]

    def _mark_early_stopped(self, name: str) -> None:
        trial = self._find_trial(name)
        for attempt in range(CONFLICT_RETRIES):
            conditions = trial.status.conditions
            if not set_condition(conditions, trial_status.EARLY_STOPPED, TRUE,
                                 trial_status.REASON_EARLY_STOPPED, trial_status.MSG_EARLY_STOPPED):
                return  # already marked: SetTrialStatus is idempotent
            try:
                self._store.update_status(trial)  # type: ignore[union-attr]  # set by SetTrialStatus
                return
            except Conflict:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                trial = cast(Trial, self._store.get(  # type: ignore[union-attr]  # set by SetTrialStatus
                    "Trial", trial.metadata.namespace, name))

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


class _Ambiguous(StoreError):
    pass


def numeric_values(texts: Iterable[str]) -> list[float]:
    """The finite numbers among logged values ("unavailable" and the like are skipped)."""
    out = []
    for text in texts:
        try:
            value = float(text)
        except ValueError:
            continue
        if math.isfinite(value):
            out.append(value)
    return out


def add_to_server(servicer: EarlyStoppingServicer, server: GrpcServer) -> None:
    api_pb2_grpc.add_EarlyStoppingServicer_to_server(servicer, server.grpc)
    server.add_service_names(SERVICE_NAME)
