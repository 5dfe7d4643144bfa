"""Structured logging: one line per event, ``key=value`` fields after the message.

Pass fields with ``extra``: ``log.info("trial started", extra={"trial": name})``.
``SEXTANT_LOG_FORMAT=json`` switches to JSON lines for log shippers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import TextIO

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        parts = [ts, record.levelname.lower(), record.name, json.dumps(record.getMessage())]
        parts += [f"{k}={json.dumps(v, default=str)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str | None = None, stream: TextIO | None = None) -> None:
    """Configures the root logger once per process."""
    level = (level or os.environ.get("SEXTANT_LOG_LEVEL") or "INFO").upper()
    handler = logging.StreamHandler(stream or sys.stderr)
    fmt = JsonFormatter() if os.environ.get("SEXTANT_LOG_FORMAT") == "json" else KeyValueFormatter()
    handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
