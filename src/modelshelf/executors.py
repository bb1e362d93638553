"""Thread pools for blocking work, kept apart by the kind of work."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from modelshelf.errors import StorageFull

T = TypeVar("T")

# Short file work mostly waits on the disk, not on a core.
FILE_WORKERS = 4


@dataclass(frozen=True)
class Executors:
    """`cpu` runs hashing and rendering (one thread per core by default); `files` runs short
    blocking work: stat, rename, unlink, directory scans, serialising large answers.

    Kept apart because, sharing one pool, a stat or a file move queued behind every pending
    rendering (seconds under load) while an import held the database writer.
    """

    cpu: ThreadPoolExecutor
    files: ThreadPoolExecutor

    @classmethod
    def start(cls, cpu_workers: int) -> Executors:
        return cls(
            cpu=ThreadPoolExecutor(cpu_workers, thread_name_prefix="modelshelf-cpu"),
            files=ThreadPoolExecutor(FILE_WORKERS, thread_name_prefix="modelshelf-files"),
        )

    def shutdown(self) -> None:
        self.cpu.shutdown(wait=True)
        self.files.shutdown(wait=True)


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


async def run_blocking(executor: Executor, func: Callable[..., T], *args: Any) -> T:
    """Run `func(*args)` in `executor`; a full disk becomes StorageFull (nothing was changed:
    blocking work here prepares a change, it never is one)."""
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, func, *args)
    except OSError as exc:
        if is_disk_full(exc):
            raise StorageFull(
                f"no space left in the data directory ({exc.strerror}); nothing was changed"
            ) from exc
        raise
