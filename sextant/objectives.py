"""Multi-objective experiments: how the extra objectives are declared and read.

Katib's experiment has one objective (``spec.objective``) and records
``additionalMetricNames`` without optimising them. Sextant lets an experiment name extra
objectives in one annotation, so the spec stays a valid Katib experiment that any Katib tool
reads unchanged::

    metadata:
      annotations:
        sextant.io/objectives: "inference_ms=minimize, model_kb=minimize"

Each entry is ``metric=direction``; the metric must be one of ``additionalMetricNames`` (so it
is collected) and the direction ``minimize`` or ``maximize``. ``objectiveMetricName`` stays the
primary objective: ``currentOptimalTrial``, the goal and early stopping use it alone.

Algorithm services that optimise several objectives (``nsga2``, ``mo-tpe``; registry entries
with ``multiObjective: true``) receive the annotation's text as the algorithm setting of the same
name, which Katib's wire carries like any other setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ANNOTATION = "sextant.io/objectives"
SETTING = ANNOTATION  # the algorithm setting that carries the annotation to the algorithm
DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Objective:
    name: str
    maximize: bool

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "maximize" if self.maximize else "minimize"


class ObjectivesError(ValueError):
    """The declaration is malformed; the message states the rule."""


def parse(text: str) -> list[Objective]:
    """``"a=minimize, b=maximize"`` -> objectives in order. Raises ObjectivesError."""
    out: list[Objective] = []
    seen: set[str] = set()
    for i, raw in enumerate(text.split(",")):
        entry = raw.strip()
        name, sep, direction = (part.strip() for part in entry.partition("="))
        if not sep or not name:
            raise ObjectivesError(f"entry {i + 1} ({entry!r}) must be metric=minimize or metric=maximize")
        if direction not in DIRECTIONS:
            raise ObjectivesError(f"entry {i + 1} ({name}): direction must be minimize or maximize, "
                                  f"got {direction!r}")
        if name in seen:
            raise ObjectivesError(f"entry {i + 1}: objective {name!r} is named twice")
        seen.add(name)
        out.append(Objective(name, direction == "maximize"))
    return out


def check(text: str, primary: str, collected: list[str]) -> list[str]:
    """Rule violations of a declaration against the experiment's metrics ([] when valid)."""
    try:
        extra = parse(text)
    except ObjectivesError as exc:
        return [str(exc)]
    errors = []
    for objective in extra:
        if objective.name == primary:
            errors.append(f"{objective.name!r} is already the primary objective (objectiveMetricName)")
        elif objective.name not in collected:
            errors.append(f"{objective.name!r} must be listed in spec.objective.additionalMetricNames "
                          "so that it is collected")
    return errors


def declared(annotations: dict[str, str] | None) -> str | None:
    """The annotation's text, or None when the experiment has one objective."""
    if not annotations:
        return None
    text = annotations.get(ANNOTATION)
    return text if text is not None and text.strip() else None
