"""``sextant ui``: opens the web UI of the local stack in a browser, already signed in.

The URL carries the token once (``/?token=...``); the UI swaps it for an HttpOnly cookie and
redirects to a URL without it. ``--print`` only prints the URL (for a browser elsewhere, or a
headless machine)."""

from __future__ import annotations

import argparse
import webbrowser
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from sextant.cli.context import Context
from sextant.cli.errors import EXIT_OK, CliError
from sextant.config import read_token
from sextant.stack import read_state

if TYPE_CHECKING:
    from rich.console import Console


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ui", help="open the web UI in a browser (local stack)")
    p.add_argument("--print", dest="print_only", action="store_true", help="print the URL, open nothing")
    p.set_defaults(func=cmd_ui)


def ui_url(ctx: Context) -> str:
    """The UI's sign-in URL for the stack in the context's data directory."""
    state = read_state(ctx.paths) or {}
    api = (state.get("services") or {}).get("api-server") or {}
    if not api.get("address"):
        raise CliError(f"no running stack with a web server in {ctx.data_dir}: start it with `sextant up`")
    token = read_token(ctx.token, str(ctx.paths.token))
    return f"https://{api['address']}/" + (f"?{urlencode({'token': token})}" if token else "")


def cmd_ui(ctx: Context, ns: argparse.Namespace, console: Console) -> int:
    url = ui_url(ctx)
    print(url)
    if not ns.print_only and not webbrowser.open(url):
        console.print("no browser could be started here; open the URL above")
    return EXIT_OK
