"""What is kept of a listing while the library has not changed since: how many models match
its filter and, for a search ranked best first, the order of its best matches. Counting the
matches of a frequent word or a filter is a pass over thousands of rows, and ranking a
frequent word or a short prefix scores every match (bm25 over 10,000 models: 10-20 ms on the
bench's machine); a person paging through one search (the web UI fetches a page at a time as
the grid scrolls) asks for both again and again.

Correctness rests on a generation of `Storage` (odd while a write transaction that may
change what is kept is open, bumped again once it ended): the write generation, or the
full-text index's for the listings every change to which changes the index too. What is kept
is kept and handed out only under a generation that was even and had not moved since before
the reader's snapshot began, so it describes exactly the rows that snapshot sees.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

# Filters remembered at once; the oldest is dropped first.
CAPACITY = 256
# How many of a ranked search's best matches are kept in order, at most: the web UI's first 20
# pages of 100. A page past them is ranked again, as every page was before.
RANKING_DEPTH = 2_000
# Index rows kept in rankings in all (8 bytes each: 4 MiB), whatever the capacity: past it the
# rankings of the filters used longest ago are dropped first (their totals stay).
RANKED_ROWS_KEPT = 256 * RANKING_DEPTH


@dataclass(frozen=True)
class Kept:
    """How many models match a filter and, for a search ranked best first, the index rows
    (model_search rowids) of its best matches in order: as many as the pages read so far
    reached (at most RANKING_DEPTH), or all."""

    total: int
    ranking: array[int] | None = None

    @property
    def depth(self) -> int:
        """How many best matches are kept in order."""
        return 0 if self.ranking is None else len(self.ranking)

    def ranked_page(self, limit: int, offset: int) -> list[int] | None:
        """The index rows of one page in order, if the kept ranking holds that page."""
        if self.ranking is None:
            return None
        if offset + limit > len(self.ranking) and len(self.ranking) < self.total:
            return None
        return self.ranking[offset : offset + limit].tolist()


class MatchCounts:
    """What is kept, by (filter key, generation). Thread-safe: readers on several connection
    threads use it at once."""

    def __init__(self, generation: Callable[[], int], capacity: int = CAPACITY) -> None:
        self._generation = generation
        self._capacity = capacity
        self._kept: OrderedDict[Hashable, tuple[int, Kept]] = OrderedDict()
        # The keys of _kept that hold a ranking, least recently used first, and their rows.
        self._ranked: OrderedDict[Hashable, None] = OrderedDict()
        self._ranked_rows = 0
        self._lock = threading.Lock()

    def generation(self) -> int:
        """The write generation now; read it before a snapshot begins."""
        return self._generation()

    def settled(self, generation: int) -> bool:
        """No write was open at `generation` and none has begun since: a snapshot begun after
        `generation` was read sees the library as it was at `generation`."""
        return generation % 2 == 0 and self._generation() == generation

    def get(self, key: Hashable, generation: int) -> Kept | None:
        """What is kept for `key` if it was kept under `generation`, else None."""
        with self._lock:
            found = self._kept.get(key)
            if found is None or found[0] != generation:
                return None
            self._kept.move_to_end(key)
            if key in self._ranked:
                self._ranked.move_to_end(key)
            return found[1]

    def put(self, key: Hashable, generation: int, kept: Kept) -> None:
        """Keep `kept` for `key` under `generation`; a longer ranking kept already under the
        same generation stays (the same filter read in another order has none, and a reader
        beside this one may have ranked deeper), and what was kept under a later generation
        stays as it is (a reader that began before a write ended after it)."""
        with self._lock:
            before = self._kept.get(key)
            if before is not None and before[0] > generation:
                return
            if before is not None and before[0] == generation and before[1].depth > kept.depth:
                kept = Kept(kept.total, before[1].ranking)
            self._forget(key)
            self._kept[key] = (generation, kept)
            if kept.ranking is not None:
                self._ranked[key] = None
                self._ranked_rows += kept.depth
            while len(self._kept) > self._capacity:
                self._forget(next(iter(self._kept)))
            # Only past CAPACITY filters (a larger `kept_totals`) can the rankings outgrow this.
            while self._ranked_rows > RANKED_ROWS_KEPT:
                oldest, _ = self._ranked.popitem(last=False)
                at, ranked = self._kept[oldest]
                self._ranked_rows -= ranked.depth
                self._kept[oldest] = (at, Kept(ranked.total))  # its total stays, in its place

    def _forget(self, key: Hashable) -> None:
        """Drop what is kept for `key` (under the lock)."""
        found = self._kept.pop(key, None)
        if found is not None and key in self._ranked:
            del self._ranked[key]
            self._ranked_rows -= found[1].depth
