"""An experiment's trial summary, current optimal trial and end decision (Katib's rules).

Pure functions over models; the controller decides when to write the result. The condition
vocabulary and marks are ``sextant.katib.experiment_status``'s.

Differences from Katib, on purpose:
* An exhausted search space ends the experiment (Succeeded, reason
  ``ExperimentSuggestionEndReached``) once no trial is active any more; Katib defines the
  reason but never produces it and keeps such an experiment Running forever.
* MetricsUnavailable trials count towards maxTrialCount, like every other terminal state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from sextant.katib import experiment_status as es
from sextant.katib import pareto
from sextant.katib import trial_status as ts
from sextant.katib.condition_list import has_condition
from sextant.observation_values import objective_value
from sextant.resources.models import (
    Experiment,
    ObjectiveType,
    OptimalTrial,
    Trial,
)
from sextant.store.version_memo import VersionMemo

# A trial's state in the summary is its first True condition in this order (Katib's), else
# Pending.
KILLED, FAILED, SUCCEEDED = ts.KILLED, ts.FAILED, ts.SUCCEEDED
EARLY_STOPPED, RUNNING, METRICS_UNAVAILABLE = ts.EARLY_STOPPED, ts.RUNNING, ts.METRICS_UNAVAILABLE
PENDING = "Pending"
_ORDER = (KILLED, FAILED, SUCCEEDED, EARLY_STOPPED, RUNNING, METRICS_UNAVAILABLE)


def classify(trial: Trial) -> str:
    for state in _ORDER:
        if has_condition(trial.status.conditions, state):
            return state
    return PENDING


@dataclass
class TrialSummary:
    lists: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in (
        KILLED, FAILED, SUCCEEDED, EARLY_STOPPED, RUNNING, METRICS_UNAVAILABLE, PENDING)})
    total: int = 0
    optimal: OptimalTrial | None = None
    best_value: float | None = None  # the running best (None: no numeric objective value yet)
    pareto: list[OptimalTrial] | None = None  # None: a single-objective experiment

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
    """The best trial by the objective's strategy-chosen value.

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
    summary.pareto = pareto.pareto_optimal_trials(experiment, trials)
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
    st.pareto_optimal_trials = summary.pareto


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
    """Goal → max failed → max trials → search space exhausted (Katib's order; the last is Sextant's)."""
    spec = experiment.spec
    if goal_reached(experiment, summary.best_value):
        return EndDecision(es.SUCCEEDED, es.REASON_GOAL_REACHED, es.MSG_GOAL_REACHED)
    failed = summary.failed_for_limit
    if spec.max_failed_trial_count is not None and failed != 0 and failed >= spec.max_failed_trial_count:
        return EndDecision(es.FAILED, es.REASON_FAILED, es.MSG_MAX_FAILED)
    if spec.max_trial_count is not None and summary.completed >= spec.max_trial_count:
        return EndDecision(es.SUCCEEDED, es.REASON_MAX_TRIALS, es.MSG_MAX_TRIALS)
    if exhausted and summary.active == 0:
        return EndDecision(es.SUCCEEDED, es.REASON_SUGGESTION_END, es.MSG_SUGGESTION_END)
    return None


def most_common_failure(trials: list[Trial]) -> tuple[str, int, int]:
    """(cause, how many trials ended with it, how many failed) over the trials that count
    towards maxFailedTrialCount (Failed, MetricsUnavailable); ties go to the earliest name."""
    causes: Counter[str] = Counter()
    for trial in ordered(trials):
        state = classify(trial)
        if state not in (FAILED, METRICS_UNAVAILABLE):
            continue
        condition = next((c for c in trial.status.conditions if c.type == state and c.status == "True"), None)
        if condition is not None:
            causes[ts.failure_cause(condition.reason or "", condition.message or "")] += 1
    if not causes:
        return "", 0, 0
    cause, count = causes.most_common(1)[0]
    return cause, count, sum(causes.values())


def apply_end(experiment: Experiment, decision: EndDecision, now: str | None = None) -> bool:
    if decision.condition == es.FAILED:
        return es.mark_failed(experiment, decision.reason, decision.message, now)
    return es.mark_succeeded(experiment, decision.reason, decision.message, now)


def update_status(
    experiment: Experiment, trials: list[Trial], *, exhausted: bool = False, now: str | None = None
) -> TrialSummary:
    """Recomputes counts, lists and the optimal trial, then the end checks (while not completed).

    ``exhausted``: the Suggestion reported the search space exhausted *and* every recorded
    assignment already has its trial (the caller checks the latter).
    """
    summary = summarize(experiment, trials)
    apply_summary(experiment, summary)
    if not es.is_finished(experiment):
        decision = end_decision(experiment, summary, exhausted)
        if decision is not None and decision.message == es.MSG_MAX_FAILED:
            decision = replace(decision, message=es.max_failed_message(*most_common_failure(trials)))
        if decision is not None:
            apply_end(experiment, decision, now)
        else:
            es.mark_running(experiment, now)
    return summary
