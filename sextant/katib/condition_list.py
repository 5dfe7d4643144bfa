"""The bookkeeping rules for ``status.conditions``, shared by Experiments, Trials and Suggestions.

Katib's rules, which ``kubectl get`` and Katib's UI rely on:

* One entry per condition type.
* Setting a condition with the same status *and* reason as the current entry changes nothing
  (not even the timestamps), so an idempotent reconcile does not rewrite status.
* Otherwise the entry moves to the end of the list (the last entry is the "current" state
  ``kubectl get`` shows); ``lastTransitionTime`` is kept when the status did not change.
* A terminal condition is appended after flipping Running to False, so the terminal one is
  last.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sextant.timestamps import now_rfc3339

if TYPE_CHECKING:  # the models' import is costly; documents (the CLI) never need it
    from sextant.resources.models import Condition

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
# The Running type is the same word for every kind; ``mark_finished`` flips it.
RUNNING = "Running"


class _Status(Protocol):
    @property
    def conditions(self) -> list[Condition]: ...


class HasConditions(Protocol):
    """A model whose ``status.conditions`` follow these rules (Experiment, Trial, Suggestion)."""

    @property
    def status(self) -> _Status: ...


# A resource as a model, or as its JSON document.
Resource = HasConditions | dict[str, Any]


def conditions_of(resource: Resource) -> Sequence[Condition] | Sequence[dict[str, Any]]:
    """The condition list of a model or of a JSON document (empty when it has none)."""
    if isinstance(resource, dict):
        return (resource.get("status") or {}).get("conditions") or []
    return resource.status.conditions


def _field(cond: Condition | dict[str, Any], name: str) -> str:
    if isinstance(cond, dict):
        return str(cond.get(name) or "")
    return str(getattr(cond, name) or "")


def condition_is(resource: Resource, type_: str, status: str = TRUE) -> bool:
    """Whether ``resource`` has a condition ``type_`` with ``status`` (True by default)."""
    if not isinstance(resource, dict):
        return any(c.type == type_ and c.status == status for c in resource.status.conditions)
    return any(_field(c, "type") == type_ and _field(c, "status") == status
               for c in conditions_of(resource))


def any_condition_true(resource: Resource, types: Collection[str]) -> bool:
    """Whether any condition whose type is in ``types`` is True."""
    if isinstance(resource, dict):
        return any(_field(c, "status") == TRUE and _field(c, "type") in types for c in conditions_of(resource))
    # Models: the controllers' hot path (several calls per reconcile pass).
    return any(c.status == TRUE and c.type in types for c in resource.status.conditions)


def current_condition_type(resource: Resource) -> str | None:
    """The current state: the last condition's type, whatever its status. It is what Katib's
    printer columns show (``.status.conditions[-1:].type``), so ``kubectl get``, the CLI and
    the UI all say the same word."""
    conds = conditions_of(resource)
    return _field(conds[-1], "type") if conds else None


def current_condition_status(resource: Resource) -> str | None:
    """The last condition's status (Katib's Status printer column)."""
    conds = conditions_of(resource)
    return _field(conds[-1], "status") if conds else None


def last_updated_condition(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The True condition of a document updated last: what the resource most recently said
    about itself. It may not be the current one: a condition's message can change in place (an
    Experiment's Created says which algorithm service it waits for), which does not move it."""
    true = [c for c in conditions_of(doc) if isinstance(c, dict) and c.get("status") == TRUE]
    if not true:
        return None
    return max(enumerate(true), key=lambda p: (
        p[1].get("lastUpdateTime") or p[1].get("lastTransitionTime") or "", p[0]))[1]


# ---------------------------------------------------------------------------------------------
# Editing a model's condition list in place


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    for cond in conditions:
        if cond.type == type_:
            return cond
    return None


def has_condition(conditions: list[Condition], type_: str, status: str = TRUE) -> bool:
    cond = get_condition(conditions, type_)
    return cond is not None and cond.status == status


def set_condition(
    conditions: list[Condition], type_: str, status: str, reason: str, message: str, now: str | None = None
) -> bool:
    """Applies the bookkeeping rules in place; returns whether anything changed."""
    current = get_condition(conditions, type_)
    if current is not None and current.status == status and current.reason == reason:
        return False
    now = now or now_rfc3339()
    transition = current.last_transition_time if current is not None and current.status == status else now
    from sextant.resources.models import Condition

    new = Condition(type=type_, status=status, reason=reason, message=message,
                    last_update_time=now, last_transition_time=transition)
    conditions[:] = [c for c in conditions if c.type != type_] + [new]
    return True


def remove_condition(conditions: list[Condition], type_: str) -> bool:
    before = len(conditions)
    conditions[:] = [c for c in conditions if c.type != type_]
    return len(conditions) != before


def flip_to_false(conditions: list[Condition], type_: str, now: str | None = None) -> bool:
    """Sets an existing condition to False keeping its reason and message (Running on completion)."""
    current = get_condition(conditions, type_)
    if current is None:
        return False
    return set_condition(conditions, type_, FALSE, current.reason, current.message, now)


def mark_finished(conditions: list[Condition], type_: str, reason: str, message: str,
                  now: str | None = None) -> bool:
    """A terminal condition: flip Running to False, *then* append the new condition, so that
    the last condition (what GetSuggestions reports) is the terminal one."""
    changed = flip_to_false(conditions, RUNNING, now)
    return set_condition(conditions, type_, TRUE, reason, message, now) or changed
