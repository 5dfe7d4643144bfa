"""Experiment status logic: classification, optimal trial, end checks, conditions, requests."""

from __future__ import annotations

import pytest

from services.experiment_controller import trial_plan as rq
from services.experiment_controller import trial_summary as st
from sextant.katib import experiment_status as es
from sextant.katib.condition_list import set_condition
from sextant.resources.models import (
    AlgorithmSpec,
    Condition,
    Experiment,
    ExperimentSpec,
    Metric,
    MetricStrategy,
    ObjectiveSpec,
    ObjectMeta,
    Observation,
    ParameterAssignment,
    ResumePolicy,
    Trial,
    TrialSpec,
    TrialStatus,
)

T0 = "2024-01-01T00:00:00Z"


def experiment(type_="maximize", goal=None, strategy=None, parallel=3, max_trials=None, max_failed=None,
               resume=None):
    strategy = strategy or ("max" if type_ == "maximize" else "min")
    return Experiment(
        metadata=ObjectMeta(name="exp", namespace="ns"),
        spec=ExperimentSpec(
            objective=ObjectiveSpec(type=type_, goal=goal, objective_metric_name="acc",
                                    metric_strategies=[MetricStrategy(name="acc", value=strategy)]),
            algorithm=AlgorithmSpec(algorithm_name="random"),
            parallel_trial_count=parallel, max_trial_count=max_trials, max_failed_trial_count=max_failed,
            resume_policy=resume,
        ),
    )


def trial(name, *conds, metric=None, created=T0):
    """``conds``: condition types set True in order; ``metric``: (min, max, latest)."""
    conditions = [Condition(type=c, status="True", reason=c) for c in conds]
    obs = None
    if metric is not None:
        lo, hi, latest = metric
        obs = Observation(metrics=[Metric(name="acc", min=lo, max=hi, latest=latest)])
    return Trial(
        metadata=ObjectMeta(name=name, namespace="ns", creation_timestamp=created),
        spec=TrialSpec(objective=experiment().spec.objective,
                       parameter_assignments=[ParameterAssignment(name="x", value=name)]),
        status=TrialStatus(conditions=conditions, observation=obs),
    )


# -- classification & counts ---------------------------------------------------------------------


def test_classification_order_first_true_condition_wins():
    assert st.classify(trial("a", "Running", "Failed", "Killed")) == "Killed"
    assert st.classify(trial("a", "Succeeded", "Failed")) == "Failed"
    assert st.classify(trial("a", "EarlyStopped", "Succeeded")) == "Succeeded"
    assert st.classify(trial("a", "Running", "EarlyStopped")) == "EarlyStopped"
    assert st.classify(trial("a", "MetricsUnavailable", "Running")) == "Running"
    assert st.classify(trial("a", "MetricsUnavailable")) == "MetricsUnavailable"
    assert st.classify(trial("a", "Created")) == "Pending"
    false_running = trial("a", "Created")
    false_running.status.conditions.append(Condition(type="Running", status="False"))
    assert st.classify(false_running) == "Pending"


def test_summary_counts_and_lists_sorted_by_name():
    exp = experiment()
    trials = [trial("c", "Running"), trial("a", "Succeeded", metric=("1", "2", "2")), trial("b", "Failed"),
              trial("d"), trial("e", "MetricsUnavailable"), trial("f", "Killed"), trial("g", "EarlyStopped")]
    st.update_status(exp, trials)
    s = exp.status
    assert (s.trials, s.trials_succeeded, s.trials_failed, s.trials_running, s.trials_pending,
            s.trial_metrics_unavailable, s.trials_killed, s.trials_early_stopped) == (7, 1, 1, 1, 1, 1, 1, 1)
    assert s.succeeded_trial_list == ["a"] and s.pending_trial_list == ["d"]
    assert s.metrics_unavailable_trial_list == ["e"]
    doc = exp.status.model_dump(by_alias=True)
    assert doc["trialMetricsUnavailable"] == 1 and doc["trialsEarlyStopped"] == 1


# -- optimal trial -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "type_,strategy,expected",
    [
        ("maximize", "max", "b"),  # b's max 0.9 beats a's 0.8
        ("maximize", "latest", "a"),  # a latest 0.7 > b latest 0.5
        ("minimize", "min", "b"),  # b min 0.1
        ("minimize", "latest", "b"),  # b latest 0.5 < a latest 0.7
    ],
)
def test_optimal_trial_uses_the_objective_strategy(type_, strategy, expected):
    exp = experiment(type_, strategy=strategy)
    trials = [trial("a", "Succeeded", metric=("0.2", "0.8", "0.7")),
              trial("b", "Succeeded", metric=("0.1", "0.9", "0.5"))]
    st.update_status(exp, trials)
    best = exp.status.current_optimal_trial
    assert best.best_trial_name == expected
    assert best.parameter_assignments[0].value == expected
    assert {m.name for m in best.observation.metrics} == {"acc"}


def test_optimal_trial_min_strategy_falls_back_to_latest_and_skips_unavailable():
    exp = experiment("minimize", strategy="min")
    trials = [trial("a", "Succeeded", metric=("unavailable", "unavailable", "0.3")),
              trial("b", "Succeeded", metric=("unavailable", "unavailable", "unavailable")),
              trial("c", "Running")]
    best, value = st.find_optimal(exp, trials)
    assert best.metadata.name == "a" and value == 0.3


def test_optimal_ties_keep_the_earlier_trial_and_non_numeric_becomes_best():
    exp = experiment("maximize")
    tie = [trial("a", "Succeeded", metric=("1", "1", "1")), trial("b", "Succeeded", metric=("1", "1", "1"))]
    assert st.find_optimal(exp, tie)[0].metadata.name == "a"
    odd = tie + [trial("c", "Succeeded", metric=("nan?", "x", "x"))]
    best, value = st.find_optimal(exp, odd)
    assert best.metadata.name == "c" and value == 1.0


def test_optimal_with_unknown_objective_type_is_the_first_numeric_trial():
    exp = experiment("")
    exp.spec.objective.metric_strategies = [MetricStrategy(name="acc", value="latest")]
    trials = [trial("a", "Running"), trial("b", "Succeeded", metric=("5", "5", "5")),
              trial("c", "Succeeded", metric=("9", "9", "9"))]
    assert st.find_optimal(exp, trials)[0].metadata.name == "b"


def test_optimal_trial_is_kept_when_no_trial_qualifies():
    exp = experiment()
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1"))])
    st.update_status(exp, [trial("b", "Running")])
    assert exp.status.current_optimal_trial.best_trial_name == "a"


# -- end conditions ------------------------------------------------------------------------------


def conds(exp):
    return [(c.type, c.status, c.reason) for c in exp.status.conditions]


def test_goal_reached_maximize_and_minimize():
    exp = experiment("maximize", goal=0.9)
    st.update_status(exp, [trial("a", "Succeeded", metric=("0.5", "0.95", "0.5"))], now=T0)
    assert exp.status.conditions[-1].type == "Succeeded"
    assert exp.status.conditions[-1].reason == es.REASON_GOAL_REACHED
    assert exp.status.conditions[-1].message == es.MSG_GOAL_REACHED
    assert exp.status.completion_time == T0
    exp = experiment("minimize", goal=0.1)
    st.update_status(exp, [trial("a", "Succeeded", metric=("0.2", "0.3", "0.2"))])
    assert exp.status.conditions[-1].type == "Running"
    st.update_status(exp, [trial("a", "Succeeded", metric=("0.1", "0.3", "0.2"))])
    assert exp.status.conditions[-1].reason == es.REASON_GOAL_REACHED
    # Running was flipped to False keeping its reason
    assert ("Running", "False", es.REASON_RUNNING) in conds(exp)


def test_max_failed_counts_failed_plus_metrics_unavailable():
    exp = experiment(max_failed=2, max_trials=10)
    st.update_status(exp, [trial("a", "Failed"), trial("b", "Running")])
    assert exp.status.conditions[-1].type == "Running"
    st.update_status(exp, [trial("a", "Failed"), trial("b", "MetricsUnavailable")])
    last = exp.status.conditions[-1]
    assert (last.type, last.reason) == ("Failed", es.REASON_FAILED)
    assert last.message == es.max_failed_message("Failed", 1, 2)


def test_max_failed_zero_fails_on_first_failure_and_none_never():
    exp = experiment(max_failed=0)
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1"))])
    assert exp.status.conditions[-1].type == "Running"
    st.update_status(exp, [trial("a", "Failed")])
    assert exp.status.conditions[-1].type == "Failed"
    exp = experiment(max_failed=None)
    st.update_status(exp, [trial(str(i), "Failed") for i in range(5)])
    assert exp.status.conditions[-1].type == "Running"


def test_max_trials_counts_every_terminal_state_and_order_goal_first():
    exp = experiment(max_trials=4)
    trials = [trial("a", "Succeeded", metric=("1", "1", "1")), trial("b", "Failed"), trial("c", "Killed"),
              trial("d", "EarlyStopped")]
    st.update_status(exp, trials[:3] + [trial("d", "Running")])
    assert exp.status.conditions[-1].type == "Running"
    st.update_status(exp, trials)
    assert exp.status.conditions[-1].reason == es.REASON_MAX_TRIALS
    # goal wins over max trials and max failed when all hold
    exp = experiment(goal=0.5, max_trials=1, max_failed=1)
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1")), trial("b", "Failed")])
    assert exp.status.conditions[-1].reason == es.REASON_GOAL_REACHED
    # max failed wins over max trials
    exp = experiment(max_trials=1, max_failed=1)
    st.update_status(exp, [trial("b", "Failed")])
    assert exp.status.conditions[-1].type == "Failed"


def test_exhaustion_ends_only_once_no_trial_is_active():
    exp = experiment()
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1")), trial("b", "Running")],
                     exhausted=True)
    assert exp.status.conditions[-1].type == "Running"
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1")), trial("b", "Failed")],
                     exhausted=True)
    last = exp.status.conditions[-1]
    assert (last.type, last.reason) == ("Succeeded", es.REASON_SUGGESTION_END)


def test_completed_experiment_is_not_re_ended():
    exp = experiment(max_trials=1)
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1"))], now=T0)
    before = [c.model_dump() for c in exp.status.conditions]
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1")), trial("b", "Failed")],
                     now="2025-01-01T00:00:00Z")
    assert [c.model_dump() for c in exp.status.conditions] == before
    assert exp.status.trials == 2  # counts keep updating


# -- condition bookkeeping -----------------------------------------------------------------------


def test_condition_bookkeeping_rules():
    cs: list[Condition] = []
    assert set_condition(cs, "Running", "True", "R", "m", now="t1")
    assert not set_condition(cs, "Running", "True", "R", "other message", now="t2")  # same status+reason
    set_condition(cs, "Created", "True", "C", "m", now="t3")
    assert set_condition(cs, "Running", "True", "R2", "m2", now="t4")
    assert [c.type for c in cs] == ["Created", "Running"]  # moved to the end
    assert cs[-1].last_transition_time == "t1" and cs[-1].last_update_time == "t4"
    set_condition(cs, "Running", "False", "R2", "m2", now="t5")
    assert cs[-1].last_transition_time == "t5"


def test_created_running_restarting_marks():
    exp = experiment(max_trials=1, resume=ResumePolicy.LONG_RUNNING)
    assert es.mark_created(exp, now=T0) and exp.status.start_time == T0
    assert not es.mark_created(exp, now="later")
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1"))])
    assert es.is_succeeded(exp) and not es.is_restartable(exp)
    exp.spec.max_trial_count = 3
    assert es.is_restartable(exp)
    es.mark_restarting(exp)
    types = [c.type for c in exp.status.conditions]
    assert "Succeeded" not in types and "Failed" not in types and types[-1] == "Restarting"
    assert not es.is_finished(exp)
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1"))])
    assert exp.status.conditions[-1].type == "Running"
    assert ("Restarting", "False", es.REASON_RESTARTING) in conds(exp)


@pytest.mark.parametrize("resume,expected", [(None, False), (ResumePolicy.NEVER, False),
                                             (ResumePolicy.FROM_VOLUME, True)])
def test_restartable_depends_on_resume_policy_and_reason(resume, expected):
    exp = experiment(max_trials=1, resume=resume)
    st.update_status(exp, [trial("a", "Succeeded", metric=("1", "1", "1"))])
    exp.spec.max_trial_count = 5
    assert es.is_restartable(exp) is expected
    goal = experiment(goal=0.5, max_trials=1, resume=ResumePolicy.LONG_RUNNING)
    st.update_status(goal, [trial("a", "Succeeded", metric=("1", "1", "1"))])
    goal.spec.max_trial_count = 5
    assert not es.is_restartable(goal)


# -- request arithmetic --------------------------------------------------------------------------


def plan(exp, trials):
    return rq.plan_trials(exp, st.summarize(exp, trials), trials)


def test_requests_fill_parallelism_without_max():
    p = plan(experiment(parallel=3), [])
    assert (p.requests, p.add_count, p.delete) == (3, 3, [])
    trials = [trial("a", "Succeeded"), trial("b", "Running")]
    p = plan(experiment(parallel=3), trials)
    assert (p.requests, p.add_count) == (4, 2)


def test_requests_capped_by_max_trials_minus_completed():
    trials = [trial("a", "Succeeded"), trial("b", "Failed"), trial("c", "Running")]
    p = plan(experiment(parallel=3, max_trials=4), trials)
    assert (p.requests, p.add_count) == (4, 1)  # 4 - 2 completed = 2 required, 1 active
    p = plan(experiment(parallel=3, max_trials=3), trials)
    assert p.requests is None and p.add_count == 0


def test_metrics_unavailable_counts_as_completed_for_requests():
    trials = [trial("a", "MetricsUnavailable"), trial("b", "Succeeded")]
    p = plan(experiment(parallel=3, max_trials=3), trials)
    assert (p.requests, p.add_count) == (3, 1)


def test_incomplete_early_stopped_trials_are_subtracted():
    trials = [trial("a", "EarlyStopped"), trial("b", "EarlyStopped", metric=("1", "1", "1"))]
    p = plan(experiment(parallel=2), trials)
    assert (p.requests, p.add_count) == (2 + 2 - 1, 2)


def test_lowering_parallelism_deletes_the_newest_active_trials():
    trials = [trial("a", "Running", created="2024-01-01T00:00:01Z"),
              trial("b", "Running", created="2024-01-01T00:00:03Z"),
              trial("c", created="2024-01-01T00:00:02Z"),
              trial("z", "Succeeded", created="2024-01-01T00:00:09Z")]
    p = plan(experiment(parallel=1), trials)
    assert p.requests is None and sorted(p.delete) == ["b", "c"]
    assert plan(experiment(parallel=3), trials).delete == []
