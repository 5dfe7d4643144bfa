// The Pareto front of a multi-objective experiment (one that declares sextant.io/objectives):
// every trial with all objective values as a point, 2-D for two objectives and 3-D for three or
// more (the first three), the Pareto-optimal trials highlighted; hovering a point shows the
// trial, its values and parameters. The data comes from the server (/pareto), asked for again
// when more trials have finished; a single-objective experiment drops the card after one ask.
"use strict";
(window.sextantPlots ||= []).push({
  id: "pareto", title: "Pareto front", order: 5, top: true,
  body: () => [h("p", { id: "pareto-note", class: "muted" }), h("div", { id: "plot-pareto", class: "plot" })],
  async update(d, ctx) {
    if (this.single) return;
    const key = `${finishedTrials(d)}/${d.trials.names.length}`;
    if (key === this.key) return;
    this.key = key;
    const r = await api(`${ctx.base}/pareto`);
    if (!r.objectives.length) { // one objective: no front to show
      this.single = true;
      document.getElementById("card-pareto")?.remove();
      return;
    }
    this.draw(r);
  },
  draw(r) {
    const goals = r.objectives.slice(0, 3), three = goals.length >= 3, onFront = new Set(r.front);
    const label = (g) => `${g.name} (${g.direction})`;
    const hover = r.names.map((n, i) => [n, ...r.objectives.map((g) => `${g.name} = ${r.values[g.name][i]}`), r.parameters[i]].join("<br>"));
    const trace = (idx, name, marker) => {
      const t = { type: three ? "scatter3d" : "scatter", mode: "markers", name, customdata: idx.map((i) => r.names[i]),
        text: idx.map((i) => hover[i]), hovertemplate: "%{text}<extra></extra>", marker,
        x: idx.map((i) => r.values[goals[0].name][i]), y: idx.map((i) => r.values[goals[1].name][i]) };
      if (three) t.z = idx.map((i) => r.values[goals[2].name][i]);
      return t;
    };
    const dominated = [...r.names.keys()].filter((i) => !onFront.has(r.names[i]));
    const front = r.front.map((n) => r.names.indexOf(n)).filter((i) => i >= 0); // best first on the primary objective
    document.getElementById("pareto-note").textContent =
      `${r.front.length} Pareto-optimal of ${r.names.length} trials with every objective` +
      (r.objectives.length > 3 ? `; showing the first three of ${r.objectives.length} objectives.` : ".");
    const axes = three
      ? { scene: { xaxis: { title: { text: label(goals[0]) } }, yaxis: { title: { text: label(goals[1]) } }, zaxis: { title: { text: label(goals[2]) } } } }
      : { xaxis: { title: { text: label(goals[0]) } }, yaxis: { title: { text: label(goals[1]) } } };
    plot("plot-pareto", [trace(dominated, "dominated", { color: "#8c959f", size: three ? 3 : 7, opacity: 0.6 }),
      trace(front, "Pareto-optimal", { color: "#cf222e", size: three ? 5 : 10, symbol: "diamond" })], { height: 440, ...axes });
  },
});
