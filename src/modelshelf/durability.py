"""What the library keeps outlives a power cut once its change is done: a file's bytes and its
name reach the disk before the change commits, and a folder's entries before the journal
entry that could replay the moves into it is forgotten.

A crash of the process needs none of this (the journal replays what a change left undone).
A power cut without it can leave a rendition that was renamed into place empty (the file
system had not yet written its blocks), or undo a move that the database (synchronous=FULL)
remembers as done, after its journal entry was forgotten.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows (and tests that stand for it)
    _FULL_FSYNC: int | None = None
else:
    # macOS: fsync leaves the data in the drive's cache; this empties it.
    _FULL_FSYNC = getattr(fcntl, "F_FULLFSYNC", None)

log = logging.getLogger(__name__)

# Folders cannot be opened to be synced on Windows; there, renames are as durable as NTFS
# makes them.
_FOLDERS_SYNC = os.name == "posix"
# A file system that cannot sync a folder (some network and FUSE ones) says so with these;
# SQLite and PostgreSQL go on in that case, and so does this.
_CANNOT_SYNC_FOLDERS = {errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EOPNOTSUPP}
_told: set[str] = set()


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to the file at `path` (created or truncated) and flush it to the disk
    before returning. Raises OSError (a full disk is ENOSPC here, not later)."""
    with open(path, "wb") as handle:
        handle.write(data)
        _flush(handle)


def copy_synced(source: Path, target: Path) -> None:
    """Copy the file at `source` to `target` (created or truncated) and flush the copy to
    the disk before returning. Raises OSError."""
    with open(source, "rb") as reading, open(target, "wb") as writing:
        shutil.copyfileobj(reading, writing, 1024 * 1024)
        _flush(writing)


def _flush(handle: IO[bytes]) -> None:
    handle.flush()
    if _FULL_FSYNC is not None:
        try:
            fcntl.fcntl(handle.fileno(), _FULL_FSYNC)
            return
        except OSError:
            pass  # not supported by this file system: fsync is what it has
    os.fsync(handle.fileno())


def sync_folders(folders: Iterable[Path]) -> None:
    """Flush each folder's entries (files renamed into or out of it) to the disk; a folder
    that is gone is skipped, and so is a file system that cannot sync a folder (logged once).
    Raises OSError."""
    if not _FOLDERS_SYNC:
        return
    for folder in folders:
        try:
            descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(descriptor)
        except OSError as exc:
            if exc.errno not in _CANNOT_SYNC_FOLDERS:
                raise
            if str(folder) not in _told:
                _told.add(str(folder))
                log.warning("%s: its file system cannot sync a folder (%s)", folder, exc.strerror)
        finally:
            os.close(descriptor)
