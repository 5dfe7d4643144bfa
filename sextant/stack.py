"""The local stack: one supervisor process that runs the DB manager and the three controllers.

``sextant up`` runs ``Supervisor`` in the foreground; ``sextant up --detach`` starts this module
(``python -m sextant.stack``) as a detached session leader that does the same. Every child is
started without a shell, in its own process group, with its output appended to
``<data_dir>/logs/<service>.log`` and its pid in ``<data_dir>/run/<service>.pid``. A child that
exits while the stack is up is restarted with exponential backoff.

The supervisor holds an exclusive ``flock`` on ``run/supervisor.lock`` for its lifetime: that is
what makes a second ``up`` on the same data directory fail cleanly (a stale pid file cannot
fool it), and what ``status`` uses to tell a live stack from a dead one. Its view of the
children is written to ``<data_dir>/stack.json`` on every change; the DB manager's address is
also written alone to ``<data_dir>/address`` so clients find it without parsing anything.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, cast

from sextant.config import DEFAULT_DB_MANAGER_PORT, database_driver, ensure_token
from sextant.config import data_dir as resolve_data_dir
from sextant.ports import free_port

log = logging.getLogger("sextant.stack")

LOOPBACK = "127.0.0.1"
SERVICES = ("db-manager", "experiment-controller", "suggestion-controller", "trial-controller", "api-server")
MODULES = {
    "db-manager": "services.db_manager",
    "experiment-controller": "services.experiment_controller",
    "suggestion-controller": "services.suggestion.controller",
    "trial-controller": "services.trial_controller",
    "api-server": "services.api_server",
}
# The runtimes a local stack can run trials with (``sextant.runtime.make_runtime`` names).
LOCAL_RUNTIMES = ("local", "docker", "auto")
DEFAULT_API_PORT = 6443  # the Kubernetes API server (HTTPS); another free port if it is taken
BACKOFF_START = 0.5
DB_URL_ENV = "SEXTANT_DB_URL"  # read by services.db_manager (resolve_url)
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0  # a child that ran this long gets its backoff reset
GRACE_SECONDS = 10.0


class AlreadyRunning(RuntimeError):
    """Another supervisor holds the data directory's lock."""


# ---------------------------------------------------------------------------------------------
# Paths and state files (shared with the CLI, which only reads them)


@dataclass(frozen=True)
class StackPaths:
    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def lock(self) -> Path:
        return self.run / "supervisor.lock"

    @property
    def supervisor_pid(self) -> Path:
        return self.run / "supervisor.pid"

    @property
    def state(self) -> Path:
        return self.root / "stack.json"

    @property
    def address(self) -> Path:
        return self.root / "address"

    @property
    def token(self) -> Path:
        return self.root / "token"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def database(self) -> Path:
        return self.root / "sextant.db"

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"


def pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


PRIVATE_UMASK = 0o077
"""The data directory holds experiment data, logs and the stack's state: only its owner may read
it (directories 0700, files 0600). Children run with this umask, so what they create (the
SQLite database, trial directories) is private too."""


def _private_open(path: Path) -> BinaryIO:
    """``path`` opened for appending, created 0600 (an older, wider file is narrowed)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab", buffering=0)


def make_private(paths: StackPaths) -> None:
    """Creates the data directory and its subdirectories 0700, and narrows the modes of what an
    earlier version left readable to others (files directly inside them become 0600)."""
    for d in (paths.root, paths.logs, paths.run):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        for entry in d.iterdir():
            if entry.is_file() and not entry.is_symlink():
                with contextlib.suppress(OSError):
                    os.chmod(entry, 0o600)


def _write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_state(paths: StackPaths) -> dict[str, Any] | None:
    """The supervisor's last published state, or None if there is none."""
    try:
        return cast(dict[str, Any], json.loads(paths.state.read_text()))
    except (OSError, ValueError):
        return None


def supervisor_running(paths: StackPaths) -> int | None:
    """The pid of the live supervisor of this data directory, else None.

    Probing the lock (rather than trusting the pid file) means a supervisor killed with -9
    never looks alive.
    """
    if not paths.lock.exists():
        return None
    try:
        fd = os.open(paths.lock, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            return int(paths.supervisor_pid.read_text().strip())
        except (OSError, ValueError):
            return -1  # locked, pid file not written yet
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass
class StackConfig:
    data_dir: Path
    port: int = DEFAULT_DB_MANAGER_PORT  # DB manager; 0 = any free port
    api_port: int | None = None  # Kubernetes API server; None = 6443 if free (any port when port is 0)
    katib_read_port: int | None = None  # opt-in tokenless GetObservationLog port for Katib's SDK
    # Where trials run: local processes, or (docker/auto) containers for those that name an image.
    runtime: str = field(default_factory=lambda: os.environ.get("SEXTANT_RUNTIME") or "local")
    db_url: str | None = None  # None = SQLite at <data_dir>/sextant.db
    metrics: bool = True  # give every service a Prometheus port
    python: str = sys.executable
    extra_env: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=lambda: dict(MODULES))  # tests swap in fakes

    @property
    def paths(self) -> StackPaths:
        return StackPaths(self.data_dir)

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.paths.database}"


@dataclass
class Child:
    """One supervised service process and its bookkeeping."""

    name: str
    argv: list[str]
    port: int | None = None
    # Extra environment of this child only: secrets (the DB URL with its password) go here,
    # never into argv, which any local user can read in `ps` / /proc/<pid>/cmdline.
    env: dict[str, str] = field(default_factory=dict, repr=False)
    metrics_port: int | None = None
    health: str = "grpc"  # how `status` probes it: "grpc" (health service), "https" (/readyz)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    backoff: float = BACKOFF_START
    last_exit: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "pid": self.process.pid if self.process and self.process.poll() is None else None,
            "restarts": self.restarts,
            "port": self.port,
            "metrics_port": self.metrics_port,
            "address": f"{LOOPBACK}:{self.port}" if self.port else None,
            "health": self.health,
            "last_exit": self.last_exit,
            "started_at": self.started_at or None,
        }


def build_children(config: StackConfig, token_file: Path) -> list[Child]:
    """The argv of each service. Ports are chosen here so status can show them.

    The DB manager is a gRPC server (sextant.config server flags). The controllers are
    clients only (sextant.controller_main flags): they take the DB manager's address, the
    token file and the data directory, and serve only their Prometheus /metrics.
    """
    paths = config.paths
    db_port = config.port or free_port()
    db_address = f"{LOOPBACK}:{db_port}"
    common = ["--token-file", str(token_file), "--data-dir", str(paths.root)]
    children = [Child(name="db-manager", argv=[config.python, "-m", config.modules["db-manager"], *common,
                                               "--host", LOOPBACK, "--port", str(db_port)],
                      port=db_port, env={DB_URL_ENV: config.resolved_db_url()})]
    if config.katib_read_port is not None:
        children[0].argv += ["--katib-read-port", str(config.katib_read_port)]
    children += [Child(name=name, argv=[config.python, "-m", config.modules[name], *common,
                                        "--db-manager", db_address])
                 for name in SERVICES[1:4]]
    trial_controller = next(c for c in children if c.name == "trial-controller")
    trial_controller.argv += ["--runtime", config.runtime]

    from sextant.tls_files import TlsFiles

    api_port = _api_port(config)
    tls = TlsFiles.under(paths.tls)
    children.append(Child(name="api-server", argv=[
        config.python, "-m", config.modules["api-server"], *common, "--db-manager", db_address,
        "--host", LOOPBACK, "--port", str(api_port), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)],
        port=api_port, health="https"))
    if config.metrics:  # every service, the controllers too, on a free port of its own
        for child in children:
            child.metrics_port = free_port()
            child.argv += ["--metrics-port", str(child.metrics_port)]
    return children


def _api_port(config: StackConfig) -> int:
    if config.api_port:
        return config.api_port
    if config.port == 0 or config.api_port == 0:
        return free_port()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, DEFAULT_API_PORT))
        return DEFAULT_API_PORT
    except OSError:
        return free_port()


def write_kubeconfig(paths: StackPaths, api: Child) -> Path:
    """The stack's TLS material (kept across runs) and ``<data_dir>/kubeconfig`` pointing at
    the API server, with the CA and the token."""
    from sextant.kubeconfig import write_kubeconfig as write
    from sextant.tls import ensure_tls

    files = ensure_tls(paths.tls)
    token = paths.token.read_text().strip()
    return write(paths.root, f"https://{LOOPBACK}:{api.port}", files.ca_cert.read_bytes(), token)


# ---------------------------------------------------------------------------------------------
# The supervisor


class Supervisor:
    def __init__(self, config: StackConfig):
        self.config = config
        self.paths = config.paths
        self.children: list[Child] = []
        self._stop = threading.Event()
        self._lock_fd: int | None = None
        self.started_at = time.time()

    # -- lifecycle ------------------------------------------------------------------------
    def acquire(self) -> None:
        """Takes the data directory's lock or raises AlreadyRunning."""
        make_private(self.paths)
        os.umask(PRIVATE_UMASK)  # everything this supervisor and its children create is private
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = supervisor_running(self.paths)
            raise AlreadyRunning(
                f"a Sextant stack is already running on {self.paths.root}"
                + (f" (supervisor pid {pid})" if pid and pid > 0 else "")) from None
        os.set_inheritable(fd, False)
        self._lock_fd = fd
        _write_atomic(self.paths.supervisor_pid, f"{os.getpid()}\n")

    def run(self) -> int:
        """Starts everything, supervises until stopped, stops everything. Returns an exit code."""
        if self._lock_fd is None:
            self.acquire()
        try:
            token_file = self.paths.token
            ensure_token(self.paths.root)
            self._reap_strays()
            self.children = build_children(self.config, token_file)
            write_kubeconfig(self.paths, next(c for c in self.children if c.name == "api-server"))
            _write_atomic(self.paths.address, f"{LOOPBACK}:{self.children[0].port}\n")
            for child in self.children:
                self._start(child)
            self._publish()
            while not self._stop.wait(0.2):
                self._check_children()
            return 0
        finally:
            self._shutdown()
            self._release()

    def stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("signal received, stopping the stack", extra={"signal": signum})
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGHUP, handle)

    # -- children ---------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.config.extra_env)
        env["SEXTANT_HOME"] = str(self.paths.root)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # The token reaches services through --token-file only, never the environment.
        env.pop("SEXTANT_TOKEN", None)
        env.pop(DB_URL_ENV, None)  # only the DB manager gets it (Child.env)
        return env

    def _start(self, child: Child) -> None:
        log_path = self.paths.log_file(child.name)
        with _private_open(log_path) as out:
            out.write(f"--- sextant: starting {child.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
                      .encode())
            try:
                child.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    child.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env={**self._env(), **child.env}, cwd=os.getcwd(), start_new_session=True, close_fds=True,
                    umask=PRIVATE_UMASK,
                )
            except OSError as err:
                out.write(f"--- sextant: cannot start {child.name}: {err}\n".encode())
                child.process = None
                child.last_exit = -1
                self._schedule_restart(child)
                return
        child.started_at = time.time()
        _write_atomic(self.paths.pid_file(child.name), f"{child.process.pid}\n")
        log.info("service started", extra={"service": child.name, "pid": child.process.pid})

    def _schedule_restart(self, child: Child) -> None:
        ran_for = time.time() - child.started_at if child.started_at else 0.0
        if ran_for >= STABLE_AFTER:
            child.backoff = BACKOFF_START
        child.next_start = time.time() + child.backoff
        child.backoff = min(child.backoff * 2, BACKOFF_MAX)

    def _check_children(self) -> None:
        changed = False
        now = time.time()
        for child in self.children:
            proc = child.process
            if proc is not None and proc.poll() is not None:
                child.last_exit = proc.returncode
                child.process = None
                with contextlib.suppress(OSError):
                    self.paths.pid_file(child.name).unlink()
                log.warning("service exited; restarting with backoff",
                            extra={"service": child.name, "exit": proc.returncode,
                                   "backoff_s": child.backoff})
                self._schedule_restart(child)
                changed = True
            elif proc is None and now >= child.next_start:
                child.restarts += 1
                self._start(child)
                changed = True
        if changed:
            self._publish()

    def _shutdown(self) -> None:
        """SIGTERM to controllers first (they write through the DB manager), then the DB manager."""
        if not self.children:
            return
        order = [c for c in self.children if c.name != "db-manager"] + \
                [c for c in self.children if c.name == "db-manager"]
        for group in (order[:-1], order[-1:]):
            for child in group:
                _signal_group(child.process, signal.SIGTERM)
            deadline = time.time() + GRACE_SECONDS
            for child in group:
                proc = child.process
                if proc is None:
                    continue
                try:
                    proc.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=5)
                child.last_exit = proc.returncode
                child.process = None
                with contextlib.suppress(OSError):
                    self.paths.pid_file(child.name).unlink()
        stopped = stop_local_services(self.paths)
        log.info("stack stopped", extra={"algorithm_services_stopped": stopped})

    def _reap_strays(self) -> None:
        stop_strays(self.paths, self.config.modules)

    def _publish(self) -> None:
        state = {
            "supervisor": {"pid": os.getpid(), "started_at": self.started_at},
            "address": f"{LOOPBACK}:{self.children[0].port}" if self.children else None,
            "data_dir": str(self.paths.root),
            "db_url": _mask_url(self.config.resolved_db_url()),
            "db_driver": database_driver(self.config.resolved_db_url()),
            "runtime": self.config.runtime,
            # The engine the trial controller (which inherits this environment) runs containers on.
            "docker_host": os.environ.get("DOCKER_HOST") or None,
            "services": {c.name: c.public() for c in self.children},
        }
        _write_atomic(self.paths.state, json.dumps(state, indent=2) + "\n")

    def _release(self) -> None:
        for path in (self.paths.supervisor_pid, self.paths.state, self.paths.address):
            with contextlib.suppress(OSError):
                path.unlink()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None


def stop_local_services(paths: StackPaths) -> int:
    """Stops the algorithm / early-stopping processes the suggestion controller started locally
    (``services/<ns>/<name>/state.json``), which are not the supervisor's children: without this
    `sextant down` right after an experiment ends (before the controller tore its service
    down) left them running. Their directories stay; the next `up` restarts the services of
    experiments still running. Only processes matching the recorded pid + start time are signalled."""
    from sextant.runtime import process

    procs = []
    for state_file in sorted((paths.root / "services").glob("*/*/state.json")):
        state = process.read_json(state_file) or {}
        for key in ("early_stopping", "main"):
            proc = process.ProcessId.from_dict(state.get(key))
            if process.is_alive(proc):
                process.signal_group(proc, signal.SIGTERM)
                procs.append(proc)
    for proc in procs:
        process.terminate(proc, GRACE_SECONDS)  # SIGKILL for one that ignores SIGTERM
    return len(procs)


def stop_strays(paths: StackPaths, modules: dict[str, str] | None = None) -> list[str]:
    """Stops services left behind by a supervisor that died without cleaning up (kill -9).

    A pid file is only trusted if that pid still runs the service's module, so a recycled
    pid is never signalled. Returns the names of the services it stopped.
    """
    modules = modules or MODULES
    stopped = []
    for name in SERVICES:
        pid_file = paths.pid_file(name)
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid_alive(pid) and modules[name] in _cmdline(pid):
            log.warning("stopping a stray service from an earlier run", extra={"service": name, "pid": pid})
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.time() + GRACE_SECONDS
            while pid_alive(pid) and time.time() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            stopped.append(name)
        with contextlib.suppress(OSError):
            pid_file.unlink()
    return stopped


def _signal_group(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, sig)  # the child leads its own group (start_new_session)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _mask_url(url: str) -> str:
    """Hides a password in a database URL (``scheme://user:***@host/db``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


# ---------------------------------------------------------------------------------------------
# Starting a detached supervisor (used by `sextant up --detach`, `sextant run`, the SDK)


def supervisor_env(config: StackConfig) -> dict[str, str]:
    """The detached supervisor's environment: the DB URL travels here, not in its argv."""
    env = {**os.environ, **config.extra_env}
    env.pop(DB_URL_ENV, None)
    if config.db_url:
        env[DB_URL_ENV] = config.db_url
    return env


def config_argv(config: StackConfig) -> list[str]:
    argv = [config.python, "-m", "sextant.stack", "--data-dir", str(config.data_dir),
            "--port", str(config.port)]
    if config.api_port is not None:
        argv += ["--api-port", str(config.api_port)]
    if config.katib_read_port is not None:
        argv += ["--katib-read-port", str(config.katib_read_port)]
    argv += ["--runtime", config.runtime]
    if not config.metrics:
        argv.append("--no-metrics")
    return argv


def start_detached(config: StackConfig, timeout: float = 60.0) -> str:
    """Starts ``python -m sextant.stack`` in a new session; returns the DB manager address once
    it answers health checks. Raises AlreadyRunning or TimeoutError (naming the log)."""
    paths = config.paths
    pid = supervisor_running(paths)
    if pid:
        raise AlreadyRunning(f"a Sextant stack is already running on {paths.root}"
                             + (f" (supervisor pid {pid})" if pid > 0 else ""))
    make_private(paths)
    with _private_open(paths.log_file("supervisor")) as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            config_argv(config), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, env=supervisor_env(config), umask=PRIVATE_UMASK,
        )
    deadline = time.time() + timeout
    while time.time() < deadline:
        code = proc.poll()
        if code is not None:
            raise RuntimeError(f"the stack supervisor exited with code {code}; "
                               f"see {paths.log_file('supervisor')}")
        address = wait_ready(paths, timeout=0.5)
        if address and wait_api_ready(paths, max(0.5, deadline - time.time())):
            return address
    raise TimeoutError(f"the stack did not become ready in {timeout:.0f}s; see {paths.logs}/")


def wait_ready(paths: StackPaths, timeout: float) -> str | None:
    """The DB manager address once it reports SERVING, else None after ``timeout``."""
    deadline = time.time() + timeout
    while True:
        try:
            address = paths.address.read_text().strip()
        except OSError:
            address = ""
        if address and health_check(address) == "SERVING":
            return address
        if time.time() >= deadline:
            return None
        time.sleep(0.1)


def wait_api_ready(paths: StackPaths, timeout: float) -> bool:
    """True once the stack's API server answers /readyz (or the stack has none)."""
    deadline = time.time() + timeout
    while True:
        services = (read_state(paths) or {}).get("services") or {}
        api = services.get("api-server")
        if api is None and services:
            return True
        if api and api.get("address") and https_health(api["address"], paths) == "SERVING":
            return True
        if time.time() >= deadline:
            return False
        time.sleep(0.2)


def https_health(address: str, paths: StackPaths, timeout: float = 2.0) -> str:
    """``SERVING`` when the API server's /readyz says ok, ``NOT_SERVING``, or ``DOWN``."""
    import ssl
    import urllib.error
    import urllib.request

    from sextant.tls_files import TlsFiles

    try:
        context = ssl.create_default_context(cafile=str(TlsFiles.under(paths.tls).ca_cert))
        with urllib.request.urlopen(f"https://{address}/readyz", timeout=timeout, context=context) as reply:  # noqa: S310
            return "SERVING" if reply.status == 200 else "NOT_SERVING"
    except urllib.error.HTTPError:
        return "NOT_SERVING"
    except (OSError, ssl.SSLError):
        return "DOWN"


def health_check(address: str, service: str = "", timeout: float = 1.0) -> str:
    """``SERVING``, ``NOT_SERVING``, or ``DOWN`` when nothing answers (health needs no token)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.insecure_channel(address)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return cast(str, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    except grpc.RpcError as err:
        return "DOWN" if err.code() in (grpc.StatusCode.UNAVAILABLE,
                                        grpc.StatusCode.DEADLINE_EXCEEDED) else err.code().name
    finally:
        channel.close()


def stop_supervisor(paths: StackPaths, timeout: float = 30.0) -> int | None:
    """SIGTERM to the supervisor and wait until it has released the lock. Returns its pid."""
    pid = supervisor_running(paths)
    if not pid or pid < 0:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if supervisor_running(paths) is None:
            return pid
        time.sleep(0.1)
    raise TimeoutError(f"the supervisor (pid {pid}) did not stop in {timeout:.0f}s")


# ---------------------------------------------------------------------------------------------
# python -m sextant.stack


def parse_args(argv: list[str] | None = None) -> StackConfig:
    p = argparse.ArgumentParser(prog="python -m sextant.stack",
                                description="Run Sextant's local stack in the foreground.")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--port", type=int, default=int(os.environ.get("SEXTANT_PORT", DEFAULT_DB_MANAGER_PORT)))
    p.add_argument("--db-url", default=os.environ.get(DB_URL_ENV),
                   help=f"database URL (better: ${DB_URL_ENV}, which `ps` does not show)")
    p.add_argument("--api-port", type=int, default=None, help="Kubernetes API server port (HTTPS)")
    p.add_argument("--katib-read-port", type=int, default=None,
                   help="serve Katib's GetObservationLog without a token on this port (read-only, opt-in)")
    p.add_argument("--runtime", choices=LOCAL_RUNTIMES, default=os.environ.get("SEXTANT_RUNTIME") or "local",
                   help="where trials run (docker/auto: trials that name an image run in it)")
    p.add_argument("--no-metrics", action="store_true")
    ns = p.parse_args(argv)
    config = StackConfig(data_dir=resolve_data_dir(ns.data_dir), port=ns.port, db_url=ns.db_url,
                         metrics=not ns.no_metrics, api_port=ns.api_port, katib_read_port=ns.katib_read_port,
                         runtime=ns.runtime)
    # Tests replace services with stand-ins (JSON {"service": "module"}); never needed otherwise.
    override = os.environ.get("SEXTANT_STACK_MODULES")
    if override:
        config.modules.update(json.loads(override))
    return config


def main(argv: list[str] | None = None) -> int:
    from sextant.logging_setup import setup_logging

    setup_logging()
    config = parse_args(argv)
    supervisor = Supervisor(config)
    supervisor.install_signal_handlers()
    try:
        return supervisor.run()
    except AlreadyRunning as err:
        log.error(str(err))
        return 1


if __name__ == "__main__":
    sys.exit(main())


