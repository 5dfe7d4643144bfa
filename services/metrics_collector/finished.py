"""Collecting a finished job's metrics in one pass, as Katib's sidecar does (facts §8.4).

For a trial without early-stopping rules whose metrics come from its output (StdOut), a file
(File) or the trial itself (Push, None), nothing needs to watch the trial while it runs. The
local runtime then starts it under the small native wrapper (``sextant/runtime/jobwrap.c``),
which only records the exit code, and calls ``collect_finished`` once the job has ended: the
whole log or file is parsed and the metric logs are written to the job's spool, which the
trial controller ships exactly once. The arguments are the collector's own (``runner.py``),
so both paths read the same flags and apply the same rules.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from pathlib import Path

from sextant.runtime.metrics_volume import flag_value

from . import parsing
from .parsing import MetricLog
from .runner import COLLECTING_KINDS, build_parser, filters_for, parse_lines, read_metrics_file

# Kinds whose metrics can all be read after the job ends (or that the trial pushes itself).
AFTER_EXIT_KINDS = ("StdOut", "File", "Push", "None")
SPOOL_FILE = "1.json"  # the only spool file of such a job: a repeated collection rewrites it


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """Built once: constructing the collector's parser costs more than parsing with it."""
    return build_parser()


def collects_after_exit(collector_args: list[str]) -> bool:
    """True if every metric of a job with these collector arguments can be read once it ended."""
    return (flag_value(collector_args, "--kind") or "StdOut") in AFTER_EXIT_KINDS \
        and flag_value(collector_args, "--report") == "spool" and "--stop-rule" not in collector_args


def db_manager_for_trial(collector_args: list[str], environment: dict[str, str]) -> str:
    """The DB manager address the trial is told (``SEXTANT_DB_MANAGER``), as the wrapper tells it."""
    return flag_value(collector_args, "--db-manager") or environment.get("SEXTANT_DB_MANAGER") \
        or _parser().get_default("db_manager")


def _read_lines(path: Path) -> list[str]:
    data = read_metrics_file(path)  # MetricsSourceError when it can never be read
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def collect_finished(collector_args: list[str], *, output_log: Path, spool_dir: Path,
                     stopped: bool = False) -> list[MetricLog]:
    """Parses the finished job's output (StdOut) or metrics file (File) and spools the logs.

    As the live collector: a job that was not stopped and whose objective never appeared gets
    ``{zero time, objective, unavailable}`` (Push and None report on their own, so nothing is
    added for them). Returns what was spooled.
    """
    args = _parser().parse_args(collector_args)
    metrics = [m for m in args.metrics.split(";") if m]
    logs: list[MetricLog] = []
    if args.kind == "StdOut":
        logs = parse_lines(_read_lines(output_log), metrics, filters_for(args), False, args.trial or "")
    elif args.kind == "File":
        logs = parse_lines(_read_lines(Path(args.path)), metrics, filters_for(args),
                           args.format == "JSON", args.trial or "")
    if not stopped and args.kind in COLLECTING_KINDS and metrics[0] not in {m.name for m in logs}:
        logs.append(MetricLog(parsing.ZERO_TIME, metrics[0], parsing.UNAVAILABLE))
    if logs:
        spool_dir.mkdir(parents=True, exist_ok=True)
        tmp = spool_dir / f".{SPOOL_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps([m.to_dict() for m in logs]))
        os.replace(tmp, spool_dir / SPOOL_FILE)
    return logs
