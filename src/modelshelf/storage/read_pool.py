"""Who gets the next free read connection: the waiting read whose client has held read
connections least lately (issue 15).

A person browsing makes a read now and then; a script in a closed loop makes the next as soon
as the last is answered. First come, first served puts the person behind every read the
script has queued. Here each client's hold time is summed and decays with a half-life of
`USAGE_HALF_LIFE_S`, and a freed connection goes to the waiting read whose client's sum is the
smallest (one client's reads, and ties, in arrival order). A read that has waited
`LONGEST_WAIT_S` goes first whatever its client used, so no client waits for ever behind a
stream of new ones.

A client may also hold at most `per_client` connections at once (if set): the others stay
free for the next client to come, whose read then starts at once instead of waiting for one
of the script's to end. Past the longest wait a read is lent a free connection even beyond
its client's share, so a client's read made while it holds its share (a nested read) is late,
never stuck.

Who the client is, storage does not know: the HTTP layer sets `reading_client` for each
request (see `web/middleware.py`); reads outside a request share the key None.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Generic, TypeVar

# The client a read is made for, set by the HTTP layer for each request.
reading_client: ContextVar[Hashable] = ContextVar("reading_client", default=None)

# How fast a client's past use is forgotten: after a second, half of it counts.
USAGE_HALF_LIFE_S = 1.0
# A read waiting this long is served next, whatever its client used before.
LONGEST_WAIT_S = 1.0
# Clients whose use decayed below this many seconds are forgotten...
FORGOTTEN_BELOW_S = 1e-6
# ...once more than this many are remembered; if all still count, the history is dropped
# (a flood of distinct clients), and every client starts equal again.
CLIENTS_KEPT = 4096

Item = TypeVar("Item")


@dataclass
class _Waiter(Generic[Item]):
    client: Hashable
    since: float
    future: asyncio.Future[Item] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class FairPool(Generic[Item]):
    """Items (read connections) lent out to one holder at a time, the next free one to the
    waiter whose client used them least lately; the last one given back is lent first."""

    def __init__(
        self,
        *,
        half_life: float = USAGE_HALF_LIFE_S,
        longest_wait: float = LONGEST_WAIT_S,
        per_client: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._half_life = half_life
        self._longest_wait = longest_wait
        self._per_client = per_client
        self._clock = clock
        # Last in, first out: one request after another gets the connection whose page cache
        # the last one warmed (a search read 2-3% faster at p50 than with the readers in turn).
        self._idle: list[Item] = []
        self._waiters: list[_Waiter[Item]] = []  # in arrival order
        self._usage: dict[Hashable, tuple[float, float]] = {}  # client -> (seconds, as of)
        self._holding: dict[Hashable, int] = {}  # client -> items it holds now
        self._recheck: asyncio.TimerHandle | None = None

    def add(self, item: Item) -> None:
        """A new item to lend, or one given back: to the next waiter, else kept idle."""
        waiter = self._next_waiter()
        if waiter is None:
            self._idle.append(item)
            self._recheck_later()
        else:
            self._hand(item, waiter)

    async def take(self, client: Hashable) -> Item:
        """An item for `client`, once it is its turn. Cancelled while waiting, it takes
        nothing (an item handed to it meanwhile goes on to the next waiter)."""
        # Idle items with reads waiting are only ever held back from clients at their share.
        if self._idle and self._within_share(client) and not self._waiters_served_first():
            self._holding[client] = self.holding(client) + 1
            return self._idle.pop()
        waiter: _Waiter[Item] = _Waiter(client, self._clock())
        self._waiters.append(waiter)
        self._recheck_later()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self._release(client)
                self.add(waiter.future.result())  # handed over as the waiter was cancelled
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def give_back(self, item: Item, client: Hashable, held: float) -> None:
        """Return `item`, which `client` held for `held` seconds."""
        now = self._clock()
        self._usage[client] = (self.usage(client, now) + held, now)
        if len(self._usage) > CLIENTS_KEPT:
            self._forget(now)
        self._release(client)
        self.add(item)

    def usage(self, client: Hashable, now: float | None = None) -> float:
        """`client`'s hold time, decayed to `now` (the clock's now by default)."""
        seconds, as_of = self._usage.get(client, (0.0, 0.0))
        if seconds == 0.0:
            return 0.0
        now = self._clock() if now is None else now
        return float(seconds * 0.5 ** ((now - as_of) / self._half_life))

    def waiting(self) -> int:
        """Reads waiting for an item now."""
        return sum(1 for w in self._waiters if not w.future.done())

    def holding(self, client: Hashable) -> int:
        """How many items `client` holds now."""
        return self._holding.get(client, 0)

    def _hand(self, item: Item, waiter: _Waiter[Item]) -> None:
        """Lend `item` to `waiter` (taken off the list by _next_waiter)."""
        self._holding[waiter.client] = self.holding(waiter.client) + 1
        waiter.future.set_result(item)

    def _release(self, client: Hashable) -> None:
        left = self.holding(client) - 1
        if left > 0:
            self._holding[client] = left
        else:
            self._holding.pop(client, None)

    def _within_share(self, client: Hashable) -> bool:
        return self._per_client is None or self.holding(client) < self._per_client

    def _overdue(self, waiter: _Waiter[Item], now: float) -> bool:
        """Waited the longest wait: served next, past its client's share too."""
        return now - waiter.since >= self._longest_wait

    def _waiters_served_first(self) -> bool:
        """Whether a waiting read may take an item now (then a newcomer queues behind)."""
        now = self._clock()
        return any(
            self._within_share(w.client) or self._overdue(w, now)
            for w in self._waiters
            if not w.future.done()
        )

    def _next_waiter(self) -> _Waiter[Item] | None:
        """The waiter the next free item goes to, taken off the list; None if no waiter may
        have one now (none, or every one's client holds its share)."""
        # A waiter cancelled a moment ago is still listed until its task runs again.
        self._waiters = [w for w in self._waiters if not w.future.done()]
        now = self._clock()
        overdue = [w for w in self._waiters if self._overdue(w, now)]
        if overdue:
            chosen = overdue[0]
        else:
            allowed = [w for w in self._waiters if self._within_share(w.client)]
            if not allowed:
                return None
            used = {w.client: self.usage(w.client, now) for w in allowed}
            chosen = min(allowed, key=lambda w: used[w.client])  # the first of equals
        self._waiters.remove(chosen)
        return chosen

    def _recheck_later(self) -> None:
        """With items idle and reads held back by their share, lend again once the oldest of
        them has waited the longest wait (nothing else would wake it: no item is given back
        while the client's own reads wait for this one)."""
        if self._recheck is not None or not self._idle or not self._waiters:
            return
        oldest = min(w.since for w in self._waiters)
        delay = max(0.0, oldest + self._longest_wait - self._clock())
        self._recheck = asyncio.get_running_loop().call_later(delay, self._lend_overdue)

    def _lend_overdue(self) -> None:
        self._recheck = None
        while self._idle and (waiter := self._next_waiter()) is not None:
            self._hand(self._idle.pop(), waiter)
        self._recheck_later()

    def _forget(self, now: float) -> None:
        self._usage = {
            client: entry
            for client, entry in self._usage.items()
            if self.usage(client, now) >= FORGOTTEN_BELOW_S
        }
        if len(self._usage) > CLIENTS_KEPT:
            self._usage.clear()
