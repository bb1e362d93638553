"""The hashing of one file a scan found: its bytes reported as they are read, and the
file counted (see `scan_run.ScanRun`)."""

from __future__ import annotations

from modelshelf.domain.scan_report import ScanCounts, ScanProgress
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import Unprocessable
from modelshelf.folders.walk import FoundFile

Content = tuple[str, tuple[int, int, int]]  # sha256, (size, mtime_ns, inode) as hashed


async def hash_counted(
    shelf: Shelf, progress: ScanProgress, counts: ScanCounts, found: FoundFile
) -> Content:
    """The content of `found` and its (size, mtime_ns, inode) as hashed, its bytes reported
    to `progress` as they are read and the file counted hashed, or recognised if someone else
    hashed it meanwhile. Raises Unprocessable (its bytes are then reported all the same, so
    the totals still meet)."""
    reported = 0
    listening = True

    def hashed(count: int) -> None:
        nonlocal reported
        if listening:  # hashing goes on for the cache after a cancelled scan
            reported += count
            progress.hashed(count)

    def finished() -> None:
        nonlocal listening
        listening = False
        if found.size > reported:  # failed, or known after all: the totals still meet
            progress.hashed(found.size - reported)

    try:
        sha256, identity = await shelf.hasher.digest(found.path, hashed)
    except Unprocessable:
        finished()
        raise
    finally:
        # Cancelled or stopped: no more of it is read, its bytes stay as far as they got.
        listening = False
    finished()
    if reported or not identity.size:
        counts.hashed += 1
        counts.bytes_hashed += reported
    else:
        counts.recognised += 1  # hashed meanwhile by someone else
    return sha256, (identity.size, identity.mtime_ns, identity.inode)
