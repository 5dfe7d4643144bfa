"""Algorithm name -> implementing class, imported lazily.

Adding an algorithm is one line in ``BUILTIN``: ``"name": "module.path:ClassName"``. Classes
are imported on first use, so a process serving only ``random`` never imports optuna, and a
missing optional module only makes that one algorithm unavailable.
"""

from __future__ import annotations

import importlib
import logging

from .base import Algorithm

log = logging.getLogger(__name__)

_PKG = "services.suggestion.algorithms"

BUILTIN: dict[str, str] = {
    "random": f"{_PKG}.random_search:RandomSearch",
    "grid": f"{_PKG}.grid:GridSearch",
    "tpe": f"{_PKG}.tpe:TPE",
    "multivariate-tpe": f"{_PKG}.multivariate_tpe:MultivariateTPE",
    "cmaes": f"{_PKG}.cmaes:CMAES",
    "sobol": f"{_PKG}.sobol:Sobol",
    "bayesianoptimization": f"{_PKG}.bayesian:BayesianOptimization",
    "hyperband": f"{_PKG}.hyperband:Hyperband",
    "nsga2": f"{_PKG}.multi_objective:NSGA2",
    "mo-tpe": f"{_PKG}.multi_objective:MOTPE",
    "pbt": f"{_PKG}.pbt:PBT",
}

_loaded: dict[str, type[Algorithm]] = {}


def load(name: str) -> type[Algorithm] | None:
    """The class registered as ``name``, or None if unknown / not importable."""
    if name in _loaded:
        return _loaded[name]
    target = BUILTIN.get(name)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    try:
        cls: type[Algorithm] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        log.warning("algorithm not available", extra={"algorithm": name, "error": str(exc)})
        return None
    _loaded[name] = cls
    return cls


def available() -> list[str]:
    """Names whose class imports (imports each module once)."""
    return [n for n in BUILTIN if load(n) is not None]
