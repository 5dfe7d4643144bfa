"""Reading resource documents from text: YAML (one or many documents) or JSON.

Everything that can go wrong with user text is reported as ``Invalid`` with a message a user
can act on: YAML syntax errors carry the line and column, oversized documents name the limit,
and a document that is not a mapping says what it was instead. Nothing here knows about
Experiments; ``detect_api_version`` only tells v1beta1 from v1alpha3 so admission can convert.
"""

from __future__ import annotations

import json
from typing import Any, cast

import yaml

from sextant.resources.numbers import MAX_DOCUMENT_INT_DIGITS, document_int
from sextant.resources.vocabulary import API_VERSION, API_VERSION_V1ALPHA3
from sextant.store.interface import Invalid

MAX_DOCUMENT_BYTES = 1024 * 1024
"""Largest single document accepted (1 MiB, the order of Kubernetes' object size limit)."""

SUPPORTED_API_VERSIONS = (API_VERSION, API_VERSION_V1ALPHA3)


class _StrictLoader(yaml.SafeLoader):
    """Safe loader that refuses duplicate mapping keys (a silent overwrite hides typos)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hashable = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a scalar", key_node.start_mark) from None
        if hashable:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _construct_int(loader: _StrictLoader, node: yaml.ScalarNode) -> int | str:
    text = loader.construct_scalar(node)
    if isinstance(text, str) and len(text) > MAX_DOCUMENT_INT_DIGITS:
        return text  # kept as text: the field's own check reports it as out of range
    return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _split_yaml(text: str) -> list[str]:
    """Splits a YAML stream on document markers so each document's size can be checked first."""
    docs: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if line.rstrip() == "---" or line.startswith("--- "):
            docs.append([line])
        else:
            docs[-1].append(line)
    return ["".join(d) for d in docs]


def _check_size(text: str, index: int) -> None:
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise Invalid([f"document {index + 1}: is {size} bytes, larger than the limit of "
                       f"{MAX_DOCUMENT_BYTES} bytes"])


def _check_expanded_size(value: Any, index: int) -> None:
    """YAML aliases let a few hundred bytes stand for gigabytes ("billion laughs"): everything
    downstream (admission, JSON encoding) sees the expanded tree, so bound that tree too. The walk
    stops as soon as the budget is spent, so it costs at most the limit however big the tree is."""
    budget = MAX_DOCUMENT_BYTES
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            budget -= 2 + len(node)
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            budget -= 2 + len(node)
            stack.extend(node)
        else:
            budget -= len(node) if isinstance(node, str) else 8
        if budget < 0:
            raise Invalid([f"document {index + 1}: is larger than the limit of {MAX_DOCUMENT_BYTES} bytes "
                           "once YAML aliases are expanded"])


def _normalise(value: Any, index: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = "a list" if isinstance(value, list) else f"a {type(value).__name__}"
        raise Invalid([f"document {index + 1}: must be a mapping (apiVersion, kind, metadata, spec), "
                       f"not {kind}"])
    for key in value:
        if not isinstance(key, str):
            raise Invalid([f"document {index + 1}: keys must be strings, found {key!r}"])
    return value


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of duplicate keys silently; refuse them, as the YAML path does."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateJsonKey(key)
        out[key] = value
    return out


class _DuplicateJsonKey(ValueError):
    pass


def load_documents(text: str | bytes) -> list[dict[str, Any]]:
    """Every non-empty document in ``text`` (JSON object/array or a YAML stream), as dicts.

    Raises ``Invalid`` for syntax errors (with line and column), oversized documents and
    documents that are not mappings.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise Invalid([f"document: not UTF-8 text (byte {err.start})"]) from None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        # JSON is a YAML subset, but json gives better errors and handles big inputs faster.
        _check_size(text, 0)
        try:
            value = json.loads(text, object_pairs_hook=_unique_json_object, parse_int=document_int)
        except json.JSONDecodeError as err:
            raise Invalid([f"document 1: invalid JSON at line {err.lineno}, column {err.colno}: "
                           f"{err.msg}"]) from None
        except _DuplicateJsonKey as err:
            raise Invalid([f"document 1: duplicate key {err.args[0]!r}"]) from None
        except RecursionError:
            raise Invalid(["document 1: nested too deeply"]) from None
        items = value if isinstance(value, list) else [value]
        return [_normalise(v, i) for i, v in enumerate(items)]
    out: list[dict[str, Any]] = []
    pieces = _split_yaml(text)
    line_offset = 0
    for index, piece in enumerate(pieces):
        _check_size(piece, index)
        try:
            values = list(yaml.load_all(piece, Loader=_StrictLoader))  # noqa: S506 - safe subclass
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
            where = (f" at line {mark.line + 1 + line_offset}, column {mark.column + 1}"
                     if mark is not None else "")
            raise Invalid([f"document {index + 1}: invalid YAML{where}: {problem}"]) from None
        except RecursionError:
            raise Invalid([f"document {index + 1}: nested too deeply"]) from None
        line_offset += piece.count("\n")
        for value in values:
            if value is None:
                continue  # empty document (e.g. a trailing ---)
            _check_expanded_size(value, len(out))
            out.append(_normalise(value, len(out)))
    return out


def load_document(text: str | bytes) -> dict[str, Any]:
    """Exactly one document from ``text``."""
    docs = load_documents(text)
    if len(docs) != 1:
        raise Invalid([f"document: expected exactly one document, found {len(docs)}"])
    return docs[0]


def detect_api_version(doc: dict[str, Any]) -> str:
    """``kubeflow.org/v1beta1`` (also when apiVersion is absent) or ``kubeflow.org/v1alpha3``."""
    version = doc.get("apiVersion")
    if version in (None, ""):
        return API_VERSION
    if version not in SUPPORTED_API_VERSIONS:
        raise Invalid([f"apiVersion: must be one of {', '.join(SUPPORTED_API_VERSIONS)}, got {version!r}"])
    return cast(str, version)


def is_v1alpha3(doc: dict[str, Any]) -> bool:
    return doc.get("apiVersion") == API_VERSION_V1ALPHA3
