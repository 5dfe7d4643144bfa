"""``kubectl get`` tables (``as=Table``): Katib's printer columns (Type and Status of the last
condition; a Suggestion's Requested and Assigned) and Age, plus wide columns (priority 1,
shown by ``-o wide``) with what a tuner wants at a glance. The server formats Age, as the
Kubernetes API server does for custom resources."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sextant import timestamps
from sextant.cli.render import metric_value, number
from sextant.katib.condition_list import current_condition_status, current_condition_type

Doc = dict[str, Any]
Column = tuple[str, str, int, str, Callable[[Doc], Any]]  # name, type, priority, description, cell


def age(doc: Doc, now: datetime | None = None) -> str:
    return timestamps.age((doc.get("metadata") or {}).get("creationTimestamp"), now)


def _spec(doc: Doc) -> Doc:
    return doc.get("spec") or {}


def _status(doc: Doc) -> Doc:
    return doc.get("status") or {}


def _best(doc: Doc) -> str:
    objective = _spec(doc).get("objective") or {}
    name = objective.get("objectiveMetricName", "")
    optimal = _status(doc).get("currentOptimalTrial") or {}
    value = metric_value(optimal.get("observation"), name, objective.get("type", ""))
    return "" if not name or value in ("", "unavailable") else f"{name}={number(value)}"


def _trial_objective(doc: Doc) -> str:
    objective = _spec(doc).get("objective") or {}
    name = objective.get("objectiveMetricName", "")
    value = metric_value(_status(doc).get("observation"), name, objective.get("type", ""))
    return "" if not name or value in ("", "unavailable") else f"{name}={number(value)}"


def _assignments(doc: Doc) -> str:
    return ",".join(f"{a.get('name')}={a.get('value')}" for a in _spec(doc).get("parameterAssignments") or [])


PARETO_NAMES_SHOWN = 5


def _pareto(doc: Doc) -> str:
    """A multi-objective experiment's Pareto-optimal trials: how many, and the first names."""
    front = _status(doc).get("paretoOptimalTrials")
    if front is None:
        return ""
    names = [m.get("bestTrialName", "") for m in front]
    shown = ",".join(names[:PARETO_NAMES_SHOWN]) + (",..." if len(names) > PARETO_NAMES_SHOWN else "")
    return f"{len(names)}: {shown}" if names else "0"


def _trials(doc: Doc) -> str:
    status, spec = _status(doc), _spec(doc)
    return (f"{status.get('trialsSucceeded', 0)}/{status.get('trialsRunning', 0)}/"
            f"{status.get('trialsFailed', 0)} of {spec.get('maxTrialCount', '-')}")


_TYPE: Column = ("Type", "string", 0, "The type of the last condition", lambda d: current_condition_type(d) or "")
_STATUS: Column = ("Status", "string", 0, "The status of the last condition", lambda d: current_condition_status(d) or "")
_AGE: Column = ("Age", "date", 0, "Time since the resource was created", age)

COLUMNS: dict[str, list[Column]] = {
    "Experiment": [_TYPE, _STATUS, _AGE,
                   ("Algorithm", "string", 1, "The search algorithm",
                    lambda d: (_spec(d).get("algorithm") or {}).get("algorithmName", "")),
                   ("Trials", "string", 1, "Trials succeeded/running/failed of the maximum", _trials),
                   ("Best", "string", 1, "The best objective value so far", _best),
                   ("Pareto", "string", 1, "Pareto-optimal trials of a multi-objective experiment", _pareto)],
    "Trial": [_TYPE, _STATUS, _AGE,
              ("Parameters", "string", 1, "The parameter assignments", _assignments),
              ("Objective", "string", 1, "The objective metric's value", _trial_objective)],
    "Suggestion": [_TYPE, _STATUS,
                   ("Requested", "string", 0, "Suggestions requested", lambda d: str(_spec(d).get("requests", 0))),
                   ("Assigned", "string", 0, "Suggestions assigned",
                    lambda d: str(_status(d).get("suggestionCount", 0))),
                   _AGE],
    "Pod": [("Status", "string", 0, "The pod's phase", lambda d: _status(d).get("phase", "")), _AGE],
    "Namespace": [("Status", "string", 0, "The namespace's phase", lambda d: _status(d).get("phase", "")), _AGE],
}
DEFAULT_COLUMNS: list[Column] = [_AGE]


def _definitions(columns: list[Column]) -> list[Doc]:
    defs = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
             "description": "Name must be unique within a namespace."}]
    defs += [{"name": n, "type": t, "format": "", "priority": p, "description": desc}
             for n, t, p, desc, _ in columns]
    return defs


def _partial(doc: Doc, table_version: str) -> Doc:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{table_version}",
            "metadata": doc.get("metadata") or {}}


def table(kind: str, docs: Iterable[Doc], *, table_version: str = "v1", resource_version: str = "",
          continue_token: str = "", include_object: str = "Metadata", columns: list[Column] | None = None) -> Doc:
    """A ``meta.k8s.io`` Table of ``docs``. ``include_object`` is the client's includeObject
    parameter (None, Metadata, Object)."""
    cols = columns if columns is not None else COLUMNS.get(kind, DEFAULT_COLUMNS)
    now = datetime.now(UTC)
    rows = []
    for doc in docs:
        cells = [(doc.get("metadata") or {}).get("name", "")]
        cells += [age(doc, now) if fn is age else fn(doc) for *_, fn in cols]
        row: Doc = {"cells": cells}
        if include_object == "Object":
            row["object"] = doc
        elif include_object != "None":
            row["object"] = _partial(doc, table_version)
        rows.append(row)
    metadata: Doc = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{table_version}", "metadata": metadata,
            "columnDefinitions": _definitions(cols), "rows": rows}
