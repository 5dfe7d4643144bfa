"""The reasons a trial's job ends with: what its exit record (``exit.json``) and
``JobStatus.reason`` say, and what a Failed trial's condition repeats (``TrialFailed. Job
reason: <reason>``).

Written by the metrics collector and the runtimes (the native wrapper, ``jobwrap.c``, spells
the first three out in C), read by the runtimes and the trial controller. Free of imports: the
collector loads it in every trial's start-up.
"""

COMPLETED = "Completed"  # the command exited 0
ERROR = "Error"  # it exited non-zero, died by a signal, or could not be started
KILLED = "Killed"  # Sextant stopped it (its experiment ended, or the trial was deleted)
EARLY_STOPPED = "EarlyStopped"  # an early-stopping rule stopped it: it succeeded with what it reported
OOM_KILLED = "OOMKilled"  # its container used more memory than its limit (Docker)
COLLECTOR_FAILED = "MetricsCollectorFailed"
"""Its metrics source can never be read: the job has failed, whatever the trial command's exit
code (its metrics are lost, retrying cannot bring them back)."""

# A job that ended with one of these failed, whatever its exit code.
FAILING = (KILLED, COLLECTOR_FAILED, OOM_KILLED)


def ended_reason(reason: str, stopped: bool) -> str:
    """The reason of a job that ended: one Sextant stopped was Killed, unless an early-stopping
    rule stopped it first."""
    return KILLED if stopped and reason != EARLY_STOPPED else reason
