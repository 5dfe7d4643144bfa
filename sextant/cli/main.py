"""``sextant``: the command line. kubectl's conventions; every failure is a message and an exit code.

Exit codes: 0 success, 1 failure (not found, failed experiment, timeout, stack down), 2 bad input
(unreadable or invalid files, bad flags, INVALID_ARGUMENT from the server). Never a traceback,
unless SEXTANT_DEBUG=1.

Start-up is kept cheap (bench/cli_startup.py measures it): the command modules import only the
standard library and light Sextant modules at the top; pydantic, gRPC, protobuf, YAML and the
rest of rich load inside the commands that use them (tests/unit/test_cli_imports.py holds this).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, NoReturn, cast

from sextant.cli import (
    conformance_cmd,
    describe_cmd,
    logs_cmd,
    resources_cmd,
    run_cmd,
    stack_cmd,
    ui_cmd,
)
from sextant.cli.console import LazyConsole
from sextant.cli.context import Context, translate
from sextant.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, CliError

if TYPE_CHECKING:
    from rich.console import Console


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and a one-line hint (argparse's default code is also 2)."""

    def error(self, message: str) -> NoReturn:  # noqa: D401 - argparse API
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sextant", description="Hyperparameter tuning, wire-compatible with Kubeflow Katib.")
    parser.add_argument("--data-dir", default=None, help="local stack directory (default $SEXTANT_HOME, else $XDG_STATE_HOME/sextant or ~/.local/state/sextant)")
    parser.add_argument("--server", default=None, help="DB manager HOST:PORT (default: the local stack's)")
    parser.add_argument("--token", default=None, help="bearer token (default $SEXTANT_TOKEN or <data-dir>/token)")
    parser.add_argument("--tls-ca", default=None, help="CA certificate: connect with TLS")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in (stack_cmd, resources_cmd, describe_cmd, logs_cmd, run_cmd, conformance_cmd, ui_cmd):
        module.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # The conformance kit parses its own flags, so they are passed through untouched.
    ns, extra = parser.parse_known_args(argv)
    if extra and getattr(ns, "command", None) == "conformance":
        ns.args = extra + list(ns.args or [])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(ns, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    console = cast("Console", LazyConsole(stderr=False))
    errors = cast("Console", LazyConsole(stderr=True))
    ctx = Context.from_args(ns)
    try:
        return int(ns.func(ctx, ns, console) or 0)
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
    except Exception as err:  # noqa: BLE001 - the one place that turns failures into exit codes
        if os.environ.get("SEXTANT_DEBUG") == "1":
            raise
        failure = translate(err, ctx)
        if failure is None:
            failure = CliError(f"unexpected {type(err).__name__}: {err} (SEXTANT_DEBUG=1 shows the traceback)")
        from rich.markup import escape

        errors.print(f"[red]error:[/red] {escape(str(failure))}")
        for detail in failure.details:
            errors.print(f"  - {detail}", markup=False)
        return failure.code
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
