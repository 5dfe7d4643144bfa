"""``apply``, ``validate``, ``get``, ``delete`` and ``wait``: resources in the store."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any, cast

from rich.console import Console

from sextant.cli.context import Context
from sextant.cli.errors import EXIT_OK, BadInput, CliError
from sextant.cli.files import load_experiments, require_valid
from sextant.cli.render import condition, render_list
from sextant.katib import experiment_status
from sextant.katib.condition_list import condition_is
from sextant.resources.models import EXPERIMENT_LABEL, Experiment, to_doc
from sextant.store.interface import AlreadyExists, NotFound, ResourceStore

KINDS = {
    "experiment": "Experiment", "experiments": "Experiment", "exp": "Experiment", "exps": "Experiment",
    "trial": "Trial", "trials": "Trial",
    "suggestion": "Suggestion", "suggestions": "Suggestion", "sugg": "Suggestion",
}
PLURAL = {"Experiment": "experiment", "Trial": "trial", "Suggestion": "suggestion"}


def kind_of(word: str) -> str:
    try:
        return KINDS[word.lower()]
    except KeyError:
        raise BadInput(f"unknown resource type {word!r}: use experiments, trials or suggestions") from None


def add_namespace(p: argparse.ArgumentParser, all_ok: bool = False) -> None:
    p.add_argument("-n", "--namespace", default=None, help="namespace (default: default)")
    if all_ok:
        p.add_argument("-A", "--all-namespaces", action="store_true", help="list across namespaces")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apply = sub.add_parser("apply", help="create or update experiments from YAML/JSON files")
    apply.add_argument("-f", "--filename", action="append", required=True, help="file, or - for stdin")
    add_namespace(apply)
    apply.set_defaults(func=cmd_apply)

    validate = sub.add_parser("validate", help="check experiment files locally (no stack needed)")
    validate.add_argument("-f", "--filename", action="append", required=True, help="file, or - for stdin")
    add_namespace(validate)
    validate.add_argument("-o", "--output", choices=["yaml", "json"], help="print the defaulted experiments")
    validate.set_defaults(func=cmd_validate)

    get = sub.add_parser("get", help="list experiments, trials or suggestions")
    get.add_argument("kind", help="experiments | trials | suggestions")
    get.add_argument("name", nargs="?")
    add_namespace(get, all_ok=True)
    get.add_argument("-o", "--output", choices=["wide", "yaml", "json"])
    get.add_argument("-e", "--experiment", help="only trials/suggestions of this experiment")
    get.add_argument("-l", "--selector", help="label selector key=value[,key=value]")
    get.set_defaults(func=cmd_get)

    delete = sub.add_parser("delete", help="delete an experiment (and its trials and suggestion)")
    delete.add_argument("kind")
    delete.add_argument("name")
    add_namespace(delete)
    delete.set_defaults(func=cmd_delete)

    wait = sub.add_parser("wait", help="wait for an experiment condition")
    wait.add_argument("kind")
    wait.add_argument("name")
    add_namespace(wait)
    wait.add_argument("--for", dest="for_", default="condition=Succeeded",
                      help="condition=Succeeded|Failed|Running|Created|Restarting")
    wait.add_argument("--timeout", default="10m", help="e.g. 90s, 10m, 1h (default 10m)")
    wait.set_defaults(func=cmd_wait)


def namespace(ns: argparse.Namespace) -> str:
    return ns.namespace or "default"


# ---------------------------------------------------------------------------------------------


def cmd_validate(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    experiments = require_valid(load_experiments(ns.filename, ns.namespace))
    if ns.output:
        import json

        import yaml

        docs = [to_doc(e) for e in experiments]
        for doc in docs:
            doc.pop("status", None)
        print(json.dumps(docs if len(docs) > 1 else docs[0], indent=2) if ns.output == "json"
              else yaml.safe_dump_all(docs, sort_keys=False).rstrip())
        return EXIT_OK
    for e in experiments:
        print(f"experiment.kubeflow.org/{e.metadata.name} valid")
    return EXIT_OK


def apply_experiment(store: ResourceStore, experiment: Experiment) -> str:
    """Creates the experiment, or updates it if it exists; returns created/configured/unchanged."""
    try:
        store.create(experiment)
        return "created"
    except AlreadyExists:
        current = cast(Experiment, store.get("Experiment", experiment.metadata.namespace, experiment.metadata.name))
        if to_doc(current.spec) == to_doc(experiment.spec):
            return "unchanged"
        current.spec = experiment.spec
        store.update(current)  # the server allows only the three counts to change
        return "configured"


def cmd_apply(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    experiments = require_valid(load_experiments(ns.filename, ns.namespace))
    store = ctx.store()
    for e in experiments:
        result = apply_experiment(store, e)
        print(f"experiment.kubeflow.org/{e.metadata.name} {result}")
    return EXIT_OK


def parse_selector(text: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in filter(None, (text or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--selector: {part!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


def list_docs(ctx: Context, kind: str, ns: argparse.Namespace) -> list[dict[str, Any]]:
    labels = parse_selector(getattr(ns, "selector", None))
    if getattr(ns, "experiment", None):
        labels[EXPERIMENT_LABEL] = ns.experiment
    space = "" if getattr(ns, "all_namespaces", False) else namespace(ns)
    items, _ = ctx.store().list(kind, space, labels or None)
    docs = [to_doc(i) for i in items]
    docs.sort(key=lambda d: (d["metadata"].get("namespace", ""), d["metadata"].get("creationTimestamp") or "",
                             d["metadata"]["name"]))
    return docs


def cmd_get(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    kind = kind_of(ns.kind)
    if ns.name:
        docs = [to_doc(ctx.store().get(kind, namespace(ns), ns.name))]
    else:
        docs = list_docs(ctx, kind, ns)
        if not docs and ns.output not in ("json", "yaml"):
            where = "any namespace" if ns.all_namespaces else f"namespace {namespace(ns)!r}"
            print(f"No {PLURAL[kind]}s found in {where}.", file=sys.stderr)
            return EXIT_OK
    pareto = pareto_members(ctx, docs) if kind == "Trial" and ns.output not in ("json", "yaml") else None
    print(render_list(kind, docs, ns.output, single=bool(ns.name), pareto=pareto))
    return EXIT_OK


def pareto_members(ctx: Context, trials: list[dict[str, Any]]) -> set[tuple[str, str]] | None:
    """(namespace, trial) of every Pareto-optimal trial among the listed trials' experiments;
    None when none of them declares extra objectives (the table then has no PARETO column)."""
    experiments: set[tuple[str, str]] = set()
    for t in trials:
        owner = (t["metadata"].get("labels") or {}).get(EXPERIMENT_LABEL)
        if owner:
            experiments.add((t["metadata"].get("namespace", ""), owner))
    members: set[tuple[str, str]] | None = None
    for space, name in sorted(experiments):
        try:
            front = cast(Experiment, ctx.store().get("Experiment", space, name)).status.pareto_optimal_trials
        except NotFound:
            continue
        if front is not None:
            members = (members or set()) | {(space, m.best_trial_name) for m in front}
    return members


def cmd_delete(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    kind = kind_of(ns.kind)
    if kind != "Experiment":
        raise BadInput("only experiments can be deleted (their trials and suggestion go with them)")
    deleted = ctx.store().delete(kind, namespace(ns), ns.name)
    print(f'experiment.kubeflow.org "{ns.name}" deleted'
          + (f" (with {len(deleted) - 1} owned resources)" if len(deleted) > 1 else ""))
    return EXIT_OK


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h30m`` → seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        raise BadInput(f"--timeout: {text!r} is not a duration such as 90s, 10m or 1h")
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s


CONDITIONS = experiment_status.CONDITION_TYPES


def parse_for(text: str) -> str:
    key, sep, value = text.partition("=")
    if key != "condition" or not sep:
        raise BadInput(f"--for: expected condition=NAME, got {text!r}")
    for c in CONDITIONS:
        if c.lower() == value.lower():
            return c
    raise BadInput(f"--for: condition must be one of {', '.join(CONDITIONS)}, got {value!r}")


def wait_for(ctx: Context, name: str, space: str, wanted: str, timeout: float,
             poll: float = 0.5) -> dict[str, Any]:
    """Polls until ``wanted`` is True; raises CliError on Failed (when not wanted) or timeout."""
    deadline = time.monotonic() + timeout
    store = ctx.store()
    while True:
        doc = to_doc(store.get("Experiment", space, name))
        if condition_is(doc, wanted):
            return doc
        failed = condition(doc, experiment_status.FAILED) or {}
        if wanted != experiment_status.FAILED and experiment_status.is_failed(doc):
            raise CliError(f"experiment {name} failed: {failed.get('reason', '')} {failed.get('message', '')}"
                           .rstrip())
        if wanted == experiment_status.FAILED and experiment_status.is_succeeded(doc):
            raise CliError(f"experiment {name} succeeded; it will not fail")
        if time.monotonic() >= deadline:
            raise CliError(f"timed out after {timeout:g}s waiting for experiment {name} to be {wanted}")
        time.sleep(poll)


def cmd_wait(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    if kind_of(ns.kind) != "Experiment":
        raise BadInput("wait supports experiments only")
    wanted = parse_for(ns.for_)
    timeout = parse_duration(ns.timeout)
    try:
        wait_for(ctx, ns.name, namespace(ns), wanted, timeout)
    except NotFound:
        raise CliError(f'experiment "{ns.name}" not found in namespace {namespace(ns)!r}') from None
    print(f"experiment.kubeflow.org/{ns.name} condition met ({wanted})")
    return EXIT_OK

