// Sextant web UI. One script for every page: the <body data-page> attribute picks the page.
// Data comes from /ui/api/... (same-origin, the sextant_token cookie authorises it). Every value
// from the server goes into the page as text (textContent / escaped), never as markup.
"use strict";

const body = document.body;
const main = document.getElementById("main");
const STATUS_COLOURS = {
  Succeeded: "#1a7f37", Running: "#0969da", Created: "#8250df", Pending: "#8c959f", Restarting: "#bf8700",
  Failed: "#cf222e", Killed: "#6e7781", EarlyStopped: "#d4a72c", MetricsUnavailable: "#953800",
};
const PLOT_CONFIG = { displaylogo: false, responsive: true };
const MANY_TRIALS = 300; // above this, the intermediate-values plot (one log read per trial) waits for a click
// SVG scatter plots draw 2,000 points in a fraction of the time WebGL needs to start (without a
// GPU, as on servers and in headless browsers, WebGL is emulated); WebGL only pays off beyond this.
const WEBGL_POINTS = 5000;

// ---------------------------------------------------------------------------------------------
// Small helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options });
  if (res.status === 401) { location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("unauthorised"); }
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok && res.status !== 422) throw Object.assign(new Error((data && data.message) || res.statusText), { status: res.status, data });
  return data;
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined || v === "") return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : Number(v.toPrecision(digits)).toString();
  return String(v);
}

function age(ts) {
  if (!ts) return "—";
  const s = Math.max(0, (Date.now() - Date.parse(ts)) / 1000);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}

function duration(a, b) {
  if (!a) return null;
  return ((b ? Date.parse(b) : Date.now()) - Date.parse(a)) / 1000;
}

function badge(status) {
  return h("span", { class: "badge", style: `background:${STATUS_COLOURS[status] || "#57606a"}` }, status || "—");
}

function expUrl(ns, name) { return `/ui/experiments/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`; }
function trialUrl(ns, name) { return `/ui/trials/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`; }

function card(title, ...children) { return h("section", { class: "card" }, h("h2", {}, title), ...children); }

function kvTable(rows) {
  return h("table", { class: "kv" }, h("tbody", {}, rows.filter(Boolean).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))));
}

function table(headers, rows, attrs = {}) {
  return h("table", { class: "grid", ...attrs },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

function setLive(state) {
  const el = document.getElementById("live");
  if (!el) return;
  el.textContent = state === "live" ? "● live" : state === "done" ? "" : "○ " + state;
  el.className = "live " + state;
}

// Repeats `fn` every `ms` until it returns false; a failure is shown and retried.
function every(ms, fn) {
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    let again = true;
    try { again = (await fn()) !== false; setLive(again ? "live" : "done"); }
    catch (err) { setLive("retrying"); console.warn(err); }
    if (again && !stopped) setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; };
}

// Timings for bench/web_ui_bench.py (performance.getEntriesByType("mark")); the first one counts.
function mark(name) { if (!performance.getEntriesByName(name).length) performance.mark(name); }

// plotly.js comes in two bundles, loaded asynchronously so the rest of the page never waits
// for them: a small one with the cartesian traces (scatter, bar, contour, ...), which the plots
// in view at first draw with, and the full one (4.6 MB, seconds to compile on a first visit),
// fetched only when a plot needs a trace the small one lacks (parallel coordinates, 3-D, WebGL).
// Both set window.Plotly, so each is captured when its script has run, and every plot call goes
// through plotlyLib: a div is always updated by the bundle that drew it.
const CARTESIAN_TRACES = new Set(["scatter", "bar", "box", "contour", "heatmap", "histogram", "histogram2d",
  "histogram2dcontour", "image", "pie", "scatterternary", "violin"]);
const plotlyLib = {}; // "cartesian" / "full" -> that bundle's Plotly, once its script has run
const plotlyLoading = {};
function bundleFor(el, data) {
  if (el.sextantBundle === "full") return "full";
  return data.every((t) => CARTESIAN_TRACES.has(t.type || "scatter")) ? "cartesian" : "full";
}
function runScript(script) {
  return new Promise((resolve, reject) => {
    script.addEventListener("load", resolve);
    script.addEventListener("error", () => reject(new Error(`could not load ${script.src}`)));
  });
}
// The page's <script id="plotly-cartesian" async> names the full bundle in data-full.
function loadPlotly(bundle) {
  if (!plotlyLoading[bundle]) {
    const tag = document.getElementById("plotly-cartesian");
    let ran;
    if (bundle === "cartesian") ran = window.Plotly ? Promise.resolve() : runScript(tag);
    else { // after the small bundle has run: its window.Plotly must not overwrite the full one's
      ran = loadPlotly("cartesian").then(() => {
        const script = h("script", { src: tag.dataset.full, async: true });
        const done = runScript(script);
        document.head.append(script);
        return done;
      });
    }
    plotlyLoading[bundle] = ran.then(() => {
      plotlyLib[bundle] = window.Plotly;
      mark(`plotly:${bundle}`);
      drawPendingInView();
    }).catch((err) => { delete plotlyLoading[bundle]; console.error(err); });
  }
  return plotlyLoading[bundle];
}

// Plots are drawn when they come into view (and redrawn there when their data changes): with
// thousands of trials, a parallel-coordinates plot below the fold must not hold up the page.
const pendingPlots = new Map();
function inView(el) { const r = el.getBoundingClientRect(); return r.bottom >= -200 && r.top <= window.innerHeight + 200; }
function drawPending(el) {
  const [data, layout] = pendingPlots.get(el.id);
  const bundle = bundleFor(el, data), lib = plotlyLib[bundle];
  if (!lib) { loadPlotly(bundle); return; } // drawn when the bundle has run
  pendingPlots.delete(el.id);
  if (el.sextantBundle && el.sextantBundle !== bundle) plotlyLib[el.sextantBundle].purge(el);
  el.sextantBundle = bundle;
  lib.react(el, data, layout, PLOT_CONFIG);
  mark(`plot:${el.id}`);
}
function drawPendingInView() {
  for (const id of [...pendingPlots.keys()]) {
    const el = document.getElementById(id);
    if (el && (!plotObserver || inView(el))) drawPending(el);
  }
}
function purgePlot(el) {
  pendingPlots.delete(el.id);
  if (el.sextantBundle) plotlyLib[el.sextantBundle].purge(el);
  delete el.sextantBundle;
}
const plotObserver = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
  for (const e of entries) if (e.isIntersecting && pendingPlots.has(e.target.id)) drawPending(e.target);
}, { rootMargin: "200px" }) : null;
const observed = new WeakSet();
window.sextantPendingPlots = () => [...pendingPlots.keys()]; // for the browser tests
if (document.getElementById("plotly-cartesian")) loadPlotly("cartesian");

function plot(id, data, layout) {
  const el = document.getElementById(id);
  if (!el) return;
  const base = { margin: { l: 60, r: 20, t: 30, b: 50 }, font: { size: 12 }, legend: { orientation: "h", y: -0.2 } };
  pendingPlots.set(id, [data, { ...base, ...layout }]);
  // Observed even when in view: if its bundle is still loading and the user scrolls away, it
  // is drawn when it comes back.
  if (plotObserver && !observed.has(el)) { observed.add(el); plotObserver.observe(el); }
  if (!plotObserver || inView(el)) drawPending(el);
}

function downloadCsv(filename, headers, rows) {
  const cell = (v) => { const s = v === null || v === undefined ? "" : String(v); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
  const text = [headers, ...rows].map((r) => r.map(cell).join(",")).join("\n") + "\n";
  const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: filename });
  document.body.append(a); a.click(); a.remove();
}

// ---------------------------------------------------------------------------------------------
// Page 1: experiments

function experimentsPage() {
  const params = new URLSearchParams(location.search);
  let namespace = params.get("namespace") || "";
  const select = h("select", { id: "namespace", "aria-label": "namespace", onchange: () => {
    namespace = select.value;
    history.replaceState(null, "", namespace ? `/?namespace=${encodeURIComponent(namespace)}` : "/");
    refresh();
  } });
  const compareBtn = h("button", { id: "compare", disabled: true, onclick: () => {
    const chosen = [...document.querySelectorAll("input.pick:checked")].map((c) => "e=" + encodeURIComponent(c.value));
    location.href = "/ui/compare?" + chosen.join("&");
  } }, "Compare selected");
  const tbody = h("tbody", { id: "experiments-body" });
  main.replaceChildren(
    h("div", { class: "toolbar" }, h("h1", {}, "Experiments"), h("label", {}, "Namespace ", select), compareBtn,
      h("a", { class: "button", href: "/ui/create" }, "New experiment")),
    h("table", { class: "grid", id: "experiments" }, h("thead", {}, h("tr", {},
      ["", "Name", "Namespace", "Status", "Algorithm", "Objective", "Best", "Trials", "Age", ""].map((x) => h("th", {}, x)))), tbody),
    h("p", { class: "muted", id: "empty", hidden: true }, "No experiments yet. ", h("a", { href: "/ui/create" }, "Create one"), "."));
  const picked = new Set();
  async function refresh() {
    const data = await api("/ui/api/experiments" + (namespace ? `?namespace=${encodeURIComponent(namespace)}` : ""));
    const options = ["", ...data.namespaces];
    if (namespace && !options.includes(namespace)) options.push(namespace);
    select.replaceChildren(...options.map((n) => h("option", { value: n, selected: n === namespace }, n || "all namespaces")));
    tbody.replaceChildren(...data.items.map((e) => {
      const key = `${e.namespace}/${e.name}`;
      const counts = h("span", { class: "counts", title: "succeeded / running / failed / early-stopped of max" },
        h("span", { class: "ok" }, e.succeeded), " / ", h("span", { class: "run" }, e.running), " / ",
        h("span", { class: "bad" }, e.failed), " / ", h("span", { class: "es" }, e.earlyStopped), ` of ${e.max ?? "∞"}`);
      const pick = h("input", { type: "checkbox", class: "pick", value: key, checked: picked.has(key), "aria-label": `select ${key}`,
        onchange: () => { pick.checked ? picked.add(key) : picked.delete(key); compareBtn.disabled = picked.size < 2; } });
      const del = h("button", { class: "danger small", "data-delete": key, onclick: async () => {
        if (!confirm(`Delete experiment ${key} and all its trials?`)) return;
        await api(`/ui/api/experiments/${encodeURIComponent(e.namespace)}/${encodeURIComponent(e.name)}`, { method: "DELETE" });
        picked.delete(key); refresh();
      } }, "Delete");
      return h("tr", { "data-experiment": key },
        h("td", {}, pick),
        h("td", {}, h("a", { href: expUrl(e.namespace, e.name) }, e.name)),
        h("td", {}, e.namespace), h("td", {}, badge(e.status)), h("td", {}, e.algorithm),
        h("td", {}, `${e.objective.type} ${e.objective.metric}` + (e.objective.goal !== null && e.objective.goal !== undefined ? ` → ${e.objective.goal}` : "")),
        h("td", { class: "num" }, fmt(e.best)), h("td", {}, counts), h("td", {}, age(e.created)), h("td", {}, del));
    }));
    document.getElementById("empty").hidden = data.items.length > 0;
    compareBtn.disabled = picked.size < 2;
  }
  every(2000, refresh);
}

// ---------------------------------------------------------------------------------------------
// Page 3: one experiment
//
// Its plots live in static/plots/<name>.js, one file each, loaded before this script. Each file
// adds an object to window.sextantPlots:
//   { id, title, order, top?, body(ctx) -> [nodes] for its card, update(d, ctx) on new data }
// where d is /ui/api/experiments/<ns>/<name> and ctx is { ns, name, base }. `top` plots sit
// above the search space; the others follow the conditions, by `order`. A new plot is a new
// file; the page picks it up without other changes.

function numericColumn(values, type) {
  // Categorical and discrete-as-text parameters are drawn on an index axis with their labels.
  if (type === "double" || type === "int" || values.every((v) => v === null || typeof v === "number")) {
    return { values, tickvals: null, ticktext: null, categorical: false };
  }
  const labels = [...new Set(values.filter((v) => v !== null).map(String))].sort();
  return { values: values.map((v) => (v === null ? null : labels.indexOf(String(v)))), tickvals: labels.map((_, i) => i), ticktext: labels, categorical: true };
}

// Helpers the plot files share.
function objectiveName(d) { return (d.spec.objective || {}).objectiveMetricName || "objective"; }
function scoredTrials(d) { return [...d.trials.objective.keys()].filter((i) => d.trials.objective[i] !== null); }
function finishedTrials(d) { return d.trials.done.filter(Boolean).length; }

function experimentPage() {
  const ns = body.dataset.namespace, name = body.dataset.name;
  const base = `/ui/api/experiments/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  const ctx = { ns, name, base };
  const plots = [...(window.sextantPlots || [])].sort((a, b) => a.order - b.order);
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let built = false, lastKey = "", trials = null;

  async function refresh() {
    const d = await api(base);
    mark("experiment:data");
    if (!built) { build(d); built = true; }
    const t = d.trials;
    const key = JSON.stringify([t.names.length, t.status, t.objective, d.conditions.length, d.summary.status]);
    updateHeader(d);
    if (key !== lastKey) {
      lastKey = key;
      for (const p of plots) {
        try { Promise.resolve(p.update(d, ctx)).catch((err) => console.error(`plot ${p.id}:`, err)); }
        catch (err) { console.error(`plot ${p.id}:`, err); }
        mark(`experiment:${p.id}`);
      }
      mark("experiment:plots");
      trials.update(d);
      mark("experiment:table");
    }
    return !d.summary.finished;
  }

  function updateHeader(d) {
    const s = d.summary;
    document.getElementById("exp-status").replaceChildren(badge(s.status));
    document.getElementById("exp-counts").textContent =
      `${s.trials} trials: ${s.succeeded} succeeded, ${s.running} running, ${s.pending} pending, ${s.failed} failed, ${s.killed} killed, ${s.earlyStopped} early-stopped of ${s.max ?? "∞"}`;
    document.getElementById("conditions").replaceChildren(table(["Type", "Status", "Reason", "Message", "Last transition"],
      d.conditions.map((c) => [c.type, c.status, c.reason || "", c.message || "", c.lastTransitionTime || ""]), { class: "grid conditions" }));
    const o = d.optimal;
    document.getElementById("optimal").replaceChildren(o && o.bestTrialName
      ? kvTable([["Trial", h("a", { href: trialUrl(ns, o.bestTrialName) }, o.bestTrialName)],
          ...o.parameterAssignments.map((p) => [p.name, p.value]),
          ...(o.observation.metrics || []).map((m) => [m.name, `latest ${m.latest} · min ${m.min} · max ${m.max}`])])
      : h("p", { class: "muted" }, "No trial has reported the objective yet."));
  }

  function plotCard(p) { return h("section", { class: "card", id: `card-${p.id}` }, h("h2", {}, p.title), ...p.body(ctx)); }

  function build(d) {
    const spec = d.spec;
    const obj = spec.objective || {}, alg = spec.algorithm || {}, es = spec.earlyStopping;
    const space = table(["Parameter", "Type", "Feasible space"], (spec.parameters || []).map((p) => {
      const f = p.feasibleSpace || {};
      return [p.name, p.parameterType, f.list ? f.list.join(", ") : `[${f.min ?? ""}, ${f.max ?? ""}]` + (f.step ? ` step ${f.step}` : "") + (f.distribution ? ` ${f.distribution}` : "")];
    }));
    main.replaceChildren(
      h("div", { class: "toolbar" }, h("h1", {}, name), h("span", { id: "exp-status" }), h("span", { class: "muted" }, ns),
        h("a", { class: "button", href: `/ui/compare?e=${encodeURIComponent(ns + "/" + name)}` }, "Compare…")),
      h("p", { id: "exp-counts", class: "muted" }),
      h("div", { class: "cards" },
        card("Objective", kvTable([["Metric", obj.objectiveMetricName], ["Type", obj.type], ["Goal", fmt(obj.goal ?? null)],
          ["Additional metrics", (obj.additionalMetricNames || []).join(", ") || "—"],
          ["Strategies", (obj.metricStrategies || []).map((m) => `${m.name}: ${m.value}`).join(", ") || "—"]])),
        card("Algorithm", kvTable([["Name", alg.algorithmName], ...(alg.algorithmSettings || []).map((x) => [x.name, x.value]),
          ["Early stopping", es ? es.algorithmName + " " + (es.algorithmSettings || []).map((x) => `${x.name}=${x.value}`).join(" ") : "none"]])),
        card("Budget", kvTable([["Max trials", fmt(spec.maxTrialCount ?? null)], ["Parallel", fmt(spec.parallelTrialCount ?? null)],
          ["Max failed", fmt(spec.maxFailedTrialCount ?? null)], ["Resume policy", spec.resumePolicy || "—"], ["Started", d.startTime || "—"]])),
        card("Best trial", h("div", { id: "optimal" }))),
      ...plots.filter((p) => p.top).map(plotCard),
      card("Search space", space),
      card("Conditions", h("div", { id: "conditions" })),
      ...plots.filter((p) => !p.top).map(plotCard),
      card("Trials", h("div", { id: "trials" })));
    trials = trialTable(document.getElementById("trials"), ns, name);
  }

  every(3000, refresh);
}

// The trial table: sortable columns, status and value-range filters, CSV export. Sorting and
// filtering cover every trial; the table shows one page of rows at a time, because laying out
// thousands of rows costs the browser more than everything else on the page.
const TABLE_PAGE = 100;

function trialTable(root, ns, expName) {
  let data = null, sortKey = 0, sortDir = 1, pageNo = 0;
  const hidden = new Set();
  const ranges = {};
  const statusBox = h("div", { class: "filters", id: "status-filter" });
  const thead = h("thead"), tbody = h("tbody");
  const count = h("span", { class: "muted", id: "trial-count" });
  const prev = h("button", { id: "table-prev", class: "small", onclick: () => { pageNo -= 1; render(); } }, "‹ Previous");
  const next = h("button", { id: "table-next", class: "small", onclick: () => { pageNo += 1; render(); } }, "Next ›");
  const pageLabel = h("span", { class: "muted", id: "table-page" });
  root.replaceChildren(h("div", { class: "toolbar" }, statusBox, count, h("button", { id: "csv", onclick: exportCsv }, "Export CSV")),
    h("div", { class: "scroll" }, h("table", { class: "grid", id: "trial-table" }, thead, tbody)),
    h("div", { class: "toolbar pager" }, prev, pageLabel, next));

  function columns() {
    const t = data.trials;
    const cols = [{ name: "#", get: (i) => i + 1, num: true }, { name: "trial", get: (i) => t.names[i] }, { name: "status", get: (i) => t.status[i] }];
    for (const p of Object.keys(t.parameters)) cols.push({ name: p, get: (i) => t.parameters[p][i], num: t.parameterTypes[p] !== "categorical" });
    for (const m of Object.keys(t.metrics)) cols.push({ name: m, get: (i) => t.metrics[m][i], num: true });
    cols.push({ name: "objective", get: (i) => t.objective[i], num: true });
    cols.push({ name: "duration (s)", get: (i) => { const x = duration(t.started[i], t.finished[i]); return x === null ? null : Math.round(x); }, num: true });
    return cols;
  }

  function rows() {
    const cols = columns();
    let idx = [...Array(data.trials.names.length).keys()].filter((i) => !hidden.has(data.trials.status[i]));
    for (const [k, [lo, hi]] of Object.entries(ranges)) {
      const c = cols[k]; if (!c) continue;
      idx = idx.filter((i) => { const v = c.get(i); if (v === null || v === undefined) return lo === null && hi === null; return (lo === null || v >= lo) && (hi === null || v <= hi); });
    }
    const c = cols[sortKey];
    idx.sort((a, b) => { const x = c.get(a), y = c.get(b); if (x === y) return 0; if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1; return (x < y ? -1 : 1) * sortDir; });
    return { cols, idx };
  }

  function renderHead(cols) {
    thead.replaceChildren(
      h("tr", {}, cols.map((c, k) => h("th", { class: "sortable", "data-col": c.name, onclick: () => { sortDir = sortKey === k ? -sortDir : 1; sortKey = k; pageNo = 0; render(); } },
        c.name, sortKey === k ? (sortDir > 0 ? " ▲" : " ▼") : ""))),
      h("tr", { class: "range" }, cols.map((c, k) => h("th", {}, c.num && k > 0 ? rangeInputs(k, c.name) : ""))));
  }

  function render() {
    const { cols, idx } = rows();
    renderHead(cols);
    const pages = Math.max(1, Math.ceil(idx.length / TABLE_PAGE));
    pageNo = Math.min(Math.max(0, pageNo), pages - 1);
    const shown = idx.slice(pageNo * TABLE_PAGE, (pageNo + 1) * TABLE_PAGE);
    const t = data.trials;
    tbody.innerHTML = shown.map((i) => "<tr>" + cols.map((c, k) => {
      const v = c.get(i);
      if (k === 1) {
        const link = `<a href="${esc(trialUrl(ns, v))}">${esc(v)}</a>`;
        return `<td>${link}${t.failed[i] ? ` <a class="why" href="${esc(trialUrl(ns, v))}#explain">why?</a>` : ""}</td>`;
      }
      if (k === 2) return `<td><span class="badge" style="background:${STATUS_COLOURS[v] || "#57606a"}">${esc(v)}</span></td>`;
      return `<td class="${c.num ? "num" : ""}">${esc(fmt(v))}</td>`;
    }).join("") + "</tr>").join("");
    count.textContent = `${idx.length} of ${t.names.length} trials`;
    pageLabel.textContent = pages > 1 ? `rows ${pageNo * TABLE_PAGE + 1}–${pageNo * TABLE_PAGE + shown.length} of ${idx.length}` : "";
    prev.hidden = next.hidden = pages <= 1;
    prev.disabled = pageNo === 0;
    next.disabled = pageNo >= pages - 1;
  }

  function rangeInputs(k, name) {
    const [lo, hi] = ranges[k] || [null, null];
    const change = () => {
      const a = loIn.value === "" ? null : Number(loIn.value), b = hiIn.value === "" ? null : Number(hiIn.value);
      if (a === null && b === null) delete ranges[k]; else ranges[k] = [a, b];
      pageNo = 0;
      render();
    };
    const loIn = h("input", { type: "number", step: "any", placeholder: "min", value: lo ?? "", "aria-label": `${name} min`, onchange: change });
    const hiIn = h("input", { type: "number", step: "any", placeholder: "max", value: hi ?? "", "aria-label": `${name} max`, onchange: change });
    return h("span", { class: "range-inputs" }, loIn, hiIn);
  }

  function exportCsv() {
    const { cols, idx } = rows();
    downloadCsv(`${expName}-trials.csv`, cols.map((c) => c.name), idx.map((i) => cols.map((c) => c.get(i))));
  }

  return {
    update(d) {
      data = d;
      const present = [...new Set(d.trials.status)].sort();
      statusBox.replaceChildren("Status: ", ...present.map((s) => h("label", { class: "chk" },
        h("input", { type: "checkbox", checked: !hidden.has(s), "data-status": s, onchange: (e) => { e.target.checked ? hidden.delete(s) : hidden.add(s); pageNo = 0; render(); } }), ` ${s}`)));
      render();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Page 4: one trial

const EXPLAIN = /(traceback|error|exception|fatal|failed|killed|exit (code|status)|no such file|not found|cannot|denied|out of memory)/i;

function trialPage() {
  const ns = body.dataset.namespace, name = body.dataset.name;
  const base = `/ui/api/trials/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  let built = false, offset = 0, lineNo = 0, logDone = false, jumped = false, lastKey = "";
  const pre = h("pre", { id: "log", class: "log" });

  function build(d) {
    main.replaceChildren(
      h("div", { class: "toolbar" }, h("h1", {}, name), h("span", { id: "trial-status" }),
        h("a", { href: expUrl(ns, d.experiment) }, `experiment ${d.experiment}`)),
      h("div", { class: "cards" }, card("Parameters", h("div", { id: "trial-params" })), card("Metrics", h("div", { id: "trial-metrics" })),
        card("Times", h("div", { id: "trial-times" }))),
      card("Conditions", h("div", { id: "trial-conditions" })),
      card("Metric logs", h("div", { id: "metric-logs" })),
      card("Output log", h("p", {}, h("a", { href: "#explain", id: "explain-link", hidden: true }, "Jump to the lines that explain the failure"),
        h("span", { class: "muted", id: "log-state" })), pre),
      card("Trial spec (rendered)", h("pre", { id: "run-spec", class: "spec" })));
    document.getElementById("explain-link").addEventListener("click", (e) => { e.preventDefault(); jumpToExplanation(true); });
  }

  function render(d) {
    document.getElementById("trial-status").replaceChildren(badge(d.status));
    document.getElementById("trial-params").replaceChildren(kvTable(d.parameters.map((p) => [p.name, p.value])));
    document.getElementById("trial-metrics").replaceChildren(d.metrics.length
      ? table(["Metric", "Min", "Max", "Latest"], d.metrics.map((m) => [m.name, m.min, m.max, m.latest])) : h("p", { class: "muted" }, "none reported"));
    document.getElementById("trial-times").replaceChildren(kvTable([["Created", d.created || "—"], ["Started", d.startTime || "—"], ["Completed", d.completionTime || "—"],
      ["Early-stopping rules", d.earlyStoppingRules.map((r) => `${r.name} ${r.comparison} ${r.value} from step ${r.startStep}`).join("; ") || "—"]]));
    document.getElementById("trial-conditions").replaceChildren(table(["Type", "Status", "Reason", "Message", "Last transition"],
      d.conditions.map((c) => [c.type, c.status, c.reason || "", c.message || "", c.lastTransitionTime || ""]), { class: "grid conditions" }));
    document.getElementById("run-spec").textContent = d.runSpecYaml || "";
    const logs = d.observationLog || {};
    const holder = document.getElementById("metric-logs");
    const names = Object.keys(logs);
    if (!names.length) { holder.replaceChildren(h("p", { class: "muted" }, d.observationLog === null ? "Observation logs are not reachable." : "No metric reported yet.")); return; }
    if (holder.querySelectorAll(".plot").length !== names.length) {
      holder.replaceChildren(...names.map((m, k) => h("div", { class: "metric" }, h("h3", {}, m),
        h("div", { class: "metric-row" }, h("div", { id: `plot-metric-${k}`, class: "plot small", "data-metric": m }), h("div", { class: "scroll short", id: `metric-table-${k}` })))));
    }
    names.forEach((m, k) => {
      const s = logs[m];
      plot(`plot-metric-${k}`, [{ type: "scatter", mode: "lines+markers", x: s.value.map((_, i) => i + 1), y: s.value, text: s.time, name: m }],
        { xaxis: { title: { text: "report" } }, yaxis: { title: { text: m } }, height: 260, margin: { l: 60, r: 10, t: 10, b: 40 } });
      document.getElementById(`metric-table-${k}`).replaceChildren(table(["#", "Time", "Value"], s.value.map((v, i) => [i + 1, s.time[i] || "—", fmt(v, 8)])));
    });
  }

  function appendLog(text) {
    if (!text) return;
    const frag = document.createDocumentFragment();
    const lines = text.split("\n");
    if (pendingTail) { lines[0] = pendingTail + lines[0]; pre.lastChild && pre.lastChild.remove(); lineNo -= 1; }
    pendingTail = text.endsWith("\n") ? "" : lines[lines.length - 1];
    if (text.endsWith("\n")) lines.pop();
    for (const line of lines) {
      lineNo += 1;
      frag.append(h("span", { class: "line" + (EXPLAIN.test(line) ? " explain" : ""), id: `L${lineNo}` }, h("span", { class: "ln" }, lineNo), line + "\n"));
    }
    pre.append(frag);
  }
  let pendingTail = "";

  function jumpToExplanation(force) {
    const first = pre.querySelector(".explain");
    if (first && (force || !jumped)) { jumped = true; first.scrollIntoView({ block: "center" }); first.classList.add("focus"); }
  }

  async function refresh() {
    const d = await api(base);
    if (!built) { build(d); built = true; }
    const key = JSON.stringify([d.status, d.conditions.length, d.metrics, Object.values(d.observationLog || {}).map((s) => s.value.length)]);
    if (key !== lastKey) { lastKey = key; render(d); }
    let more = !logDone;
    while (more) {
      const r = await api(`${base}/log?offset=${offset}`);
      appendLog(r.text); offset = r.offset; logDone = r.done;
      missing = r.found ? 0 : missing + 1;
      document.getElementById("log-state").textContent = !r.found ? " No local output log for this trial (yet)." : r.done ? "" : " following…";
      more = r.text.length > 0 && !r.done && r.text.length >= 1024 * 1024;
    }
    const failed = d.failed;
    document.getElementById("explain-link").hidden = !(failed && pre.querySelector(".explain"));
    if (failed && location.hash === "#explain" && logDone) jumpToExplanation(false);
    // A finished trial whose log never shows up (not run by this stack) stops being asked for.
    return !(d.finished && (logDone || missing >= 5));
  }
  let missing = 0;
  every(1000, refresh);
}

// ---------------------------------------------------------------------------------------------
// Page 2: create

function createPage() {
  const text = h("textarea", { id: "yaml", spellcheck: "false", rows: 28, placeholder: "Paste a Katib Experiment (v1beta1 or v1alpha3), upload a file, or start from an example." });
  const ns = h("input", { id: "create-namespace", value: "default", "aria-label": "namespace" });
  const examples = h("select", { id: "example", "aria-label": "example" }, h("option", { value: "" }, "Start from an example…"));
  const upload = h("input", { type: "file", id: "upload", accept: ".yaml,.yml,.json" });
  const result = h("div", { id: "validation", "aria-live": "polite" });
  const annotated = h("pre", { id: "annotated", class: "annotated" });
  const createBtn = h("button", { id: "create", class: "primary", onclick: submit }, "Create");
  main.replaceChildren(h("div", { class: "toolbar" }, h("h1", {}, "Create an experiment")),
    h("div", { class: "toolbar" }, examples, h("label", {}, "Upload ", upload), h("label", {}, "Default namespace ", ns),
      h("button", { id: "validate", onclick: validate }, "Validate"), createBtn),
    h("div", { class: "editor" }, text, h("div", {}, result, annotated)));

  api("/ui/api/examples").then((r) => examples.append(...r.items.map((e) => h("option", { value: e.id }, `${e.id} — ${e.description}`))));
  examples.addEventListener("change", async () => { if (!examples.value) return; text.value = await api(`/ui/api/examples/${examples.value}`); validate(); });
  upload.addEventListener("change", async () => { const f = upload.files[0]; if (f) { text.value = await f.text(); validate(); } });
  let timer = null;
  text.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(validate, 700); });

  function show(r) {
    if (r.valid) {
      result.replaceChildren(h("p", { class: "ok-box" }, `Valid: experiment ${r.namespace}/${r.name}.`));
      annotated.replaceChildren();
      return;
    }
    result.replaceChildren(h("p", { class: "error" }, `${r.errors.length} problem${r.errors.length === 1 ? "" : "s"}:`),
      h("ul", { class: "errors" }, r.errors.map((e) => h("li", { "data-path": e.path, "data-line": e.line ?? "" },
        h("code", {}, e.path || "document"), ": ", e.message, e.line ? h("a", { href: "#", class: "muted", onclick: (ev) => { ev.preventDefault(); selectLine(e.line); } }, ` (line ${e.line})`) : ""))));
    // The YAML again, each error under the line of its field.
    const byLine = {};
    for (const e of r.errors) (byLine[e.line || 0] = byLine[e.line || 0] || []).push(e);
    const lines = text.value.split("\n");
    const out = [];
    (byLine[0] || []).forEach((e) => out.push(h("span", { class: "field-error", "data-path": e.path }, `▲ ${e.path || "document"}: ${e.message}\n`)));
    lines.forEach((line, i) => {
      out.push(h("span", { class: byLine[i + 1] ? "line bad" : "line" }, h("span", { class: "ln" }, i + 1), line + "\n"));
      (byLine[i + 1] || []).forEach((e) => out.push(h("span", { class: "field-error", "data-path": e.path }, `${" ".repeat(line.search(/\S|$/) + 5)}▲ ${e.path}: ${e.message}\n`)));
    });
    annotated.replaceChildren(...out);
  }

  function selectLine(n) {
    const lines = text.value.split("\n");
    const start = lines.slice(0, n - 1).reduce((a, l) => a + l.length + 1, 0);
    text.focus(); text.setSelectionRange(start, start + (lines[n - 1] || "").length);
  }

  async function validate() {
    if (!text.value.trim()) { result.replaceChildren(); annotated.replaceChildren(); return; }
    show(await api("/ui/api/validate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ yaml: text.value, namespace: ns.value }) }));
  }

  async function submit() {
    createBtn.disabled = true;
    try {
      const r = await api("/ui/api/experiments", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ yaml: text.value, namespace: ns.value }) });
      if (r.errors) show(r); else location.href = expUrl(r.namespace, r.name);
    } catch (err) {
      result.replaceChildren(h("p", { class: "error" }, err.message));
    } finally { createBtn.disabled = false; }
  }
}

// ---------------------------------------------------------------------------------------------
// Page 5: algorithm services

// A shared service's column: the unfinished experiments that use it now.
function sharedBy(experiments) {
  if (!experiments.length) return h("span", { class: "muted shared-by" }, "shared; no experiment uses it now");
  const links = experiments.map((e) => h("a", { href: expUrl(e.namespace, e.name) }, `${e.namespace}/${e.name}`));
  return h("span", { class: "shared-by" }, "shared by ", links.flatMap((a, i) => (i ? [", ", a] : [a])));
}

function servicesPage() {
  const algos = h("div", { id: "algorithm-services" }), stack = h("div", { id: "stack-services" });
  main.replaceChildren(h("div", { class: "toolbar" }, h("h1", {}, "Algorithm services")), card("Running for experiments", algos), card("Stack", stack));
  every(3000, async () => {
    const r = await api("/ui/api/services");
    algos.replaceChildren(r.algorithms.length ? table(["Experiment", "Namespace", "Algorithm", "Address", "State", "Up since", "Restarts", "GetSuggestions", "Mean latency (ms)"],
      r.algorithms.map((s) => [s.shared ? sharedBy(s.experiments || []) : h("a", { href: expUrl(s.namespace, s.experiment) }, s.experiment), s.namespace, s.algorithm,
        s.address + (s.earlyStoppingAddress ? ` (+ early stopping ${s.earlyStoppingAddress})` : ""),
        s.alive ? "running" : "stopped", s.upSince ? new Date(s.upSince * 1000).toISOString().replace(".000", "") : "—",
        fmt(s.restarts), s.getSuggestions ?? (s.metricsError ? "—" : "n/a"), s.meanLatencyMs ?? "—"]), { id: "algorithm-table" })
      : h("p", { class: "muted" }, "No algorithm service is running."));
    const st = r.stack;
    stack.replaceChildren(st ? table(["Service", "Address", "Pid", "Restarts", "Up for (s)", "Metrics port"],
      Object.entries(st.services || {}).map(([n, s]) => [n, s.address || "—", fmt(s.pid), fmt(s.restarts), fmt(s.uptimeSeconds), fmt(s.metrics_port)]))
      : h("p", { class: "muted" }, "No local stack state (the server is not run by `sextant up`)."));
  });
}

// ---------------------------------------------------------------------------------------------
// Compare: several experiments' histories on one plot

function comparePage() {
  const chosen = new URLSearchParams(location.search).getAll("e");
  const picker = h("select", { id: "compare-pick", multiple: true, size: 8, "aria-label": "experiments" });
  main.replaceChildren(h("div", { class: "toolbar" }, h("h1", {}, "Compare experiments")),
    card("Experiments", picker, h("p", {}, h("button", { id: "compare-go", onclick: () => {
      const sel = [...picker.selectedOptions].map((o) => "e=" + encodeURIComponent(o.value));
      location.href = "/ui/compare?" + sel.join("&");
    } }, "Compare"))),
    card("Optimisation history", h("p", { class: "muted", id: "compare-note" }), h("div", { id: "plot-compare", class: "plot" })));
  api("/ui/api/experiments").then((r) => picker.replaceChildren(...r.items.map((e) => {
    const key = `${e.namespace}/${e.name}`;
    return h("option", { value: key, selected: chosen.includes(key) }, `${key} (${e.algorithm}, ${e.objective.type} ${e.objective.metric})`);
  })));
  if (!chosen.length) { document.getElementById("compare-note").textContent = "Pick two or more experiments."; return; }
  every(3000, async () => {
    const all = await Promise.all(chosen.map((key) => { const [ns, name] = key.split("/"); return api(`/ui/api/experiments/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`).then((d) => [key, d]); }));
    const traces = [];
    const palette = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#953800", "#1b7c83"];
    all.forEach(([key, d], k) => {
      const t = d.trials, colour = palette[k % palette.length];
      const idx = [...t.names.keys()].filter((i) => t.objective[i] !== null);
      traces.push({ type: "scatter", mode: "markers", name: `${key}`, legendgroup: key, x: idx.map((i) => i + 1), y: idx.map((i) => t.objective[i]), text: idx.map((i) => t.names[i]), marker: { color: colour, size: 6, opacity: 0.6 } });
      traces.push({ type: "scatter", mode: "lines", name: `${key} best`, legendgroup: key, x: t.names.map((_, i) => i + 1), y: t.best, line: { shape: "hv", color: colour } });
    });
    const metrics = [...new Set(all.map(([, d]) => (d.spec.objective || {}).objectiveMetricName))];
    document.getElementById("compare-note").textContent = metrics.length > 1 ? `Note: the experiments optimise different metrics (${metrics.join(", ")}).` : "";
    plot("plot-compare", traces, { xaxis: { title: { text: "trial" } }, yaxis: { title: { text: metrics.join(" / ") } }, height: 460 });
    return all.some(([, d]) => !d.summary.finished);
  });
}

// ---------------------------------------------------------------------------------------------

const PAGES = { experiments: experimentsPage, experiment: experimentPage, trial: trialPage, create: createPage, services: servicesPage, compare: comparePage };
for (const a of document.querySelectorAll("nav a")) if (a.dataset.nav === body.dataset.page) a.classList.add("current");
(PAGES[body.dataset.page] || (() => {}))();
