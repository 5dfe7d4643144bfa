"""``bayesianoptimization``: Gaussian-process (or tree-ensemble) Bayesian optimisation on
scikit-optimize, with Katib's setting names, defaults and messages.

Katib's own service is slow and weak (its space is log-uniform for every DOUBLE, gp_hedge with
10,000 sampled points and five L-BFGS restarts per acquisition, a full refit on each call). Here:

* every parameter keeps its own scale: DOUBLE is uniform unless logUniform/logNormal, a stepped
  number (every INT, a DOUBLE with step) is an integer *index* onto its grid, lists are
  categorical; skopt normalises every dimension to [0, 1] (``transform="normalize"``);
* the GP is a Matern-5/2 ARD kernel with a tiny fixed jitter instead of a fitted white noise
  (the objectives are usually deterministic), warm-started from the previous call's fitted
  kernel so each refit converges in a few iterations;
* the acquisition is optimised with L-BFGS from the best few of 2,000 sampled points, their
  predictive variance computed as one matrix product (``FastGP``);
* past ``FIT_POINTS`` trials the kernel hyperparameters are fitted on a subset of the points
  and the GP conditions on all of them, so a call stays well under a second at 500 trials;
* pending trials (CREATED/RUNNING in the request, plus points this instance proposed that the
  request does not show yet) are added with the constant-liar value ``min(loss)`` before asking,
  and each point of a batch is added the same way, so parallel requests spread out;
* ``acq_func`` unset means ``EI`` (measured better and 3x cheaper than gp_hedge here); an
  explicit ``gp_hedge`` is honoured. EIps/PIps learn from the trial's wall time
  (completion_time - start_time).

State: a per-experiment cache of converted trials and the last kernel. A fresh instance
handed the same request gives a valid, non-duplicate answer (restart equivalence): nothing
outside the request is needed for correctness.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.utils import RegressorTags
from skopt import Optimizer
from skopt.learning import (
    ExtraTreesRegressor,
    GaussianProcessRegressor,
    GradientBoostingQuantileRegressor,
    RandomForestRegressor,
)
from skopt.learning.gaussian_process.kernels import ConstantKernel, HammingKernel, Matern
from skopt.space import Categorical, Integer, Real
from threadpoolctl import threadpool_limits

from sextant.api import api_pb2
from sextant.timestamps import parse_time

from .base import Algorithm, SearchSpaceExhausted, SettingRule, SettingsSchema, SuggestResult, settings_of
from .cancel import check_cancelled
from .search_space import (
    INT,
    Param,
    SearchSpace,
    assignment_of,
    completed_trials,
    loss,
    pending_trials,
)

NAME = "bayesianoptimization"
ESTIMATORS = ("GP", "RF", "ET", "GBRT")
ACQ_FUNCS = ("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps")
ACQ_OPTIMIZERS = ("auto", "sampling", "lbfgs")

#: Random points ranked by the acquisition before L-BFGS polishes the best few.
N_POINTS_LBFGS = 2000
N_RESTARTS_LBFGS = 5
#: Points scored when the acquisition is optimised by sampling only (tree models).
N_POINTS_SAMPLING = 3000
#: Fixed GP jitter (normalised targets): enough for conditioning, small enough to interpolate.
GP_JITTER = 1e-6
#: Below this many points the GP hyperparameters are re-optimised on every call.
REOPTIMISE_ALWAYS_BELOW = 100
#: The GP hyperparameters are fitted on at most this many points (the best third of them and
#: a random draw of the rest); the GP itself then conditions on every point. Fitting them is
#: O(n^3) per likelihood evaluation, ~60-90 evaluations: on all 500 points of a 500-trial
#: experiment it took ~4 s of CPU (BENCHMARKS.md, "bayesianoptimization at 200 and 500 trials").
FIT_POINTS = 100
#: Proposed points remembered until their trials appear in a request (oldest dropped first).
MAX_ISSUED = 256
#: Attempts at drawing a random point not proposed before, before declaring exhaustion.
MAX_RANDOM_TRIES = 200


def _one_of(name: str, allowed: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda v: None if v in allowed else f"{name} {v} is not supported in Bayesian optimization"


def _non_negative(name: str) -> Callable[[int], str | None]:
    return lambda v: None if v >= 0 else f"{name} should be great or equal than zero"


SCHEMA = SettingsSchema(NAME, rules={
    "base_estimator": SettingRule(str, _one_of("base_estimator", ESTIMATORS), "GP"),
    "n_initial_points": SettingRule(int, _non_negative("n_initial_points"), 10),
    "acq_func": SettingRule(str, _one_of("acq_func", ACQ_FUNCS), None),
    "acq_optimizer": SettingRule(str, _one_of("acq_optimizer", ACQ_OPTIMIZERS), "auto"),
    "random_state": SettingRule(int, _non_negative("random_state"), None),
})


class FastGP(GaussianProcessRegressor):  # type: ignore[misc]  # skopt is untyped
    """skopt's GP, with the predictive variance of many points as one matrix product.

    skopt computes ``k K^-1 k^T`` per point with a three-operand ``np.einsum``, which numpy runs
    as a plain loop without BLAS: scoring the 2,000 acquisition candidates against 500 trials
    was ~75 % of a call. ``sum((k @ K^-1) * k)`` is the same quantity (to rounding). Single-point
    calls (the L-BFGS steps, which also ask for gradients) stay skopt's own.
    """

    def predict(self, X: Any, return_std: bool = False, return_cov: bool = False,
                return_mean_grad: bool = False, return_std_grad: bool = False) -> Any:
        many = return_std and not (return_cov or return_mean_grad or return_std_grad)
        if not many or not hasattr(self, "X_train_") or len(X) < 2:
            return super().predict(X, return_std=return_std, return_cov=return_cov,
                                   return_mean_grad=return_mean_grad, return_std_grad=return_std_grad)
        X = np.asarray(X, dtype=float)
        k = self.kernel_(X, self.X_train_)
        mean = self.y_train_std_ * k.dot(self.alpha_) + self.y_train_mean_
        var = self.kernel_.diag(X) - np.einsum("ij,ij->i", k @ self.K_inv_, k)
        np.maximum(var, 0.0, out=var)  # rounding can make it slightly negative, as skopt clips too
        return mean, np.sqrt(var * self.y_train_std_**2)


class GBRTRegressor(GradientBoostingQuantileRegressor):  # type: ignore[misc]  # skopt is untyped
    """skopt's quantile GBRT, recognised as a regressor by scikit-learn >= 1.6.

    scikit-learn now reads the estimator type from ``__sklearn_tags__``, which only reports
    "regressor" when ``RegressorMixin`` precedes ``BaseEstimator`` in the MRO; skopt 0.10 lists
    them the other way round, so its Optimizer refuses the GBRT ("has to be a regressor").
    Setting the tag here is the whole fix.
    """

    def __sklearn_tags__(self) -> Any:  # sklearn.utils.Tags (untyped here)
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        if tags.regressor_tags is None:
            tags.regressor_tags = RegressorTags()
        return tags

    def predict(self, X: Any, return_std: bool = False, return_quantiles: bool = False) -> Any:
        # skopt 0.10 calls np.in1d here, which numpy 2.4 removed; same result without it.
        if not return_std or return_quantiles:
            return super().predict(X, return_std=False, return_quantiles=return_quantiles)
        by_q = dict(zip(self.quantiles, self.regressors_, strict=True))
        if not all(q in by_q for q in (0.16, 0.5, 0.84)):
            raise ValueError("return_std needs the quantiles 0.16, 0.5 and 0.84")
        low, mean, high = (by_q[q].predict(X) for q in (0.16, 0.5, 0.84))
        # Separately fitted quantiles can cross; the spread is still their distance.
        return mean, np.abs(high - low) / 2.0


# ---- search space: Katib parameter <-> skopt dimension ----


@dataclass(frozen=True)
class _Dim:
    """How one parameter is searched: a skopt dimension plus the value mapping."""

    param: Param
    kind: str  # "real" | "index" | "int" | "cat" | "const"

    def skopt(self) -> Any:
        p = self.param
        if self.kind == "real":
            prior = "log-uniform" if p.log_scale else "uniform"
            return Real(p.low, p.high, prior=prior, transform="normalize", name=p.name)
        if self.kind == "int":
            return Integer(int(p.low), int(p.high), prior="log-uniform", transform="normalize", name=p.name)
        if self.kind == "index":
            return Integer(0, int(p.size) - 1, transform="normalize", name=p.name)
        return Categorical(list(p.choices), transform="onehot", name=p.name)

    def encode(self, text: str) -> Any:
        """Katib string -> skopt value (None when the value cannot be in this space)."""
        p = self.param
        if self.kind == "cat":
            return text if text in p.choices else None
        try:
            v = min(max(float(text), p.low), p.high)
        except ValueError:
            return None
        if self.kind == "real":
            return v
        if self.kind == "int":
            return int(round(v))
        return int(min(max(round((v - p.low) / p.step), 0), p.size - 1))  # type: ignore[operator]  # kind index: step is set

    def decode(self, value: Any) -> str:
        p = self.param
        if self.kind == "const":
            return p.format(p.low) if p.numeric else p.choices[0]
        if self.kind == "cat":
            return str(value)
        if self.kind == "index":
            return p.format(p.low + int(value) * p.step)  # type: ignore[operator]  # kind index: step is set
        return p.format(value)


def _dim_for(p: Param) -> _Dim:
    if p.size <= 1:
        return _Dim(p, "const")
    if not p.numeric:
        return _Dim(p, "cat")
    if p.step is None:
        return _Dim(p, "real")
    if p.type == INT and p.step == 1 and p.log_scale:
        return _Dim(p, "int")
    return _Dim(p, "index")


@dataclass(frozen=True)
class _Config:
    base_estimator: str
    n_initial_points: int
    acq_func: str
    acq_optimizer: str
    random_state: int | None

    @property
    def per_second(self) -> bool:
        return self.acq_func.endswith("ps")


def _config(settings: dict[str, str]) -> _Config:
    v = SCHEMA.parse(settings)
    estimator = str(v["base_estimator"])
    acq_func = str(v["acq_func"] or "EI")
    acq_optimizer = str(v["acq_optimizer"])
    if acq_optimizer == "auto":
        acq_optimizer = "lbfgs" if estimator == "GP" else "sampling"
    if acq_func.endswith("ps"):
        acq_optimizer = "sampling"  # skopt has no acquisition gradient for the time model
    return _Config(estimator, int(v["n_initial_points"]), acq_func, acq_optimizer,
                   v["random_state"])


def _seconds(trial: api_pb2.Trial) -> float:
    """The trial's wall time (EIps/PIps), at least one second when unknown."""
    start, end = parse_time(trial.status.start_time), parse_time(trial.status.completion_time)
    if start is None or end is None:
        return 1.0
    return max((end - start).total_seconds(), 1.0)


class BayesianOptimization(Algorithm):
    name: ClassVar[str] = NAME
    invalid_settings_example: ClassVar[dict[str, str] | None] = {"base_estimator": "SVM"}

    def __init__(self) -> None:
        super().__init__()
        self._rng: np.random.RandomState | None = None
        self._points: dict[str, tuple[list[Any], float, float]] = {}  # trial -> (x, loss, seconds)
        self._issued: dict[tuple[object, ...], dict[str, str]] = {}  # proposed here, not yet seen in a request
        self._kernel: Any = None  # last fitted GP kernel, the next fit's starting point
        self._kernel_n = 0  # number of points its hyperparameters were optimised on

    # ---- validation ----

    def validate(self, experiment: api_pb2.Experiment) -> list[str]:
        settings = settings_of(experiment)
        errors = SCHEMA.errors(settings)
        if errors:
            return errors
        estimator = settings.get("base_estimator", "GP")
        if settings.get("acq_optimizer") == "lbfgs" and estimator != "GP":
            # Katib accepts this and then fails in every GetSuggestions; refuse it up front.
            errors.append(f"acq_optimizer lbfgs is not supported with base_estimator {estimator}; "
                          "use sampling or auto")
        return errors

    # ---- suggestions ----

    def suggest(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], count: int) -> SuggestResult:
        cfg = _config(settings_of(experiment))
        space = self.search_space(experiment)
        dims = [_dim_for(p) for p in space.params]
        free = [d for d in dims if d.kind != "const"]
        if self._rng is None:
            self._rng = np.random.RandomState(cfg.random_state)

        xs, ys, ts = self._completed(experiment, trials, free)
        seen = {space.key(assignment_of(t)) for t in trials}
        # Points proposed by this instance that the request does not show yet (the controller
        # has not created their trials) count as pending too, so they are never repeated.
        self._issued = {k: a for k, a in self._issued.items() if k not in seen}
        taken = seen | set(self._issued)
        pending = [assignment_of(t) for t in pending_trials(trials)] + list(self._issued.values())
        pending_x = [x for x in (self._encode(a, free) for a in pending) if x is not None]

        if not free:
            point = {d.param.name: d.decode(None) for d in dims}
            if space.key(point) in taken or count > 1:
                raise SearchSpaceExhausted("the search space has a single point and it was already proposed")
            return SuggestResult([point])

        out: list[dict[str, str]] = []
        n_random = max(0, cfg.n_initial_points - len(xs) - len(pending_x))
        while len(out) < count and (len(out) < n_random or not xs):
            check_cancelled()
            out.append(self._random_point(space, dims, taken))
        if len(out) < count:
            with threadpool_limits(limits=1):
                # BLAS threads only fight each other (and the other services) on these small
                # matrices: one thread is several times faster on a shared machine.
                out.extend(self._model_points(cfg, space, dims, free, xs, ys, ts, pending_x, taken,
                                              count - len(out)))
        self._issued.update((space.key(a), a) for a in out)
        while len(self._issued) > MAX_ISSUED:  # replies the controller discarded never show up
            self._issued.pop(next(iter(self._issued)))
        return SuggestResult(out)

    def _completed(self, experiment: api_pb2.Experiment, trials: list[api_pb2.Trial], free: list[_Dim]
                   ) -> tuple[list[list[Any]], list[float], list[float]]:
        """Converted completed trials, cached by trial name (re-converted if a value changed)."""
        known: dict[str, tuple[list[Any], float, float]] = {}
        for trial, value in completed_trials(experiment, trials):
            cached = self._points.get(trial.name)
            lv = loss(experiment, value)
            if cached is None or cached[1] != lv:
                x = self._encode(assignment_of(trial), free)
                if x is None:
                    continue  # a value outside this search space (hand-made trial): ignore it
                cached = (x, lv, _seconds(trial))
            known[trial.name] = cached
        self._points = known
        return ([v[0] for v in known.values()], [v[1] for v in known.values()],
                [v[2] for v in known.values()])

    @staticmethod
    def _encode(assignment: dict[str, str], free: list[_Dim]) -> list[Any] | None:
        x = []
        for d in free:
            text = assignment.get(d.param.name)
            value = d.encode(text) if text is not None else None
            if value is None:
                return None
            x.append(value)
        return x

    def _decode(self, x: list[Any], dims: list[_Dim]) -> dict[str, str]:
        values = iter(x)
        return {d.param.name: d.decode(None if d.kind == "const" else next(values)) for d in dims}

    def _random_point(self, space: SearchSpace, dims: list[_Dim], taken: set[tuple[object, ...]]) -> dict[str, str]:
        assert self._rng is not None
        for _ in range(MAX_RANDOM_TRIES):
            point = space.from_unit(self._rng.uniform(size=len(space)))
            # from_unit is uniform on the unit cube; logUniform parameters come out log-uniform.
            key = space.key(point)
            if key not in taken:
                taken.add(key)
                return point
        self._exhausted_check(space, taken)
        raise SearchSpaceExhausted("no new point found after "
                                   f"{MAX_RANDOM_TRIES} random draws; the search space looks covered")

    @staticmethod
    def _exhausted_check(space: SearchSpace, taken: set[tuple[object, ...]]) -> None:
        if math.isfinite(space.grid_size) and len(taken) >= space.grid_size:
            raise SearchSpaceExhausted(f"all {int(space.grid_size)} points of the search space "
                                       "have been proposed")

    # ---- model ----

    def _estimator(self, cfg: _Config, free: list[_Dim], n: int) -> Any:
        seed = int(self._rng.randint(0, 2**31 - 1))  # type: ignore[union-attr]  # suggest() set _rng
        if cfg.base_estimator == "GP":
            n_dims = sum(len(d.param.choices) if d.kind == "cat" and len(d.param.choices) > 2 else 1
                         for d in free)
            if all(d.kind == "cat" for d in free):
                inner = HammingKernel(length_scale=np.ones(n_dims))
            else:
                inner = Matern(length_scale=np.ones(n_dims), length_scale_bounds=[(0.01, 100.0)] * n_dims,
                               nu=2.5)
            kernel = ConstantKernel(1.0, (0.01, 1000.0)) * inner
            optimizer: str | None = "fmin_l_bfgs_b"
            restarts = 2 if n < 100 else 0  # many points: one start is enough (and 2x cheaper)
            if self._kernel is not None and self._kernel.n_dims == kernel.n_dims:
                # Warm start from the previous optimum. The kernel hyperparameters move little
                # once there are many points, so they are re-optimised only when the data grew
                # by 10 % (fitting them is >80 % of the cost at 200 trials); in between the
                # previous ones are kept and only the GP weights are recomputed.
                kernel, restarts = self._kernel, (1 if n < 100 else 0)
                if n >= REOPTIMISE_ALWAYS_BELOW and self._kernel_n <= n < self._kernel_n * 1.1:
                    optimizer = None
            if optimizer is not None:
                self._kernel_n = n
            return FastGP(kernel=kernel, normalize_y=True, noise=GP_JITTER, optimizer=optimizer,
                          n_restarts_optimizer=restarts, random_state=seed)
        if cfg.base_estimator == "RF":
            return RandomForestRegressor(n_estimators=100, min_samples_leaf=3, random_state=seed)
        if cfg.base_estimator == "ET":
            return ExtraTreesRegressor(n_estimators=100, min_samples_leaf=3, random_state=seed)
        return GBRTRegressor(base_estimator=GradientBoostingRegressor(n_estimators=30, loss="quantile"),
                             random_state=seed)

    def _model_points(self, cfg: _Config, space: SearchSpace, dims: list[_Dim], free: list[_Dim],
                      xs: list[list[Any]], ys: list[float], ts: list[float], pending: list[list[Any]],
                      taken: set[tuple[object, ...]], count: int) -> list[dict[str, str]]:
        assert self._rng is not None
        est = self._estimator(cfg, free, len(xs) + len(pending))
        n_points = N_POINTS_LBFGS if cfg.acq_optimizer == "lbfgs" else N_POINTS_SAMPLING
        acq_optimizer = cfg.acq_optimizer
        if all(d.kind == "cat" for d in free):
            acq_optimizer = "sampling"  # a Hamming-kernel GP has no gradient to follow
        opt = Optimizer([d.skopt() for d in free], base_estimator=est, n_initial_points=0,
                        acq_func=cfg.acq_func, acq_optimizer=acq_optimizer,
                        random_state=int(self._rng.randint(0, 2**31 - 1)),
                        acq_optimizer_kwargs={"n_points": n_points, "n_restarts_optimizer": N_RESTARTS_LBFGS})
        lie = min(ys)
        lie_t = math.log(min(ts))
        all_x = list(xs) + list(pending)
        if cfg.per_second:
            all_y: list[Any] = [[y, math.log(t)] for y, t in zip(ys, ts, strict=True)]
            all_y += [[lie, lie_t]] * len(pending)
        else:
            all_y = list(ys) + [lie] * len(pending)
        out: list[dict[str, str]] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(est, FastGP) and est.optimizer is not None and not cfg.per_second \
                    and len(all_x) > FIT_POINTS:
                opt.base_estimator_ = self._kernel_from_subset(opt, est, all_x, all_y)
            opt._tell(all_x, all_y, fit=True)  # y already transformed (log time): skip tell()'s checks
            self._remember_kernel(opt)
            if self._kernel is not None and cfg.base_estimator == "GP" and not cfg.per_second:
                # The batch's constant-liar refits keep the hyperparameters just fitted.
                opt.base_estimator_ = clone(opt.base_estimator_).set_params(kernel=self._kernel, optimizer=None)
            while len(out) < count:
                check_cancelled()
                x = list(opt._ask())
                point = self._decode(x, dims)
                key = space.key(point)
                if key in taken:
                    # The acquisition optimum is a point already proposed (common on small
                    # discrete spaces): take a fresh random one instead of repeating it.
                    point = self._random_point(space, dims, taken)
                    x = self._encode(point, free) or x
                else:
                    taken.add(key)
                out.append(point)
                if len(out) < count:
                    opt._tell(x, [lie, lie_t] if cfg.per_second else lie, fit=True)
        return out

    def _kernel_from_subset(self, opt: Optimizer, est: FastGP, xs: list[list[Any]], ys: list[Any]) -> FastGP:
        """``est`` with its kernel hyperparameters fitted on ``FIT_POINTS`` of the points (the
        best third, the rest drawn at random) and then fixed: the fit on every point only
        computes the GP weights. See ``FIT_POINTS``."""
        assert self._rng is not None
        order = np.argsort(np.asarray(ys, dtype=float), kind="stable")
        n_best = FIT_POINTS // 3
        rest = self._rng.choice(order[n_best:], FIT_POINTS - n_best, replace=False)
        pick = np.sort(np.concatenate([order[:n_best], rest]))
        sub = clone(est).fit(opt.space.transform([xs[i] for i in pick]), np.asarray(ys, dtype=float)[pick])
        kernel = sub.kernel_.k1 if _has_white(sub.kernel_) else sub.kernel_
        fixed: FastGP = clone(est).set_params(kernel=kernel, optimizer=None)
        return fixed

    def _remember_kernel(self, opt: Optimizer) -> None:
        if not opt.models:
            return
        model = opt.models[-1]
        kernel = getattr(model, "kernel_", None)
        if kernel is not None and cfg_is_gp(model):
            # skopt's GP adds the jitter/noise as a separate term on fit; keep only the product
            self._kernel = getattr(kernel, "k1", kernel) if _has_white(kernel) else kernel


def cfg_is_gp(model: Any) -> bool:
    return isinstance(model, GaussianProcessRegressor)


def _has_white(kernel: Any) -> bool:
    from sklearn.gaussian_process.kernels import Sum, WhiteKernel

    return isinstance(kernel, Sum) and isinstance(kernel.k2, WhiteKernel)


__all__ = ["BayesianOptimization", "GBRTRegressor", "SCHEMA"]
