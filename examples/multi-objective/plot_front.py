"""Draws a finished multi-objective experiment's trials and Pareto front as an SVG image.

    python examples/multi-objective/plot_front.py multi-objective front.svg [--data-dir .sextant]

Reads the experiment through Sextant's SDK: ``pareto_front()`` for the Pareto-optimal trials and
``list_trials()`` for the rest. The first two objectives are the axes (the primary objective on
x). Plain SVG, written by hand, so the example needs no plotting library.
"""

from __future__ import annotations

import argparse
from html import escape

from sextant.katib.pareto import metric_value, objectives_of
from sextant.sdk import SextantClient

WIDTH, HEIGHT, MARGIN = 640, 420, 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment")
    parser.add_argument("output")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    client = SextantClient(data_dir=args.data_dir)
    experiment = client.get_experiment(args.experiment, args.namespace)
    goals = objectives_of(experiment)
    front = client.pareto_front(args.experiment, args.namespace)
    if goals is None or front is None:
        raise SystemExit(f"{args.experiment} does not declare extra objectives (sextant.io/objectives)")
    on_front = {m.best_trial_name for m in front}
    points = []  # (x, y, trial name, on the front)
    for trial in client.list_trials(args.experiment, args.namespace):
        xy = [metric_value(experiment.spec.objective, trial.status.observation, g.name) for g in goals[:2]]
        if xy[0] is not None and xy[1] is not None:
            points.append((xy[0], xy[1], trial.metadata.name, trial.metadata.name in on_front))
    if not points:
        raise SystemExit("no trial has reported every objective yet")

    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) or 1.0
    y0, y1 = min(ys), max(ys) or 1.0
    pad_x, pad_y = 0.05 * ((x1 - x0) or 1.0), 0.05 * ((y1 - y0) or 1.0)  # keep points off the axes
    x0, x1, y0, y1 = x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y
    span_x, span_y = x1 - x0, y1 - y0

    def sx(v: float) -> float:
        return MARGIN + (v - x0) / span_x * (WIDTH - 2 * MARGIN)

    def sy(v: float) -> float:
        return HEIGHT - MARGIN - (v - y0) / span_y * (HEIGHT - 2 * MARGIN)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>',
           f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>']
    for i in range(5):  # ticks
        vx, vy = x0 + span_x * i / 4, y0 + span_y * i / 4
        out.append(f'<text x="{sx(vx):.1f}" y="{HEIGHT - MARGIN + 18}" text-anchor="middle">{vx:.3g}</text>')
        out.append(f'<text x="{MARGIN - 6}" y="{sy(vy) + 4:.1f}" text-anchor="end">{vy:.3g}</text>')
    label = [f"{g.name} ({g.direction})" for g in goals[:2]]
    out.append(f'<text x="{WIDTH / 2}" y="{HEIGHT - 15}" text-anchor="middle">{escape(label[0])}</text>')
    out.append(f'<text x="15" y="{HEIGHT / 2}" text-anchor="middle" transform="rotate(-90 15 {HEIGHT / 2})">'
               f'{escape(label[1])}</text>')
    best = sorted((p for p in points if p[3]), key=lambda p: p[0])
    out.append('<polyline fill="none" stroke="#cf222e" stroke-dasharray="4 3" points="'
               + " ".join(f"{sx(p[0]):.1f},{sy(p[1]):.1f}" for p in best) + '"/>')
    for x, y, name, optimal in sorted(points, key=lambda p: p[3]):
        colour, radius = ("#cf222e", 6) if optimal else ("#8c959f", 4)
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{radius}" fill="{colour}">'
                   f'<title>{escape(name)}: {x:g}, {y:g}</title></circle>')
    out.append(f'<text x="{WIDTH - MARGIN}" y="{MARGIN - 20}" text-anchor="end">'
               f'{len(best)} Pareto-optimal (red) of {len(points)} trials</text>')
    out.append("</svg>")
    with open(args.output, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.output}: {len(points)} trials, {len(best)} on the Pareto front")


if __name__ == "__main__":
    main()
