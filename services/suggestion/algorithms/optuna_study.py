"""Katib parameters as optuna distributions, and values between the two representations.

Used by ``multivariate-tpe`` (``optuna_tpe``), which keeps its trials as rows of these
distributions' internal representation rather than in an optuna Study.

Distributions: stepped numbers are searched as an integer index k (value = min + k*step) so
every proposal is on Katib's grid; logUniform/logNormal (min > 0) use log scale; normal is
treated as uniform on the box (optuna has no normal prior); lists are categorical.
"""

from __future__ import annotations

import logging

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from .search_space import Param

optuna.logging.set_verbosity(optuna.logging.WARNING)
logging.getLogger("optuna").setLevel(logging.WARNING)


def distribution(p: Param) -> BaseDistribution:
    if not p.numeric:
        return CategoricalDistribution(list(p.choices))
    if p.high == p.low:
        return IntDistribution(0, 0)
    if p.log_scale:
        if p.type == "int" and p.step == 1:
            return IntDistribution(int(p.low), int(p.high), log=True)
        return FloatDistribution(p.low, p.high, log=True)
    if p.step is not None:
        return IntDistribution(0, int(p.size) - 1)
    return FloatDistribution(p.low, p.high)


def to_optuna(p: Param, dist: BaseDistribution, text: str) -> str | int | float:
    if not p.numeric:
        return text
    if p.high == p.low:
        return 0
    v = float(text)
    if isinstance(dist, IntDistribution) and not dist.log:
        return int(round((v - p.low) / p.step))  # type: ignore[operator]  # an index distribution: step is set
    if isinstance(dist, IntDistribution):
        return int(round(v))
    return min(max(v, p.low), p.high)


def from_optuna(p: Param, dist: BaseDistribution, value: str | int | float) -> str:
    if not p.numeric:
        return str(value)
    if p.high == p.low:
        return p.format(p.low)
    if isinstance(dist, IntDistribution) and not dist.log:
        return p.format(p.low + int(value) * p.step)  # type: ignore[operator]  # index: step is set
    return p.format(value)
