"""The SQLite database: one writer connection, a small pool of readers, WAL mode.

Every write goes through `Storage.write()`, which serialises writers with an asyncio lock (so two
coroutines can never interleave inside one transaction), opens `BEGIN IMMEDIATE`, commits on success
and rolls back on any exception, cancellation included.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from modelshelf.errors import NOTHING_CHANGED, StorageBusy, StorageFull, StorageUnavailable
from modelshelf.storage import search_rows
from modelshelf.storage.counts import CAPACITY as COUNTS_KEPT
from modelshelf.storage.counts import MatchCounts
from modelshelf.storage.dirlock import DirectoryLock
from modelshelf.storage.migrate import apply_migrations
from modelshelf.storage.read_pool import FairPool, reading_client

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
# Read connections kept for bulk work (imports, scans, stage 1, jobs), so that a burst of it
# (32 imports starting at once) never makes a person's read wait for a connection.
BULK_READ_CONNECTIONS = 2
# Page cache of each bulk read connection, in KiB (SQLite's default is 2 MiB). Bulk work reads
# each row once or twice (a scan looks up each file it finds), so a big cache buys little and
# only fills as the library grows: a first scan's memory grew with the number of files.
BULK_CACHE_KIB = 512


class Storage:
    """Owns the database connections of one data directory."""

    def __init__(
        self,
        path: Path,
        read_connections: int = 4,
        journal_size_limit: int = JOURNAL_SIZE_LIMIT,
        kept_totals: int = COUNTS_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._read_count = read_connections
        self._journal_size_limit = journal_size_limit
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._clock = clock
        # A person's read goes before the queued reads of a client reading without pause.
        self._readers: FairPool[aiosqlite.Connection] = self._new_read_pool()
        self._bulk_readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._dir_lock = DirectoryLock(path.parent)
        # Committed write transactions since open: a figure for benchmarks and tests.
        self.transactions = 0
        # Bumped when a write transaction begins and again once it has ended (odd while one is
        # open): what a reader saw at an even generation that has not moved is still true.
        self.generation = 0
        # The same for the full-text index alone: odd from before a transaction changes it
        # (mark_index_changing) until that transaction has ended. Every change to models, tags
        # or locations' paths changes it (the search triggers); job progress, images, a scan
        # that finds nothing new leave it as it was.
        self.index_generation = 0
        self._kept = MatchCounts(lambda: self.generation, capacity=kept_totals)
        self._kept_by_index = MatchCounts(lambda: self.index_generation, capacity=kept_totals)

    async def open(self) -> None:
        """Take the data-directory lock, open connections and migrate the schema forward.

        Raises DataDirInUse if another process serves the same directory.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._dir_lock.acquire()
        is_new = not self.path.exists()
        # Another program may have changed the file since a close: nothing kept before holds.
        self.generation += 2
        self.index_generation += 2
        try:
            self._writer = await _connect(self.path)
            await self._writer.execute("PRAGMA journal_mode=WAL")
            await self._writer.execute(f"PRAGMA journal_size_limit={int(self._journal_size_limit)}")
            await apply_migrations(self._writer)
            if is_new:
                # Said, for a data dir misspelt (a setting, a --data-dir) serves an empty library.
                log.info(
                    "a new, empty library in %s (it had no %s)", self.path.parent, self.path.name
                )
            await self._refresh_search()
            for _ in range(self._read_count):
                self._readers.add(await self._connect_reader())
            for _ in range(BULK_READ_CONNECTIONS):
                reader = await self._connect_reader()
                await reader.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
                self._bulk_readers.put_nowait(reader)
        except BaseException:
            await self.close()
            raise

    def _new_read_pool(self) -> FairPool[aiosqlite.Connection]:
        # One client holds at most half the connections: the rest wait for the next client.
        share = max(1, self._read_count // 2)
        return FairPool(clock=self._clock, per_client=share)

    async def _connect_reader(self) -> aiosqlite.Connection:
        reader = await _connect(self.path)
        self._all_readers.append(reader)
        await reader.execute("PRAGMA query_only=ON")
        return reader

    async def close(self) -> None:
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        # No closed connection may be handed out after a reopen.
        self._readers, self._bulk_readers = self._new_read_pool(), asyncio.Queue()
        if self._writer is not None:
            async with self._write_lock:
                await self._writer.close()
            self._writer = None
        self._dir_lock.release()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction on the single writer connection.

        Raises StorageUnavailable when the database is read-only, StorageFull when the disk is.
        """
        writer = self._require_writer()
        async with self._write_lock:
            self.generation += 1  # odd: readers keep no count meanwhile (see MatchCounts)
            try:
                async with _transaction(writer):
                    yield writer
                self.transactions += 1
            finally:
                self.generation += 1
                if self.index_generation % 2:
                    self.index_generation += 1

    def mark_index_changing(self) -> None:
        """The open write transaction is about to change the full-text index: what readers
        keep of listings the index tracks (ModelFilter.tracked_by_index) is not kept from now
        until it has ended."""
        if self.index_generation % 2 == 0:
            self.index_generation += 1

    def counts(self, tracked_by_index: bool) -> MatchCounts:
        """What is kept of listings: for those every change to which changes the full-text
        index too (ModelFilter.tracked_by_index), kept across writes that leave it as it was."""
        return self._kept_by_index if tracked_by_index else self._kept

    async def _refresh_search(self) -> None:
        """Build the search rows marked stale (a library migrated forward, or changed by another
        program). A read-only database keeps the index it has: reads work on."""
        writer = self._require_writer()
        async with writer.execute("SELECT 1 FROM search_docs WHERE stale = 1 LIMIT 1") as cursor:
            if await cursor.fetchone() is None:
                return
        try:
            async with self.write() as tx:
                count = await search_rows.refresh_stale(tx, self.mark_index_changing)
        except (StorageUnavailable, StorageBusy) as exc:
            log.warning("the search index could not be brought up to date: %s", exc.detail)
            return
        log.info("search index: %d rows built", count)

    def writer_busy(self) -> bool:
        """Whether a write transaction is open or waiting."""
        return self._write_lock.locked()

    @asynccontextmanager
    async def read(self, *, bulk: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only connection from the pool; WAL lets it read while a write is open.
        `bulk`: for reads of bulk work (imports, scans, stage 1, jobs), which have connections
        of their own, so that they never keep a person's read waiting. The other reads wait
        in a fair queue: the read of the client (`reading_client`) that held connections
        least lately goes first (see `read_pool`). Raises StorageBusy while another program
        keeps even readers out (a connection in exclusive locking mode, a checkpoint that
        truncates)."""
        if not self._all_readers:
            raise RuntimeError("storage is not open")
        # Given back to the pool it came from, even if storage reopens meanwhile.
        bulk_readers, readers = self._bulk_readers, self._readers
        client = reading_client.get()
        reader = await (bulk_readers.get() if bulk else readers.take(client))
        taken = self._clock()
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
            if bulk:
                bulk_readers.put_nowait(reader)
            else:
                readers.give_back(reader, client, self._clock() - taken)

    def reads_waiting(self) -> int:
        """Reads (not bulk ones) waiting for a read connection now."""
        return self._readers.waiting()

    def _require_writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("storage is not open")
        return self._writer


async def _connect(path: Path) -> aiosqlite.Connection:
    # isolation_level=None: the sqlite3 module must not open transactions behind our back;
    # every transaction here is explicit.
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit is on disk before files move into place after it (see filejournal);
        # fullfsync: on macOS, out of the drive's cache too (elsewhere it changes nothing).
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA fullfsync=ON")
    except BaseException:
        # A file that is not a database fails here: its connection's thread would keep the
        # process alive for ever.
        await conn.close()
        raise
    return conn


@asynccontextmanager
async def _transaction(writer: aiosqlite.Connection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on any exception (cancellation included)."""
    try:
        await _translate_errors(writer.execute("BEGIN IMMEDIATE"))
    except asyncio.CancelledError:
        # The BEGIN still runs after its caller stopped waiting for it; roll it back
        # before the next writer gets the lock (operations run in order).
        await asyncio.shield(_rollback(writer))
        raise
    try:
        yield
        await _commit(writer)
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


async def _commit(writer: aiosqlite.Connection) -> None:
    """COMMIT, waited for to its end even if the caller is cancelled meanwhile. The COMMIT runs
    on regardless, and a caller that took a committed change for a failed one would discard
    the staged files its journal entry promises. The cancellation is delivered at the
    caller's next await instead (after the commit, the unit of work finishes its files
    first)."""
    commit = asyncio.ensure_future(_translate_errors(writer.execute("COMMIT")))
    cancelled = False
    while not commit.done():
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            cancelled = True
    task = asyncio.current_task()
    if cancelled and task is not None:
        task.uncancel()
        task.cancel()  # the same single request, delivered at the next suspension
    commit.result()


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
        return StorageUnavailable(f"the database is read-only; {NOTHING_CHANGED}")
    if primary == sqlite3.SQLITE_FULL:
        return StorageFull(f"the disk holding the database is full; {NOTHING_CHANGED}")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StorageBusy(
            f"the database is locked by another program; {NOTHING_CHANGED}, try again shortly",
            retry_after=2,
        )
    return exc
