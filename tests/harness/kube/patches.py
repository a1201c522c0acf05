"""The patch formats ``PATCH`` accepts: JSON merge patch (RFC 7386) and JSON Patch (RFC 6902).

Strategic-merge and apply patches are served as merge patches (lists replace instead of
merging by key), which is all KubeSpawner needs.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch


class PatchError(ValueError):
    """A patch that cannot be applied to the document (the API answers 422 Invalid)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``None`` deletes, dicts merge, everything else replaces).

    Written here because ``jsonpatch`` only does RFC 6902; the result is a new document.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(doc: Any, operations: list[dict]) -> Any:
    """RFC 6902 JSON Patch applied to a copy of ``doc``; :class:`PatchError` if it does not apply."""
    try:
        return jsonpatch.apply_patch(doc, operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
        raise PatchError(str(e)) from e
