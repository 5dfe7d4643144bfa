"""``sextant describe experiment NAME``: everything a user asks about one experiment."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from sextant.cli.context import Context
from sextant.cli.errors import EXIT_OK, BadInput
from sextant.cli.render import age, assignments, metric_value, optimal_trial_lines, status_word
from sextant.cli.resources_cmd import add_namespace, kind_of, namespace
from sextant.objectives import ANNOTATION
from sextant.resources.models import EXPERIMENT_LABEL, to_doc
from sextant.store.interface import ResourceStore

MAX_EVENTS = 20


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("describe", help="show an experiment in detail")
    p.add_argument("kind")
    p.add_argument("name")
    add_namespace(p)
    p.set_defaults(func=cmd_describe)


def _events(store: ResourceStore, space: str, names: set[str]) -> list[dict[str, Any]]:
    """Recent Events about the experiment, its suggestion and its trials (oldest first)."""
    try:
        items, _ = store.list("Event", space)
    except Exception:  # noqa: BLE001 - events are a nice-to-have; never fail describe for them
        return []
    out = []
    for item in items:
        doc = to_doc(item)
        spec = doc.get("spec") or {}
        involved = spec.get("involvedObject") or {}
        if involved.get("name") in names:
            out.append(doc)
    out.sort(key=lambda d: (d.get("spec") or {}).get("lastTimestamp")
             or d["metadata"].get("creationTimestamp") or "")
    return out[-MAX_EVENTS:]


def describe_experiment(doc: dict[str, Any], trials: list[dict[str, Any]], events: list[dict[str, Any]],
                        console: Console) -> None:
    meta, spec, status = doc["metadata"], doc.get("spec") or {}, doc.get("status") or {}
    objective = spec.get("objective") or {}
    algorithm = spec.get("algorithm") or {}
    console.print(f"[bold]Name:[/bold]        {meta['name']}")
    console.print(f"[bold]Namespace:[/bold]   {meta.get('namespace', '')}")
    console.print(f"[bold]Created:[/bold]     {meta.get('creationTimestamp', '')} ({age(meta.get('creationTimestamp'))} ago)")
    console.print(f"[bold]Status:[/bold]      {status_word(doc)}")
    console.print(f"[bold]Objective:[/bold]   {objective.get('type', '')} {objective.get('objectiveMetricName', '')}"
                  + (f" (goal {objective['goal']})" if objective.get("goal") is not None else ""))
    settings = ", ".join(f"{s['name']}={s.get('value', '')}" for s in algorithm.get("algorithmSettings") or [])
    console.print(f"[bold]Algorithm:[/bold]   {algorithm.get('algorithmName', '')}" + (f" ({settings})" if settings else ""))
    if spec.get("earlyStopping"):
        console.print(f"[bold]Early stop:[/bold]  {spec['earlyStopping'].get('algorithmName', '')}")
    console.print(f"[bold]Budget:[/bold]      maxTrialCount={spec.get('maxTrialCount', '-')} "
                  f"parallelTrialCount={spec.get('parallelTrialCount', '-')} "
                  f"maxFailedTrialCount={spec.get('maxFailedTrialCount', '-')}")

    params = Table(title="Parameters", title_justify="left", box=None, pad_edge=False)
    for h in ("NAME", "TYPE", "FEASIBLE SPACE"):
        params.add_column(h)
    for p in spec.get("parameters") or []:
        fs = p.get("feasibleSpace") or {}
        space = (", ".join(fs["list"]) if fs.get("list") else
                 f"[{fs.get('min', '')}, {fs.get('max', '')}]" + (f" step {fs['step']}" if fs.get("step") else ""))
        if fs.get("distribution") and fs.get("distribution") != "uniform":
            space += f" {fs['distribution']}"
        params.add_row(p.get("name", ""), p.get("parameterType", ""), space)
    console.print()
    console.print(params)

    conds = Table(title="Conditions", title_justify="left", box=None, pad_edge=False)
    for h in ("TYPE", "STATUS", "REASON", "MESSAGE", "LAST TRANSITION"):
        conds.add_column(h)
    for c in status.get("conditions") or []:
        conds.add_row(c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", ""),
                      c.get("lastTransitionTime") or "")
    console.print()
    if status.get("conditions"):
        console.print(conds)
    else:
        console.print("[bold]Conditions:[/bold]  <none>")

    console.print()
    counts = [("trials", "trials"), ("succeeded", "trialsSucceeded"), ("running", "trialsRunning"),
              ("pending", "trialsPending"), ("failed", "trialsFailed"), ("killed", "trialsKilled"),
              ("early stopped", "trialsEarlyStopped"), ("metrics unavailable", "trialMetricsUnavailable")]
    console.print("[bold]Trials:[/bold]      " + ", ".join(f"{label} {status.get(key, 0)}" for label, key in counts))

    optimal = status.get("currentOptimalTrial") or {}
    console.print()
    if optimal.get("bestTrialName"):
        console.print(f"[bold]Optimal trial:[/bold] {optimal['bestTrialName']}")
        for line in optimal_trial_lines(optimal):
            console.print(line)
    else:
        console.print("[bold]Optimal trial:[/bold] none yet")
    pareto = status.get("paretoOptimalTrials")
    if pareto is not None:  # a multi-objective experiment
        declared = (meta.get("annotations") or {}).get(ANNOTATION, "")
        console.print()
        console.print(f"[bold]Pareto front:[/bold] {len(pareto)} trials "
                      f"({objective.get('objectiveMetricName', '')}={objective.get('type', '')}, {declared})")
        for member in pareto:
            metrics = ", ".join(f"{m.get('name')}={m.get('latest')}"
                                for m in (member.get("observation") or {}).get("metrics") or [])
            console.print(f"  {member.get('bestTrialName', '')}  {metrics}")

    if trials:
        best = Table(title="Trials", title_justify="left", box=None, pad_edge=False)
        for h in ("NAME", "STATUS", objective.get("objectiveMetricName", "OBJECTIVE").upper(), "PARAMETERS"):
            best.add_column(h)
        for t in trials:
            best.add_row(t["metadata"]["name"], status_word(t),
                         metric_value((t.get("status") or {}).get("observation"),
                                      objective.get("objectiveMetricName", ""), objective.get("type", "")) or "-",
                         assignments((t.get("spec") or {}).get("parameterAssignments")))
        console.print()
        console.print(best)

    console.print()
    if events:
        ev = Table(title="Events", title_justify="left", box=None, pad_edge=False)
        for h in ("TYPE", "REASON", "AGE", "OBJECT", "MESSAGE"):
            ev.add_column(h)
        for e in events:
            s = e.get("spec") or {}
            ev.add_row(s.get("type", ""), s.get("reason", ""),
                       age(s.get("lastTimestamp") or e["metadata"].get("creationTimestamp")),
                       f"{(s.get('involvedObject') or {}).get('kind', '').lower()}/"
                       f"{(s.get('involvedObject') or {}).get('name', '')}",
                       s.get("message", ""))
        console.print(ev)
    else:
        console.print("[bold]Events:[/bold]      <none>")


def cmd_describe(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    if kind_of(ns.kind) != "Experiment":
        raise BadInput("describe supports experiments only (use `get trials -o yaml` for trials)")
    store = ctx.store()
    space = namespace(ns)
    doc = to_doc(store.get("Experiment", space, ns.name))
    trial_items, _ = store.list("Trial", space, {EXPERIMENT_LABEL: ns.name})
    trials = sorted((to_doc(t) for t in trial_items),
                    key=lambda d: d["metadata"].get("creationTimestamp") or "")
    names = {ns.name} | {t["metadata"]["name"] for t in trials}
    describe_experiment(doc, trials, _events(store, space, names), console)
    return EXIT_OK
