// Intermediate values: each trial's objective metric over its reports, and an x where early
// stopping cut a trial. Every trial's log is its own read, so with many trials the plot waits
// for the user to ask for it.
"use strict";
(window.sextantPlots ||= []).push({
  id: "intermediate", title: "Intermediate values", order: 70,
  body() {
    this.button = h("button", { id: "load-intermediate", hidden: true, onclick: () => this.load() }, "Load");
    return [h("p", { id: "intermediate-note", class: "muted" }), this.button, h("div", { id: "plot-intermediate", class: "plot" })];
  },
  update(d, ctx) {
    this.data = d; this.ctx = ctx;
    const n = d.trials.names.length;
    if (n > MANY_TRIALS) {
      if (document.getElementById("plot-intermediate").data) return;
      this.button.hidden = false;
      document.getElementById("intermediate-note").textContent = `${n} trials: their observation logs load on request.`;
      return;
    }
    const key = `${finishedTrials(d)}/${n}`;
    if (key !== this.key) { this.key = key; this.load(); }
  },
  async load() {
    const note = document.getElementById("intermediate-note");
    this.button.hidden = true;
    note.textContent = "Loading observation logs…";
    const r = await api(`${this.ctx.base}/intermediate`);
    const xs = [], ys = [], text = [], stopX = [], stopY = [], stopText = [];
    r.names.forEach((trial, i) => {
      const values = r.values[i] || [];
      values.forEach((v, step) => { xs.push(step + 1); ys.push(v); text.push(trial); });
      xs.push(null); ys.push(null); text.push("");
      if (r.status[i] === "EarlyStopped" && values.length) { stopX.push(values.length); stopY.push(values[values.length - 1]); stopText.push(trial); }
    });
    const kind = xs.length > WEBGL_POINTS ? "scattergl" : "scatter";
    plot("plot-intermediate", [
      { type: kind, mode: "lines+markers", name: "reported values", x: xs, y: ys, text, connectgaps: false, line: { width: 1 }, marker: { size: 3 } },
      { type: kind, mode: "markers", name: "stopped early here", x: stopX, y: stopY, text: stopText, marker: { symbol: "x", size: 11, color: "#cf222e" } },
    ], { xaxis: { title: { text: "report" } }, yaxis: { title: { text: r.metric } }, height: 380 });
    const many = this.data.trials.names.length > MANY_TRIALS;
    note.textContent = `${r.metric} as each trial reported it` + (many ? " (Load again for newer reports)" : "");
    this.button.hidden = !many;
  },
});
