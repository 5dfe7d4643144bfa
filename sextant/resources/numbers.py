"""Numbers in experiment specs, read the way Katib's Go code reads them.

Katib parses feasible-space numbers with Go's ``strconv``: ``ParseInt(s, 10, 64)`` for integers
and ``ParseFloat(s, 64)`` for doubles. Python's ``int``/``float`` accept more (``"１０"``,
Arabic-Indic digits, surrounding spaces, ``"1_0"`` as an integer) and less (hex floats), so a
spec Sextant accepts could fail in Katib, or the other way round. These functions accept
exactly Go's syntax:

* integers: an optional ``+``/``-`` and ASCII decimal digits, nothing else (no spaces, no
  underscores, no base prefix, no exponent); the value must fit a signed 64-bit integer;
* doubles: an optional sign, then ``inf``/``infinity``/``nan`` in any case, or a decimal
  mantissa (digits with at most one ``.``, at least one digit) with an optional exponent
  (``e``, optional sign, digits), or a hexadecimal mantissa after ``0x`` with a mandatory
  binary exponent (``p``); underscores may stand only between digits, or between the ``0x``
  prefix and a digit. A value beyond the float64 range is an error (Go's ErrRange).

The callers decide what else a value must satisfy (finite, within the documented limits).
Error messages quote at most ``EXCERPT_CHARS`` characters of the input, so a 5,000-digit value
gives a short error.
"""

from __future__ import annotations

import math
import re

EXCERPT_CHARS = 40
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_INT = re.compile(r"[+-]?[0-9]+\Z")
_DIGITS = "[0-9](?:_?[0-9])*"
_HEX = "[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_DEC_FLOAT = re.compile(
    rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?\Z")
_HEX_FLOAT = re.compile(
    rf"[+-]?0[xX](?:_?{_HEX}(?:\.(?:{_HEX})?)?|\.{_HEX})[pP][+-]?{_DIGITS}\Z")
_SPECIAL = re.compile(r"[+-]?(?:inf|infinity)\Z|nan\Z", re.IGNORECASE)


MAX_DOCUMENT_INT_DIGITS = 4000
"""Integers written in a document with more digits are kept as their text: Python refuses to
convert them (its 4300-digit guard), and every field that could hold them then reports the value
as out of range, naming the field."""


def document_int(text: str) -> int | str:
    """JSON/YAML integer literal -> int, or the literal itself when it is absurdly long."""
    if len(text) > MAX_DOCUMENT_INT_DIGITS:
        return text
    return int(text)


class NumberError(ValueError):
    """The text is not a number of the wanted kind; the message says why, quoting a short excerpt."""


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of a value cut to about ``limit`` characters, for error messages."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)


def parse_int(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 10, 64)``."""
    if not isinstance(text, str) or not _INT.match(text):
        raise NumberError(f"must be a base-10 integer (ASCII digits with an optional sign), got {excerpt(text)}")
    digits = len(text.lstrip("+-").lstrip("0"))
    if digits > 19:  # no int64 has more digits; do not hand Python a 5,000-digit conversion
        raise NumberError(f"is out of the range of a 64-bit integer, got {excerpt(text)}")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise NumberError(f"is out of the range of a 64-bit integer, got {excerpt(text)}")
    return value


def parse_float(text: str) -> float:
    """Go's ``strconv.ParseFloat(text, 64)``: may return inf or nan for those spellings."""
    if not isinstance(text, str):
        raise NumberError(f"must be a number, got {excerpt(text)}")
    if _SPECIAL.match(text):
        return float(text)
    if _DEC_FLOAT.match(text):
        value = float(text.replace("_", ""))
    elif _HEX_FLOAT.match(text):
        value = _hex_float(text)
    else:
        raise NumberError(f"must be a number (decimal, optional exponent, or a 0x hex float), got {excerpt(text)}")
    if math.isinf(value):
        raise NumberError(f"is out of the range of a 64-bit float, got {excerpt(text)}")
    return value


def parse_finite(text: str) -> float:
    """``parse_float`` that also refuses inf and nan."""
    value = parse_float(text)
    if not math.isfinite(value):
        raise NumberError(f"must be a finite number, got {excerpt(text)}")
    return value


def _hex_float(text: str) -> float:
    body = text.replace("_", "")
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")[2:]
    mantissa, _, exponent = body.lower().partition("p")
    exp = int(exponent) if len(exponent.lstrip("+-")) <= 6 else (10**6 if not exponent.startswith("-") else -10**6)
    try:
        return sign * float.fromhex(f"0x{mantissa}p{exp}")
    except OverflowError:
        return sign * math.inf
