"""What the library keeps outlives a power cut once its change is done: a file's bytes reach
the disk before the file is renamed into place, and a folder's entries once files moved in.

A crash of the process needs none of this (the journal replays what a change left undone).
A power cut without it can leave a rendition that was renamed into place empty (the file
system had not yet written its blocks), or undo a move that the database (synchronous=FULL)
remembers as done, after its journal entry was forgotten.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

# Folders cannot be opened to be synced on Windows; there, renames are as durable as NTFS
# makes them.
_FOLDERS_SYNC = os.name == "posix"


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to the file at `path` (created or truncated) and flush it to the disk
    before returning. Raises OSError (a full disk is ENOSPC here, not later)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def sync_file(path: Path) -> None:
    """Flush the file at `path` to the disk. Raises OSError."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_folders(folders: Iterable[Path]) -> None:
    """Flush each folder's entries (files renamed into or out of it) to the disk; a folder
    that is gone is skipped. Raises OSError."""
    if not _FOLDERS_SYNC:
        return
    for folder in folders:
        try:
            descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
