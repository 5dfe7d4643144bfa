"""A small trainer for the web-UI tests: reports ``loss`` once per step (StdOut collector) and
fails with a clear error when x is too large, so the UI has failed trials to explain."""

import sys
import time

x, y, steps, pause = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
penalty = 0.05 if sys.argv[5] == "sgd" else 0.0
more_metrics = sys.argv[6:] == ["more-metrics"]  # the multi-objective experiments' extra metrics
if x > 0.8:
    print("loading data", flush=True)
    print(f"ValueError: x={x:.3f} is larger than the model can take", flush=True)
    sys.exit(3)
for step in range(1, steps + 1):
    loss = (x - 0.3) ** 2 + (y - 0.6) ** 2 + penalty + 1.0 / step
    print(f"step {step}", flush=True)
    print(f"loss={loss:.6f}", flush=True)
    if more_metrics:  # two more metrics, in tension with the loss
        print(f"cost={(1 - x) + 0.2 * y:.6f}", flush=True)
        print(f"size={abs(x - y):.6f}", flush=True)
    time.sleep(pause)
