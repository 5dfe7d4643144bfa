"""Admission of Experiments: what Katib's mutating and validating webhooks do, in one call.

    experiment = admit_experiment(doc)            # create
    experiment = admit_experiment(doc, old=old)   # update (only the three counts may change)

Steps: detect the apiVersion and convert v1alpha3 (``v1alpha3.py``), tidy values YAML users
commonly write (unquoted numbers where Katib wants strings), build the typed model, apply
Katib's defaults (``defaults.py``) and run every validation rule (``validation.py``). All
problems are raised together as ``Invalid``, each "<field.path>: <rule>" with camelCase paths.

A document the model cannot hold (a wrong type, an unknown field) would normally stop pydantic
at that point; instead the offending values are set aside and the rest is still validated, so
structural and semantic errors are reported in the same pass.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sextant.resources.defaults import apply_defaults
from sextant.resources.loading import detect_api_version, load_documents
from sextant.resources.models import API_VERSION_V1ALPHA3, Experiment
from sextant.resources.v1alpha3 import convert_experiment
from sextant.resources.validation import validate_experiment
from sextant.store.interface import Invalid

if TYPE_CHECKING:
    from sextant.algorithm_registry import Registry

MAX_PRUNE_ROUNDS = 8
_STRING_FIELDS = ("min", "max", "step")
_MISSING_PLACEHOLDERS = {"name": "", "parameterType": "unknown", "value": "latest", "kind": "", "type": ""}


def format_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """("spec", "parameters", 0, "name") → "spec.parameters[0].name"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "document"


def _stringify(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


def _tidy_parameters(parameters: Any) -> None:
    if not isinstance(parameters, list):
        return
    for parameter in parameters:
        if not isinstance(parameter, dict):
            continue
        space = parameter.get("feasibleSpace")
        if not isinstance(space, dict):
            continue
        for key in _STRING_FIELDS:
            if key in space:
                space[key] = _stringify(space[key])
        if isinstance(space.get("list"), list):
            space["list"] = [_stringify(v) for v in space["list"]]
        if space.get("distribution") == "":
            del space["distribution"]  # Katib treats "" as unset, then defaults to uniform


def _tidy_settings(holder: Any) -> None:
    if isinstance(holder, dict) and isinstance(holder.get("algorithmSettings"), list):
        for setting in holder["algorithmSettings"]:
            if isinstance(setting, dict) and "value" in setting:
                setting["value"] = _stringify(setting["value"])


def _tidy(doc: dict[str, Any]) -> None:
    """Accepts the spellings Katib accepts (or users obviously mean) before typing."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return
    _tidy_parameters(spec.get("parameters"))
    nas = spec.get("nasConfig")
    if isinstance(nas, dict) and isinstance(nas.get("operations"), list):
        for op in nas["operations"]:
            if isinstance(op, dict):
                _tidy_parameters(op.get("parameters"))
    _tidy_settings(spec.get("algorithm"))
    _tidy_settings(spec.get("earlyStopping"))
    if spec.get("resumePolicy") == "":
        del spec["resumePolicy"]


def _get_parent(doc: Any, loc: tuple[Any, ...]) -> tuple[Any, Any] | None:
    node = doc
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node, loc[-1]


def _set_aside(doc: dict[str, Any], error: Mapping[str, Any]) -> bool:
    """Removes or replaces the value an error is about; False if nothing could be changed."""
    loc = tuple(error["loc"])
    if not loc:
        return False
    found = _get_parent(doc, loc)
    if found is None:
        return False
    parent, key = found
    if error["type"] == "missing":
        if isinstance(parent, dict) and key in _MISSING_PLACEHOLDERS and key not in parent:
            parent[key] = _MISSING_PLACEHOLDERS[key]
            return True
        # Without a usable placeholder, set the containing object aside.
        return _set_aside(doc, {"loc": loc[:-1], "type": "value_error"})
    if isinstance(parent, dict) and key in parent:
        del parent[key]
        return True
    if isinstance(parent, list) and isinstance(key, int) and 0 <= key < len(parent):
        parent[key] = None if not isinstance(parent[key], str) else parent[key]
        return parent[key] is None
    return False


def _build_model(doc: dict[str, Any]) -> tuple[Experiment | None, list[str], list[str]]:
    """The model (or None), the structural errors, and the paths that were set aside."""
    errors: list[str] = []
    aside: list[str] = []
    work = copy.deepcopy(doc)
    for _ in range(MAX_PRUNE_ROUNDS):
        try:
            return Experiment.model_validate(work), errors, aside
        except ValidationError as err:
            progressed = False
            for e in err.errors():
                path = format_path(e["loc"])
                if path not in aside:  # a placeholder we put in place is not the user's error
                    message = f"{path}: {_message(e)}"
                    if message not in errors:
                        errors.append(message)
                if _set_aside(work, e):
                    aside.append(path)
                    progressed = True
            if not progressed:
                break
        except RecursionError:
            errors.append("document: nested too deeply")
            break
    return None, errors, aside


def _message(error: Mapping[str, Any]) -> str:
    """pydantic's message, reworded where it would leak Python names."""
    kind = error["type"]
    given = error.get("input")
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "").replace("''", "(empty)")
        return f"must be one of {expected}, got {given!r}"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; Katib field names are camelCase)"
    if kind == "missing":
        return "is required"
    if kind in ("model_type", "dict_type"):
        return f"must be a mapping, got {type(given).__name__}"
    if kind == "list_type":
        return f"must be a list, got {type(given).__name__}"
    msg: str = error["msg"]
    return msg[:1].lower() + msg[1:]


def _overlaps(message: str, aside: list[str]) -> bool:
    path = message.split(":", 1)[0]
    return any(path == a or path.startswith(a + ".") or path.startswith(a + "[")
               or a.startswith(path + ".") or a.startswith(path + "[") for a in aside)


def _default_registry() -> Registry:
    from sextant.algorithm_registry import Registry  # late import: loading the registry reads a file

    return Registry.load()


def admit_experiment(doc: dict[str, Any], *, old: Experiment | None = None,
                     registry: Registry | str | Path | None = None) -> Experiment:
    """Defaults and validates an Experiment document (v1beta1 or v1alpha3).

    ``old`` is the stored experiment on update (only the three counts may change);
    ``registry`` is the algorithm registry (None = the configured default).
    Raises ``Invalid`` with one "field.path: rule" message per problem.
    """
    if not isinstance(doc, dict):
        raise Invalid(["document: must be a mapping (apiVersion, kind, metadata, spec)"])
    version = detect_api_version(doc)
    kind = doc.get("kind", "Experiment")
    if kind != "Experiment":
        raise Invalid([f"kind: must be Experiment, got {kind!r}"])
    work = convert_experiment(doc) if version == API_VERSION_V1ALPHA3 else copy.deepcopy(doc)
    work.setdefault("kind", "Experiment")
    _tidy(work)
    experiment, errors, aside = _build_model(work)
    if experiment is None:
        raise Invalid(errors)
    if registry is None:
        registry = _default_registry()
    elif isinstance(registry, str | Path):
        from sextant.algorithm_registry import Registry

        registry = Registry.load(registry)
    apply_defaults(experiment)
    rule_errors = validate_experiment(experiment, old=old, registry=registry)
    errors += [e for e in rule_errors if not _overlaps(e, aside)]
    if errors:
        raise Invalid(errors)
    return experiment


def validate_file(path: str | Path, registry: Registry | str | Path | None = None) -> list[Experiment | Invalid]:
    """For each document in the file, the admitted Experiment or the ``Invalid`` it raised.

    A file that cannot be read or parsed gives a single ``Invalid``.
    """
    try:
        text = Path(path).read_bytes()
    except OSError as err:
        return [Invalid([f"{path}: cannot read ({err.strerror})"])]
    try:
        docs = load_documents(text)
    except Invalid as err:
        return [err]
    if registry is None:
        try:
            registry = _default_registry()
        except ValueError as err:
            return [Invalid([f"registry: {err}"])]
    results: list[Experiment | Invalid] = []
    for doc in docs:
        try:
            results.append(admit_experiment(doc, registry=registry))
        except Invalid as err:
            results.append(err)
    return results
