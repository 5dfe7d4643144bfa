"""``sextant logs TRIAL [-f]``: a local trial's output from ``<data_dir>/jobs/<ns>/<trial>/``, or,
once the trial controller has removed a finished job's directory, from the kept copy in
``<data_dir>/logs/trials/<ns>/<trial>.log``."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sextant.cli.context import Context
from sextant.cli.errors import EXIT_OK, BadInput, CliError
from sextant.cli.resources_cmd import add_namespace, namespace

if TYPE_CHECKING:
    from rich.console import Console

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("logs", help="print a trial's output (local stack)")
    p.add_argument("trial")
    add_namespace(p)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the trial ends")
    p.set_defaults(func=cmd_logs)


def job_dir(ctx: Context, space: str, trial: str) -> Path:
    for label, value in (("trial name", trial), ("namespace", space)):
        if len(value) > 253 or not _NAME.match(value):
            raise BadInput(f"{label} {value!r}: must be a lowercase RFC 1123 name")
    return ctx.data_dir / "jobs" / space / trial


def follow(path: Path, done: Path, out: BinaryIO | None = None, poll: float = 0.2) -> None:
    """Copies ``path`` to ``out`` as it grows, until ``done`` exists and everything is copied."""
    out = out or sys.stdout.buffer
    offset = 0
    while True:
        finished = done.exists()  # checked before reading so the last bytes are not missed
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
            if finished or not path.parent.exists():
                return
        if chunk:
            out.write(chunk)
            out.flush()
            offset += len(chunk)
        elif finished:
            return
        else:
            time.sleep(poll)


def cmd_logs(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    directory = job_dir(ctx, namespace(ns), ns.trial)
    log = directory / "output.log"
    if not log.exists() and not (ns.follow and directory.exists()):
        from sextant.runtime.local_jobs import trial_log_archive

        kept = trial_log_archive(ctx.data_dir) / namespace(ns) / f"{ns.trial}.log"
        if kept.exists():  # the trial has finished and its job directory is gone
            sys.stdout.buffer.write(kept.read_bytes())
            sys.stdout.flush()
            return EXIT_OK
        raise CliError(f"no local log for trial {ns.trial!r} in namespace {namespace(ns)!r} "
                       f"(looked in {directory} and {kept}); is the trial's name right, and was it "
                       "run by this local stack?")
    if ns.follow:
        try:
            follow(log, directory / "exit.json")
        except KeyboardInterrupt:
            pass
        return EXIT_OK
    sys.stdout.buffer.write(log.read_bytes())
    sys.stdout.flush()
    return EXIT_OK
