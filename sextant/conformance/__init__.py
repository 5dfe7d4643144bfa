"""Conformance kit: prove a Suggestion service honours Katib's contract.

    python -m sextant.conformance --target HOST:PORT --algorithm NAME
    pytest -p sextant.conformance.plugin --pyargs sextant.conformance.suite --target HOST:PORT --algorithm NAME

or from Python: ``run_checks(Target("host:port", "tpe"))`` -> list of ``CheckResult``.
"""

from .checks import CHECKS, CheckResult, Target, run_check, run_checks

__all__ = ["CHECKS", "CheckResult", "Target", "run_check", "run_checks"]
