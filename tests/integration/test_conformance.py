"""The conformance kit: every built-in algorithm passes it, a broken service fails it, and the
CLI and the pytest suite work against a real process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sextant.algorithm_registry import Registry
from sextant.api import api_pb2, api_pb2_grpc
from sextant.config import ServerSettings
from sextant.conformance import Target, run_check, run_checks
from sextant.server import GrpcServer

from .suggestion_servers import BUILTIN, ROOT, in_process, subprocess_server


@pytest.fixture(scope="module")
def address():
    with in_process() as (addr, _stub, _server):
        yield addr


@pytest.mark.parametrize("algorithm", BUILTIN)
def test_every_builtin_algorithm_passes(address, algorithm):
    entry = Registry.default().algorithm(algorithm)
    assert entry is not None
    # the registry says which services optimise declared extra objectives: they get that check too
    results = run_checks(Target(address, algorithm, multi_objective=entry.multi_objective))
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert failed == []
    assert {r.name for r in results if not r.skipped} >= {"health", "validate_invalid", "request_counts",
                                                           "feasible_values", "many_experiments",
                                                           "fresh_history", "pending_no_repeat"}
    multi = next(r for r in results if r.name == "multi_objective")
    assert multi.skipped == (algorithm not in ("nsga2", "mo-tpe"))


def test_a_single_objective_service_fails_the_multi_objective_check(address):
    result = run_check(Target(address, "random", multi_objective=True), "multi_objective")
    assert not result.passed
    assert "unknown setting sextant.io/objectives" in result.detail


class _Sloppy(api_pb2_grpc.SuggestionServicer):
    """A Katib-incompatible service: one assignment too many, ints as floats, accepts anything."""

    def GetSuggestions(self, request, context):
        reply = api_pb2.GetSuggestionsReply()
        for _ in range(request.current_request_number + 1):
            pa = reply.parameter_assignments.add()
            for p in request.experiment.spec.parameter_specs.parameters:
                value = p.feasible_space.list[0] if p.feasible_space.list else p.feasible_space.min
                if p.parameter_type == api_pb2.INT:
                    value = f"{float(value)}"
                pa.assignments.add(name=p.name, value=value)
        return reply

    def ValidateAlgorithmSettings(self, request, context):
        return api_pb2.ValidateAlgorithmSettingsReply()


def test_a_broken_service_fails_the_right_checks():
    server = GrpcServer(ServerSettings(port=0, grace_seconds=0), name="sloppy", health_names=("",))
    api_pb2_grpc.add_SuggestionServicer_to_server(_Sloppy(), server.grpc)
    port = server.start()
    try:
        results = {r.name: r for r in run_checks(Target(f"127.0.0.1:{port}", "random"))}
    finally:
        server.stop()
    assert not results["health"].passed  # only "" is SERVING, not manager.v1beta1.Suggestion
    assert not results["validate_invalid"].passed
    assert not results["request_counts"].passed and "asked 1, got 2" in results["request_counts"].detail
    assert not results["many_experiments"].passed
    assert results["validate_valid"].passed


def test_cli_and_pytest_suite_against_a_process():
    with subprocess_server("--algorithm", "random") as (address, _stub, _proc):
        cli = subprocess.run([sys.executable, "-m", "sextant.conformance", "--target", address,
                              "--algorithm", "random"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "9/9 checks passed for random" in cli.stdout
        wrong = subprocess.run([sys.executable, "-m", "sextant.conformance", "--target", address,
                                "--algorithm", "tpe"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert wrong.returncode == 1 and "FAIL" in wrong.stdout  # the process serves only random
        suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "sextant.conformance.plugin",
                                "--pyargs", "sextant.conformance.suite", "--target", address,
                                "--algorithm", "random", "-p", "no:cacheprovider", "-o", "addopts="],
                               cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert suite.returncode == 0, suite.stdout[-2000:]
        assert "8 passed" in suite.stdout


def test_cli_bad_usage_exits_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sextant.conformance", "--target", "127.0.0.1:1",
                          "--algorithm", "x", "--setting", "novalue"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "NAME=VALUE" in out.stderr
