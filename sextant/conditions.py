"""Condition bookkeeping for Experiment, Trial and Suggestion status (Katib's rules, facts §3.2).

* One entry per condition type.
* Setting a condition with the same status *and* reason as the current entry changes nothing
  (not even the timestamps), so an idempotent reconcile does not rewrite status.
* Otherwise the entry moves to the end of the list (the last entry is the "current" state
  ``kubectl get`` shows); ``lastTransitionTime`` is kept when the status did not change.

Also: trial state predicates (what counts as completed, killed, ...) and the timestamp format.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sextant.resources.models import Condition, TrialConditionType

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


def now_rfc3339() -> str:
    """Current UTC time, second precision, as Kubernetes serialises metav1.Time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp (any fractional precision, ``Z`` or offset) as aware UTC."""
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    # Python < 3.11 style limits do not apply, but trim sub-microsecond digits (RFC3339Nano).
    if "." in text:
        head, _, rest = text.partition(".")
        tz_at = next((i for i, ch in enumerate(rest) if not ch.isdigit()), len(rest))
        digits, tz = rest[:tz_at], rest[tz_at:]
        text = f"{head}.{digits[:6]}{tz}" if digits else f"{head}{tz}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_seconds(value: str | None) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (the GetSuggestions trial times); empty string if unset."""
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed else ""


# ---------------------------------------------------------------------------------------------
# Generic bookkeeping


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
    """Katib's order for a terminal condition: flip Running to False, *then* append the new
    condition, so that the last condition (what GetSuggestions reports) is the terminal one."""
    changed = flip_to_false(conditions, "Running", now)
    return set_condition(conditions, type_, TRUE, reason, message, now) or changed


def last_condition_type(conditions: list[Condition]) -> str | None:
    return conditions[-1].type if conditions else None


# ---------------------------------------------------------------------------------------------
# Trial predicates (facts §4.1, §5.4)


def trial_is(trial, type_: TrialConditionType | str) -> bool:
    return has_condition(trial.status.conditions, str(type_))


def trial_is_completed(trial) -> bool:
    """Succeeded ∨ Failed ∨ Killed ∨ EarlyStopped ∨ MetricsUnavailable."""
    return any(
        trial_is(trial, t)
        for t in (TrialConditionType.SUCCEEDED, TrialConditionType.FAILED, TrialConditionType.KILLED,
                  TrialConditionType.EARLY_STOPPED, TrialConditionType.METRICS_UNAVAILABLE)
    )


# ---------------------------------------------------------------------------------------------
# Suggestion conditions shared by the experiment and suggestion controllers (facts §4.2)
#
# Sextant adds one condition type: ``Exhausted`` (reason ``SuggestionEndReached``), set by the
# suggestion controller when the algorithm answers OUT_OF_RANGE. The experiment controller
# ends the experiment (ExperimentSuggestionEndReached) once every recorded assignment has its
# trial and no trial is active.

SUGGESTION_EXHAUSTED = "Exhausted"
REASON_SUGGESTION_END = "SuggestionEndReached"
SUGGESTION_SUCCEEDED_REASON = "Experiment is succeeded"
SUGGESTION_RUNNING_SUCCEEDED_REASON = "Suggestion is succeeded"
SUGGESTION_RESTARTING_REASON = "Experiment is restarting"


def suggestion_is(suggestion, type_: str) -> bool:
    return has_condition(suggestion.status.conditions, type_)


def suggestion_is_restarting(suggestion) -> bool:
    cond = get_condition(suggestion.status.conditions, "Running")
    return cond is not None and cond.status == FALSE and cond.reason == SUGGESTION_RESTARTING_REASON


def mark_suggestion_succeeded(suggestion, restartable: bool, now: str | None = None) -> bool:
    """What the experiment controller writes when the experiment ends (Never / FromVolume)."""
    conds = suggestion.status.conditions
    message = ("Suggestion is succeeded, can be restarted" if restartable
               else "Suggestion is succeeded, can't be restarted")
    changed = set_condition(conds, "Running", FALSE, SUGGESTION_RUNNING_SUCCEEDED_REASON, message, now)
    if get_condition(conds, "DeploymentReady") is not None:
        changed = set_condition(conds, "DeploymentReady", FALSE, SUGGESTION_RUNNING_SUCCEEDED_REASON,
                                message, now) or changed
    changed = set_condition(conds, "Succeeded", TRUE, SUGGESTION_SUCCEEDED_REASON, message, now) or changed
    if changed and not suggestion.status.completion_time:
        suggestion.status.completion_time = now or now_rfc3339()
    return changed


def mark_suggestion_restarting(suggestion, now: str | None = None) -> bool:
    """Running=False "Experiment is restarting"; drops Succeeded so the service comes back."""
    conds = suggestion.status.conditions
    changed = remove_condition(conds, "Succeeded")
    changed = set_condition(conds, "Running", FALSE, SUGGESTION_RESTARTING_REASON,
                            "Suggestion is restarting", now) or changed
    suggestion.status.completion_time = None
    return changed
