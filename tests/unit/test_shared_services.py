"""Where a Suggestion's algorithm runs, and when an unused shared service is stopped (no
processes: the integration tests in test_suggestion_controller.py run real ones)."""

from __future__ import annotations

from services.suggestion.controller.shared_services import Placement, ServiceMode
from sextant.resources.models import Suggestion
from sextant.runtime.base import OwnedService


def suggestion(name: str = "exp", namespace: str = "team", algorithm: str = "tpe", early: str = "",
               resume: str = "Never") -> Suggestion:
    spec = {"algorithm": {"algorithmName": algorithm}, "resumePolicy": resume}
    if early:
        spec["earlyStopping"] = {"algorithmName": early}
    return Suggestion.model_validate({"metadata": {"name": name, "namespace": namespace}, "spec": spec})


def test_shared_mode_names_one_service_per_algorithm_and_early_stopping_pair():
    shared = Placement(ServiceMode.SHARED)
    assert shared.service_of(suggestion()) == ("sextant-system", "tpe")
    assert shared.service_of(suggestion(name="other", namespace="b")) == ("sextant-system", "tpe")
    assert shared.service_of(suggestion(early="medianstop")) == ("sextant-system", "tpe-medianstop")
    # FromVolume keeps its own service (its state directory is its own), as does per-experiment mode.
    assert shared.service_of(suggestion(resume="FromVolume")) == ("team", "exp-tpe")
    assert not shared.is_shared(suggestion(resume="FromVolume"))
    assert Placement(ServiceMode.PER_EXPERIMENT).service_of(suggestion()) == ("team", "exp-tpe")


def test_an_unused_shared_service_is_idle_after_the_period_counted_from_last_use_or_first_sight():
    now = [100.0]
    placement = Placement(ServiceMode.SHARED, idle_seconds=10, clock=lambda: now[0])
    owned = [OwnedService("sextant-system", "tpe", ""), OwnedService("sextant-system", "random", ""),
             OwnedService("team", "exp-grid", "exp")]  # per-experiment services are never idle-stopped
    assert placement.idle_services(owned, in_use=["tpe"]) == []  # first sight of random: counting starts
    now[0] += 9
    assert placement.idle_services(owned, in_use=["tpe"]) == []
    now[0] += 1
    assert placement.idle_services(owned, in_use=["tpe"]) == ["random"]
    placement.used("random")  # a pass used it just now
    assert not placement.still_idle("random")
    now[0] += 30
    assert sorted(placement.idle_services(owned, in_use=[])) == ["random", "tpe"]

