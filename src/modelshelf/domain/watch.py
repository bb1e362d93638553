"""Watching the model roots while serving (setting `watch`): changes under the roots are
applied through the same scan code (`scan_paths`) once the files involved are complete.

A file is complete when its size and mtime have not changed for STABLE_SECONDS: its mtime is
that old (a write moves it) and two looks at it agree. Events come from `watchfiles` (inotify
on Linux), debounced; every TICK_MS the paths waiting are looked at again. Unfinished
downloads (`.part`, `.crdownload`, ...) and hidden names are never looked at: a download is
applied once it is renamed to its final name. A folder that appears is walked, and its files
wait like any other. A path where nothing is any more is applied at once (marked missing).
Once the watch has taken hold, it catches up with what changed before: every file under the
roots and every location the library holds there is looked at like a changed path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, awatch

from modelshelf.domain.scan import model_roots, scan_paths
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import ShelfError
from modelshelf.folders.names import is_ignored
from modelshelf.folders.roots import ModelRoots, Root
from modelshelf.folders.walk import Walk
from modelshelf.storage import model_files

log = logging.getLogger(__name__)

STABLE_SECONDS = 2.0
TICK_MS = 500
DEBOUNCE_MS = 200
RESTART_SECONDS = 5.0
# How often the roots are looked at again: one that appears (a models disk mounted after the
# start, a folder made after it was named) or comes back is watched from then on.
ROOTS_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class _Look:
    """What a path was when last looked at: (size, mtime_ns) of a file, and since when
    (monotonic seconds) it has been so."""

    signature: tuple[int, int]
    since: float


def relevant(change: Change, path: str) -> bool:
    """Events worth looking at: not for hidden names nor unfinished downloads."""
    return not is_ignored(os.path.basename(path))


FOLDER = "folder"


def look(paths: list[str]) -> dict[str, tuple[int, int] | str | None]:
    """(size, mtime_ns) of each path that is a regular file, FOLDER for a folder, None for
    anything else (gone, unreadable). One stat a path. Blocking: run it in the file pool."""
    found: dict[str, tuple[int, int] | str | None] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            found[path] = None
            continue
        if stat.S_ISDIR(st.st_mode):
            found[path] = FOLDER
        else:
            found[path] = (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None
    return found


def files_in(folder: str, roots: ModelRoots) -> list[str]:
    """Every model file under `folder` (a folder that appeared, or a root caught up with) that
    a scan of every root finds there: a symlinked folder leading into a root is walked there,
    not here. Blocking."""
    walk = Walk([Root(Path(folder), "")], walked_elsewhere=[root.path for root in roots.roots])
    return [str(found.path) for found in walk]


class FolderWatch:
    """Applies changes under the roots while it runs; `start()` then `stop()`."""

    def __init__(self, shelf: Shelf, roots: ModelRoots) -> None:
        self.shelf = shelf
        self.roots = roots
        self.waiting: dict[str, _Look | None] = {}
        self._caught_up: set[str] = set()  # roots watched and caught up with, while they stay
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="modelshelf-watch")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watching the model roots failed; starting again shortly")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), RESTART_SECONDS)

    async def _existing(self) -> list[str]:
        """The roots that are folders now (one stat each, in the file pool)."""
        folders = list(dict.fromkeys(str(root.path) for root in self.roots.roots))
        return await self.shelf.run_files(lambda: [f for f in folders if os.path.isdir(f)])

    async def _watch(self) -> None:
        """Watch the roots that exist until the set of them changes (or the stop)."""
        existing = await self._existing()
        self._caught_up &= set(existing)  # a root gone and back is caught up with again
        if not existing:
            log.warning("watch: no model root exists; nothing to watch until one does")
            while not self._stop.is_set() and not await self._existing():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), ROOTS_SECONDS)
            return
        log.info("watching %d model roots for changes", len(existing))
        looked = time.monotonic()
        changes_of = awatch(
            *existing,
            # A folder it may not read (lost+found, another user's) would stop it from
            # watching anything: a scan reports such a folder and goes on, and so does this.
            ignore_permission_denied=True,
            watch_filter=relevant,
            debounce=DEBOUNCE_MS,
            rust_timeout=TICK_MS,
            yield_on_timeout=True,
            stop_event=self._stop,
        )
        async with contextlib.aclosing(changes_of) as watched:
            async for changes in watched:
                new = [f for f in existing if f not in self._caught_up]
                if new:
                    self._caught_up.update(new)
                    await self._catch_up(new)
                for _change, path in changes:
                    self.waiting.setdefault(path, None)
                if self.waiting:
                    await self._apply_complete()
                if time.monotonic() - looked >= ROOTS_SECONDS:
                    looked = time.monotonic()
                    if await self._existing() != existing:
                        log.info("watch: the model roots that exist changed; watching again")
                        return

    async def _catch_up(self, folders: list[str]) -> None:
        """Once events are being watched, every file under the roots and every location the
        library holds there waits like a changed path: what changed while the service was
        down, or while it was starting, is applied by the same rules (a file still being
        written waits until it is complete; a file gone is marked missing)."""
        for folder in folders:
            self.waiting.setdefault(folder, None)  # walked on the next look
            async with self.shelf.storage.read(bulk=True) as conn:
                known = await model_files.present_at_or_under(conn, folder)
            for path, _sha256 in known:
                self.waiting.setdefault(path, None)
        log.info("watch: catching up with %d model roots", len(folders))

    async def _apply_complete(self) -> None:
        """Apply the paths that are complete or gone; keep the others waiting."""
        now = await self.shelf.run_files(look, list(self.waiting))
        ready = []
        for path, signature in now.items():
            if signature == FOLDER:
                del self.waiting[path]
                for found in await self.shelf.run_files(files_in, path, self.roots):
                    self.waiting.setdefault(found, None)
            elif not isinstance(signature, tuple) or self._complete(path, signature):
                ready.append(path)  # gone (or not a file): applied as a path gone
        if not ready:
            return
        for path in ready:
            self.waiting.pop(path, None)
        try:
            result = await scan_paths(self.shelf, self.roots, ready)
        except ShelfError as exc:
            log.error("watch: changes at %d paths not applied: %s", len(ready), exc.detail)
            return
        counts = result.counts
        log.info(
            "watch: applied %d paths (%d models created, %d locations added, %d missing)",
            len(ready),
            counts.models_created,
            counts.locations_added,
            counts.locations_missing,
        )
        for problem in result.problems:
            log.warning("watch: %s: %s", problem.path, problem.reason)

    def _complete(self, path: str, signature: tuple[int, int]) -> bool:
        """True once size and mtime have held for STABLE_SECONDS."""
        seen = self.waiting.get(path)
        monotonic = time.monotonic()
        if seen is None or seen.signature != signature:
            self.waiting[path] = _Look(signature, monotonic)
            return False
        quiet_for = time.time() - signature[1] / 1e9
        return quiet_for >= STABLE_SECONDS or monotonic - seen.since >= STABLE_SECONDS


async def start_watching(shelf: Shelf) -> FolderWatch | None:
    """A running FolderWatch over the configured roots, or None (logged) if they cannot be
    read."""
    try:
        roots = await model_roots(shelf)
    except ShelfError as exc:
        log.error("watch: %s; changes will not be applied", exc.detail)
        return None
    for warning in roots.warnings:
        log.warning("watch: %s", warning)
    watcher = FolderWatch(shelf, roots)
    watcher.start()
    return watcher
