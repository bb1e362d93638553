"""Editing many models at once: the same type and meta_json merge patch applied to every model
of a list, as one change; every model of a list deleted, as one change; or every one of them
that was deleted restored from its newest delete, as one change. Each model is
changed as PATCH changes it (ModelPatch.applied_to) and, when it changes, saved in
`model_history` first with the action and the details PATCH saves (`edit`), so a restore undoes
it model by model. There is no If-Match: the patch is applied to each model as it is when the
change runs, so an edit made meanwhile is kept wherever the patch does not name it."""

from __future__ import annotations

import logging

from modelshelf.domain.bulk_tagging import ManyChanged, models_asked
from modelshelf.domain.edits import ModelPatch, put_back, remove_images
from modelshelf.domain.revisions import record_from_history
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import InvalidInput
from modelshelf.storage import history, image_index, models

log = logging.getLogger(__name__)


async def edit_models(shelf: Shelf, hashes: list[str], patch: ModelPatch) -> ManyChanged:
    """Apply `patch` (a type, a meta_json merge patch, or both) to every model of `hashes`, as
    one change; a model it would leave as it is gets no history entry and is not written. A
    repeated hash counts once. Raises InvalidInput (a malformed hash, no hash or more than
    MAX_MODELS, a patch that names neither type nor meta_json); nothing changes then."""
    if not patch.columns and patch.meta is None:
        raise InvalidInput("send type, meta_json or both: there is nothing to change")
    asked = models_asked(hashes)
    # Each model's lock, as an edit of it takes it: the change waits for one under way (its
    # files) and the models' edits queue in the order they came.
    async with shelf.changes.change(lock=asked) as change:
        found, edited = await models.edited_fields(change.tx, asked, patch.applied_to)
        changed = [h for h in found if h in edited]
        if changed:
            await history.save_models(change.tx, changed, "edit", patch.details())
            await models.update_models(change.tx, edited)
    if changed:
        log.info(
            "%d models edited at once (type %s, %d meta_json keys)",
            len(changed),
            "set" if patch.columns else "kept",
            len(patch.meta or {}),
        )
    present = set(found)
    return ManyChanged(
        changed=changed,
        unchanged=[h for h in found if h not in edited],
        not_found=[h for h in asked if h not in present],
    )


async def delete_models(shelf: Shelf, hashes: list[str]) -> ManyChanged:
    """Delete every model of `hashes` as DELETE /api/models/{sha256} deletes one (its record,
    tag links and renditions; never its model files; a history entry `delete` first, so each
    can be restored, without its images), as one change: all of them or none. A repeated hash
    counts once; hashes no model has are `not_found`. Raises InvalidInput (a malformed hash,
    no hash or more than MAX_MODELS); nothing changes then."""
    asked = models_asked(hashes)
    async with shelf.changes.change(lock=asked) as change:
        found = await models.existing_models(change.tx, asked)
        seqs = await image_index.image_seqs_of_models(change.tx, found)
        await history.save_models(change.tx, found, "delete", {})
        await remove_images(shelf, change, {h: seqs[h] for h in found})
        await models.delete_models(change.tx, found)
    if found:
        log.info("%d models deleted at once (%d images)", len(found), sum(map(len, seqs.values())))
    present = set(found)
    return ManyChanged(
        changed=found, unchanged=[], not_found=[h for h in asked if h not in present]
    )


async def restore_models(shelf: Shelf, hashes: list[str]) -> ManyChanged:
    """Undo the delete of every model of `hashes` that is not in the library and was deleted:
    each is restored from its newest `delete` history entry, as POST
    .../history/{id}/restore restores one (fields, meta_json and tags back, not its images;
    the restore saved in history), as one change: all of them or none. Models in the library
    are `unchanged` (one a scan brought back is not overwritten); hashes never deleted are
    `not_found`. A repeated hash counts once. Raises InvalidInput (a malformed hash, no hash
    or more than MAX_MODELS); nothing changes then."""
    asked = models_asked(hashes)
    async with shelf.changes.change(lock=asked) as change:
        present = set(await models.existing_models(change.tx, asked))
        deletes = await history.newest_deletes(change.tx, [h for h in asked if h not in present])
        for sha256, (entry_id, previous) in deletes.items():
            # Off the loop: a record may hold megabytes of meta_json.
            target = await change.run(record_from_history, sha256, previous)
            await put_back(change, sha256, target, None, entry_id)
    if deletes:
        log.info("%d deleted models restored at once (without their images)", len(deletes))
    return ManyChanged(
        changed=[h for h in asked if h in deletes],
        unchanged=[h for h in asked if h in present],
        not_found=[h for h in asked if h not in present and h not in deletes],
    )
