"""tpe / multivariate-tpe internals: the fast paths give the libraries' own answers, a cached
instance answers exactly as a fresh one, and the trial history follows status changes.

These tests pin the library internals the fast paths rely on (hyperopt 0.3.0's TPE posterior
graph, optuna 5.0.0's Parzen estimator): an upgrade that changes them fails here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hyperopt import Trials
from hyperopt import tpe as hyperopt_tpe
from hyperopt.base import JOB_STATE_DONE, JOB_STATE_RUNNING

from services.suggestion.algorithms import algorithm_classes
from services.suggestion.algorithms.base import Algorithm
from services.suggestion.algorithms.search_space import SearchSpace
from services.suggestion.algorithms.tpe import TPE, _from_hyperopt, _to_hyperopt
from services.suggestion.algorithms.trial_history import DONE, OTHER, RUNNING, TrialHistory
from sextant.api import api_pb2
from sextant.conformance import builders as b

Condition = api_pb2.TrialStatus.TrialConditionType


def _history(exp, n: int, seed: int) -> list[api_pb2.Trial]:
    """``n`` trials, some RUNNING (no value) and some FAILED, the rest SUCCEEDED."""
    trials = b.completed_history(exp, n, seed=seed)
    for k in range(0, n, 7):
        trials[k].status.condition = Condition.RUNNING if k % 2 else Condition.FAILED
        del trials[k].status.observation.metrics[:]
    return trials


def _points(result) -> list[dict[str, str]]:
    return result.assignments


# ---- tpe: same answer as hyperopt's own tpe.suggest ----


def _reference_tpe(exp, trials, seed: int, settings: dict) -> dict[str, str]:
    """One proposal by hyperopt's ``tpe.suggest`` over plain Trials documents."""
    algo = TPE()
    space = algo.search_space(exp)
    _history_obj, posterior = algo._state_for(space, settings)
    domain = posterior.domain
    holder = Trials()
    docs = []
    sign = -1.0 if exp.spec.objective.type == api_pb2.MAXIMIZE else 1.0
    for tid, t in enumerate(trials):
        if t.status.condition not in (Condition.SUCCEEDED, Condition.RUNNING, Condition.CREATED):
            continue
        assignment = b.assignment(t.spec.parameter_assignments)
        misc = {"tid": tid, "cmd": domain.cmd, "workdir": domain.workdir,
                "idxs": {p.name: [tid] for p in space.params},
                "vals": {p.name: [_to_hyperopt(p, assignment[p.name])] for p in space.params}}
        doc = holder.new_trial_docs([tid], [None], [{"status": "new"}], [misc])[0]
        if t.status.condition == Condition.SUCCEEDED:
            doc["result"] = {"status": "ok", "loss": sign * float(t.status.observation.metrics[0].value)}
            doc["state"] = JOB_STATE_DONE
        else:
            doc["state"] = JOB_STATE_RUNNING
        docs.append(doc)
    holder._trials = docs
    new = hyperopt_tpe.suggest([len(trials)], domain, holder, seed, prior_weight=settings["prior_weight"],
                               n_startup_jobs=20, n_EI_candidates=settings["n_EI_candidates"],
                               gamma=settings["gamma"], verbose=False)
    vals = new[0]["misc"]["vals"]
    return {p.name: _from_hyperopt(p, vals[p.name][0]) for p in space.params}


@pytest.mark.parametrize("n,maximize", [(5, False), (40, False), (150, True)])
def test_tpe_proposes_what_hyperopts_tpe_suggest_proposes(n, maximize):
    settings = {"random_state": None, "gamma": 0.3, "prior_weight": 1.5, "n_EI_candidates": 16}
    exp = b.experiment("ref", "tpe", b.mixed_space(), maximize=maximize)
    trials = _history(exp, n, seed=n)
    algo = TPE()
    space = algo.search_space(exp)
    history, posterior = algo._state_for(space, settings)
    history.sync(exp, trials)
    x, losses = history.usable()
    losses = np.where(np.isnan(losses), np.inf, losses)
    for seed in (1, 2, 3):
        ours = {p.name: _from_hyperopt(p, v) for p, v in zip(space.params, posterior.suggest(x, losses, seed).values(),
                                                              strict=True)}
        assert ours == _reference_tpe(exp, trials, seed, settings), seed


def test_tpe_experiment_follows_hyperopts_fmin_trial_for_trial():
    """Driven one trial at a time with random_state=s, tpe proposes what hyperopt's own loop
    ``fmin(tpe.suggest, rstate=default_rng(s))`` proposes: past the 20 startup draws too."""
    from hyperopt import fmin, hp

    def objective(p):
        return (p["a"] - 0.3) ** 2 + abs(p["b"] + 1.0)

    for seed in (0, 1):
        expected: list[tuple[float, float]] = []

        def record(p, expected=expected):
            expected.append((p["a"], p["b"]))
            return objective(p)

        fmin(record, {"a": hp.uniform("a", 0.0, 1.0), "b": hp.uniform("b", -2.0, 3.0)},
             algo=hyperopt_tpe.suggest, max_evals=24, trials=Trials(),
             rstate=np.random.default_rng(seed), show_progressbar=False)
        exp = b.experiment("fmin", "tpe", [b.parameter("a", "double", min="0", max="1"),
                                           b.parameter("b", "double", min="-2", max="3")],
                           settings={"random_state": str(seed)})
        algo, trials, got = TPE(), [], []
        for k in range(24):
            point = _points(algo.suggest(exp, trials, 1))[0]
            got.append((float(point["a"]), float(point["b"])))
            trials.append(b.trial(f"t{k}", point, value=objective({"a": got[-1][0], "b": got[-1][1]})))
        assert got == expected, seed


def test_call_seeds_are_fmins_successive_draws_and_differ_between_random_states():
    from services.suggestion.algorithms.tpe import _call_seeds

    rstate = np.random.default_rng(7)
    sequential = [int(rstate.integers(2**31 - 1)) for _ in range(300)]
    assert list(_call_seeds(7, 0, 300)) == sequential
    assert list(_call_seeds(7, 250, 3)) == sequential[250:253]
    # random_state s+1 does not replay random_state s one call later (as s + n_trials did)
    assert not set(_call_seeds(8, 0, 300)) & set(sequential)


def test_tpe_relies_on_hyperopt_internals_that_exist():
    import hyperopt

    assert hyperopt.__version__ == "0.3.0"  # the fast path is checked against this version
    domain = TPE()._state_for(SearchSpace.from_experiment(b.experiment("x", "tpe", b.mixed_space())),
                              {"gamma": 0.25, "prior_weight": 1.0, "n_EI_candidates": 24})[1]
    assert len(domain.graph[3]) == 5  # one ap_split_trials node per parameter, found in the graph


# ---- both: a cached instance answers exactly as a fresh one ----


def _suggest(algo: Algorithm, exp, trials, count):
    return _points(algo.suggest(exp, trials, count))


@pytest.mark.parametrize("algorithm", ["tpe", "multivariate-tpe"])
def test_cached_instance_answers_as_a_fresh_one(algorithm):
    cls = algorithm_classes.load(algorithm)
    exp = b.experiment("cache", algorithm, b.mixed_space(), settings={"random_state": "4"})
    cached = cls()
    trials: list[api_pb2.Trial] = []
    for r in range(14):
        got = _suggest(cached, exp, trials, 3)
        assert got == _suggest(cls(), exp, trials, 3), r
        # the first two become pending, then complete one round later; the third fails
        for t in trials:
            if t.status.condition == Condition.RUNNING:
                point = b.assignment(t.spec.parameter_assignments)
                t.status.condition = Condition.SUCCEEDED
                t.status.observation.metrics.add(name="objective", value=str(b.synthetic_value(point)))
        trials += [b.trial(f"c-{r}-{i}", p, condition=Condition.RUNNING) for i, p in enumerate(got[:2])]
        trials.append(b.trial(f"c-{r}-2", got[2], condition=Condition.FAILED))
        if r == 9:
            del trials[3]  # a trial deleted from the experiment: the history starts over


# ---- the trial history ----


def test_history_follows_status_changes_duplicates_and_deletions():
    exp = b.experiment("hist", "tpe", b.mixed_space(), maximize=True)
    space = SearchSpace.from_experiment(exp)
    history = TrialHistory(space, lambda a: [float(len(a[p.name])) for p in space.params])
    point = {"lr": "0.01", "momentum": "0.6", "dropout": "0.1", "layers": "2", "optimizer": "sgd"}
    other = dict(point, layers="3")
    trials = [b.trial("a", point, value=2.0),
              b.trial("b", other, condition=Condition.RUNNING),
              b.trial("c", dict(point, layers="4"), condition=Condition.SUCCEEDED),  # no metric yet
              b.trial("bad", {"lr": "0.01"}, value=1.0)]  # not a point of the space
    history.sync(exp, trials)
    assert list(history.state) == [DONE, RUNNING, OTHER]
    assert history.loss[0] == -2.0  # maximize: loss = -value
    assert len(history.taken) == 4
    trials[1].status.condition = Condition.SUCCEEDED
    trials[1].status.observation.metrics.add(name="objective", value="5")
    trials[2].status.observation.metrics.add(name="objective", value="7")  # same condition, value arrives
    history.sync(exp, trials + [trials[0]])  # a duplicate name is the same trial
    assert list(history.state) == [DONE, DONE, DONE]
    assert list(history.loss) == [-2.0, -5.0, -7.0]
    history.sync(exp, trials[1:])  # "a" deleted: rows are the request's trials again
    assert list(history.loss) == [-5.0, -7.0]
    assert history.space.key(point) not in history.taken


# ---- multivariate-tpe without Sextant's sharpening: same answer as optuna's TPESampler._sample ----


@pytest.mark.parametrize("n,maximize", [(30, False), (120, True)])
def test_multivariate_tpe_proposes_what_optunas_sampler_proposes(n, maximize):
    import optuna
    from optuna.samplers import TPESampler
    from optuna.trial import TrialState, create_trial

    from services.suggestion.algorithms.optuna_study import distribution, to_optuna
    from services.suggestion.algorithms.optuna_tpe import OPTUNA, OptunaTPE

    assert optuna.__version__ == "5.0.0"  # the array path is checked against this version
    exp = b.experiment("ref", "multivariate-tpe", b.mixed_space(), maximize=maximize)
    space = SearchSpace.from_experiment(exp)
    dists = {p.name: distribution(p) for p in space.params}
    model = OptunaTPE(dists, n_startup_trials=10, n_ei_candidates=24, sharpen=OPTUNA)
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(),
                                direction="maximize" if maximize else "minimize")
    rows, losses = [], []
    for i, t in enumerate(b.completed_history(exp, n, seed=3)):
        params = {p.name: to_optuna(p, dists[p.name], b.assignment(t.spec.parameter_assignments)[p.name])
                  for p in space.params}
        value = float(t.status.observation.metrics[0].value)
        running = i % 9 == 4  # constant liar: some trials still running
        study.add_trial(create_trial(params=params, distributions=dists,
                                     value=None if running else value,
                                     state=TrialState.RUNNING if running else TrialState.COMPLETE))
        rows.append(model.encode(params))
        losses.append(np.nan if running else (-value if maximize else value))
    current = study._storage.get_trial(study._storage.create_new_trial(study._study_id))
    for seed in (0, 1, 2):
        sampler = TPESampler(multivariate=True, constant_liar=True, seed=seed)
        expected = sampler._sample(study, current, model.search)
        got = model.ask(np.array(rows), np.array(losses), np.random.RandomState(seed))
        assert got == expected, seed
