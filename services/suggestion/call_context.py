"""What the suggestion and early-stopping servers read from a call besides its message."""

from __future__ import annotations

import grpc

from sextant import limits
from sextant.algorithm_registry import NAMESPACE_METADATA


def namespace_of(context: grpc.ServicerContext) -> str:
    """The experiment's namespace from the call metadata ("" when the caller sent none)."""
    for item in context.invocation_metadata() or ():
        if item.key == NAMESPACE_METADATA:
            return str(item.value)[:limits.MAX_NAME_CHARS]
    return ""


def still_wanted(context: grpc.ServicerContext) -> bool:
    """The caller is connected and has time left."""
    if not context.is_active():
        return False
    remaining = context.time_remaining()
    return remaining is None or remaining > 0
