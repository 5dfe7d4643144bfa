// Parameter importance, computed by the server with an Optuna evaluator; asked for again only
// when more trials have finished.
"use strict";
(window.sextantPlots ||= []).push({
  id: "importance", title: "Parameter importance", order: 40,
  body: () => [h("div", { id: "plot-importance", class: "plot small" }), h("p", { id: "importance-note", class: "muted" })],
  async update(d, ctx) {
    const key = `${finishedTrials(d)}/${d.trials.names.length}`;
    if (key === this.key) return;
    this.key = key;
    const r = await api(`${ctx.base}/importance`);
    const names = Object.keys(r.importance).reverse();
    document.getElementById("importance-note").textContent = r.reason ? r.reason : `${r.method}, from ${r.trials} trials.`;
    plot("plot-importance", [{ type: "bar", orientation: "h", x: names.map((k) => r.importance[k]), y: names, marker: { color: "#0969da" } }],
      { xaxis: { title: { text: "importance" }, rangemode: "tozero" }, height: 60 + 40 * Math.max(1, names.length), margin: { l: 140, r: 20, t: 10, b: 50 } });
  },
});
