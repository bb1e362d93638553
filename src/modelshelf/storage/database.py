"""The SQLite database: one writer connection, a small pool of readers, WAL mode.

Every write goes through `Storage.write()`, which serialises writers with an asyncio lock (so two
coroutines can never interleave inside one transaction), opens `BEGIN IMMEDIATE`, commits on success
and rolls back on any exception, cancellation included.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from modelshelf.errors import ShelfError, StorageBusy, StorageFull, StorageUnavailable
from modelshelf.storage.schema import apply_migrations

log = logging.getLogger(__name__)

# How long a statement waits for another process's lock before the change is answered with
# StorageBusy (503 + Retry-After). Inside this process writers queue on an asyncio lock and never
# wait here; only another process (a backup tool, a sqlite3 shell) can hold the lock.
BUSY_TIMEOUT_MS = 2_000
DATABASE_NAME = "modelshelf.db"
# While a long reader (a backup, a big listing) holds an old snapshot, checkpoints cannot
# finish and the WAL grows; once it is reset it is cut back to this size instead of keeping
# its peak for ever.
JOURNAL_SIZE_LIMIT = 64 * 2**20


class DataDirInUse(ShelfError):
    """Another modelshelf process holds this data directory."""


class Storage:
    """Owns the database connections of one data directory."""

    def __init__(
        self, path: Path, read_connections: int = 4, journal_size_limit: int = JOURNAL_SIZE_LIMIT
    ) -> None:
        self.path = path
        self._read_count = read_connections
        self._journal_size_limit = journal_size_limit
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._lock_file: int | None = None

    async def open(self) -> None:
        """Take the data-directory lock, open connections and migrate the schema forward.

        Raises DataDirInUse if another process serves the same directory.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_directory_lock()
        try:
            self._writer = await _connect(self.path)
            await self._writer.execute("PRAGMA journal_mode=WAL")
            await self._writer.execute(f"PRAGMA journal_size_limit={int(self._journal_size_limit)}")
            await apply_migrations(self._writer)
            for _ in range(self._read_count):
                reader = await _connect(self.path)
                await reader.execute("PRAGMA query_only=ON")
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        self._readers = asyncio.Queue()  # no closed connection may be handed out after a reopen
        if self._writer is not None:
            async with self._write_lock:
                await self._writer.close()
            self._writer = None
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing releases the flock
            self._lock_file = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction on the single writer connection.

        Raises StorageUnavailable when the database is read-only, StorageFull when the disk is.
        """
        writer = self._require_writer()
        async with self._write_lock:
            await _translate_errors(writer.execute("BEGIN IMMEDIATE"))
            try:
                yield writer
                await _translate_errors(writer.execute("COMMIT"))
            except BaseException as exc:
                # Shielded: a second cancellation must not leave the transaction open for the
                # next writer. aiosqlite runs operations in order, so ROLLBACK precedes any BEGIN.
                await asyncio.shield(_rollback(writer))
                # A read-only database or a full disk usually shows at the first statement
                # inside the transaction (BEGIN IMMEDIATE succeeds on a read-only file).
                if isinstance(exc, sqlite3.Error):
                    translated = translate_sqlite_error(exc)
                    if translated is not exc:
                        raise translated from exc
                raise

    def writer_busy(self) -> bool:
        """Whether a write transaction is open or waiting."""
        return self._write_lock.locked()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only connection from the pool; WAL lets it read while a write is open.
        Raises StorageBusy while another program keeps even readers out (a connection in
        exclusive locking mode, a checkpoint that truncates)."""
        if not self._all_readers:
            raise RuntimeError("storage is not open")
        reader = await self._readers.get()
        try:
            yield reader
        except sqlite3.Error as exc:
            translated = translate_sqlite_error(exc)
            if not isinstance(translated, StorageBusy):
                raise  # a write on a reader is a bug, not a read-only database
            raise translated from exc
        finally:
            if reader.in_transaction:
                await reader.execute("ROLLBACK")
            self._readers.put_nowait(reader)

    def _require_writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("storage is not open")
        return self._writer

    def _take_directory_lock(self) -> None:
        lock_path = self.path.with_name(".modelshelf.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUse(
                f"{self.path.parent} is in use by another modelshelf process"
            ) from None
        self._lock_file = fd


async def _connect(path: Path) -> aiosqlite.Connection:
    # isolation_level=None: the sqlite3 module must not open transactions behind our back;
    # every transaction here is explicit.
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA foreign_keys=ON")
    # FULL: a commit is on disk before files move into place after it (see filejournal).
    await conn.execute("PRAGMA synchronous=FULL")
    return conn


async def _rollback(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except sqlite3.Error as exc:  # no transaction left to roll back: SQLite already did
        log.debug("rollback skipped: %s", exc)


async def _translate_errors(operation: Awaitable[object]) -> None:
    try:
        await operation
    except sqlite3.Error as exc:
        translated = translate_sqlite_error(exc)
        if translated is exc:
            raise
        raise translated from exc


def translate_sqlite_error(exc: sqlite3.Error) -> Exception:
    """Map the SQLite failures a client can do nothing about to domain errors, by their
    primary result code (the extended code's low byte)."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == sqlite3.SQLITE_READONLY:
        return StorageUnavailable("the database is read-only; nothing was changed")
    if primary == sqlite3.SQLITE_FULL:
        return StorageFull("the disk holding the database is full; nothing was changed")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StorageBusy(
            "the database is locked by another program; nothing was changed, try again shortly",
            retry_after=2,
        )
    return exc


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
