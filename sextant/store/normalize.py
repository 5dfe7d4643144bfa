"""Defaulting and validating a status written with UpdateStatus, without re-validating what did
not change.

The stored status is already normalized (validated, defaulted, dumped as Katib's JSON). A
controller's UpdateStatus usually sends it back with one condition or one list entry changed,
but a Suggestion's ``status.suggestions`` holds every assignment handed out and an
Experiment's status lists every trial, so validating the whole document costs time in
proportion to the experiment's size on every write. Here only the parts that differ from the
stored status are validated:

* a top-level key whose value equals the stored one keeps the stored (normalized) value;
* in a list of models (``suggestions``, ``conditions``) an element equal to the stored element
  at the same position keeps the stored element, the others are validated one by one;
* everything else goes through the status model as one partial document.

The status models have no cross-field validators and normalizing is idempotent, so this gives
the same document as validating everything. Equality is Python's ``==`` (``1 == 1.0``), the same
test the store uses to decide that nothing changed. Any validation error, and any input the fast
path does not handle (snake_case field names, a status that is not an object, kinds without a
status model), goes through the full validation, so error messages are unchanged.
"""

from __future__ import annotations

import typing
from typing import Any, Literal, TypedDict, cast

from pydantic import BaseModel, ValidationError

from sextant.resources.models import RESOURCE_MODELS
from sextant.store.codec import model_from_doc

_MISSING = object()


class _DumpOptions(TypedDict):
    mode: Literal["json"]
    by_alias: bool
    exclude_none: bool


_DUMP: _DumpOptions = {"mode": "json", "by_alias": True, "exclude_none": True}


class _StatusShape:
    """What the fast path needs to know about one status model."""

    def __init__(self, model: type[BaseModel]):
        self.model = model
        aliases = {name: (field.alias or name) for name, field in model.model_fields.items()}
        # Field names that are not their own alias: pydantic accepts them too (populate_by_name),
        # and a document holding both spellings is left to the full validation.
        self.python_names = {name for name, alias in aliases.items() if name != alias}
        self.item_models: dict[str, type[BaseModel]] = {}
        for name, field in model.model_fields.items():
            item = _list_item_model(field.annotation)
            if item is not None:
                self.item_models[aliases[name]] = item


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    """M for ``list[M]`` where M is a pydantic model, else None."""
    if typing.get_origin(annotation) is not list:
        return None
    args = typing.get_args(annotation)
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def _status_model(resource: type[BaseModel]) -> type[BaseModel] | None:
    """The status model of a resource; None for a plain dict (Event), which is cheap anyway."""
    annotation = resource.model_fields["status"].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


_SHAPES: dict[str, _StatusShape] = {}
for _kind, _resource in RESOURCE_MODELS.items():
    _model = _status_model(_resource)
    if _model is not None:
        _SHAPES[_kind] = _StatusShape(_model)


class _NeedsFullValidation(Exception):
    pass


def full_status(doc: dict[str, Any]) -> dict[str, Any]:
    """The normalized status of ``doc`` (validating the whole document). Raises Invalid."""
    return cast("dict[str, Any]", model_from_doc(doc).model_dump(**_DUMP).get("status", {}))


def normalize_status(stored: dict[str, Any], status: Any) -> dict[str, Any]:
    """The normalized status for ``stored`` (a normalized document) with ``status`` written
    over its status. Raises Invalid naming the field, as validating the whole document does."""
    shape = _SHAPES.get(stored.get("kind", ""))
    if shape is not None and isinstance(status, dict):
        try:
            return _fast(shape, stored.get("status") or {}, status)
        except _NeedsFullValidation:
            pass
    return full_status({**stored, "status": status})


def _fast(shape: _StatusShape, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    for key, value in new.items():
        if key in shape.python_names:
            raise _NeedsFullValidation
        before = old.get(key, _MISSING)
        if before is not _MISSING and before == value:
            kept[key] = before
            continue
        item_model = shape.item_models.get(key)
        if item_model is not None and isinstance(value, list) and isinstance(before, list):
            kept[key] = _merge_items(item_model, before, value)
        else:
            changed[key] = value
    try:
        out = shape.model.model_validate(changed).model_dump(**_DUMP)
    except ValidationError:
        raise _NeedsFullValidation from None
    out.update(kept)
    return out


def _merge_items(item_model: type[BaseModel], before: list[Any], after: list[Any]) -> list[Any]:
    out = []
    for i, item in enumerate(after):
        if i < len(before) and before[i] == item:
            out.append(before[i])
            continue
        try:
            out.append(item_model.model_validate(item).model_dump(**_DUMP))
        except ValidationError:
            raise _NeedsFullValidation from None
    return out
