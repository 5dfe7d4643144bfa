"""Sextant's containers, built and run for real (``make test-containers``).

Builds the local base images (deploy/docker/build-base-images: Debian bookworm with its python3
and its mariadb-server, since no registry is reachable here), fills the wheelhouse on the host
(deploy/docker/fill-wheelhouse: builds cannot reach PyPI here) and builds the Sextant image
from them. Then brings up docker-compose.yml with docker-compose.host-network.yml (MariaDB, the
DB manager and the three controllers, all on 127.0.0.1 ports picked here) and drives it with
the ``sextant`` CLI from the host: the seed example runs to Succeeded; a second run of it has
its trial-controller container killed mid-run and restarted, and must still end with exactly
maxTrialCount trials. Everything is torn down (containers and volumes) at the end.

The base images are kept between runs (their script checks they are current), the wheelhouse
too, and the engine's layer cache makes rebuilding the Sextant image quick, so only the first
run is slow (minutes).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml

pytestmark = [pytest.mark.containers, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "deploy" / "docker"
IMAGE = "sextant/sextant:latest"  # the name docker-compose.yml runs
PROJECT = "sextant-containers-test"
SEED = ROOT / "examples" / "v1alpha3" / "random-example.yaml"
SEXTANT_SERVICES = ["db_manager", "experiment_controller", "suggestion_controller", "trial_controller"]
SERVICES = ["mariadb", *SEXTANT_SERVICES]
COMPILERS = ["cc", "gcc", "c++", "g++", "clang", "tcc", "x86_64-linux-gnu-gcc"]


def run(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None, input: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
                            input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports free now (held open together, so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin exists, else Debian's `docker-compose` (v1)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("NO docker compose: neither the `docker compose` plugin nor docker-compose is installed")


def inspect(target: str, template: str) -> str:
    return run(["docker", "inspect", "-f", template, target], timeout=60).stdout.strip()


# --- the images ------------------------------------------------------------------------------

@dataclass
class Images:
    base: str
    mariadb: str
    build_seconds: float


@pytest.fixture(scope="module")
def images(docker_engine) -> Images:
    names = run([str(DOCKER_DIR / "build-base-images"), "--print-names"], timeout=30).stdout.split()
    run([str(DOCKER_DIR / "build-base-images")], timeout=1800)
    run([str(DOCKER_DIR / "fill-wheelhouse")], timeout=1800, env={**os.environ, "PYTHON": sys.executable})
    started = time.monotonic()
    # The classic builder: it honours --network host on every engine this runs on (BuildKit
    # needs the engine to allow it).
    run(["docker", "build", "--network", "host", "-f", str(DOCKER_DIR / "Dockerfile"),
         "--build-arg", f"BASE_IMAGE={names[0]}", "--build-arg", "WHEELS_ONLY=yes", "-t", IMAGE, "."],
        timeout=2400, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return Images(base=names[0], mariadb=names[1], build_seconds=time.monotonic() - started)


def test_image_runs_as_non_root_has_a_healthcheck_and_no_compiler(images):
    user = inspect(IMAGE, "{{.Config.User}}")
    assert user and user.split(":")[0] not in ("0", "root"), f"image user {user!r}"
    health = json.loads(inspect(IMAGE, "{{json .Config.Healthcheck}}"))
    assert health and health["Test"][0] in ("CMD", "CMD-SHELL"), health
    probe = ("import shutil, MySQLdb, os; "
             f"print(json.dumps({{'uid': os.getuid(), 'compilers': [c for c in {COMPILERS!r} if shutil.which(c)], "
             "'driver': MySQLdb.__name__}))")
    out = run(["docker", "run", "--rm", "--network", "none", IMAGE, "python", "-c", "import json; " + probe],
              timeout=120).stdout
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["uid"] != 0
    assert facts["compilers"] == [], f"compilers in the image: {facts['compilers']}"
    assert facts["driver"] == "MySQLdb"  # mysqlclient, the faster driver, compiled in the build stage
    # No compiler package either (a compiler binary under another name would come from one).
    packages = run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "dpkg-query", IMAGE,
                    "-W", "-f", "${Package}\\n"], timeout=120).stdout.split()
    assert not {"gcc", "cpp", "g++", "clang", "libc6-dev"} & {p.split(":")[0] for p in packages}
    # The MariaDB stand-in runs as the mysql user too, with the healthcheck.sh the compose file calls.
    assert inspect(images.mariadb, "{{.Config.User}}").split(":")[0] not in ("", "0", "root")
    print(f"\nsextant image: {int(inspect(IMAGE, '{{.Size}}')) / 1e6:.0f} MB, "
          f"docker build {images.build_seconds:.0f} s (layer cache as found)")


# --- the stack -------------------------------------------------------------------------------

@dataclass
class Stack:
    compose: list[str]
    env: dict[str, str]
    port: int
    mariadb_port: int
    token: str
    password: str

    def compose_run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        return run([*self.compose, *args], timeout=timeout, env=self.env, check=check)

    def container(self, service: str) -> str:
        ids = self.compose_run("ps", "-q", service, timeout=60).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return ids[0]

    def logs(self) -> str:
        return self.compose_run("logs", "--no-color", "--tail", "60", timeout=120, check=False).stdout[-12000:]

    def sextant(self, *args: str, input: str | None = None, timeout: float = 120,
                check: bool = True) -> subprocess.CompletedProcess:
        cli = Path(sys.executable).with_name("sextant")
        argv = [str(cli)] if cli.exists() else [sys.executable, "-m", "sextant.cli.main"]
        return run([*argv, "--server", f"127.0.0.1:{self.port}", "--token", self.token, *args], timeout=timeout,
                   input=input, check=check, env={k: v for k, v in os.environ.items() if k != "SEXTANT_TOKEN"})

    def get(self, *args: str) -> Any:
        return json.loads(self.sextant("get", *args, "-n", "kubeflow", "-o", "json").stdout)

    def trials(self, experiment: str) -> list[dict[str, Any]]:
        doc = self.get("trials", "-e", experiment)
        if doc.get("kind") == "List":
            return doc["items"]
        return [doc] if doc.get("kind") == "Trial" else []


def wait_healthy(stack: Stack, deadline_seconds: float = 300) -> None:
    deadline = time.monotonic() + deadline_seconds
    while True:
        states = {s: inspect(stack.container(s), "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}"
                                                 "{{end}}") for s in SERVICES}
        if all(state == "running/healthy" for state in states.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"services not healthy: {states}\n{stack.logs()}")
        time.sleep(2)


@pytest.fixture(scope="module")
def stack(images) -> Iterator[Stack]:
    port, mariadb_port = free_ports(2)
    env = {**os.environ,
           "SEXTANT_TOKEN": secrets.token_urlsafe(24),
           "MARIADB_ROOT_PASSWORD": secrets.token_urlsafe(18),
           "SEXTANT_PORT": str(port),
           "SEXTANT_MARIADB_PORT": str(mariadb_port),
           "SEXTANT_MARIADB_IMAGE": images.mariadb,
           "COMPOSE_PROJECT_NAME": PROJECT}
    compose = [*compose_command(), "-f", str(ROOT / "docker-compose.yml"),
               "-f", str(ROOT / "docker-compose.host-network.yml")]
    s = Stack(compose, env, port, mariadb_port, env["SEXTANT_TOKEN"], env["MARIADB_ROOT_PASSWORD"])
    s.compose_run("down", "-v", "--remove-orphans", timeout=300)  # what an interrupted run left
    try:
        s.compose_run("up", "-d", "--no-build", timeout=900)
        wait_healthy(s)
        yield s
    finally:
        s.compose_run("down", "-v", "--remove-orphans", "--timeout", "10", timeout=600, check=False)


def test_every_container_runs_as_non_root_on_loopback(stack):
    for service in SERVICES:
        container = stack.container(service)
        assert inspect(container, "{{.HostConfig.NetworkMode}}") == "host", service
        uid = run(["docker", "exec", container, "id", "-u"], timeout=60).stdout.strip()
        assert uid != "0", f"{service} runs as root"
    # The DB manager and MariaDB answer on the loopback ports this test gave them, and nowhere else.
    listening = run(["docker", "exec", stack.container("db_manager"), "python", "-c",
                     "print(open('/proc/net/tcp').read() + open('/proc/net/tcp6').read())"], timeout=60).stdout
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1, also as IPv4-mapped IPv6
    for port in (stack.port, stack.mariadb_port):
        local = [line.split()[1] for line in listening.splitlines()[1:]
                 if len(line.split()) > 3 and line.split()[3] == "0A" and line.split()[1].endswith(f":{port:04X}")]
        assert local and {address.split(":")[0] for address in local} <= loopback, f"port {port} listens on {local}"


def seed_with(name: str, **spec: Any) -> str:
    doc = yaml.safe_load(SEED.read_text())
    doc["metadata"]["name"] = name
    doc["spec"].update(spec)
    return yaml.safe_dump(doc)


def condition(doc: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in doc.get("status", {}).get("conditions") or [])


def test_seed_example_runs_to_succeeded(stack):
    seed = yaml.safe_load(SEED.read_text())
    name = seed["metadata"]["name"]
    stack.sextant("apply", "-f", str(SEED.relative_to(ROOT)))
    waited = stack.sextant("wait", "experiment", name, "-n", "kubeflow", "--for=condition=Succeeded",
                           "--timeout=15m", timeout=960, check=False)
    assert waited.returncode == 0, f"{waited.stdout}{waited.stderr}\n{stack.logs()}"
    experiment = stack.get("experiment", name)
    trials = stack.trials(name)
    assert 0 < len(trials) <= seed["spec"]["maxTrialCount"]
    succeeded = [t for t in trials if condition(t, "Succeeded")]
    assert succeeded, "no trial succeeded"
    best = experiment["status"]["currentOptimalTrial"]
    assert best["bestTrialName"] in {t["metadata"]["name"] for t in trials}
    # The trainer ran in the trial controller's container and its metrics reached the MariaDB
    # container (through the DB manager's container): read them there.
    with pymysql.connect(host="127.0.0.1", port=stack.mariadb_port, user="root", password=stack.password,
                         database="katib", connect_timeout=10) as db, db.cursor() as cur:
        cur.execute("SELECT COUNT(DISTINCT trial_name) FROM observation_logs "
                    "WHERE metric_name = 'Validation-accuracy'")
        (reporting,) = cur.fetchone()
    assert reporting == len(succeeded)


def test_experiment_survives_a_killed_trial_controller(stack):
    name = "random-example-restart"
    seed = yaml.safe_load(SEED.read_text())
    max_trials, parallel = seed["spec"]["maxTrialCount"], seed["spec"]["parallelTrialCount"]
    # No goal, so reaching it cannot end the run early; the kill fails the trials running then
    # (their processes die with the container), so up to `parallel` failures are allowed.
    objective = {k: v for k, v in seed["spec"]["objective"].items() if k != "goal"}
    stack.sextant("apply", "-f", "-", input=seed_with(name, objective=objective, maxFailedTrialCount=max_trials))

    controller = stack.container("trial_controller")
    deadline = time.monotonic() + 600
    while True:  # mid-run: a trial has finished, another runs, more are still to come
        trials = stack.trials(name)
        running = [t for t in trials if condition(t, "Running")]
        if running and any(condition(t, "Succeeded") for t in trials) and len(trials) < max_trials:
            break
        assert time.monotonic() < deadline, f"never mid-run: {len(trials)} trials\n{stack.logs()}"
        time.sleep(1)
    started = inspect(controller, "{{.State.StartedAt}}")
    run(["docker", "kill", controller], timeout=60)
    # An engine may restart a killed container by its restart policy; start it if it did not.
    time.sleep(1)
    stack.compose_run("start", "trial_controller", timeout=120)
    assert inspect(controller, "{{.State.StartedAt}}") != started, "the trial controller was not restarted"

    waited = stack.sextant("wait", "experiment", name, "-n", "kubeflow", "--for=condition=Succeeded",
                           "--timeout=15m", timeout=960, check=False)
    assert waited.returncode == 0, f"{waited.stdout}{waited.stderr}\n{stack.logs()}"
    status = stack.get("experiment", name)["status"]
    trials = stack.trials(name)
    names = [t["metadata"]["name"] for t in trials]
    assert len(names) == len(set(names)) == max_trials == status["trials"]
    succeeded = sum(condition(t, "Succeeded") for t in trials)
    failed = sum(condition(t, "Failed") for t in trials)
    assert succeeded + failed == max_trials, [(t["metadata"]["name"], t["status"].get("conditions")) for t in trials]
    assert failed <= parallel, f"{failed} trials failed; only the {len(running)} running at the kill could"
    print(f"\nkilled the trial controller with {len(running)} trials running: {failed} failed, {succeeded} succeeded")
