"""What a scan's walk found, told without reading any file: whether a file is a location as
it was registered (and whether its model's facts are to be read again), its content when a
location or the hash cache knows it, and the file as the scan's queue keeps it; and the walk
taken a batch at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from modelshelf.domain.locations import COPIES_READ
from modelshelf.folders.walk import FoundFile
from modelshelf.storage.hash_cache import CachedDigest
from modelshelf.storage.model_files import KnownLocation, Signatures
from modelshelf.storage.scan_queue import Queued


def unchanged(known: KnownLocation | None, found: FoundFile) -> bool:
    """Whether `found` is the file registered at its location (same size, mtime, inode and
    device): its content is known."""
    return known is not None and known.location.same_file(
        found.size, found.mtime_ns, found.inode, found.device
    )


def facts_changed(known: KnownLocation, companions: Signatures) -> bool:
    """Whether the facts of the model at an unchanged, present location are to be read
    again: never read (or its model file could not be), or read without the `companions`
    beside it now (for a copy: also one not read then that would be read now)."""
    if known.facts_source is None:
        return True
    if known.facts_source == known.location.path:
        return known.companions_changed(companions)
    return known.copy_changed(companions, COPIES_READ - 1)


def known_digest(
    path: str,
    found: FoundFile,
    known: KnownLocation | None,
    by_inode: dict[tuple[int, int, int, int], str],
    cached: dict[str, CachedDigest],
) -> str | None:
    """The content of `found` if it can be told without reading the file."""
    if known is not None and unchanged(known, found):
        return known.location.sha256  # its model was deleted; the file is as it was
    moved = by_inode.get((found.device, found.inode, found.size, found.mtime_ns))
    if moved is not None:
        return moved
    entry = cached.get(path)
    return None if entry is None else entry.digest_for(found.size, found.mtime_ns, found.inode)


def queued(found: FoundFile, sha256: str | None, known: KnownLocation | None) -> Queued:
    """`found` as the queue keeps it, with its content if known and whether its path is a
    location (`known`)."""
    return Queued(
        str(found.path),
        found.type,
        found.size,
        found.mtime_ns,
        found.inode,
        found.device,
        found.companions,
        sha256,
        known is not None,
    )


def take(files: Iterator[FoundFile], count: int) -> list[FoundFile]:
    """The next `count` files of a walk (blocking: run it in the file pool)."""
    return list(islice(files, count))


# Why a file the scan saw written lately was left for later: it changed while the scan waited.
BEING_WRITTEN = (
    "still being written (it changed while the scan waited {seconds:g} s for it to hold"
    " still): the watch or the next scan adds it once it has"
)


def written_lately(found: FoundFile, settle_s: float, now_ns: int) -> bool:
    """Whether `found` was last written less than `settle_s` ago (or, by a clock that is
    ahead, in the future): a download or a copy may still be under way."""
    return settle_s > 0 and found.mtime_ns > now_ns - int(settle_s * 1e9)


def stat_again(paths: Sequence[Path]) -> list[tuple[int, int, int] | None]:
    """(size, mtime_ns, inode) of each path now, None where it cannot be stat'ed (blocking:
    run it in the file pool)."""
    found: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            found.append(None)
            continue
        found.append((st.st_size, st.st_mtime_ns, st.st_ino))
    return found
