"""pytest plugin: ``--target`` / ``--algorithm`` options and a ``conformance_target`` fixture.

    pytest -p sextant.conformance.plugin --pyargs sextant.conformance.suite \
        --target 127.0.0.1:6789 --algorithm my-algo [--conformance-setting k=v]
"""

from __future__ import annotations

import pytest

from .checks import Target
from .cli import _pairs


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sextant-conformance")
    group.addoption("--target", default=None, help="HOST:PORT of the Suggestion service to check")
    group.addoption("--algorithm", default=None, help="algorithm name to request")
    group.addoption("--conformance-setting", action="append", default=None, help="NAME=VALUE setting")
    group.addoption("--conformance-invalid-setting", action="append", default=None,
                    help="NAME=VALUE the service must reject")
    group.addoption("--conformance-token", default=None, help="bearer token")
    group.addoption("--conformance-multi-objective", action="store_true",
                    help="the service optimises the objectives sextant.io/objectives declares")


@pytest.fixture(scope="session")
def conformance_target(request: pytest.FixtureRequest) -> Target:
    cfg = request.config
    address, algorithm = cfg.getoption("--target"), cfg.getoption("--algorithm")
    if not address or not algorithm:
        pytest.skip("conformance suite needs --target HOST:PORT and --algorithm NAME")
    return Target(address, algorithm,
                  settings=_pairs(cfg.getoption("--conformance-setting"), "--conformance-setting"),
                  invalid_settings=_pairs(cfg.getoption("--conformance-invalid-setting"),
                                          "--conformance-invalid-setting"),
                  token=cfg.getoption("--conformance-token"),
                  multi_objective=cfg.getoption("--conformance-multi-objective"))
