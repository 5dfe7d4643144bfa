"""`apply`, `run` and the SDK warn at create time when this machine's stack will not run a trial
in the image its template names: the stack runs trials as local processes, or it runs them on
Docker (``docker``/``auto``) and no Docker engine answers. The engine is asked with the Docker
SDK, here of a socket nobody listens on and of a small HTTP server answering Docker's ping."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sextant.cli.context import Context
from sextant.cli.files import warn_unused_images
from sextant.image_use import stack_unused_image_reason, trial_images, unused_image_reason
from sextant.stack import StackPaths


def _experiment(*containers: dict[str, str]) -> dict[str, object]:
    job = {"kind": "Job", "spec": {"template": {"spec": {"containers": list(containers)}}}}
    return {"metadata": {"name": "mnist"}, "spec": {"trialTemplate": {"trialSpec": job}}}


def _stack(tmp_path, runtime, docker_host=None) -> StackPaths:
    """A data directory whose stack.json says how its (running) stack runs trials."""
    paths = StackPaths(tmp_path)
    paths.state.parent.mkdir(parents=True, exist_ok=True)
    paths.state.write_text(json.dumps({"runtime": runtime, "docker_host": docker_host}))
    return paths


@pytest.fixture()
def engine() -> Iterator[tuple[str, list[str]]]:
    """A loopback server answering the calls the Docker SDK makes to ping an engine; yields its
    DOCKER_HOST and the paths it was asked for."""
    asked: list[str] = []

    class Engine(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked.append(self.path)
            body = b"OK" if self.path.endswith("/_ping") else json.dumps({"ApiVersion": "1.44"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_images_are_found_in_any_pod_template():
    pytorch = {"kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {
        "Master": {"template": {"spec": {"containers": [{"name": "pytorch", "image": "a/train:1"}]}}},
        "Worker": {"template": {"spec": {"containers": [{"name": "pytorch", "image": "a/train:1"},
                                                        {"name": "side", "image": "b/proxy"}]}}}}}}
    assert trial_images({"spec": {"trialTemplate": {"trialSpec": pytorch}}}) == ["a/train:1", "b/proxy"]
    assert trial_images(_experiment({"name": "c", "command": "python"})) == []
    assert trial_images({"spec": {}}) == []


def test_the_warning_names_the_experiment_the_image_and_the_fix(capsys, tmp_path):
    ctx = Context(data_dir=tmp_path)
    _stack(tmp_path, "local")
    warn_unused_images(_experiment({"name": "c", "image": "docker.io/kubeflowkatib/pytorch-mnist"}),
                       ctx.unused_image_reason)
    err = capsys.readouterr().err
    assert err.startswith("Warning: experiment mnist: its trials name the image docker.io/kubeflowkatib/pytorch-mnist, "
                          "but this stack runs trials as local processes")
    assert "--runtime docker" in err


@pytest.mark.parametrize(("runtime", "outcome"), [
    ("docker", "so they fail"),
    ("auto", "so they run as local processes on this machine, without the image"),
])
def test_a_docker_stack_without_an_engine_warns_what_happens_to_the_trials(capsys, tmp_path, runtime, outcome):
    _stack(tmp_path / "data", runtime, docker_host=f"unix://{tmp_path}/no-engine.sock")
    warn_unused_images(_experiment({"name": "c", "image": "train:1"}), Context(data_dir=tmp_path / "data").unused_image_reason)
    err = capsys.readouterr().err
    assert err.startswith(f"Warning: experiment mnist: its trials name the image train:1, but this stack runs trials "
                          f"on Docker (runtime {runtime}) and no Docker engine answers (")
    assert f"{outcome}; start the engine" in err


def test_no_warning_when_the_stacks_engine_answers(tmp_path, engine):
    docker_host, asked = engine
    for runtime in ("docker", "auto"):
        assert stack_unused_image_reason(_stack(tmp_path, runtime, docker_host)) == ""
    assert any(path.endswith("/_ping") for path in asked)  # the engine was asked, at the stack's DOCKER_HOST


def test_no_warning_where_the_image_is_used_or_unknown(capsys, tmp_path):
    def not_asked() -> str:
        raise AssertionError("the engine is asked only for docker/auto")

    for runtime in ("kubernetes", None):  # None: a remote server, which decides for itself
        assert unused_image_reason(runtime, not_asked) == ""
    assert Context(data_dir=tmp_path, server="127.0.0.1:1").unused_image_reason() == ""
    assert stack_unused_image_reason(StackPaths(tmp_path / "no-stack")) == ""
    warn_unused_images(_experiment({"name": "c"}), not_asked)  # no image: nothing to ask or say
    assert capsys.readouterr().err == ""
