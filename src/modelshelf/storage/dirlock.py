"""The data-directory lock: one modelshelf process per data directory, on every platform.

The lock is an OS lock on `<data dir>/.modelshelf.lock`, taken through the `filelock` package
(flock on POSIX, LockFileEx on Windows), so no POSIX-only module is imported here and the
service starts on Windows too. The OS drops the lock when its holder closes it or dies, so a
crashed process never leaves the directory locked; the file itself stays behind, empty.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from modelshelf.errors import ShelfError

LOCK_NAME = ".modelshelf.lock"


class DataDirInUse(ShelfError):
    """Another modelshelf process holds this data directory."""


class DirectoryLock:
    """An exclusive lock on one data directory, taken at once or not at all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # thread_local=False: the lock belongs to the process, whichever thread releases it.
        self._lock = FileLock(directory / LOCK_NAME, thread_local=False)

    def acquire(self) -> None:
        """Take the lock without waiting.

        Raises DataDirInUse if another process, or another DirectoryLock in this one, holds it.
        """
        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            raise DataDirInUse(
                f"{self.directory} is in use by another modelshelf process"
            ) from None

    def release(self) -> None:
        """Let the directory go; does nothing if the lock is not held."""
        self._lock.release(force=True)
