"""What `import_a_model` would do, changing nothing: the preview of a promotion.

It prepares the pending model as the import does (hashing the model file, which the hash
cache remembers), reads the model with the same content if there is one, and applies the same
rules of the same resolution (`strategies.planned_record`), so preview and import cannot
disagree. A pending image that the import would render is decoded to prove it usable.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelshelf.domain.promotion import Prepared, conflict_error, prepare
from modelshelf.domain.revisions import versioned
from modelshelf.domain.shelf import Shelf
from modelshelf.domain.strategies import IMPORT, ImageRule, Strategy, planned_record, resolution
from modelshelf.errors import ImageError, ImageTooLarge, Unprocessable
from modelshelf.images import verify_image
from modelshelf.records import ModelFile, ModelRecord, PendingRecord
from modelshelf.storage import image_index, model_files


@dataclass(frozen=True)
class Preview:
    action_taken: str
    result: ModelRecord
    existing: ModelRecord | None
    pending: PendingRecord
    # The version of `existing` (its ETag, as GET /api/models/{sha256} gives it): what an
    # import that must not overwrite a change made since sends as If-Match.
    existing_etag: str | None = None


async def preview_import(shelf: Shelf, pending_id: int, strategy: Strategy | None) -> Preview:
    """The answer `import_a_model(pending_id, strategy)` would give and the record it would
    leave, images included, and the version of the model it would change. Raises what the
    import raises before it changes anything: NotFound, Unprocessable, Conflict (same SHA256
    and no strategy)."""
    prepared = await prepare(shelf, pending_id)
    async with shelf.storage.read() as conn:
        # The record and its version read by one statement: the ETag is that of the record
        # the answer shows.
        current = await versioned(conn, prepared.sha256)
        existing = None if current is None else current.record
        seqs = await image_index.image_seqs(conn, prepared.sha256)
        files = await model_files.files_of_model(conn, prepared.sha256)
    if existing is not None and strategy is None:
        raise conflict_error(prepared, existing)
    plan = IMPORT if existing is None or strategy is None else resolution(strategy)
    with_image = prepared.image_ext is not None
    if with_image and plan.image is not ImageRule.DISCARD:
        await _require_usable_image(shelf, prepared)
    # In the CPU pool, as the import plans it (promotion._write_record).
    result = await shelf.run_cpu(
        planned_record, plan, prepared.sha256, existing, seqs, prepared.pending, with_image
    )
    # An import leaves the locations of the content as they are (a scan's, or those a model
    # deleted here left): the model answers with them afterwards.
    result = result.model_copy(update={"files": [ModelFile(path=p, present=on) for p, on in files]})
    etag = None if current is None else current.etag
    return Preview(plan.action_taken, result, existing, prepared.pending, etag)


async def _require_usable_image(shelf: Shelf, prepared: Prepared) -> None:
    source = shelf.folder.pending_path(prepared.pending.id, prepared.image_ext or "")
    try:
        await shelf.run_cpu(verify_image, source, shelf.folder.max_pixels)
    except (ImageError, ImageTooLarge) as exc:
        raise Unprocessable(
            f"the image of pending model {prepared.pending.id} cannot be used ({exc.detail});"
            f" the import would fail. Replace or remove images/pending/{source.name}."
        ) from exc
