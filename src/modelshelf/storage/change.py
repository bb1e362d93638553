"""The one door for every change to the library's rows and files: the unit of work.

    async with changes.staging() as staging:          # files prepared before the change
        folder = await staging.new_folder()
        ...render into folder (slow work holds no lock and no transaction)...
        async with changes.change(lock=[sha256], staging=staging) as change:
            await models.insert_model(change.tx, ...)  # rows, through storage/ queries
            change.move(folder / "high.webp", target)  # file operations, carried out later

`change()` takes the model locks it is given (sorted, so two changes cannot deadlock), opens
BEGIN IMMEDIATE on the single writer, lets the caller write rows and add file operations,
builds the search rows those rows made stale (storage.search), journals the operations in the
same transaction, commits, carries them out and removes the staging. Before the commit any
failure (cancellation included) rolls back and the staging context removes what was prepared.
After the commit nothing can stop it: a cancelled caller waits until the files are in place,
and a crash leaves the journal for start-up to replay.

A journal entry carried out is forgotten at once if no other change waits for the writer, and
otherwise by the next change's transaction: under load each change costs one write transaction.
Replaying an entry that was carried out already is harmless (see fileops).

If a committed change's file operations fail (a read-only or full images folder), the change
still stands: its caller hears of success, and its entry stays in the journal, unfinished.
Every later change first tries such entries again, in commit order; while one is still
unfinished, a change that would move or remove files is refused (StorageUnavailable) before it
commits, so files are never moved out of commit order and the next start can replay what is
left over files that no later change has touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from concurrent.futures import Executor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from modelshelf.crashpoints import crashpoint
from modelshelf.durability import sync_folders
from modelshelf.errors import (
    NOTHING_CHANGED,
    PartRefused,
    StorageBusy,
    StorageFull,
    StorageUnavailable,
)
from modelshelf.executors import refuses_writes, run_blocking
from modelshelf.locks import KeyedLocks
from modelshelf.storage import fileops, journal, search_rows
from modelshelf.storage.database import Storage
from modelshelf.storage.fileops import FileOp
from modelshelf.storage.rows import run_on_connection

log = logging.getLogger(__name__)

T = TypeVar("T")

# What the database raises when it refuses a row rather than failing as a whole.
_ROW_REFUSED = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    OverflowError,
    UnicodeEncodeError,
)


class Staging:
    """Folders under the staging directory for one change's prepared files. Used as an async
    context manager: on exit, whatever a committed change did not take over is removed."""

    def __init__(self, changes: Changes) -> None:
        self._changes = changes
        self.folders: list[Path] = []
        self.taken_over = False

    async def new_folder(self) -> Path:
        """A new empty folder that no image URL can reach."""
        folder = self._changes.staging_dir / uuid.uuid4().hex
        # Listed first and made to the end: a caller cancelled meanwhile must not leave a
        # folder that discard() did not know of, or made after discard() ran.
        self.folders.append(folder)
        try:
            await _uncancellable(self._changes.run_files(_make_folder, folder))
        except OSError as exc:
            if refuses_writes(exc):  # every change that writes files begins here
                raise StorageUnavailable(
                    f"the images folder cannot be written ({exc.strerror}); {NOTHING_CHANGED}"
                ) from exc
            raise
        return folder

    async def discard(self) -> None:
        """Remove every folder. A cancelled caller waits until they are gone: a job cancelled
        at shutdown must not leave them behind when the process exits."""
        folders, self.folders = self.folders, []
        await _uncancellable(self._changes.remove_folders(folders))

    async def __aenter__(self) -> Staging:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self.taken_over:
            await self.discard()


def _call(_db: sqlite3.Connection, func: Callable[..., T], args: tuple[Any, ...]) -> T:
    return func(*args)


class Change:
    """The open transaction (`tx`) and the file operations to carry out once it commits.
    `committed` is True from the commit on: a caller cancelled after it hears CancelledError
    from `change()` all the same (once the files are in place), and reads here that what it
    wrote stands."""

    def __init__(self, tx: aiosqlite.Connection, root: Path, staging: Staging) -> None:
        self.tx = tx
        self.ops: list[FileOp] = []
        self.committed = False
        self._root = root
        self._staging = staging

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)`, blocking work of the change (planning a record, parsing one from
        history), on the change's own connection thread: off the event loop, and not queued
        behind bulk work in the CPU pool, for which the change would wait holding the writer
        and its models' locks (under the load test's imports, a merge's planning waited 1-4 s
        there, and with it every write and every reader of the model)."""
        return await run_on_connection(self.tx, _call, func, args)

    @asynccontextmanager
    async def part(self, *, alone: bool = True) -> AsyncIterator[None]:
        """A part of the change that may fail alone: if anything inside raises, the part's rows
        and file operations are undone and the exception propagates (PartRefused when the
        database refused a row: a constraint, a value it cannot hold); the caller may go on
        with the rest of the change.

        With `alone=False` nothing is undone (no savepoint, which costs two statements): a
        refused row still raises PartRefused, and the caller must give up the whole change,
        e.g. to make it again part by part."""
        if not alone:
            try:
                yield
            except _ROW_REFUSED as exc:
                raise PartRefused(f"the database refused it ({exc})") from exc
            return
        name = f"part_{len(self.ops)}_{uuid.uuid4().hex[:8]}"
        ops = len(self.ops)
        await self.tx.execute(f"SAVEPOINT {name}")
        try:
            yield
        except Exception as exc:
            await self._undo_part(name, ops)
            if isinstance(exc, _ROW_REFUSED):
                raise PartRefused(f"the database refused it ({exc})") from exc
            raise
        await self.tx.execute(f"RELEASE {name}")

    async def _undo_part(self, name: str, ops: int) -> None:
        del self.ops[ops:]
        try:
            await self.tx.execute(f"ROLLBACK TO {name}")
            await self.tx.execute(f"RELEASE {name}")
        except sqlite3.Error as exc:  # SQLite rolled the whole transaction back itself
            log.debug("savepoint %s not rolled back: %s", name, exc)

    def move(self, src: Path, dst: Path) -> None:
        self.ops.append(fileops.move(src, dst, self._root))

    def unlink(self, path: Path) -> None:
        self.ops.append(fileops.unlink(path, self._root))

    async def renumber(self, sha256: str, moves: Mapping[int, int], drop: Iterable[int]) -> None:
        """Give a model's images new seqs (`moves`: old -> new) and remove those in `drop`."""
        folder = await self._staging.new_folder()
        self.ops.append(fileops.renumber(sha256, moves.items(), drop, folder, self._root))


@dataclass(frozen=True)
class _Unfinished:
    """A committed change whose file operations failed: tried again by every later change."""

    journal_id: int
    ops: list[FileOp]
    folders: list[Path]
    reason: str


class Changes:
    """Owns every write: the single writer, the model locks and the file journal."""

    def __init__(
        self,
        storage: Storage,
        model_locks: KeyedLocks,
        data_dir: Path,
        files: Executor,
        on_files: Callable[[set[str]], None] | None = None,
    ) -> None:
        """`on_files` hears of the models whose rendition files a change moves or removes
        (e.g. to drop what a cache holds of them), on the event loop."""
        self.storage = storage
        self.model_locks = model_locks
        self.data_dir = data_dir
        self.staging_dir = data_dir / "images" / ".staging"
        self._files = files
        self._on_files = on_files
        self._carried_out: list[int] = []
        self._unfinished: list[_Unfinished] = []

    def files_changed(self, ops: list[FileOp]) -> None:
        """Tell `on_files` which models' files `ops` touch (recovery calls it for what it
        replays)."""
        touched = fileops.models_touched(ops)
        if touched and self._on_files is not None:
            self._on_files(touched)

    async def run_files(self, func: Callable[..., T], *args: Any) -> T:
        """Short blocking file work in the file pool; a full disk becomes StorageFull."""
        return await run_blocking(self._files, func, *args)

    def staging(self) -> Staging:
        """Staging for files prepared before a change: `async with changes.staging() as s`."""
        return Staging(self)

    @asynccontextmanager
    async def change(
        self, *, lock: Iterable[str] = (), staging: Staging | None = None
    ) -> AsyncIterator[Change]:
        """One atomic change; see the module docstring. Raises what the caller raises, and
        StorageUnavailable, StorageFull or StorageBusy from the database."""
        async with AsyncExitStack() as stack:
            for key in sorted(set(lock)):
                await stack.enter_async_context(self.model_locks.hold(key))
            if staging is None:
                staging = await stack.enter_async_context(self.staging())
            entry: tuple[int, list[FileOp]] | None = None
            async with self.storage.write() as tx:
                await self._finish_unfinished()
                forgotten = list(self._carried_out)
                await journal.forget(tx, forgotten)
                change = Change(tx, self.data_dir, staging)
                yield change
                # Rows the change's triggers marked.
                await search_rows.refresh_stale(tx, self.storage.mark_index_changing)
                if change.ops:
                    self._refuse_while_unfinished()
                    entry = (await journal.record(tx, change.ops), change.ops)
                crashpoint("change.before_commit")
            change.committed = True
            del self._carried_out[: len(forgotten)]
            staging.taken_over = True
            crashpoint("change.after_commit")
            await _uncancellable(self._finish(entry, staging.folders))

    async def _finish(self, entry: tuple[int, list[FileOp]] | None, folders: list[Path]) -> None:
        if entry is not None:
            journal_id, ops = entry
            reason = await self._carry_out(journal_id, ops)
            if reason is not None:
                log.error(
                    "journal entry %d: committed, but its files could not be put in place (%s);"
                    " tried again with every change and at the next start",
                    journal_id,
                    reason,
                )
                self._unfinished.append(_Unfinished(journal_id, ops, folders, reason))
                return  # the staging holds files the entry still has to move
        await self.remove_folders(folders)
        if self._carried_out and not self.storage.writer_busy():
            await self.forget_carried_out()

    async def _carry_out(self, journal_id: int, ops: list[FileOp]) -> str | None:
        """Put a committed entry's files in place; None when done, else why not."""
        # Before the files move and once they are in place (or failed to be): what was
        # read while they moved is not kept (see rendition_cache).
        self.files_changed(ops)
        try:
            notes = await self.run_files(fileops.apply_file_ops, self.data_dir, ops)
        except (OSError, StorageFull, StorageUnavailable, fileops.FileOpError) as exc:
            return str(getattr(exc, "detail", None) or exc)
        finally:
            self.files_changed(ops)
        for note in notes:
            log.warning("journal entry %d: %s", journal_id, note)
        crashpoint("change.carried_out")
        self._carried_out.append(journal_id)
        return None

    async def _finish_unfinished(self) -> None:
        """Try again, in commit order, the entries whose files could not be put in place;
        stop at the first that still fails (a later one may build on it)."""
        while self._unfinished:
            first = self._unfinished[0]
            if await self._carry_out(first.journal_id, first.ops) is not None:
                return
            log.info("journal entry %d: its files are in place now", first.journal_id)
            del self._unfinished[0]
            await self.remove_folders(first.folders)

    def _refuse_while_unfinished(self) -> None:
        if self._unfinished:
            raise StorageUnavailable(
                "the files of an earlier change could not be put in place yet"
                f" ({self._unfinished[0].reason}); {NOTHING_CHANGED}. They are tried again"
                " with every change: try again once the images folder can be written"
            )

    async def remove_folders(self, folders: list[Path]) -> None:
        for folder in folders:
            await self.run_files(shutil.rmtree, folder, True)

    async def forget_carried_out(self) -> None:
        """Forget journal entries already carried out, if the database lets us now; otherwise
        the next change does. Never raises for a busy, read-only or full database: the
        changes those entries belong to have committed, and their callers must not hear of a
        failure."""
        if not self._carried_out:
            return
        try:
            async with self.change():
                pass
        except (StorageBusy, StorageFull, StorageUnavailable) as exc:
            log.info("carried-out journal entries are forgotten later: %s", exc.detail)


def _make_folder(folder: Path) -> None:
    """Make a staging folder, its name on the disk before anything staged in it is
    journalled (durability)."""
    folder.mkdir(0o755, True)
    sync_folders([folder.parent])


async def _uncancellable(work: Any) -> None:
    """Run `work` to its end even if the caller is cancelled meanwhile; then re-raise the
    cancellation. A committed change must put its files in place before its locks go."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            # Even when `work` ended in the same instant: a cancellation is never swallowed.
            cancelled = True
    if cancelled:
        with contextlib.suppress(BaseException):
            task.result()
        raise asyncio.CancelledError
    task.result()
