"""``sextant up``, ``down`` and ``status``: the local stack's lifecycle (see sextant/stack.py)."""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING

from sextant.cli.context import Context
from sextant.cli.errors import EXIT_FAILURE, EXIT_OK, CliError
from sextant.cli.render import table
from sextant.cli.ui_cmd import ui_url
from sextant.stack import (
    LOCAL_RUNTIMES,
    SERVICES,
    AlreadyRunning,
    StackConfig,
    Supervisor,
    health_check,
    https_health,
    pid_alive,
    read_state,
    start_detached,
    stop_strays,
    stop_supervisor,
    supervisor_running,
    wait_api_ready,
    wait_ready,
)

if TYPE_CHECKING:
    from rich.console import Console


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser("up", help="start the local stack (DB manager and controllers)")
    up.add_argument("--detach", "-d", action="store_true", help="run in the background and return")
    up.add_argument("--port", type=int, default=int(os.environ.get("SEXTANT_PORT", "6789")),
                    help="DB manager port on 127.0.0.1 (default 6789; 0 = any free port)")
    up.add_argument("--db-url", default=os.environ.get("SEXTANT_DB_URL"),
                    help="database URL (default: SQLite at <data-dir>/sextant.db)")
    up.add_argument("--api-port", type=int, default=None,
                    help="Kubernetes API server (HTTPS) port on 127.0.0.1 (default 6443 if free; 0 = any free port)")
    up.add_argument("--katib-read-port", type=int, default=None,
                    help="also serve Katib's GetObservationLog WITHOUT a token on this 127.0.0.1 port, so "
                         "KatibClient.get_trial_metrics works (read-only; off by default)")
    up.add_argument("--runtime", choices=LOCAL_RUNTIMES, default=os.environ.get("SEXTANT_RUNTIME") or "local",
                    help="where trials run: local processes (default), docker (a trial that names an image "
                         "runs in it on the local Docker engine) or auto (docker when an engine answers)")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for readiness")
    up.set_defaults(func=cmd_up)

    kubeconfig = sub.add_parser("kubeconfig", help="print the path of the local stack's kubeconfig "
                                "(export KUBECONFIG=$(sextant kubeconfig))")
    kubeconfig.set_defaults(func=cmd_kubeconfig)

    down = sub.add_parser("down", help="stop the local stack")
    down.add_argument("--timeout", type=float, default=30.0)
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="show the local stack's services")
    status.set_defaults(func=cmd_status)


def stack_config(ctx: Context, ns: argparse.Namespace) -> StackConfig:
    return StackConfig(data_dir=ctx.data_dir, port=getattr(ns, "port", 6789),
                       db_url=getattr(ns, "db_url", None), api_port=getattr(ns, "api_port", None),
                       katib_read_port=getattr(ns, "katib_read_port", None),
                       runtime=getattr(ns, "runtime", None) or os.environ.get("SEXTANT_RUNTIME") or "local")


def ensure_stack(ctx: Context, console: Console, port: int = 0, db_url: str | None = None) -> str:
    """The running stack's address, starting a detached one first if there is none."""
    if ctx.server:
        return ctx.server
    if supervisor_running(ctx.paths):
        address = wait_ready(ctx.paths, timeout=30)
        if not address:
            raise CliError(f"the stack on {ctx.data_dir} is running but its DB manager does not answer; "
                           f"see {ctx.paths.logs}/db-manager.log")
        return address
    console.print(f"[dim]starting the local stack in {ctx.data_dir} …[/dim]")
    try:
        return start_detached(StackConfig(data_dir=ctx.data_dir, port=port, db_url=db_url))
    except (RuntimeError, TimeoutError) as err:
        raise CliError(str(err)) from None


def print_endpoints(ctx: Context, console: Console) -> None:
    """Where kubectl and a browser reach the running stack."""
    from sextant.kubeconfig import kubeconfig_path

    console.print(f"Kubernetes API: export KUBECONFIG={kubeconfig_path(ctx.data_dir)}")
    with contextlib.suppress(CliError):  # the URL signs the browser in once (`sextant ui` opens it)
        console.print(f"Web UI: {ui_url(ctx)}", markup=False)


def cmd_up(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    config = stack_config(ctx, ns)
    if ns.detach:
        try:
            address = start_detached(config, timeout=ns.timeout)
        except AlreadyRunning as err:
            raise CliError(f"{err}; `sextant status` shows it, `sextant down` stops it") from None
        except (RuntimeError, TimeoutError) as err:
            raise CliError(str(err)) from None
        console.print(f"Sextant stack up: DB manager at [bold]{address}[/bold], data in {ctx.data_dir}")
        print_endpoints(ctx, console)
        console.print(f"logs: {ctx.paths.logs}/   stop with: sextant down")
        return EXIT_OK
    supervisor = Supervisor(config)
    try:
        supervisor.acquire()
    except AlreadyRunning as err:
        raise CliError(f"{err}; `sextant status` shows it, `sextant down` stops it") from None
    supervisor.install_signal_handlers()

    def announce() -> None:
        deadline = time.monotonic() + ns.timeout
        address = wait_ready(ctx.paths, timeout=ns.timeout)
        if not address:
            console.print(f"[yellow]the DB manager is not answering yet; see {ctx.paths.logs}/[/yellow]")
            return
        console.print(f"Sextant stack up: DB manager at [bold]{address}[/bold], data in {ctx.data_dir}; "
                      "Ctrl-C stops it")
        if wait_api_ready(ctx.paths, max(0.5, deadline - time.monotonic())):
            print_endpoints(ctx, console)
        else:
            console.print(f"[yellow]the API server is not answering yet; see {ctx.paths.logs}/[/yellow]")

    threading.Thread(target=announce, daemon=True).start()
    supervisor.run()
    console.print("Sextant stack stopped")
    return EXIT_OK


def cmd_kubeconfig(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    from sextant.kubeconfig import kubeconfig_path

    path = kubeconfig_path(ctx.data_dir)
    if not path.is_file():
        raise CliError(f"no kubeconfig in {ctx.data_dir}: `sextant up` writes it when it starts the stack")
    print(path)
    return EXIT_OK


def cmd_down(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    try:
        pid = stop_supervisor(ctx.paths, timeout=ns.timeout)
    except TimeoutError as err:
        raise CliError(str(err)) from None
    strays = stop_strays(ctx.paths)
    if pid:
        console.print(f"Sextant stack stopped (supervisor pid {pid})")
    elif strays:
        console.print(f"stopped services left by a dead supervisor: {', '.join(strays)}")
    else:
        console.print(f"no Sextant stack is running for {ctx.data_dir}")
    return EXIT_OK


def cmd_status(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    pid = supervisor_running(ctx.paths)
    state = read_state(ctx.paths) if pid else None
    if not pid or state is None:
        console.print(f"no Sextant stack is running for {ctx.data_dir} (start one with `sextant up --detach`)")
        return EXIT_FAILURE
    print(f"supervisor: pid {pid}, data {ctx.data_dir}, database {state.get('db_url')} "
          f"(driver {state.get('db_driver', '?')})")
    rows = []
    healthy = True
    for name in SERVICES:
        svc = (state.get("services") or {}).get(name) or {}
        alive = pid_alive(svc.get("pid"))
        if not (alive and svc.get("address")):
            health = "-"
        elif svc.get("health") == "https":
            health = https_health(svc["address"], ctx.paths)
        else:
            health = health_check(svc["address"])
        healthy &= alive and health in ("SERVING", "-")
        rows.append([name, svc.get("pid") or "-", "up" if alive else "down", svc.get("restarts", 0),
                     svc.get("address") or "-", health, svc.get("metrics_port") or "-"])
    print(table(["SERVICE", "PID", "STATE", "RESTARTS", "ADDRESS", "HEALTH", "METRICS"], rows))
    return EXIT_OK if healthy else EXIT_FAILURE
