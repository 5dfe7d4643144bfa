"""A Trial's status vocabulary: condition types, reasons, messages, predicates, marks.

The strings are Katib's, except Killed's reason and message: Katib defines the Killed type
but never sets it; Sextant sets it when an experiment ends with trials still running.

* Created, Running, Succeeded, MetricsUnavailable and Failed are written by the trial
  controller; a failed job's reason and message are appended to Katib's
  (``TrialFailed. Job reason: <reason>``).
* EarlyStopped is written by the early-stopping service (Running is not flipped).
* Killed is written by the experiment controller; the trial controller then stops the job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sextant.resources.vocabulary import TrialConditionType as ConditionType
from sextant.timestamps import now_rfc3339

from .condition_list import TRUE, Resource, any_condition_true, condition_is, mark_finished

if TYPE_CHECKING:  # documents (the CLI) use these modules without the models' costly import
    from sextant.resources.models import Trial

CREATED = ConditionType.CREATED.value
RUNNING = ConditionType.RUNNING.value
SUCCEEDED = ConditionType.SUCCEEDED.value
KILLED = ConditionType.KILLED.value
FAILED = ConditionType.FAILED.value
METRICS_UNAVAILABLE = ConditionType.METRICS_UNAVAILABLE.value
EARLY_STOPPED = ConditionType.EARLY_STOPPED.value
CONDITION_TYPES: tuple[str, ...] = tuple(t.value for t in ConditionType)
# Any of these True means the trial is over (Katib's IsCompleted).
FINISHED_TYPES: tuple[str, ...] = (SUCCEEDED, FAILED, KILLED, EARLY_STOPPED, METRICS_UNAVAILABLE)
# The ends without a result worth keeping: the CLI and the UI point at the trial's log for these.
FAILURE_TYPES: tuple[str, ...] = (FAILED, METRICS_UNAVAILABLE, KILLED)

REASON_CREATED = "TrialCreated"
REASON_RUNNING = "TrialRunning"
REASON_SUCCEEDED = "TrialSucceeded"
REASON_FAILED = "TrialFailed"
REASON_METRICS_UNAVAILABLE = "MetricsUnavailable"
REASON_EARLY_STOPPED = "TrialEarlyStopped"
REASON_KILLED = "TrialKilled"

MSG_CREATED = "Trial is created"
MSG_RUNNING = "Trial is running"
MSG_SUCCEEDED = "Trial has succeeded"
MSG_FAILED = "Trial has failed"
MSG_METRICS_UNAVAILABLE = "Metrics are not available"
MSG_EARLY_STOPPED = "Trial is early stopped"
MSG_KILLED = "Trial is killed because the experiment has ended"


def failed_reason(job_reason: str) -> str:
    """The Failed condition's reason for a job that failed with ``job_reason``."""
    return f"{REASON_FAILED}. Job reason: {job_reason}"


# A failed trial's message carries the end of its output, bounded so conditions stay small.
OUTPUT_TAIL_LINES = 10
OUTPUT_TAIL_BYTES = 2048
OUTPUT_HEADING = "Last lines of output:"


def failed_message(job_message: str, *, exit_code: int | None = None, output_tail: str = "",
                   note: str = "") -> str:
    """The Failed condition's message: Katib's ``Trial has failed. Job message: <message>``, then
    the exit code, a ``note`` (e.g. that the trial's image was not used) and the last lines of
    the trial's output (``tail_of``), each only when known."""
    detail = job_message.strip()
    if exit_code is not None and f"exit code {exit_code}" not in detail:
        detail = f"{detail} (exit code {exit_code})" if detail else f"exit code {exit_code}"
    message = f"{MSG_FAILED}. Job message: {detail}"
    if note:
        message += f". Note: {note}"
    if output_tail.strip():
        message += f"\n{OUTPUT_HEADING}\n{output_tail.rstrip()}"
    return message


def metrics_unavailable_message(objective: str, collector: str, output_tail: str = "") -> str:
    """The MetricsUnavailable condition's message: Katib's words, which metric never arrived
    from which collector, and the last lines of the trial's output when known."""
    message = f"{MSG_METRICS_UNAVAILABLE}: the objective metric {objective!r} was never reported " \
              f"({collector} collector)"
    if output_tail.strip():
        message += f"\n{OUTPUT_HEADING}\n{output_tail.rstrip()}"
    return message


def tail_of(output: bytes, lines: int = OUTPUT_TAIL_LINES, max_bytes: int = OUTPUT_TAIL_BYTES) -> str:
    """The last ``lines`` lines of ``output``, at most ``max_bytes`` of it, decoded leniently. A
    line cut by the byte bound is dropped unless it is the only one."""
    cut = output[-max_bytes:] if max_bytes > 0 else b""
    if len(output) > len(cut) and output[-len(cut) - 1:-len(cut)] != b"\n":
        newline = cut.find(b"\n")
        if 0 <= newline < len(cut.rstrip(b"\n")):
            cut = cut[newline + 1:]
    text = cut.decode("utf-8", "replace").rstrip("\n")
    return "\n".join(text.split("\n")[-lines:]) if text else ""


def failure_cause(reason: str, message: str) -> str:
    """What a finished-but-failed trial's condition says, short enough to count alike failures
    together: the job's reason and message (without Katib's prefixes) and the last output line."""
    first, _, rest = message.partition("\n")
    first = first.removeprefix(f"{MSG_FAILED}. Job message: ")
    cause = reason.removeprefix(f"{REASON_FAILED}. Job reason: ")
    if first and first != cause:
        cause = f"{cause}: {first}"
    if rest.startswith(OUTPUT_HEADING):
        last = rest.rstrip().rpartition("\n")[2].strip()
        if last and last != OUTPUT_HEADING:
            cause = f"{cause}: {last}"
    return cause


# ---------------------------------------------------------------------------------------------
# Predicates (a model or its JSON document)


def is_succeeded(trial: Resource) -> bool:
    return condition_is(trial, SUCCEEDED)


def is_failed(trial: Resource) -> bool:
    return condition_is(trial, FAILED)


def is_killed(trial: Resource) -> bool:
    return condition_is(trial, KILLED)


def is_early_stopped(trial: Resource) -> bool:
    return condition_is(trial, EARLY_STOPPED)


def is_metrics_unavailable(trial: Resource) -> bool:
    return condition_is(trial, METRICS_UNAVAILABLE)


def is_running(trial: Resource) -> bool:
    return condition_is(trial, RUNNING)


def is_finished(trial: Resource) -> bool:
    """Succeeded ∨ Failed ∨ Killed ∨ EarlyStopped ∨ MetricsUnavailable (Katib's IsCompleted)."""
    return any_condition_true(trial, FINISHED_TYPES)


def is_active(trial: Resource) -> bool:
    """Pending or running: not finished."""
    return not is_finished(trial)


def ended_in_failure(trial: Resource) -> bool:
    """Failed, MetricsUnavailable or Killed (``FAILURE_TYPES``)."""
    return any_condition_true(trial, FAILURE_TYPES)


def failure_of(trial: dict[str, Any]) -> dict[str, Any] | None:
    """The condition of a trial document that says why it ended in failure, or None."""
    for cond in reversed((trial.get("status") or {}).get("conditions") or []):
        if cond.get("type") in FAILURE_TYPES and cond.get("status") == TRUE:
            return cast(dict[str, Any], cond)
    return None


# ---------------------------------------------------------------------------------------------
# Marks


def mark_killed(trial: Trial, now: str | None = None) -> bool:
    """Killed=True (Running flipped to False); the trial controller stops the job when it sees it."""
    changed = mark_finished(trial.status.conditions, KILLED, REASON_KILLED, MSG_KILLED, now)
    if changed and not trial.status.completion_time:
        trial.status.completion_time = now or now_rfc3339()
    return changed
