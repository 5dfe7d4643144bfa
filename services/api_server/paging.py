"""Paged lists: ``limit`` + ``continue``. A continue token names where the next page starts
(the last name served); the rest of the list is also kept briefly under it, because ``kubectl
get`` of 5,000 trials asks for ten pages of 500 and reading the store once instead of ten times
is most of its cost. A token not found there (expired, or issued by another server) is served by
listing again and resuming after the token's last name."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from aiohttp import web

from services.api_server.errors import bad_request
from services.api_server.kinds import Kind

Doc = dict[str, Any]


class ListPages:
    """The rest of each paged list, by continue token, for a minute."""

    TTL = 60.0
    MAX = 32

    def __init__(self) -> None:
        self._pages: dict[str, tuple[float, tuple[Any, ...], list[Doc], int]] = {}

    @staticmethod
    def _scope(kind: Kind, namespace: str, request: web.Request) -> tuple[Any, ...]:
        q = request.query
        return (kind, namespace, q.get("labelSelector", ""), q.get("fieldSelector", ""))

    def keep(self, token: str, kind: Kind, namespace: str, request: web.Request, rest: list[Doc],
             version: int) -> None:
        now = time.monotonic()
        self._pages = {k: v for k, v in self._pages.items() if v[0] > now}
        while len(self._pages) >= self.MAX:
            self._pages.pop(next(iter(self._pages)))
        self._pages[token] = (now + self.TTL, self._scope(kind, namespace, request), rest, version)

    def take(self, token: str, kind: Kind, namespace: str, request: web.Request) -> tuple[list[Doc], int] | None:
        entry = self._pages.pop(token, None)
        if entry is None or entry[0] < time.monotonic() or entry[1] != self._scope(kind, namespace, request):
            return None
        return entry[2], entry[3]


def encode_continue(version: int, namespace: str, name: str) -> str:
    raw = json.dumps({"rv": version, "ns": namespace, "name": name}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_continue(token: str) -> tuple[int, str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["ns"]), str(data["name"])
    except (ValueError, KeyError, TypeError):
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
