"""tpe / multivariate-tpe internals: the fast paths give the libraries' own answers, a cached
instance answers exactly as a fresh one, and the trial history follows status changes.

These tests pin the library internals the fast paths rely on (optuna 5.0.0's TPE sampler and
Parzen estimator): an upgrade that changes them fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from services.suggestion.algorithms import algorithm_classes
from services.suggestion.algorithms.base import Algorithm
from services.suggestion.algorithms.search_space import SearchSpace
from services.suggestion.algorithms.tpe import TPE
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


# ---- tpe: optuna's univariate TPESampler (constant liar) on the request's trials ----


def _optuna_study(exp, dists, trials_rows):
    """An optuna study holding ``(params, value or None for running)`` rows."""
    import optuna
    from optuna.trial import TrialState, create_trial

    maximize = exp.spec.objective.type == api_pb2.MAXIMIZE
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(),
                                direction="maximize" if maximize else "minimize")
    for params, value in trials_rows:
        study.add_trial(create_trial(params=params, distributions=dists, value=value,
                                     state=TrialState.RUNNING if value is None else TrialState.COMPLETE))
    return study


@pytest.mark.parametrize("n,maximize,settings", [
    (30, False, {}),
    (120, True, {"prior_weight": "1.5", "n_EI_candidates": "16"}),
    (60, False, {"gamma": "0.4"}),
])
def test_tpe_proposes_what_optunas_univariate_sampler_proposes(n, maximize, settings):
    """Without Sextant's start-up design, every proposal is the one
    ``TPESampler(multivariate=False, constant_liar=True)`` samples, parameter after parameter,
    with the Katib settings mapped to its arguments (gamma as hyperopt's split)."""
    import optuna
    from optuna.samplers import TPESampler
    from optuna.samplers._tpe.sampler import default_gamma

    from services.suggestion.algorithms.optuna_study import to_optuna
    from services.suggestion.algorithms.optuna_tpe import OPTUNA
    from services.suggestion.algorithms.tpe import hyperopt_gamma

    assert optuna.__version__ == "5.0.0"  # the array path is checked against this version
    exp = b.experiment("ref", "tpe", b.mixed_space(), maximize=maximize, settings=settings)
    algo = TPE()
    space = algo.search_space(exp)
    parsed = algo.settings(exp)
    model = algo.new_model(space, parsed)
    model.sharpen = OPTUNA  # optuna's own good density, without Sextant's sharpening
    dists = model.dists
    rows, losses, study_rows = [], [], []
    for i, t in enumerate(b.completed_history(exp, n, seed=n)):
        params = {p.name: to_optuna(p, dists[p.name], b.assignment(t.spec.parameter_assignments)[p.name])
                  for p in space.params}
        value = float(t.status.observation.metrics[0].value)
        running = i % 9 == 4
        study_rows.append((params, None if running else value))
        rows.append(model.encode(params))
        losses.append(np.nan if running else (-value if maximize else value))
    study = _optuna_study(exp, dists, study_rows)
    current = study._storage.get_trial(study._storage.create_new_trial(study._study_id))
    gamma = default_gamma if "gamma" not in settings else hyperopt_gamma(float(settings["gamma"]))
    for seed in (0, 1, 2):
        sampler = TPESampler(multivariate=False, constant_liar=True, seed=seed, gamma=gamma,
                             prior_weight=parsed["prior_weight"], n_ei_candidates=parsed["n_EI_candidates"])
        expected = {}
        for name, dist in model.search.items():  # sample_independent's order: one parameter at a time
            expected.update(sampler._sample(study, current, {name: dist}))
        got = model.ask_univariate(np.array(rows), np.array(losses), np.random.RandomState(seed))
        assert got == expected, seed


def test_tpe_gamma_is_hyperopts_split_and_unset_is_optunas():
    from services.suggestion.algorithms.tpe import hyperopt_gamma

    # hyperopt: ceil(0.25 * sqrt(100)) = 3 good trials of 100; at most 25
    assert hyperopt_gamma(0.25)(100) == 3
    assert hyperopt_gamma(0.9)(10_000) == 25
    exp = b.experiment("g", "tpe", b.mixed_space())
    algo = TPE()
    assert algo.new_model(algo.search_space(exp), algo.settings(exp)).gamma(100) == 10  # optuna's 10 %


def test_tpe_learns_from_the_trials_after_startup():
    """Past the start-up trials, proposals concentrate near the best trials: on a bowl, the
    median distance to the optimum of the next proposal (20 seeds) is well below a random search's."""
    specs = [b.parameter(f"x{i}", "double", min="-1", max="1") for i in range(3)]
    rng = np.random.default_rng(3)
    trials = []
    for k in range(100):
        point = {f"x{i}": str(rng.uniform(-1, 1)) for i in range(3)}
        trials.append(b.trial(f"t{k}", point, value=sum(float(v) ** 2 for v in point.values())))
    got = [np.linalg.norm([float(v) for v in _suggest(TPE(), b.experiment(
        "bowl", "tpe", specs, settings={"random_state": str(s)}), trials, 1)[0].values()]) for s in range(20)]
    random_norms = np.linalg.norm(rng.uniform(-1, 1, (2000, 3)), axis=1)
    assert np.median(got) < 0.6 * np.median(random_norms)


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
