"""What the UI reads from the local stack's data directory: trial output logs, the algorithm
services the suggestion controller started, the supervisor's state, and the bundled examples.

Every name that becomes part of a path is checked as a Kubernetes name first, so nothing a
request carries can reach outside the data directory.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from sextant.runtime import process
from sextant.runtime.local_jobs import trial_log_archive

MAX_LOG_CHUNK = 1024 * 1024  # bytes per answer; the page asks again from the new offset
# The example experiments are package data of ``sextant`` (in a checkout, ``sextant/examples/*``
# are links to the repository's ``examples/`` folders), so an installed wheel has them too.
EXAMPLES = Path(str(files("sextant") / "examples"))


def trial_log(data_dir: Path | None, namespace: str, trial: str, offset: int = 0) -> dict[str, Any]:
    """Bytes of a trial's output log from ``offset``: ``{text, offset, done, found}``.

    ``done`` means the log will not grow any more: the job wrote its exit record, or the log was
    archived when the job directory was removed. A log not found (yet) is never done: the job
    may not have started, and the page decides from the trial's status when to stop asking."""
    process.validate_name(namespace, "namespace")
    process.validate_name(trial, "trial")
    if data_dir is None:
        return {"text": "", "offset": 0, "done": True, "found": False}
    job = Path(data_dir) / "jobs" / namespace / trial
    kept = trial_log_archive(Path(data_dir)) / namespace / f"{trial}.log"
    # The live log first; the trial controller may move it to the archive at any moment.
    sources: tuple[tuple[Path, Callable[[], bool]], ...] = (
        (job / "output.log", lambda: (job / "exit.json").exists()), (kept, lambda: True))
    for path, done in sources:
        finished = done()  # read before the bytes, so the last bytes are never missed
        try:
            with open(path, "rb") as f:
                f.seek(max(0, offset))
                chunk = f.read(MAX_LOG_CHUNK)
        except FileNotFoundError:
            continue
        more = len(chunk) == MAX_LOG_CHUNK
        return {"text": chunk.decode("utf-8", errors="replace"), "offset": max(0, offset) + len(chunk),
                "done": finished and not more, "found": True}
    return {"text": "", "offset": max(0, offset), "done": False, "found": False}


def _scrape(address: str | None, timeout: float = 1.0) -> dict[str, Any]:
    """GetSuggestions count and mean latency from a service's Prometheus endpoint, if it has one."""
    if not address:
        return {}
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout) as reply:  # noqa: S310
            text = reply.read().decode()
    except OSError:
        return {"metricsError": f"no answer from http://{address}/metrics"}
    count = total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "sextant_grpc_request_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("method") != "GetSuggestions":
                continue
            if sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
    return {"getSuggestions": int(count), "meanLatencyMs": round(1000 * total / count, 2) if count else None}


def algorithm_services(data_dir: Path | None) -> list[dict[str, Any]]:
    """The algorithm (and early-stopping) services the local runtime started, alive or not."""
    if data_dir is None:
        return []
    out = []
    for state_file in sorted((Path(data_dir) / "services").glob("*/*/state.json")):
        state = process.read_json(state_file) or {}
        main = process.ProcessId.from_dict(state.get("main"))
        early = process.ProcessId.from_dict(state.get("early_stopping"))
        row = {
            "namespace": state.get("namespace", state_file.parent.parent.name),
            "name": state.get("name", state_file.parent.name),
            # A service shared by every experiment of its algorithm has no Suggestion of its own.
            "experiment": state["suggestion"] if "suggestion" in state else state.get("name", ""),
            "shared": state.get("suggestion") == "",
            "algorithm": state.get("algorithm", ""),
            "address": state.get("address"),
            "earlyStoppingAddress": state.get("early_stopping_address"),
            "alive": process.is_alive(main),
            "earlyStoppingAlive": process.is_alive(early) if early else None,
            "upSince": state.get("created"),
            "restarts": state.get("restarts", 0),
            "pid": main.pid if main else None,
        }
        if row["alive"]:
            row.update(_scrape(state.get("metrics_address")))
        out.append(row)
    return out


def stack_services(data_dir: Path | None) -> dict[str, Any] | None:
    """The supervisor's published state (``stack.json``): its services, restarts, ports."""
    if data_dir is None:
        return None
    state = process.read_json(Path(data_dir) / "stack.json")
    if state is None:
        return None
    now = time.time()
    for service in (state.get("services") or {}).values():
        started = service.get("started_at")
        service["uptimeSeconds"] = round(now - started) if started else None
    return state


def list_examples() -> list[dict[str, str]]:
    """The example experiments shipped with Sextant (``examples/<apiVersion>/*.yaml``)."""
    if not EXAMPLES.is_dir():
        return []
    out = []
    for path in sorted(EXAMPLES.glob("v*/*.yaml")):
        first = next((line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")), "")
        out.append({"id": f"{path.parent.name}/{path.name}", "description": first})
    return out


def read_example(example_id: str) -> str | None:
    known = {e["id"] for e in list_examples()}
    if example_id not in known:
        return None
    return (EXAMPLES / example_id).read_text()
