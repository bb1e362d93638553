"""How many models matched a listing's filter, kept while the library has not changed since:
counting the matches of a frequent word or a filter is a pass over thousands of rows, and a
person paging through one search (the UI fetches a page at a time) asks for it again and
again.

Correctness rests on the write generation of `Storage` (odd while a write transaction is
open, bumped again once it ended): a count is kept and handed out only under a generation
that was even and had not moved since before the reader's snapshot began, so it describes
exactly the rows that snapshot sees.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

# Filters remembered at once: a few hundred integers; the oldest is dropped first.
CAPACITY = 256


class MatchCounts:
    """Counts by (filter key, generation). Thread-safe: readers on several connection threads
    use it at once."""

    def __init__(self, generation: Callable[[], int], capacity: int = CAPACITY) -> None:
        self._generation = generation
        self._capacity = capacity
        self._counts: OrderedDict[Hashable, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def generation(self) -> int:
        """The write generation now; read it before a snapshot begins."""
        return self._generation()

    def settled(self, generation: int) -> bool:
        """No write was open at `generation` and none has begun since: a snapshot begun after
        `generation` was read sees the library as it was at `generation`."""
        return generation % 2 == 0 and self._generation() == generation

    def get(self, key: Hashable, generation: int) -> int | None:
        with self._lock:
            found = self._counts.get(key)
            if found is None or found[0] != generation:
                return None
            self._counts.move_to_end(key)
            return found[1]

    def put(self, key: Hashable, generation: int, count: int) -> None:
        with self._lock:
            self._counts[key] = (generation, count)
            self._counts.move_to_end(key)
            while len(self._counts) > self._capacity:
                self._counts.popitem(last=False)
