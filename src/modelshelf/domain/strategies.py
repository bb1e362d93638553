"""Conflict strategies as one table. When a pending model has the SHA256 of a model already in
the library, its strategy says what happens to the model's fields, `meta_json`, tags and example
images. The promotion code applies the rules of a `Resolution`; it never names a strategy, so a
new strategy touches this module (and its tests) only.

`planned_record` is what a resolution makes of a model: the import writes it, and the preview
answers it, so the two cannot disagree.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from modelshelf.domain.meta import merge_columns, merge_meta_json
from modelshelf.records import (
    MODEL_COLUMNS,
    ModelRecord,
    PendingRecord,
    Tag,
    image_name,
    record_fields,
)


class Strategy(enum.StrEnum):
    OVERRIDE = "override"
    MERGE = "merge"
    DELETE = "delete"


class FieldRule(enum.Enum):
    KEEP = "keep"  # the model's columns stay as they are
    FILL_EMPTY = "fill_empty"  # a NULL or empty column takes the pending value
    TAKE_PENDING = "take_pending"  # every column takes the pending value


class MetaRule(enum.Enum):
    KEEP = "keep"
    MERGE = "merge"  # merge_meta_json(existing, pending): existing values win
    TAKE_PENDING = "take_pending"


class TagRule(enum.Enum):
    KEEP = "keep"
    UNION = "union"


class ImageRule(enum.Enum):
    DISCARD = "discard"  # the pending image is deleted with the pending record
    APPEND = "append"  # it becomes a new image at the next free seq
    REPLACE_COVER = "replace_cover"  # it replaces seq 0 (seq 0 stays if there is no image)


@dataclass(frozen=True)
class Resolution:
    """What a promotion does: `name` is kept in the model's history, `action_taken` is what the
    answer reports."""

    name: str
    action_taken: str
    fields: FieldRule
    meta: MetaRule
    tags: TagRule
    image: ImageRule

    @property
    def changes_record(self) -> bool:
        """Whether the model's fields, metadata or tags change (then history keeps the old)."""
        return (self.fields, self.meta, self.tags) != (FieldRule.KEEP, MetaRule.KEEP, TagRule.KEEP)


# No model has the content yet: the pending record becomes the model.
IMPORT = Resolution(
    "import",
    "imported",
    FieldRule.TAKE_PENDING,
    MetaRule.TAKE_PENDING,
    TagRule.UNION,
    ImageRule.APPEND,
)


def resolution(strategy: Strategy) -> Resolution:
    """The table. mypy checks that every strategy has its row."""
    match strategy:
        case Strategy.OVERRIDE:
            return Resolution(
                "override",
                "overridden",
                FieldRule.TAKE_PENDING,
                MetaRule.TAKE_PENDING,
                TagRule.UNION,
                ImageRule.REPLACE_COVER,
            )
        case Strategy.MERGE:
            return Resolution(
                "merge",
                "merged",
                FieldRule.FILL_EMPTY,
                MetaRule.MERGE,
                TagRule.UNION,
                ImageRule.APPEND,
            )
        case Strategy.DELETE:
            return Resolution(
                "delete", "deleted", FieldRule.KEEP, MetaRule.KEEP, TagRule.KEEP, ImageRule.DISCARD
            )
        case _:
            assert_never(strategy)


def actions_taken() -> list[str]:
    """Every `action_taken` a promotion can report."""
    return [IMPORT.action_taken, *(resolution(s).action_taken for s in Strategy)]


def resolve_columns(
    rule: FieldRule, existing: dict[str, Any], pending: dict[str, Any], columns: tuple[str, ...]
) -> dict[str, Any]:
    match rule:
        case FieldRule.KEEP:
            return {c: existing.get(c) for c in columns}
        case FieldRule.FILL_EMPTY:
            return merge_columns(existing, pending, columns)
        case FieldRule.TAKE_PENDING:
            return {c: pending.get(c) for c in columns}
        case _:
            assert_never(rule)


def resolve_meta(rule: MetaRule, existing: dict[str, Any], pending: dict[str, Any]) -> Any:
    match rule:
        case MetaRule.KEEP:
            return copy.deepcopy(existing)
        case MetaRule.MERGE:
            return merge_meta_json(existing, pending)
        case MetaRule.TAKE_PENDING:
            return copy.deepcopy(pending)
        case _:
            assert_never(rule)


def image_seq(rule: ImageRule, seqs: Sequence[int]) -> int | None:
    """The seq a pending image takes among a model's images `seqs` (None: it is discarded)."""
    match rule:
        case ImageRule.DISCARD:
            return None
        case ImageRule.APPEND:
            return max(seqs) + 1 if seqs else 0
        case ImageRule.REPLACE_COVER:
            return 0
        case _:
            assert_never(rule)


def planned_record(
    plan: Resolution,
    sha256: str,
    existing: ModelRecord | None,
    existing_seqs: Sequence[int],
    pending: PendingRecord,
    pending_image: bool,
) -> ModelRecord:
    """The model as `plan` leaves it: `existing` (None: no model has the content yet, whose
    images have seqs `existing_seqs`) resolved with `pending` (with an image or not)."""
    before = record_fields(existing) if existing is not None else {}
    fields = resolve_columns(plan.fields, before, record_fields(pending), MODEL_COLUMNS)
    meta = resolve_meta(plan.meta, before.get("meta_json") or {}, pending.meta_json)
    tags: dict[int, Tag] = {t.id: t for t in (existing.tags if existing else [])}
    if plan.tags is TagRule.UNION:
        tags |= {t.id: t for t in pending.tags if t.id not in tags}
    seqs = set(existing_seqs)
    placed = image_seq(plan.image, existing_seqs) if pending_image else None
    if placed is not None:
        seqs.add(placed)
    return ModelRecord(
        sha256=sha256,
        meta_json=meta,
        tags=sorted(tags.values(), key=lambda t: t.name),
        images=[image_name(sha256, s) for s in sorted(seqs)],
        **fields,
    )
