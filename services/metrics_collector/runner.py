"""The collector as a wrapper around the trial command (Katib's sidecar, as one local process).

``python -m services.metrics_collector [options] -- COMMAND ARGS`` starts COMMAND without a
shell, copies its stdout/stderr to our stdout (the job's output log), collects metrics with the
configured kind, reports them in batches, enforces early-stopping rules, and — once everything
is reported — writes ``<job-dir>/exit.json`` with the exit code and a reason/message, which is
what the local runtime reads as the job's status.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sextant import job_reasons, metric_lines
from sextant.metric_lines import COLLECTING_KINDS, KINDS, MetricLog
from sextant.timestamps import ZERO_TIME

from . import lazy_logger
from .early_stopping import EarlyStopper, StopRule, set_trial_early_stopped
from .lazy_logger import log
from .reporter import Reporter, grpc_sender

# `typing` and `types` are not imported at run time (start-up cost); mypy treats this as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import IO, Any

EARLY_SIGNALS: list[int] = []  # SIGTERMs received before run() installed its handler


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.metrics_collector",
                                description="Run a trial command and collect its metrics.")
    p.add_argument("--job-dir", help="job state directory (exit.json, spool/); none = no state")
    p.add_argument("--trial", default=os.environ.get("KATIB_TRIAL_NAME"), help="trial name")
    p.add_argument("--metrics", required=True,
                   help="metric names separated by ';', the objective first")
    p.add_argument("--objective-type", choices=("minimize", "maximize", ""), default="")
    p.add_argument("--db-manager", default=os.environ.get("SEXTANT_DB_MANAGER", "127.0.0.1:6789"))
    p.add_argument("--tls-ca", default=os.environ.get("SEXTANT_TLS_CA"),
                   help="PEM CA of the DB manager's certificate: report over TLS (default $SEXTANT_TLS_CA); "
                        "the token comes from $SEXTANT_TOKEN")
    p.add_argument("--kind", choices=KINDS, default="StdOut")
    p.add_argument("--path", help="File: the metrics file; TensorFlowEvent: the event directory")
    p.add_argument("--format", choices=("TEXT", "JSON"), default="TEXT")
    p.add_argument("--filter", action="append", default=[], help="regex with groups (name, value)")
    p.add_argument("--dialect", choices=("v1beta1", "v1alpha3"), default="v1beta1",
                   help="which Katib default filter applies when no --filter is given")
    p.add_argument("--url", help="PrometheusMetric: the endpoint to scrape")
    p.add_argument("--custom-command", help="Custom: JSON argv list of the user's collector")
    p.add_argument("--stop-rule", action="append", default=[], help="name;value;comparison;startStep")
    p.add_argument("--early-stopping", help="EarlyStopping service address (host:port)")
    p.add_argument("--poll-interval", type=float, default=1.0, help="file/tfevent/scrape period (s)")
    p.add_argument("--report", choices=("direct", "spool"), default="direct",
                   help="direct: send batches to the DB manager (spooling what it refuses); spool: "
                        "only write them to <job-dir>/spool for the trial controller to ship")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--flush-interval", type=float, default=2.0)
    p.add_argument("--report-deadline", type=float, default=300.0,
                   help="seconds to keep retrying unreported metrics after the trial ends")
    p.add_argument("--stop-grace", type=float, default=10.0)
    p.add_argument("--log-level", default="INFO")
    return p


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic write (same contract as sextant.runtime.process.write_json, whose package import
    would cost start-up time in every trial)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))  # no indent: the C encoder
    os.replace(tmp, path)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: python -m services.metrics_collector [options] -- COMMAND [ARGS]")
    i = argv.index("--")
    return argv[:i], argv[i + 1:]


class TailedFile:
    """Reads complete lines appended to a file that may not exist yet."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def read_lines(self, final: bool = False) -> list[str]:
        data = metric_lines.read_metrics_file(self.path, self.offset)  # MetricsSourceError: never readable
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = b"" if final else lines.pop()
        return [line.decode("utf-8", "replace") for line in lines if line or not final]


class Collector:
    def __init__(self, args: argparse.Namespace, command: list[str]):
        self.args = args
        self.command = command
        self.metrics = [m for m in args.metrics.split(";") if m]
        if not self.metrics:
            raise SystemExit("--metrics: at least the objective metric name is required")
        if not args.trial:
            raise SystemExit("--trial (or KATIB_TRIAL_NAME): the trial name is required")
        self.objective = self.metrics[0]
        try:
            self.filters = metric_lines.filters_for(args.filter, args.dialect)
            rules = [StopRule.parse(r) for r in args.stop_rule]
        except ValueError as err:
            raise SystemExit(str(err)) from err
        if args.kind in ("File", "TensorFlowEvent") and not args.path:
            raise SystemExit(f"--path: required for collector kind {args.kind}")
        self.job_dir = Path(args.job_dir) if args.job_dir else None
        token = os.environ.get("SEXTANT_TOKEN")
        if args.report == "direct" and args.tls_ca and not os.path.isfile(args.tls_ca):
            raise SystemExit(f"--tls-ca (or SEXTANT_TLS_CA): {args.tls_ca} is not a readable CA file")
        if args.report == "spool" and self.job_dir is None:
            raise SystemExit("--report spool: needs --job-dir (the spool lives there)")
        sender = grpc_sender(args.db_manager, token, tls_ca=args.tls_ca) if args.report == "direct" else None
        self.reporter = Reporter(args.trial, sender,
                                 self.job_dir / "spool" if self.job_dir else None,
                                 batch_size=args.batch_size, interval=args.flush_interval)
        self.stopper = EarlyStopper(rules, self.objective, args.objective_type)
        self.token = token
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.killed = False
        self.early_stopped = False
        self.child: subprocess.Popen[bytes] | None = None
        self.custom: subprocess.Popen[bytes] | None = None
        self.file = TailedFile(Path(args.path)) if args.kind == "File" else None
        self.tf = None
        if args.kind == "TensorFlowEvent":  # imported only when used: start-up time matters per trial
            from . import site_packages

            site_packages.ensure()
            from sextant.tfevent_reader import TfEventReader

            self.tf = TfEventReader(args.path, self.metrics)

    # --- collecting ------------------------------------------------------------------------
    def _pump(self, stream: IO[bytes]) -> None:
        """Copies the child's output to ours and queues lines for the StdOut collector."""
        out = sys.stdout.buffer
        for raw in iter(stream.readline, b""):
            out.write(raw)
            out.flush()
            if self.args.kind == "StdOut":
                self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(None)

    def _text_or_json(self, lines: list[str]) -> list[MetricLog]:
        json_lines = self.args.kind == "File" and self.args.format == "JSON"
        return metric_lines.parse_lines(lines, self.metrics, self.filters, json_lines, self._warn_bad_line)

    def _warn_bad_line(self, problem: str) -> None:
        log.warning("skipping metrics line: %s", problem, extra={"trial": self.args.trial or ""})

    def _poll_sources(self, final: bool = False) -> list[MetricLog]:
        if self.file is not None:
            return self._text_or_json(self.file.read_lines(final))
        if self.tf is not None:
            return self.tf.read()
        if self.args.kind == "PrometheusMetric" and self.args.url and not final:
            from . import site_packages

            site_packages.ensure()
            from .prometheus import scrape

            return scrape(self.args.url, self.metrics)
        return []

    def _take(self, logs: list[MetricLog]) -> None:
        if not logs:
            return
        self.reporter.add(logs)
        if self.early_stopped or not self.stopper.rules:
            return
        for item in logs:
            if self.stopper.observe(item):
                self._early_stop()
                return

    def _early_stop(self) -> None:
        log.info("early-stopping rules met; stopping the trial", extra={"trial": self.args.trial})
        self.early_stopped = True
        self._terminate_child()

    def _terminate_child(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(self.args.stop_grace)
        except subprocess.TimeoutExpired:
            child.kill()

    # --- lifecycle ---------------------------------------------------------------------------
    def _on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        self.killed = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()

    def _trial_env(self) -> dict[str, str]:
        """The trial (and a Custom collector) learn who they are and where to push metrics."""
        return {**os.environ, "KATIB_TRIAL_NAME": self.args.trial,
                "SEXTANT_DB_MANAGER": self.args.db_manager}

    def _start_custom(self) -> None:
        try:
            argv = json.loads(self.args.custom_command or "[]")
        except json.JSONDecodeError as err:
            raise SystemExit(f"--custom-command: not a JSON list ({err.msg})") from err
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise SystemExit("--custom-command: expected a non-empty JSON list of strings")
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        self.custom = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=self._trial_env())

    def _finish_custom(self) -> None:
        if self.custom is None:
            return
        try:
            self.custom.wait(self.args.stop_grace)
        except subprocess.TimeoutExpired:
            self.custom.terminate()
            try:
                self.custom.wait(self.args.stop_grace)
            except subprocess.TimeoutExpired:
                self.custom.kill()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        if EARLY_SIGNALS:
            self.killed = True
            self._finish(-signal.SIGTERM, job_reasons.KILLED, "trial was stopped before it started")
            return 128 + signal.SIGTERM
        if self.args.kind == "Custom":
            self._start_custom()
        try:
            self.child = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          env=self._trial_env())
        except OSError as err:
            what = "command not found" if isinstance(err, FileNotFoundError) else "cannot start command"
            message = f"{what}: {self.command[0]} ({err.strerror})"
            print(message, flush=True)
            self._finish(127, job_reasons.ERROR, message)
            return 127
        pump = threading.Thread(target=self._pump, args=(self.child.stdout,), daemon=True)
        pump.start()
        next_poll = 0.0
        pump_done = False
        while True:
            try:
                items = [self.lines.get(timeout=0.1)]
                while True:
                    try:
                        items.append(self.lines.get_nowait())
                    except queue.Empty:
                        break
            except queue.Empty:
                items = []
            batch: list[MetricLog] = []
            for item in items:
                if item is None:
                    pump_done = True
                else:
                    batch.extend(metric_lines.parse_text_line(item, self.metrics, self.filters))
            self._take(batch)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.args.poll_interval
                try:
                    self._take(self._poll_sources())
                except metric_lines.MetricsSourceError as err:
                    return self._source_failed(str(err))
            self.reporter.tick()
            if pump_done and self.child.poll() is not None:
                break
            if self.child.poll() is not None and not pump.is_alive() and self.lines.empty():
                break
        code = self.child.returncode
        try:
            self._take(self._poll_sources(final=True))
        except metric_lines.MetricsSourceError as err:
            return self._source_failed(str(err))
        self._finish_custom()
        return self._complete(code)

    def _source_failed(self, message: str) -> int:
        """The metrics can never be read: stop the trial and fail it now, with the cause, rather
        than let it run (or succeed) without them."""
        log.error("metrics source unreadable", extra={"trial": self.args.trial, "error": message})
        print(message, flush=True)
        self._terminate_child()
        self._finish_custom()
        self.reporter.drain(time.monotonic() + 2.0)
        self._finish(1, job_reasons.COLLECTOR_FAILED, message)
        termination_log = os.environ.get(metric_lines.TERMINATION_LOG_ENV)
        if termination_log:  # in a pod: the cause goes into the pod's status, the code fails the Job
            try:
                with open(termination_log, "w") as f:
                    f.write(f"{job_reasons.COLLECTOR_FAILED}: {message}"[:4000])
            except OSError as err:
                log.warning("termination message not written", extra={"error": str(err)})
            return metric_lines.COLLECTOR_FAILED_EXIT_CODE
        return 1

    def _complete(self, code: int) -> int:
        if self.killed:
            if self.args.report == "spool":
                # Writing the spool is quick and local; it must be complete before exit.json,
                # which tells the trial controller it may ship (and then delete) the spool.
                self.reporter.drain(time.monotonic())
            # Record first: the runtime gives us only a short grace before SIGKILL.
            self._finish(code, job_reasons.KILLED, "trial was stopped")
            self.reporter.drain(time.monotonic() + 2.0)
            return code if code >= 0 else 128 - code
        if self.args.kind in COLLECTING_KINDS and self.objective not in self.reporter.seen:
            self.reporter.add([MetricLog(ZERO_TIME, self.objective, metric_lines.UNAVAILABLE)])
        reported = self.reporter.drain(time.monotonic() + self.args.report_deadline)
        if self.early_stopped:
            if self.args.early_stopping:
                set_trial_early_stopped(self.args.early_stopping, self.args.trial, self.token)
            self._finish(0, job_reasons.EARLY_STOPPED, "trial was early stopped", reported)
            return 0
        if code == 0:
            self._finish(0, job_reasons.COMPLETED, "", reported)
        elif code < 0:
            self._finish(code, job_reasons.ERROR, f"killed by signal {signal.Signals(-code).name}", reported)
        else:
            self._finish(code, job_reasons.ERROR, f"exit code {code}", reported)
        return code if code >= 0 else 128 - code

    def _finish(self, code: int, reason: str, message: str, reported: bool = True) -> None:
        if not reported:
            message = (message + "; " if message else "") + \
                "some metrics could not be reported (kept in the spool directory)"
        if self.job_dir is None:
            return
        from sextant.timestamps import now_rfc3339_micro

        write_json(self.job_dir / "exit.json", {
            "exit_code": code, "reason": reason, "message": message,
            "completion_time": now_rfc3339_micro(), "metrics_reported": reported,
            "metrics_spooled": self.args.report == "spool", "early_stopped": self.early_stopped})


def main(argv: list[str] | None = None) -> int:
    own, command = split_argv(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(own)
    lazy_logger.configure(args.log_level)
    if not command:
        raise SystemExit("no trial command after '--'")
    return Collector(args, command).run()
