"""Katib resources: typed models, loading (v1beta1, v1alpha3), defaults and validation.

The names below load on first use: importing a submodule (``sextant.resources.vocabulary``,
say) must not pay for pydantic and the models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sextant.resources.admission import admit_experiment, validate_file
    from sextant.resources.loading import load_document, load_documents
    from sextant.resources.models import Experiment, Suggestion, Trial, to_doc

_HOMES = {"admit_experiment": "admission", "validate_file": "admission", "load_document": "loading",
          "load_documents": "loading", "Experiment": "models", "Suggestion": "models", "Trial": "models",
          "to_doc": "models"}

__all__ = ["Experiment", "Suggestion", "Trial", "admit_experiment", "load_document", "load_documents",
           "to_doc", "validate_file"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
