"""``apply``, ``validate``, ``get``, ``delete`` and ``wait``: resources in the store."""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from sextant.cli.context import Context
from sextant.cli.errors import EXIT_FAILURE, EXIT_OK, BadInput, CliError
from sextant.cli.files import (
    expand,
    experiment_documents,
    labelled_errors,
    load_experiments,
    read_documents,
    record_working_dir_in,
    require_valid,
    server_document,
    warn_unused_images,
)
from sextant.cli.render import LIST_OUTPUTS, condition, render_list
from sextant.katib import experiment_status
from sextant.katib.condition_list import condition_is
from sextant.resources.vocabulary import EXPERIMENT_LABEL
from sextant.store.interface import AlreadyExists, Expired, Invalid, NotFound

if TYPE_CHECKING:  # pydantic models: only apply/validate/run load them
    from rich.console import Console

    from sextant.store.client import GrpcResourceStore

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


FILENAME_HELP = ("file, directory (its .yaml/.yml/.json files) or - for stdin; "
                 "repeat -f for several")


def add_filenames(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-f", "--filename", action="append", required=required, help=FILENAME_HELP)
    p.add_argument("-R", "--recursive", action="store_true", help="with -f DIR, read its subdirectories too")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apply = sub.add_parser("apply", help="create or update experiments from YAML/JSON files")
    add_filenames(apply)
    add_namespace(apply)
    apply.set_defaults(func=cmd_apply)

    validate = sub.add_parser("validate", help="check experiment files locally (no stack needed)")
    add_filenames(validate)
    add_namespace(validate)
    validate.add_argument("-o", "--output", choices=["yaml", "json"], help="print the defaulted experiments")
    validate.set_defaults(func=cmd_validate)

    get = sub.add_parser("get", help="list experiments, trials or suggestions")
    get.add_argument("kind", help="experiments | trials | suggestions")
    get.add_argument("name", nargs="?")
    add_namespace(get, all_ok=True)
    get.add_argument("-o", "--output", type=output_format, metavar="FORMAT",
                     help="wide | yaml | json | name | jsonpath=TEMPLATE | custom-columns=HEADER:.path,...")
    get.add_argument("-e", "--experiment", help="only trials/suggestions of this experiment")
    get.add_argument("-l", "--selector", help="label selector key=value[,key=value]")
    get.add_argument("-w", "--watch", action="store_true", help="after listing, print each change as it happens")
    get.set_defaults(func=cmd_get)

    delete = sub.add_parser("delete", help="delete experiments (with their trials and suggestion)")
    delete.add_argument("kind", nargs="?", help="experiment (not with -f)")
    delete.add_argument("names", nargs="*", metavar="NAME")
    add_filenames(delete, required=False)
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


def output_format(text: str) -> str:
    """``-o``: a list format, or ``jsonpath=``/``custom-columns=`` with their template."""
    head = text.partition("=")[0]
    if text in LIST_OUTPUTS or head in ("jsonpath", "custom-columns"):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: use wide, yaml, json, name, jsonpath=TEMPLATE or "
                                     "custom-columns=HEADER:.path[,...]")


def namespace(ns: argparse.Namespace) -> str:
    return ns.namespace or "default"


# ---------------------------------------------------------------------------------------------


def cmd_validate(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    from sextant.resources.models import to_doc

    experiments = require_valid(load_experiments(expand(ns.filename, ns.recursive), ns.namespace))
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


def apply_document(store: GrpcResourceStore, doc: dict[str, Any], admitted: dict[str, Any]) -> str:
    """Creates the experiment, or updates it if it exists; returns created/configured/unchanged.
    ``admitted`` is the server's dry-run answer for ``doc`` (its spec with defaults)."""
    meta = doc["metadata"]
    try:
        store.create_document(doc)
        return "created"
    except AlreadyExists:
        current = store.get_document("Experiment", meta.get("namespace") or "default", meta["name"])
        if current.get("spec") == admitted.get("spec"):
            return "unchanged"
        store.update_document({**current, "spec": admitted["spec"]})  # the server allows only the three counts to change
        return "configured"


def cmd_apply(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    """Documents go to the server as they are: it admits them (defaults, validation, v1alpha3
    conversion), so apply never loads the models. Every document is checked first (a dry-run
    create), so one bad document stores nothing."""
    found, errors = experiment_documents(expand(ns.filename, ns.recursive), ns.namespace)
    if errors:
        raise BadInput(f"{len(errors)} error(s) found", details=errors)
    store = ctx.store()
    checked = []
    for label, doc in found:
        if not ctx.server:  # this machine's stack
            record_working_dir_in(doc)
        try:
            doc = server_document(doc)
            checked.append((doc, store.create_document(doc, dry_run=True)))
        except Invalid as err:
            errors += labelled_errors(label, err)
    if errors:
        raise BadInput(f"{len(errors)} error(s) found", details=errors)
    for doc, admitted in checked:
        print(f"experiment.kubeflow.org/{admitted['metadata']['name']} {apply_document(store, doc, admitted)}")
        warn_unused_images(admitted, ctx.unused_image_reason)
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
    return list_docs_at(ctx, kind, ns)[0]


def cmd_get(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    kind = kind_of(ns.kind)
    render_list(kind, [], ns.output)  # a bad template is bad input before anything is fetched
    if ns.name:
        docs = [ctx.store().get_document(kind, namespace(ns), ns.name)]
        version = int(docs[0]["metadata"].get("resourceVersion") or 0)
    else:
        docs, version = list_docs_at(ctx, kind, ns)
        if not docs and ns.output not in ("json", "yaml") and not ns.watch:
            where = "any namespace" if ns.all_namespaces else f"namespace {namespace(ns)!r}"
            print(f"No {PLURAL[kind]}s found in {where}.", file=sys.stderr)
            return EXIT_OK
    table_output = ns.output in (None, "", "wide")
    pareto = pareto_members(ctx, docs) if kind == "Trial" and table_output else None
    if docs or not ns.watch:
        # kubectl ends jsonpath output where the template ends (no newline of its own)
        print(render_list(kind, docs, ns.output, single=bool(ns.name), all_namespaces=ns.all_namespaces,
                          pareto=pareto),
              end="" if (ns.output or "").startswith("jsonpath") else "\n", flush=True)
    if ns.watch:
        watch(ctx, kind, ns, version, pareto, header_printed=bool(docs))
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
            front = (ctx.store().get_document("Experiment", space, name).get("status") or {}).get("paretoOptimalTrials")
        except NotFound:
            continue
        if front is not None:
            members = (members or set()) | {(space, m.get("bestTrialName", "")) for m in front}
    return members


def list_docs_at(ctx: Context, kind: str, ns: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """``list_docs`` and the store's resource version at that moment (where a watch starts)."""
    labels = parse_selector(getattr(ns, "selector", None))
    if getattr(ns, "experiment", None):
        labels[EXPERIMENT_LABEL] = ns.experiment
    space = "" if getattr(ns, "all_namespaces", False) else namespace(ns)
    docs, version = ctx.store().list_documents(kind, space, labels or None)
    docs.sort(key=lambda d: (d["metadata"].get("namespace", ""), d["metadata"].get("creationTimestamp") or "",
                             d["metadata"]["name"]))
    return docs, version


def watch(ctx: Context, kind: str, ns: argparse.Namespace, since: int,
          pareto: set[tuple[str, str]] | None = None, header_printed: bool = False) -> None:
    """kubectl's ``get -w``: one line (or document) per change, a deletion included (its last
    state), until interrupted. A table's header is printed once, above the first row (with the
    list, or with the first change when the list was empty); yaml documents are separated by
    ``---``. ``pareto``: the PARETO marks of the listed table (kept as they were)."""
    labels = parse_selector(getattr(ns, "selector", None))
    if getattr(ns, "experiment", None):
        labels[EXPERIMENT_LABEL] = ns.experiment
    space = "" if ns.all_namespaces else namespace(ns)
    while True:
        try:
            for _type, doc, version in ctx.store().watch_documents(kind, space, since, labels or None):
                since = version or since
                if doc is None or (ns.name and doc["metadata"]["name"] != ns.name):
                    continue
                text = render_list(kind, [doc], ns.output, single=True, all_namespaces=ns.all_namespaces,
                                   pareto=pareto)
                if ns.output in (None, "", "wide") or (ns.output or "").startswith("custom-columns"):
                    if header_printed:
                        text = text.split("\n", 1)[-1]
                    header_printed = True
                elif ns.output == "yaml":
                    text = "---\n" + text
                print(text, flush=True)
            return
        except Expired:  # the store compacted past our version: start again from now
            _, since = list_docs_at(ctx, kind, ns)


def cmd_delete(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    targets: list[tuple[str, str]] = []  # (namespace, name)
    if ns.filename:
        if ns.kind or ns.names:
            raise BadInput("delete takes either -f FILE or KIND NAME..., not both")
        parsed, errors = read_documents(expand(ns.filename, ns.recursive))
        if errors:
            raise BadInput(f"{len(errors)} error(s) found", details=errors)
        for source, docs in parsed:
            for doc in docs:
                meta = doc.get("metadata")
                meta = meta if isinstance(meta, dict) else {}
                if doc.get("kind", "Experiment") != "Experiment" or not meta.get("name"):
                    raise BadInput(f"{source}: only experiments with a metadata.name can be deleted")
                targets.append((ns.namespace or meta.get("namespace") or "default", meta["name"]))
    else:
        if not ns.kind or not ns.names:
            raise BadInput("delete needs KIND NAME... (e.g. delete experiment random) or -f FILE")
        if kind_of(ns.kind) != "Experiment":
            raise BadInput("only experiments can be deleted (their trials and suggestion go with them)")
        targets = [(namespace(ns), name) for name in ns.names]
    failures = 0
    for space, name in targets:
        try:
            deleted = ctx.store().delete_documents("Experiment", space, name)
        except NotFound:
            print(f'Error from server (NotFound): experiments.kubeflow.org "{name}" not found'
                  + (f" in namespace {space!r}" if space != "default" else ""), file=sys.stderr)
            failures += 1
            continue
        print(f'experiment.kubeflow.org "{name}" deleted'
              + (f" (with {len(deleted) - 1} owned resources)" if len(deleted) > 1 else ""))
    return EXIT_FAILURE if failures else EXIT_OK


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
        doc = store.get_document("Experiment", space, name)
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

