"""One scan's run: its state and its four phases (see `scan` for what they do), shared by
a whole scan (`scan_library`) and a watcher's (`scan_paths`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiosqlite

from modelshelf.domain.file_facts import StagedFacts
from modelshelf.domain.locations import (
    Hashed,
    Registered,
    mark_gone,
    refresh_facts,
    register,
    repoint_paths,
)
from modelshelf.domain.scan_digest import Content, hash_counted
from modelshelf.domain.scan_found import (
    BEING_WRITTEN,
    facts_changed,
    known_digest,
    queued,
    stat_again,
    take,
    unchanged,
    written_lately,
)
from modelshelf.domain.scan_report import (
    CHECKING,
    HASHING,
    READING,
    WALKING,
    ScanProgress,
    ScanResult,
)
from modelshelf.domain.scan_turns import (
    Feed,
    FileToRegister,
    HeldCopies,
    Turns,
    Waiting,
    in_parallel,
    one_by_one,
)
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import Unprocessable
from modelshelf.folders.problems import Problem, printable
from modelshelf.folders.walk import FoundFile, Walk
from modelshelf.storage import file_facts, hash_cache, model_files
from modelshelf.storage.hash_cache import CachedDigest
from modelshelf.storage.model_files import KnownLocation, Signatures
from modelshelf.storage.rows import now_ms
from modelshelf.storage.scan_queue import Queued, ScanQueue

log = logging.getLogger(__name__)

Locations = list[tuple[str, str]]  # (path, sha256)
_Copy = tuple[Hashed, bool]  # a file to register, and whether its path was a location
BATCH = 1000
SEEN_FLUSH = 5000


class ScanRun:
    """One scan's state: what is left to do, what to look at again, and the result."""

    def __init__(
        self, shelf: Shelf, progress: ScanProgress, covers: Callable[[str], bool] | None = None
    ) -> None:
        self.shelf = shelf
        self.progress = progress
        # Whether a path lies where this scan looks (None: everywhere): the problems of a
        # model's files elsewhere (beside a copy in a root of another type) are not listed.
        self.covers = covers
        self.started = now_ms()
        self.result = ScanResult()
        self.counts = self.result.counts
        # The files to register in phase 2, on disk (opened when the first one is queued).
        self.queue: ScanQueue | None = None
        # Unchanged locations to mark seen: as they were, or present again / of a new type.
        self.seen: list[str] = []
        self.restored: list[tuple[str, str | None]] = []
        # Models whose path or file facts may have to change, and the companions found
        # this scan of the locations involved (by path).
        self.flagged: set[str] = set()
        self.companions: dict[str, Signatures] = {}
        # The problems met when the facts of unchanged files were last read (as stored, by
        # model): listed again at the end unless their facts are read again meanwhile.
        self.problems_read_before: dict[str, str] = {}
        # Models registered again with the content they had (a file touched): if their facts
        # need no new reading, the problems of the last one are listed (see _refresh).
        self.registered_again: set[str] = set()
        # The files waiting for their copies, in phase 2.
        self.held: HeldCopies[_Copy] = HeldCopies()
        # Files to hash that were written lately, looked at again before phase 2 (a partial
        # download hashed between two writes would become a model of its own), and when
        # the walk saw the last of them (monotonic).
        self.fresh: list[tuple[FoundFile, KnownLocation | None]] = []
        self.fresh_seen = 0.0
        progress.phase(WALKING)

    # --- phase 1 --------------------------------------------------------------------------

    async def walk(self, walk: Walk) -> None:
        """Classify every file of `walk`, a batch at a time. The walk runs in the file pool,
        one batch ahead of the classifying."""
        files = iter(walk)
        upcoming = asyncio.ensure_future(self.shelf.run_files(take, files, BATCH))
        try:
            while batch := await upcoming:
                upcoming = asyncio.ensure_future(self.shelf.run_files(take, files, BATCH))
                await self.classify(batch)
        finally:
            upcoming.cancel()
        await self.flush_seen()
        for problem in walk.problems:
            self.result.problem(problem)

    async def classify(self, batch: list[FoundFile]) -> None:
        """Unchanged files are done (their locations marked seen, a few thousand at a time);
        the others are queued for phase 2, with their content when it is known without
        reading."""
        if not batch:
            return
        self.counts.files_found += len(batch)
        self.progress.found(self.counts.files_found)
        paths = [str(f.path) for f in batch]
        rest: list[tuple[str, FoundFile, KnownLocation | None]] = []
        by_inode: dict[tuple[int, int, int, int], str] = {}
        cached: dict[str, CachedDigest] = {}
        async with self.shelf.storage.read(bulk=True) as conn:
            known = await model_files.known_locations(conn, paths)
            for path, found in zip(paths, batch, strict=True):
                location = known.get(path)
                if location is not None and location.model_exists and unchanged(location, found):
                    self._unchanged_file(location, found, path)
                else:
                    rest.append((path, found, location))
            if rest:
                inodes = [found.inode for _, found, _ in rest]
                by_inode = await model_files.digests_by_inode(conn, inodes)
                cached = await hash_cache.cached_digests(conn, [path for path, _, _ in rest])
        await self._enqueue(self._queued_or_fresh(rest, by_inode, cached))
        if len(self.seen) >= SEEN_FLUSH or self.restored:
            await self.flush_seen()

    def _queued_or_fresh(
        self,
        rest: list[tuple[str, FoundFile, KnownLocation | None]],
        by_inode: dict[tuple[int, int, int, int], str],
        cached: dict[str, CachedDigest],
    ) -> list[Queued]:
        """The files to queue now; those to hash that were written lately are kept aside."""
        settle_s, now_ns = self.shelf.settings.scan_settle_seconds, time.time_ns()
        files = []
        for path, found, location in rest:
            sha256 = known_digest(path, found, location, by_inode, cached)
            if sha256 is None and written_lately(found, settle_s, now_ns):
                self.fresh.append((found, location))
                self.fresh_seen = time.monotonic()
            else:
                files.append(queued(found, sha256, location))
        return files

    async def _settle_fresh_files(self) -> None:
        """Queue the files written lately once `scan_settle_seconds` have passed since the
        walk saw them, if they have not changed meanwhile; a file that has is a problem."""
        if not self.fresh:
            return
        fresh, self.fresh = self.fresh, []
        settle_s = self.shelf.settings.scan_settle_seconds
        await asyncio.sleep(max(0.0, self.fresh_seen + settle_s - time.monotonic()))
        now = await self.shelf.run_files(stat_again, [found.path for found, _ in fresh])
        files = []
        for (found, location), signature in zip(fresh, now, strict=True):
            if signature == (found.size, found.mtime_ns, found.inode):
                files.append(queued(found, None, location))
            else:
                self._failed(found, Unprocessable(BEING_WRITTEN.format(seconds=settle_s)))
        await self._enqueue(files)

    async def _enqueue(self, files: list[Queued]) -> None:
        if not files:
            return
        if self.queue is None:
            queue = ScanQueue()
            await queue.open()
            self.queue = queue
        await self.queue.add(files)

    async def close(self) -> None:
        """Let go of the queue of files to register (call it however the scan ended)."""
        if self.queue is not None:
            queue, self.queue = self.queue, None
            # Shielded: a second cancellation must not leave its connection's thread behind.
            await asyncio.shield(queue.close())

    async def flush_seen(self) -> None:
        """Write down, in one change, that the unchanged files found so far were seen; they
        are done once it commits (a scan that stops before has kept none of them)."""
        if not (self.seen or self.restored):
            return
        seen, self.seen = self.seen, []
        restored, self.restored = self.restored, []
        change = None
        try:
            async with self.shelf.changes.change() as change:
                await model_files.mark_seen(change.tx, seen, self.started)
                await model_files.mark_present(change.tx, restored, self.started)
        finally:
            # Also when a Stop lands during the commit: the change then raises CancelledError
            # after its commit, and the files it marked are done all the same.
            if change is not None and change.committed:
                for path in [*seen, *(path for path, _ in restored)]:
                    self.progress.file_done(path)

    def _unchanged_file(self, known: KnownLocation, found: FoundFile, path: str) -> None:
        """A file as it was registered: to be marked seen, and its model to be looked at
        again only if its location comes back or its facts' sources changed."""
        # Counted unchanged now (a scan that ends reports it); done, in its progress, only
        # once flush_seen commits its mark (a stopped scan tells what it kept).
        self.counts.unchanged += 1
        if known.location.present and known.location.type == found.type:
            self.seen.append(path)
        else:
            self.restored.append((path, found.type))
        sha256 = known.location.sha256
        if not known.location.present:
            self.counts.locations_back += 1
            self._flag(sha256, found, path)
        elif known.left_behind or facts_changed(known, found.companions):
            self._flag(sha256, found, path)
        elif known.facts_problems and known.facts_problems != "[]":
            # Found at any of its locations read (a scan of some types may walk one only).
            self.problems_read_before[sha256] = known.facts_problems

    def _flag(self, sha256: str, found: FoundFile, path: str) -> None:
        self.flagged.add(sha256)
        self.companions[path] = found.companions

    # --- phase 2 --------------------------------------------------------------------------

    async def hash_and_register(self) -> None:
        """Register every queued file, hashing those whose content is not known, as many at
        once as the CPU pool has threads: known ones first, then the largest first (so no
        thread is left alone with a big file at the end). Files of one size are registered
        in the order they were walked (see Turns). Files written lately are first given
        time to hold still. The queue is closed at the end."""
        await self._settle_fresh_files()
        _, hash_bytes = (0, 0) if self.queue is None else await self.queue.plan()
        self.progress.planned(self.counts.files_found, hash_bytes)
        self.progress.phase(HASHING)
        if self.queue is None:
            return
        feed, waiting = Feed(self.queue), Waiting()

        async def hash_then_register(item: FileToRegister) -> None:
            content = await self._content(item)
            before = item.before
            if before is None or before.is_set() or waiting.full():
                # Its turn has come, or it waits for it in its slot: enough files wait already.
                await self._in_turn(item, content, feed.turns)
            else:  # its turn comes later: wait for it without holding a hashing slot
                waiting.add(self._in_turn(item, content, feed.turns))

        try:
            await in_parallel(self.shelf.settings.workers, feed.next, hash_then_register)
            await waiting.finish()
        finally:
            await waiting.cancel()
            await self.close()

    async def _content(self, item: FileToRegister) -> Content | None:
        """The file's content and (size, mtime_ns, inode) as hashed; None if it cannot be
        read (a problem says why)."""
        found = item.found
        if item.sha256 is not None:
            self.counts.recognised += 1
            return item.sha256, (found.size, found.mtime_ns, found.inode)
        try:
            return await hash_counted(self.shelf, self.progress, self.counts, found)
        except Unprocessable as exc:
            self._failed(found, exc)
            return None

    async def _in_turn(self, item: FileToRegister, content: Content | None, turns: Turns) -> None:
        """Register `item` once the file before it of its size is done; after the last file
        of a size, the files of that size held for their copies."""
        try:
            if item.before is not None:
                await item.before.wait()
            if content is not None:
                await self._register(item, *content)
            if not item.more_of_size:
                for sha256, copies in self.held.release(item.found.size):
                    await self._register_copies(sha256, copies)
        finally:
            turns.done(item)  # the next file of its size may go, even if this one failed

    def _failed(self, found: FoundFile, exc: Unprocessable) -> None:
        self.counts.failed += 1
        self.result.problem(Problem(printable(str(found.path)), exc.detail))
        self.progress.file_done(str(found.path))

    async def _register(
        self, item: FileToRegister, sha256: str, stat_now: tuple[int, int, int]
    ) -> None:
        """Register `item`, unless a copy of it may come: then it waits for the last file of
        its size (see HeldCopies)."""
        copy = (Hashed(item.found, stat_now), item.known)
        now = self.held.add(item.found.size, sha256, copy, item.more_of_size)
        if now is not None:
            await self._register_copies(sha256, now)

    async def _register_copies(self, sha256: str, copies: list[_Copy]) -> None:
        """Register files of content `sha256` in one change (see HeldCopies). They are done
        once it commits, also when a Stop lands during the commit (the change stands)."""

        def registered(done: Registered) -> None:
            self._registered(sha256, copies, done)

        try:
            await register(
                self.shelf, [file for file, _ in copies], sha256, self.started, registered
            )
        except Unprocessable as exc:
            for file, _ in copies:
                self._failed(file.found, exc)

    def _registered(self, sha256: str, copies: list[_Copy], done: Registered) -> None:
        for number, (file, known) in enumerate(copies):
            self.progress.file_done(str(file.found.path))
            if done.created and number == 0:
                self.counts.models_created += 1
            elif not known:
                self.counts.locations_added += 1
        self.counts.locations_changed += len(done.previous)
        self.flagged.update(done.previous.values())
        if done.staged is not None and done.staged.applied is not None:
            self._facts_applied(done.staged)
        else:
            self.registered_again.add(sha256)
            for file, _ in copies:
                self._flag(sha256, file.found, str(file.found.path))

    def _facts_applied(self, staged: StagedFacts) -> None:
        self.counts.metadata_read += 1
        for problem in staged.problems:
            self._facts_problem(problem)
        if staged.applied is not None:
            self.counts.images_added += staged.applied.images_added
            self.counts.tags_added += staged.applied.tags_added

    # --- phases 3 and 4 -------------------------------------------------------------------

    async def finish(
        self, candidates: Callable[[aiosqlite.Connection], Awaitable[Locations]]
    ) -> None:
        """Mark missing the locations `candidates` reads (path, sha256) whose file is gone,
        then bring the paths and file facts of every model involved up to date."""
        self.progress.phase(CHECKING)
        async with self.shelf.storage.read(bulk=True) as conn:
            found = await candidates(conn)
        marked = await mark_gone(self.shelf, found, self.started)
        self.counts.locations_missing += len(marked)
        self.flagged.update(marked)
        flagged = sorted(self.flagged)
        self.counts.paths_moved += await repoint_paths(self.shelf, flagged)
        self.progress.phase(READING)
        # A model whose facts were read when it was created is skipped cheaply (stat only).
        await in_parallel(self.shelf.settings.workers, one_by_one(flagged), self._refresh)
        for _sha256, stored in sorted(self.problems_read_before.items()):
            for path, reason in file_facts.parse_problems(stored):
                self._facts_problem(Problem(path, reason))

    async def _refresh(self, sha256: str) -> None:
        staged = await refresh_facts(self.shelf, sha256, self.companions)
        if staged is None:
            # Not read again, as its files beside it are as they were (the model file was
            # only touched): what could not be used then still holds, and is listed, once.
            if sha256 in self.registered_again and sha256 not in self.problems_read_before:
                async with self.shelf.storage.read(bulk=True) as conn:
                    record = await file_facts.fetch_facts(conn, sha256)
                for path, reason in record.problems if record is not None else ():
                    self._facts_problem(Problem(path, reason))
            return
        self.problems_read_before.pop(sha256, None)
        if staged.applied is None:
            for problem in staged.problems:
                self._facts_problem(problem)
            return
        self._facts_applied(staged)

    def _facts_problem(self, problem: Problem) -> None:
        """List what could not be used of a model's files, if it lies where the scan looks."""
        if self.covers is None or self.covers(problem.path):
            self.result.problem(problem)
