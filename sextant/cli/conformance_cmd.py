"""``sextant conformance``: checks a Katib Suggestion service (delegates to sextant.conformance)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sextant.cli.context import Context
from sextant.cli.errors import CliError

if TYPE_CHECKING:
    from rich.console import Console


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("conformance", help="test an algorithm service against the Katib Suggestion API",
                       add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER, help="--target HOST:PORT --algorithm NAME …")
    p.set_defaults(func=cmd_conformance)


def cmd_conformance(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    try:
        from sextant.conformance import cli as kit
    except ImportError as err:
        raise CliError(f"the conformance kit is not available ({err})") from None
    entry = getattr(kit, "main", None)
    if entry is None:
        raise CliError("the conformance kit has no main()")
    return int(entry(list(ns.args)) or 0)
