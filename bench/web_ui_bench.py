"""Web UI benchmark: how long the experiment page of an experiment with N trials (2,000 by
default) takes to become interactive in a real browser (Debian's chromium via Playwright).

    .venv/bin/python -m bench.web_ui_bench [--trials 2000] [--rounds 5]

Set-up (not measured): the crafted experiment of ``tests/e2e/web_ui_server.py`` (an in-process
DB manager on SQLite; three parameters; 5% failed, 5% stopped early; 10 reports per trial) and
the UI's aiohttp application over the gRPC store on a loopback port.

Measured in one browser profile on disk, as a user's browser keeps one: the first visit (no
plotly.js in the HTTP cache), then ``--warmup`` visits that are not counted (Chromium keeps
plotly.js's compiled code from the third load of a script on), then ``--rounds`` visits of a
returning user. Each visit is timed from ``page.goto`` until the page is interactive: the header
and spec, the optimisation history and the first page of the trial table (with every trial
counted) are there. Plots further down draw as they are scrolled to; the parallel-coordinates
plot and the intermediate-values plot (N observation logs, loaded by a click) are timed on their
own. Also reported: the main thread's busy time per visit (Chromium's TaskDuration, less
sensitive to other work on the machine than wall time), the page's JSON request as the browser
saw it and alone, and the parameter-importance request. Medians are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.web_ui_server import ServerThread, build_app, crafted_store

TOKEN = "bench-token"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
TABLE_PAGE = 100  # rows the trial table shows at once (app.js)


def timed_get(url: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as reply:  # noqa: S310 - loopback
        reply.read()
    return time.perf_counter() - start


def wait_for(page: Any, expression: str) -> None:
    """Waits for ``expression``; on a timeout, says what the page was still waiting for."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(expression, timeout=300_000)
    except PlaywrightTimeout:
        state = page.evaluate("() => ({pending: window.sextantPendingPlots ? sextantPendingPlots() : null,"
                              " marks: performance.getEntriesByType('mark').map(m => m.name),"
                              " notes: [...document.querySelectorAll('.muted')].map(e => e.textContent).slice(0, 12)})")
        raise SystemExit(f"timed out waiting for {expression}: {state}") from None


def visit(context: Any, base: str, n: int, extras: bool) -> dict[str, Any]:
    ready = ("() => { const h = document.getElementById('plot-history');"
             f" return h && h.data && document.querySelectorAll('#trial-table tbody tr').length === {min(n, TABLE_PAGE)}"
             f" && document.getElementById('trial-count').textContent.endsWith(' of {n} trials'); }}")
    page = context.new_page()
    page.on("console", lambda m: print(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: print(f"page error: {e}"))
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    start = time.perf_counter()
    page.goto(f"{base}/ui/experiments/default/big")
    page.wait_for_function(ready, timeout=120_000, polling=50)
    out: dict[str, Any] = {"interactive_s": time.perf_counter() - start}
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    out["main_thread_s"] = metrics["TaskDuration"]
    out["marks_ms"] = page.evaluate("() => Object.fromEntries(performance.getEntriesByType('mark')"
                                    ".map(m => [m.name, Math.round(m.startTime)]))")
    # When each plotly.js bundle arrived ([request start, response end] in ms from navigation).
    out["plotly_fetch_ms"] = page.evaluate(
        "() => Object.fromEntries(performance.getEntriesByType('resource').filter(r => r.name.includes('/plotly'))"
        ".map(r => [r.name.split('/').pop().split('?')[0], [Math.round(r.startTime), Math.round(r.responseEnd)]]))")
    out["json_in_browser_s"] = page.evaluate(
        "() => { const e = performance.getEntriesByType('resource').find(r => r.name.endsWith('/experiments/default/big'));"
        " return e ? (e.responseEnd - e.startTime) / 1000 : null; }")
    if extras:
        start = time.perf_counter()
        page.locator("#plot-parallel").scroll_into_view_if_needed()
        wait_for(page, "document.getElementById('plot-parallel').data !== undefined")
        out["parallel_s"] = time.perf_counter() - start
        start = time.perf_counter()
        # Dispatched, not clicked at the button's position: plots drawn near it as the page
        # scrolls can move it between Playwright's hit test and its click, and the click is lost.
        page.dispatch_event("#load-intermediate", "click")
        page.locator("#plot-intermediate").scroll_into_view_if_needed()
        wait_for(page, "document.getElementById('plot-intermediate').data !== undefined")
        out["intermediate_s"] = time.perf_counter() - start
    page.close()
    return out


def measure(base: str, n: int, warmup: int, rounds: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, viewport={"width": 1360, "height": 900})
        context.add_cookies([{"name": "sextant_token", "value": TOKEN, "domain": "127.0.0.1", "path": "/"}])
        first = visit(context, base, n, extras=False)
        print(f"first visit: {first['interactive_s']:.2f}s (main thread {first['main_thread_s']:.2f}s), "
              f"plotly.js fetched {first['plotly_fetch_ms']}, marks {first['marks_ms']}", flush=True)
        for _ in range(warmup):
            visit(context, base, n, extras=False)
        returning = []
        for _ in range(rounds):
            returning.append(visit(context, base, n, extras=True))
            r = returning[-1]
            print(f"visit: interactive {r['interactive_s']:.2f}s (main thread {r['main_thread_s']:.2f}s, JSON "
                  f"{r['json_in_browser_s']:.2f}s), parallel {r['parallel_s']:.2f}s, intermediate "
                  f"{r['intermediate_s']:.2f}s, load {os.getloadavg()[0]:.1f}, marks {r['marks_ms']}", flush=True)
        context.close()
    return first, returning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        with crafted_store(Path(tmp), args.trials) as store:
            print(f"set-up: {args.trials} trials in {time.perf_counter() - started:.0f}s", flush=True)
            server = ServerThread(build_app(store, TOKEN, None))
            base = server.start()
            try:
                detail = [timed_get(f"{base}/ui/api/experiments/default/big") for _ in range(args.rounds)]
                importance = [timed_get(f"{base}/ui/api/experiments/default/big/importance") for _ in range(3)]
                first, returning = measure(base, args.trials, args.warmup, args.rounds)
            finally:
                server.stop()
    med = statistics.median

    def column(key: str, digits: int = 2) -> list[float]:
        return [round(r[key], digits) for r in returning]

    print(json.dumps({
        "trials": args.trials, "rounds": args.rounds,
        "first_visit_interactive_s": round(first["interactive_s"], 2),
        "first_visit_main_thread_busy_s": round(first["main_thread_s"], 2),
        "page_interactive_s": round(med(column("interactive_s")), 2),
        "page_interactive_all_s": column("interactive_s"),
        "main_thread_busy_s": round(med(column("main_thread_s")), 2),
        "json_in_browser_s": round(med(column("json_in_browser_s")), 2),
        "experiment_json_alone_s": round(med(detail), 3),
        "importance_s": round(med(importance), 2),
        "parallel_coordinates_after_scroll_s": round(med(column("parallel_s")), 2),
        "intermediate_plot_s": round(med(column("intermediate_s")), 2),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "browser_marks_ms": [r["marks_ms"] for r in returning],
    }, indent=2))


if __name__ == "__main__":
    main()
