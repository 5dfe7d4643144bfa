"""Scraping a Prometheus text endpoint of the running trial (kind PrometheusMetric).

Every scrape yields one log per wanted metric family found, stamped with the scrape time. A
family with several samples (labels) contributes its first sample. An endpoint that does not
answer yet (the trial is still starting) is simply skipped.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from sextant.metric_lines import MetricLog
from sextant.timestamps import now_rfc3339_micro


def url_from_http_get(http_get: dict[str, Any]) -> str:
    """The URL of a Kubernetes HTTPGetAction, against the local machine."""
    host = http_get.get("host") or "127.0.0.1"
    scheme = str(http_get.get("scheme") or "HTTP").lower()
    port = http_get.get("port") or 8080
    path = http_get.get("path") or "/metrics"
    return f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"


def scrape(url: str, metrics: Sequence[str], timeout: float = 2.0) -> list[MetricLog]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - user's own endpoint
            text = reply.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return []
    stamp = now_rfc3339_micro()
    out = []
    wanted = set(metrics)
    for family in text_string_to_metric_families(text):
        names = {family.name} | {s.name for s in family.samples}
        for name in sorted(names & wanted):
            sample = next((s for s in family.samples if s.name == name), None) or \
                (family.samples[0] if family.samples else None)
            if sample is not None:
                out.append(MetricLog(stamp, name, repr(float(sample.value))))
    return out
