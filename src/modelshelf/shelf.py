"""The resources the domain functions work with, gathered in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from modelshelf.config import Settings
from modelshelf.executors import Executors
from modelshelf.hashing import Hasher
from modelshelf.imagestore import ImageStore
from modelshelf.locks import KeyedLocks
from modelshelf.storage import Storage

T = TypeVar("T")


@dataclass
class Shelf:
    """A data directory opened for work: database, images, hashing and locks."""

    settings: Settings
    storage: Storage
    executors: Executors
    images: ImageStore
    hasher: Hasher
    pending_locks: KeyedLocks
    model_locks: KeyedLocks
    migration_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def model_path(self, stored: str) -> Path:
        """Where a model's stored path points on this machine (relative to `models_root`)."""
        path = Path(stored).expanduser()
        if not path.is_absolute() and self.settings.models_root is not None:
            path = self.settings.models_root / path
        return path

    async def finish(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` to completion even if the caller is cancelled (a client hanging up must
        not stop an import between its commit and its file moves). Shutdown waits for it."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        """Wait for work started with `finish` (called on shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
