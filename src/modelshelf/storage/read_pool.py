"""Who gets the next free read connection: the waiting read whose client has held read
connections least lately (issue 15).

A person browsing makes a read now and then; a script in a closed loop makes the next as soon
as the last is answered. First come, first served puts the person behind every read the
script has queued. Here each client's hold time is summed and decays with a half-life of
`USAGE_HALF_LIFE_S`, and a freed connection goes to the waiting read whose client's sum is the
smallest (one client's reads, and ties, in arrival order). A read that has waited
`LONGEST_WAIT_S` goes first whatever its client used, so no client waits for ever behind a
stream of new ones.

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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._half_life = half_life
        self._longest_wait = longest_wait
        self._clock = clock
        # Last in, first out: one request after another gets the connection whose page cache
        # the last one warmed (a search read 2-3% faster at p50 than with the readers in turn).
        self._idle: list[Item] = []
        self._waiters: list[_Waiter[Item]] = []  # in arrival order
        self._usage: dict[Hashable, tuple[float, float]] = {}  # client -> (seconds, as of)

    def add(self, item: Item) -> None:
        """A new item to lend, or one given back: to the next waiter, else kept idle."""
        waiter = self._next_waiter()
        if waiter is None:
            self._idle.append(item)
        else:
            waiter.future.set_result(item)

    async def take(self, client: Hashable) -> Item:
        """An item for `client`, once it is its turn. Cancelled while waiting, it takes
        nothing (an item handed to it meanwhile goes on to the next waiter)."""
        if self._idle and not self.waiting():
            return self._idle.pop()
        waiter: _Waiter[Item] = _Waiter(client, self._clock())
        self._waiters.append(waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
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

    def _next_waiter(self) -> _Waiter[Item] | None:
        # A waiter cancelled a moment ago is still listed until its task runs again.
        self._waiters = [w for w in self._waiters if not w.future.done()]
        if not self._waiters:
            return None
        now = self._clock()
        first = self._waiters[0]
        if now - first.since >= self._longest_wait:
            chosen = first
        else:
            used = {w.client: self.usage(w.client, now) for w in self._waiters}
            chosen = min(self._waiters, key=lambda w: used[w.client])  # the first of equals
        self._waiters.remove(chosen)
        return chosen

    def _forget(self, now: float) -> None:
        self._usage = {
            client: entry
            for client, entry in self._usage.items()
            if self.usage(client, now) >= FORGOTTEN_BELOW_S
        }
        if len(self._usage) > CLIENTS_KEPT:
            self._usage.clear()
