"""Katib's own suggestion services, served from a Katib source checkout, for side-by-side benchmarks.

    .venv/bin/python bench/katib_reference.py --checkout ~/src/katib     # prints "PORT <n>"

Katib runs one algorithm service per experiment, and its Python services keep the experiment's
optimiser from the first request on; so here each experiment (by name) gets a fresh instance of
the service Katib deploys for its algorithm (hyperopt's for ``tpe`` and ``random``, optuna's for
``multivariate-tpe``, ``cmaes`` and ``sobol``, scikit-optimize's for ``bayesianoptimization``),
behind one gRPC server on 127.0.0.1. Nothing of Katib is copied into Sextant: the checkout is
imported as it is (``pkg/`` plus the generated ``api_pb2`` modules, which Katib's images put on
the path), so Sextant's benchmarks measure the code Katib users run. The services need the
libraries Katib pins (hyperopt, optuna, scikit-optimize); Sextant's venv has all three, at the
versions in requirements.lock rather than Katib's pins (hyperopt 0.2.5 in Katib's image).

It runs in a process of its own because Katib's generated ``api_pb2`` and Sextant's register
the same proto file name, which one protobuf descriptor pool does not allow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

#: Sextant/Katib algorithm name -> (Katib's suggestion package, its servicer class)
SERVICES = {
    "tpe": ("hyperopt", "HyperoptService"),
    "random": ("hyperopt", "HyperoptService"),
    "multivariate-tpe": ("optuna", "OptunaService"),
    "cmaes": ("optuna", "OptunaService"),
    "sobol": ("optuna", "OptunaService"),
    "bayesianoptimization": ("skopt", "SkoptService"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkout", required=True, help="a Katib source tree (github.com/kubeflow/katib)")
    args = ap.parse_args(argv)
    root = Path(args.checkout).resolve()
    if not (root / "pkg" / "suggestion" / "v1beta1").is_dir():
        raise SystemExit(f"--checkout: {root} has no pkg/suggestion/v1beta1: not a Katib source tree")
    # Katib's images put the generated modules' directories on the path (they import each other
    # as top-level modules), and the repository root for ``pkg``.
    sys.path[:0] = [str(root), str(root / "pkg/apis/manager/v1beta1/python"),
                    str(root / "pkg/apis/manager/health/python")]
    import logging

    import api_pb2_grpc  # Katib's
    import grpc

    logging.basicConfig(level=logging.WARNING)  # Katib's services log every request at INFO

    class PerExperiment(api_pb2_grpc.SuggestionServicer):
        def __init__(self) -> None:
            self.services: dict[str, Any] = {}
            self.lock = threading.Lock()

        def _service(self, request: Any) -> Any:
            name = request.experiment.name
            with self.lock:
                if name not in self.services:
                    package, cls = SERVICES[request.experiment.spec.algorithm.algorithm_name]
                    module = importlib.import_module(f"pkg.suggestion.v1beta1.{package}.service")
                    self.services[name] = getattr(module, cls)()
                return self.services[name]

        def GetSuggestions(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's name
            return self._service(request).GetSuggestions(request, context)

        def ValidateAlgorithmSettings(self, request: Any, context: Any) -> Any:  # noqa: N802
            return self._service(request).ValidateAlgorithmSettings(request, context)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    api_pb2_grpc.add_SuggestionServicer_to_server(PerExperiment(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdout = sys.stderr  # nobody reads the pipe after the port: anything printed goes to stderr
    try:
        sys.stdin.read()  # serves until the parent closes our stdin (or exits)
    finally:
        server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
