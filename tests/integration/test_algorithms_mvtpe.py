"""multivariate-tpe's array Parzen estimator against optuna 5.0.0's own.

``optuna_tpe.OptunaTPE`` builds optuna's mixtures itself and evaluates both mixtures' densities
in one vectorised pass (``_log_pdf_pair``) instead of ``_ParzenEstimator.log_pdf``. These tests
pin that to optuna on random inputs of every kind of distribution: the mixtures are optuna's to
the bit (so optuna's sampler draws the same candidates), the densities agree to rounding, and a
whole ask without Sextant's sharpening (``sharpen=OPTUNA``) proposes what ``TPESampler._sample``
proposes. (The Katib-space version of the last check is in test_algorithms_tpe.py.) Then the
sharpening itself and the start-up design.
"""

from __future__ import annotations

import numpy as np
import pytest

# ---- multivariate-tpe: the array Parzen estimator is optuna's, number for number ----


def _random_search_space(rng: np.random.Generator, full: bool = True) -> dict:
    """Every kind of distribution the Parzen estimator models (or, not ``full``, a random
    non-empty subset of them), in a shuffled order."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dists = {
        "float": FloatDistribution(-3.0, 7.5),
        "float_log": FloatDistribution(1e-4, 0.3, log=True),
        "float_step": FloatDistribution(0.0, 0.5, step=0.05),
        "int": IntDistribution(1, 8),
        "int_log": IntDistribution(1, 1024, log=True),
        "int_step": IntDistribution(0, 30, step=3),
        "cat": CategoricalDistribution(["a", "b", "c"]),
        "cat2": CategoricalDistribution([1, 2]),
    }
    names = list(dists)
    rng.shuffle(names)
    if not full:
        names = names[: rng.integers(1, len(names) + 1)]
    return {name: dists[name] for name in names}


def _random_rows(rng: np.random.Generator, search: dict, n: int) -> np.ndarray:
    """n observations in optuna's internal representation; discrete values repeat (ties)."""
    cols = []
    for dist in search.values():
        if hasattr(dist, "choices"):
            cols.append(rng.integers(0, len(dist.choices), n).astype(float))
        elif dist.step is not None:
            k = rng.integers(0, int(round((dist.high - dist.low) / dist.step)) + 1, n)
            cols.append(np.asarray(dist.low + k * dist.step, dtype=float))
        elif dist.log:
            cols.append(np.exp(rng.uniform(np.log(dist.low), np.log(dist.high), n)))
        else:
            cols.append(rng.uniform(dist.low, dist.high, n))
    rows = np.column_stack(cols) if cols else np.empty((n, 0))
    if n > 4:  # exact duplicates of continuous values too (sigma ties)
        rows[n // 2] = rows[0]
    return rows


def _optuna_estimator(model, rows):
    from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator

    obs = {name: rows[:, i] for i, name in enumerate(model.search)}
    return _ParzenEstimator(obs, model.search, model.parameters)


@pytest.mark.parametrize("seed", range(9))
def test_mixture_is_optunas_parzen_estimator_bit_for_bit(seed):
    from services.suggestion.algorithms.optuna_tpe import OptunaTPE

    rng = np.random.default_rng(seed)
    search = _random_search_space(rng, full=seed < 3)
    model = OptunaTPE(search, n_startup_trials=10, n_ei_candidates=24)
    for n in (0, 1, 2, 3, 7, 26, 300):
        rows = _random_rows(rng, search, n)
        expected = _optuna_estimator(model, rows)._mixture_distribution
        got = model.mixture(rows)
        assert np.array_equal(got.weights, expected.weights), n
        for name, g, e in zip(search, got.distributions, expected.distributions, strict=True):
            assert type(g) is type(e), (n, name)
            for field in e._fields:
                if isinstance(getattr(e, field), np.ndarray):
                    assert np.array_equal(getattr(g, field), getattr(e, field)), (n, name, field)
                else:
                    assert getattr(g, field) == getattr(e, field), (n, name, field)
        # so optuna's sampler draws the same candidates from either
        a = got.sample(np.random.RandomState(seed), 24)
        b = expected.sample(np.random.RandomState(seed), 24)
        assert np.array_equal(a, b), n


@pytest.mark.parametrize("seed", range(9))
def test_log_pdf_pair_matches_optunas_log_pdf(seed):
    from services.suggestion.algorithms.optuna_tpe import OptunaTPE, _log_pdf_pair

    rng = np.random.default_rng(100 + seed)
    search = _random_search_space(rng, full=seed < 3)
    continuous = any(not hasattr(d, "choices") and d.step is None for d in search.values())
    model = OptunaTPE(search, n_startup_trials=10, n_ei_candidates=24)
    for n_below, n_above in ((0, 0), (1, 3), (5, 40), (25, 975)):
        below = _optuna_estimator(model, _random_rows(rng, search, n_below))
        above = _optuna_estimator(model, _random_rows(rng, search, n_above))
        x = below._mixture_distribution.sample(np.random.RandomState(seed), 24)
        # and points on the bounds, and (continuous parameters) just outside: zero density
        edges = _random_rows(rng, search, 4)
        for i, dist in enumerate(search.values()):
            if not hasattr(dist, "choices"):
                edges[0, i], edges[1, i] = dist.low, dist.high
                if dist.step is None:
                    edges[2, i] = dist.low * (1 - 1e-9) if dist.log else dist.low - 1e-9
        x = np.vstack([x, edges])
        got_below, got_above = _log_pdf_pair(x, below._mixture_distribution, above._mixture_distribution)
        expected_below = below._mixture_distribution.log_pdf(x)
        expected_above = above._mixture_distribution.log_pdf(x)
        for got, expected in ((got_below, expected_below), (got_above, expected_above)):
            assert np.array_equal(np.isneginf(got), np.isneginf(expected)), (n_below, n_above)
            assert np.isneginf(got[-2]) == continuous  # the row outside the continuous bounds
            finite = np.isfinite(expected)
            np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-10)
        # the argmax the sampler takes
        score = got_below[:24] - got_above[:24]
        assert np.argmax(score) == np.argmax(expected_below[:24] - expected_above[:24])


def _assert_asks_match_optunas_sampler(search: dict, rows: np.ndarray, losses: np.ndarray) -> None:
    import optuna
    from optuna.samplers import TPESampler
    from optuna.trial import TrialState, create_trial

    from services.suggestion.algorithms.optuna_tpe import OPTUNA, OptunaTPE

    assert optuna.__version__ == "5.0.0"
    model = OptunaTPE(search, n_startup_trials=10, n_ei_candidates=24, sharpen=OPTUNA)
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    for row, loss in zip(rows, losses, strict=True):
        params = {name: dist.to_external_repr(v) for (name, dist), v in zip(search.items(), row, strict=True)}
        running = bool(np.isnan(loss))
        study.add_trial(create_trial(params=params, distributions=search, value=None if running else float(loss),
                                     state=TrialState.RUNNING if running else TrialState.COMPLETE))
    current = study._storage.get_trial(study._storage.create_new_trial(study._study_id))
    for s in range(12):
        expected = TPESampler(multivariate=True, constant_liar=True, seed=s)._sample(study, current, search)
        assert model.ask(rows, losses, np.random.RandomState(s)) == expected, s


def _losses(rng: np.random.Generator, n: int) -> np.ndarray:
    losses = rng.normal(size=n)
    losses[rng.random(n) < 0.1] = np.nan  # running trials: the constant liar
    losses[3] = losses[5]  # a tie in the ranking
    return losses


@pytest.mark.parametrize("seed,n", [(0, 15), (1, 60), (2, 400), (3, 40), (4, 40), (5, 120)])
def test_ask_proposes_what_optunas_sampler_proposes_on_every_kind_of_space(seed, n):
    rng = np.random.default_rng(200 + seed)
    search = _random_search_space(rng, full=seed < 3)
    _assert_asks_match_optunas_sampler(search, _random_rows(rng, search, n), _losses(rng, n))


def test_ask_proposes_what_optunas_sampler_proposes_on_a_categorical_space():
    """Candidates repeat (ties in the score): the first of equal best wins, as in optuna."""
    from optuna.distributions import CategoricalDistribution

    rng = np.random.default_rng(9)
    search = {"a": CategoricalDistribution(["x", "y", "z"]), "b": CategoricalDistribution([True, False])}
    _assert_asks_match_optunas_sampler(search, _random_rows(rng, search, 50), _losses(rng, 50))


def test_unique_pairs_groups_equal_pairs_even_when_their_keys_collide():
    from services.suggestion.algorithms.optuna_tpe import _unique_pairs

    rng = np.random.default_rng(5)
    a = rng.integers(0, 6, 500).astype(float)
    b = rng.choice([0.11, 1.0, 2.0, 7.5], 500)
    a_u, b_u, inv = _unique_pairs(a, b)
    assert np.array_equal(a_u[inv], a) and np.array_equal(b_u[inv], b)
    assert len(set(zip(a_u, b_u, strict=True))) == len(a_u) == len(set(zip(a, b, strict=True)))
    # two different pairs whose 64-bit keys are equal: still two groups
    mult = (0x9E3779B97F4A7C15 - (1 << 64)) % (1 << 64)
    bits = np.array([0x3FF0000000000000, 0x3FF0000000000001,
                     (0x3FF0000000000000 + mult) % (1 << 64), 0x3FF0000000000000], dtype=np.uint64)
    a2, b2 = bits[:2].view(np.float64), bits[2:].view(np.float64)  # (1, x) and (1 + ulp, 1)
    a_u, b_u, inv = _unique_pairs(a2, b2)
    assert len(a_u) == 2 and np.array_equal(a_u[inv], a2) and np.array_equal(b_u[inv], b2)


# ---- per-call random state: deterministic, and independent across random_state ----


def _proposals(random_state: int, n: int = 12) -> list[tuple]:
    from services.suggestion.algorithms.multivariate_tpe import MultivariateTPE
    from sextant.conformance import builders as b

    exp = b.experiment(f"seeds-{random_state}", "multivariate-tpe", b.mixed_space(),
                       settings={"random_state": str(random_state)})
    algo, trials, out = MultivariateTPE(), [], []
    for i in range(n):
        point = algo.suggest(exp, trials, 1).assignments[0]
        out.append(tuple(sorted(point.items())))
        trials.append(b.trial(f"t{i}", point, value=b.synthetic_value(point)))
    return out


def test_neighbouring_random_states_share_no_proposals():
    """A call's random state is derived from (random_state, number of trials) by SeedSequence.
    A seed such as random_state + len(trials) would make the experiment with random_state s + 1
    replay the one with s a call later (the start-up points shifted by one), so runs over
    consecutive seeds, as the quality bench makes, would not be independent."""
    runs = {s: _proposals(s) for s in range(4)}
    assert _proposals(2) == runs[2]  # same random_state, same request: same answers
    for s in range(3):
        assert not set(runs[s]) & set(runs[s + 1]), s


# ---- Sextant's sharpening of the "below" density, and the start-up design ----


def test_sharpened_below_mixture_weights_the_best_trials_most_and_narrows_their_kernels():
    from services.suggestion.algorithms.optuna_tpe import OptunaTPE, Sharpening

    rng = np.random.default_rng(11)
    search = _random_search_space(rng)
    rows = _random_rows(rng, search, 5)
    model = OptunaTPE(search, n_startup_trials=10, n_ei_candidates=24, sharpen=Sharpening(3, 0.3))
    kernels = np.array([2, 4, 7, 9, 12])  # trial indices of the mixture's rows, sorted
    ranked = np.array([9, 2, 12, 7, 4])  # the same trials, best first
    plain = model.mixture(rows)
    sharp = model._sharpened(plain, kernels, ranked)
    expected = np.array([4**3, 1**3, 2**3, 5**3, 3**3, 1.0])  # 9 is best (5**3), the prior 1
    np.testing.assert_allclose(sharp.weights, expected / expected.sum())
    for d_plain, d_sharp in zip(plain.distributions, sharp.distributions, strict=True):
        if hasattr(d_plain, "sigma"):
            np.testing.assert_allclose(d_sharp.sigma[:-1], 0.3 * d_plain.sigma[:-1])
            assert d_sharp.sigma[-1] == d_plain.sigma[-1]  # the prior stays as wide as the range
            np.testing.assert_array_equal(d_sharp.mu, d_plain.mu)
        else:
            np.testing.assert_array_equal(d_sharp.weights, d_plain.weights)


def _distance_to_best_of_proposals(sharpen) -> float:
    """Median distance of 40 proposals to the best trial, over 5 histories of 40 trials whose
    loss is the distance to a point of a 4-d cube."""
    from optuna.distributions import FloatDistribution

    from services.suggestion.algorithms.optuna_tpe import OptunaTPE

    search = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(4)}
    model = OptunaTPE(search, n_startup_trials=10, n_ei_candidates=24, sharpen=sharpen)
    distances = []
    for history in range(5):
        rng = np.random.default_rng(history)
        rows = rng.uniform(size=(40, 4))
        losses = np.linalg.norm(rows - np.array([0.3, 0.7, 0.2, 0.6]), axis=1)
        proposals = np.array([list(model.ask(rows, losses, np.random.RandomState(s)).values()) for s in range(40)])
        distances.extend(np.linalg.norm(proposals - rows[np.argmin(losses)], axis=1))
    return float(np.median(distances))


def test_sharpening_proposes_closer_to_the_best_trial_than_optunas_tpe():
    from services.suggestion.algorithms.optuna_tpe import OPTUNA, SHARPENING

    assert _distance_to_best_of_proposals(SHARPENING) < 0.5 * _distance_to_best_of_proposals(OPTUNA)


def _branin_regret(sharpen, seed: int, budget: int = 40) -> float:
    import math

    from optuna.distributions import FloatDistribution

    from services.suggestion.algorithms.optuna_tpe import OptunaTPE

    def branin(x1, x2):
        b_, c = 5.1 / (4 * math.pi**2), 5 / math.pi
        return (x2 - b_ * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10

    model = OptunaTPE({"x1": FloatDistribution(-5.0, 10.0), "x2": FloatDistribution(0.0, 15.0)},
                      n_startup_trials=10, n_ei_candidates=24, sharpen=sharpen)
    rng, rows, losses = np.random.RandomState(seed), np.empty((0, 2)), np.empty(0)
    for _ in range(budget):
        p = model.ask(rows, losses, rng)
        rows = np.vstack([rows, [p["x1"], p["x2"]]])
        losses = np.append(losses, branin(p["x1"], p["x2"]))
    return float(losses.min() - 0.397887)


def test_sharpened_tpe_finds_better_points_than_optunas_on_branin():
    """The reason for the sharpening, in miniature (the full comparison is the quality bench):
    the same start-up draws, then 30 TPE steps, over 7 seeds."""
    from services.suggestion.algorithms.optuna_tpe import OPTUNA, SHARPENING

    sharp = np.median([_branin_regret(SHARPENING, s) for s in range(7)])
    plain = np.median([_branin_regret(OPTUNA, s) for s in range(7)])
    assert sharp < 0.5 * plain, (sharp, plain)


def _startup_proposals(name: str, settings: dict, n: int = 8) -> np.ndarray:
    from services.suggestion.algorithms.multivariate_tpe import MultivariateTPE
    from sextant.conformance import builders as b

    exp = b.experiment(name, "multivariate-tpe",
                       [b.parameter("a", "double", min="0", max="1"), b.parameter("b", "double", min="0", max="1")],
                       settings={"n_startup_trials": str(n), **settings})
    algo, trials, points = MultivariateTPE(), [], []
    for i in range(n):
        point = algo.suggest(exp, trials, 1).assignments[0]
        trials.append(b.trial(f"t{i}", point, value=float(point["a"])))
        points.append([float(point["a"]), float(point["b"])])
    return np.array(points)


def test_startup_trials_are_a_scrambled_sobol_design_that_covers_each_axis_evenly():
    """8 start-up points of a base-2 Sobol design put exactly one point in each eighth of every
    axis (8 uniform draws do that with probability 8!/8**8, about 0.2 %)."""
    for name, settings in [("seeded", {"random_state": "5"}), ("unseeded", {})]:
        points = _startup_proposals(name, settings)
        for axis in range(2):
            assert sorted(np.floor(points[:, axis] * 8).astype(int)) == list(range(8)), (name, axis)
    np.testing.assert_array_equal(_startup_proposals("seeded", {"random_state": "5"}),
                                  _startup_proposals("other-name", {"random_state": "5"}))
    # without random_state, runs differ (even of an experiment re-created under the same name)
    assert not np.array_equal(_startup_proposals("x", {}), _startup_proposals("x", {}))


def test_a_huge_n_startup_trials_keeps_the_design_small():
    from services.suggestion.algorithms.multivariate_tpe import MAX_DESIGN, MultivariateTPE
    from sextant.conformance import builders as b

    exp = b.experiment("huge", "multivariate-tpe", b.mixed_space(), settings={"n_startup_trials": str(10**9)})
    algo, trials = MultivariateTPE(), []
    for i in range(3):
        point = algo.suggest(exp, trials, 1).assignments[0]
        trials.append(b.trial(f"t{i}", point, value=1.0))
    assert len(algo._design) == MAX_DESIGN
