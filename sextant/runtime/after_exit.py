"""Collecting a finished job's metrics in one pass, as Katib's sidecar reads them.

For a trial without early-stopping rules whose metrics come from its output (StdOut), a file
(File), event files (TensorFlowEvent, read so by the Docker runtime) or the trial itself (Push, None), nothing needs to watch the trial while it runs. The
local runtime then starts it under the small native wrapper (``sextant/runtime/jobwrap.c``),
which only records the exit code, and calls ``collect_finished`` once the job has ended: the
whole log or file is parsed and the metric logs are written to the job's spool, which the
trial controller ships exactly once. The parsing is the metrics collector's own
(``sextant.metric_lines``), so both paths apply the same rules.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from sextant.metric_lines import (
    COLLECTING_KINDS,
    UNAVAILABLE,
    MetricLog,
    filters_for,
    parse_lines,
    read_metrics_file,
)
from sextant.runtime.collector_settings import CollectorSettings
from sextant.timestamps import ZERO_TIME

SPOOL_FILE = "1.json"  # the only spool file of such a job: a repeated collection rewrites it

log = logging.getLogger("sextant.runtime.after_exit")


def _read_lines(path: Path) -> list[str]:
    data = read_metrics_file(path)  # MetricsSourceError when it can never be read
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def collect_finished(spec: CollectorSettings, *, output_log: Path, spool_dir: Path,
                     stopped: bool = False, trial: str = "") -> list[MetricLog]:
    """Parses the finished job's output (StdOut) or metrics file (File) and spools the logs.

    As the live collector: a job that was not stopped and whose objective never appeared gets
    ``{zero time, objective, unavailable}`` (Push and None report on their own, so nothing is
    added for them). Returns what was spooled.
    """
    def warn(problem: str) -> None:
        log.warning("skipping metrics line: %s", problem, extra={"trial": trial})

    logs: list[MetricLog] = []
    if spec.kind == "StdOut":
        logs = parse_lines(_read_lines(output_log), spec.metrics, filters_for(spec.filters, spec.dialect),
                           False, warn)
    elif spec.kind == "File" and spec.path:
        logs = parse_lines(_read_lines(Path(spec.path)), spec.metrics, filters_for(spec.filters, spec.dialect),
                           spec.format == "JSON", warn)
    elif spec.kind == "TensorFlowEvent" and spec.path:
        # Every event file is complete once the job has ended: one read takes all its scalars.
        from sextant.tfevent_reader import TfEventReader

        logs = TfEventReader(spec.path, spec.metrics).read()
    if not stopped and spec.kind in COLLECTING_KINDS and spec.objective not in {m.name for m in logs}:
        logs.append(MetricLog(ZERO_TIME, spec.objective, UNAVAILABLE))
    if logs:
        spool_dir.mkdir(parents=True, exist_ok=True)
        tmp = spool_dir / f".{SPOOL_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps([m.to_dict() for m in logs]))
        os.replace(tmp, spool_dir / SPOOL_FILE)
    return logs
