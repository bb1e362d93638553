"""Reading the library: models, pending models, tags, types and base models, and which file
answers an image name. Readers never wait for a transaction; they wait for a model's change
only where files are involved (see Shelf.settled)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from modelshelf.domain.shelf import Shelf
from modelshelf.errors import InvalidInput, NotFound, Unprocessable
from modelshelf.hashing import FileIdentity, readable_identities
from modelshelf.imagefolder import parse_image_name, sniff_media_type
from modelshelf.records import PendingRecord, QueuedPending, image_name, is_sha256
from modelshelf.rendition_cache import CachedFile
from modelshelf.renditions import qualities
from modelshelf.storage import hash_cache, image_index, models, pending, tags
from modelshelf.storage.hash_cache import CachedDigest
from modelshelf.storage.listing import Page, base_model_counts, read_sized_page
from modelshelf.storage.model_filter import ModelFilter

QUEUED = TypeAdapter(list[QueuedPending])


def require_sha256(value: str) -> str:
    """Raises InvalidInput unless `value` is 64 lowercase hex characters."""
    if not is_sha256(value):
        raise InvalidInput(f"{value[:100]!r} is not a SHA256 (64 lowercase hex characters)")
    return value


async def list_models(
    shelf: Shelf,
    where: ModelFilter,
    limit: int,
    offset: int,
    meta_keys: frozenset[str] | None = None,
) -> Page:
    """One page of models matching `where`, how many match in all, and the length of its
    JSON (listing.Page); each meta_json cut to `meta_keys` unless None."""
    counts = shelf.storage.counts(where.tracked_by_index())
    async with shelf.storage.read() as conn:
        return await read_sized_page(conn, where, limit, offset, counts, meta_keys)


async def list_pending(shelf: Shelf) -> tuple[list[PendingRecord], int]:
    """Every pending model, oldest id first, with tags and image name; and the length of the
    JSON they were read from (pending.list_sized_pending)."""
    async with shelf.storage.read() as conn:
        return await pending.list_sized_pending(conn)


@dataclass(frozen=True)
class PendingQueue:
    """The queue's generation (pending.queue_generation) and, unless the caller held the
    queue as it is, its records as `list_pending` reads them (else None, and 0 chars)."""

    generation: int
    records: list[PendingRecord] | None
    chars: int


async def list_pending_unless(shelf: Shelf, held: Callable[[int], bool]) -> PendingQueue:
    """`list_pending`, unless `held(generation)` says the caller holds the queue as it is now:
    then it is not read. The generation is read first, so the records are at least as new as
    it says (a change between the two is seen again at the next ask)."""
    async with shelf.storage.read() as conn:
        generation = await pending.queue_generation(conn)
        if held(generation):
            return PendingQueue(generation, None, 0)
        records, chars = await pending.list_sized_pending(conn)
    return PendingQueue(generation, records, chars)


async def check_pending(shelf: Shelf) -> tuple[list[QueuedPending], int]:
    """`list_pending`, each record with what an import of it would meet, found without reading
    any model file: whether its file is missing or unreadable (a stat each), and whether a
    model has the file's SHA256. That SHA256 is the digest the hash cache holds for the file
    as it is now (a scan, an import or a preview left it there), else, when the cache holds
    nothing for that path, the one the record carries (a legacy row whose hash was taken);
    otherwise whether it conflicts is not known (null) until its file is hashed. One read,
    then one trip to the reads pool, where the files are stat'ed and the records built. With
    the length of the JSON the records were read from."""
    async with shelf.storage.read() as conn:
        # The records' fields, validated once with what the checks add (in _checked): a
        # PendingRecord each, then a QueuedPending built from it, cost 5,000 pending models
        # twice the building (bench/pending_checks.py).
        fields, chars = await pending.list_pending_fields(conn)
        # On the loop: in a thread they cost others' answers more (BENCHMARKS.md, "What
        # reading that queue costs the others' answers").
        paths = [_model_path(shelf, f["path"]) for f in fields]
        cached = await hash_cache.cached_digests(conn, [str(p) for p in paths if p is not None])
        candidates = {e.sha256 for e in cached.values()} | {f["sha256"] for f in fields}
        candidates.discard(None)
        in_library = set(await models.existing_paths(conn, sorted(candidates)))
    # A read: in the pool bulk work never fills (imports keep the files pool busy).
    return await shelf.run_reads(_checked, fields, paths, cached, in_library), chars


def _checked(
    fields: list[dict[str, Any]],
    paths: list[Path | None],
    cached: dict[str, CachedDigest],
    in_library: set[str],
) -> list[QueuedPending]:
    for record, file in zip(fields, readable_identities(paths), strict=True):
        digest = _known_digest(record["sha256"], file, cached)
        record["missing"] = file is None
        record["conflict"] = None if file is None or digest is None else digest in in_library
    return QUEUED.validate_python(fields)


def _model_path(shelf: Shelf, stored: str | None) -> Path | None:
    if not stored:
        return None
    try:
        return shelf.model_path(stored)
    except Unprocessable:
        return None


def _known_digest(
    carried: str | None,
    file: FileIdentity | None,
    cached: dict[str, CachedDigest],
) -> str | None:
    """The file's content as the hash cache knows it, else as the record carries it."""
    if file is None:
        return None
    entry = cached.get(file.path)
    if entry is None:
        return carried
    # An entry for another state of the file says its content changed since: not known.
    return entry.digest_for(file.size, file.mtime_ns, file.inode)


async def list_tags(shelf: Shelf) -> list[dict[str, Any]]:
    async with shelf.storage.read() as conn:
        rows = await tags.list_tags(conn)
    return [{"id": r["id"], "name": r["name"], "models": r["models"]} for r in rows]


async def list_types(shelf: Shelf) -> list[str]:
    async with shelf.storage.read() as conn:
        return await models.list_types(conn)


async def list_base_models(shelf: Shelf) -> list[tuple[str, int]]:
    """The base models in use, each with how many models the `base_model` filter lists for
    it, most used first, then by name (storage.listing.base_model_counts)."""
    async with shelf.storage.read() as conn:
        return await base_model_counts(conn)


async def image_names(shelf: Shelf, sha256: str) -> list[str]:
    """Names of a model's images ordered by seq, consistent with the files on disk."""
    await shelf.settled(sha256)
    async with shelf.storage.read() as conn:
        return [image_name(sha256, s) for s in await image_index.image_seqs(conn, sha256)]


async def rendition_file(
    shelf: Shelf, name: str, quality: str, *, whole: bool = True
) -> CachedFile | Path:
    """What answers a public image name: for the `whole` file, its bytes and validators from
    memory when it fits the rendition cache, else the file's path (a range is served from
    the file). A cached rendition is answered without waiting for anything, unless a change
    to its model is under way. Raises InvalidInput, NotFound."""
    if quality not in qualities():
        raise InvalidInput(f"quality must be one of {', '.join(qualities())}, not {quality!r}")
    sha256, seq = parse_image_name(name)
    cache = shelf.rendition_cache
    if whole and not shelf.model_locks.is_locked(sha256):
        cached = cache.get((sha256, seq, quality))
        if cached is not None:
            return cached
    await shelf.settled(sha256)
    path = shelf.folder.rendition_path(sha256, seq, quality)
    if not (whole and cache.enabled):
        return await shelf.run_reads(shelf.folder.regular_file, path, name)
    generation = cache.generation
    found = await shelf.run_reads(shelf.folder.read_small_file, path, name, cache.file_limit)
    if isinstance(found, CachedFile):
        cache.put((sha256, seq, quality), found, generation)
    return found


@dataclass(frozen=True)
class ImageFile:
    path: Path
    media_type: str


async def pending_file(shelf: Shelf, pending_id: int) -> ImageFile:
    """The original image of a pending model, with the media type its content says. Raises
    NotFound."""
    async with shelf.storage.read() as conn:
        ext = await pending.pending_image_ext(conn, pending_id)
        # A page still showing a model another client imported or discarded asks too: say
        # the model is gone, as every other endpoint of a pending id does.
        if ext is None and await pending.fetch_pending_row(conn, pending_id) is None:
            raise NotFound(f"no pending model with id {pending_id}")
    if ext is None:
        raise NotFound(f"pending model {pending_id} has no image")
    path = shelf.folder.pending_path(pending_id, ext)
    name = f"pending/{pending_id}"
    await shelf.run_reads(shelf.folder.regular_file, path, name)
    try:
        media_type = await shelf.run_reads(sniff_media_type, path)
    except OSError:
        raise NotFound(f"no image {name}") from None
    return ImageFile(path, media_type)
