"""hyperband's state parsing and bracket arithmetic (Katib's formulas)."""

from __future__ import annotations

import pytest

from services.suggestion.algorithms.base import InvalidSettings
from services.suggestion.algorithms.hyperband import STATE_KEYS, parse_state, s_max_of


@pytest.mark.parametrize("r_l,eta,s_max", [(9, 3, 2), (27, 3, 3), (81, 3, 4), (8, 2, 3), (2, 3, 0), (0.5, 3, 0)])
def test_s_max(r_l, eta, s_max):
    assert s_max_of(r_l, eta) == s_max


def test_fresh_state_starts_the_largest_bracket():
    state = parse_state({"r_l": "9", "resource_name": "epochs"})
    assert (state.eta, state.s_max, state.b_l, state.current_s, state.current_i) == (3, 2, 27.0, 2, 0)
    assert state.n == 9 and state.r == 1.0 and state.evaluating_trials == 0


def test_eta_at_most_zero_means_three():
    assert parse_state({"r_l": "9", "resource_name": "e", "eta": "-1"}).eta == 3
    assert parse_state({"r_l": "16", "resource_name": "e", "eta": "2.7"}).eta == 2


def test_settings_round_trip():
    state = parse_state({"r_l": "27", "resource_name": "epochs"}).bracket(1)
    settings = state.settings()
    assert set(settings) == set(STATE_KEYS)
    assert parse_state(settings) == state
    assert state.n == 6 and state.r == 9.0  # ceil(int(108/27/2) * 3), 27 * 3**-1


def test_bad_state_is_invalid_settings():
    with pytest.raises(InvalidSettings):
        parse_state({"r_l": "9", "resource_name": "e", "current_s": "1", "current_i": "x"})
