"""The order in which a scan registers the files it queued: handed out a page at a time in
the planned order, each file of a size in its turn after the one walked before it, as many at
once as the CPU pool has threads."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from modelshelf.folders.walk import FoundFile
from modelshelf.storage.scan_queue import Queued, ScanQueue

T = TypeVar("T")
F = TypeVar("F")

# Files read back from the queue at a time, and files that may wait for their turn (see
# Turns) without holding a hashing slot: with these, a scan's memory does not grow with the
# number of files it registers.
PAGE = 500
MAX_WAITING = 256
# Files held at once for their copies (see HeldCopies).
MAX_HELD = 256


@dataclass(frozen=True, slots=True)
class FileToRegister:
    """A file to register: `sha256` if known without reading it; `known` if its path was a
    location already; `more_of_size` if a file of its size is handed out after it. `turn` is
    set once it is registered or has failed; `before` is the `turn` of the file of its size
    handed out just before it, if that may still be running."""

    found: FoundFile
    sha256: str | None
    known: bool
    turn: asyncio.Event
    before: asyncio.Event | None
    more_of_size: bool = False


class Feed:
    """Hands out the queued files in the planned order, a page read at a time, each with its
    turn (see Turns)."""

    def __init__(self, queue: ScanQueue) -> None:
        self._queue = queue
        self._page: deque[Queued] = deque()
        self._lock = asyncio.Lock()
        self.turns = Turns()

    async def next(self) -> FileToRegister | None:
        """The next file to register; None once there is none."""
        async with self._lock:  # pages are read, and turns given, in order
            if not self._page:
                self._page.extend(await self._queue.page(PAGE))
            if not self._page:
                return None
            return self.turns.give(self._page.popleft())


class Turns:
    """Copies of one content have one size. Registered in the order they were walked, the
    copy walked first makes the model (its path, name and facts from its sidecars) whichever
    copy is hashed first or known from the hash cache, so a scan run again after one was cut
    short ends as an uncut scan does. The queue hands out the files of one size in walk order
    (see ScanQueue.plan), so a file's turn comes when the file of its size handed out just
    before it is done. Only the turns of files handed out and not done are kept."""

    def __init__(self) -> None:
        self._last: dict[int, asyncio.Event] = {}  # size -> turn of the last one handed out

    def give(self, queued: Queued) -> FileToRegister:
        found = FoundFile(
            Path(queued.path),
            queued.type,
            queued.size,
            queued.mtime_ns,
            queued.inode,
            queued.device,
            queued.companions,
        )
        turn = asyncio.Event()
        before = self._last.get(queued.size)
        self._last[queued.size] = turn
        return FileToRegister(found, queued.sha256, queued.known, turn, before, queued.more_of_size)

    def done(self, item: FileToRegister) -> None:
        """`item` is registered or has failed: the next file of its size may go."""
        item.turn.set()
        if self._last.get(item.found.size) is item.turn:
            del self._last[item.found.size]


class HeldCopies(Generic[F]):
    """Files whose copies may still come (a file of their size is handed out after them:
    copies of one content have one size), held by content until every file of their size
    has had its turn, so that a content's copies are registered together: those of a
    content no model has make their model at once, its facts read once, from all of them, as
    a later reading would. Registered one by one, the model would be made from the first copy
    alone, and a thumbnail in its header could become the cover before the example image
    beside another copy came. At most MAX_HELD files wait: past that, a file is registered
    at once, with the files of its content held before it, and the copies after it join
    their model one by one (its facts are read again, with theirs, at the end of the scan)."""

    def __init__(self) -> None:
        self._held: dict[int, dict[str, list[F]]] = {}  # size -> sha256 -> files
        self._count = 0

    def add(self, size: int, sha256: str, file: F, more_of_size: bool) -> list[F] | None:
        """Hold `file` with the files of its content held before it, or as the first of its
        content if `more_of_size`; returns the files to register now instead (None: it
        waits), in the order they came."""
        held = self._held.get(size, {})
        files = held.get(sha256)
        if files is None and not more_of_size:
            return [file]
        if self._count >= MAX_HELD:
            if files is None:
                return [file]
            del held[sha256]
            self._count -= len(files)
            return [*files, file]
        self._held.setdefault(size, {}).setdefault(sha256, []).append(file)
        self._count += 1
        return None

    def release(self, size: int) -> list[tuple[str, list[F]]]:
        """The contents of `size` held, each with its files, in the order they came."""
        held = self._held.pop(size, {})
        self._count -= sum(len(files) for files in held.values())
        return list(held.items())


async def in_parallel(
    width: int, take: Callable[[], Awaitable[T | None]], work: Callable[[T], Awaitable[None]]
) -> None:
    """`work(item)` for every item `take()` gives until it gives None, at most `width` at
    once. The first error cancels the rest and is raised (as it is, not in a group)."""

    async def worker() -> None:
        while (item := await take()) is not None:
            await work(item)

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, width))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def one_by_one(items: Iterable[T]) -> Callable[[], Awaitable[T | None]]:
    """A `take` for in_parallel that gives `items` one by one."""
    pending = iter(items)

    async def take() -> T | None:
        return next(pending, None)

    return take


class Waiting:
    """Files that wait for their turn in tasks of their own, not in a hashing slot: at most
    MAX_WAITING at once (the caller waits in its slot past that). The first failure among
    them is raised by `finish`."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[None]] = set()
        self._failures: list[BaseException] = []

    def full(self) -> bool:
        return len(self._tasks) >= MAX_WAITING

    def add(self, turn: Awaitable[None]) -> None:
        task = asyncio.ensure_future(turn)
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._failures.append(error)

    async def finish(self) -> None:
        """Wait for every file waiting; raise the first failure among them."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._failures:
            raise self._failures[0]

    async def cancel(self) -> None:
        """Cancel every file still waiting, and wait until they have ended."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
