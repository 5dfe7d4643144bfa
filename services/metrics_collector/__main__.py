"""``python -m services.metrics_collector [options] -- COMMAND ARGS``: see runner.py."""

import signal
import sys

# A stop can arrive while the heavy imports below are still running: remember it instead of
# dying without an exit record.
_early_signals: list[int] = []
signal.signal(signal.SIGTERM, lambda signum, _frame: _early_signals.append(signum))

from . import runner  # noqa: E402

if __name__ == "__main__":
    runner.EARLY_SIGNALS = _early_signals
    sys.exit(runner.main())
