// The Pareto-front card of a multi-objective experiment's page: every trial with all objective
// values as a point (2-D for two objectives, 3-D for three or more: the first three), the
// Pareto-optimal trials highlighted; hovering a point shows the trial, its values and parameters.
// Kept apart from app.js: it fetches its own data and adds its card after the history plot.
"use strict";

(() => {
  const body = document.body;
  if (body.dataset.page !== "experiment") return;
  const base = `/ui/api/experiments/${encodeURIComponent(body.dataset.namespace)}/${encodeURIComponent(body.dataset.name)}`;
  const POLL_MS = 4000;
  let lastKey = "";

  function container() {
    let el = document.getElementById("plot-pareto");
    if (el) return el;
    const history = document.getElementById("plot-history");
    if (!history) return null; // the page is not built yet
    const section = document.createElement("section");
    section.className = "card";
    section.id = "pareto-card";
    const title = document.createElement("h2");
    title.textContent = "Pareto front";
    const note = document.createElement("p");
    note.className = "muted";
    note.id = "pareto-note";
    el = document.createElement("div");
    el.id = "plot-pareto";
    el.className = "plot";
    section.append(title, note, el);
    history.closest("section").after(section);
    return el;
  }

  function traces(d) {
    const goals = d.objectives.slice(0, 3);
    const three = goals.length >= 3;
    const onFront = new Set(d.front);
    const hover = d.names.map((n, i) => [n, ...d.objectives.map((g) => `${g.name} = ${d.values[g.name][i]}`), d.parameters[i]].join("<br>"));
    const pick = (keep) => d.names.map((_, i) => i).filter((i) => onFront.has(d.names[i]) === keep);
    const trace = (idx, name, marker) => {
      const t = { type: three ? "scatter3d" : "scatter", mode: "markers", name, customdata: idx.map((i) => d.names[i]),
        text: idx.map((i) => hover[i]), hovertemplate: "%{text}<extra></extra>", marker,
        x: idx.map((i) => d.values[goals[0].name][i]), y: idx.map((i) => d.values[goals[1].name][i]) };
      if (three) t.z = idx.map((i) => d.values[goals[2].name][i]);
      return t;
    };
    // the front in the order the server gives (best first on the primary objective)
    const frontIdx = d.front.map((n) => d.names.indexOf(n)).filter((i) => i >= 0);
    return [trace(pick(false), "dominated", { color: "#8c959f", size: three ? 3 : 7, opacity: 0.6 }),
      trace(frontIdx, "Pareto-optimal", { color: "#cf222e", size: three ? 5 : 10, symbol: "diamond" })];
  }

  function draw(d) {
    const el = container();
    if (!el) return false;
    const goals = d.objectives.slice(0, 3);
    const label = (g) => `${g.name} (${g.direction})`;
    document.getElementById("pareto-note").textContent =
      `${d.front.length} Pareto-optimal of ${d.names.length} trials with every objective` +
      (d.objectives.length > 3 ? `; showing the first three of ${d.objectives.length} objectives.` : ".");
    const layout = goals.length >= 3
      ? { scene: { xaxis: { title: { text: label(goals[0]) } }, yaxis: { title: { text: label(goals[1]) } }, zaxis: { title: { text: label(goals[2]) } } } }
      : { xaxis: { title: { text: label(goals[0]) } }, yaxis: { title: { text: label(goals[1]) } } };
    Plotly.react(el, traces(d), { height: 440, margin: { l: 60, r: 20, t: 30, b: 50 }, legend: { orientation: "h", y: -0.2 }, ...layout },
      { displaylogo: false, responsive: true });
    return true;
  }

  async function refresh() {
    const res = await fetch(`${base}/pareto`, { credentials: "same-origin" });
    if (!res.ok) return true; // try again on the next tick
    const d = await res.json();
    if (!d.objectives.length) return false; // a single-objective experiment: no card
    const key = JSON.stringify([d.names.length, d.front]);
    if (key !== lastKey || !document.getElementById("plot-pareto")) {
      if (!window.Plotly || !draw(d)) return true; // the page is not built yet
      lastKey = key;
    }
    return !d.finished;
  }

  async function loop() {
    let again = true;
    try { again = await refresh(); } catch (e) { again = true; }
    if (again) setTimeout(loop, document.getElementById("plot-pareto") ? POLL_MS : 300);
  }
  loop();
})();
