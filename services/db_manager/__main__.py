"""``python -m services.db_manager [--port 6789] [--db-url URL]`` runs the DB manager;
``python -m services.db_manager migrate`` only upgrades the schema.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from services.db_manager.app import DBManagerApp, SchemaNotReady, prepare_database
from services.db_manager.database import Database, DatabaseConfigError, mask, migrate, resolve_url
from services.db_manager.resource_store import DEFAULT_HISTORY
from sextant.config import (
    DEFAULT_DB_MANAGER_PORT,
    add_server_arguments,
    data_dir,
    env,
    optional_int,
    server_settings,
)
from sextant.logging_setup import setup_logging
from sextant.server import exit_now

log = logging.getLogger("sextant.db_manager")


def _skip_migrations_from_env() -> bool:
    # Katib: SKIP_DB_INITIALIZATION=false (the default) creates tables, anything else skips.
    value = os.environ.get("SKIP_DB_INITIALIZATION")
    return value not in (None, "", "false")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.db_manager",
                                     description="Sextant DB manager (Katib DBManager API + resource store)")
    parser.add_argument("command", nargs="?", choices=["serve", "migrate"], default="serve")
    add_server_arguments(parser, DEFAULT_DB_MANAGER_PORT)
    parser.set_defaults(max_workers=int(env("max_workers", "64")))
    g = parser.add_argument_group("database")
    g.add_argument("--db-url", default=None,
                   help="SQLAlchemy URL (default: $SEXTANT_DB_URL, Katib's DB_NAME variables, or "
                        "SQLite <data-dir>/sextant.db)")
    g.add_argument("--no-migrate", action="store_true", default=_skip_migrations_from_env(),
                   help="do not upgrade the schema on start (also SKIP_DB_INITIALIZATION != false)")
    g.add_argument("--connect-timeout", type=float, default=60.0,
                   help="seconds to keep retrying the first database connection")
    g.add_argument("--history-size", type=int, default=int(env("history_size", str(DEFAULT_HISTORY))),
                   help="change-log entries kept for resuming watches")
    g.add_argument("--watch-poll-seconds", type=float, default=1.0)
    g.add_argument("--bookmark-seconds", type=float, default=10.0)
    g.add_argument("--katib-read-port", type=int, default=optional_int(env("katib_read_port")),
                   help="also serve Katib's GetObservationLog WITHOUT a token or TLS on this port, on "
                        "the same --host (opt-in, read-only: for Katib's UI and KatibClient.get_trial_metrics, "
                        "which cannot send one)")
    return parser


def wait_for_database(db: Database, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not db.ping():
        if time.monotonic() >= deadline:
            raise SystemExit(f"database {mask(db.url)} did not answer within {timeout:.0f}s")
        log.warning("database not reachable yet, retrying", extra={"db": mask(db.url)})
        time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))


def install_signal_handlers(app: DBManagerApp) -> None:
    # Open watches end first (clients resume elsewhere), then the server drains unary calls.
    def handle(signum: int, _frame: object) -> None:
        log.info("signal received, stopping", extra={"signal": signum})
        threading.Thread(target=app.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    settings = server_settings(args)
    try:
        url = resolve_url(args.db_url, data_dir(args.data_dir))
    except DatabaseConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log.info("starting", extra={"command": args.command, "db": mask(url), **settings.describe()})
    db = Database(url, pool_size=min(32, settings.max_workers))
    wait_for_database(db, args.connect_timeout)
    if args.command == "migrate":
        log.info("schema migrated", extra={"revision": migrate(db)})
        db.dispose()
        return 0
    try:
        prepare_database(db, run_migrations=not args.no_migrate)
    except SchemaNotReady as err:
        log.error(str(err))
        return 1
    app = DBManagerApp(settings, db, history=args.history_size, poll_seconds=args.watch_poll_seconds,
                       bookmark_seconds=args.bookmark_seconds, katib_read_port=args.katib_read_port)
    install_signal_handlers(app)
    app.start()
    app.wait()
    db.dispose()
    return 0


if __name__ == "__main__":
    exit_now(main())
