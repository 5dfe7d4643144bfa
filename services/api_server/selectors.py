"""Label and field selectors as the Kubernetes API takes them in ``labelSelector`` and
``fieldSelector``: equality (``=``, ``==``, ``!=``), set (``in``, ``notin``) and existence
(``key``, ``!key``) for labels; ``=``, ``==``, ``!=`` on a few fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.api_server.errors import bad_request

_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present


def _split_top(text: str) -> list[str]:
    """Splits on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_labels(text: str | None) -> list[Requirement]:
    out = []
    for part in _split_top(text or ""):
        m = _SET.match(part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            out.append(Requirement(m.group(1), m.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            out.append(Requirement(key.strip(), "!=", (value.strip(),)))
        elif "=" in part:
            key, value = part.replace("==", "=", 1).split("=", 1)
            out.append(Requirement(key.strip(), "=", (value.strip(),)))
        elif part.startswith("!"):
            out.append(Requirement(part[1:].strip(), "!exists"))
        elif re.match(r"^[A-Za-z0-9./_-]+$", part):
            out.append(Requirement(part, "exists"))
        else:
            raise bad_request(f"unable to parse requirement: {part!r} in labelSelector")
    return out


def equality_pairs(requirements: list[Requirement]) -> dict[str, str]:
    """The ``key=value`` requirements, which the resource store filters on itself."""
    return {r.key: r.values[0] for r in requirements if r.op == "="}


def parse_fields(text: str | None, getters: Mapping[str, Callable[[dict[str, Any]], Any]]) -> list[tuple[str, str, str]]:
    out = []
    for part in _split_top(text or ""):
        if "!=" in part:
            key, value = part.split("!=", 1)
            op = "!="
        elif "=" in part:
            key, value = part.replace("==", "=", 1).split("=", 1)
            op = "="
        else:
            raise bad_request(f"invalid selector: {part!r}; can't understand fieldSelector")
        key = key.strip()
        if key not in getters:
            raise bad_request(f'field label not supported: {key}')
        out.append((key, op, value.strip()))
    return out


@dataclass(frozen=True)
class Selector:
    labels: list[Requirement]
    fields: list[tuple[str, str, str]]
    getters: Mapping[str, Callable[[dict[str, Any]], Any]]

    def matches(self, doc: dict[str, Any]) -> bool:
        labels = (doc.get("metadata") or {}).get("labels") or {}
        if not all(r.matches(labels) for r in self.labels):
            return False
        for key, op, value in self.fields:
            actual = str(self.getters[key](doc) or "")
            if (actual == value) != (op == "="):
                return False
        return True


def _path(*keys: str) -> Callable[[dict[str, Any]], Any]:
    def get(doc: dict[str, Any]) -> Any:
        value: Any = doc
        for key in keys:
            value = (value or {}).get(key) if isinstance(value, dict) else None
        return value
    return get


COMMON_FIELDS = {"metadata.name": _path("metadata", "name"), "metadata.namespace": _path("metadata", "namespace")}
EVENT_FIELDS = {**COMMON_FIELDS, **{f"involvedObject.{k}": _path("involvedObject", k)
                                    for k in ("kind", "name", "namespace", "uid", "apiVersion",
                                              "resourceVersion", "fieldPath")},
                "reason": _path("reason"), "type": _path("type"), "source": _path("source", "component")}
POD_FIELDS = {**COMMON_FIELDS, "status.phase": _path("status", "phase")}


def selector(label_text: str | None, field_text: str | None,
             getters: Mapping[str, Callable[[dict[str, Any]], Any]] = COMMON_FIELDS) -> Selector:
    return Selector(parse_labels(label_text), parse_fields(field_text, getters), getters)
