"""PATCH bodies: JSON merge patch (RFC 7386) and JSON patch (RFC 6902, through ``jsonpatch``).
Strategic merge patch and server-side apply are refused with 415, as the Kubernetes API server
does for custom resources; kubectl then falls back or says so."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from services.api_server.errors import ApiError, bad_request, unsupported_media_type

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_patch(doc: dict[str, Any], content_type: str, body: bytes) -> dict[str, Any]:
    media = content_type.split(";")[0].strip().lower()
    if media not in (MERGE, JSON_PATCH):
        raise unsupported_media_type(media)
    try:
        patch = json.loads(body or b"null")
    except ValueError as err:
        raise bad_request(f"error decoding patch: {err}") from None
    if media == MERGE:
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        result = merge_patch(doc, patch)
    else:
        if not isinstance(patch, list):
            raise bad_request("a JSON patch must be a JSON array of operations")
        try:
            result = jsonpatch.apply_patch(doc, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {err}") \
                from None
    if not isinstance(result, dict):
        raise bad_request("the patched object is not a JSON object")
    return result
