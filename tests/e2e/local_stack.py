"""A real local stack (all four services) for the CLI, SDK and example tests, started once per
pytest worker with `sextant up --detach` in a temporary data directory and stopped at the end.

Tests that use it carry ``xdist_group("sextant-local-stack")`` so they land on one worker and
share it instead of starting a stack each (the machine has two cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GROUP = "sextant-local-stack"


def cli_command(data_dir: Path, *args: str) -> list[str]:
    """The `sextant` command line against the stack in `data_dir`."""
    return [sys.executable, "-m", "sextant.cli.main", "--data-dir", str(data_dir), *args]


def cli_env(extra: Mapping[str, str] | None = None, drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment for a CLI run, without SEXTANT_STACK_MODULES (it would swap the
    services for other modules: these tests want the real ones) or the names in `drop`."""
    removed = {"SEXTANT_STACK_MODULES", *drop}
    return {**{k: v for k, v in os.environ.items() if k not in removed}, **(extra or {})}


def run_cli(data_dir: Path, *args: str, input: str | None = None, timeout: float = 300,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs the CLI to completion; `env` defaults to cli_env()."""
    return subprocess.run(cli_command(data_dir, *args), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          input=input, env=dict(env) if env is not None else cli_env())


@dataclass
class LocalStack:
    data_dir: Path

    def sextant(self, *args: str, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        """Runs the CLI against this stack."""
        return run_cli(self.data_dir, *args, input=input, timeout=timeout)


@pytest.fixture(scope="session", name="local_stack")
def local_stack_fixture(tmp_path_factory) -> LocalStack:
    stack = LocalStack(tmp_path_factory.mktemp("sextant-stack"))
    up = stack.sextant("up", "--detach", "--port", "0", timeout=120)
    assert up.returncode == 0, f"sextant up failed:\n{up.stdout}\n{up.stderr}"
    yield stack
    stack.sextant("down", timeout=120)
