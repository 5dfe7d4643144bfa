"""A short chaos run in the default suite: three experiments on a real local stack over
PostgreSQL (through a proxy the run cuts), two random kill -9s, one database outage and two
rounds of hostile requests, then exact accounting and a memory bound for every service (see
``tests/e2e/chaos.py``; ``bench/chaos.py`` runs the long version)."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.chaos import RSS_BOUND_MB, ChaosPlan, run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("chaos")]


def test_kills_outage_and_hostile_requests_lose_and_duplicate_nothing(tmp_path):
    seed = int(os.environ.get("SEXTANT_CHAOS_SEED", "21"))
    report = run_chaos(ChaosPlan(seed=seed), tmp_path)
    print(json.dumps({"seed": seed, "actions": report.actions, "hostile": report.hostile,
                      "peak_rss_mb": {k: round(v) for k, v in report.peak_rss_mb.items()},
                      "wall_s": report.wall_s}))
    assert report.trials == 3 * 8 and report.succeeded + report.failed == report.trials
    assert len(report.actions) == 5 and report.hostile
    assert all("(none found)" not in detail for _, _, detail in report.actions), report.actions
    assert "db-manager" in report.peak_rss_mb and max(report.peak_rss_mb.values()) <= RSS_BOUND_MB
