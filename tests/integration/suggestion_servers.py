"""Suggestion services for tests: in-process on a free port, or as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import grpc

from services.suggestion.algorithms.servicer import HEALTH_NAMES, SuggestionServicer, add_to_server
from sextant.api import api_pb2, api_pb2_grpc
from sextant.config import ServerSettings
from sextant.server import GrpcServer

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ["random", "grid", "tpe", "multivariate-tpe", "cmaes", "sobol", "nsga2", "mo-tpe"]


@contextmanager
def in_process(servicer: SuggestionServicer | None = None):
    """(address, stub, server) of a servicer on 127.0.0.1:<free port>."""
    server = GrpcServer(ServerSettings(port=0, max_workers=8, grace_seconds=0), name="test-suggestion",
                        health_names=HEALTH_NAMES)
    add_to_server(servicer or SuggestionServicer(), server)
    port = server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield f"127.0.0.1:{port}", api_pb2_grpc.SuggestionStub(channel), server
    finally:
        channel.close()
        server.stop()


@contextmanager
def subprocess_server(*args: str):
    """``python -m services.suggestion.algorithms --port 0 ...`` as a real process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "services.suggestion.algorithms", "--port", "0", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()  # "listening on host:port"
        if not line.startswith("listening on "):
            raise RuntimeError(f"suggestion service did not start: {line!r}")
        address = line.split()[-1]
        channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(channel).result(timeout=30)
        yield address, api_pb2_grpc.SuggestionStub(channel), proc
        channel.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(stub, exp, trials=(), count=1, timeout=60.0) -> api_pb2.GetSuggestionsReply:
    return stub.GetSuggestions(api_pb2.GetSuggestionsRequest(
        experiment=exp, trials=list(trials), current_request_number=count,
        total_request_number=len(trials) + count), timeout=timeout)


def validate(stub, exp) -> None:
    stub.ValidateAlgorithmSettings(api_pb2.ValidateAlgorithmSettingsRequest(experiment=exp), timeout=60)


def wait_for(predicate, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError
        time.sleep(0.05)
