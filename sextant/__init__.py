"""Sextant: a Katib-compatible hyperparameter-tuning backend."""

from __future__ import annotations

from typing import Any

__all__ = ["report_metrics"]


def __getattr__(name: str) -> Any:
    # Lazy so that ``import sextant`` does not pull in gRPC for every consumer.
    if name == "report_metrics":
        from sextant.report import report_metrics

        return report_metrics
    raise AttributeError(f"module 'sextant' has no attribute {name!r}")
