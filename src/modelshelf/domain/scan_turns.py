"""The order in which a scan registers the files it queued: handed out a page at a time in
the planned order, each file of a size in its turn after the one walked before it, as many at
once as the CPU pool has threads."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from modelshelf.folders.walk import FoundFile
from modelshelf.storage.scan_queue import Queued, ScanQueue

T = TypeVar("T")

# Files read back from the queue at a time, and files that may wait for their turn (see
# Turns) without holding a hashing slot: with these, a scan's memory does not grow with the
# number of files it registers.
PAGE = 500
MAX_WAITING = 256


@dataclass(frozen=True, slots=True)
class FileToRegister:
    """A file to register: `sha256` if known without reading it; `known` if its path was a
    location already. `turn` is set once it is registered or has failed; `before` is the
    `turn` of the file of its size handed out just before it, if that may still be running."""

    found: FoundFile
    sha256: str | None
    known: bool
    turn: asyncio.Event
    before: asyncio.Event | None


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
        return FileToRegister(found, queued.sha256, queued.known, turn, before)

    def done(self, item: FileToRegister) -> None:
        """`item` is registered or has failed: the next file of its size may go."""
        item.turn.set()
        if self._last.get(item.found.size) is item.turn:
            del self._last[item.found.size]


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
