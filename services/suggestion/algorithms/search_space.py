"""The experiment's search space as typed parameters, plus trial helpers.

Katib semantics: INT has step 1 when empty; DOUBLE keeps its step (may be none);
CATEGORICAL/DISCRETE are lists of strings; distribution uniform when unspecified. Values go
on the wire as Katib formats them: INT as an integer string, DOUBLE as a float string
(Python ``str(float)``), list parameters as the list item itself.

Whatever the distribution, the feasible space is the box [min, max] (and the step grid):
normal/logNormal samples are clipped into it.

The unit-cube encoding (``to_unit`` / ``from_unit``) is what sobol, cmaes and BO work in:
uniform numbers map linearly, logUniform/logNormal (with min > 0) map on the log scale, list
parameters map to equal-width bins.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sextant import limits
from sextant.api import api_pb2
from sextant.resources.numbers import NumberError, excerpt, parse_finite, parse_int

from .cancel import check_cancelled

if TYPE_CHECKING:
    import numpy as np

DOUBLE, INT, DISCRETE, CATEGORICAL = "double", "int", "discrete", "categorical"
UNIFORM, LOG_UNIFORM, NORMAL, LOG_NORMAL = "uniform", "logUniform", "normal", "logNormal"

_TYPES = {api_pb2.DOUBLE: DOUBLE, api_pb2.INT: INT, api_pb2.DISCRETE: DISCRETE,
          api_pb2.CATEGORICAL: CATEGORICAL}
_DISTS = {api_pb2.DISTRIBUTION_UNSPECIFIED: UNIFORM, api_pb2.UNIFORM: UNIFORM,
          api_pb2.LOG_UNIFORM: LOG_UNIFORM, api_pb2.NORMAL: NORMAL, api_pb2.LOG_NORMAL: LOG_NORMAL}
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")

Condition = api_pb2.TrialStatus.TrialConditionType
LEARN_FROM = (Condition.SUCCEEDED, Condition.EARLYSTOPPED)
PENDING = (Condition.CREATED, Condition.RUNNING)


class SpaceError(ValueError):
    """The parameter specs cannot form a search space (message names the parameter)."""


def _decimals(text: str) -> int:
    """Digits after the point in a decimal string ("0.05" -> 2, "1e-3" -> 3)."""
    try:
        exp = _decimal_exponent(text)
    except ValueError:
        return 12
    return max(0, -exp)


def _decimal_exponent(text: str) -> int:
    from decimal import Decimal

    try:
        return int(Decimal(text.strip()).as_tuple().exponent)
    except ArithmeticError:  # a hex float ("0x1p-4"): use the shortest decimal of its value
        return int(Decimal(repr(parse_finite(text))).as_tuple().exponent)


def format_double(value: float) -> str:
    return str(float(value))


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    choices: tuple[str, ...] = ()
    distribution: str = UNIFORM
    decimals: int = 12  # rounding applied to stepped doubles so "0.1"+"0.2" prints as 0.3

    # ---- construction ----

    @classmethod
    def from_spec(cls, spec: api_pb2.ParameterSpec) -> Param:
        name = spec.name
        if not name:
            raise SpaceError("parameter name must not be empty")
        ptype = _TYPES.get(spec.parameter_type)
        if ptype is None:
            raise SpaceError(f"parameter {name}: unknown parameterType {spec.parameter_type}")
        fs = spec.feasible_space
        dist = _DISTS.get(fs.distribution, UNIFORM)
        if ptype in (DISCRETE, CATEGORICAL):
            if not fs.list:
                raise SpaceError(f"parameter {name}: feasibleSpace.list must not be empty for {ptype}")
            if len(fs.list) > limits.MAX_LIST_VALUES:
                raise SpaceError(f"parameter {name}: feasibleSpace.list has {len(fs.list)} values, "
                                 f"more than the limit of {limits.MAX_LIST_VALUES}")
            return cls(name, ptype, choices=tuple(fs.list), distribution=dist)
        # Numbers are read as Katib's Go code reads them (sextant.resources.numbers).
        read = parse_int if ptype == INT else parse_finite
        try:
            exact_low, exact_high = read(fs.min), read(fs.max)
            step: float | None = float(read(fs.step)) if fs.step else None
        except NumberError as exc:
            raise SpaceError(f"parameter {name}: feasibleSpace min/max/step {exc}") from None
        if ptype == INT and max(abs(exact_low), abs(exact_high)) > limits.MAX_INT_MAGNITUDE:
            raise SpaceError(f"parameter {name}: int min/max must be within +-2^53")
        low, high = float(exact_low), float(exact_high)
        if low > high:
            raise SpaceError(f"parameter {name}: feasibleSpace.min {excerpt(fs.min)} > max {excerpt(fs.max)}")
        if not math.isfinite(high - low):
            raise SpaceError(f"parameter {name}: feasibleSpace max - min is not a finite double")
        if step is not None and not step > 0:
            raise SpaceError(f"parameter {name}: feasibleSpace.step must be > 0")
        if step is not None and (high - low) / step > limits.MAX_STEPPED_VALUES:
            raise SpaceError(f"parameter {name}: (max - min) / step must be at most 2^53")
        if ptype == INT:
            return cls(name, INT, low, high, step or 1.0, distribution=dist)
        decimals = max(_decimals(fs.min), _decimals(fs.step)) if step else 12
        return cls(name, DOUBLE, low, high, step, distribution=dist, decimals=min(decimals, 15))

    # ---- properties ----

    @property
    def numeric(self) -> bool:
        return self.type in (DOUBLE, INT)

    @property
    def log_scale(self) -> bool:
        return self.distribution in (LOG_UNIFORM, LOG_NORMAL) and self.low > 0

    @property
    def size(self) -> float:
        """Number of distinct values (inf for a continuous double)."""
        if not self.numeric:
            return len(self.choices)
        if self.step is None:
            return math.inf if self.high > self.low else 1
        return int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1

    # ---- values ----

    def snap(self, value: float) -> float:
        """Clip into [low, high] and onto the step grid (numeric parameters)."""
        v = min(max(float(value), self.low), self.high)
        if self.step is not None:
            k: float = round((v - self.low) / self.step)
            k = min(max(k, 0), self.size - 1)
            v = self.low + k * self.step
            if self.type == DOUBLE:
                # print 0.1+2*0.1 as 0.3, but never let the rounding leave the box
                rounded = round(v, self.decimals)
                if self.low <= rounded <= self.high:
                    v = rounded
        return v

    def format(self, value: object) -> str:
        """Katib's string for a value (numbers are snapped into the space first)."""
        if not self.numeric:
            text = str(value)
            if text not in self.choices:
                raise ValueError(f"{text!r} is not in the list of {self.name}")
            return text
        v = self.snap(float(value))  # type: ignore[arg-type]  # numeric: a number or its text
        if self.type == INT:
            return str(int(round(v)))
        return format_double(v)

    def parse(self, text: str) -> float | str:
        """The value of a Katib string: a float for numbers, the string for lists."""
        if not self.numeric:
            return text
        return float(text)

    def key(self, text: str) -> object:
        """A canonical key for comparing values written differently ("1" == "1.0")."""
        if not self.numeric:
            return text
        try:
            return round(float(text), 9)
        except ValueError:
            return text

    def check(self, text: str) -> str | None:
        """None when ``text`` is a feasible, correctly formatted value, else the problem."""
        if not self.numeric:
            return None if text in self.choices else f"{self.name}={text!r} is not one of {list(self.choices)}"
        if self.type == INT:
            if not _INT_RE.match(text):
                return f"{self.name}={text!r} is not an integer string"
            v = float(int(text))
        else:
            try:
                v = float(text)
            except ValueError:
                return f"{self.name}={text!r} is not a number"
            if not math.isfinite(v):
                return f"{self.name}={text!r} is not finite"
        tol = 1e-9 * max(1.0, abs(self.low), abs(self.high))
        if v < self.low - tol or v > self.high + tol:
            return f"{self.name}={text} is outside [{self.low}, {self.high}]"
        if self.step is not None:
            k = (v - self.low) / self.step
            # A double carries ~16 significant digits: far along a fine grid the index itself is
            # only known to within a few units in the last place.
            if abs(k - round(k)) > max(1e-6, 8 * abs(k) * sys.float_info.epsilon):
                return f"{self.name}={text} is not on the step grid min + k*{self.step}"
        return None

    def grid_values(self) -> list[str]:
        """Every value in order (as Katib's grid helper lists them); DOUBLE without step raises SpaceError."""
        return [self.grid_value(k) for k in range(self.grid_count())]

    def grid_count(self) -> int:
        """How many grid values the parameter has; DOUBLE without step raises SpaceError."""
        if not self.numeric:
            return len(self.choices)
        if self.step is None:
            if self.type == DOUBLE and self.high > self.low:
                raise SpaceError(f"parameter {self.name}: a double needs feasibleSpace.step for grid")
            return 1
        return int(self.size)

    def grid_value(self, k: int) -> str:
        """The k-th grid value, computed (a stepped range may have 2^53 values: never list them)."""
        if not self.numeric:
            return self.choices[k]
        if self.step is None:
            return self.format(self.low)
        return self.format(self.low + k * self.step)

    def sample(self, rng: np.random.Generator | np.random.RandomState) -> str:
        """One random value honouring the distribution (``rng``: numpy Generator/RandomState)."""
        if not self.numeric:
            return self.choices[int(rng.integers(len(self.choices))) if hasattr(rng, "integers")
                                else int(rng.randint(len(self.choices)))]
        lo, hi = self.low, self.high
        if self.distribution == NORMAL:
            v = rng.normal((lo + hi) / 2, (hi - lo) / 6 or 1e-12)
        elif self.distribution == LOG_NORMAL and lo > 0:
            llo, lhi = math.log(lo), math.log(hi)
            v = math.exp(rng.normal((llo + lhi) / 2, (lhi - llo) / 6 or 1e-12))
        elif self.log_scale:
            v = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        elif self.step is not None:
            # uniform over the grid indices, so the end points are as likely as the middle
            n = int(self.size)
            k = int(rng.integers(n)) if hasattr(rng, "integers") else int(rng.randint(n))
            return self.format(lo + k * self.step)
        else:
            v = rng.uniform(lo, hi)
        return self.format(v)

    # ---- unit cube ----

    def to_unit(self, text: str) -> float:
        if not self.numeric:
            n = len(self.choices)
            return (self.choices.index(text) + 0.5) / n if text in self.choices else 0.5
        v = float(text)
        if self.high == self.low:
            return 0.5
        if self.log_scale:
            lo, hi = math.log(self.low), math.log(self.high)
            return min(max((math.log(max(v, self.low)) - lo) / (hi - lo), 0.0), 1.0)
        return min(max((v - self.low) / (self.high - self.low), 0.0), 1.0)

    def from_unit(self, u: float) -> str:
        u = min(max(float(u), 0.0), 1.0)
        if not self.numeric:
            n = len(self.choices)
            return self.choices[min(int(u * n), n - 1)]
        if self.log_scale:
            lo, hi = math.log(self.low), math.log(self.high)
            return self.format(math.exp(lo + u * (hi - lo)))
        return self.format(self.low + u * (self.high - self.low))


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    @classmethod
    def from_experiment(cls, experiment: api_pb2.Experiment) -> SearchSpace:
        specs = experiment.spec.parameter_specs.parameters
        if not specs:
            raise SpaceError("spec.parameters must not be empty")
        if len(specs) > limits.MAX_PARAMETERS:
            raise SpaceError(f"spec.parameters has {len(specs)} parameters, more than the limit of "
                             f"{limits.MAX_PARAMETERS}")
        params = tuple(Param.from_spec(s) for s in specs)
        names = [p.name for p in params]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpaceError(f"duplicated parameter names: {', '.join(dupes)}")
        return cls(params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __len__(self) -> int:
        return len(self.params)

    def by_name(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    # ---- assignments ----

    def check(self, assignment: dict[str, str]) -> list[str]:
        """Problems with one assignment (missing/extra names, infeasible or badly formatted values)."""
        out = []
        names = set(self.names)
        for extra in sorted(set(assignment) - names):
            out.append(f"unknown parameter {extra}")
        for p in self.params:
            if p.name not in assignment:
                out.append(f"missing parameter {p.name}")
                continue
            msg = p.check(assignment[p.name])
            if msg:
                out.append(msg)
        return out

    def key(self, assignment: dict[str, str]) -> tuple[object, ...]:
        """Canonical key of a point, for duplicate detection across formats."""
        return tuple(p.key(assignment.get(p.name, "")) for p in self.params)

    def to_unit(self, assignment: dict[str, str]) -> list[float]:
        return [p.to_unit(assignment[p.name]) for p in self.params]

    def from_unit(self, point: Iterable[float]) -> dict[str, str]:
        return {p.name: p.from_unit(u) for p, u in zip(self.params, point, strict=True)}

    def sample(self, rng: np.random.Generator | np.random.RandomState) -> dict[str, str]:
        check_cancelled()
        return {p.name: p.sample(rng) for p in self.params}

    def sample_untaken(self, rng: np.random.Generator | np.random.RandomState, taken: Container[tuple[object, ...]],
                       redraws: int = 32) -> dict[str, str]:
        """A random point whose key is not in ``taken``, redrawing up to ``redraws`` times; in a
        nearly exhausted small space the last draw is returned even if taken (the caller's
        fallback when its own proposals keep repeating)."""
        point = self.sample(rng)
        for _ in range(redraws):
            if self.key(point) not in taken:
                break
            point = self.sample(rng)
        return point

    # ---- grid ----

    @property
    def grid_size(self) -> float:
        return math.prod(p.size for p in self.params)

    def grid(self) -> Iterator[dict[str, str]]:
        """Every grid point, deterministic order (first parameter varies slowest)."""
        columns = [p.grid_values() for p in self.params]
        names = self.names
        for combo in itertools.product(*columns):
            yield dict(zip(names, combo, strict=True))


# ---- trials ----


def assignment_of(trial: api_pb2.Trial) -> dict[str, str]:
    return {a.name: a.value for a in trial.spec.parameter_assignments.assignments}


def objective_value(trial: api_pb2.Trial, metric_name: str) -> float | None:
    """The objective value of a trial the algorithms may learn from, else None.

    Only SUCCEEDED/EARLYSTOPPED trials carrying the objective metric with a parseable, finite
    value count (as Katib; "unavailable" or garbage is skipped, not an error).
    """
    if trial.status.condition not in LEARN_FROM:
        return None
    value = None
    for m in trial.status.observation.metrics:
        if m.name == metric_name:
            value = m.value  # the last one wins, as in Katib's Go service
    if value is None:
        return None
    try:
        v = float(value)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def completed_trials(experiment: api_pb2.Experiment,
                     trials: Iterable[api_pb2.Trial]) -> list[tuple[api_pb2.Trial, float]]:
    """(trial, objective value) for every trial to learn from, in request order."""
    name = experiment.spec.objective.objective_metric_name
    out = []
    for t in trials:
        v = objective_value(t, name)
        if v is not None:
            out.append((t, v))
    return out


def pending_trials(trials: Iterable[api_pb2.Trial]) -> list[api_pb2.Trial]:
    """CREATED/RUNNING trials: points already proposed whose result is not known yet."""
    return [t for t in trials if t.status.condition in PENDING]


def objective_sign(experiment: api_pb2.Experiment) -> float:
    """+1 to minimise, -1 for MAXIMIZE: ``loss = sign * value`` is always minimised."""
    return -1.0 if experiment.spec.objective.type == api_pb2.MAXIMIZE else 1.0


def loss(experiment: api_pb2.Experiment, value: float) -> float:
    return objective_sign(experiment) * value
