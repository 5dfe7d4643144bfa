"""Installed packages on demand.

The local runtime starts the collector with ``python -S`` because processing site-packages
(.pth files, the editable-install finder) is a large part of a wrapper's start-up and the
StdOut/File collectors in spool mode need only the standard library. Code paths that need
installed packages (grpc for direct reporting and early stopping, tensorboard for
TensorFlowEvent) call ``ensure()`` first.
"""

from __future__ import annotations

import sys

_done = False


def ensure() -> None:
    global _done
    if _done or not sys.flags.no_site:
        return
    import site

    site.main()  # what start-up would have done without -S
    _done = True
