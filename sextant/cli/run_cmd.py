"""``sextant run -f FILE``: start the stack if needed, apply one experiment, watch it to the end.

On a terminal it shows a rich progress bar on finished/maxTrialCount trials, the experiment's
latest condition message (e.g. that its algorithm service is still starting) and a table of
the best trials so far; elsewhere (CI, pipes) one line per change. It ends with the optimal
trial, the failed trials' reasons with the command that prints their logs, and the commands to
see more. Exit 0 when the experiment Succeeded, 1 when it Failed.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from sextant.cli.console import real
from sextant.cli.context import Context
from sextant.cli.errors import EXIT_FAILURE, EXIT_OK, BadInput, CliError
from sextant.cli.files import (
    experiment_documents,
    labelled_errors,
    record_working_dir_in,
    server_document,
    warn_unused_images,
)
from sextant.cli.render import (
    assignments,
    condition,
    failure_lines,
    metric_value,
    number,
    optimal_trial_lines,
    status_word,
)
from sextant.cli.resources_cmd import parse_duration
from sextant.cli.stack_cmd import ensure_stack
from sextant.katib import experiment_status, trial_status
from sextant.katib.condition_list import last_updated_condition
from sextant.resources.vocabulary import EXPERIMENT_LABEL
from sextant.stack import supervisor_running
from sextant.store.interface import AlreadyExists, Invalid

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

TOP = 5
# Failed trials whose reasons the summary prints (the newest).
MAX_FAILURES = 3


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
    from rich.table import Table

    table = Table(title="Best trials so far", title_justify="left", box=None, pad_edge=False)
    table.add_column("TRIAL")
    table.add_column(objective.get("objectiveMetricName", "objective").upper(), justify="right")
    table.add_column("PARAMETERS")
    for value, t in best_trials(trials, objective):
        table.add_row(t["metadata"]["name"], number(value), assignments((t.get("spec") or {}).get("parameterAssignments")))
    return table


class Watcher:
    """Polls the experiment and its trials, feeding either a rich Live view or plain lines."""

    def __init__(self, ctx: Context, name: str, space: str, console: Console):
        self.store, self.name, self.space, self.console = ctx.store(), name, space, real(console)
        self.last_line = ""

    def snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        exp = self.store.get_document("Experiment", self.space, self.name)
        trials, _ = self.store.list_documents("Trial", self.space, {EXPERIMENT_LABEL: self.name})
        return exp, trials

    def run(self, deadline: float | None) -> dict[str, Any]:
        exp, trials = self.snapshot()
        total = (exp.get("spec") or {}).get("maxTrialCount")
        objective = (exp.get("spec") or {}).get("objective") or {}
        if not self.console.is_terminal:
            while True:
                text = progress_line(exp, trials)
                if text != self.last_line:
                    print(text, flush=True)
                    self.last_line = text
                if _experiment_done(exp):
                    return exp
                _check_deadline(deadline, self.name)
                time.sleep(0.5)
                exp, trials = self.snapshot()
        from rich.console import Group
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=self.console)
        task = progress.add_task(self.name, total=total, state="")
        with Live(Group(progress, _best_table(trials, objective)), console=self.console,
                  refresh_per_second=4) as live:
            while True:
                progress.update(task, completed=sum(_finished(t) for t in trials), state=live_state(exp, trials))
                live.update(Group(progress, _best_table(trials, objective)))
                if _experiment_done(exp):
                    return exp
                _check_deadline(deadline, self.name)
                time.sleep(0.5)
                exp, trials = self.snapshot()


def _activity(trials: list[dict[str, Any]]) -> tuple[int, str]:
    """How many trials finished, and "N active[, M failed]"."""
    done = sum(_finished(t) for t in trials)
    failed = sum(trial_status.ended_in_failure(t) for t in trials)
    return done, f"{len(trials) - done} active" + (f", {failed} failed" if failed else "")


def _with_news(text: str, exp: dict[str, Any]) -> str:
    news = state_message(exp)
    return f"{text} - {news}" if news else text


def progress_line(exp: dict[str, Any], trials: list[dict[str, Any]]) -> str:
    """The line printed on each change where there is no terminal: counts, the best trial and
    the experiment's news (``state_message``)."""
    objective = (exp.get("spec") or {}).get("objective") or {}
    total = (exp.get("spec") or {}).get("maxTrialCount")
    done, activity = _activity(trials)
    text = f"{status_word(exp)}: {done}/{total or '?'} trials finished, {activity}"
    best = best_trials(trials, objective, 1)
    if best:
        text += f"; best {objective.get('objectiveMetricName')}={number(best[0][0])} ({best[0][1]['metadata']['name']})"
    return _with_news(text, exp)


def live_state(exp: dict[str, Any], trials: list[dict[str, Any]]) -> str:
    """The state column of the progress bar on a terminal (the bar itself counts the trials)."""
    return _with_news(f"{status_word(exp)}, {_activity(trials)[1]}", exp)


def state_message(exp: dict[str, Any]) -> str:
    """The experiment's latest condition message (one line), e.g. that its algorithm service is
    still starting; nothing for Katib's routine "Experiment is running" words."""
    cond = last_updated_condition(exp) or {}
    message = (cond.get("message") or "").strip().split("\n", 1)[0]
    if message in (experiment_status.MSG_CREATED, experiment_status.MSG_RUNNING, experiment_status.MSG_RESTARTING):
        return ""
    return message


def _experiment_done(exp: dict[str, Any]) -> bool:
    return experiment_status.is_finished(exp)


def _check_deadline(deadline: float | None, name: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise CliError(f"timed out waiting for experiment {name}; it keeps running "
                       f"(`sextant describe experiment {name}`)")


def summary(exp: dict[str, Any], console: Console, trials: list[dict[str, Any]] | None = None) -> int:
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
    failed = [t for t in trials or [] if trial_status.ended_in_failure(t)]
    if failed:
        shown = failed[-MAX_FAILURES:]
        console.print(f"{len(failed)} trial(s) failed" + (f"; the last {len(shown)}:" if len(failed) > len(shown) else ":"))
        for t in shown:
            for line in failure_lines(t, ns):
                console.print(line, markup=False, highlight=False)
    flag = "" if ns == "default" else f" -n {ns}"
    console.print(f"see more: sextant describe experiment {name}{flag}   |   sextant get trials -e {name}{flag}")
    return EXIT_OK if succeeded else EXIT_FAILURE


def cmd_run(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    found, errors = experiment_documents([ns.filename], ns.namespace)
    if errors:
        raise BadInput(f"{len(errors)} error(s) found", details=errors)
    if len(found) != 1:
        raise BadInput(f"{ns.filename}: run takes exactly one experiment, found {len(found)} "
                       "(use `sextant apply` and `sextant wait` for several)")
    deadline = time.monotonic() + parse_duration(ns.timeout) if ns.timeout else None
    label, doc = found[0]
    # The server admits what run sends (defaults, validation), as with apply, so run loads no
    # models; a file that would start the stack is admitted here first (a bad one must not
    # start it).
    try:
        doc = server_document(doc, admit_here=not (ctx.server or supervisor_running(ctx.paths)))
    except Invalid as err:
        raise BadInput(f"{len(err.errors)} error(s) found", details=labelled_errors(label, err)) from None
    ensure_stack(ctx, console, port=ns.port)
    if not ctx.server:  # this machine's stack
        record_working_dir_in(doc)
    store = ctx.store()
    try:
        created = store.create_document(doc)
        name, space = created["metadata"]["name"], created["metadata"]["namespace"]
        console.print(f"experiment.kubeflow.org/{name} created")
        warn_unused_images(created, ctx.unused_image_reason)
    except Invalid as err:
        raise BadInput(f"{len(err.errors)} error(s) found", details=labelled_errors(label, err)) from None
    except AlreadyExists:
        name, space = doc["metadata"]["name"], doc["metadata"]["namespace"]
        current = store.get_document("Experiment", space, name)
        if _experiment_done(current):
            console.print(f"experiment {name} already exists and has finished; showing its result "
                          f"(delete it with `sextant delete experiment {name}` to run it again)")
            return summary(current, console, Watcher(ctx, name, space, console).snapshot()[1])
        console.print(f"experiment {name} already exists; following it")
    watcher = Watcher(ctx, name, space, console)
    watcher.run(deadline)
    final, trials = watcher.snapshot()
    return summary(final, console, trials)
