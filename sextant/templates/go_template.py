"""A small subset of Go's text/template, enough for Katib v1alpha3 ``goTemplate`` trial templates.

Supported:
* text and actions ``{{ ... }}``, with the trim markers ``{{- `` and `` -}}`` (they remove the
  whitespace, newlines included, before / after the action) and comments ``{{/* ... */}}``;
* field chains ``.Trial``, ``.HyperParameters``, ``.Name.Sub`` and the dot ``.`` itself;
* ``{{range PIPE}} ... [{{else}} ...] {{end}}``, ``{{with PIPE}} ... [{{else}} ...] {{end}}``,
  ``{{if PIPE}} ... [{{else}} ...] {{end}}``;
* string literals in double quotes.

Anything else — functions (``printf``, ``index``...), pipes ``|``, variables ``$x``,
``define``/``template``/``block``, ``else if`` — is rejected with a ``TemplateError`` naming the
construct and its line, instead of rendering something subtly different from Go.

The implementation is a tokenizer → tree → renderer, written for this project.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class TemplateError(ValueError):
    pass


# --- tokenizer ------------------------------------------------------------------------------

@dataclass
class _Text:
    text: str


@dataclass
class _Action:
    body: str
    line: int


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


def _tokenize(source: str) -> list[_Text | _Action]:
    tokens: list[_Text | _Action] = []
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(source):
        text = source[pos:match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        if text:
            tokens.append(_Text(text))
        line = source.count("\n", 0, match.start()) + 1
        tokens.append(_Action(match.group(2).strip(), line))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = source[pos:]
    if "{{" in tail:
        line = source.count("\n", 0, pos + tail.index("{{")) + 1
        raise TemplateError(f"template line {line}: unclosed action '{{{{'")
    if trim_next:
        tail = tail.lstrip()
    if tail:
        tokens.append(_Text(tail))
    return tokens


# --- tree -------------------------------------------------------------------------------------

@dataclass
class _Pipe:
    kind: str  # "field" or "string"
    path: tuple[str, ...] = ()  # field chain; () is the dot itself
    literal: str = ""
    line: int = 0


@dataclass
class _Block:
    keyword: str  # "root", "range", "with", "if"
    pipe: _Pipe | None = None
    body: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)
    line: int = 0


_FIELD = re.compile(r"^(\.|(\.[A-Za-z_][A-Za-z0-9_]*)+)$")
_STRING = re.compile(r'^"((?:[^"\\]|\\.)*)"$')
_UNSUPPORTED_KEYWORDS = ("define", "template", "block", "break", "continue", "and", "or", "not",
                         "len", "index", "printf", "print", "println", "eq", "ne", "lt", "le", "gt",
                         "ge", "html", "js", "urlquery", "call", "slice")


def _parse_pipe(text: str, line: int) -> _Pipe:
    text = text.strip()
    if not text:
        raise TemplateError(f"template line {line}: missing value in action")
    if "|" in text:
        raise TemplateError(f"template line {line}: pipelines ('|') are not supported: {{{{{text}}}}}")
    if text.startswith("$") or ":=" in text or "=" in text.split('"')[0]:
        raise TemplateError(f"template line {line}: variables are not supported: {{{{{text}}}}}")
    if text.startswith("("):
        raise TemplateError(f"template line {line}: parenthesised expressions are not supported: "
                            f"{{{{{text}}}}}")
    if _FIELD.match(text):
        path = () if text == "." else tuple(text[1:].split("."))
        return _Pipe("field", path, line=line)
    match = _STRING.match(text)
    if match:
        return _Pipe("string", literal=bytes(match.group(1), "utf-8").decode("unicode_escape"), line=line)
    word = text.split()[0]
    if word in _UNSUPPORTED_KEYWORDS or re.match(r"^[A-Za-z_]\w*$", word):
        raise TemplateError(f"template line {line}: function {word!r} is not supported "
                            "(only fields like .Trial, range, with, if and end)")
    raise TemplateError(f"template line {line}: unsupported expression {{{{{text}}}}}")


def _parse(tokens: list[_Text | _Action]) -> _Block:
    root = _Block("root")
    stack = [root]
    in_else = [False]
    for tok in tokens:
        target = stack[-1].otherwise if in_else[-1] else stack[-1].body
        if isinstance(tok, _Text):
            target.append(tok)
            continue
        body, line = tok.body, tok.line
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise TemplateError(f"template line {line}: unclosed comment")
            continue
        word = body.split(None, 1)[0] if body else ""
        rest = body[len(word):].strip()
        if word in ("range", "with", "if"):
            block = _Block(word, _parse_pipe(rest, line), line=line)
            target.append(block)
            stack.append(block)
            in_else.append(False)
        elif word == "else":
            if rest:
                raise TemplateError(f"template line {line}: '{{{{else {rest}}}}}' is not supported "
                                    "(only a plain {{else}})")
            if len(stack) == 1 or in_else[-1]:
                raise TemplateError(f"template line {line}: unexpected {{{{else}}}}")
            in_else[-1] = True
        elif word == "end":
            if rest:
                raise TemplateError(f"template line {line}: unexpected text after end")
            if len(stack) == 1:
                raise TemplateError(f"template line {line}: unexpected {{{{end}}}}")
            stack.pop()
            in_else.pop()
        elif word in ("define", "template", "block"):
            raise TemplateError(f"template line {line}: '{word}' is not supported")
        else:
            target.append(_parse_pipe(body, line))
    if len(stack) > 1:
        raise TemplateError(f"template line {stack[-1].line}: '{stack[-1].keyword}' without {{{{end}}}}")
    return root


# --- render -------------------------------------------------------------------------------------

def _lookup(dot: Any, pipe: _Pipe) -> Any:
    if pipe.kind == "string":
        return pipe.literal
    value = dot
    for name in pipe.path:
        if isinstance(value, Mapping):
            if name not in value:
                known = ", ".join(sorted(str(k) for k in value)) or "none"
                raise TemplateError(f"template line {pipe.line}: can't evaluate field {name} "
                                    f"(available: {known})")
            value = value[name]
        elif hasattr(value, name) and not name.startswith("_"):
            value = getattr(value, name)
        else:
            raise TemplateError(f"template line {pipe.line}: can't evaluate field {name} in "
                                f"type {type(value).__name__}")
    return value


def _truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool | int | float | str | Sequence | Mapping):
        return bool(value)
    return True


def _format(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + " ".join(_format(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_format(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _render(nodes: list[Any], dot: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, _Text):
            out.append(node.text)
        elif isinstance(node, _Pipe):
            out.append(_format(_lookup(dot, node)))
        elif node.keyword == "range":
            value = _lookup(dot, node.pipe)
            items = list(value.values()) if isinstance(value, Mapping) else value
            if items is not None and not isinstance(items, list | tuple):
                raise TemplateError(f"template line {node.line}: range can't iterate over "
                                    f"{type(items).__name__}")
            if items:
                for item in items:
                    _render(node.body, item, out)
            else:
                _render(node.otherwise, dot, out)
        elif node.keyword == "with":
            value = _lookup(dot, node.pipe)
            _render(node.body if _truthy(value) else node.otherwise,
                    value if _truthy(value) else dot, out)
        else:  # if
            _render(node.body if _truthy(_lookup(dot, node.pipe)) else node.otherwise, dot, out)


def parse(source: str) -> _Block:
    """Parses a template; raises TemplateError for syntax or unsupported constructs."""
    return _parse(_tokenize(source))


def render(source: str, data: Any) -> str:
    out: list[str] = []
    _render(parse(source).body, data, out)
    return "".join(out)
