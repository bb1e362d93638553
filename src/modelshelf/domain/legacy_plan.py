"""Planning what each row of a legacy (first Hikaze model manager) library becomes.

The functions are pure: they take legacy rows and return plans, so they can run in an executor
and be tested without a database. Reading the legacy database is storage.legacy_source; what
each single value becomes is legacy_values. A plan is validated into the very record the API
will answer with before anything is written, so whatever stage 1 writes can be served.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from modelshelf.domain.legacy_values import (
    MAX_INTEGER,
    as_created_at,
    as_json_object,
    as_sha256,
    as_size,
    as_text,
    set_aside_own_key,
)
from modelshelf.domain.meta import IMAGE_KEYS, merge_meta_json, without_image_keys
from modelshelf.records import ROW_ID_MIN, ModelRecord, PendingRecord
from modelshelf.storage.legacy_source import MAX_VALUE_BYTES, LegacyRow
from modelshelf.storage.rows import dump_meta, parse_meta, same_json


@dataclass
class LegacyPlan:
    """What one legacy row becomes: a model (sha256 set) or a pending model."""

    legacy_id: int
    sha256: str | None
    fields: dict[str, Any]
    tag_ids: list[int]
    image_names: list[str]
    problems: list[str] = field(default_factory=list)
    # A hashed row whose SHA256 is already taken goes to pending too, for promotion to resolve.
    to_pending: bool = False
    # The id it has as a pending model: its legacy id, unless another library's model has it.
    pending_id: int | None = None
    # Why the row cannot be brought in at all; None when it can.
    refused: str | None = None
    # The row's created_at as the legacy file holds it (created_mark), logged with the row.
    created_mark: str | None = None

    @property
    def goes_to_pending(self) -> bool:
        return self.sha256 is None or self.to_pending


def plan_rows(rows: list[LegacyRow], tags_by_model: dict[int, list[int]]) -> list[LegacyPlan]:
    now = int(time.time() * 1000)
    return [plan_row(row, tags_by_model.get(row.legacy_id, []), now) for row in rows]


def plan_row(row: LegacyRow, tag_ids: list[int], now_ms: int | None = None) -> LegacyPlan:
    """Plan one legacy `models` row; every change made to a value is in `problems`, and a row
    that still could not be served is `refused`."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    values = row.values
    problems = [
        f"{column} is {size} bytes, over the limit of {MAX_VALUE_BYTES}; not migrated"
        for column, size in row.oversize.items()
    ]
    extra = as_json_object(values.get("extra_json"), "extra_json", problems)
    meta = without_image_keys(extra)
    legacy_meta = as_json_object(values.get("meta_json"), "meta_json", problems)
    if legacy_meta:
        set_aside_own_key(meta, "legacy_meta", problems)
        meta["legacy_meta"] = legacy_meta
    fields = {
        "path": as_text(values.get("path"), "path", problems),
        "name": as_text(values.get("name"), "name", problems),
        "type": as_text(values.get("type"), "type", problems),
        "size_bytes": as_size(values.get("size_bytes"), problems),
        "created_at": as_created_at(values.get("created_at"), problems, now),
        "meta_json": meta,
    }
    plan = LegacyPlan(
        legacy_id=row.legacy_id,
        sha256=as_sha256(values.get("hash_hex"), problems),
        fields=fields,
        tag_ids=list(tag_ids),
        image_names=image_file_names(extra, problems),
        problems=problems,
        pending_id=row.legacy_id,
        created_mark=created_mark(row),
    )
    plan.refused = unservable(plan)
    return plan


def holds_row(model: ModelRecord, plan: LegacyPlan) -> bool:
    """Whether `model`, the library's model of a hashed row's content, is that row brought in
    before: it is at the row's path and holds all the row brings (its metadata, its tags, an
    image if it lists any), as a Hikaze Model Manager 2 library that ran its own stage 1
    does. A model a scan found there first does not, and the row is a duplicate to resolve."""
    meta = plan.fields["meta_json"]
    return (
        model.path == plan.fields["path"]
        and same_json(merge_meta_json(model.meta_json, meta), model.meta_json)
        and set(plan.tag_ids) <= {tag.id for tag in model.tags}
        and (bool(model.images) or not plan.image_names)
    )


def rows_held(plans: list[LegacyPlan], models: dict[str, ModelRecord]) -> set[int]:
    """The legacy ids of `plans` whose content's model (in `models`, by SHA256) holds the row
    (holds_row). Blocking (it merges metadata): run it in an executor."""
    return {
        plan.legacy_id
        for plan in plans
        if (model := models.get(plan.sha256 or "")) is not None and holds_row(model, plan)
    }


def unservable(plan: LegacyPlan) -> str | None:
    """Why the record this plan writes could not be served, or None when it can: the fields
    are stored, read back and serialised exactly as the read endpoints do."""
    try:
        stored = {**plan.fields, "meta_json": parse_meta(dump_meta(plan.fields["meta_json"]))}
        dump_meta(stored["meta_json"]).encode("utf-8")
        common = {**stored, "tags": [], "images": []}
        if plan.goes_to_pending:
            PendingRecord(id=plan.pending_id or 0, sha256=plan.sha256, **common).model_dump_json()
        else:
            ModelRecord(sha256=plan.sha256 or "", **common).model_dump_json()
    except (ValidationError, PydanticSerializationError, ValueError, RecursionError) as exc:
        return f"it cannot be stored as a record the API can answer with: {str(exc)[:300]}"
    return None


def image_file_names(extra: dict[str, Any], notes: list[str] | None = None) -> list[str]:
    """Base names of the images a legacy row lists, in order: `images`, then `image`, then
    `preview`, each name once. A URL such as /media/model_12_1700000000_cat%20x.png gives
    `model_12_1700000000_cat x.png`; only the base name is kept, so no path can escape the
    legacy images folder. An entry that names no file (a number, an object, "/media/") is
    told in `notes`: the image keys leave meta_json, so it would otherwise vanish unsaid."""
    listed: list[tuple[str, Any]] = []
    for key in ("images", *[k for k in IMAGE_KEYS if k != "images"]):
        value = extra.get(key)
        listed.extend((key, item) for item in (value if isinstance(value, list) else [value]))
    names: list[str] = []
    kept: set[str] = set()  # the names so far, to find one at once
    for key, item in listed:
        if item is None or (isinstance(item, str) and not item.strip()):
            continue  # no image
        name = _file_name(item) if isinstance(item, str) else None
        if name is None:
            if notes is not None:
                notes.append(_not_an_image_path(key, item))
        elif name not in kept:
            kept.add(name)
            names.append(name)
    return names


def _file_name(item: str) -> str | None:
    try:
        path = urllib.parse.unquote(urllib.parse.urlsplit(item.strip()).path)
    except ValueError:  # not a URL (e.g. "http://[x"): the text is the path
        path = item.strip()
    name = posixpath.basename(path.replace("\\", "/"))
    if not name or name in (".", "..") or "\x00" in name:
        return None
    return name


def _not_an_image_path(key: str, item: Any) -> str:
    shown = json.dumps(item, ensure_ascii=False, default=str)
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    if isinstance(item, str):
        return f"{key} entry {shown} names no usable file; skipped"
    what = {dict: "an object", list: "a list", bool: "true or false"}.get(type(item), "a number")
    return f"{key} entry {shown} is {what}, not an image path; skipped"


def by_images(plans: list[LegacyPlan], most: int) -> list[list[LegacyPlan]]:
    """`plans` in order, cut into runs listing at most `most` images each (a plan with more
    is a run alone); plans without images ride along with the others."""
    parts: list[list[LegacyPlan]] = []
    images = 0
    for plan in plans:
        count = len(plan.image_names)
        if not parts or (parts[-1] and images + count > most):
            parts.append([])
            images = 0
        parts[-1].append(plan)
        images += count
    return parts


def created_mark(row: LegacyRow) -> str | None:
    """A legacy row's created_at as its file holds it, typed (`int:1700000000123`), or None
    when it has none: with its id, what knows the row again in a later run of stage 1."""
    value = row.values.get("created_at")
    if not isinstance(value, int | float | str) or isinstance(value, bool):
        return None
    return f"{type(value).__name__}:{value}"[:100]


def library_fingerprint(first_rows: list[tuple[Any, ...]]) -> str:
    """What tells one legacy library from another: a digest of its first rows' ids, creation
    times and paths. A library that grows keeps it; a copy of a library shares it."""
    digest = hashlib.sha256(b"modelshelf legacy library 1\n")
    for row in first_rows:
        digest.update(repr(row).encode("utf-8", "backslashreplace") + b"\n")
    return digest.hexdigest()


class FreshPendingIds:
    """Pending ids for rows whose legacy id another library's pending model has (or had):
    above every id in `bounds` (ids pending models have or had, and this library's own ids,
    which its later rows keep), or below them all once the top of the range is reached."""

    def __init__(self, bounds: list[tuple[int, int]]) -> None:
        self._up = max((hi for _, hi in bounds), default=0) + 1
        self._down = min((lo for lo, _ in bounds), default=0) - 1

    def take(self) -> int | None:
        """A new id, or None when every id SQLite can hold is in use."""
        if self._up <= MAX_INTEGER:
            self._up += 1
            return self._up - 1
        if self._down >= ROW_ID_MIN:
            self._down -= 1
            return self._down + 1
        return None
