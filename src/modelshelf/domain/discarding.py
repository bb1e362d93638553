"""Taking many pending models out of the queue at once without importing them (their files
gone, or not wanted): each as promotion.discard_pending takes one (its record, tag links and
original image; never its model file), all in one change."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from modelshelf.domain.shelf import Shelf
from modelshelf.errors import InvalidInput, Locked
from modelshelf.storage import pending

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Discarded:
    """The ids asked for, each once, in the order asked: those taken out of the queue, those
    being imported meanwhile (left in it), and those no pending model has."""

    discarded: list[int]
    locked: list[int]
    not_found: list[int]


async def discard_pendings(shelf: Shelf, ids: Sequence[int]) -> Discarded:
    """Discard every pending model of `ids` that no import holds, as one change: all of them
    or none. A repeated id counts once. Raises InvalidInput (no id), StorageUnavailable,
    StorageFull, StorageBusy; nothing changes then."""
    asked = list(dict.fromkeys(ids))
    if not asked:
        raise InvalidInput("send at least one pending id")
    async with AsyncExitStack() as stack:
        held, locked = [], []
        for pending_id in asked:
            try:
                await stack.enter_async_context(shelf.pending_locks.hold_now(pending_id))
            except Locked:
                locked.append(pending_id)
            else:
                held.append(pending_id)
        # The originals as they are on disk too: one may have been replaced by hand in another
        # format (see discard_pending).
        on_disk = await shelf.run_files(shelf.folder.pending_originals)
        async with shelf.changes.change() as change:
            present = await pending.pending_ids(change.tx)
            indexed = await pending.all_pending_images(change.tx)
            found = [pending_id for pending_id in held if pending_id in present]
            for pending_id in found:
                known = {indexed[pending_id]} if pending_id in indexed else set()
                for ext in on_disk.get(pending_id, set()) | known:
                    change.unlink(shelf.folder.pending_path(pending_id, ext))
            await pending.delete_pendings(change.tx, found)
    if found:
        log.info("%d pending models discarded at once", len(found))
    gone = set(found) | set(locked)
    return Discarded(found, locked, [i for i in asked if i not in gone])
