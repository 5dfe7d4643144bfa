"""Fixtures shared by every test directory (keep this small; each helper may add its own)."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

# The stack's data directory defaults to a per-user one (~/.local/state/sextant): no test may
# touch the real one. Tests and every process they start (stacks, CLIs, SDK scripts) get a
# throwaway directory unless a test chooses its own.
_SCRATCH = tempfile.mkdtemp(prefix="sextant-tests-")
os.environ.setdefault("SEXTANT_HOME", os.path.join(_SCRATCH, "home"))
os.environ["XDG_STATE_HOME"] = os.path.join(_SCRATCH, "state")

TEST_DATA = Path(__file__).resolve().parent / "data"
_EXPERIMENTS = TEST_DATA / "experiments" / "valid"


@pytest.fixture
def experiment_doc() -> dict[str, Any]:
    """A fresh, valid v1beta1 Experiment document (random search, batch Job template)."""
    return copy.deepcopy(yaml.safe_load((_EXPERIMENTS / "random-basic.yaml").read_text()))


@pytest.fixture
def v1alpha3_experiment_doc() -> dict[str, Any]:
    """The seed's v1alpha3 ``random-example`` (goTemplate.rawTemplate, three parameters)."""
    return copy.deepcopy(yaml.safe_load((_EXPERIMENTS / "v1alpha3-random-example.yaml").read_text()))
