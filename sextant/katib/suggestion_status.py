"""A Suggestion's status vocabulary: condition types, reasons, messages, predicates, marks.

The suggestion controller writes Created, DeploymentReady, Running and Failed; the experiment
controller writes Succeeded (when the experiment ends) and the restart marks. The strings are
Katib's, including the experiment controller's reasons, which read like messages
("Experiment is succeeded").

Sextant adds one condition type, ``Exhausted`` (reason ``SuggestionEndReached``), set when the
algorithm answers OUT_OF_RANGE: it has no new assignment left. The experiment controller then
ends the experiment (``ExperimentSuggestionEndReached``) once every recorded assignment has
its trial and no trial is active.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sextant.resources.vocabulary import SuggestionConditionType as ConditionType
from sextant.timestamps import now_rfc3339, parse_time

from .condition_list import (
    FALSE,
    TRUE,
    Resource,
    any_condition_true,
    condition_is,
    get_condition,
    remove_condition,
    set_condition,
)

if TYPE_CHECKING:  # documents (the CLI) use these modules without the models' costly import
    from sextant.resources.models import Suggestion

CREATED = ConditionType.CREATED.value
DEPLOYMENT_READY = ConditionType.DEPLOYMENT_READY.value
RUNNING = ConditionType.RUNNING.value
SUCCEEDED = ConditionType.SUCCEEDED.value
FAILED = ConditionType.FAILED.value
EXHAUSTED = "Exhausted"  # Sextant's
CONDITION_TYPES: tuple[str, ...] = (*(t.value for t in ConditionType), EXHAUSTED)
FINISHED_TYPES: tuple[str, ...] = (SUCCEEDED, FAILED)

REASON_CREATED = "SuggestionCreated"
REASON_DEPLOYMENT_READY = "DeploymentReady"
REASON_DEPLOYMENT_NOT_READY = "DeploymentNotReady"
REASON_RUNNING = "SuggestionRunning"
REASON_FAILED = "SuggestionFailed"
REASON_END_REACHED = "SuggestionEndReached"  # Sextant's, with EXHAUSTED
# Written by the experiment controller.
REASON_SUCCEEDED = "Experiment is succeeded"
REASON_RUNNING_SUCCEEDED = "Suggestion is succeeded"
REASON_RESTARTING = "Experiment is restarting"

MSG_CREATED = "Suggestion is created"
MSG_DEPLOYMENT_READY = "Deployment is ready"
MSG_DEPLOYMENT_NOT_READY = "Deployment is not ready"
MSG_RUNNING = "Suggestion is running"
MSG_RESTARTING = "Suggestion is restarting"
MSG_END_REACHED = "the algorithm has no new assignment left (search space exhausted)"


MSG_SERVICE_STARTING = "the algorithm service {service} is starting ({seconds} s so far)"


def service_starting_message(service: str, seconds: float, detail: str = "") -> str:
    """Sextant's DeploymentReady=False message: which service and for how long (whole seconds
    up to 10 s, then 5 s steps, so the status is rewritten at most once a second)."""
    whole = max(0, int(seconds))
    shown = whole if whole < 10 else whole // 5 * 5
    message = f"{MSG_DEPLOYMENT_NOT_READY}: {MSG_SERVICE_STARTING.format(service=service, seconds=shown)}"
    return f"{message}; {detail}" if detail else message


def validation_failed_message(problem: str) -> str:
    return f"Validation failed: {problem}"


# ---------------------------------------------------------------------------------------------
# Predicates (a model or its JSON document)


def is_succeeded(suggestion: Resource) -> bool:
    return condition_is(suggestion, SUCCEEDED)


def is_failed(suggestion: Resource) -> bool:
    return condition_is(suggestion, FAILED)


def is_finished(suggestion: Resource) -> bool:
    return any_condition_true(suggestion, FINISHED_TYPES)


def is_running(suggestion: Resource) -> bool:
    return condition_is(suggestion, RUNNING)


def is_exhausted(suggestion: Resource) -> bool:
    return condition_is(suggestion, EXHAUSTED)


def is_restarting(suggestion: Suggestion) -> bool:
    """Running is False with the experiment controller's "restarting" reason."""
    cond = get_condition(suggestion.status.conditions, RUNNING)
    return cond is not None and cond.status == FALSE and cond.reason == REASON_RESTARTING


# ---------------------------------------------------------------------------------------------
# Marks


def mark_created(suggestion: Suggestion, now: str | None = None) -> bool:
    if get_condition(suggestion.status.conditions, CREATED) is not None:
        return False
    now = now or now_rfc3339()
    set_condition(suggestion.status.conditions, CREATED, TRUE, REASON_CREATED, MSG_CREATED, now)
    suggestion.status.start_time = suggestion.status.start_time or now
    return True


def mark_deployment_ready(suggestion: Suggestion, ready: bool, message: str = "") -> bool:
    if ready:
        return set_condition(suggestion.status.conditions, DEPLOYMENT_READY, TRUE,
                             REASON_DEPLOYMENT_READY, MSG_DEPLOYMENT_READY)
    return set_condition(suggestion.status.conditions, DEPLOYMENT_READY, FALSE,
                         REASON_DEPLOYMENT_NOT_READY, message or MSG_DEPLOYMENT_NOT_READY)


def mark_service_starting(suggestion: Suggestion, service: str, detail: str = "",
                          now: str | None = None) -> bool:
    """DeploymentReady=False while ``service`` starts, saying for how long: counted from when
    the condition became False (so a restarted controller keeps counting), message rewritten
    as the time grows."""
    conds = suggestion.status.conditions
    now = now or now_rfc3339()
    current = get_condition(conds, DEPLOYMENT_READY)
    since = current.last_transition_time if current is not None and current.status == FALSE else None
    started, current_time = parse_time(since), parse_time(now)
    seconds = (current_time - started).total_seconds() if started and current_time else 0.0
    message = service_starting_message(service, seconds, detail)
    if current is not None and current.status == FALSE and current.reason == REASON_DEPLOYMENT_NOT_READY \
            and current.message == message:
        return False
    set_condition(conds, DEPLOYMENT_READY, FALSE, REASON_DEPLOYMENT_NOT_READY, message, now)
    cond = get_condition(conds, DEPLOYMENT_READY)
    if cond is not None:  # set_condition keeps an equal reason's message: write the new one
        cond.message, cond.last_update_time = message, now
        cond.last_transition_time = since or cond.last_transition_time
    return True


def starting_service_message(suggestion: Suggestion) -> str:
    """The DeploymentReady=False message while the algorithm service starts, else ""."""
    cond = get_condition(suggestion.status.conditions, DEPLOYMENT_READY)
    if cond is not None and cond.status == FALSE and cond.reason == REASON_DEPLOYMENT_NOT_READY:
        return cond.message
    return ""


def mark_running(suggestion: Suggestion) -> bool:
    """Running=True; a Succeeded left from before a restart is dropped."""
    conds = suggestion.status.conditions
    changed = remove_condition(conds, SUCCEEDED)
    return set_condition(conds, RUNNING, TRUE, REASON_RUNNING, MSG_RUNNING) or changed


def mark_failed(suggestion: Suggestion, message: str) -> bool:
    conds = suggestion.status.conditions
    changed = False
    if get_condition(conds, RUNNING) is not None:
        changed = set_condition(conds, RUNNING, FALSE, REASON_FAILED, message)
    changed = set_condition(conds, FAILED, TRUE, REASON_FAILED, message) or changed
    suggestion.status.completion_time = suggestion.status.completion_time or now_rfc3339()
    return changed


def mark_exhausted(suggestion: Suggestion) -> bool:
    return set_condition(suggestion.status.conditions, EXHAUSTED, TRUE, REASON_END_REACHED, MSG_END_REACHED)


def mark_succeeded(suggestion: Suggestion, restartable: bool, now: str | None = None) -> bool:
    """What the experiment controller writes when the experiment ends (Never / FromVolume)."""
    conds = suggestion.status.conditions
    message = ("Suggestion is succeeded, can be restarted" if restartable
               else "Suggestion is succeeded, can't be restarted")
    changed = set_condition(conds, RUNNING, FALSE, REASON_RUNNING_SUCCEEDED, message, now)
    if get_condition(conds, DEPLOYMENT_READY) is not None:
        changed = set_condition(conds, DEPLOYMENT_READY, FALSE, REASON_RUNNING_SUCCEEDED,
                                message, now) or changed
    changed = set_condition(conds, SUCCEEDED, TRUE, REASON_SUCCEEDED, message, now) or changed
    if changed and not suggestion.status.completion_time:
        suggestion.status.completion_time = now or now_rfc3339()
    return changed


def mark_restarting(suggestion: Suggestion, now: str | None = None) -> bool:
    """Running=False "Experiment is restarting"; drops Succeeded so the service comes back."""
    conds = suggestion.status.conditions
    changed = remove_condition(conds, SUCCEEDED)
    changed = set_condition(conds, RUNNING, FALSE, REASON_RESTARTING, MSG_RESTARTING, now) or changed
    suggestion.status.completion_time = None
    return changed
