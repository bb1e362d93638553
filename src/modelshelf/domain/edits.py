"""Editing a model: its fields and metadata (a JSON merge patch), its tags, deleting it, and
putting back an earlier state from its history. Each is one change through the unit of work
(revisions.edit) and saves the model as it was in `model_history` before it changes anything.
An edit that would change nothing writes nothing (and no history entry)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelshelf.domain.catalog import require_sha256
from modelshelf.domain.meta import apply_merge_patch, refuse_grown_past_limit
from modelshelf.domain.revisions import (
    HistoryEntry,
    IfMatch,
    Versioned,
    editing,
    history_entry,
    record_from_history,
    versioned,
)
from modelshelf.domain.shelf import Shelf
from modelshelf.domain.tagging import normalize_tag_names
from modelshelf.errors import NotFound
from modelshelf.records import ModelRecord, record_fields
from modelshelf.renditions import qualities
from modelshelf.storage import history, image_index, models, tags
from modelshelf.storage.change import Change
from modelshelf.storage.rows import same_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelPatch:
    """What a PATCH changes: `columns` (name, type) given a value or null, and `meta`, a JSON
    merge patch (RFC 7396) for meta_json."""

    columns: dict[str, str | None]
    meta: dict[str, Any] | None = None

    def applied_to(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A model's `fields` (record_fields': its columns and meta_json) as this patch leaves
        them; `fields` is not modified. Raises TooLarge for metadata grown past the limit
        (meta.refuse_grown_past_limit). Nothing else is needed for the keys a person sets to
        stay theirs: a scan refreshes a meta key only while it still holds what the scan wrote
        (file_facts.refresh_file_meta)."""
        after = fields | self.columns
        if self.meta is not None:
            after["meta_json"] = apply_merge_patch(fields["meta_json"], self.meta)
            refuse_grown_past_limit(fields["meta_json"], after["meta_json"])
        return after

    def written_to(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """What update_model writes of a model's `fields` this patch changes (written_fields),
        or None when it changes nothing. Blocking: a megabyte of meta_json is copied, measured
        and compared (about 50 ms on the event loop), so run it in the CPU pool."""
        after = self.applied_to(fields)
        return None if same_json(after, fields) else models.written_fields(fields, after)

    def details(self) -> dict[str, Any]:
        """What `model_history` keeps of the patch (the entry's `pending`)."""
        return {"columns": self.columns, "meta_json": self.meta}


@dataclass(frozen=True)
class Restored:
    model: Versioned
    note: str | None = None


async def patch_model(
    shelf: Shelf, sha256: str, patch: ModelPatch, if_match: IfMatch | None
) -> Versioned:
    """Change a model's name, type and meta_json. Raises InvalidInput, NotFound, TooLarge,
    PreconditionFailed."""
    async with editing(shelf, sha256, if_match) as edit:
        written = await edit.change.run(patch.written_to, record_fields(edit.before.record))
        if written is None:
            return edit.before
        await edit.save("edit", patch.details())
        await models.update_model(edit.tx, sha256, written)
        return await edit.after()


async def set_model_tags(
    shelf: Shelf, sha256: str, names: list[str], if_match: IfMatch | None
) -> Versioned:
    """Give a model exactly these tags (trimmed, lower-cased; new names become tags). Raises
    InvalidInput, NotFound, PreconditionFailed."""
    wanted = normalize_tag_names(names)
    async with editing(shelf, sha256, if_match) as edit:
        # Compared by tag, not by name: a stage-1 `Anime` sent back as `anime` is that tag.
        found = await tags.tag_ids_by_names(edit.tx, wanted)
        carried = {t.id for t in edit.before.record.tags}
        if len(found) == len(wanted) and set(found.values()) == carried:
            return edit.before
        await edit.save("tags", {"tags": wanted})
        await models.set_model_tags(edit.tx, sha256, await tags.tag_ids_for_names(edit.tx, wanted))
        return await edit.after()


async def delete_model(shelf: Shelf, sha256: str, if_match: IfMatch | None) -> Versioned:
    """Remove a model's record, its tag links and its renditions; its model files are never
    touched and its history stays (restoring an entry brings the record back). Returns the
    removed record, as it was read (with the length of its JSON). Raises InvalidInput,
    NotFound, PreconditionFailed (nothing removed)."""
    async with editing(shelf, sha256, if_match) as edit:
        await edit.save("delete", {})
        seqs = await image_index.image_seqs(edit.tx, sha256)
        await remove_images(shelf, edit.change, {sha256: seqs})
        await models.delete_model(edit.tx, sha256)
    log.info("deleted model %s (%d images)", sha256, len(seqs))
    return edit.before


async def remove_images(shelf: Shelf, change: Change, seqs: Mapping[str, list[int]]) -> None:
    """The images `seqs` names (sha256 -> its seqs) out of the index, and their renditions
    unlinked once `change` commits (a model deleted, alone or with others)."""
    await image_index.remove_images(
        change.tx, [(h, s) for h, numbers in seqs.items() for s in numbers]
    )
    for sha256, numbers in seqs.items():
        for seq in numbers:
            for quality in qualities():
                change.unlink(shelf.folder.rendition_path(sha256, seq, quality))


def _same_record(record: ModelRecord, target: ModelRecord) -> bool:
    """Whether `record` has the fields, meta_json and tag names of `target` already."""
    same_tags = sorted(t.name for t in record.tags) == sorted(t.name for t in target.tags)
    return same_tags and same_json(record_fields(record), record_fields(target))


async def model_history(
    shelf: Shelf, sha256: str, before: int | None = None, limit: int | None = None
) -> list[HistoryEntry]:
    """A model's history, newest first: the entries older than entry `before` if given, at
    most `limit` of them (None: all); a deleted model keeps its history. Raises InvalidInput,
    NotFound (no such model and no history)."""
    require_sha256(sha256)
    async with shelf.storage.read() as conn:
        rows = await history.model_history(conn, sha256, before, -1 if limit is None else limit)
        # Past the end of a deleted model's history is an empty page, not an unknown model.
        if (
            not rows
            and not await models.model_exists(conn, sha256)
            and (before is None or not await history.has_history(conn, sha256))
        ):
            raise NotFound(f"no model with SHA256 {sha256}")
    # Each entry holds a whole record (with every image name): a thousand of them parsed on
    # the event loop held it for a quarter of a second (bench/ui_scale.py).
    return await shelf.run_reads(lambda: [history_entry(r) for r in rows])


async def restore(shelf: Shelf, sha256: str, entry_id: int) -> Restored:
    """Put back the fields, meta_json and tags that history entry `entry_id` recorded, as one
    change that is itself saved in history (so it can be undone). Tags are put back by name
    (created again if they were deleted). A deleted model comes back without its images.
    Raises InvalidInput, NotFound (no such entry for this model)."""
    require_sha256(sha256)
    async with shelf.changes.change(lock=[sha256]) as change:
        row = await history.history_entry(change.tx, sha256, entry_id)
        if row is None:
            raise NotFound(f"model {sha256} has no history entry {entry_id}")
        # Off the loop: a record of megabytes of meta_json took 0.17 s to parse and compare.
        target = (await change.run(history_entry, row)).before
        current = await versioned(change.tx, sha256)
        note = await put_back(change, sha256, target, current, entry_id)
        restored = await versioned(change.tx, sha256)
    if restored is None:  # pragma: no cover - the change above wrote the model
        raise NotFound(f"no model with SHA256 {sha256}")
    log.info("model %s: history entry %d restored", sha256, entry_id)
    return Restored(restored, note)


async def put_back(
    change: Change,
    sha256: str,
    target: ModelRecord,
    current: Versioned | None,
    entry_id: int,
) -> str | None:
    """Inside `change`, under the model's lock: make the model (`current`, None if deleted) the
    fields, meta_json and tags of `target`, history entry `entry_id`'s record, saving what it
    replaces in history first (action `restore`); nothing when they are so already. Returns
    the note a deleted model's restore answers with (its images are not back)."""
    names = [t.name for t in target.tags]
    note = None
    if current is None:
        # Recorded too, so this restore can be undone like any other: what it replaces is the
        # model as its delete found it.
        deleted = await history.last_deleted(change.tx, sha256)
        before = await change.run(record_from_history, sha256, deleted) if deleted else target
        await history.record_history(
            change.tx, sha256, None, "restore", before, {"entry": entry_id}
        )
        await models.insert_model(change.tx, sha256, record_fields(target))
        listed = len(target.images)
        note = (
            "the model had been deleted: its fields, meta_json and tags are back, its example"
            f" images are not ({listed} {'was' if listed == 1 else 'were'} listed in entry"
            f" {entry_id})"
        )
    else:
        record = current.record
        if await change.run(_same_record, record, target):
            return None
        await history.record_history(
            change.tx, sha256, None, "restore", record, {"entry": entry_id}
        )
        await models.update_model(change.tx, sha256, record_fields(target))
    await models.set_model_tags(change.tx, sha256, await tags.tag_ids_for_names(change.tx, names))
    return note
