"""Reading scalars from TensorFlow event files with TensorBoard's loader (no TensorFlow needed).

A wanted metric ``tag`` matches any scalar whose tag starts with it; ``dir/tag`` additionally
restricts the match to event files whose directory ends with ``dir`` (Katib's convention for
e.g. ``train/accuracy`` vs ``test/accuracy``). Timestamps are the events' wall times in RFC3339.
Files are read incrementally: each call returns only events appended since the last one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sextant.metric_lines import MetricLog
from sextant.timestamps import to_rfc3339_micro

log = logging.getLogger("sextant.metrics_collector")


def _scalar(value: Any) -> float | None:
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        from tensorboard.util import tensor_util

        array = tensor_util.make_ndarray(value.tensor)
        if array.size == 1:
            return float(array.reshape(()).item())
    return None


def _stamp(wall_time: float) -> str:
    return to_rfc3339_micro(dt.datetime.fromtimestamp(wall_time, dt.UTC))


class TfEventReader:
    def __init__(self, root: str | Path, metrics: Sequence[str]):
        self.root = Path(root)
        self.metrics = list(metrics)
        self._loaders: dict[Path, Any] = {}  # EventFileLoader (untyped)

    def _files(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.rglob("*") if p.is_file() and "tfevents" in p.name)

    def _wanted(self, path: Path, tag: str) -> str | None:
        for metric in self.metrics:
            if "/" in metric:
                directory, _, prefix = metric.rpartition("/")
                parent = str(path.parent).rstrip("/")
                if parent.endswith(directory) and tag.startswith(prefix):
                    return metric
            elif tag.startswith(metric):
                return metric
        return None

    def read(self) -> list[MetricLog]:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

        out: list[MetricLog] = []
        for path in self._files():
            loader = self._loaders.get(path)
            if loader is None:
                loader = self._loaders[path] = EventFileLoader(str(path))
            for event in loader.Load():
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    metric = self._wanted(path, value.tag)
                    if metric is None:
                        continue
                    number = _scalar(value)
                    if number is not None:
                        out.append(MetricLog(_stamp(event.wall_time), metric, repr(number)))
        return out
