"""kubectl's JSONPath templates for ``-o jsonpath=`` and ``-o custom-columns=``.

The subset people type: text with ``{...}`` actions; paths of ``.field``, ``['field']``,
``[n]`` (negative from the end), ``[start:end]``, ``[*]``/``.*``, ``..field`` (recursive) and
``[?(@.path == "value")]`` filters (``==``, ``!=``, ``<``, ``>``, ``<=``, ``>=``, or a bare
``@.path`` for "exists"); string literals (``{"\\n"}``); and ``{range PATH}...{end}``. Several
results of one action are joined by spaces; strings print bare, maps and lists as JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sextant.cli.errors import BadInput


@dataclass
class Path:
    steps: list[tuple[str, Any]]


@dataclass
class Range:
    path: Path
    body: list[Node] = field(default_factory=list)


Node = str | Path | Range  # text, a value to print, or a loop


def _bad(template: str, why: str) -> BadInput:
    return BadInput(f"-o jsonpath: {why} in {template!r}")


def parse_template(template: str) -> list[Node]:
    """The template's nodes; BadInput names what is wrong (unclosed brace, unknown syntax)."""
    root: list[Node] = []
    stack: list[list[Node]] = [root]
    i = 0
    while i < len(template):
        start = template.find("{", i)
        if start < 0:
            stack[-1].append(template[i:])
            break
        if start > i:
            stack[-1].append(template[i:start])
        end = _closing_brace(template, start)
        if end < 0:
            raise _bad(template, "unclosed {")
        action = template[start + 1:end].strip()
        i = end + 1
        if action.startswith('"') or action.startswith("'"):
            stack[-1].append(_literal(action, template))
        elif action == "end":
            if len(stack) == 1:
                raise _bad(template, "{end} without {range}")
            stack.pop()
        elif action.startswith("range ") or action.startswith("range\t"):
            loop = Range(parse_path(action[6:].strip(), template))
            stack[-1].append(loop)
            stack.append(loop.body)
        else:
            stack[-1].append(parse_path(action, template))
    if len(stack) > 1:
        raise _bad(template, "{range} without {end}")
    return root


def _closing_brace(text: str, start: int) -> int:
    quote = ""
    for j in range(start + 1, len(text)):
        ch = text[j]
        if quote:
            if ch == "\\":
                continue
            if ch == quote and text[j - 1] != "\\":
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "}":
            return j
    return -1


def _literal(action: str, template: str) -> str:
    quote = action[0]
    if len(action) < 2 or action[-1] != quote:
        raise _bad(template, f"unclosed string literal {action}")
    body = action[1:-1] if quote == '"' else action[1:-1].replace("\\'", "'").replace('"', '\\"')
    try:
        value = json.loads(f'"{body}"', strict=False)  # JSON escapes (newline, tab, quote, unicode)
    except ValueError:
        raise _bad(template, f"bad string literal {action}") from None
    return str(value)


_FIELD = re.compile(r"[A-Za-z_$][\w\-/$]*")
_FILTER = re.compile(r"^@((?:\.[\w\-/]+|\[\d+\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+))?$")


def parse_path(text: str, template: str = "") -> Path:
    template = template or text
    steps: list[tuple[str, Any]] = []
    i = 1 if text[:1] in ("$", "@") else 0
    while i < len(text):
        if text.startswith("..", i):
            match = _FIELD.match(text, i + 2)
            if not match:
                raise _bad(template, "expected a field name after ..")
            steps.append(("recurse", match.group()))
            i = match.end()
        elif text[i] == ".":
            if text.startswith(".*", i):
                steps.append(("all", None))
                i += 2
                continue
            match = _FIELD.match(text, i + 1)
            if not match:
                if i + 1 == len(text) and not steps:  # "{.}" is the object itself
                    break
                raise _bad(template, f"expected a field name at {text[i:]!r}")
            steps.append(("field", match.group()))
            i = match.end()
        elif text[i] == "[":
            close = text.find("]", i)
            if text.startswith("[?(", i):
                close = text.find(")]", i)
                if close < 0:
                    raise _bad(template, "unclosed filter [?(...)]")
                steps.append(("filter", _filter(text[i + 3:close].strip(), template)))
                i = close + 2
                continue
            if close < 0:
                raise _bad(template, "unclosed [")
            steps.append(_subscript(text[i + 1:close].strip(), template))
            i = close + 1
        else:
            raise _bad(template, f"unexpected {text[i:]!r}")
    return Path(steps)


def _subscript(inner: str, template: str) -> tuple[str, Any]:
    if inner == "*":
        return ("all", None)
    if inner[:1] in "'\"" and inner[-1:] == inner[:1] and len(inner) >= 2:
        return ("field", inner[1:-1])
    try:
        if ":" in inner:
            lo, _, hi = inner.partition(":")
            hi = hi.partition(":")[0]
            return ("slice", (int(lo) if lo.strip() else None, int(hi) if hi.strip() else None))
        return ("index", int(inner))
    except ValueError:
        raise _bad(template, f"bad subscript [{inner}]") from None


def _filter(expression: str, template: str) -> tuple[Path, str, Any]:
    match = _FILTER.match(expression)
    if not match:
        raise _bad(template, f"unsupported filter ?({expression})")
    path, op, raw = match.group(1), match.group(2) or "", match.group(3)
    value: Any = None
    if op:
        raw = raw.strip()
        if raw[:1] in "'\"" and raw[-1:] == raw[:1]:
            value = raw[1:-1]
        else:
            try:
                value = json.loads(raw)
            except ValueError:
                raise _bad(template, f"bad value {raw!r} in filter") from None
    return parse_path(path, template), op, value


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    try:
        return bool({"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op])
    except TypeError:
        return False


def select(path: Path, value: Any) -> list[Any]:
    """Every value ``path`` reaches from ``value`` (missing fields reach nothing)."""
    current = [value]
    for kind, arg in path.steps:
        nxt: list[Any] = []
        for v in current:
            if kind == "field":
                if isinstance(v, dict) and arg in v:
                    nxt.append(v[arg])
            elif kind == "all":
                nxt += list(v.values()) if isinstance(v, dict) else list(v) if isinstance(v, list) else []
            elif kind == "index":
                if isinstance(v, list) and -len(v) <= arg < len(v):
                    nxt.append(v[arg])
            elif kind == "slice":
                if isinstance(v, list):
                    nxt += v[arg[0]:arg[1]]
            elif kind == "recurse":
                nxt += _recurse(v, arg)
            elif kind == "filter":
                sub, op, right = arg
                for item in (v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else []):
                    found = select(sub, item)
                    if (found and not op) or (op and found and _compare(found[0], op, right)):
                        nxt.append(item)
        current = nxt
    return current


def _recurse(value: Any, name: str) -> list[Any]:
    out: list[Any] = []
    if isinstance(value, dict):
        if name in value:
            out.append(value[name])
        for v in value.values():
            out += _recurse(v, name)
    elif isinstance(value, list):
        for v in value:
            out += _recurse(v, name)
    return out


def show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def evaluate(nodes: list[Node], value: Any) -> list[str]:
    """The template's output pieces for ``value`` (join them with "")."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Path):
            found = select(node, value)
            if found:
                out.append(" ".join(show(v) for v in found))
        else:
            for item in select(node.path, value):
                out += evaluate(node.body, item)
    return out
