"""Katib's trial success/failure conditions: GJSON paths evaluated on a job object's JSON.

Katib decides whether a trial's job (any kind) succeeded or failed by evaluating two GJSON
expressions on the job object: the failure condition first, then the success condition. A
condition *matches* when the result is an object or a non-empty array; the first element of
an array (or the object itself) supplies ``reason`` and ``message``.

Evaluation uses the ``gjson`` package. Because that package reports both "no such key"
(an ordinary no-match: a fresh job has no ``status.conditions`` yet) and real syntax problems
as the same exception type, we first check each expression against the subset of GJSON that
Katib's defaults and examples use, and reject anything else with an error naming the
expression. The supported grammar:

    path     := segment (('.' | '|') segment)*
    segment  := key | index | '#' | query | '[@this]' | '@this'
    key      := [A-Za-z0-9_-]+
    query    := '#(' field [op value] ')' ['#']
    field    := key ('.' key)*
    op       := '==' | '!=' | '<' | '<=' | '>' | '>=' | '%' | '!%'
    value    := "string" | number | true | false | null

e.g. ``status.conditions.#(type=="Complete")#|#(status=="True")#`` (the batch/v1 Job default)
or ``status.[@this].#(phase=="Succeeded")#`` (Katib's Argo Workflow example).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import gjson

# Katib's defaults by trial kind, as its experiment defaulting webhook sets them.
_TRAINING_OPERATOR_KINDS = {"TFJob", "PyTorchJob", "XGBoostJob", "MPIJob"}


def _cond(type_: str) -> str:
    return f'status.conditions.#(type=="{type_}")#|#(status=="True")#'


def default_conditions(kind: str) -> tuple[str, str] | None:
    """``(success, failure)`` defaults Katib applies for an inline trial template of ``kind``."""
    if kind == "Job":
        return _cond("Complete"), _cond("Failed")
    if kind in _TRAINING_OPERATOR_KINDS:
        return _cond("Succeeded"), _cond("Failed")
    if kind == "TrainJob":
        return _cond("Complete"), _cond("Failed")
    return None


class UnsupportedCondition(ValueError):
    """The expression uses GJSON syntax outside the supported subset (the message names it)."""


_KEY = r"[A-Za-z0-9_\-]+"
_VALUE = r'(?:"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)'
_OP = r"(?:==|!=|<=|>=|<|>|!%|%)"
_QUERY = rf"#\(\s*{_KEY}(?:\.{_KEY})*\s*(?:{_OP}\s*{_VALUE}\s*)?\)#?"
_SEGMENT = rf"(?:{_QUERY}|\[@this\]|@this|#|{_KEY})"
_PATH_RE = re.compile(rf"{_SEGMENT}(?:[.|]{_SEGMENT})*")


@lru_cache(maxsize=256)
def check_condition(expression: str) -> str:
    """Returns the expression if it is in the supported subset, else raises UnsupportedCondition."""
    if not isinstance(expression, str) or not expression.strip():
        raise UnsupportedCondition("condition must be a non-empty GJSON path")
    if not _PATH_RE.fullmatch(expression):
        raise UnsupportedCondition(
            f"unsupported GJSON condition {expression!r}: Sextant supports dotted keys, array indexes, "
            f"'#', '[@this]', queries '#(field==\"value\")' / '#(...)#' and '|' pipes "
            f"(e.g. 'status.conditions.#(type==\"Complete\")#|#(status==\"True\")#')"
        )
    return expression


@dataclass(frozen=True)
class Match:
    reason: str = ""
    message: str = ""


def evaluate(obj: dict[str, Any], expression: str) -> Match | None:
    """The match of ``expression`` on ``obj`` (Katib's rule), or None when it does not match."""
    check_condition(expression)
    try:
        result = gjson.get(obj, expression)
    except gjson.GJSONError:
        # The syntax was checked above, so this is missing data (no key, index out of range).
        return None
    if isinstance(result, list):
        if not result:
            return None
        first = result[0]
    elif isinstance(result, dict):
        first = result
    else:
        return None
    if not isinstance(first, dict):
        return Match()
    return Match(reason=str(first.get("reason") or ""), message=str(first.get("message") or ""))
