"""``python -m services.metrics_collector [options] -- COMMAND ARGS``: see runner.py."""

import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
