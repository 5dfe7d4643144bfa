"""``python -m services.suggestion.algorithms [--algorithm NAME] [server flags]``.

Without ``--algorithm`` every registered algorithm is served by one process and each request's
``algorithm_name`` selects it. Health answers SERVING for ``manager.v1beta1.Suggestion`` and ``""``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from sextant.config import DEFAULT_SUGGESTION_PORT, add_server_arguments, server_settings
from sextant.logging_setup import setup_logging
from sextant.server import GrpcServer, exit_now

from . import algorithm_classes
from .servicer import HEALTH_NAMES, SuggestionServicer, add_to_server

log = logging.getLogger("sextant.suggestion")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.suggestion.algorithms",
                                     description="Katib-compatible suggestion service")
    parser.add_argument("--algorithm", action="append", default=None,
                        help=f"algorithm to serve (repeatable; default all): {', '.join(algorithm_classes.BUILTIN)}")
    parser.add_argument("--cache-size", type=int, default=256,
                        help="experiments whose optimizer state is kept in memory (LRU)")
    add_server_arguments(parser, DEFAULT_SUGGESTION_PORT)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = server_settings(args)
    setup_logging(settings.log_level)
    names = args.algorithm
    for name in names or []:
        if algorithm_classes.load(name) is None:
            print(f"--algorithm: unknown or unavailable algorithm {name!r}; "
                  f"known: {', '.join(algorithm_classes.BUILTIN)}", file=sys.stderr)
            return 2
        algorithm_classes.load(name)  # import now so the first request is not slowed by imports
    server = GrpcServer(settings, name="suggestion", health_names=HEALTH_NAMES)
    add_to_server(SuggestionServicer(names, capacity=args.cache_size), server)
    server.install_signal_handlers()
    port = server.start()
    if not names:
        # Import every algorithm in the background so the first request of each is not slowed
        # by importing hyperopt/optuna, while health already answers.
        threading.Thread(target=algorithm_classes.available, daemon=True, name="preload").start()
    log.info("suggestion service ready", extra={"algorithms": names or "all", "port": port,
                                                "settings": settings.describe()})
    # A parent that started us on port 0 reads the chosen port from this line.
    print(f"listening on {settings.host}:{port}", flush=True)
    server.wait()
    return 0


if __name__ == "__main__":
    exit_now(main())
