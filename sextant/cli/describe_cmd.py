"""``sextant describe experiment NAME``: everything a user asks about one experiment."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from sextant.cli.context import Context
from sextant.cli.errors import EXIT_OK, BadInput
from sextant.cli.render import (
    age,
    assignments,
    failure_lines,
    failure_of,
    metric_value,
    number,
    optimal_trial_lines,
    status_word,
)
from sextant.cli.resources_cmd import add_namespace, kind_of, namespace
from sextant.resources.vocabulary import EXPERIMENT_LABEL

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
                        console: Console) -> None:
    from rich.table import Table

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

    if trials:
        failed = [t for t in trials if failure_of(t)]
        best = Table(title="Trials", title_justify="left", box=None, pad_edge=False)
        headers = ["NAME", "STATUS", objective.get("objectiveMetricName", "OBJECTIVE").upper(), "PARAMETERS"]
        for h in headers + (["REASON", "MESSAGE"] if failed else []):
            best.add_column(h, overflow="fold" if h == "MESSAGE" else "ellipsis")
        for t in trials:
            row = [t["metadata"]["name"], status_word(t),
                   number(metric_value((t.get("status") or {}).get("observation"),
                                       objective.get("objectiveMetricName", ""), objective.get("type", ""))) or "-",
                   assignments((t.get("spec") or {}).get("parameterAssignments"))]
            if failed:
                cond = failure_of(t) or {}
                row += [cond.get("reason", ""), _first_line(cond.get("message", ""))]
            best.add_row(*row)
        console.print()
        console.print(best)
        if failed:
            space = meta.get("namespace", "default")
            console.print()
            shown = failed[-MAX_FAILURES:]
            console.print(f"[bold]Failed trials:[/bold] {len(failed)}"
                          + (f" (the last {len(shown)} below)" if len(failed) > len(shown) else ""))
            for t in shown:
                for line in failure_lines(t, space):
                    console.print(line, markup=False, highlight=False)

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
    describe_experiment(doc, trials, _events(store, space, names), console)
    return EXIT_OK
