"""``sextant describe experiment NAME``: everything a user asks about one experiment."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sextant.cli.context import Context
from sextant.cli.errors import EXIT_OK, BadInput
from sextant.cli.render import (
    assignments,
    failure_lines,
    metric_value,
    number,
    optimal_trial_lines,
    status_word,
    table,
)
from sextant.cli.resources_cmd import add_namespace, kind_of, namespace
from sextant.katib import trial_status
from sextant.objectives import ANNOTATION
from sextant.resources.vocabulary import EXPERIMENT_LABEL
from sextant.timestamps import age

if TYPE_CHECKING:
    from rich.console import Console

    from sextant.store.client import GrpcResourceStore

MAX_EVENTS = 20
# Failed trials whose whole message describe prints (the newest; the table has every trial).
MAX_FAILURES = 3


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("describe", help="show an experiment in detail")
    p.add_argument("kind")
    p.add_argument("name")
    add_namespace(p)
    p.set_defaults(func=cmd_describe)


def _events(store: GrpcResourceStore, space: str, names: set[str]) -> list[dict[str, Any]]:
    """Recent Events about the experiment, its suggestion and its trials (oldest first)."""
    try:
        items, _ = store.list_documents("Event", space)
    except Exception:  # noqa: BLE001 - events are a nice-to-have; never fail describe for them
        return []
    out = []
    for doc in items:
        spec = doc.get("spec") or {}
        involved = spec.get("involvedObject") or {}
        if involved.get("name") in names:
            out.append(doc)
    out.sort(key=lambda d: (d.get("spec") or {}).get("lastTimestamp")
             or d["metadata"].get("creationTimestamp") or "")
    return out[-MAX_EVENTS:]


def describe_experiment(doc: dict[str, Any], trials: list[dict[str, Any]], events: list[dict[str, Any]],
                        out: Callable[[str], None] = print) -> None:
    """kubectl-style plain text: ``Field:`` lines, then titled tables (no colour, no rich: the
    output is the same on a terminal, in a pipe and in a log)."""
    meta, spec, status = doc["metadata"], doc.get("spec") or {}, doc.get("status") or {}
    objective = spec.get("objective") or {}
    algorithm = spec.get("algorithm") or {}
    out(f"Name:        {meta['name']}")
    out(f"Namespace:   {meta.get('namespace', '')}")
    out(f"Created:     {meta.get('creationTimestamp', '')} ({age(meta.get('creationTimestamp'))} ago)")
    out(f"Status:      {status_word(doc)}")
    out(f"Objective:   {objective.get('type', '')} {objective.get('objectiveMetricName', '')}"
        + (f" (goal {objective['goal']})" if objective.get("goal") is not None else ""))
    settings = ", ".join(f"{s['name']}={s.get('value', '')}" for s in algorithm.get("algorithmSettings") or [])
    out(f"Algorithm:   {algorithm.get('algorithmName', '')}" + (f" ({settings})" if settings else ""))
    if spec.get("earlyStopping"):
        out(f"Early stop:  {spec['earlyStopping'].get('algorithmName', '')}")
    out(f"Budget:      maxTrialCount={spec.get('maxTrialCount', '-')} "
        f"parallelTrialCount={spec.get('parallelTrialCount', '-')} "
        f"maxFailedTrialCount={spec.get('maxFailedTrialCount', '-')}")

    rows = []
    for p in spec.get("parameters") or []:
        fs = p.get("feasibleSpace") or {}
        space = (", ".join(fs["list"]) if fs.get("list") else
                 f"[{fs.get('min', '')}, {fs.get('max', '')}]" + (f" step {fs['step']}" if fs.get("step") else ""))
        if fs.get("distribution") and fs.get("distribution") != "uniform":
            space += f" {fs['distribution']}"
        rows.append([p.get("name", ""), p.get("parameterType", ""), space])
    _section(out, "Parameters", ["NAME", "TYPE", "FEASIBLE SPACE"], rows)

    conditions = [[c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", ""),
                   c.get("lastTransitionTime") or ""] for c in status.get("conditions") or []]
    _section(out, "Conditions", ["TYPE", "STATUS", "REASON", "MESSAGE", "LAST TRANSITION"], conditions)

    out("")
    counts = [("trials", "trials"), ("succeeded", "trialsSucceeded"), ("running", "trialsRunning"),
              ("pending", "trialsPending"), ("failed", "trialsFailed"), ("killed", "trialsKilled"),
              ("early stopped", "trialsEarlyStopped"), ("metrics unavailable", "trialMetricsUnavailable")]
    out("Trials:      " + ", ".join(f"{label} {status.get(key, 0)}" for label, key in counts))

    optimal = status.get("currentOptimalTrial") or {}
    out("")
    if optimal.get("bestTrialName"):
        out(f"Optimal trial: {optimal['bestTrialName']}")
        for line in optimal_trial_lines(optimal):
            out(line)
    else:
        out("Optimal trial: none yet")
    pareto = status.get("paretoOptimalTrials")
    if pareto is not None:  # a multi-objective experiment
        declared = (meta.get("annotations") or {}).get(ANNOTATION, "")
        out("")
        out(f"Pareto front: {len(pareto)} trials "
            f"({objective.get('objectiveMetricName', '')}={objective.get('type', '')}, {declared})")
        for member in pareto:
            metrics = ", ".join(f"{m.get('name')}={number(m.get('latest'))}"
                                for m in (member.get("observation") or {}).get("metrics") or [])
            out(f"  {member.get('bestTrialName', '')}  {metrics}")

    if trials:
        failed = [t for t in trials if trial_status.ended_in_failure(t)]
        headers = ["NAME", "STATUS", objective.get("objectiveMetricName", "OBJECTIVE").upper(), "PARAMETERS"]
        rows = []
        for t in trials:
            row = [t["metadata"]["name"], status_word(t),
                   number(metric_value((t.get("status") or {}).get("observation"),
                                       objective.get("objectiveMetricName", ""), objective.get("type", ""))) or "-",
                   assignments((t.get("spec") or {}).get("parameterAssignments"))]
            if failed:
                cond = trial_status.failure_of(t) or {}
                row += [cond.get("reason", ""), _first_line(cond.get("message", ""))]
            rows.append(row)
        _section(out, "Trials", headers + (["REASON", "MESSAGE"] if failed else []), rows)
        if failed:
            space = meta.get("namespace", "default")
            out("")
            shown = failed[-MAX_FAILURES:]
            out(f"Failed trials: {len(failed)}" + (f" (the last {len(shown)} below)" if len(failed) > len(shown) else ""))
            for t in shown:
                for line in failure_lines(t, space):
                    out(line)

    rows = []
    for e in events:
        s = e.get("spec") or {}
        involved = s.get("involvedObject") or {}
        rows.append([s.get("type", ""), s.get("reason", ""),
                     age(s.get("lastTimestamp") or e["metadata"].get("creationTimestamp")),
                     f"{involved.get('kind', '').lower()}/{involved.get('name', '')}", s.get("message", "")])
    _section(out, "Events", ["TYPE", "REASON", "AGE", "OBJECT", "MESSAGE"], rows)


def _section(out: Callable[[str], None], title: str, headers: list[str], rows: list[list[Any]]) -> None:
    out("")
    if not rows:
        out(f"{title}:" + " " * max(1, 12 - len(title)) + "<none>")
        return
    out(f"{title}:")
    for line in table(headers, [[_one_line(c) for c in row] for row in rows]).split("\n"):
        out(f"  {line}")


def _one_line(value: Any) -> str:
    return " ".join(str(value).split("\n")) if value is not None else ""


def _first_line(text: str, limit: int = 80) -> str:
    line = (text or "").strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit - 1] + "…"


def cmd_describe(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    if kind_of(ns.kind) != "Experiment":
        raise BadInput("describe supports experiments only (use `get trials -o yaml` for trials)")
    store = ctx.store()
    space = namespace(ns)
    doc = store.get_document("Experiment", space, ns.name)
    trial_docs, _ = store.list_documents("Trial", space, {EXPERIMENT_LABEL: ns.name})
    trials = sorted(trial_docs,
                    key=lambda d: d["metadata"].get("creationTimestamp") or "")
    names = {ns.name} | {t["metadata"]["name"] for t in trials}
    describe_experiment(doc, trials, _events(store, space, names))
    return EXIT_OK
