"""Reading ``-f FILE`` arguments (``-`` is stdin, a directory means its YAML/JSON files, ``-R``
its subdirectories too) into admitted Experiments, collecting every error."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sextant.cli.errors import BadInput
from sextant.resources.vocabulary import WORKING_DIR_ANNOTATION
from sextant.store.interface import Invalid

if TYPE_CHECKING:
    from sextant.resources.models import Experiment

MAX_FILE_BYTES = 16 * 1024 * 1024
# What kubectl reads from a directory given to -f.
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Loaded:
    experiments: list[Experiment] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_text(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    path = Path(name)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise BadInput(f"{name}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{name}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{name}: is a directory") from None
    except UnicodeDecodeError:
        raise BadInput(f"{name}: not UTF-8 text") from None
    except OSError as err:
        raise BadInput(f"{name}: cannot read ({err.strerror})") from None


def expand(sources: list[str], recursive: bool = False) -> list[str]:
    """The files behind ``-f`` arguments: a directory stands for its ``.yaml``/``.yml``/``.json``
    files in name order (with ``recursive``, those of its subdirectories too)."""
    out: list[str] = []
    for source in sources:
        path = Path(source)
        if source == "-" or not path.is_dir():
            out.append(source)
            continue
        pattern = "**/*" if recursive else "*"
        found = sorted(str(f) for f in path.glob(pattern) if f.suffix in MANIFEST_SUFFIXES and f.is_file())
        if not found:
            raise BadInput(f"{source}: no .yaml, .yml or .json files in this directory"
                           + ("" if recursive else " (-R reads its subdirectories)"))
        out += found
    return out


def read_documents(sources: list[str]) -> tuple[list[tuple[str, list[dict[str, Any]]]], list[str]]:
    """Each source with its parsed documents, and the errors of those that cannot be read."""
    from sextant.resources.loading import load_documents

    parsed, errors = [], []
    for source in sources:
        try:
            parsed.append((source, load_documents(read_text(source))))
        except Invalid as err:
            errors += [f"{source}: {e}" for e in err.errors]
    return parsed, errors


def _label(source: str, index: int, doc: dict[str, Any], count: int) -> str:
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    where = f"{source}" + (f" document {index + 1}" if count > 1 else "")
    return f"{where} (experiment {name!r})" if name else where


def experiment_documents(sources: list[str], namespace: str | None = None,
                         ) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """Every Experiment document in ``sources`` with the label its errors carry (file, document
    number, name), not yet admitted; and the errors found so far (unreadable files, other kinds,
    a namespace that contradicts ``--namespace``)."""
    found: list[tuple[str, dict[str, Any]]] = []
    parsed, errors = read_documents(sources)
    for source, docs in parsed:
        if not docs:
            errors.append(f"{source}: no documents found")
        for index, doc in enumerate(docs):
            label = _label(source, index, doc, len(docs))
            kind = doc.get("kind", "Experiment")
            if kind != "Experiment":
                errors.append(f"{label}: kind: only Experiment can be applied, got {kind!r}")
                continue
            if namespace:
                meta = doc.setdefault("metadata", {})
                if isinstance(meta, dict):
                    given = meta.get("namespace")
                    if given and given != namespace:
                        errors.append(f"{label}: metadata.namespace: {given!r} does not match "
                                      f"--namespace {namespace!r}")
                        continue
                    meta["namespace"] = namespace
            found.append((label, doc))
    return found, errors


def load_experiments(sources: list[str], namespace: str | None = None) -> Loaded:
    """Every Experiment in ``sources``, admitted here (defaults + validation, no server needed);
    errors are collected, each prefixed with the file and document it belongs to."""
    from sextant.resources.admission import admit_experiment

    out = Loaded()
    found, out.errors = experiment_documents(sources, namespace)
    for label, doc in found:
        try:
            out.experiments.append(admit_experiment(doc))
        except Invalid as err:
            out.errors += labelled_errors(label, err)
    return out


def labelled_errors(label: str, err: Invalid) -> list[str]:
    """Each of ``err``'s errors prefixed with the file and document it belongs to."""
    return [f"{label}: {e}" for e in err.errors]


def server_document(doc: dict[str, Any], admit_here: bool = False) -> dict[str, Any]:
    """An experiment document as the CLI sends it to the server, which admits it: admitted here
    first (defaults, validation, with the models) when ``admit_here`` or when it is v1alpha3
    (the store takes v1beta1 only), and with a namespace (the store wants one; admission's
    default, as kubectl's). Raises Invalid."""
    if admit_here or str(doc.get("apiVersion", "")).endswith("/v1alpha3"):
        from sextant.resources.admission import admit_experiment
        from sextant.resources.models import to_doc

        doc = to_doc(admit_experiment(doc))
    meta = doc.setdefault("metadata", {})
    if isinstance(meta, dict) and not meta.get("namespace"):
        meta["namespace"] = "default"
    return doc


def record_working_dir_in(doc: dict[str, Any]) -> None:
    """Notes where the user is on an experiment document (unless it names a directory already):
    the local stack runs its trials there, as the user would have run the command by hand."""
    meta = doc.setdefault("metadata", {})
    if isinstance(meta, dict):
        annotations = meta.get("annotations")
        meta["annotations"] = {WORKING_DIR_ANNOTATION: os.getcwd(),
                               **(annotations if isinstance(annotations, dict) else {})}


def require_valid(loaded: Loaded) -> list[Experiment]:
    if loaded.errors:
        raise BadInput(f"{len(loaded.errors)} error(s) found", details=loaded.errors)
    return loaded.experiments


def warn_unused_images(doc: dict[str, Any], reason: Callable[[], str]) -> None:
    """Says at submit time, the way kubectl prints an API warning, what a trial's condition would
    otherwise say only once it ran: the image the template names will not be used, for the
    ``reason`` this machine's stack gives (``sextant.image_use``; asked only if it names one)."""
    from sextant.image_use import unused_image_warning

    warning = unused_image_warning(doc, reason)
    if warning:
        print(f"Warning: {warning}", file=sys.stderr)
