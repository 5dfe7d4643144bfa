"""Turning resources into what ``get`` and ``describe`` print: kubectl-style plain tables,
ages, status words, numbers, YAML and JSON, ``-o name``, ``-o jsonpath=`` and
``-o custom-columns=``. Pure functions of documents, so they are unit-tested with fixtures and
no server. Nothing here imports pydantic or gRPC: the CLI's start-up stays cheap."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sextant.cli.errors import BadInput
from sextant.cli.jsonpath import evaluate, parse_template
from sextant.katib.condition_list import current_condition_type
from sextant.katib.trial_status import failure_of
from sextant.resources.vocabulary import API_GROUP
from sextant.timestamps import age

# Significant digits of objective values in tables (``-o yaml|json`` keep full precision).
SIGNIFICANT_DIGITS = 6

LIST_OUTPUTS = ("wide", "yaml", "json", "name")


def number(value: Any, digits: int = SIGNIFICANT_DIGITS) -> str:
    """A metric value as people read it: ``digits`` significant digits, no trailing zeros,
    never ``-0``. Text that is not a number is returned as it is."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    text = f"{x:.{digits}g}"
    if float(text) == 0:
        return "0"
    return text


def status_word(doc: dict[str, Any]) -> str:
    """The current condition's type (``condition_list.current_condition_type``), or Pending."""
    return current_condition_type(doc) or "Pending"


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
    """The value of a metric, unformatted: the one the objective type chooses (max/min), else latest."""
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
    """The optimal trial's parameters and metrics, or nothing before there is one."""
    optimal = optimal or {}
    if not optimal.get("bestTrialName"):
        return []
    lines = [f"  parameters: {assignments(optimal.get('parameterAssignments'))}"]
    for m in (optimal.get("observation") or {}).get("metrics") or []:
        lines.append(f"  {m.get('name')}: latest {number(m.get('latest'))} "
                     f"(min {number(m.get('min'))}, max {number(m.get('max'))})")
    return lines


def experiment_rows(docs: list[dict[str, Any]], wide: bool, now: datetime | None = None) -> tuple[list[str], list[list[Any]]]:
    headers = ["NAME", "STATUS", "TRIALS", "SUCCEEDED", "BEST", "AGE"]
    if wide:
        headers += ["ALGORITHM", "OBJECTIVE", "RUNNING", "FAILED", "BEST TRIAL"]
    rows = []
    for d in docs:
        spec, status = d.get("spec") or {}, d.get("status") or {}
        objective = spec.get("objective") or {}
        optimal = status.get("currentOptimalTrial") or {}
        best = metric_value(optimal.get("observation"), objective.get("objectiveMetricName", ""),
                            objective.get("type", ""))
        row = [d["metadata"]["name"], status_word(d), status.get("trials", 0),
               status.get("trialsSucceeded", 0), number(best) or "-", age(d["metadata"].get("creationTimestamp"), now)]
        if wide:
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
        row = [d["metadata"]["name"], status_word(d), number(value) or "-",
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


def resource_name(doc: dict[str, Any]) -> str:
    """kubectl's ``-o name``: ``experiment.kubeflow.org/NAME``."""
    return f"{str(doc.get('kind') or 'Experiment').lower()}.{API_GROUP}/{doc['metadata']['name']}"


def custom_columns(spec: str, docs: list[dict[str, Any]]) -> str:
    """kubectl's ``-o custom-columns=HEADER:.json.path,...`` (``<none>`` for a missing value)."""
    headers, paths = [], []
    for part in filter(None, spec.split(",")):
        header, sep, path = part.partition(":")
        if not sep or not header or not path:
            raise BadInput(f"-o custom-columns: {part!r} is not HEADER:.json.path")
        expression = path if path.startswith("{") else "{" + (path if path.startswith(".") else "." + path) + "}"
        headers.append(header)
        paths.append(parse_template(expression))
    if not headers:
        raise BadInput("-o custom-columns: expected HEADER:.json.path[,HEADER:.json.path...]")
    rows = []
    for d in docs:
        row = []
        for nodes in paths:
            values = evaluate(nodes, d)
            row.append(",".join(values) if values else "<none>")
        rows.append(row)
    return table(headers, rows)


def render_list(kind: str, docs: list[dict[str, Any]], output: str | None, *, single: bool = False,
                all_namespaces: bool = False, now: datetime | None = None,
                pareto: set[tuple[str, str]] | None = None) -> str:
    """``get`` output. ``single`` (``get KIND NAME``) prints the object itself for
    yaml/json/jsonpath, as kubectl does; ``all_namespaces`` adds the NAMESPACE column;
    ``pareto`` marks Pareto-optimal trials (see ``trial_rows``)."""
    output = output or ""
    if output in ("json", "yaml") or output.startswith("jsonpath"):
        body: Any = docs[0] if single and len(docs) == 1 else \
            {"apiVersion": "v1", "kind": "List", "items": docs}
        if output == "json":
            return json.dumps(body, indent=2)
        if output == "yaml":
            import yaml

            return yaml.safe_dump(body, sort_keys=False).rstrip()
        template = output.partition("=")[2]
        if not template:
            raise BadInput("-o jsonpath: expected jsonpath=TEMPLATE, e.g. jsonpath='{.items[*].metadata.name}'")
        return "".join(evaluate(parse_template(template), body))
    if output == "name":
        return "\n".join(resource_name({"kind": kind, **d}) for d in docs)
    if output.startswith("custom-columns"):
        return custom_columns(output.partition("=")[2], docs)
    if output not in ("", "wide"):
        raise BadInput(f"-o: unknown output format {output!r}: use wide, yaml, json, name, "
                       "jsonpath=TEMPLATE or custom-columns=SPEC")
    if kind == "Trial":
        headers, rows = trial_rows(docs, output == "wide", now, pareto)
    else:
        headers, rows = ROWS[kind](docs, output == "wide", now)
    if all_namespaces:
        headers = ["NAMESPACE", *headers]
        rows = [[d["metadata"].get("namespace", ""), *row] for d, row in zip(docs, rows, strict=True)]
    return table(headers, rows)


# ---------------------------------------------------------------------------------------------
# failures

def logs_command(trial: str, namespace: str = "default") -> str:
    return f"sextant logs {trial}" + ("" if namespace == "default" else f" -n {namespace}")


def failure_lines(trial: dict[str, Any], namespace: str = "default") -> list[str]:
    """A failed trial's reason, its whole message (indented) and the command that prints its log."""
    cond = failure_of(trial) or {}
    name = trial["metadata"]["name"]
    lines = [f"  {name}: {cond.get('type', '')} ({cond.get('reason') or 'no reason given'})"]
    message = (cond.get("message") or "").rstrip()
    lines += [f"    {line}" for line in message.split("\n")] if message else ["    (no message)"]
    lines.append(f"    whole log: {logs_command(name, namespace)}")
    return lines
