"""Tags themselves: what a tag name may be, and creating, renaming, merging and deleting tags.
Renaming, merging or deleting a tag changes every model that carries it, so each of those
models is saved in `model_history` first, in the same change."""

from __future__ import annotations

import logging
from typing import Any

from modelshelf.domain.shelf import Shelf
from modelshelf.errors import Conflict, InvalidInput, NotFound
from modelshelf.records import Tag, folded_tag_name
from modelshelf.storage import history, models, tags
from modelshelf.storage.change import Change

log = logging.getLogger(__name__)

MAX_TAG_NAME = 100
# Refused anywhere in a tag name (and in a model's name or type a client sets): C0 controls,
# DEL and C1 controls; and the characters that show as nothing or turn the text around: soft
# hyphen, zero-width space, the direction marks, embeddings and overrides, word joiner and
# invisible operators, the isolates, and the byte-order mark. (Zero-width joiner and
# non-joiner are letters' business in Persian, Indic scripts and emoji: kept.)
REFUSED_RANGES = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xAD, 0xAD),
    (0x200B, 0x200B),
    (0x200E, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x2069),
    (0xFEFF, 0xFEFF),
)


def is_refused(ch: str) -> bool:
    return any(low <= ord(ch) <= high for low, high in REFUSED_RANGES)


# What trimming removes (str.strip: the characters str.isspace holds for; the last is U+3000),
# controls aside. Spelled out for the published pattern rather than written as the regex `\s`,
# whose meaning differs between Python, JavaScript and pydantic's Rust regex (U+0085, U+FEFF).
SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and not is_refused(c))


# Letters that show as nothing: the Hangul fillers (which compose old Korean syllables, and
# fill "blank" names in games) and the blank braille pattern. Allowed in a name beside other
# characters, but not as all of it: a tag of these alone would show as an empty chip.
BLANK_LETTERS = "\u115f\u1160\u2800\u3164\uffa0"
# The joiners (zero-width non-joiner and joiner) and the Mongolian vowel separator show as
# nothing too: kept inside a name, where they shape an emoji sequence or a Persian, Indic or
# Mongolian word, but a name of them alone is as blank as one of spaces.
JOINERS = "\u180e\u200c\u200d"
SHOWN_AS_NOTHING = BLANK_LETTERS + JOINERS


def visible_text_pattern() -> str:
    """The regex a tag name, and a model's name and type as a client sets them, must match
    (published in the OpenAPI document): no refused character (REFUSED_RANGES), and something
    besides white space and SHOWN_AS_NOTHING. Written in the subset Python, JavaScript and Rust
    read alike."""
    controls = "".join(f"\\u{low:04x}-\\u{high:04x}" for low, high in REFUSED_RANGES)
    blank = "".join(f"\\u{ord(c):04x}" for c in SPACES + SHOWN_AS_NOTHING)
    return f"^[^{controls}]*[^{controls}{blank}][^{controls}]*$"


def normalize_tag_name(raw: str) -> str:
    """A tag name as stored (records.folded_tag_name). Raises InvalidInput for an empty name,
    one over MAX_TAG_NAME characters or one with control or invisible characters."""
    trimmed = raw.strip()
    if all(ch.isspace() or ch in SHOWN_AS_NOTHING for ch in trimmed):
        raise InvalidInput("a tag name cannot be empty, or only characters that show as nothing")
    if len(trimmed) > MAX_TAG_NAME:
        raise InvalidInput(f"a tag name has at most {MAX_TAG_NAME} characters")
    name = folded_tag_name(trimmed)  # may grow ("İ" lowers to two): the limit is on the given
    refused = next((ch for ch in name if is_refused(ch)), None)
    if refused is not None:
        raise InvalidInput(
            f"a tag name cannot hold control or invisible characters (U+{ord(refused):04X})"
        )
    return name


def normalize_tag_names(raw: list[str]) -> list[str]:
    """Each name normalised, in order, without repeats. Raises InvalidInput."""
    return list(dict.fromkeys(normalize_tag_name(r) for r in raw))


async def create_tag(shelf: Shelf, raw_name: str) -> Tag:
    """A new tag. Raises InvalidInput, Conflict (the name is taken; `tag` is that tag)."""
    name = normalize_tag_name(raw_name)
    async with shelf.changes.change() as change:
        await _require_free(change, name)
        tag_id = await tags.insert_tag(change.tx, name)
    return Tag(id=tag_id, name=name)


async def rename_tag(shelf: Shelf, tag_id: int, raw_name: str) -> Tag:
    """Rename a tag for every model carrying it. Raises InvalidInput, NotFound, Conflict (the
    name belongs to another tag)."""
    name = normalize_tag_name(raw_name)
    async with shelf.changes.change() as change:
        tag = await _require_tag(change, tag_id)
        if tag.name == name:
            return tag
        await _require_free(change, name, own_id=tag_id)
        await _save_models_with(change, tag, "tag_renamed", {"tag": tag_id, "name": name})
        await tags.rename_tag(change.tx, tag_id, name)
    log.info("tag %d renamed from %r to %r", tag_id, tag.name, name)
    return Tag(id=tag_id, name=name)


async def merge_tag(shelf: Shelf, tag_id: int, into_id: int) -> tuple[Tag, int]:
    """Every model (and pending model) carrying tag `tag_id` carries tag `into_id` instead,
    once, and tag `tag_id` is deleted, as one change. Returns the surviving tag and how many
    models carried the merged one. Raises InvalidInput (a tag merged into itself), NotFound
    (either tag); nothing changes then."""
    if tag_id == into_id:
        raise InvalidInput(f"tag {tag_id} cannot be merged into itself")
    async with shelf.changes.change() as change:
        tag = await _require_tag(change, tag_id)
        into = await _require_tag(change, into_id)
        count = await _save_models_with(change, tag, "tag_merged", {"tag": tag_id, "into": into_id})
        await tags.merge_tag(change.tx, tag_id, into_id)
    log.info(
        "tag %d (%r) merged into %d (%r) on %d models", tag_id, tag.name, into_id, into.name, count
    )
    return into, count


async def delete_tag(shelf: Shelf, tag_id: int) -> tuple[Tag, int]:
    """Remove a tag from every model (and pending model) and delete it. Returns the tag and
    how many models carried it. Raises NotFound."""
    async with shelf.changes.change() as change:
        tag = await _require_tag(change, tag_id)
        count = await _save_models_with(change, tag, "tag_deleted", {"tag": tag_id})
        await tags.delete_tag(change.tx, tag_id)
    log.info("tag %d (%r) deleted from %d models", tag_id, tag.name, count)
    return tag, count


async def _require_tag(change: Change, tag_id: int) -> Tag:
    tag = await tags.fetch_tag(change.tx, tag_id)
    if tag is None:
        raise NotFound(f"no tag with id {tag_id}")
    return tag


async def _require_free(change: Change, name: str, own_id: int | None = None) -> None:
    """Raises Conflict if a tag other than `own_id` has the name `name`, in any case."""
    taken = await tags.tag_id_by_name(change.tx, name)
    if taken is not None and taken != own_id:
        tag = await _require_tag(change, taken)
        raise Conflict(f"a tag named {tag.name!r} exists already", tag=tag.model_dump())


async def _save_models_with(change: Change, tag: Tag, action: str, details: dict[str, Any]) -> int:
    """Save every model carrying `tag` in history; returns how many."""
    hashes = await models.hashes_with_tag(change.tx, tag.id)
    await history.save_models(change.tx, hashes, action, details)
    return len(hashes)
