// Contour of the objective over any two parameters the user picks.
"use strict";
(window.sextantPlots ||= []).push({
  id: "contour", title: "Contour", order: 60,
  body() {
    const pick = (id) => h("select", { id, onchange: () => { this.axes = [this.x.value, this.y.value]; this.draw(); } });
    this.x = pick("contour-x"); this.y = pick("contour-y");
    return [h("div", { class: "toolbar" }, h("label", {}, "x ", this.x), h("label", {}, "y ", this.y)),
      h("p", { id: "contour-note", class: "muted" }), h("div", { id: "plot-contour", class: "plot" })];
  },
  update(d) {
    this.data = d;
    const params = Object.keys(d.trials.parameters);
    if (this.x.options.length !== params.length) {
      for (const sel of [this.x, this.y]) sel.replaceChildren(...params.map((p) => h("option", { value: p }, p)));
      this.axes = [params[0], params[1] || params[0]];
      [this.x.value, this.y.value] = this.axes;
    }
    this.draw();
  },
  draw() {
    const d = this.data, t = d.trials, note = document.getElementById("contour-note");
    const el = document.getElementById("plot-contour");
    if (Object.keys(t.parameters).length < 2) { note.textContent = "A contour needs two parameters."; return; }
    const [px, py] = this.axes, idx = scoredTrials(d);
    if (idx.length < 3) { // plotly cannot interpolate a contour from fewer points
      note.textContent = "A contour needs at least three trials with a value.";
      purgePlot(el);
      return;
    }
    note.textContent = "";
    const cx = numericColumn(idx.map((i) => t.parameters[px][i]), t.parameterTypes[px]);
    const cy = numericColumn(idx.map((i) => t.parameters[py][i]), t.parameterTypes[py]);
    const ticks = (c) => (c.categorical ? { tickvals: c.tickvals, ticktext: c.ticktext } : {});
    plot("plot-contour", [
      { type: "contour", x: cx.values, y: cy.values, z: idx.map((i) => t.objective[i]), colorscale: "Viridis", name: "objective",
        reversescale: (d.spec.objective || {}).type === "minimize", connectgaps: true, contours: { coloring: "heatmap" } },
      { type: "scatter", mode: "markers", x: cx.values, y: cy.values, text: idx.map((i) => t.names[i]), name: "trials",
        marker: { color: "#fff", line: { color: "#000", width: 1 }, size: 6 } },
    ], { xaxis: { title: { text: px }, ...ticks(cx) }, yaxis: { title: { text: py }, ...ticks(cy) }, height: 420, showlegend: false });
  },
});
