"""Content negotiation: the ``Accept`` header's media types and their Kubernetes parameters
(``as=Table;g=meta.k8s.io;v=v1``, ``as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;v=v2``).

Parameters are compared whole: ``v=v2`` never matches ``v=v2beta1`` (kubectl 1.29 asks only
for v2beta1 and fails on a v2 answer)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MediaType:
    type: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_json(self) -> bool:
        return self.type in ("application/json", "application/*", "*/*")

    def wants(self, as_: str, group: str, versions: tuple[str, ...]) -> str | None:
        """The version asked for if this is a request for ``as_`` of ``group``, else None."""
        if not self.is_json or self.params.get("as") != as_ or self.params.get("g") != group:
            return None
        version = self.params.get("v", "")
        return version if version in versions else None


def parse_accept(header: str | None) -> list[MediaType]:
    out = []
    for part in (header or "").split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for p in pieces[1:]:
            key, sep, value = p.partition("=")
            if sep:
                params[key.strip()] = value.strip().strip('"')
        out.append(MediaType(pieces[0].lower(), params))
    return out or [MediaType("application/json")]


def choose(header: str | None, as_: str, group: str, versions: tuple[str, ...]) -> str | None:
    """The version of ``as_`` to answer with, or None for the plain JSON answer. The client's
    order is its preference: the first media type we can serve wins."""
    for media in parse_accept(header):
        version = media.wants(as_, group, versions)
        if version:
            return version
        if media.is_json and "as" not in media.params:
            return None
    return None


TABLE_VERSIONS = ("v1", "v1beta1")
DISCOVERY_VERSIONS = ("v2", "v2beta1")


def table_version(header: str | None) -> str | None:
    return choose(header, "Table", "meta.k8s.io", TABLE_VERSIONS)


def discovery_version(header: str | None) -> str | None:
    return choose(header, "APIGroupDiscoveryList", "apidiscovery.k8s.io", DISCOVERY_VERSIONS)
