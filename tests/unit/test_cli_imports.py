"""The CLI's start-up stays cheap: commands load only what they use (bench/cli_startup.py
measures the CPU time; this holds the import graph that keeps it low)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
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


@pytest.mark.parametrize("argv", [
    ["get", "experiments"],
    ["apply", "-f", "examples/v1beta1/random.yaml"],
])
def test_a_refused_connection_is_reported_before_grpc_loads(tmp_path, argv):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, modules = loaded(tmp_path, "--server", f"127.0.0.1:{port}", *argv)
    assert code == 1
    heavy = {m for m in HEAVY if m in modules} - {"rich.console", "yaml"}
    assert not heavy, f"sextant {' '.join(argv)} imported {sorted(heavy)} before finding no server"


@pytest.fixture(scope="module")
def db_manager_address(tmp_path_factory) -> Iterator[str]:
    from sextant.cli import main
    from tests.integration.bad_input_support import sqlite_db_manager

    with sqlite_db_manager(tmp_path_factory.mktemp("db")) as running:
        code = main.main(["--data-dir", str(tmp_path_factory.mktemp("none")), "--server", running.address,
                          "apply", "-f", str(ROOT / "examples/v1beta1/random.yaml")])
        assert code == 0
        yield running.address


@pytest.mark.parametrize("argv, allowed", [
    (["apply", "-f", "examples/v1beta1/random.yaml"], ("yaml",)),
    (["get", "experiments"], ()),
    (["get", "experiment", "random", "-o", "yaml"], ("yaml",)),
    (["describe", "experiment", "random"], ()),
])
def test_commands_talking_to_a_server_handle_documents_not_models(tmp_path, db_manager_address, argv, allowed):
    """Talking to the DB manager costs gRPC and protobuf, never pydantic and the resource models
    (the server admits what ``apply`` sends)."""
    code, modules = loaded(tmp_path, "--server", db_manager_address, *argv)
    assert code == 0
    assert {"grpc", "google.protobuf"} <= modules  # it did talk to the server
    heavy = {m for m in HEAVY if m in modules} - {"grpc", "google.protobuf", "rich.console", *allowed}
    assert not heavy, f"sextant {' '.join(argv)} imported {sorted(heavy)}"


@pytest.mark.parametrize("argv", [
    # random exists and never finishes (no controllers here): run follows it until its timeout
    ["run", "-f", "examples/v1beta1/random.yaml", "--timeout", "1s"],
    ["delete", "experiment", "no-such-experiment"],
])
def test_run_and_delete_leave_admission_to_the_server(tmp_path, db_manager_address, argv):
    """``run`` against a running server sends the document as ``apply`` does (the server admits
    it), so it loads no models; only a run that must start the stack admits the file first."""
    code, modules = loaded(tmp_path, "--server", db_manager_address, *argv)
    assert code == 1
    assert {"grpc", "google.protobuf"} <= modules
    heavy = {m for m in HEAVY if m in modules} - {"grpc", "google.protobuf", "rich.console", "yaml"}
    assert not heavy, f"sextant {' '.join(argv)} imported {sorted(heavy)}"


def test_status_checks_the_api_server_without_loading_cryptography(tmp_path):
    """``status`` needs only the CA's path to check the API server; making certificates (the
    cryptography package, ~0.03 s of CPU) is for ``sextant up``."""
    from sextant.tls import ensure_tls

    ensure_tls(tmp_path / "tls")  # as `sextant up` leaves it: the CA the check verifies against
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = ("import sys\nfrom pathlib import Path\nfrom sextant.stack import StackPaths, https_health\n"
             f"print(https_health('127.0.0.1:{port}', StackPaths(Path(sys.argv[1]))), 'cryptography' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, check=True).stdout.split()
    assert out == ["DOWN", "False"]
