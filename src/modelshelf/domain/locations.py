"""Where models are on disk, kept in the library: a file registered at its path as a location
of the model of its content (the model created if there is none), locations whose file is
gone marked missing, a model's `path` moved off a location that is gone, and the facts of a
model's files read again when they change. Each is one change through the unit of work."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from modelshelf.domain.file_facts import StagedFacts, apply_facts, stage_facts
from modelshelf.domain.shelf import Shelf
from modelshelf.folders.changed import companions_of
from modelshelf.folders.facts import Copy, KnownHeader
from modelshelf.folders.names import model_stem
from modelshelf.folders.problems import printable
from modelshelf.folders.walk import FoundFile
from modelshelf.storage import file_facts, image_index, model_files, models
from modelshelf.storage.change import Staging
from modelshelf.storage.file_facts import FactsRecord
from modelshelf.storage.model_files import Location, Signatures
from modelshelf.storage.rows import now_ms

# The locations of one content whose sidecars are read: real libraries hold a model in two or
# three places (a ComfyUI and an A1111 folder); a thousand hard links to it are read no more.
COPIES_READ = 8


@dataclass(frozen=True, slots=True)
class Hashed:
    """A file a walk found, with (size, mtime_ns, inode) as they were when its content was
    hashed or recognised."""

    found: FoundFile
    stat_now: tuple[int, int, int]

    def location(self, sha256: str) -> Location:
        size, mtime_ns, inode = self.stat_now
        found = self.found
        return Location(str(found.path), sha256, found.type, size, mtime_ns, inode, found.device)


@dataclass(frozen=True)
class Registered:
    """What registering files did: `created` a model (with the file facts `staged` for it,
    applied unless `staged.applied` is None), and for each path that held another content
    before, that content."""

    created: bool
    staged: StagedFacts | None
    previous: dict[str, str]


async def register(
    shelf: Shelf,
    files: Sequence[Hashed],
    sha256: str,
    seen_at: int,
    committed: Callable[[Registered], None],
) -> None:
    """Make each of `files`, copies of content `sha256` in walk order, a present location of
    it as it is now, in one change. Content no model has becomes a model made from the
    first: its path that location, its name the file's stem, its type the root's; meta_json,
    tags and example images from what the files beside all of them say, read once, as
    `refresh_facts` reads a model's copies. `committed` hears what was done once the change
    commits, also when the caller is cancelled during the commit (then this raises
    CancelledError after it: the change stands all the same)."""
    async with shelf.storage.read(bulk=True) as conn:
        exists = await models.model_exists(conn, sha256)
        before = [await model_files.location(conn, str(f.found.path)) for f in files]
    previous = {b.path: b.sha256 for b in before if b is not None and b.sha256 != sha256}
    change, created, staged = None, False, None
    try:
        async with shelf.changes.staging() as staging:
            staged = None if exists else await _stage_new(shelf, staging, files)
            lock = [sha256, *previous.values()]
            async with shelf.changes.change(lock=lock, staging=staging) as change:
                created = not await models.model_exists(change.tx, sha256)
                for file in files:
                    await model_files.save_location(change.tx, file.location(sha256), seen_at)
                if created:
                    await _insert_model(change.tx, sha256, files[0])
                    if staged is not None:
                        await apply_facts(shelf, change, sha256, staged, None)
    finally:
        if change is not None and change.committed:
            committed(Registered(created, staged, previous))


async def _insert_model(tx: aiosqlite.Connection, sha256: str, made_from: Hashed) -> None:
    found = made_from.found
    await file_facts.forget_facts(tx, sha256)
    fields = {
        "path": str(found.path),
        "name": model_stem(found.path.name),
        "type": found.type,
        "size_bytes": made_from.stat_now[0],
        "created_at": now_ms(),
        "meta_json": {},
    }
    await models.insert_model(tx, sha256, fields)


async def _stage_new(shelf: Shelf, staging: Staging, files: Sequence[Hashed]) -> StagedFacts:
    """The facts of a model made from `files[0]`, with the others as its copies: by path, at
    most COPIES_READ in all, as `refresh_facts` will find them."""
    first = files[0].found
    others = sorted((f.found for f in files[1:]), key=lambda found: str(found.path))
    copies = [Copy(found.path, found.companions) for found in others[: COPIES_READ - 1]]
    return await stage_facts(
        shelf, staging, first.path, first.companions, set(), want_thumbnail=True, copies=copies
    )


def gone_paths(paths: list[str]) -> list[str]:
    """The paths among `paths` where no regular file is any more, or only an empty one (no
    model: a download that failed and truncated it) (blocking: run it in the file pool). A
    path that cannot be stat'ed for another reason (permission, I/O error) may still hold
    its file and is not counted as gone."""
    gone = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                gone.append(path)
            continue
        if not stat.S_ISREG(st.st_mode) or not st.st_size:
            gone.append(path)
    return gone


async def mark_gone(shelf: Shelf, candidates: list[tuple[str, str]], before: int) -> list[str]:
    """Mark missing the candidate locations (path, sha256) whose file is gone and that no scan
    saw since `before`; returns the hashes of the models that lost a location."""
    gone = await shelf.run_files(gone_paths, [path for path, _ in candidates])
    if not gone:
        return []
    async with shelf.changes.change() as change:
        return await model_files.mark_missing(change.tx, gone, before)


async def repoint_paths(shelf: Shelf, hashes: list[str]) -> int:
    """Move the `path` of these models to their first present location when it names a
    location that is gone or holds other content, or a file no scan knows that is gone (a
    legacy library's path, say: `D:/old/...`), or nothing; returns how many moved. A model
    moved off a location of a root's type to one of another root's type takes that type,
    unless a person changed it (it is not the old location's type any more)."""
    if not hashes:
        return 0
    async with shelf.storage.read(bulk=True) as conn:
        unlisted = await model_files.unlisted_paths(conn, hashes)
    gone = set(await shelf.run_files(gone_paths, [p for p, _ in unlisted.values() if p]))
    async with shelf.changes.change() as change:
        moved = await model_files.stranded_paths(change.tx, hashes)
        moved |= {
            h: (better, None)
            for h, (path, better) in unlisted.items()
            if path is None or path in gone
        }
        for sha256, (location, kind) in moved.items():
            await models.set_model_path(change.tx, sha256, location, kind)
    return len(moved)


async def refresh_facts(
    shelf: Shelf, sha256: str, companions: dict[str, Signatures]
) -> StagedFacts | None:
    """Read a model's file facts again if its locations, or the sidecars beside them, changed
    since they were last read, and apply them. `companions`: the companions found by this
    scan, by path. Returns what was read (None if nothing needed reading, or the model or
    its file is gone)."""
    async with shelf.storage.read(bulk=True) as conn:
        present = await model_files.facts_locations(conn, sha256, COPIES_READ)
        record = await file_facts.fetch_facts(conn, sha256)
        known_images = await file_facts.images_added(conn, sha256)
        has_images = bool(await image_index.image_seqs(conn, sha256))
    if not present:
        return None
    found = await _companions_now(shelf, present, companions)
    source, others = present[0], present[1:]
    if record is not None and _read_as_they_are(record, source, others, found):
        return None
    copies = [Copy(Path(path), found[path]) for path in others]
    header = _known_header(record)
    async with shelf.changes.staging() as staging:
        staged = await stage_facts(
            shelf, staging, Path(source), found[source], known_images, not has_images, header,
            copies,
        )  # fmt: skip
        if staged.model_unreadable:
            return staged  # keep what was read before; its problems say why
        async with shelf.changes.change(lock=[sha256], staging=staging) as change:
            if not await models.model_exists(change.tx, sha256):
                return None
            record = await file_facts.fetch_facts(change.tx, sha256)
            await apply_facts(shelf, change, sha256, staged, record)
    return staged


def _read_as_they_are(
    record: FactsRecord, source: str, others: list[str], found: dict[str, Signatures]
) -> bool:
    """Whether the facts were last read from `source` and `others` with the companions
    found beside them now."""
    return (
        record.source_path == source
        and found[source] == record.sources
        and {path: found[path] for path in others} == record.copies
    )


def _known_header(record: FactsRecord | None) -> KnownHeader | None:
    """The header read before, with its problems, if the model file was read: same content,
    same header."""
    if record is None or record.source_path is None:
        return None
    read_from = printable(record.source_path)
    return KnownHeader(
        record.written.get("file_metadata"),
        [reason for path, reason in record.problems if path == read_from],
    )


async def _companions_now(
    shelf: Shelf, paths: list[str], walked: dict[str, Signatures]
) -> dict[str, Signatures]:
    """The companions of each of `paths`: as this scan found them, else stat'ed now (no
    content is read)."""
    found = {path: walked[path] for path in paths if path in walked}
    unwalked = [path for path in paths if path not in found]
    if unwalked:
        stated = await shelf.run_files(_companions_of_each, unwalked)
        found.update(zip(unwalked, stated, strict=True))
    return found


def _companions_of_each(paths: list[str]) -> list[Signatures]:
    return [companions_of(Path(path)) for path in paths]
