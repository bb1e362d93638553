"""Tagging many models at once: tags added to and removed from every model of a list, as one
change. Each model whose tags change is saved in `model_history` first, with the action PUT
tags saves (`tags`), so a restore undoes it model by model. There is no If-Match: the names
are added to and taken from the tags each model has when the change runs, so an edit made
meanwhile is kept, never overwritten."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from modelshelf.domain.catalog import require_sha256
from modelshelf.domain.shelf import Shelf
from modelshelf.domain.tagging import normalize_tag_names
from modelshelf.errors import InvalidInput
from modelshelf.storage import history, tags
from modelshelf.storage.change import Change

log = logging.getLogger(__name__)

# The most models one request tags (or edits: bulk_editing): its change holds the writer, and
# each model's lock, for its whole length (for this many in a library of 10,000, about 0.3 s
# to tag them, 0.45 s to edit them); a client with more sends several requests.
MAX_MODELS = 1000


@dataclass(frozen=True)
class ManyChanged:
    """The models asked for, each once, in the order asked: those the request changed, those
    it left as they were (they were so already), and hashes no model has (deleted
    meanwhile, or never there)."""

    changed: list[str]
    unchanged: list[str]
    not_found: list[str]


def models_asked(hashes: list[str]) -> list[str]:
    """`hashes` without repeats, in order. Raises InvalidInput (a malformed hash, no hash or
    more than MAX_MODELS)."""
    asked = list(dict.fromkeys(require_sha256(h) for h in hashes))
    if not 1 <= len(asked) <= MAX_MODELS:
        raise InvalidInput(f"send 1 to {MAX_MODELS} model hashes, not {len(asked)}")
    return asked


async def tag_models(
    shelf: Shelf, hashes: list[str], add: list[str], remove: list[str]
) -> ManyChanged:
    """Add the tags named in `add` to, and take those named in `remove` from, every model of
    `hashes`, as one change. Names are trimmed and lower-cased as PUT tags does; a new name in
    `add` becomes a tag (only if some model takes it); a name in `remove` that is no tag is
    ignored. A repeated hash counts once. Raises InvalidInput (a malformed hash or name, no
    hash or more than MAX_MODELS, a name both added and removed); nothing changes then."""
    wanted, unwanted = normalize_tag_names(add), normalize_tag_names(remove)
    both = sorted(set(wanted) & set(unwanted))
    if both:
        raise InvalidInput(f"{both[0]!r} is both added and removed; send it in one list")
    asked = models_asked(hashes)
    # Each model's lock, as an edit of it takes it: the change waits for one under way (its
    # files) and the models' edits queue in the order they came.
    async with shelf.changes.change(lock=asked) as change:
        dropped = list((await tags.tag_ids_by_names(change.tx, unwanted)).values())
        found = await _plan(change, asked, wanted, dropped)
        changed = [h for h, changes in found if changes]
        if changed:
            await history.save_models(
                change.tx, changed, "tags", {"add": wanted, "remove": unwanted}
            )
            await tags.unlink_models(change.tx, changed, dropped)
            added = await tags.tag_ids_for_names(change.tx, wanted)
            await tags.link_models(change.tx, changed, added)
    present = {h for h, _ in found}
    if changed:
        log.info(
            "tags of %d models changed (%d names added, %d removed)",
            len(changed),
            len(wanted),
            len(unwanted),
        )
    return ManyChanged(
        changed=changed,
        unchanged=[h for h, changes in found if not changes],
        not_found=[h for h in asked if h not in present],
    )


async def _plan(
    change: Change, asked: list[str], wanted: list[str], remove: list[int]
) -> list[tuple[str, bool]]:
    """The models of `asked` that exist, in order, each with whether its tags would change."""
    add = await tags.tag_ids_by_names(change.tx, wanted)
    return await tags.models_retagged(change.tx, asked, list(add.values()), len(wanted), remove)
