"""Stage 2: promote a pending model into the library by id.

Order of work, and why:
1. the pending id is locked in memory (a second request gets Locked at once);
2. the model file is hashed and the pending image rendered into staging, outside any
   transaction and any model lock (slow work must hold neither);
3. one change (the unit of work) locks the model, re-reads the pending row, re-checks the
   conflict (another import of the same content may have committed meanwhile), applies the
   resolution's rules and names the file moves; they are carried out after the commit.
A failure before the commit changes nothing; after it, the journal finishes the job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from modelshelf.domain.revisions import IfMatch, require_version
from modelshelf.domain.shelf import Shelf
from modelshelf.domain.strategies import (
    IMPORT,
    ImageRule,
    Resolution,
    Strategy,
    TagRule,
    image_seq,
    planned_record,
    resolution,
)
from modelshelf.errors import (
    Conflict,
    ImageError,
    ImageTooLarge,
    Locked,
    NotFound,
    ShelfError,
    Unprocessable,
)
from modelshelf.hashing import FileIdentity
from modelshelf.imagefolder import StagedImage
from modelshelf.progress import Progress
from modelshelf.records import ModelRecord, PendingRecord, record_fields
from modelshelf.renditions import qualities
from modelshelf.storage import history, image_index, models, pending
from modelshelf.storage.change import Change, Staging
from modelshelf.storage.rows import now_ms

log = logging.getLogger(__name__)

BATCH_RESULTS = ("success", "conflict", "locked", "not_found", "failed")


@dataclass(frozen=True)
class ImportOutcome:
    sha256: str
    action_taken: str


@dataclass(frozen=True)
class Prepared:
    pending: PendingRecord
    sha256: str
    identity: FileIdentity
    image_ext: str | None  # None: no usable original on disk


class _SituationChanged(Exception):
    """The library changed between staging and the transaction; stage again."""


async def import_a_model(
    shelf: Shelf, pending_id: int, strategy: Strategy | None, if_match: IfMatch | None = None
) -> ImportOutcome:
    """Promote pending model `pending_id`, resolving a conflict with `strategy`. With
    `if_match`, only if the library's model of its SHA256 is still at that version (a person
    who compared the two and chose must not overwrite an edit made since); with no such model
    there is no version to match, `*` included (RFC 9110 13.1.1).

    Raises Locked, NotFound (no such pending model), PreconditionFailed, Conflict (same
    SHA256 and no strategy), Unprocessable (model file missing, unreadable or changed; pending
    image corrupt), StorageFull, StorageUnavailable, StorageBusy. On any error nothing has
    changed.
    """
    rules = None if strategy is None else resolution(strategy)
    return await promote(shelf, pending_id, rules, if_match)


async def promote(
    shelf: Shelf, pending_id: int, conflict: Resolution | None, if_match: IfMatch | None = None
) -> ImportOutcome:
    """`import_a_model` with the conflict rules given directly (None: a conflict raises)."""
    async with shelf.pending_locks.hold_now(pending_id):
        prepared = await prepare(shelf, pending_id)
        for _attempt in range(3):
            try:
                action = await _promote_once(shelf, prepared, conflict, if_match)
                break
            except _SituationChanged:
                continue
        else:
            raise Locked(f"pending model {pending_id} kept changing; try again")
    log.info("pending %d -> %s: %s", pending_id, prepared.sha256, action)
    return ImportOutcome(prepared.sha256, action)


async def _promote_once(
    shelf: Shelf, prepared: Prepared, conflict: Resolution | None, if_match: IfMatch | None
) -> str:
    existing = await _existing(shelf, prepared.sha256)
    # With If-Match the precondition is decided first, in the change (_apply).
    if existing is not None and conflict is None and if_match is None:
        raise conflict_error(prepared, existing)
    plan = IMPORT if existing is None else conflict
    async with shelf.changes.staging() as staging:
        staged = None
        if plan is not None and plan.image is not ImageRule.DISCARD:
            staged = await _stage_image(shelf, prepared, staging)
        async with shelf.changes.change(lock=[prepared.sha256], staging=staging) as change:
            return await _apply(shelf, change, prepared, conflict, staged, if_match)


async def discard_pending(shelf: Shelf, pending_id: int) -> PendingRecord:
    """Take pending model `pending_id` out of the queue without importing it (its file may be
    gone, or it may be unwanted): its record, its tag links and its original image go; its
    model file is never touched. Returns the record as it was. Raises Locked (an import of
    it is running), NotFound, StorageUnavailable, StorageFull, StorageBusy."""
    async with shelf.pending_locks.hold_now(pending_id):
        # The original as it is on disk too: it may have been replaced by hand in another format.
        on_disk = await shelf.run_files(shelf.folder.pending_original_ext, pending_id)
        async with shelf.changes.change() as change:
            record = await pending.fetch_pending(change.tx, pending_id)
            if record is None:
                raise NotFound(f"no pending model with id {pending_id}")
            indexed = await pending.pending_image_ext(change.tx, pending_id)
            for ext in {e for e in (indexed, on_disk) if e is not None}:
                change.unlink(shelf.folder.pending_path(pending_id, ext))
            await pending.delete_pending(change.tx, pending_id)
    log.info("pending %d discarded", pending_id)
    return record


async def prepare(shelf: Shelf, pending_id: int) -> Prepared:
    """The pending record (size and created_at filled from its file when it lacks them), the
    SHA256 of its model file and the identity it was computed for, and the extension of its
    image if the original is on disk. Raises NotFound, Unprocessable."""
    async with shelf.storage.read(bulk=True) as conn:
        record = await pending.fetch_pending(conn, pending_id)
        image_ext = await pending.pending_image_ext(conn, pending_id)
    if record is None:
        raise NotFound(f"no pending model with id {pending_id}")
    if not record.path:
        raise Unprocessable(f"pending model {pending_id} has no model file path")
    sha256, identity = await shelf.hasher.digest(shelf.model_path(record.path))
    # Facts the file itself tells fill what the pending record left open.
    if record.size_bytes is None:
        record = record.model_copy(update={"size_bytes": identity.size})
    if record.created_at is None:
        record = record.model_copy(update={"created_at": now_ms()})
    if image_ext is None or not await _original_present(shelf, pending_id, image_ext):
        # Removed or replaced by hand (in any format), as the advice for a corrupt image
        # says: what is on disk now counts, without waiting for a restart to reconcile.
        image_ext = await shelf.run_files(shelf.folder.pending_original_ext, pending_id)
    return Prepared(record, sha256, identity, image_ext)


async def _original_present(shelf: Shelf, pending_id: int, ext: str) -> bool:
    path = shelf.folder.pending_path(pending_id, ext)
    try:
        await shelf.run_files(shelf.folder.regular_file, path, path.name)
    except NotFound:
        return False
    return True


async def _existing(shelf: Shelf, sha256: str) -> ModelRecord | None:
    async with shelf.storage.read(bulk=True) as conn:
        return await models.fetch_model(conn, sha256)


def conflict_error(prepared: Prepared, existing: ModelRecord) -> Conflict:
    """The Conflict an import without a strategy raises, with both records: as records, which
    the answer serialises off the event loop (with megabytes of meta_json each, dumped here
    they held it); a batch import reports only the sentence."""
    return Conflict(
        f"a model with SHA256 {prepared.sha256} already exists; "
        "choose conf_strategy override, merge or delete",
        existing=existing,
        pending=prepared.pending,
    )


async def _stage_image(shelf: Shelf, prepared: Prepared, staging: Staging) -> StagedImage | None:
    if prepared.image_ext is None:
        return None
    source = shelf.folder.pending_path(prepared.pending.id, prepared.image_ext)
    folder = await staging.new_folder()
    try:
        return await shelf.run_cpu(shelf.folder.render_into, source, folder)
    except (ImageError, ImageTooLarge) as exc:
        # Chosen: refuse rather than import without the image, so nothing is silently dropped.
        # Too many pixels (the limit lowered since) is an image to replace too, not a 413.
        raise Unprocessable(
            f"the image of pending model {prepared.pending.id} cannot be used ({exc.detail}); "
            f"nothing was imported. Replace or remove images/pending/{source.name} and try again."
        ) from exc


async def _apply(
    shelf: Shelf,
    change: Change,
    prepared: Prepared,
    conflict: Resolution | None,
    staged: StagedImage | None,
    if_match: IfMatch | None,
) -> str:
    tx, pending_id = change.tx, prepared.pending.id
    if await pending.fetch_pending_row(tx, pending_id) is None:
        raise NotFound(f"no pending model with id {pending_id}")
    await _require_unchanged(shelf, prepared)
    if if_match is not None:  # under the model's lock: nothing can change it until the commit
        await require_version(tx, prepared.sha256, if_match)
    existing = await models.fetch_model(tx, prepared.sha256)
    if existing is not None and conflict is None:
        raise conflict_error(prepared, existing)  # another import of this content committed first
    plan = IMPORT if existing is None or conflict is None else conflict
    if plan.image is not ImageRule.DISCARD and prepared.image_ext and staged is None:
        raise _SituationChanged
    seqs = await image_index.image_seqs(tx, prepared.sha256)
    await _write_record(change, prepared, existing, seqs, plan, staged is not None)
    if plan.tags is TagRule.UNION:
        tag_ids = await pending.pending_tag_ids(tx, pending_id)
        await models.add_model_tags(tx, prepared.sha256, tag_ids)
    seq = image_seq(plan.image, seqs)
    if staged is not None and seq is not None:
        await _place_image(shelf, change, prepared.sha256, staged, seq)
    if prepared.image_ext is not None:  # after the moves: the original goes last
        change.unlink(shelf.folder.pending_path(pending_id, prepared.image_ext))
    await pending.delete_pending(tx, pending_id)
    return plan.action_taken


async def _write_record(
    change: Change,
    prepared: Prepared,
    existing: ModelRecord | None,
    seqs: list[int],
    plan: Resolution,
    with_image: bool,
) -> None:
    """Write the model `plan` makes (the record a preview answers); an existing model is saved
    in history first. The record is planned on the change's thread (Change.run): a merge of
    metadata holding long lists (two of 30,000 words) held the event loop about 0.14 s, and
    in the CPU pool it waited behind renders holding the writer."""
    result = await change.run(
        planned_record, plan, prepared.sha256, existing, seqs, prepared.pending, with_image
    )
    if existing is None:
        await models.insert_model(change.tx, prepared.sha256, record_fields(result))
    elif plan.changes_record:
        await history.record_history(
            change.tx,
            prepared.sha256,
            prepared.pending.id,
            plan.name,
            existing,
            prepared.pending,
        )
        await models.update_model(change.tx, prepared.sha256, record_fields(result))


async def _require_unchanged(shelf: Shelf, prepared: Prepared) -> None:
    """The model file must still be the one that was hashed, now that the change commits."""
    try:
        unchanged = await shelf.hasher.identify(shelf.model_path(prepared.pending.path or ""))
    except Unprocessable:
        unchanged = None
    if unchanged != prepared.identity:
        raise Unprocessable(
            f"model file {prepared.pending.path} changed or disappeared after it was hashed; "
            "nothing was imported"
        )


async def _place_image(
    shelf: Shelf, change: Change, sha256: str, staged: StagedImage, seq: int
) -> None:
    await image_index.add_image(change.tx, sha256, seq)
    for quality in qualities():
        change.move(staged.file(quality), shelf.folder.rendition_path(sha256, seq, quality))


async def import_models(
    shelf: Shelf,
    ids: list[int],
    strategy: Strategy | None,
    concurrency: int,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Import many pending ids, at most `concurrency` at a time, telling `progress` (if given)
    the ids done; one result per distinct id, in request order, each with `result` in
    BATCH_RESULTS. Never raises for a single id."""
    unique = list(dict.fromkeys(ids))
    gate = asyncio.Semaphore(concurrency)
    with Progress.use(progress, len(unique), "batch import") as progress:

        async def one(pending_id: int) -> dict[str, Any]:
            async with gate:
                result = await _import_one(shelf, pending_id, strategy)
            progress.advance()
            return result

        # A TaskGroup, unlike gather, waits for every import to unwind when the batch is
        # cancelled: none may still be moving files when the job reports its end.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(i)) for i in unique]
        return [task.result() for task in tasks]


async def _import_one(shelf: Shelf, pending_id: int, strategy: Strategy | None) -> dict[str, Any]:
    try:
        outcome = await import_a_model(shelf, pending_id, strategy)
    except Conflict as exc:
        return {"id": pending_id, "result": "conflict", "detail": exc.detail}
    except Locked as exc:
        return {"id": pending_id, "result": "locked", "detail": exc.detail}
    except NotFound as exc:
        return {"id": pending_id, "result": "not_found", "detail": exc.detail}
    except ShelfError as exc:
        return {"id": pending_id, "result": "failed", "detail": exc.detail}
    except Exception:
        log.exception("batch import of pending %d failed", pending_id)
        return {
            "id": pending_id,
            "result": "failed",
            "detail": "internal error; see the server log",
        }
    return {
        "id": pending_id,
        "result": "success",
        "sha256": outcome.sha256,
        "action_taken": outcome.action_taken,
    }
