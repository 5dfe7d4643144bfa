"""Admission of Experiments: what Katib's mutating and validating webhooks do.

PLACEHOLDER until the foundation work lands: parses the document into the model and reports
pydantic's errors. The full version converts v1alpha3, applies Katib's defaults and runs
every validation rule, returning all errors at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from sextant.resources.models import Experiment
from sextant.store.interface import Invalid


def admit_experiment(doc: dict[str, Any], *, old: Experiment | None = None, registry=None) -> Experiment:
    """Defaults and validates an Experiment document (v1beta1 or v1alpha3).

    ``old`` is the stored experiment on update (only the three counts may change);
    ``registry`` is the algorithm registry (None = the configured default).
    Raises ``Invalid`` with one "field.path: rule" message per problem.
    """
    try:
        return Experiment.model_validate(doc)
    except ValidationError as err:
        raise Invalid([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]) from err
