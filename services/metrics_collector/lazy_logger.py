"""The collector's logger, with ``logging`` imported only when something is logged: a trial
that runs cleanly logs nothing, and the import is a noticeable part of the wrapper's start-up."""

from __future__ import annotations

import sys

# `typing` is not imported at run time (start-up cost); mypy treats this flag as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_level = "INFO"
_logger = None  # logging.Logger once something is logged (typing is not imported either)


def configure(level: str) -> None:
    global _level
    _level = level.upper()


class _LazyLogger:
    def __getattr__(self, name: str) -> Any:
        global _logger
        if _logger is None:
            import logging

            logging.basicConfig(level=_level, stream=sys.stderr,
                                format="%(asctime)s %(levelname)s metrics-collector %(message)s")
            _logger = logging.getLogger("sextant.metrics_collector")
        return getattr(_logger, name)


log = _LazyLogger()
