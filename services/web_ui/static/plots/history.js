// Optimisation history: each trial's objective value in proposal order, the best so far, and
// where failed trials sit (early-stopped ones are drawn as an x).
"use strict";
(window.sextantPlots ||= []).push({
  id: "history", title: "Optimisation history", order: 10, top: true,
  body: () => [h("div", { id: "plot-history", class: "plot" })],
  update(d) {
    const t = d.trials, n = t.names.length, metric = objectiveName(d);
    const withValue = scoredTrials(d);
    const failed = [...Array(n).keys()].filter((i) => t.failed[i]);
    const kind = n > WEBGL_POINTS ? "scattergl" : "scatter";
    const ys = withValue.map((i) => t.objective[i]);
    const failY = ys.length ? ((d.spec.objective || {}).type === "maximize" ? Math.min(...ys) : Math.max(...ys)) : 0;
    const label = (i) => `${t.names[i]} (${t.status[i]})`;
    plot("plot-history", [
      { type: kind, mode: "markers", name: metric, x: withValue.map((i) => i + 1), y: ys, text: withValue.map(label),
        marker: { color: withValue.map((i) => STATUS_COLOURS[t.status[i]] || "#0969da"),
          symbol: withValue.map((i) => (t.status[i] === "EarlyStopped" ? "x" : "circle")), size: n > 500 ? 5 : 8 } },
      { type: kind, mode: "lines", name: "best so far", x: t.names.map((_, i) => i + 1), y: t.best, line: { shape: "hv", color: "#1a7f37" } },
      { type: kind, mode: "markers", name: "failed", x: failed.map((i) => i + 1), y: failed.map(() => failY), text: failed.map(label),
        marker: { color: "#cf222e", symbol: "x-thin-open", size: 10 } },
    ], { xaxis: { title: { text: "trial" } }, yaxis: { title: { text: metric } }, height: 380 });
  },
});
