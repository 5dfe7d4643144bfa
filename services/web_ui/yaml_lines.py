"""Where in the pasted YAML each validation error belongs.

Admission reports errors as ``field.path: rule`` with Katib's camelCase paths. To show an
error next to its field, the path is followed through the YAML node tree (PyYAML keeps each
node's line); when the field itself is absent (a required field is missing) the error goes to
the nearest ancestor that is there.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_DOCUMENT_LINE = re.compile(r"line (\d+)")


def split_path(path: str) -> list[str | int]:
    return [int(index) if index else key for key, index in _PART.findall(path)]


def _line_of(root: yaml.Node | None, parts: list[str | int]) -> int | None:
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in parts:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def locate_errors(text: str, errors: list[str]) -> list[dict[str, Any]]:
    """``[{path, message, line}]`` for admission's messages (line is None if unknown)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    out = []
    for error in errors:
        path, sep, message = error.partition(": ")
        if not sep:
            path, message = "", error
        line = None
        found = _DOCUMENT_LINE.search(message) if path.startswith("document") else None
        if found:
            line = int(found.group(1))
        elif path and not path.startswith("document"):
            line = _line_of(root, split_path(path))
        out.append({"path": path, "message": message, "line": line})
    return out
