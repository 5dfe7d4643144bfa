"""Turning resources into what ``get`` and ``describe`` print: kubectl-style plain tables,
ages, status words, YAML and JSON. Pure functions of documents, so they are unit-tested
with fixtures and no server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import yaml

from sextant import timestamps


def parse_time(value: str | None) -> datetime | None:
    t = timestamps.parse_time(value)
    if t is None or t.year <= 1:  # Katib initialises completionTime to the zero time
        return None
    return t


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's short age: ``42s``, ``5m``, ``3h``, ``2d`` (``<unknown>`` without a time)."""
    t = parse_time(timestamp)
    if t is None:
        return "<unknown>"
    seconds = max(0, int(((now or datetime.now(UTC)) - t).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def status_word(doc: dict[str, Any]) -> str:
    """The current condition: the last one whose status is True (kubectl shows the last condition)."""
    conditions = (doc.get("status") or {}).get("conditions") or []
    for cond in reversed(conditions):
        if cond.get("status") == "True":
            return str(cond.get("type", ""))
    return str(conditions[-1].get("type", "")) if conditions else "Pending"


def condition(doc: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (doc.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cast(dict[str, Any], cond)
    return None


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by three spaces, like kubectl."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def objective_name(experiment: dict[str, Any]) -> str:
    return cast(str, ((experiment.get("spec") or {}).get("objective") or {}).get("objectiveMetricName", ""))


def metric_value(observation: dict[str, Any] | None, name: str, objective_type: str = "") -> str:
    """The value to show for a metric: the one the objective type chooses (max/min), else latest."""
    for metric in (observation or {}).get("metrics") or []:
        if metric.get("name") == name:
            if "value" in metric:  # v1alpha3 shape
                return str(metric["value"])
            key = {"maximize": "max", "minimize": "min"}.get(objective_type, "latest")
            return str(metric.get(key) or metric.get("latest") or "")
    return ""


def assignments(items: list[dict[str, Any]] | None) -> str:
    return ", ".join(f"{a.get('name')}={a.get('value')}" for a in items or [])


# ---------------------------------------------------------------------------------------------
# get tables


def optimal_trial_lines(optimal: dict[str, Any] | None) -> list[str]:
    """The optimal trial's parameters and metrics (rich markup), or nothing before there is one."""
    optimal = optimal or {}
    if not optimal.get("bestTrialName"):
        return []
    lines = [f"  parameters: {assignments(optimal.get('parameterAssignments'))}"]
    for m in (optimal.get("observation") or {}).get("metrics") or []:
        lines.append(f"  {m.get('name')}: latest {m.get('latest')} (min {m.get('min')}, max {m.get('max')})")
    return lines


def experiment_rows(docs: list[dict[str, Any]], wide: bool, now: datetime | None = None) -> tuple[list[str], list[list[Any]]]:
    headers = ["NAME", "STATUS", "TRIALS", "SUCCEEDED", "BEST", "AGE"]
    if wide:
        headers[1:1] = ["NAMESPACE"]
        headers += ["ALGORITHM", "OBJECTIVE", "RUNNING", "FAILED", "BEST TRIAL"]
    rows = []
    for d in docs:
        spec, status = d.get("spec") or {}, d.get("status") or {}
        objective = spec.get("objective") or {}
        optimal = status.get("currentOptimalTrial") or {}
        best = metric_value(optimal.get("observation"), objective.get("objectiveMetricName", ""),
                            objective.get("type", ""))
        row = [d["metadata"]["name"], status_word(d), status.get("trials", 0),
               status.get("trialsSucceeded", 0), best or "-", age(d["metadata"].get("creationTimestamp"), now)]
        if wide:
            row[1:1] = [d["metadata"].get("namespace", "")]
            row += [(spec.get("algorithm") or {}).get("algorithmName", ""),
                    f"{objective.get('type', '')} {objective.get('objectiveMetricName', '')}".strip(),
                    status.get("trialsRunning", 0), status.get("trialsFailed", 0),
                    optimal.get("bestTrialName") or "-"]
        rows.append(row)
    return headers, rows


def trial_rows(docs: list[dict[str, Any]], wide: bool, now: datetime | None = None,
               pareto: set[tuple[str, str]] | None = None) -> tuple[list[str], list[list[Any]]]:
    """``pareto``: (namespace, name) of the Pareto-optimal trials, which a PARETO column marks
    (None: no multi-objective experiment among the trials, no column)."""
    headers = ["NAME", "STATUS", "OBJECTIVE", "AGE"]
    if pareto is not None:
        headers[3:3] = ["PARETO"]
    if wide:
        headers[1:1] = ["EXPERIMENT"]
        headers += ["PARAMETERS"]
    rows = []
    for d in docs:
        spec, status = d.get("spec") or {}, d.get("status") or {}
        objective = spec.get("objective") or {}
        value = metric_value(status.get("observation"), objective.get("objectiveMetricName", ""),
                             objective.get("type", ""))
        row = [d["metadata"]["name"], status_word(d), value or "-",
               age(d["metadata"].get("creationTimestamp"), now)]
        if pareto is not None:
            row[3:3] = ["*" if (d["metadata"].get("namespace", ""), d["metadata"]["name"]) in pareto else ""]
        if wide:
            row[1:1] = [(d["metadata"].get("labels") or {}).get("katib.kubeflow.org/experiment", "")]
            row += [assignments(spec.get("parameterAssignments"))]
        rows.append(row)
    return headers, rows


def suggestion_rows(docs: list[dict[str, Any]], wide: bool, now: datetime | None = None) -> tuple[list[str], list[list[Any]]]:
    headers = ["NAME", "STATUS", "REQUESTED", "ASSIGNED", "AGE"]
    if wide:
        headers += ["ALGORITHM"]
    rows = []
    for d in docs:
        spec, status = d.get("spec") or {}, d.get("status") or {}
        row = [d["metadata"]["name"], status_word(d), spec.get("requests", 0),
               status.get("suggestionCount", 0), age(d["metadata"].get("creationTimestamp"), now)]
        if wide:
            row += [(spec.get("algorithm") or {}).get("algorithmName", "")]
        rows.append(row)
    return headers, rows


ROWS = {"Experiment": experiment_rows, "Trial": trial_rows, "Suggestion": suggestion_rows}


def render_list(kind: str, docs: list[dict[str, Any]], output: str | None, *, single: bool = False,
                now: datetime | None = None, pareto: set[tuple[str, str]] | None = None) -> str:
    """``get`` output. ``single`` (``get KIND NAME``) prints the object itself for yaml/json."""
    if output in ("json", "yaml"):
        body: Any = docs[0] if single and len(docs) == 1 else \
            {"apiVersion": "v1", "kind": "List", "items": docs}
        if output == "json":
            return json.dumps(body, indent=2)
        return yaml.safe_dump(body, sort_keys=False).rstrip()
    if kind == "Trial":
        headers, rows = trial_rows(docs, output == "wide", now, pareto)
    else:
        headers, rows = ROWS[kind](docs, output == "wide", now)
    return table(headers, rows)
