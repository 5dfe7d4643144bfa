"""A stand-in service for supervisor tests: takes the real services' flags and serves health only.

``python -m tests.e2e.fake_service --port P [...]``. Lets the supervisor's behaviour (start,
restart after kill -9, graceful stop) be tested apart from the real services.
"""

from __future__ import annotations

import argparse

from sextant.config import add_server_arguments, server_settings
from sextant.server import GrpcServer


def main() -> None:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser, 0)
    parser.add_argument("--db-url")
    parser.add_argument("--db-manager")
    settings = server_settings(parser.parse_args())
    server = GrpcServer(settings, name="fake")
    server.install_signal_handlers()
    server.start()
    server.wait()


if __name__ == "__main__":
    main()
