"""The resources the domain functions work with, gathered in one place: a data directory
opened for work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from modelshelf.config import Settings
from modelshelf.errors import Unprocessable
from modelshelf.executors import Executors, run_blocking
from modelshelf.hashing import Hasher
from modelshelf.imagefolder import ImageFolder
from modelshelf.jobs import CANCEL_GRACE_S, Jobs
from modelshelf.locks import KeyedLocks
from modelshelf.rendition_cache import RenditionCache
from modelshelf.storage import Storage
from modelshelf.storage.change import Changes

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass
class Shelf:
    """Database (reads through `storage`, every change through `changes`), images folder,
    hashing, thread pools, the in-memory locks, the jobs and the rendition cache."""

    settings: Settings
    storage: Storage
    changes: Changes
    executors: Executors
    folder: ImageFolder
    hasher: Hasher
    pending_locks: KeyedLocks
    model_locks: KeyedLocks
    jobs: Jobs
    # Renditions served lately; the unit of work (`changes`) keeps it in step.
    rendition_cache: RenditionCache
    migration_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Rendering the renditions images lack, started after recovery (see recovery).
    maintenance: asyncio.Task[int] | None = None
    # Loop time by which work must end once shutdown began (None: not stopping).
    stop_deadline: float | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def model_path(self, stored: str) -> Path:
        """Where a model's stored path points on this machine (relative to `models_root`).
        Raises Unprocessable for a path that names no file (`~nosuchuser/...`)."""
        try:
            path = Path(stored).expanduser()
        except RuntimeError as exc:  # an unknown user's home
            raise Unprocessable(f"model path {stored[:200]!r} cannot be resolved: {exc}") from exc
        if not path.is_absolute() and self.settings.models_root is not None:
            path = self.settings.models_root / path
        return path

    async def run_files(self, func: Callable[..., T], *args: Any) -> T:
        """Short blocking file work (stat, copy, rename); a full disk becomes StorageFull."""
        return await run_blocking(self.executors.files, func, *args)

    async def run_reads(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking step of a read (a stat, serialising an answer), in a pool that bulk work
        never fills."""
        return await run_blocking(self.executors.reads, func, *args)

    async def run_cpu(self, func: Callable[..., T], *args: Any) -> T:
        """Decoding, rendering, planning; a full disk becomes StorageFull."""
        return await run_blocking(self.executors.cpu, func, *args)

    async def settled(self, sha256: str) -> None:
        """Return once no change to this model is under way. A change commits its rows and then
        moves files; waiting for it means a reader never names a file not in place yet."""
        await self.model_locks.wait_idle(sha256)

    async def finish(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to completion even if the caller is cancelled (a client hanging up must
        not stop an import half way). Shutdown gives it until `stop_deadline`, then cancels
        it (safe: every change is atomic)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    def begin_stopping(self) -> None:
        """Shutdown begins (SIGTERM): work gets `shutdown_timeout` seconds from now; jobs
        that no request waits for stop at once."""
        loop = asyncio.get_running_loop()
        self.stop_deadline = loop.time() + self.settings.shutdown_timeout
        self.jobs.stop_detached()

    async def drain(self) -> None:
        """Wait for work started with `finish` and for jobs until `stop_deadline`; cancel
        what still runs then, and wait at most CANCEL_GRACE_S for it to reach a safe point."""
        loop = asyncio.get_running_loop()
        deadline = self.stop_deadline
        if deadline is None:
            deadline = loop.time() + self.settings.shutdown_timeout
        await asyncio.gather(self.jobs.stop(deadline), self._stop_finishing(deadline))

    async def _stop_finishing(self, deadline: float) -> None:
        if not self._tasks:
            return
        loop = asyncio.get_running_loop()
        _done, running = await asyncio.wait(self._tasks, timeout=max(deadline - loop.time(), 0))
        for task in running:
            task.cancel()
        if running:
            _done, stuck = await asyncio.wait(running, timeout=CANCEL_GRACE_S)
            if stuck:
                log.error("%d request(s) did not stop in time", len(stuck))
