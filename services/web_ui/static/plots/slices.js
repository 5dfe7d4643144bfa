// Slice plots: the objective against each parameter, one small plot per parameter.
"use strict";
(window.sextantPlots ||= []).push({
  id: "slices", title: "Slices", order: 50,
  body: () => [h("div", { id: "slices", class: "slices" })],
  update(d) {
    const t = d.trials, params = Object.keys(t.parameters), scored = scoredTrials(d), metric = objectiveName(d);
    const ys = scored.map((i) => t.objective[i]);
    const kind = scored.length > WEBGL_POINTS ? "scattergl" : "scatter";
    const holder = document.getElementById("slices");
    if (holder.children.length !== params.length) holder.replaceChildren(...params.map((_, i) => h("div", { id: `plot-slice-${i}`, class: "plot slice" })));
    params.forEach((p, k) => {
      const c = numericColumn(scored.map((i) => t.parameters[p][i]), t.parameterTypes[p]);
      plot(`plot-slice-${k}`, [{ type: kind, mode: "markers", x: c.values, y: ys, text: scored.map((i) => t.names[i]),
        marker: { color: scored, colorscale: "Blues", showscale: false, size: 6 } }],
      { title: { text: p }, xaxis: { title: { text: p }, ...(c.categorical ? { tickvals: c.tickvals, ticktext: c.ticktext } : {}) },
        yaxis: { title: { text: metric } }, height: 300, showlegend: false, margin: { l: 50, r: 10, t: 40, b: 40 } });
    });
  },
});
