"""In-memory locks keyed by id or hash. A key's lock lives only while someone holds or waits
for it, so the registry does not grow with the number of ids ever seen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

from modelshelf.errors import Locked


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class KeyedLocks:
    """A registry of `asyncio.Lock`s, one per key in use."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def waiting(self, key: Hashable) -> int:
        """How many tasks wait for the key's lock (not counting the one holding it)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0
        return entry.users - (1 if entry.lock.locked() else 0)

    def is_locked(self, key: Hashable) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.lock.locked()

    @asynccontextmanager
    async def hold_now(self, key: Hashable) -> AsyncIterator[None]:
        """Hold the key's lock without waiting. Raises Locked at once if someone holds it."""
        entry = self._entries.get(key)
        if entry is not None and (entry.lock.locked() or entry.users):
            raise Locked(f"{self._what} {key} is being processed by another request", key=key)
        entry = self._enter(key)
        try:
            # An unlocked asyncio.Lock with no waiters is acquired without suspending, so no
            # other task can slip in between the check above and this line.
            async with entry.lock:
                yield
        finally:
            self._leave(key, entry)

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Hold the key's lock, waiting for it if necessary."""
        entry = self._enter(key)
        try:
            async with entry.lock:
                yield
        finally:
            self._leave(key, entry)

    async def wait_idle(self, key: Hashable) -> None:
        """Return once nobody holds the key's lock (at once if nobody does)."""
        entry = self._entries.get(key)
        if entry is not None and entry.lock.locked():
            async with self.hold(key):
                pass

    def _enter(self, key: Hashable) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        return entry

    def _leave(self, key: Hashable, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._entries[key]
