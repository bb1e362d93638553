"""Stage 2: promote a pending model into the library by id.

Order of work, and why:
1. the pending id is locked in memory (a second request gets Locked at once);
2. the model file is hashed and the pending image rendered into staging, outside any transaction
   (slow work must not hold the single writer);
3. under the model's lock, one BEGIN IMMEDIATE transaction re-reads the pending row and re-checks
   the conflict (another import of the same content may have committed meanwhile), applies the
   strategy and records the file moves in the journal;
4. after the commit the files are moved into place and the journal row is dropped.
A failure before the commit changes nothing; after it, the journal finishes the job.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

import aiosqlite

from modelshelf import filejournal
from modelshelf.errors import Conflict, ImageError, Locked, NotFound, ShelfError, Unprocessable
from modelshelf.filejournal import FileOp
from modelshelf.hashing import FileIdentity
from modelshelf.imagestore import StagedImage
from modelshelf.meta import merge_columns, merge_meta_json
from modelshelf.progress import Progress
from modelshelf.records import PendingRecord
from modelshelf.shelf import Shelf
from modelshelf.storage import queries
from modelshelf.storage.queries import MODEL_COLUMNS

log = logging.getLogger(__name__)


class Strategy(enum.StrEnum):
    OVERRIDE = "override"
    MERGE = "merge"
    DELETE = "delete"


ACTION_BY_STRATEGY = {
    Strategy.OVERRIDE: "overridden",
    Strategy.MERGE: "merged",
    Strategy.DELETE: "deleted",
}


@dataclass(frozen=True)
class ImportOutcome:
    sha256: str
    action_taken: str


@dataclass
class _Prepared:
    pending: PendingRecord
    sha256: str
    identity: FileIdentity
    image_ext: str | None
    staged: StagedImage | None = None


async def import_a_model(shelf: Shelf, pending_id: int, strategy: Strategy | None) -> ImportOutcome:
    """Promote pending model `pending_id`, resolving a conflict with `strategy`.

    Raises Locked, NotFound (no such pending model), Conflict (same SHA256 and no strategy),
    Unprocessable (model file missing, unreadable or changed; pending image corrupt),
    StorageFull, StorageUnavailable. On any error nothing has changed.
    """
    async with shelf.pending_locks.hold_now(pending_id):
        prepared = await _prepare(shelf, pending_id)
        try:
            existing = await _existing(shelf, prepared.sha256)
            if existing is not None and strategy is None:
                await _raise_conflict(shelf, prepared)
            if existing is None or strategy is not Strategy.DELETE:
                prepared.staged = await _stage_image(shelf, prepared)
            async with shelf.model_locks.hold(prepared.sha256):
                async with shelf.storage.write() as tx:
                    action, ops = await _apply(shelf, tx, prepared, strategy)
                    journal_id = await shelf.images.record(tx, ops)
                prepared.staged = None  # the journal owns the staged files now
                await shelf.images.carry_out(journal_id, ops)
        finally:
            if prepared.staged is not None:
                await shelf.images.discard(prepared.staged.folder)
    log.info("pending %d -> %s: %s", pending_id, prepared.sha256, action)
    return ImportOutcome(prepared.sha256, action)


async def _prepare(shelf: Shelf, pending_id: int) -> _Prepared:
    async with shelf.storage.read() as conn:
        pending = await queries.fetch_pending(conn, pending_id)
        image_ext = await queries.pending_image_ext(conn, pending_id)
    if pending is None:
        raise NotFound(f"no pending model with id {pending_id}")
    if not pending.path:
        raise Unprocessable(f"pending model {pending_id} has no model file path")
    sha256, identity = await shelf.hasher.digest(shelf.model_path(pending.path))
    # Facts the file itself tells fill what the pending record left open.
    if pending.size_bytes is None:
        pending = pending.model_copy(update={"size_bytes": identity.size})
    if pending.created_at is None:
        pending = pending.model_copy(update={"created_at": queries.now_ms()})
    return _Prepared(pending, sha256, identity, image_ext)


async def _existing(shelf: Shelf, sha256: str) -> sqlite3.Row | None:
    async with shelf.storage.read() as conn:
        return await queries.fetch_model_row(conn, sha256)


async def _raise_conflict(
    shelf: Shelf, prepared: _Prepared, conn: aiosqlite.Connection | None = None
) -> None:
    if conn is None:
        async with shelf.storage.read() as reader:
            existing = await queries.fetch_models(reader, [prepared.sha256])
    else:
        existing = await queries.fetch_models(conn, [prepared.sha256])
    raise Conflict(
        f"a model with SHA256 {prepared.sha256} already exists; "
        "choose conf_strategy override, merge or delete",
        existing=existing[0].model_dump(mode="json") if existing else None,
        pending=prepared.pending.model_dump(mode="json"),
    )


async def _stage_image(shelf: Shelf, prepared: _Prepared) -> StagedImage | None:
    if prepared.image_ext is None:
        return None
    source = shelf.images.pending_path(prepared.pending.id, prepared.image_ext)
    try:
        return await shelf.images.stage_renditions(source)
    except ImageError as exc:
        # Chosen: refuse rather than import without the image, so nothing is silently dropped.
        raise Unprocessable(
            f"the image of pending model {prepared.pending.id} cannot be used ({exc.detail}); "
            "nothing was imported. Replace or remove images/pending/"
            f"{source.name} and try again."
        ) from exc


async def _apply(
    shelf: Shelf, tx: aiosqlite.Connection, prepared: _Prepared, strategy: Strategy | None
) -> tuple[str, list[FileOp]]:
    pending_id = prepared.pending.id
    if await queries.fetch_pending_row(tx, pending_id) is None:
        raise NotFound(f"no pending model with id {pending_id}")
    await _require_unchanged(shelf, prepared)
    existing = await queries.fetch_model_row(tx, prepared.sha256)
    if existing is not None and strategy is None:
        # Another import of the same content committed after our first check.
        await _raise_conflict(shelf, prepared, tx)
    ops: list[FileOp] = []
    if existing is None:
        action = "imported"
        await queries.insert_model(tx, prepared.sha256, _pending_fields(prepared.pending))
    else:
        assert strategy is not None
        action = ACTION_BY_STRATEGY[strategy]
        if strategy is not Strategy.DELETE:
            await _update_existing(tx, prepared, strategy, existing)
    if strategy is not Strategy.DELETE or existing is None:
        await queries.add_model_tags(
            tx, prepared.sha256, await queries.pending_tag_ids(tx, pending_id)
        )
        ops += await _place_image(shelf, tx, prepared, replace_first=action == "overridden")
    elif prepared.staged is not None:
        # Rendered while no model had this content; one appeared before this transaction and
        # `delete` leaves it as it was, so the staged renditions go (with the journal).
        ops.append(filejournal.rmtree(prepared.staged.folder, shelf.images.data_dir))
    if prepared.image_ext is not None:
        ops.append(shelf.images.remove_pending(pending_id, prepared.image_ext))
    await queries.delete_pending(tx, pending_id)
    return action, ops


async def _require_unchanged(shelf: Shelf, prepared: _Prepared) -> None:
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


async def _update_existing(
    tx: aiosqlite.Connection, prepared: _Prepared, strategy: Strategy, existing: sqlite3.Row
) -> None:
    previous = (await queries.fetch_models(tx, [prepared.sha256]))[0]
    pending_fields = _pending_fields(prepared.pending)
    await queries.record_history(
        tx,
        prepared.sha256,
        prepared.pending.id,
        strategy.value,
        previous.model_dump(mode="json"),
        prepared.pending.model_dump(mode="json"),
    )
    if strategy is Strategy.OVERRIDE:
        await queries.update_model(tx, prepared.sha256, pending_fields)
        return
    fields = merge_columns(dict(existing), pending_fields, MODEL_COLUMNS)
    fields["meta_json"] = merge_meta_json(previous.meta_json, pending_fields["meta_json"])
    await queries.update_model(tx, prepared.sha256, fields)


async def _place_image(
    shelf: Shelf, tx: aiosqlite.Connection, prepared: _Prepared, replace_first: bool
) -> list[FileOp]:
    if prepared.staged is None:
        return []
    # Override replaces seq 0; import and merge take the next free seq (0 for a new model).
    seq = 0 if replace_first else await shelf.images.get_next_sequence_index(prepared.sha256, tx)
    await queries.add_image(tx, prepared.sha256, seq)
    return shelf.images.place_renditions(prepared.staged, prepared.sha256, seq)


def _pending_fields(pending: PendingRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {c: getattr(pending, c) for c in MODEL_COLUMNS}
    fields["meta_json"] = pending.meta_json
    return fields


BATCH_RESULTS = ("success", "conflict", "locked", "not_found", "failed")


async def import_models(
    shelf: Shelf, ids: list[int], strategy: Strategy | None, concurrency: int
) -> list[dict[str, Any]]:
    """Import many pending ids, at most `concurrency` at a time; one result per distinct id,
    in request order, each with `result` in BATCH_RESULTS. Never raises for a single id."""
    unique = list(dict.fromkeys(ids))
    gate = asyncio.Semaphore(concurrency)
    with Progress(len(unique), "batch import", bar=False) as progress:

        async def one(pending_id: int) -> dict[str, Any]:
            async with gate:
                result = await _import_one(shelf, pending_id, strategy)
            progress.advance()
            return result

        return list(await asyncio.gather(*(one(i) for i in unique)))


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
