"""Sizes Sextant accepts, in one place (the README's "Limits" section lists them for users).

Every limit exists so that a spec or a request that passes the checks can also be served:
admission (``sextant.resources.validation``) refuses specs beyond them with a message naming the
field, and the servers refuse requests beyond them with INVALID_ARGUMENT or RESOURCE_EXHAUSTED,
so nothing is accepted first and then hangs, retries forever or eats the machine's memory.
"""

from __future__ import annotations

# ---- experiment specs ---------------------------------------------------------------------------
MAX_PARAMETERS = 256
"""Parameters in spec.parameters (or in one NAS operation)."""

MAX_LIST_VALUES = 10_000
"""Values in one categorical/discrete feasibleSpace.list."""

MAX_STEPPED_VALUES = 2**53
"""Values of one stepped int/double parameter, (max - min) / step + 1 (grid walks them lazily,
so only the index arithmetic must stay exact)."""

MAX_INT_MAGNITUDE = 2**53
"""int parameters: |min|, |max| <= 2^53, so every integer in the range is exact in the double
precision the algorithms compute in."""

MAX_PARALLEL_TRIALS = 1_000
"""spec.parallelTrialCount: trials running at once (and so assignments asked for at once)."""

MAX_NAME_CHARS = 256
"""Parameter, metric, trial-parameter and algorithm-setting names."""

MAX_SETTING_VALUE_CHARS = 4_096
"""An algorithm or early-stopping setting value."""

MAX_PATH_CHARS = 4_096
"""A metrics collector's file or directory path."""

MAX_REQUEST_VALUES = 10_000
"""parallelTrialCount x parameters: the values one GetSuggestions call must produce (the work of
a call grows with both; 10,000 values take the slowest built-in algorithm a few seconds)."""

# ---- gRPC requests ------------------------------------------------------------------------------
MAX_REQUEST_NUMBER = MAX_PARALLEL_TRIALS
"""GetSuggestions.current_request_number: assignments produced by one call (and at most
MAX_REQUEST_VALUES values in all)."""

MAX_OBSERVATION_LOGS = 100_000
"""ReportObservationLog: metric logs in one call (a collector sends larger runs in batches)."""

MAX_OBSERVATION_READ = 100_000
"""GetObservationLog: rows returned by one call. The DB manager holds the reply in memory (about
4.6 MB on the wire, 27 MB of its memory at this size); a reader wanting more pages with one
metric_name and start_time/end_time windows."""

MAX_EARLY_STOPPING_TRIALS = 100_000
"""GetEarlyStoppingRules: trials in one request (each completed one may cost the service a
GetObservationLog call, made only while the caller still waits)."""

MAX_ADDRESS_CHARS = 512
"""A HOST:PORT in a request (GetEarlyStoppingRules.db_manager_address)."""

MAX_ERROR_EXCERPT = 200
"""Characters of user input an error message may quote."""
