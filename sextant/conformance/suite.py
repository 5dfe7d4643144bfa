"""The conformance checks as pytest tests (needs the ``sextant.conformance.plugin`` plugin).

Import ``test_conformance`` into your own test module and provide a ``conformance_target``
fixture to run the same checks from your suite.
"""

from __future__ import annotations

import pytest

from .checks import CHECKS, Target, run_check


@pytest.mark.parametrize("check", list(CHECKS))
def test_conformance(conformance_target: Target, check: str) -> None:
    result = run_check(conformance_target, check)
    if result.skipped:
        pytest.skip(result.detail)
    assert result.passed, f"{check}: {result.detail}"
