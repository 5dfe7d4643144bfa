"""``sextant run -f FILE``: start the stack if needed, apply one experiment, watch it to the end.

On a terminal it shows a rich progress bar on finished/maxTrialCount trials and a table of
the best trials so far; elsewhere (CI, pipes) one line per change. It ends with the optimal
trial and the commands to see more. Exit 0 when the experiment Succeeded, 1 when it Failed.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sextant.cli.context import Context
from sextant.cli.errors import EXIT_FAILURE, EXIT_OK, BadInput, CliError
from sextant.cli.files import load_experiments, require_valid
from sextant.cli.render import assignments, condition, metric_value, optimal_trial_lines, status_word
from sextant.cli.resources_cmd import parse_duration
from sextant.cli.stack_cmd import ensure_stack
from sextant.katib import experiment_status, trial_status
from sextant.resources.models import EXPERIMENT_LABEL, to_doc
from sextant.store.interface import AlreadyExists

TOP = 5


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run one experiment to the end (starts the local stack if needed)")
    p.add_argument("-f", "--filename", required=True, help="experiment file, or - for stdin")
    p.add_argument("-n", "--namespace", default=None)
    p.add_argument("--timeout", default=None, help="give up after this long (e.g. 10m); default never")
    p.add_argument("--port", type=int, default=0,
                   help="DB manager port if the stack must be started (default: any free port)")
    p.set_defaults(func=cmd_run)


def _finished(trial: dict[str, Any]) -> bool:
    return trial_status.is_finished(trial)


def best_trials(trials: list[dict[str, Any]], objective: dict[str, Any], top: int = TOP) -> list[tuple[float, dict[str, Any]]]:
    name, kind = objective.get("objectiveMetricName", ""), objective.get("type", "")
    scored = []
    for t in trials:
        value = metric_value((t.get("status") or {}).get("observation"), name, kind)
        try:
            scored.append((float(value), t))
        except ValueError:
            continue
    scored.sort(key=lambda p: p[0], reverse=kind == "maximize")
    return scored[:top]


def _best_table(trials: list[dict[str, Any]], objective: dict[str, Any]) -> Table:
    table = Table(title="Best trials so far", title_justify="left", box=None, pad_edge=False)
    table.add_column("TRIAL")
    table.add_column(objective.get("objectiveMetricName", "objective").upper(), justify="right")
    table.add_column("PARAMETERS")
    for value, t in best_trials(trials, objective):
        table.add_row(t["metadata"]["name"], f"{value:g}", assignments((t.get("spec") or {}).get("parameterAssignments")))
    return table


class Watcher:
    """Polls the experiment and its trials, feeding either a rich Live view or plain lines."""

    def __init__(self, ctx: Context, name: str, space: str, console: Console):
        self.store, self.name, self.space, self.console = ctx.store(), name, space, console
        self.last_line = ""

    def snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        exp = to_doc(self.store.get("Experiment", self.space, self.name))
        items, _ = self.store.list("Trial", self.space, {EXPERIMENT_LABEL: self.name})
        return exp, [to_doc(t) for t in items]

    def line(self, exp: dict[str, Any], trials: list[dict[str, Any]]) -> str:
        objective = (exp.get("spec") or {}).get("objective") or {}
        done = sum(_finished(t) for t in trials)
        total = (exp.get("spec") or {}).get("maxTrialCount")
        best = best_trials(trials, objective, 1)
        text = f"{status_word(exp)}: {done}/{total or '?'} trials finished, {len(trials) - done} active"
        if best:
            text += f"; best {objective.get('objectiveMetricName')}={best[0][0]:g} ({best[0][1]['metadata']['name']})"
        return text

    def run(self, deadline: float | None) -> dict[str, Any]:
        exp, trials = self.snapshot()
        total = (exp.get("spec") or {}).get("maxTrialCount")
        objective = (exp.get("spec") or {}).get("objective") or {}
        if not self.console.is_terminal:
            while True:
                text = self.line(exp, trials)
                if text != self.last_line:
                    print(text, flush=True)
                    self.last_line = text
                if _experiment_done(exp):
                    return exp
                _check_deadline(deadline, self.name)
                time.sleep(0.5)
                exp, trials = self.snapshot()
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=self.console)
        task = progress.add_task(self.name, total=total, state="")
        with Live(Group(progress, _best_table(trials, objective)), console=self.console,
                  refresh_per_second=4) as live:
            while True:
                done = sum(_finished(t) for t in trials)
                progress.update(task, completed=done, state=f"{status_word(exp)}, {len(trials) - done} active")
                live.update(Group(progress, _best_table(trials, objective)))
                if _experiment_done(exp):
                    return exp
                _check_deadline(deadline, self.name)
                time.sleep(0.5)
                exp, trials = self.snapshot()


def _experiment_done(exp: dict[str, Any]) -> bool:
    return experiment_status.is_finished(exp)


def _check_deadline(deadline: float | None, name: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise CliError(f"timed out waiting for experiment {name}; it keeps running "
                       f"(`sextant describe experiment {name}`)")


def summary(exp: dict[str, Any], console: Console) -> int:
    name = exp["metadata"]["name"]
    optimal = (exp.get("status") or {}).get("currentOptimalTrial") or {}
    succeeded = experiment_status.is_succeeded(exp)
    cond = condition(exp, experiment_status.SUCCEEDED if succeeded else experiment_status.FAILED) or {}
    colour = "green" if succeeded else "red"
    console.print(f"[{colour}]experiment {name} {'succeeded' if succeeded else 'failed'}[/{colour}]: "
                  f"{cond.get('message', '')}")
    if optimal.get("bestTrialName"):
        console.print(f"optimal trial: [bold]{optimal['bestTrialName']}[/bold]")
        for line in optimal_trial_lines(optimal):
            console.print(line)
    else:
        console.print("no trial reported the objective metric")
    ns = exp["metadata"].get("namespace", "default")
    flag = "" if ns == "default" else f" -n {ns}"
    console.print(f"see more: sextant describe experiment {name}{flag}   |   sextant get trials -e {name}{flag}")
    return EXIT_OK if succeeded else EXIT_FAILURE


def cmd_run(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    experiments = require_valid(load_experiments([ns.filename], ns.namespace))
    if len(experiments) != 1:
        raise BadInput(f"{ns.filename}: run takes exactly one experiment, found {len(experiments)} "
                       "(use `sextant apply` and `sextant wait` for several)")
    deadline = time.monotonic() + parse_duration(ns.timeout) if ns.timeout else None
    experiment = experiments[0]
    name, space = experiment.metadata.name, experiment.metadata.namespace
    ensure_stack(ctx, console, port=ns.port)
    store = ctx.store()
    try:
        store.create(experiment)
        console.print(f"experiment.kubeflow.org/{name} created")
    except AlreadyExists:
        current = to_doc(store.get("Experiment", space, name))
        if _experiment_done(current):
            console.print(f"experiment {name} already exists and has finished; showing its result "
                          f"(delete it with `sextant delete experiment {name}` to run it again)")
            return summary(current, console)
        console.print(f"experiment {name} already exists; following it")
    final = Watcher(ctx, name, space, console).run(deadline)
    return summary(final, console)
