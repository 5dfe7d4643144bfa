"""Katib Suggestion-contract checks runnable against any service at HOST:PORT.

Each check takes a ``Target`` and returns a ``CheckResult``; ``run_checks`` runs them all. They
use only the wire API (api.v1.beta1.Suggestion + grpc.health.v1), so they work on Sextant's
services, Katib's own images and a user's custom algorithm alike.

What is checked (the contract Katib's suggestion controller relies on):
  health            grpc.health.v1 Check("manager.v1beta1.Suggestion") is SERVING
  validate_valid    ValidateAlgorithmSettings accepts a valid experiment (not INVALID_ARGUMENT/UNKNOWN)
  validate_invalid  it rejects a known-bad setting with INVALID_ARGUMENT (when an example is known)
  request_counts    GetSuggestions returns exactly current_request_number assignments (1, 2, 5)
  feasible_values   every value is feasible and formatted (INT integer string, DOUBLE float string,
                    lists from the list, step honoured) over many requests with growing history
  many_experiments  concurrent requests for several experiments with different spaces: each reply
                    matches its own experiment's space (no cross-talk)
  fresh_history     a request carrying 100 completed trials (as after a restart) is answered validly
  pending_no_repeat with pending trials in the request and a batch of 5, nothing proposed equals a
                    pending point or another point of the batch
  multi_objective   only for a service that optimises several objectives (``Target(multi_objective=
                    True)``, ``--multi-objective``; Sextant's registry entries with ``multiObjective:
                    true``): an experiment declaring a second objective (the ``sextant.io/objectives``
                    setting, its metric in additionalMetricNames) validates, a bad direction is
                    INVALID_ARGUMENT, and with trials reporting both metrics plus pending ones a
                    batch is feasible and repeats no point
"""

from __future__ import annotations

import math
import random
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sextant.api import api_pb2, api_pb2_grpc
from sextant.channel import open_channel

from . import builders as b

HEALTH_SERVICE = "manager.v1beta1.Suggestion"
_INT_RE = re.compile(r"^[+-]?\d+$")
Condition = api_pb2.TrialStatus.TrialConditionType

# Settings each Katib algorithm service rejects; used when none is given.
KNOWN_INVALID: dict[str, dict[str, str]] = {
    "random": {"random_state": "-1"},
    "tpe": {"gamma": "1.5"},
    "grid": {"random_state": "-1"},
    "multivariate-tpe": {"n_startup_trials": "-1"},
    "cmaes": {"restart_strategy": "sometimes"},
    "sobol": {"random_state": "-1"},
    "bayesianoptimization": {"base_estimator": "SVM"},
    "hyperband": {"r_l": "-1", "resource_name": "epochs"},
    "nsga2": {"population_size": "1"},
    "mo-tpe": {"n_startup_trials": "-1"},
    "pbt": {"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "4",
            "truncation_threshold": "0.2"},
}


@dataclass
class Profile:
    """How to build valid experiments for one algorithm."""

    params: Callable[[], list[api_pb2.ParameterSpec]] = b.mixed_space
    settings: dict[str, str] = field(default_factory=dict)
    max_trial_count: int = 0
    parallel_trial_count: int = 0
    skip: frozenset[str] = frozenset()


def _grid_space() -> list[api_pb2.ParameterSpec]:
    return [
        b.parameter("lr", "double", min="0.01", max="0.1", step="0.01"),
        b.parameter("layers", "int", min="1", max="8"),
        b.parameter("width", "int", min="16", max="128", step="16"),
        b.parameter("optimizer", "categorical", values=["sgd", "adam", "ftrl"]),
        b.parameter("batch", "discrete", values=["16", "32", "64"]),
    ]


def _hyperband_space() -> list[api_pb2.ParameterSpec]:
    return [
        b.parameter("lr", "double", min="0.001", max="0.1"),
        b.parameter("momentum", "double", min="0.5", max="0.9"),
        b.parameter("epochs", "int", min="1", max="9"),
    ]


PROFILES: dict[str, Profile] = {
    "grid": Profile(params=_grid_space),
    # hyperband's reply depends on its own bracket state; history checks need its trial flow.
    "hyperband": Profile(params=_hyperband_space, settings={"r_l": "9", "resource_name": "epochs", "eta": "3"},
                         parallel_trial_count=9, skip=frozenset({"fresh_history", "pending_no_repeat"})),
    # pbt's required settings; its later generations copy values on purpose (exploit).
    "pbt": Profile(settings={"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "5",
                             "truncation_threshold": "0.2"}),
}


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0
    skipped: bool = False


@dataclass
class Target:
    """A Suggestion service to check."""

    address: str
    algorithm: str
    settings: dict[str, str] | None = None
    invalid_settings: dict[str, str] | None = None
    token: str | None = None
    tls_ca: str | None = None
    timeout: float = 60.0  # Katib's controller allows 60 s per call
    channel: grpc.Channel | None = None
    multi_objective: bool = False  # it optimises the objectives ``sextant.io/objectives`` declares

    def __post_init__(self) -> None:
        if self.channel is None:
            self.channel = open_channel(self.address, token=self.token, tls_ca=self.tls_ca)
        self.stub = api_pb2_grpc.SuggestionStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.profile = PROFILES.get(self.algorithm, Profile())
        self.run_id = uuid.uuid4().hex[:6]

    def experiment(self, suffix: str, params: list[api_pb2.ParameterSpec] | None = None,
                   settings: dict[str, str] | None = None) -> api_pb2.Experiment:
        merged = dict(self.profile.settings)
        merged.update(self.settings or {})
        if settings is not None:
            merged = settings
        return b.experiment(f"conformance-{self.run_id}-{suffix}", self.algorithm,
                            params if params is not None else self.profile.params(), settings=merged,
                            max_trial_count=self.profile.max_trial_count,
                            parallel_trial_count=self.profile.parallel_trial_count)

    def get(self, exp: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> api_pb2.GetSuggestionsReply:
        request = api_pb2.GetSuggestionsRequest(experiment=exp, trials=trials, current_request_number=count,
                                                total_request_number=len(trials) + count)
        reply: api_pb2.GetSuggestionsReply = self.stub.GetSuggestions(request, timeout=self.timeout)
        return reply


# ---- value checks (no server needed) ----


def value_problem(spec: api_pb2.ParameterSpec, value: str) -> str | None:
    """Why ``value`` is not a feasible, Katib-formatted value of ``spec`` (None when it is)."""
    fs = spec.feasible_space
    name = spec.name
    step: float | None
    if spec.parameter_type in (api_pb2.CATEGORICAL, api_pb2.DISCRETE):
        return None if value in fs.list else f"{name}={value!r} not in {list(fs.list)}"
    if spec.parameter_type == api_pb2.INT:
        if not _INT_RE.match(value):
            return f"{name}={value!r} is not an integer string"
        v = float(int(value))
        step = float(fs.step or "1")
    else:
        try:
            v = float(value)
        except ValueError:
            return f"{name}={value!r} is not a float string"
        if not math.isfinite(v):
            return f"{name}={value!r} is not finite"
        step = float(fs.step) if fs.step else None
    lo, hi = float(fs.min), float(fs.max)
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    if v < lo - tol or v > hi + tol:
        return f"{name}={value} outside [{fs.min}, {fs.max}]"
    if step:
        k = (v - lo) / step
        if abs(k - round(k)) > 1e-6:
            return f"{name}={value} not on the grid {fs.min} + k*{fs.step}"
    return None


def assignment_problems(exp: api_pb2.Experiment, point: dict[str, str]) -> list[str]:
    specs = {p.name: p for p in exp.spec.parameter_specs.parameters}
    out = [f"unexpected parameter {n}" for n in sorted(set(point) - set(specs))]
    out += [f"missing parameter {n}" for n in specs if n not in point]
    for n, v in point.items():
        if n in specs:
            msg = value_problem(specs[n], v)
            if msg:
                out.append(msg)
    return out


def _key(exp: api_pb2.Experiment, point: dict[str, str]) -> tuple[float | str, ...]:
    out: list[float | str] = []
    for p in exp.spec.parameter_specs.parameters:
        v = point.get(p.name, "")
        try:
            out.append(round(float(v), 9) if p.parameter_type in (api_pb2.INT, api_pb2.DOUBLE) else v)
        except ValueError:
            out.append(v)
    return tuple(out)


def _reply_points(reply: api_pb2.GetSuggestionsReply) -> list[dict[str, str]]:
    return [b.assignment(pa) for pa in reply.parameter_assignments]


def _rpc_error(exc: grpc.RpcError) -> str:
    return f"{exc.code().name}: {exc.details()}"


# ---- checks ----


def check_health(t: Target) -> CheckResult:
    try:
        resp = t.health.Check(health_pb2.HealthCheckRequest(service=HEALTH_SERVICE), timeout=t.timeout)
    except grpc.RpcError as exc:
        return CheckResult("health", False, _rpc_error(exc))
    ok = resp.status == health_pb2.HealthCheckResponse.SERVING
    return CheckResult("health", ok, f"status {health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)}")


def check_validate_valid(t: Target) -> CheckResult:
    exp = t.experiment("valid")
    try:
        t.stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp),
                                         timeout=t.timeout)
    except grpc.RpcError as exc:
        # Katib's controller treats only INVALID_ARGUMENT/UNKNOWN as a rejection.
        if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNKNOWN,
                          grpc.StatusCode.UNAVAILABLE):
            return CheckResult("validate_valid", False, f"valid experiment rejected: {_rpc_error(exc)}")
        return CheckResult("validate_valid", True, f"accepted ({exc.code().name} counts as valid)")
    return CheckResult("validate_valid", True, "accepted")


def check_validate_invalid(t: Target) -> CheckResult:
    bad = t.invalid_settings if t.invalid_settings is not None else KNOWN_INVALID.get(t.algorithm)
    if not bad:
        return CheckResult("validate_invalid", True, "no invalid-settings example known", skipped=True)
    settings = dict(t.profile.settings)
    settings.update(bad)
    exp = t.experiment("invalid", settings=settings)
    try:
        t.stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp),
                                         timeout=t.timeout)
    except grpc.RpcError as exc:
        ok = exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        return CheckResult("validate_invalid", ok, f"{bad} -> {_rpc_error(exc)}")
    return CheckResult("validate_invalid", False, f"{bad} accepted, INVALID_ARGUMENT expected")


def check_request_counts(t: Target) -> CheckResult:
    exp = t.experiment("counts")
    trials: list[api_pb2.Trial] = []
    for count in (1, 2, 5):
        try:
            reply = t.get(exp, trials, count)
        except grpc.RpcError as exc:
            return CheckResult("request_counts", False, f"count {count}: {_rpc_error(exc)}")
        got = len(reply.parameter_assignments)
        if got != count:
            return CheckResult("request_counts", False, f"asked {count}, got {got}")
        trials += _as_trials(exp, reply, f"c{count}", completed=True)
    return CheckResult("request_counts", True, "1, 2 and 5 answered exactly")


def _as_trials(exp: api_pb2.Experiment, reply: api_pb2.GetSuggestionsReply, prefix: str, *, completed: bool) -> list[api_pb2.Trial]:
    out = []
    for i, point in enumerate(_reply_points(reply)):
        name = f"{exp.name}-{prefix}-{i}"
        if completed:
            out.append(b.trial(name, point, metric=exp.spec.objective.objective_metric_name,
                               value=b.synthetic_value(point)))
        else:
            out.append(b.trial(name, point, condition=Condition.RUNNING))
    return out


def check_feasible_values(t: Target, rounds: int = 12) -> CheckResult:
    exp = t.experiment("feasible")
    trials: list[api_pb2.Trial] = []
    checked = 0
    for r in range(rounds):
        try:
            reply = t.get(exp, trials, 3)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.OUT_OF_RANGE and checked:
                break  # a finite space ran out: fine, everything returned so far was checked
            return CheckResult("feasible_values", False, f"round {r}: {_rpc_error(exc)}")
        for point in _reply_points(reply):
            problems = assignment_problems(exp, point)
            if problems:
                return CheckResult("feasible_values", False, "; ".join(problems))
            checked += 1
        trials += _as_trials(exp, reply, f"r{r}", completed=True)
    return CheckResult("feasible_values", True, f"{checked} assignments feasible and formatted")


def _space_variant(t: Target, i: int) -> list[api_pb2.ParameterSpec]:
    """Spaces that differ per experiment (names and bounds) so cross-talk shows."""
    params = t.profile.params()
    out = []
    for p in params:
        q = api_pb2.ParameterSpec()
        q.CopyFrom(p)
        if t.algorithm != "hyperband" or p.name != "epochs":  # keep hyperband's resource name
            q.name = f"{p.name}_{i}"
        if p.parameter_type == api_pb2.DOUBLE and not p.feasible_space.step:
            hi = float(p.feasible_space.max)
            lo = float(p.feasible_space.min)
            q.feasible_space.max = repr(lo + (hi - lo) * (0.5 + 0.1 * i))
        out.append(q)
    return out


def check_many_experiments(t: Target, experiments: int = 4, rounds: int = 3) -> CheckResult:
    exps = [t.experiment(f"multi{i}", params=_space_variant(t, i)) for i in range(experiments)]

    def drive(exp: api_pb2.Experiment) -> str | None:
        trials: list[api_pb2.Trial] = []
        for r in range(rounds):
            try:
                reply = t.get(exp, trials, 2)
            except grpc.RpcError as exc:
                return f"{exp.name} round {r}: {_rpc_error(exc)}"
            if len(reply.parameter_assignments) != 2:
                return f"{exp.name}: asked 2, got {len(reply.parameter_assignments)}"
            for point in _reply_points(reply):
                problems = assignment_problems(exp, point)
                if problems:
                    return f"{exp.name}: {'; '.join(problems)}"
            trials += _as_trials(exp, reply, f"r{r}", completed=True)
        return None

    with ThreadPoolExecutor(max_workers=experiments) as pool:
        errors = [e for e in pool.map(drive, exps) if e]
    if errors:
        return CheckResult("many_experiments", False, errors[0])
    return CheckResult("many_experiments", True, f"{experiments} experiments x {rounds} rounds, no cross-talk")


def check_fresh_history(t: Target, n: int = 100) -> CheckResult:
    exp = t.experiment("history")
    trials = b.completed_history(exp, n, seed=7)
    # a few non-learnable trials, as Katib sends them: failed, killed, metric missing
    rng = random.Random(3)
    params = list(exp.spec.parameter_specs.parameters)
    trials.append(b.trial(f"{exp.name}-failed", b.random_point(params, rng), condition=Condition.FAILED))
    trials.append(b.trial(f"{exp.name}-nometric", b.random_point(params, rng)))
    try:
        reply = t.get(exp, trials, 3)
    except grpc.RpcError as exc:
        return CheckResult("fresh_history", False, _rpc_error(exc))
    points = _reply_points(reply)
    if len(points) != 3:
        return CheckResult("fresh_history", False, f"asked 3, got {len(points)}")
    for point in points:
        problems = assignment_problems(exp, point)
        if problems:
            return CheckResult("fresh_history", False, "; ".join(problems))
    return CheckResult("fresh_history", True, f"answered validly with {n} completed trials")


def check_pending_no_repeat(t: Target) -> CheckResult:
    exp = t.experiment("pending")
    try:
        first = t.get(exp, [], 4)
    except grpc.RpcError as exc:
        return CheckResult("pending_no_repeat", False, _rpc_error(exc))
    pending = _as_trials(exp, first, "p", completed=False)
    try:
        second = t.get(exp, pending, 5)
    except grpc.RpcError as exc:
        return CheckResult("pending_no_repeat", False, _rpc_error(exc))
    seen = {_key(exp, b.assignment(tr.spec.parameter_assignments)) for tr in pending}
    for point in _reply_points(second):
        k = _key(exp, point)
        if k in seen:
            return CheckResult("pending_no_repeat", False, f"repeated a pending/batch point {point}")
        seen.add(k)
    return CheckResult("pending_no_repeat", True, "no pending point repeated")


# The second objective the multi_objective check declares (Sextant's ``sextant.objectives``).
MO_METRIC = "cost"
OBJECTIVES_SETTING = "sextant.io/objectives"


def _mo_experiment(t: Target, suffix: str, declaration: str) -> api_pb2.Experiment:
    exp = t.experiment(suffix, settings={**t.profile.settings, **(t.settings or {}), OBJECTIVES_SETTING: declaration})
    exp.spec.objective.additional_metric_names.append(MO_METRIC)
    return exp


def check_multi_objective(t: Target) -> CheckResult:
    name = "multi_objective"
    if not t.multi_objective:
        return CheckResult(name, True, "not a multi-objective service", skipped=True)
    exp = _mo_experiment(t, "mo", f"{MO_METRIC}=minimize")
    try:
        t.stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp), timeout=t.timeout)
    except grpc.RpcError as exc:
        return CheckResult(name, False, f"a valid declaration was rejected: {_rpc_error(exc)}")
    bad = _mo_experiment(t, "mo-bad", f"{MO_METRIC}=smaller")
    try:
        t.stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=bad), timeout=t.timeout)
        return CheckResult(name, False, f"{OBJECTIVES_SETTING}={MO_METRIC}=smaller accepted, INVALID_ARGUMENT expected")
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
            return CheckResult(name, False, f"a bad direction: {_rpc_error(exc)}, INVALID_ARGUMENT expected")
    trials: list[api_pb2.Trial] = []
    try:
        for r in range(3):
            for i, point in enumerate(_reply_points(t.get(exp, trials, 4))):
                trials.append(b.trial(f"{exp.name}-r{r}-{i}", point, metric=exp.spec.objective.objective_metric_name,
                                      value=b.synthetic_value(point),
                                      extra_metrics={MO_METRIC: b.synthetic_value({f"{k}_": v for k, v in point.items()})}))
        trials += _as_trials(exp, t.get(exp, trials, 2), "pending", completed=False)
        batch = _reply_points(t.get(exp, trials, 5))
    except grpc.RpcError as exc:
        return CheckResult(name, False, _rpc_error(exc))
    if len(batch) != 5:
        return CheckResult(name, False, f"asked 5, got {len(batch)}")
    seen = {_key(exp, b.assignment(tr.spec.parameter_assignments)) for tr in trials}
    for point in batch:
        problems = assignment_problems(exp, point)
        if problems:
            return CheckResult(name, False, "; ".join(problems))
        if _key(exp, point) in seen:
            return CheckResult(name, False, f"repeated a completed, pending or batch point {point}")
        seen.add(_key(exp, point))
    return CheckResult(name, True, f"two objectives: {len(trials)} trials learnt from, a batch of 5 without repeats")


CHECKS: dict[str, Callable[[Target], CheckResult]] = {
    "health": check_health,
    "validate_valid": check_validate_valid,
    "validate_invalid": check_validate_invalid,
    "request_counts": check_request_counts,
    "feasible_values": check_feasible_values,
    "many_experiments": check_many_experiments,
    "fresh_history": check_fresh_history,
    "pending_no_repeat": check_pending_no_repeat,
    "multi_objective": check_multi_objective,
}


def run_check(t: Target, name: str) -> CheckResult:
    if name in t.profile.skip:
        return CheckResult(name, True, f"not applicable to {t.algorithm}", skipped=True)
    start = time.perf_counter()
    try:
        result = CHECKS[name](t)
    except Exception as exc:  # a crashing check is a failed check, with the reason
        result = CheckResult(name, False, f"check crashed: {exc!r}")
    result.seconds = time.perf_counter() - start
    return result


def run_checks(t: Target, only: list[str] | None = None, skip: list[str] | None = None) -> list[CheckResult]:
    names = [n for n in (only or CHECKS) if n not in set(skip or ())]
    return [run_check(t, n) for n in names]
