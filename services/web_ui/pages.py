"""The HTML of each page: a shell (navigation, the page's name and arguments as data
attributes) that ``app.js`` fills from the UI's JSON endpoints. Everything dynamic is put in
through ``html.escape``; no value a user controls ever reaches markup unescaped."""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from services.web_ui import static

TEMPLATES = Path(__file__).parent / "templates"
_SHELL = (TEMPLATES / "page.html").read_text()
_LOGIN = (TEMPLATES / "login.html").read_text()
PLOTTING_PAGES = {"experiment", "trial", "compare"}  # the others load no plotly.js


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def page(page_name: str, title: str, preload: str = "", **args: str) -> web.Response:
    """``preload``: the JSON the page asks for first. The browser fetches it while it is still
    parsing plotly.js (seconds for a first visit), instead of after."""
    attrs = " ".join(f'data-{escape(k)}="{escape(v)}"' for k, v in args.items())
    head = [f'<link rel="preload" href="{escape(preload)}" as="fetch" crossorigin="anonymous">'] if preload else []
    if page_name in PLOTTING_PAGES:
        cartesian, full = static.plotly_urls()  # see app.js's loadPlotly()
        head.append(f'<script id="plotly-cartesian" src="{escape(cartesian)}" data-full="{escape(full)}" async></script>')
    if page_name == "experiment":
        head.extend(f'<script src="{escape(url)}" defer></script>' for url in static.plot_scripts())
    body = _fill(_SHELL, title=escape(title), page=escape(page_name), attrs=attrs, head="\n".join(head))
    return web.Response(text=body, content_type="text/html",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def login_page(target: str, failed: bool, status: int = 200) -> web.Response:
    error = '<p class="error" role="alert">That token is not right.</p>' if failed else ""
    body = _fill(_LOGIN, next=escape(target), error=error)
    return web.Response(text=body, content_type="text/html", status=status,
                        headers={"Cache-Control": "no-store"})


async def experiments(_request: web.Request) -> web.Response:
    return page("experiments", "Experiments")


async def create(_request: web.Request) -> web.Response:
    return page("create", "Create an experiment")


async def experiment(request: web.Request) -> web.Response:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    return page("experiment", f"{name} · experiment", namespace=ns, name=name,
                preload=f"/ui/api/experiments/{quote(ns, safe='')}/{quote(name, safe='')}")


async def trial(request: web.Request) -> web.Response:
    ns, name = request.match_info["namespace"], request.match_info["name"]
    return page("trial", f"{name} · trial", namespace=ns, name=name)


async def services(_request: web.Request) -> web.Response:
    return page("services", "Algorithm services")


async def compare(_request: web.Request) -> web.Response:
    return page("compare", "Compare experiments")
