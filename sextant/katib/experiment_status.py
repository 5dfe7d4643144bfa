"""An Experiment's status vocabulary: condition types, reasons, messages, predicates, marks.

The reason and message strings are Katib's (users and dashboards grep for them); the marks
follow Katib's experiment rules:

* Created sets ``startTime`` once.
* Running flips a stale ``Restarting`` condition to False (Sextant's choice: Katib leaves it
  True, so the list claims "restarting" for the rest of the experiment's life).
* Succeeded / Failed flip Running to False, then append the terminal condition, and set
  ``completionTime``.
* Restarting removes Succeeded and Failed and clears ``completionTime``.

Sextant also produces ``ExperimentSuggestionEndReached`` (the search space is exhausted and no
trial is active); Katib defines that reason but never sets it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sextant.resources.vocabulary import ExperimentConditionType as ConditionType
from sextant.resources.vocabulary import ResumePolicy
from sextant.timestamps import now_rfc3339

from . import suggestion_status
from .condition_list import (
    TRUE,
    Resource,
    any_condition_true,
    condition_is,
    flip_to_false,
    get_condition,
    has_condition,
    mark_finished,
    remove_condition,
    set_condition,
)

if TYPE_CHECKING:  # documents (the CLI) use these modules without the models' costly import
    from sextant.resources.models import Experiment, Suggestion

CREATED = ConditionType.CREATED.value
RUNNING = ConditionType.RUNNING.value
RESTARTING = ConditionType.RESTARTING.value
SUCCEEDED = ConditionType.SUCCEEDED.value
FAILED = ConditionType.FAILED.value
CONDITION_TYPES: tuple[str, ...] = tuple(t.value for t in ConditionType)
# Either of these True means the experiment is over (until it is restarted).
FINISHED_TYPES: tuple[str, ...] = (SUCCEEDED, FAILED)

REASON_CREATED = "ExperimentCreated"
REASON_RUNNING = "ExperimentRunning"
REASON_RESTARTING = "ExperimentRestarting"
REASON_GOAL_REACHED = "ExperimentGoalReached"
REASON_MAX_TRIALS = "ExperimentMaxTrialsReached"
REASON_SUGGESTION_END = "ExperimentSuggestionEndReached"
# Katib uses this one reason both for "too many failed trials" and "the suggestion failed".
REASON_FAILED = "ExperimentFailed"

MSG_CREATED = "Experiment is created"
MSG_RUNNING = "Experiment is running"
MSG_RESTARTING = "Experiment is restarted"
MSG_GOAL_REACHED = "Experiment has succeeded because Objective goal has reached"
MSG_MAX_FAILED = "Experiment has failed because max failed count has reached"
MSG_MAX_TRIALS = "Experiment has succeeded because max trial count has reached"
MSG_SUGGESTION_END = "Experiment has succeeded because suggestion service has reached the end"
MSG_SUGGESTION_FAILED = "Suggestion has failed"
MAX_CAUSE_CHARS = 500


def suggestion_failed_message(suggestion: Suggestion) -> str:
    """Katib's message, followed by the Suggestion's own reason so the user sees the cause
    (e.g. the algorithm's INVALID_ARGUMENT) on the experiment."""
    cause = next((c.message for c in reversed(suggestion.status.conditions)
                  if c.type == "Failed" and c.status == "True" and c.message), "")
    if len(cause) > MAX_CAUSE_CHARS:
        cause = cause[:MAX_CAUSE_CHARS] + "..."
    return f"{MSG_SUGGESTION_FAILED}: {cause}" if cause else MSG_SUGGESTION_FAILED


def max_failed_message(cause: str, count: int, failed: int) -> str:
    """Katib's max-failed message, followed by the most common failure of its trials (``count``
    of the ``failed`` trials ended with ``cause``), so the experiment itself says why."""
    if not cause:
        return MSG_MAX_FAILED
    if len(cause) > MAX_CAUSE_CHARS:
        cause = cause[:MAX_CAUSE_CHARS] + "..."
    return f"{MSG_MAX_FAILED}. Most common trial failure ({count} of {failed}): {cause}"


# ---------------------------------------------------------------------------------------------
# Predicates (a model or its JSON document)


def is_created(experiment: Resource) -> bool:
    return condition_is(experiment, CREATED)


def is_succeeded(experiment: Resource) -> bool:
    return condition_is(experiment, SUCCEEDED)


def is_failed(experiment: Resource) -> bool:
    return condition_is(experiment, FAILED)


def is_finished(experiment: Resource) -> bool:
    """Succeeded or Failed (Katib's IsCompleted)."""
    return any_condition_true(experiment, FINISHED_TYPES)


def is_restarting(experiment: Resource) -> bool:
    return condition_is(experiment, RESTARTING)


def is_active(experiment: Resource) -> bool:
    """Not finished: trials may still be created or running."""
    return not is_finished(experiment)


# ---------------------------------------------------------------------------------------------
# Marks (change the model in place; return whether anything changed)


def mark_created(experiment: Experiment, now: str | None = None) -> bool:
    now = now or now_rfc3339()
    changed = set_condition(experiment.status.conditions, CREATED, TRUE, REASON_CREATED, MSG_CREATED, now)
    if experiment.status.start_time is None:
        experiment.status.start_time = now
        changed = True
    return changed


def mark_waiting_for_algorithm(experiment: Experiment, suggestion: Suggestion | None,
                               now: str | None = None) -> bool:
    """Until the experiment runs, its Created condition repeats what the Suggestion says while
    its algorithm service starts (which service, for how long), and says only Katib's
    "Experiment is created" again once it serves: a user watching the experiment sees why no
    trial has started yet."""
    conds = experiment.status.conditions
    created = get_condition(conds, CREATED)
    if created is None or get_condition(conds, RUNNING) is not None or is_finished(experiment):
        return False
    waiting = suggestion_status.starting_service_message(suggestion) if suggestion is not None else ""
    message = f"{MSG_CREATED}; {waiting}" if waiting else MSG_CREATED
    if created.message == message:
        return False
    created.message, created.last_update_time = message, now or now_rfc3339()
    return True


def mark_running(experiment: Experiment, now: str | None = None) -> bool:
    conds = experiment.status.conditions
    changed = False
    if has_condition(conds, RESTARTING):
        changed = flip_to_false(conds, RESTARTING, now)
    return set_condition(conds, RUNNING, TRUE, REASON_RUNNING, MSG_RUNNING, now) or changed


def _mark_done(experiment: Experiment, cond_type: str, reason: str, message: str, now: str | None) -> bool:
    now = now or now_rfc3339()
    changed = mark_finished(experiment.status.conditions, cond_type, reason, message, now)
    if changed:
        experiment.status.completion_time = now
    return changed


def mark_succeeded(experiment: Experiment, reason: str, message: str, now: str | None = None) -> bool:
    return _mark_done(experiment, SUCCEEDED, reason, message, now)


def mark_failed(experiment: Experiment, reason: str, message: str, now: str | None = None) -> bool:
    return _mark_done(experiment, FAILED, reason, message, now)


def mark_restarting(experiment: Experiment, now: str | None = None) -> bool:
    conds = experiment.status.conditions
    changed = remove_condition(conds, SUCCEEDED)
    changed = remove_condition(conds, FAILED) or changed
    changed = set_condition(conds, RESTARTING, TRUE, REASON_RESTARTING, MSG_RESTARTING, now) or changed
    experiment.status.completion_time = None
    return changed


# ---------------------------------------------------------------------------------------------
# Restart


def resume_policy(experiment: Experiment) -> ResumePolicy:
    return experiment.spec.resume_policy or ResumePolicy.NEVER


def may_restart(experiment: Experiment) -> bool:
    """Succeeded by max trials with a resumable policy (LongRunning, FromVolume): the only
    finished experiment whose spec may still be edited, to raise its budget."""
    cond = get_condition(experiment.status.conditions, SUCCEEDED)
    if cond is None or cond.status != TRUE or cond.reason != REASON_MAX_TRIALS:
        return False
    return resume_policy(experiment) in (ResumePolicy.LONG_RUNNING, ResumePolicy.FROM_VOLUME)


def is_restartable(experiment: Experiment) -> bool:
    """``may_restart``, and maxTrialCount raised above the trials made.

    (Katib also flips any completed experiment without maxTrialCount to Restarting on every
    reconcile; that disjunct is a bug and is not reproduced.)
    """
    if not may_restart(experiment):
        return False
    max_trials = experiment.spec.max_trial_count
    return max_trials is not None and max_trials > experiment.status.trials
