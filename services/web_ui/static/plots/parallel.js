// Parallel coordinates: every parameter and the objective, one line per scored trial; plotly
// lets the user drag along an axis to keep only a range (brushing).
"use strict";
(window.sextantPlots ||= []).push({
  id: "parallel", title: "Parallel coordinates", order: 30,
  body: () => [h("p", { class: "muted" }, "Drag along an axis to select a range."), h("div", { id: "plot-parallel", class: "plot" })],
  update(d) {
    const t = d.trials, scored = scoredTrials(d), ys = scored.map((i) => t.objective[i]);
    const dims = Object.keys(t.parameters).map((p) => {
      const c = numericColumn(scored.map((i) => t.parameters[p][i]), t.parameterTypes[p]);
      return { label: p, values: c.values, ...(c.categorical ? { tickvals: c.tickvals, ticktext: c.ticktext } : {}) };
    });
    dims.push({ label: objectiveName(d), values: ys });
    plot("plot-parallel", [{ type: "parcoords", dimensions: dims,
      line: { color: ys, colorscale: "Viridis", showscale: true, reversescale: (d.spec.objective || {}).type === "minimize" } }],
    { height: 400, margin: { l: 80, r: 80, t: 50, b: 30 } });
  },
});
