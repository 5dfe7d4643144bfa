"""The web UI in a real browser (Debian's chromium through Playwright) against a real local stack:
a finished experiment (with failed trials) and one created from the Create page that runs while
the tests watch it. Every page must load with no console error and no failed request; plots are
checked through their data, not their pixels. The tests take a screenshot of each page; with
SEXTANT_UPDATE_SCREENSHOTS=1 they replace the README's (docs/images/), else they go to the
test's temporary directory, so a test run leaves the checkout as it was."""

from __future__ import annotations

import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sextant.resources.models import EXPERIMENT_LABEL
from sextant.sdk import SextantClient
from sextant.stack import StackPaths, read_state
from sextant.store.client import GrpcResourceStore
from tests.e2e.local_stack import ROOT, run_cli
from tests.e2e.web_ui_server import (
    EARLY_STOPPED_REPORTS,
    FULL_REPORTS,
    ServerThread,
    build_app,
    crafted_fate,
    crafted_store,
)

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sextant-web-ui"), pytest.mark.timeout(600)]

DATA = ROOT / "tests" / "data" / "web_ui"
IMAGES = ROOT / "docs" / "images"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def experiment_yaml(name: str) -> str:
    # Relative to the checkout, where the CLI and the stack run (trials run where their
    # experiment was submitted from, or where the stack was started): no machine's path in the
    # YAML the screenshots show.
    return (DATA / f"{name}.yaml").read_text().replace("TRAINER", str((DATA / "trainer.py").relative_to(ROOT)))


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Stack:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.token = (data_dir / "token").read_text().strip()
        self.store = GrpcResourceStore((data_dir / "address").read_text().strip(), token=self.token)

    def finished(self, name: str) -> bool:
        exp = self.store.get("Experiment", "default", name)
        return any(c.type in ("Succeeded", "Failed") and c.status == "True" for c in exp.status.conditions)

    def trials(self, name: str) -> list:
        return self.store.list("Trial", "default", {EXPERIMENT_LABEL: name})[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("web-ui-stack")
    up = run_cli(data_dir, "up", "--detach", "--port", "0", timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        created = run_cli(data_dir, "apply", "-f", "-", input=experiment_yaml("finished"))
        assert created.returncode == 0, created.stderr
        # two multi-objective experiments (2 and 3 objectives) run beside it for the Pareto plot
        multi = run_cli(data_dir, "apply", "-f", "-", input=experiment_yaml("pareto"))
        assert multi.returncode == 0, multi.stderr
        s = Stack(data_dir)
        wait_until(lambda: s.finished("quick"), 240, "the finished experiment")
        yield s
        s.store.close()
    finally:
        run_cli(data_dir, "down", timeout=120)


@pytest.fixture(scope="module")
def base_url(stack: Stack) -> Iterator[str]:
    """The stack's own HTTPS server when `sextant up` runs one, else the same app in-process."""
    api = ((read_state(StackPaths(stack.data_dir)) or {}).get("services") or {}).get("api-server") or {}
    if api.get("address"):
        yield f"https://{api['address']}"
        return
    server = ServerThread(build_app(stack.store, stack.token, stack.data_dir))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def crafted_url(tmp_path_factory) -> Iterator[str]:
    """The UI over the crafted experiment (tests/e2e/web_ui_server.py): 120 finished trials, some
    failed and some stopped early, more than one page of the trial table."""
    with crafted_store(tmp_path_factory.mktemp("crafted"), CRAFTED_TRIALS) as store:
        server = ServerThread(build_app(store, CRAFTED_TOKEN, None))
        yield server.start()
        server.stop()


CRAFTED_TRIALS, CRAFTED_TOKEN = 120, "crafted-token"


class Watched:
    """A signed-in page that records console errors, page errors and failed requests."""

    def __init__(self, browser, base_url: str, token: str, shots: Path):
        self.shots = shots
        self.context = browser.new_context(viewport={"width": 1360, "height": 900}, ignore_https_errors=True)
        self.context.set_default_timeout(90_000)  # a loaded 2-core machine: generous, not a timing test
        host = base_url.split("//", 1)[1].split(":")[0]
        self.context.add_cookies([{"name": "sextant_token", "value": token, "domain": host, "path": "/",
                                   "httpOnly": True, "sameSite": "Strict"}])
        self.page = self.context.new_page()
        self.base_url = base_url
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}")
                     if "net::ERR_ABORTED" not in (r.failure or "") else None)
        self.page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

    def open(self, path: str):
        self.page.goto(self.base_url + path)
        return self.page

    def shot(self, name: str) -> None:
        for plot_id in self.page.evaluate("[...document.querySelectorAll('.plot')].map(e => e.id)"):
            reveal(self.page, plot_id, required=False)
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: the README's images only when asked to update them."""
    if os.environ.get("SEXTANT_UPDATE_SCREENSHOTS") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        return IMAGES
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def watched(browser, base_url: str, stack: Stack, shots: Path) -> Iterator[Watched]:
    w = Watched(browser, base_url, stack.token, shots)
    yield w
    problems = list(w.problems)
    w.close()
    assert problems == [], problems


def js(page, expression: str):
    return page.evaluate(expression)


def reveal(page, plot_id: str, required: bool = True) -> None:
    """Scrolls a plot into view and waits until it is drawn (plots draw when they are seen)."""
    page.wait_for_selector(f"#{plot_id}")
    page.locator(f"#{plot_id}").scroll_into_view_if_needed()
    try:
        page.wait_for_function(f"document.getElementById('{plot_id}').data !== undefined"
                               f" && !sextantPendingPlots().includes('{plot_id}')",
                               timeout=60_000 if required else 3_000)
    except playwright_api.TimeoutError:
        if required:
            raise


def plot_points(page, plot_id: str, trace: int = 0, axis: str = "x") -> int:
    reveal(page, plot_id)
    return js(page, f"(document.getElementById('{plot_id}').data[{trace}].{axis} || []).length")


# ---------------------------------------------------------------------------------------------


def test_the_token_is_required(browser, base_url: str, stack: Stack):
    request = urllib.request.Request(base_url + "/ui/api/experiments")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(request, timeout=10, context=ssl._create_unverified_context())  # loopback
    assert denied.value.code == 401
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(base_url + "/ui/experiments/default/quick")
    assert page.url.startswith(base_url + "/ui/login")  # no cookie: asked for the token
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert page.locator(".error").inner_text() == "That token is not right."
    page.fill("#token", stack.token)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/ui/experiments/default/quick")
    reveal(page, "plot-history")
    context.close()
    # The printed URL: the token once, then a cookie the page's scripts cannot read.
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(f"{base_url}/?token={stack.token}")
    assert page.url == base_url + "/"  # the token is gone from the address bar
    page.wait_for_selector("tr[data-experiment='default/quick']")
    cookie = next(c for c in context.cookies() if c["name"] == "sextant_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert js(page, "document.cookie") == ""
    context.close()


def test_experiments_page_lists_with_status_and_counts(watched: Watched, stack: Stack):
    page = watched.open("/")
    row = page.locator("tr[data-experiment='default/quick']")
    row.wait_for()
    exp = stack.store.get("Experiment", "default", "quick")
    assert row.locator(".badge").inner_text() == "Succeeded"
    counts = row.locator(".counts").inner_text()
    assert counts.startswith(f"{exp.status.trials_succeeded} / 0 / {exp.status.trials_failed} / 0")
    assert counts.endswith("of 8")
    assert page.locator("#namespace option").all_inner_texts()[:2] == ["all namespaces", "default"]
    watched.shot("experiments")
    # The namespace filter asks the server for one namespace only.
    page = watched.open("/?namespace=elsewhere")
    page.wait_for_selector("#empty:not([hidden])")
    assert page.locator("#experiments-body tr").count() == 0
    page.select_option("#namespace", "default")
    page.wait_for_selector("tr[data-experiment='default/quick']")
    assert page.url.endswith("/?namespace=default")


def test_experiment_page_plots_every_trial(watched: Watched, stack: Stack):
    trials = stack.trials("quick")
    scored = [t for t in trials if t.status.observation and t.status.observation.metrics
              and t.status.observation.metrics[0].min != "unavailable"]
    failed = [t for t in trials if any(c.type == "Failed" and c.status == "True" for c in t.status.conditions)]
    assert failed, "the fixture experiment should have failed trials (x > 0.8)"
    page = watched.open("/ui/experiments/default/quick")
    reveal(page, "plot-history")
    # The page's data is asked for by the HTML itself (a preload), not after plotly.js is read.
    first = js(page, "performance.getEntriesByType('resource')"
                     ".filter(r => r.name.endsWith('/ui/api/experiments/default/quick'))[0].initiatorType")
    assert first == "link"
    # The plots in view draw with the small cartesian plotly.js; the full one (4.6 MB) is loaded
    # only for the parallel coordinates further down, and each plot keeps the bundle that drew it.
    bundles = "performance.getEntriesByType('resource').map(r => new URL(r.name).pathname).filter(p => p.includes('/plotly'))"
    assert js(page, bundles) == ["/ui/static/vendor/plotly-cartesian-3.7.0.min.js"]
    assert js(page, "document.getElementById('plot-history').sextantBundle") == "cartesian"
    assert plot_points(page, "plot-history", 0) == len(scored)
    assert plot_points(page, "plot-history", 1) == len(trials)  # best so far, one step per trial
    assert plot_points(page, "plot-history", 2) == len(failed)
    reveal(page, "plot-parallel")
    assert js(page, bundles) == ["/ui/static/vendor/plotly-cartesian-3.7.0.min.js", "/ui/static/plotly.min.js"]
    assert js(page, "document.getElementById('plot-parallel').sextantBundle") == "full"
    dims = js(page, "document.getElementById('plot-parallel').data[0].dimensions.map(d => [d.label, d.values.length])")
    assert dims == [["x", len(scored)], ["y", len(scored)], ["opt", len(scored)], ["loss", len(scored)]]
    assert js(page, "document.querySelectorAll('#slices .plot').length") == 3
    assert plot_points(page, "plot-slice-0") == len(scored)
    reveal(page, "plot-contour")
    assert js(page, "document.getElementById('plot-contour').data[0].z.length") == len(scored)
    page.locator("#plot-importance").scroll_into_view_if_needed()
    page.wait_for_function("document.getElementById('plot-importance').data"
                           " && document.getElementById('plot-importance').data[0].y.length === 3")
    # Intermediate values: every report of every scored trial (4 steps each), gaps between trials.
    page.locator("#plot-intermediate").scroll_into_view_if_needed()
    page.wait_for_function("document.getElementById('plot-intermediate').data !== undefined")
    reported = js(page, "document.getElementById('plot-intermediate').data[0].y.filter(v => v !== null).length")
    assert reported == 4 * len(scored)
    assert page.locator("#trial-table tbody tr").count() == len(trials)
    watched.shot("experiment")


@pytest.mark.parametrize("name, dims", [("pareto2", 2), ("pareto3", 3)])
def test_pareto_front_plot_shows_every_trial_and_the_front(watched: Watched, stack: Stack, name: str, dims: int):
    wait_until(lambda: stack.finished(name), 240, f"the multi-objective experiment {name}")
    exp = stack.store.get("Experiment", "default", name)
    with SextantClient(data_dir=stack.data_dir) as client:  # the SDK reads the same front
        front = [m.best_trial_name for m in client.pareto_front(name)]
        assert client.pareto_front("quick") is None  # a single-objective experiment
    assert front == [m.best_trial_name for m in exp.status.pareto_optimal_trials]
    assert exp.status.current_optimal_trial.best_trial_name == front[0]  # best loss comes first
    listed = run_cli(stack.data_dir, "get", "trials", "-e", name)
    assert listed.returncode == 0, listed.stderr
    marked = [line.split()[0] for line in listed.stdout.splitlines()[1:] if " * " in line]
    assert sorted(marked) == sorted(front)
    objectives = ["loss", "cost", "size"][:dims]
    values = {}
    for t in stack.trials(name):
        # min: the default strategy of a minimised objective (each metric is constant in a trial)
        metrics = {m.name: float(m.min) for m in (t.status.observation.metrics if t.status.observation else [])}
        if all(o in metrics for o in objectives):
            values[t.metadata.name] = [metrics[o] for o in objectives]
    page = watched.open(f"/ui/experiments/default/{name}")
    reveal(page, "plot-pareto")
    data = js(page, "document.getElementById('plot-pareto').data.map(t => ({type: t.type, name: t.name, "
                    "trials: t.customdata, x: t.x, y: t.y, z: t.z || null, text: t.text}))")
    assert [t["type"] for t in data] == (["scatter3d"] * 2 if dims == 3 else ["scatter"] * 2)
    dominated, optimal = data
    assert optimal["name"] == "Pareto-optimal" and optimal["trials"] == front
    assert sorted(dominated["trials"] + optimal["trials"]) == sorted(values)
    for trace in data:
        axes = [trace["x"], trace["y"], trace["z"]][:dims]
        for i, trial in enumerate(trace["trials"]):
            assert [a[i] for a in axes] == pytest.approx(values[trial])
            assert trace["text"][i].startswith(trial + "<br>loss = ")  # hovering shows the trial
    page.locator("#card-pareto").screenshot(path=str(watched.shots / f"pareto-{dims}d.png"))  # the card alone


def test_trial_table_sorts_filters_and_exports(watched: Watched, stack: Stack):
    trials = stack.trials("quick")
    page = watched.open("/ui/experiments/default/quick")
    page.wait_for_selector("#trial-table tbody tr")
    page.uncheck("input[data-status='Failed']")
    n_ok = sum(1 for t in trials if t.status.conditions[-1].type == "Succeeded")
    assert page.locator("#trial-table tbody tr").count() == n_ok
    page.click("th[data-col='objective']")
    values = [float(v) for v in page.locator("#trial-table tbody tr td:nth-last-child(2)").all_inner_texts()]
    assert values == sorted(values)
    # The table shows rounded values: filter at a point between two shown values, so no trial's
    # full-precision value sits on the threshold.
    middle = values[len(values) // 2]
    above = [v for v in values if v > middle]
    threshold = (middle + above[0]) / 2 if above else middle + 1
    page.fill("input[aria-label='objective max']", repr(threshold))
    page.dispatch_event("input[aria-label='objective max']", "change")
    assert page.locator("#trial-table tbody tr").count() == sum(1 for v in values if v <= threshold)
    with page.expect_download() as download:
        page.click("#csv")
    lines = Path(download.value.path()).read_text().strip().splitlines()
    assert lines[0].startswith("#,trial,status,x,y,opt,loss,objective")
    assert len(lines) == len(values) // 2 + 2


def test_failed_trial_links_to_the_lines_that_explain_it(watched: Watched, stack: Stack):
    page = watched.open("/ui/experiments/default/quick")
    page.wait_for_selector("#trial-table a.why")
    page.locator("#trial-table a.why").first.click()
    page.wait_for_url("**/ui/trials/**#explain")
    try:
        page.wait_for_selector("#log .line.explain.focus")
    except Exception:  # say what the page had instead, for a failure seen only under load
        state = js(page, "({url: location.href, status: document.querySelector('#trial-status')?.innerText,"
                         " lines: document.querySelectorAll('#log .line').length,"
                         " explain: document.querySelectorAll('#log .explain').length,"
                         " logState: document.querySelector('#log-state')?.innerText})")
        raise AssertionError(f"no focused explanation line: {state}") from None
    assert "ValueError" in page.locator("#log .line.explain.focus").inner_text()
    assert page.locator("#trial-status .badge").inner_text() == "Failed"
    watched.shot("trial-failed")


def test_trial_page_charts_each_metric_and_shows_spec_and_log(watched: Watched, stack: Stack):
    best = stack.store.get("Experiment", "default", "quick").status.current_optimal_trial.best_trial_name
    page = watched.open(f"/ui/trials/default/{best}")
    reveal(page, "plot-metric-0")
    assert plot_points(page, "plot-metric-0", axis="y") == 4
    assert page.locator("#metric-table-0 tbody tr").count() == 4
    assert "trainer.py" in page.locator("#run-spec").inner_text()
    page.wait_for_function("document.querySelectorAll('#log .line').length === 8")  # 4 × (step, loss)
    watched.shot("trial")


def test_create_shows_field_errors_then_creates_and_the_page_updates_itself(watched: Watched, stack: Stack):
    page = watched.open("/ui/create")
    # Every bundled example is offered; a v1alpha3 one loads and passes validation.
    bundled = sorted(f"{p.parent.name}/{p.name}" for p in (ROOT / "examples").glob("v*/*.yaml"))
    page.wait_for_selector(f"#example option[value='{bundled[-1]}']", state="attached")
    assert page.locator("#example option").evaluate_all("os => os.map(o => o.value).filter(Boolean)") == bundled
    page.select_option("#example", "v1alpha3/random-example.yaml")
    page.wait_for_selector("#validation .ok-box")
    assert "kubeflow.org/v1alpha3" in page.input_value("#yaml")
    bad = experiment_yaml("running").replace('max: "1.0"}}\n    - {name: y', 'max: "-1.0"}}\n    - {name: y') \
        .replace("maxFailedTrialCount: 8", "maxFailedTrialCount: 8\n  maxTrialCont: 3")
    page.fill("#yaml", bad)
    page.click("#validate")
    page.wait_for_selector("#validation ul.errors li")
    paths = page.locator("#validation ul.errors li").evaluate_all("els => els.map(e => e.dataset.path)")
    assert "spec.maxTrialCont" in paths
    assert any(p.startswith("spec.parameters[0].feasibleSpace") for p in paths)
    # Each error sits right under the line of its field in the annotated copy.
    under = js(page, "[...document.querySelectorAll('#annotated .field-error')].map(e => [e.dataset.path, e.previousElementSibling.textContent])")
    assert any(p == "spec.maxTrialCont" and "maxTrialCont: 3" in line for p, line in under)
    watched.shot("create-errors")
    assert run_cli(stack.data_dir, "get", "experiment", "slow").returncode != 0  # nothing created

    page.fill("#yaml", experiment_yaml("running"))
    page.click("#validate")
    page.wait_for_selector("#validation .ok-box")
    page.click("#create")
    page.wait_for_url("**/ui/experiments/default/slow")
    reveal(page, "plot-history")
    # Running: new trials and their values arrive without a reload.
    first = plot_points(page, "plot-history", 1)
    page.wait_for_function(f"document.getElementById('plot-history').data[1].x.length > {first}", timeout=240_000)
    assert page.locator("#exp-status .badge").inner_text() in ("Running", "Created")
    watched.shot("experiment-running")

    trial = wait_until(lambda: next((t.metadata.name for t in stack.trials("slow")
                                     if t.status.conditions and t.status.conditions[-1].type == "Running"), None),
                       120, "a running trial")
    trial_page = watched.context.new_page()
    trial_page.goto(f"{watched.base_url}/ui/trials/default/{trial}")
    trial_page.wait_for_selector("#log .line")
    lines = trial_page.locator("#log .line").count()
    assert lines < 40, "the trial should still be running (20 steps, one every 3 s)"
    trial_page.wait_for_function(f"document.querySelectorAll('#log .line').length > {lines}", timeout=60_000)
    trial_page.close()


def test_compare_services_and_delete(watched: Watched, stack: Stack):
    page = watched.open("/ui/compare?e=default/quick&e=default/slow")
    reveal(page, "plot-compare")
    names = js(page, "document.getElementById('plot-compare').data.map(t => t.name)")
    assert names == ["default/quick", "default/quick best", "default/slow", "default/slow best"]
    watched.shot("compare")

    # The local stack runs one random-search service shared by every experiment of that
    # algorithm; the page names those that use it now: the running one, not the finished ones.
    for name in ("quick", "pareto2", "pareto3"):
        wait_until(lambda name=name: stack.finished(name), 240, f"the experiment {name}")
    page = watched.open("/ui/services")
    page.wait_for_selector("#algorithm-table tbody tr")
    rows = page.locator("#algorithm-table tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.innerText))")
    running = [c for c in rows if c[2] == "random" and c[4] == "running"]
    assert len(running) == 1, rows
    cells = running[0]
    assert cells[0] == "shared by default/slow", rows
    users = page.locator("#algorithm-table tbody tr .shared-by a").evaluate_all("links => links.map(a => a.pathname)")
    assert users == ["/ui/experiments/default/slow"]
    assert int(cells[7]) >= 1  # GetSuggestions calls, scraped from the service's own metrics
    assert float(cells[8]) > 0
    assert page.locator("#stack-services tbody tr").count() >= 4
    watched.shot("services")

    page = watched.open("/")
    other = watched.context.new_page()  # a second window: it learns of the deletion by itself
    other.goto(watched.base_url + "/")
    other.wait_for_selector("tr[data-experiment='default/slow']")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.click("button[data-delete='default/slow']")
    page.wait_for_selector("tr[data-experiment='default/slow']", state="detached")
    assert dialogs == ["Delete experiment default/slow and all its trials?"]
    wait_until(lambda: run_cli(stack.data_dir, "get", "experiment", "slow").returncode != 0, 60, "the deletion")
    other.wait_for_selector("tr[data-experiment='default/slow']", state="detached", timeout=30_000)
    assert other.locator("tr[data-experiment='default/quick']").count() == 1
    other.close()


def test_early_stopping_failures_contour_axes_and_table_pages(browser, crafted_url: str, shots: Path):
    """The crafted experiment: early-stopped trials are marked in the history and cut in the
    intermediate values at their last report; any two parameters make the contour; the trial
    table shows 100 rows a page while filters and counts cover every trial."""
    fates = [crafted_fate(i) for i in range(CRAFTED_TRIALS)]
    stopped, failed = fates.count("EarlyStopped"), fates.count("Failed")
    watched = Watched(browser, crafted_url, CRAFTED_TOKEN, shots)
    try:
        page = watched.open("/ui/experiments/default/big")
        reveal(page, "plot-history")
        symbols = js(page, "document.getElementById('plot-history').data[0].marker.symbol")
        assert (symbols.count("x"), len(symbols)) == (stopped, CRAFTED_TRIALS - failed)
        assert plot_points(page, "plot-history", 2) == failed
        page.locator("#plot-intermediate").scroll_into_view_if_needed()
        page.wait_for_function("document.getElementById('plot-intermediate').data !== undefined")
        cut = js(page, "document.getElementById('plot-intermediate').data[1].x")
        assert cut == [EARLY_STOPPED_REPORTS] * stopped
        reported = js(page, "document.getElementById('plot-intermediate').data[0].y.filter(v => v !== null).length")
        assert reported == stopped * EARLY_STOPPED_REPORTS + (CRAFTED_TRIALS - stopped - failed) * FULL_REPORTS
        reveal(page, "plot-contour")
        page.select_option("#contour-y", "optimizer")
        page.wait_for_function("document.getElementById('plot-contour').layout.yaxis.title.text === 'optimizer'")
        assert js(page, "document.getElementById('plot-contour').layout.yaxis.ticktext") == ["adam", "rmsprop", "sgd"]
        assert page.locator("#trial-table tbody tr").count() == 100
        assert page.locator("#trial-count").inner_text() == f"{CRAFTED_TRIALS} of {CRAFTED_TRIALS} trials"
        page.click("#table-next")
        assert page.locator("#trial-table tbody tr").count() == CRAFTED_TRIALS - 100
        assert page.locator("#trial-table tbody tr td:first-child").first.inner_text() == "101"
        page.uncheck("input[data-status='Succeeded']")  # filtering returns to the first page
        assert page.locator("#trial-table tbody tr").count() == stopped + failed
        assert page.locator("#table-next").is_hidden()
    finally:
        problems = list(watched.problems)
        watched.close()
    assert problems == [], problems
