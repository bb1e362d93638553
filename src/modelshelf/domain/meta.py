"""Rules for model metadata (`meta_json`) and model columns."""

from __future__ import annotations

import copy
from typing import Any

from modelshelf.errors import TooLarge
from modelshelf.storage.rows import dump_meta, json_key

IMAGE_KEYS = ("image", "preview", "images")
# How large an edit may make a model's meta_json (characters of its JSON). Each edit keeps the
# model as it was in model_history: metadata grown by edits, a 1 MB PATCH at a time, made the
# history grow with the square of the edits (21 MB of meta_json and a 390 MB database after
# 31 PATCHes) and held every other client up while each was written. Real metadata is far
# smaller (a Civitai record about 8 KB); what a scan reads from files (a kohya header's
# ss_tag_frequency can be megabytes) is no edit, and an edit of such a model may keep it.
MAX_EDITED_META_CHARS = 1024 * 1024


def is_empty(value: object) -> bool:
    """NULL and the empty string carry no information: a merge may fill them."""
    return value is None or value == ""


def merge_meta_json(existing: Any, pending: Any) -> Any:
    """Merge `pending` metadata into `existing`; existing values win.

    - keys missing from existing (or holding null or "") take the pending value;
    - nested objects merge recursively;
    - lists keep the existing items, then add pending items not already present (compared as
      JSON: `true` is not the `1` a list holds);
    - any other existing value is kept as it is.
    Neither argument is modified; the result shares no mutable parts with them.
    """
    if is_empty(existing):
        return copy.deepcopy(pending)
    if isinstance(existing, dict) and isinstance(pending, dict):
        merged = copy.deepcopy(existing)
        for key, value in pending.items():
            merged[key] = merge_meta_json(existing.get(key), value)
        return merged
    if isinstance(existing, list) and isinstance(pending, list):
        merged_list = copy.deepcopy(existing)
        # Items found by their JSON text: comparing each pending item with every item held
        # took time in the square of the lengths (two lists of 30,000 words held the event
        # loop for minutes).
        held = {_item_key(item) for item in merged_list}
        for item in pending:
            key = _item_key(item)
            if key not in held:
                held.add(key)
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(existing)


def _item_key(item: Any) -> tuple[bool, str]:
    """What a list item is found by: the text of a string (most items are), else its JSON
    text (json_key, the slower), told apart so that "1" is not 1."""
    return (True, item) if isinstance(item, str) else (False, json_key(item))


def merge_columns(
    existing: dict[str, Any], pending: dict[str, Any], columns: tuple[str, ...]
) -> dict[str, Any]:
    """Each column that is NULL or empty in `existing` takes the pending value."""
    return {c: pending.get(c) if is_empty(existing.get(c)) else existing.get(c) for c in columns}


def without_image_keys(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata with the legacy image-path keys removed (images live in the images folder)."""
    return {k: v for k, v in meta.items() if k not in IMAGE_KEYS}


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """`target` with JSON merge patch `patch` applied (RFC 7396): an object patch changes the
    keys it names (null removes a key, objects merge recursively); any other patch replaces
    the target. Neither argument is modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def refuse_grown_past_limit(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Raises TooLarge when `after`, meta_json as an edit would leave it, is longer than
    MAX_EDITED_META_CHARS and than `before`, the meta_json it had: an edit may shrink or keep
    metadata over the limit, never grow it past."""
    size = len(dump_meta(after))
    if size > MAX_EDITED_META_CHARS and size > len(dump_meta(before)):
        raise TooLarge(
            f"the edit would make meta_json {size:,} characters of JSON; an edit may make it"
            f" at most {MAX_EDITED_META_CHARS:,}"
        )
