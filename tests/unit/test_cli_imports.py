"""The CLI's start-up stays cheap: commands load only what they use (bench/cli_startup.py
measures the CPU time; this holds the import graph that keeps it low)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pydantic.main", "grpc", "google.protobuf", "yaml", "rich.console", "cryptography", "sextant.resources.models")

PROBE = """
import json, sys
from sextant.cli import main
try:
    code = main.main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded(tmp_path, *argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, "--data-dir", str(tmp_path / "none"), *argv],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


@pytest.mark.parametrize("argv, allowed", [
    (["--help"], ()),
    (["logs", "some-trial"], ("rich.console",)),  # the error message is printed with rich
    (["validate", "-f", "examples/v1beta1/random.yaml"], ("pydantic.main", "yaml", "sextant.resources.models")),
])
def test_commands_load_only_what_they_use(tmp_path, argv, allowed):
    code, modules = loaded(tmp_path, *argv)
    assert code in (0, 1), code
    heavy = {m for m in HEAVY if m in modules} - set(allowed)
    assert not heavy, f"sextant {' '.join(argv)} imported {sorted(heavy)}"
