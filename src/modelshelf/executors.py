"""Thread pools for blocking work, kept apart by the kind of work, and the one way to await
work in them."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
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
        """Drop work not started yet and wait for the threads to finish what they run."""
        self.cpu.shutdown(wait=True, cancel_futures=True)
        self.files.shutdown(wait=True, cancel_futures=True)


async def run_to_end(executor: Executor, func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` in `executor`. A caller cancelled while it is queued drops it; one
    cancelled while it runs waits for it to return before the cancellation goes on: a thread
    cannot be stopped, and work writing into staging must not outlive the change that removes
    that staging."""
    future = executor.submit(func, *args)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        if not future.cancel():  # running, or done already
            await _finished(future)
        raise


async def _finished(future: Future[Any]) -> None:
    waiter = asyncio.wrap_future(future)
    while not waiter.done():
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            continue
        except BaseException:  # the caller is cancelled: what the work raised no longer matters
            return


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


async def run_blocking(executor: Executor, func: Callable[..., T], *args: Any) -> T:
    """`run_to_end`, with a full disk turned into StorageFull (nothing was changed: blocking
    work here prepares a change, it never is one)."""
    try:
        return await run_to_end(executor, func, *args)
    except OSError as exc:
        if is_disk_full(exc):
            raise StorageFull(
                f"no space left in the data directory ({exc.strerror}); nothing was changed"
            ) from exc
        raise
