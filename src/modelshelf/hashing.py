"""SHA256 of model files: streamed, off the event loop, cached, and shared between callers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelshelf.crashpoints import crashpoint
from modelshelf.errors import ServiceStopping, Unprocessable
from modelshelf.executors import Executors
from modelshelf.storage import Storage, hash_cache
from modelshelf.storage.change import Changes

log = logging.getLogger(__name__)

# Large reads keep the per-call overhead negligible; hashlib releases the GIL for each update.
READ_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileIdentity:
    """What must stay the same for a cached digest to still describe the file."""

    path: str
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        """Stat `path` (following symlinks). Raises Unprocessable if it is missing, not a file,
        or not a path at all (a NUL character)."""
        try:
            st = path.stat()
        except OSError as exc:
            raise Unprocessable(f"model file {path} cannot be read: {exc.strerror}") from exc
        except ValueError as exc:
            raise Unprocessable(
                f"model path {str(path)[:200]!r} is not a usable path: {exc}"
            ) from exc
        if not stat.S_ISREG(st.st_mode):
            raise Unprocessable(f"model file {path} is not a regular file")
        return cls(str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def readable_identities(paths: Sequence[Path | None]) -> list[FileIdentity | None]:
    """The identity of each file an import could hash (a regular file this process may read),
    None for the others and for no path. Blocking: run it in an executor (the pending queue
    runs it in the reads pool)."""
    found: list[FileIdentity | None] = []
    for path in paths:
        identity = None
        if path is not None:
            with contextlib.suppress(Unprocessable):
                identity = FileIdentity.of(path)
            if identity is not None and not os.access(path, os.R_OK):
                identity = None
        found.append(identity)
    return found


def hash_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """The lowercase hex SHA256 of a file, read in large chunks with constant memory;
    `progress` is called with the size of each chunk read.

    Raises OSError if the file cannot be read.
    """
    digest = hashlib.sha256()
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        crashpoint("hash.reading")
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            if progress is not None:
                progress(count)
    return digest.hexdigest()


class HashingStopped(Exception):
    """Hashing was abandoned because the service is stopping."""


class Hasher:
    """Digests model files in an executor, remembering them by (path, size, mtime_ns, inode).

    Two callers asking for the same unchanged file at once share one hashing task. Hashing runs
    in the CPU pool, the quick stat calls in the file pool, so that checking a file never waits
    behind other files being hashed or images being rendered.
    """

    def __init__(self, storage: Storage, changes: Changes, executors: Executors) -> None:
        self._storage = storage
        self._changes = changes
        self._executors = executors
        self._running: dict[FileIdentity, asyncio.Task[str]] = {}
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Abandon files being hashed at their next chunk (shutdown: a thread cannot be
        stopped otherwise, and a 20 GB file would hold the process for minutes)."""
        self._stopped.set()

    def _chunk_done(self, report: Callable[[int], None] | None) -> Callable[[int], None]:
        """What hash_file calls (in its thread) after each chunk: stop if the service is
        stopping, else report the bytes read."""

        def chunk_done(count: int) -> None:
            if self._stopped.is_set():
                raise HashingStopped
            if report is not None:
                report(count)

        return chunk_done

    async def identify(self, path: Path) -> FileIdentity:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executors.files, FileIdentity.of, path)

    async def digest(
        self, path: Path, progress: Callable[[int], None] | None = None
    ) -> tuple[str, FileIdentity]:
        """The SHA256 of the file at `path` and the identity it was computed for.

        `progress`, if given, is called on the event loop with the number of bytes read each
        time a chunk has been hashed (not for a cached digest, nor while another caller's
        hashing of the same file is awaited). Raises Unprocessable if the file is missing,
        unreadable or changes while being read.
        """
        identity = await self.identify(path)
        cached = await self._cached(identity)
        if cached is not None:
            return cached, identity
        task = self._running.get(identity)
        if task is None:
            task = asyncio.create_task(self._compute(identity, progress))
            self._running[identity] = task
            task.add_done_callback(lambda t: self._forget(identity, t))
        # Shielded: one caller going away must not cancel the work another caller waits for.
        return await asyncio.shield(task), identity

    def _forget(self, identity: FileIdentity, task: asyncio.Task[str]) -> None:
        self._running.pop(identity, None)
        if not task.cancelled():
            task.exception()  # retrieved: a task abandoned at shutdown has no one to tell

    async def _cached(self, identity: FileIdentity) -> str | None:
        async with self._storage.read(bulk=True) as conn:
            return await hash_cache.cached_digest(
                conn, identity.path, identity.size, identity.mtime_ns, identity.inode
            )

    async def _compute(
        self, identity: FileIdentity, progress: Callable[[int], None] | None = None
    ) -> str:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        report: Callable[[int], None] | None = None
        if progress is not None:
            told = progress

            def report(count: int) -> None:
                # hash_file calls back from its worker thread; the caller is told on the loop.
                loop.call_soon_threadsafe(told, count)

        try:
            sha256 = await loop.run_in_executor(
                self._executors.cpu, hash_file, Path(identity.path), self._chunk_done(report)
            )
        except HashingStopped:
            raise ServiceStopping(
                f"hashing {identity.path} stopped: the service is stopping"
            ) from None
        except OSError as exc:
            raise Unprocessable(
                f"model file {identity.path} cannot be read: {exc.strerror}"
            ) from exc
        if await self.identify(Path(identity.path)) != identity:
            raise Unprocessable(f"model file {identity.path} changed while it was being hashed")
        elapsed = time.perf_counter() - started
        log.info("hashed %s (%.1f MiB in %.2f s)", identity.path, identity.size / 2**20, elapsed)
        # Its own small transaction, off the critical path of the change that asked for it.
        async with self._changes.change() as change:
            await hash_cache.store_digest(
                change.tx, identity.path, identity.size, identity.mtime_ns, identity.inode, sha256
            )
        return sha256
