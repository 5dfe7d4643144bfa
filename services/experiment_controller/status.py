"""Experiment status: trial summary, current optimal trial, end conditions (facts §3.2, §5.4, §5.7).

Pure functions over models; the controller decides when to write the result.

Differences from Katib, on purpose:
* An exhausted search space ends the experiment (Succeeded, reason
  ``ExperimentSuggestionEndReached``) once no trial is active any more; Katib defines the
  reason but never produces it and keeps such an experiment Running forever.
* Marking the experiment Running flips a stale ``Restarting`` condition to False, so the list
  does not claim "restarting" for the rest of the experiment's life.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sextant.conditions import (
    FALSE,
    TRUE,
    flip_to_false,
    get_condition,
    has_condition,
    mark_finished,
    now_rfc3339,
    remove_condition,
    set_condition,
)
from sextant.observation import objective_value
from sextant.resources.models import (
    Experiment,
    ExperimentConditionType,
    ObjectiveType,
    OptimalTrial,
    ResumePolicy,
    Trial,
    TrialConditionType,
)
from sextant.store.version_memo import VersionMemo

# Reasons and messages (Katib's strings, kept for compatibility).
REASON_CREATED = "ExperimentCreated"
REASON_RUNNING = "ExperimentRunning"
REASON_RESTARTING = "ExperimentRestarting"
REASON_GOAL_REACHED = "ExperimentGoalReached"
REASON_MAX_TRIALS = "ExperimentMaxTrialsReached"
REASON_SUGGESTION_END = "ExperimentSuggestionEndReached"
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


def suggestion_failed_message(suggestion) -> str:
    """Katib's message, followed by the Suggestion's own reason so the user sees the cause
    (e.g. the algorithm's INVALID_ARGUMENT) on the experiment."""
    cause = next((c.message for c in reversed(suggestion.status.conditions)
                  if c.type == "Failed" and c.status == "True" and c.message), "")
    if len(cause) > MAX_CAUSE_CHARS:
        cause = cause[:MAX_CAUSE_CHARS] + "..."
    return f"{MSG_SUGGESTION_FAILED}: {cause}" if cause else MSG_SUGGESTION_FAILED

# Classification order: the first condition that is True wins (facts §5.4).
KILLED, FAILED, SUCCEEDED = "Killed", "Failed", "Succeeded"
EARLY_STOPPED, RUNNING, METRICS_UNAVAILABLE, PENDING = "EarlyStopped", "Running", "MetricsUnavailable", "Pending"
_ORDER = [
    (TrialConditionType.KILLED, KILLED),
    (TrialConditionType.FAILED, FAILED),
    (TrialConditionType.SUCCEEDED, SUCCEEDED),
    (TrialConditionType.EARLY_STOPPED, EARLY_STOPPED),
    (TrialConditionType.RUNNING, RUNNING),
    (TrialConditionType.METRICS_UNAVAILABLE, METRICS_UNAVAILABLE),
]


def classify(trial: Trial) -> str:
    for cond_type, state in _ORDER:
        if has_condition(trial.status.conditions, str(cond_type)):
            return state
    return PENDING


@dataclass
class TrialSummary:
    lists: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in (
        KILLED, FAILED, SUCCEEDED, EARLY_STOPPED, RUNNING, METRICS_UNAVAILABLE, PENDING)})
    total: int = 0
    optimal: OptimalTrial | None = None
    best_value: float | None = None  # the running best (None: no numeric objective value yet)

    def count(self, state: str) -> int:
        return len(self.lists[state])

    @property
    def active(self) -> int:
        return self.count(PENDING) + self.count(RUNNING)

    @property
    def failed_for_limit(self) -> int:
        """What maxFailedTrialCount counts: failed + metrics unavailable."""
        return self.count(FAILED) + self.count(METRICS_UNAVAILABLE)

    @property
    def completed(self) -> int:
        """Every terminal state (maxTrialCount counts these)."""
        return sum(self.count(s) for s in (SUCCEEDED, FAILED, KILLED, EARLY_STOPPED, METRICS_UNAVAILABLE))


def ordered(trials: list[Trial]) -> list[Trial]:
    """Kubernetes lists by name; iterate the same way so ties resolve as in Katib."""
    return sorted(trials, key=lambda t: t.metadata.name)


def find_optimal(experiment: Experiment, trials: list[Trial], *, in_order: bool = False
                 ) -> tuple[Trial | None, float | None]:
    """The best trial by the objective's strategy-chosen value (facts §5.7).

    Ties keep the earlier trial; a value that is not a number makes that trial "best" without
    changing the best value (Katib's behaviour); with an unknown objective type only the first
    numeric trial counts.
    """
    objective = experiment.spec.objective
    best_trial: Trial | None = None
    best: float | None = None
    if objective is None:
        return None, None
    for trial in trials if in_order else ordered(trials):
        text = objective_value(objective, trial.status.observation)
        if text is None:
            continue
        try:
            value = float(text)
        except ValueError:
            best_trial = trial
            continue
        if best is None:
            best, best_trial = value, trial
        elif objective.type == ObjectiveType.MINIMIZE and value < best:
            best, best_trial = value, trial
        elif objective.type == ObjectiveType.MAXIMIZE and value > best:
            best, best_trial = value, trial
    return best_trial, best


# A pass classifies every trial of the experiment; only the changed ones need the work again.
_state_of_version = VersionMemo(classify)


def summarize(experiment: Experiment, trials: list[Trial]) -> TrialSummary:
    summary = TrialSummary(total=len(trials))
    trials = ordered(trials)
    for trial in trials:
        summary.lists[_state_of_version(trial)].append(trial.metadata.name)
    best_trial, best = find_optimal(experiment, trials, in_order=True)
    summary.best_value = best
    if best_trial is not None:
        summary.optimal = OptimalTrial(
            best_trial_name=best_trial.metadata.name,
            parameter_assignments=[a.model_copy() for a in best_trial.spec.parameter_assignments],
            observation=(best_trial.status.observation.model_copy(deep=True)
                         if best_trial.status.observation else OptimalTrial().observation),
        )
    return summary


def apply_summary(experiment: Experiment, summary: TrialSummary) -> None:
    st = experiment.status
    st.trials = summary.total
    st.trials_succeeded = summary.count(SUCCEEDED)
    st.trials_failed = summary.count(FAILED)
    st.trials_killed = summary.count(KILLED)
    st.trials_pending = summary.count(PENDING)
    st.trials_running = summary.count(RUNNING)
    st.trials_early_stopped = summary.count(EARLY_STOPPED)
    st.trial_metrics_unavailable = summary.count(METRICS_UNAVAILABLE)
    st.succeeded_trial_list = summary.lists[SUCCEEDED]
    st.failed_trial_list = summary.lists[FAILED]
    st.killed_trial_list = summary.lists[KILLED]
    st.pending_trial_list = summary.lists[PENDING]
    st.running_trial_list = summary.lists[RUNNING]
    st.early_stopped_trial_list = summary.lists[EARLY_STOPPED]
    st.metrics_unavailable_trial_list = summary.lists[METRICS_UNAVAILABLE]
    if summary.optimal is not None:  # Katib leaves the previous value when nothing qualifies
        st.current_optimal_trial = summary.optimal


def goal_reached(experiment: Experiment, best: float | None) -> bool:
    objective = experiment.spec.objective
    if objective is None or objective.goal is None or best is None:
        return False
    if objective.type == ObjectiveType.MINIMIZE:
        return best <= objective.goal
    if objective.type == ObjectiveType.MAXIMIZE:
        return best >= objective.goal
    return False


@dataclass(frozen=True)
class EndDecision:
    condition: str  # Succeeded | Failed
    reason: str
    message: str


def end_decision(experiment: Experiment, summary: TrialSummary, exhausted: bool = False) -> EndDecision | None:
    """Goal → max failed → max trials → search space exhausted (facts §5.4; the last is Sextant's)."""
    spec = experiment.spec
    if goal_reached(experiment, summary.best_value):
        return EndDecision(ExperimentConditionType.SUCCEEDED, REASON_GOAL_REACHED, MSG_GOAL_REACHED)
    failed = summary.failed_for_limit
    if spec.max_failed_trial_count is not None and failed != 0 and failed >= spec.max_failed_trial_count:
        return EndDecision(ExperimentConditionType.FAILED, REASON_FAILED, MSG_MAX_FAILED)
    if spec.max_trial_count is not None and summary.completed >= spec.max_trial_count:
        return EndDecision(ExperimentConditionType.SUCCEEDED, REASON_MAX_TRIALS, MSG_MAX_TRIALS)
    if exhausted and summary.active == 0:
        return EndDecision(ExperimentConditionType.SUCCEEDED, REASON_SUGGESTION_END, MSG_SUGGESTION_END)
    return None


# ---------------------------------------------------------------------------------------------
# Condition marks (experiments/v1beta1/util.go rules)


def is_created(experiment: Experiment) -> bool:
    return get_condition(experiment.status.conditions, ExperimentConditionType.CREATED) is not None


def is_succeeded(experiment: Experiment) -> bool:
    return has_condition(experiment.status.conditions, ExperimentConditionType.SUCCEEDED)


def is_failed(experiment: Experiment) -> bool:
    return has_condition(experiment.status.conditions, ExperimentConditionType.FAILED)


def is_completed(experiment: Experiment) -> bool:
    return is_succeeded(experiment) or is_failed(experiment)


def mark_created(experiment: Experiment, now: str | None = None) -> bool:
    now = now or now_rfc3339()
    changed = set_condition(experiment.status.conditions, ExperimentConditionType.CREATED, TRUE,
                            REASON_CREATED, MSG_CREATED, now)
    if experiment.status.start_time is None:
        experiment.status.start_time = now
        changed = True
    return changed


def mark_running(experiment: Experiment, now: str | None = None) -> bool:
    conds = experiment.status.conditions
    changed = False
    if has_condition(conds, ExperimentConditionType.RESTARTING):
        changed = flip_to_false(conds, ExperimentConditionType.RESTARTING, now)
    return set_condition(conds, ExperimentConditionType.RUNNING, TRUE, REASON_RUNNING, MSG_RUNNING, now) or changed


def _mark_done(experiment: Experiment, cond_type: str, reason: str, message: str, now: str | None) -> bool:
    now = now or now_rfc3339()
    conds = experiment.status.conditions
    changed = mark_finished(conds, cond_type, reason, message, now)
    if changed:
        experiment.status.completion_time = now
    return changed


def mark_succeeded(experiment: Experiment, reason: str, message: str, now: str | None = None) -> bool:
    return _mark_done(experiment, ExperimentConditionType.SUCCEEDED, reason, message, now)


def mark_failed(experiment: Experiment, reason: str, message: str, now: str | None = None) -> bool:
    return _mark_done(experiment, ExperimentConditionType.FAILED, reason, message, now)


def apply_end(experiment: Experiment, decision: EndDecision, now: str | None = None) -> bool:
    if decision.condition == ExperimentConditionType.FAILED:
        return mark_failed(experiment, decision.reason, decision.message, now)
    return mark_succeeded(experiment, decision.reason, decision.message, now)


def mark_restarting(experiment: Experiment, now: str | None = None) -> bool:
    conds = experiment.status.conditions
    changed = remove_condition(conds, ExperimentConditionType.SUCCEEDED)
    changed = remove_condition(conds, ExperimentConditionType.FAILED) or changed
    changed = set_condition(conds, ExperimentConditionType.RESTARTING, TRUE, REASON_RESTARTING,
                            MSG_RESTARTING, now) or changed
    experiment.status.completion_time = None
    return changed


def resume_policy(experiment: Experiment) -> ResumePolicy:
    return experiment.spec.resume_policy or ResumePolicy.NEVER


def is_restartable(experiment: Experiment) -> bool:
    """Succeeded by max trials, resumable policy, and maxTrialCount raised above the trials made.

    (Katib also flips any completed experiment without maxTrialCount to Restarting on every
    reconcile; that disjunct is a bug and is not reproduced.)
    """
    cond = get_condition(experiment.status.conditions, ExperimentConditionType.SUCCEEDED)
    if cond is None or cond.status != TRUE or cond.reason != REASON_MAX_TRIALS:
        return False
    if resume_policy(experiment) not in (ResumePolicy.LONG_RUNNING, ResumePolicy.FROM_VOLUME):
        return False
    max_trials = experiment.spec.max_trial_count
    return max_trials is not None and max_trials > experiment.status.trials


def update_status(
    experiment: Experiment, trials: list[Trial], *, exhausted: bool = False, now: str | None = None
) -> TrialSummary:
    """Recomputes counts, lists and the optimal trial, then the end checks (while not completed).

    ``exhausted``: the Suggestion reported the search space exhausted *and* every recorded
    assignment already has its trial (the caller checks the latter).
    """
    summary = summarize(experiment, trials)
    apply_summary(experiment, summary)
    if not is_completed(experiment):
        decision = end_decision(experiment, summary, exhausted)
        if decision is not None:
            apply_end(experiment, decision, now)
        else:
            mark_running(experiment, now)
    return summary


__all__ = [
    "FALSE",
    "TRUE",
    "EndDecision",
    "TrialSummary",
    "apply_end",
    "classify",
    "end_decision",
    "find_optimal",
    "is_completed",
    "is_restartable",
    "mark_created",
    "mark_failed",
    "mark_restarting",
    "mark_running",
    "mark_succeeded",
    "summarize",
    "update_status",
]
