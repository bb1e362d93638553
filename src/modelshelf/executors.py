"""Thread pools for blocking work, kept apart by the kind of work, the scheduling priority of
bulk work, and the one way to await work in them."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from modelshelf.errors import NOTHING_CHANGED, StorageFull

T = TypeVar("T")
P = ParamSpec("P")

log = logging.getLogger(__name__)

# Short file work mostly waits on the disk, not on a core.
FILE_WORKERS = 4
# Blocking steps of answers to people browsing: a stat, serialising a page of records.
READ_WORKERS = 2
# The lowest priority a thread can have (nice 19).
NICEST = 19


class CpuPool(ThreadPoolExecutor):
    """A thread pool that knows whether one of its workers is idle: fewer tasks are queued
    or running than it has workers. A rendering hands its smaller renditions to the pool
    only then (images.py): handed to a pool with work queued, they would run after it."""

    def __init__(self, workers: int, **options: Any) -> None:
        super().__init__(workers, **options)
        self.workers = workers
        self._in_flight = 0
        self._counting = threading.Lock()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._counting:
            self._in_flight += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._finished()
            raise
        future.add_done_callback(self._finished)
        return future

    def has_idle_worker(self) -> bool:
        """Whether a task submitted now would start at once (a moment later, another may
        have taken the worker)."""
        return self._in_flight < self.workers

    def _finished(self, _future: Future[Any] | None = None) -> None:
        with self._counting:
            self._in_flight -= 1


@dataclass(frozen=True)
class Executors:
    """`cpu` runs hashing and rendering (one thread per core by default); `files` runs short
    blocking file work (stat, rename, unlink, directory scans); `reads` runs the blocking
    steps of reads (the stat of an image to serve, serialising a large answer).

    Kept apart because, sharing one pool, a stat or a file move queued behind every pending
    rendering (seconds under load) while an import held the database writer; and a read
    queued behind the file work of 32 imports (fsyncs, copies) took tens of milliseconds.
    """

    cpu: CpuPool
    files: ThreadPoolExecutor
    reads: ThreadPoolExecutor

    @classmethod
    def start(cls, cpu_workers: int, bulk_nice: int = 0, bulk_idle: bool = False) -> Executors:
        """The three pools; the `cpu` threads run under SCHED_IDLE if `bulk_idle` (and the
        platform allows it), otherwise `bulk_nice` steps below the process's priority (see
        lower_priority)."""
        return cls(
            cpu=CpuPool(
                cpu_workers,
                thread_name_prefix="modelshelf-cpu",
                initializer=lower_priority,
                initargs=(bulk_nice, bulk_idle),
            ),
            files=ThreadPoolExecutor(FILE_WORKERS, thread_name_prefix="modelshelf-files"),
            reads=ThreadPoolExecutor(READ_WORKERS, thread_name_prefix="modelshelf-reads"),
        )

    def shutdown(self) -> None:
        """Drop work not started yet and wait for the threads to finish what they run."""
        for pool in (self.cpu, self.files, self.reads):
            pool.shutdown(wait=True, cancel_futures=True)


def lower_priority(steps: int, idle: bool = False) -> None:
    """Lower the calling thread's scheduling priority, so that bulk work (hashing, rendering)
    gives way to the event loop and the threads serving reads whenever they are runnable, and
    takes every core when nothing else wants it: with `idle`, put it under SCHED_IDLE (it runs
    only on a core no other thread wants); if that is refused or `idle` is false, lower it by
    `steps` nice steps (at most to 19). Threads the caller starts later (libvips's workers)
    inherit both.

    Linux only, where a policy and a priority belong to a thread; elsewhere they would lower
    the whole process, so nothing is done. Never raises: what cannot be set is logged."""
    if sys.platform != "linux" or (idle and _schedule_idle()) or steps <= 0:
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(NICEST, current + steps))
    except OSError as exc:
        log.warning("could not lower the priority of a worker thread: %s", exc)


def _schedule_idle() -> bool:
    """Put the calling thread under SCHED_IDLE (pid 0 is the calling thread on Linux); false
    if the system refuses (a seccomp filter, a kernel without it)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError) as exc:
        log.warning("could not put a worker thread under SCHED_IDLE, lowering its nice: %s", exc)
        return False
    return True


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


def refuses_writes(exc: OSError) -> bool:
    """A folder that cannot be written: a read-only file system, or no permission."""
    return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)


async def run_blocking(executor: Executor, func: Callable[..., T], *args: Any) -> T:
    """`run_to_end`, with a full disk turned into StorageFull (nothing was changed: blocking
    work here prepares a change, it never is one)."""
    try:
        return await run_to_end(executor, func, *args)
    except OSError as exc:
        if is_disk_full(exc):
            raise StorageFull(
                f"no space left in the data directory ({exc.strerror}); {NOTHING_CHANGED}"
            ) from exc
        raise
