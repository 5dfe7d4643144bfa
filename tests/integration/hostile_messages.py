"""Hypothesis strategies for arbitrary protobuf messages, built from their descriptors.

``messages(cls)`` draws any well-typed message: strings with NULs, quotes, path pieces and
shell syntax, extreme integers and floats (NaN, inf), deep-ish nesting, long repeated fields.
``hints`` pins chosen fields to plausible values some of the time (e.g. a real algorithm name)
so that the fuzzing gets past the first check and reaches deeper code.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor as F
from hypothesis import strategies as st

NASTY = ["", "..", "../../etc/passwd", "$(touch /tmp/sextant-pwned)", "; rm -rf ~", "'; DROP TABLE x; --",
         "\x00", "a\x00b", "\"", "'", "`id`", "\\", "%s%n", "${trialParameters.x}", "{{.Trial}}",
         "default", "Experiment", "Trial", "random", "x" * 300, "é✓\u202e"]

TEXT = st.one_of(st.sampled_from(NASTY),
                 st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
INT32 = st.one_of(st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31)]), st.integers(-(2**31), 2**31 - 1))
INT64 = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]), st.integers(-(2**63), 2**63 - 1))
UINT32 = st.integers(0, 2**32 - 1)
UINT64 = st.integers(0, 2**64 - 1)
DOUBLE = st.floats(allow_nan=True, allow_infinity=True)
FLOAT = st.floats(width=32, allow_nan=True, allow_infinity=True)

_SCALARS = {
    F.TYPE_STRING: TEXT, F.TYPE_BYTES: st.binary(max_size=64), F.TYPE_BOOL: st.booleans(),
    F.TYPE_INT32: INT32, F.TYPE_SINT32: INT32, F.TYPE_SFIXED32: INT32,
    F.TYPE_INT64: INT64, F.TYPE_SINT64: INT64, F.TYPE_SFIXED64: INT64,
    F.TYPE_UINT32: UINT32, F.TYPE_FIXED32: UINT32, F.TYPE_UINT64: UINT64, F.TYPE_FIXED64: UINT64,
    F.TYPE_DOUBLE: DOUBLE, F.TYPE_FLOAT: FLOAT,
}


def _is_repeated(field) -> bool:
    # protobuf >= 5.x: ``is_repeated``; older: ``label``.
    repeated = getattr(field, "is_repeated", None)
    return bool(repeated) if repeated is not None else field.label == F.LABEL_REPEATED


def _field_strategy(field, depth: int, hints: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    if field.name in hints:
        hinted = hints[field.name]
        base = st.one_of(hinted, _raw_field(field, depth, hints)) if not _is_repeated(field) else hinted
        return base
    return _raw_field(field, depth, hints)


def _raw_field(field, depth: int, hints) -> st.SearchStrategy:
    if field.type == F.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry:
            key = _SCALARS[field.message_type.fields_by_name["key"].type]
            value_field = field.message_type.fields_by_name["value"]
            value = _raw_field(value_field, depth, hints)
            return st.dictionaries(key, value, max_size=4)
        inner = _message_strategy(field.message_type, depth + 1, hints)
    elif field.type == F.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        inner = st.one_of(st.sampled_from(numbers), st.integers(-5, 50))  # proto3 enums are open
    else:
        inner = _SCALARS[field.type]
    if _is_repeated(field):
        return st.lists(inner, max_size=4 if depth < 2 else 2)
    return inner


def _message_strategy(descriptor, depth: int, hints) -> st.SearchStrategy:
    if depth > 4:
        return st.just({})
    fields = {f.name: _field_strategy(f, depth, hints) for f in descriptor.fields}
    return st.fixed_dictionaries({}, optional=fields)


def _build(cls, descriptor, values: dict[str, Any]):
    msg = cls()
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        target = getattr(msg, name) if (field.type == F.TYPE_MESSAGE or _is_repeated(field)) else None
        if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for k, v in value.items():
                if value_field.type == F.TYPE_MESSAGE:
                    target[k].CopyFrom(_build(type(target[k]), value_field.message_type, v))
                else:
                    target[k] = v
        elif field.type == F.TYPE_MESSAGE and _is_repeated(field):
            for item in value:
                element = target.add()
                element.CopyFrom(_build(type(element), field.message_type, item))
        elif field.type == F.TYPE_MESSAGE:
            target.CopyFrom(_build(target.__class__, field.message_type, value))
        elif _is_repeated(field):
            target.extend(value)
        else:
            setattr(msg, name, value)
    return msg


def messages(cls, hints: dict[str, st.SearchStrategy] | None = None) -> st.SearchStrategy:
    """Any ``cls`` message (a generated protobuf class)."""
    descriptor = cls.DESCRIPTOR
    return _message_strategy(descriptor, 0, hints or {}).map(lambda values: _build(cls, descriptor, values))
